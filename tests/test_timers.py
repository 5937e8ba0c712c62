"""Lab timers: due order, replacement, cancellation, settling, and firing as real time passes."""

import datetime
import threading

from dealab.wire import labtime
from dealab.wire.timers import Timers

START = datetime.datetime(2030, 1, 1)


def test_fire_due_fires_in_due_order_up_to_the_moment_and_what_fires_may_schedule_more():
    timers, fired = Timers(), []

    def recorder(name, then=None):
        def fire(at):
            fired.append((name, at))
            if then:
                timers.schedule("test", then, at + datetime.timedelta(hours=1), recorder(then))
        return fire

    timers.schedule("test", "b", START + datetime.timedelta(hours=2), recorder("b"))
    timers.schedule("test", "a", START + datetime.timedelta(hours=1), recorder("a", then="c"))
    timers.schedule("test", "late", START + datetime.timedelta(days=3), recorder("late"))
    assert timers.fire_due(START + datetime.timedelta(hours=2)) == 3
    assert [name for name, _ in fired] == ["a", "b", "c"]  # c was scheduled by a, due with b: b came first
    assert timers.next_due() == START + datetime.timedelta(days=3)
    timers.close()


def test_schedule_replaces_and_cancel_forgets():
    timers, fired = Timers(), []
    timers.schedule("eng", "k", START, lambda at: fired.append(("first", at)))
    timers.schedule("eng", "k", START + datetime.timedelta(minutes=5), lambda at: fired.append(("second", at)))
    timers.schedule("other", "k", START, lambda at: fired.append(("other", at)))
    timers.cancel_owner("other")
    assert timers.due_at("eng", "k") == START + datetime.timedelta(minutes=5)
    timers.fire_due(START + datetime.timedelta(days=1))
    assert fired == [("second", START + datetime.timedelta(minutes=5))]
    timers.close()


def test_a_failing_timer_does_not_stop_the_others_and_settling_waits_for_work():
    timers, done = Timers(), threading.Event()

    def start_work(at):
        threading.Timer(0.2, done.set).start()
        return done.is_set

    timers.schedule("eng", "boom", START, lambda at: 1 / 0)
    timers.schedule("eng", "work", START, start_work)
    assert timers.fire_due(START, settle=True) == 2
    assert done.is_set()
    timers.close()


def test_skipped_occurrences_are_kept_per_move():
    timers = Timers()
    timers.moving_to(START)
    timers.note_skipped("events", "rule/every-minute", 500)
    assert timers.move_target() == START
    timers.moving_to(None)
    assert timers.skipped() == {"events:rule/every-minute": 500}
    timers.moving_to(START)
    assert timers.skipped() == {}
    timers.close()


def test_the_ticker_fires_what_real_time_makes_due():
    timers, fired = Timers(), threading.Event()
    timers.schedule("eng", "soon", labtime.live_now() + datetime.timedelta(milliseconds=200), lambda at: fired.set())
    assert fired.wait(5)
    timers.close()
