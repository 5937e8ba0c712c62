"""The storage report's prices: what each object is billed for, tallied per storage class."""

import pytest

from dealab import pricing

KIB = 1024


def _totals(storage_class, *sizes):
    totals = pricing.new_totals()
    for size in sizes:
        pricing.tally(totals, storage_class, size)
    return totals


def test_minimum_billable_size_applies_to_each_object():
    # one small and one large object: their average clears 128 KiB, yet the small one is billed 128 KiB
    totals = _totals("STANDARD_IA", 1 * KIB, 1024 * KIB)
    assert dict(zip(pricing.TOTALS_FIELDS, totals)) == {"bytes": 1025 * KIB, "objects": 2, "billed_bytes": 1152 * KIB, "monitored_objects": 0}
    assert pricing.monthly_cost("STANDARD_IA", totals) == pytest.approx(1152 * KIB / 1024 ** 3 * 0.0125)


def test_intelligent_tiering_monitors_objects_of_128_kib_or_more_only():
    totals = _totals("INTELLIGENT_TIERING", 127 * KIB, 128 * KIB, 4096 * KIB)
    assert totals[3] == 2
    expected = (127 + 128 + 4096) * KIB / 1024 ** 3 * 0.023 + 2 / 1000 * 0.0025
    assert pricing.monthly_cost("INTELLIGENT_TIERING", totals) == pytest.approx(expected)


def test_archive_classes_carry_their_per_object_overhead():
    totals = _totals("DEEP_ARCHIVE", 10 * KIB)
    expected = (10 * KIB + 32 * KIB) / 1024 ** 3 * 0.00099 + 8 * KIB / 1024 ** 3 * 0.023
    assert pricing.monthly_cost("DEEP_ARCHIVE", totals) == pytest.approx(expected)


def test_taking_objects_away_undoes_adding_them():
    totals = _totals("GLACIER_IR", 5 * KIB, 300 * KIB)
    pricing.tally(totals, "GLACIER_IR", 5 * KIB, -1)
    assert totals == _totals("GLACIER_IR", 300 * KIB)
    assert pricing.cost_of({"GLACIER_IR": totals, "STANDARD": _totals("STANDARD", 2 * KIB)}) == pytest.approx(
        300 * KIB / 1024 ** 3 * 0.004 + 2 * KIB / 1024 ** 3 * 0.023)
