"""Where embedded moto is bent to dealab's needs: time, randomness, and S3 access decisions.

moto stamps resources with `moto.core.utils.utcnow()` and draws ids from one seedable random generator.
Replaying the journal under each request's recorded time and seed brings back identical ids and dates, and
the lab clock's offset moves moto's idea of "now" for every service at once. Draws no seed brings back (upload
ids from os.urandom, KMS key material) go on the request's tape; moto modules that read the wall clock or the
global `random` themselves are pointed at the lab clock and the seeded generator; SQS long polls wait in real
time with the backend lock released, and not at all on replay (docs/state.md, "Determinism audit").

moto also half-evaluates bucket policies on object requests (a condition that does not match counts as a
deny), which would refuse compliant uploads; the s3access engine evaluates them properly, so moto's verdict
is neutralised.
"""

from __future__ import annotations

import base64
import datetime
import importlib.abc
import os
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import moto.core.utils as moto_utils
from moto.moto_api._internal import mock_random

from dealab.wire import labtime

_original_utcnow = moto_utils.utcnow
_state = threading.local()
_patched: set[str] = set()
_modules_seen = 0


def install() -> None:
    from moto.iam.access_control import PermissionResult
    from moto.s3.models import FakeBucket

    from dealab.stack import motofast

    FakeBucket.get_permission = lambda self, action, resource: PermissionResult.NEUTRAL
    moto_utils.utcnow = labtime.now
    labtime.declare_backend_reads_lab_time()
    motofast.install()
    patch_new_modules()
    install_draw_and_clock_patches()
    _stamp_buckets_with_moto_time(FakeBucket)
    _keep_put_bodies_raw()


def _stamp_buckets_with_moto_time(bucket_class) -> None:
    """FakeBucket reads the wall clock (datetime.now), not utcnow, so a replayed CreateBucket would carry the
    restart's time as its CreationDate; it takes moto's "now" instead (frozen per journal entry on replay)."""
    if getattr(bucket_class.__init__, "dealab_stamped", False):
        return
    original_init = bucket_class.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.creation_date = labtime.now().replace(tzinfo=datetime.timezone.utc)

    init.dealab_stamped = True
    bucket_class.__init__ = init


def _keep_put_bodies_raw() -> None:
    """werkzeug parses a body sent as application/x-www-form-urlencoded into a form and leaves moto an empty
    body, so a PutObject or UploadPart of that type stored 0 bytes. No AWS protocol sends a form by PUT
    (query-protocol forms are POSTs), so moto's requests leave PUT bodies as they came."""
    from moto.core.request import Request

    Request.want_form_data_parsed = property(lambda request: request.method != "PUT" and bool(request.environ.get("CONTENT_TYPE")))


def patch_new_modules() -> None:
    """Points every moto module that imported `utcnow` by name at ours; modules load lazily, so this runs
    after every backend call, and walks sys.modules only when it has grown."""
    global _modules_seen
    if len(sys.modules) == _modules_seen:
        return
    _modules_seen = len(sys.modules)
    for name, module in list(sys.modules.items()):
        if name in _patched or not name.startswith("moto") or module is None:
            continue
        if getattr(module, "utcnow", None) is _original_utcnow:
            module.utcnow = labtime.now
        if name == "moto.sns.models":  # loads with the first SNS call, before any Publish
            _leave_lambda_subscribers_to_the_engine(module.Subscription)
        _patched.add(name)


def _leave_lambda_subscribers_to_the_engine(subscription_class) -> None:
    """moto delivers to a `lambda` subscription by running the function in Docker (absent: it logs an error
    into the function's log group) and fails the Publish when the function is gone, which SNS never does; the
    sns engine delivers through the Lambda API instead."""
    original = subscription_class.publish

    def publish(self, *args, **kwargs):
        if self.protocol != "lambda":
            original(self, *args, **kwargs)

    subscription_class.publish = publish


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    mock_random.seed(seed)
    _state.seed = seed
    try:
        yield
    finally:
        _state.seed = None


# Draws the backend makes that no seed can bring back (os.urandom, key generation in OpenSSL) are recorded
# on a per-request tape while a live request runs, stored with its journal entry, and played back in order
# when that entry is replayed. `tape_draw` is the one way a patched draw takes part.


@contextmanager
def recording() -> Iterator[list]:
    """While a live request runs: every taped draw is appended to the yielded list (JSON-safe values)."""
    _state.tape, _state.replaying, _state.released = [], False, False
    try:
        yield _state.tape
    finally:
        _state.tape = None


@contextmanager
def replaying(tape: list) -> Iterator[None]:
    """While a journal entry is replayed: taped draws come back from `tape` in order, and waits return at once."""
    _state.tape, _state.replaying = list(tape), True
    try:
        yield
    finally:
        _state.tape, _state.replaying = None, False


def is_replaying() -> bool:
    """True while a journal entry is being replayed: a wait must not block (the original already waited)."""
    return getattr(_state, "replaying", False)


def tape_draw(kind: str, draw, encode=lambda value: value, decode=lambda value: value):
    """Calls `draw()` live and records `encode(result)`; on replay returns `decode` of the recorded value of
    the same kind instead (or draws afresh when the tape has none, as for entries journaled before taping)."""
    tape = getattr(_state, "tape", None)
    if tape is None:
        return draw()
    if getattr(_state, "replaying", False):
        for index, (recorded_kind, value) in enumerate(tape):
            if recorded_kind == kind:
                del tape[index]
                return decode(value)
        return draw()
    result = draw()
    tape.append((kind, encode(result)))
    return result


# --- Draws and clock reads inside moto's modules -------------------------------------------------------------
# docs/state.md ("Determinism audit") lists every draw and wall-clock read found in moto 5.2.5's services that
# dealab uses, and what is done about each. The fixes replace an attribute that one moto module reads by name
# (its `os`, `uuid4`, `random`, `time`, `datetime`, or a method of one class), never the shared module itself,
# so nothing outside that moto module sees a difference.

# A long poll sleeps this long at most before looking again at messages whose visibility or delay ran out
# (new messages wake it at once).
LONG_POLL_RECHECK_SECONDS = 0.5
_request_lock = None


class StandIn:
    """A module as one moto module sees it: the same module, with a few of its functions replaced."""

    def __init__(self, module, **replacements):
        self._module = module
        self.__dict__.update(replacements)

    def __getattr__(self, name):
        return getattr(self._module, name)


def lab_unix_time() -> float:
    """time.time() on the lab clock, as a moto module that calls time.time() sees it (frozen on replay)."""
    return (labtime.now() - labtime.EPOCH).total_seconds()


class _AnyDatetime(type):
    """isinstance(x, LabDatetime) answers as isinstance(x, datetime) would, so a moto module's checks still hold."""

    def __instancecheck__(cls, value) -> bool:
        return isinstance(value, datetime.datetime)


class LabDatetime(datetime.datetime, metaclass=_AnyDatetime):
    """`datetime` as a moto module that calls datetime.now() sees it: now() reads the lab clock."""

    @classmethod
    def now(cls, tz=None):
        moment = labtime.now().replace(tzinfo=datetime.timezone.utc)
        return moment.astimezone(tz) if tz is not None else moment.astimezone().replace(tzinfo=None)


def _encode_bytes(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


def _decode_bytes(text: str) -> bytes:
    return base64.b64decode(text)


def taped_urandom(kind: str):
    """os.urandom as one moto module sees it: recorded on the request's tape, played back on replay."""

    def urandom(size: int) -> bytes:
        return tape_draw(kind, lambda: os.urandom(size), _encode_bytes, _decode_bytes)

    return urandom


def _encode_kms_private_key(wrapper) -> dict:
    """moto's RSAPrivateKey/ECDSAPrivateKey as JSON: its class, its plain fields, and the key as PEM text."""
    from cryptography.hazmat.primitives import serialization

    pem = wrapper.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fields = {name: value for name, value in vars(wrapper).items() if name != "private_key"}
    return {"class": type(wrapper).__name__, "fields": fields, "pem": pem.decode("ascii")}


def _decode_kms_private_key(record: dict):
    from cryptography.hazmat.primitives.serialization import load_pem_private_key
    from moto.kms import utils as kms_utils

    wrapper_class = getattr(kms_utils, record["class"])
    if not (isinstance(wrapper_class, type) and issubclass(wrapper_class, kms_utils.AbstractPrivateKey)):
        raise ValueError(f"a taped KMS key names {record['class']!r}, which is not one of moto's key classes")
    wrapper = object.__new__(wrapper_class)
    vars(wrapper).update(record["fields"])
    wrapper.private_key = load_pem_private_key(record["pem"].encode("ascii"), password=None)
    return wrapper


@contextmanager
def request_lock_released() -> Iterator[None]:
    """Lets other requests through while this one waits: the backend holds one lock across each request."""
    lock = _request_lock
    if lock is None or not lock._is_owned():
        yield
        return
    _state.released = True
    saved = lock._release_save()  # the RLock's full recursion depth, as threading.Condition does
    try:
        yield
    finally:
        lock._acquire_restore(saved)


def lock_was_released() -> bool:
    """True if the request being recorded let others through while it waited: requests applied meanwhile are
    journaled before it, so its entry must be numbered after them (the seed its retries used is on its tape)."""
    return getattr(_state, "released", False)


def _reseed() -> None:
    """Draws after a wait restart from the request's seed (taped, since a request that waited is journaled under
    a later number), as its replay, which does not wait, will."""
    seed = tape_draw("seed", lambda: getattr(_state, "seed", None))
    if seed is not None:
        mock_random.seed(seed)


def _encode_moment(moment: datetime.datetime) -> str:
    return moment.isoformat()


def _receive_in_real_time(original):
    """SQS ReceiveMessage whose long poll waits at most WaitTimeSeconds of real time, whatever the lab clock,
    without holding the backend lock; it returns as soon as messages arrive, and never waits on replay.

    moto's own loop compares lab times, and under a request's frozen time it never reaches its deadline. Here
    each try after a wait runs at the lab time it happened and that moment goes on the tape, so the replay
    makes the same tries at the same moments (with no waiting) and receives the same messages."""

    def receive_message(self, queue_name, count, wait_seconds_timeout, visibility_timeout, message_attribute_names=None):
        def receive_now():
            return original(self, queue_name, count, 0, visibility_timeout, message_attribute_names)

        messages = receive_now()
        if is_replaying():
            while not messages and (moment := tape_draw("sqs.received_at", lambda: None, decode=datetime.datetime.fromisoformat)):
                with labtime.frozen_at(moment):
                    _reseed()
                    messages = receive_now()
            return messages
        if messages or not wait_seconds_timeout:
            return messages
        queue = self.get_queue(queue_name)
        deadline = time.monotonic() + wait_seconds_timeout
        while not messages and (remaining := deadline - time.monotonic()) > 0:
            with request_lock_released(), labtime.frozen_at(None):
                if not _wait_for_visible_messages(queue, min(remaining, LONG_POLL_RECHECK_SECONDS)):
                    continue
            moment = tape_draw("sqs.received_at", labtime.live_now, encode=_encode_moment)
            with labtime.frozen_at(moment):
                _reseed()
                messages = receive_now()
        return messages

    return receive_message


def _wait_for_visible_messages(queue, timeout: float) -> bool:
    """True once the queue has a visible message, False after `timeout` seconds without one."""
    with queue._messages_lock:
        return queue._messages_lock.wait_for(lambda: queue.messages, timeout=timeout)


def _taped(kind: str, encode, decode):
    """A moto function whose result is recorded on the tape (for draws no seed brings back)."""

    def wrap(original):
        def taped(*args, **kwargs):
            return tape_draw(kind, lambda: original(*args, **kwargs), encode, decode)

        return taped

    return wrap


def _with_urandom(kind: str):
    return lambda os_module: StandIn(os_module, urandom=taped_urandom(kind))


def _seeded_uuid4(original):
    return mock_random.uuid4


def _seeded_random(original):
    return mock_random


def _lab_time_module(original):
    return StandIn(original, time=lab_unix_time)


def _lab_datetime_module(original):
    return StandIn(original, datetime=LabDatetime)


def _lab_datetime_class(original):
    return LabDatetime


def _s3_deliveries_left_to_engines(original):
    """S3 event notifications: moto would send them itself, straight into its SQS/SNS backends (Lambda needs
    Docker) inside the S3 request; the s3notify and events engines deliver them through the gateway instead,
    so moto's sending is switched off and nothing arrives twice."""
    return StandIn(original, send_event=lambda *args, **kwargs: None, send_test_event=lambda *args, **kwargs: None)


def _mappings_left_to_engines(original):
    """CreateEventSourceMapping: moto wires a mapping into the queue, table or stream, which then receives and
    deletes SQS messages, and empties a DynamoDB stream, inside the sending request to invoke through Docker. The
    eventsources engine polls instead; the mapping is kept, its wiring undone."""

    def create_event_source_mapping(self, spec):
        mapping = original(self, spec)
        from moto.dynamodb.models import dynamodb_backends
        from moto.kinesis.models import kinesis_backends
        from moto.sqs.models import sqs_backends

        for queue in sqs_backends[self.account_id][self.region_name].queues.values():
            queue.lambda_event_source_mappings.pop(mapping.function_arn, None)
        for table in dynamodb_backends[self.account_id][self.region_name].tables.values():
            table.lambda_event_source_mappings.pop(mapping.function_arn, None)
        for stream in kinesis_backends[self.account_id][self.region_name].streams.values():
            stream.lambda_event_source_mappings.pop(mapping.event_source_arn, None)
        return mapping

    return create_event_source_mapping


def _delivered_by_the_events_engine(original):
    """moto hands S3's EventBridge events straight to its own rules' targets (no Lambda, no retries, again on
    every replay); the events engine emits them instead, after the S3 call succeeds."""
    return lambda *args, **kwargs: None


def _metrics_by_the_engines(original):
    """moto puts AWS/Kinesis IncomingBytes/IncomingRecords straight into its CloudWatch backend, unseen by alarms;
    the kinesis engine publishes them (stamped in lab time) through the gateway instead, so they count once."""
    return lambda *args, **kwargs: None


def _access_logs_by_the_cloudtrail_engine(original):
    """moto writes a made-up server access log object per request into the target bucket; the cloudtrail
    engine writes S3's documented format on the lab clock instead."""
    return lambda *args, **kwargs: None


def _current_follows_its_label(original):
    """UpdateSecretVersionStage moving AWSCURRENT: moto moves the label but GetSecretValue without a stage keeps
    reading the version it last made current, so a rotation's finishSecret never reached readers."""

    def update_secret_version_stage(self, secret_id, version_stage, remove_from_version_id, move_to_version_id):
        answer = original(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
        if version_stage == "AWSCURRENT" and move_to_version_id:
            self.secrets[secret_id].set_default_version_id(move_to_version_id)
        return answer

    return update_secret_version_stage


_SFN = "moto.stepfunctions.parser"
# moto module → [(the attribute it reads, possibly Class.method; the replacement made from the original)].
# Applied when the module is imported (moto imports a service on its first request), or at once if it is loaded.
MODULE_PATCHES: dict[str, list[tuple[str, object]]] = {
    "moto.s3.models": [("os", _with_urandom("s3.upload_id")), ("notifications", _s3_deliveries_left_to_engines),
                       ("S3Backend.log_incoming_request", _access_logs_by_the_cloudtrail_engine)],
    "moto.awslambda.models": [("LambdaBackend.create_event_source_mapping", _mappings_left_to_engines)],
    "moto.s3.notifications": [("_send_event_bridge_message", _delivered_by_the_events_engine)],
    "moto.kinesis.models": [("KinesisBackend._send_stream_metrics", _metrics_by_the_engines)],
    "moto.kms.models": [
        ("generate_master_key", _taped("kms.key_material", _encode_bytes, _decode_bytes)),
        ("generate_private_key", _taped("kms.private_key", _encode_kms_private_key, _decode_kms_private_key)),
    ],
    "moto.iam.models": [("os", _with_urandom("iam.virtual_mfa_qr_code"))],
    "moto.sts.utils": [("os", _with_urandom("sts.session_token"))],
    "moto.dynamodbstreams.models": [("os", _with_urandom("dynamodbstreams.shard_iterator"))],
    "moto.dynamodb.models.table_export": [("uuid4", _seeded_uuid4)],
    "moto.dynamodb.models.table_import": [("uuid4", _seeded_uuid4)],
    "moto.cloudwatch.models": [("uuid4", _seeded_uuid4), ("datetime", _lab_datetime_class)],
    "moto.athena.models": [("time", _lab_time_module), ("datetime", _lab_datetime_class)],
    "moto.secretsmanager.models": [("time", _lab_time_module),
                                   ("SecretsManagerBackend.update_secret_version_stage", _current_follows_its_label)],
    "moto.redshift.models": [("datetime", _lab_datetime_class)],
    "moto.redshiftdata.models": [("datetime", _lab_datetime_class)],
    "moto.moto_api._internal.managed_state_model": [("datetime", _lab_datetime_class)],
    "moto.sqs.models": [("SQSBackend.receive_message", _receive_in_real_time)],
    f"{_SFN}.utils": [("uuid4", _seeded_uuid4)],
    f"{_SFN}.models": [("datetime", _lab_datetime_module)],
    f"{_SFN}.backend.alias": [("random", _seeded_random), ("datetime", _lab_datetime_module)],
    f"{_SFN}.backend.execution": [("datetime", _lab_datetime_module)],
    f"{_SFN}.backend.state_machine": [("datetime", _lab_datetime_module)],
    f"{_SFN}.backend.activity": [("datetime", _lab_datetime_module)],
    f"{_SFN}.asl.eval.event.event_manager": [("datetime", _lab_datetime_module)],
    f"{_SFN}.asl.component.state.wait.wait_function.timestamp": [("datetime", _lab_datetime_module)],  # Wait Timestamp: lab time
    f"{_SFN}.asl.component.state.state": [("datetime", _lab_datetime_module)],
    f"{_SFN}.asl.component.state.exec.state_parallel.branches_decl": [("datetime", _lab_datetime_module)],
    f"{_SFN}.asl.component.state.exec.state_map.iteration.itemprocessor.map_run_record": [("datetime", _lab_datetime_module)],
    f"{_SFN}.asl.component.common.retry.jitter_strategy_decl": [("random", _seeded_random)],
    f"{_SFN}.asl.component.intrinsic.function.statesfunction.math_operations.math_random": [("random", _seeded_random)],
}
_modules_patched: set[str] = set()
_patch_lock = threading.Lock()


def _apply_module_patches(name: str, module) -> None:
    with _patch_lock:
        if name in _modules_patched:
            return
        _modules_patched.add(name)
    for attribute, make_replacement in MODULE_PATCHES[name]:
        *owner_path, leaf = attribute.split(".")
        owner = module
        for part in owner_path:
            owner = getattr(owner, part)
        original = owner.__dict__[leaf] if isinstance(owner, type) else getattr(owner, leaf)
        setattr(owner, leaf, make_replacement(original))


class _PatchAfterImport(importlib.abc.MetaPathFinder):
    """Finds the modules in MODULE_PATCHES as Python would, and patches each right after it has run."""

    def find_spec(self, name, path, target=None):
        if name not in MODULE_PATCHES or name in _modules_patched:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                break
        else:
            return None
        if spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run_module = spec.loader.exec_module

        def exec_module(module) -> None:
            run_module(module)
            _apply_module_patches(name, module)

        spec.loader.exec_module = exec_module
        return spec


_import_hook = _PatchAfterImport()


def install_draw_and_clock_patches() -> None:
    if _import_hook not in sys.meta_path:
        sys.meta_path.insert(0, _import_hook)
    for name in MODULE_PATCHES:
        module = sys.modules.get(name)
        if module is not None:
            _apply_module_patches(name, module)


def set_request_lock(lock) -> None:
    """The lock the backend holds across each request; waits inside moto release it (request_lock_released)."""
    global _request_lock
    _request_lock = lock
