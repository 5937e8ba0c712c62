"""The worker side of a Lambda function: one warm process that imports the handler once and runs invocations.

Started by path (`python -P runner.py REQUEST_FD RESPONSE_FD HANDLER PATHS_JSON`), never with -m, so the process
imports nothing but the standard library before the function's own code: everything below must stay so.

Protocol (pipes, not the process's stdout, which is the function's log): each message is a 4-byte big-endian
length and a JSON document.
- runner → engine, once: {"ready": true} after the handler imported, or {"init_error": {...}} and exit.
- engine → runner: {"id", "event", "arn", "version", "remaining_ms"} (event is the raw payload text).
- runner → engine: {"result": "<JSON text>"} or {"error": {errorMessage, errorType, requestId, stackTrace}}, with
  "peak_mb": the process's peak resident memory so far (read here, so the stack reads no /proc file per
  invocation).
Before each answer the runner writes END_MARK + request id + newline to its stdout, after everything the
handler printed, so the engine knows the invocation's log is complete. A handler that calls sys.exit or
os._exit ends the process; the engine reports that as Runtime.ExitError, as AWS does.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import signal
import struct
import sys
import time
import traceback

END_MARK = "\x00dealab-lambda-end "
PR_SET_PDEATHSIG = 1
_HEADER = struct.Struct(">I")


def die_with_parent() -> None:
    """Asks Linux to SIGKILL this process when the stack's thread that started it ends (even by kill -9)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def read_message(stream) -> dict | None:
    header = _read_exactly(stream, _HEADER.size)
    if header is None:
        return None
    body = _read_exactly(stream, _HEADER.unpack(header)[0])
    return None if body is None else json.loads(body)


def write_message(stream, message: dict) -> None:
    body = json.dumps(message).encode()
    stream.write(_HEADER.pack(len(body)) + body)


def _read_exactly(stream, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        chunk = stream.read(left)
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


class LambdaContext:
    """The context object of the Python runtime (awslambdaric's LambdaContext: same names, same types)."""

    def __init__(self, invocation: dict):
        self.aws_request_id = invocation["id"]
        self.invoked_function_arn = invocation["arn"]
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ["AWS_LAMBDA_FUNCTION_VERSION"]
        self.memory_limit_in_mb = os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"]  # a string, as on AWS
        self.log_group_name = os.environ["AWS_LAMBDA_LOG_GROUP_NAME"]
        self.log_stream_name = os.environ["AWS_LAMBDA_LOG_STREAM_NAME"]
        self.identity = None
        self.client_context = invocation.get("client_context")
        self._deadline = time.monotonic() + invocation["remaining_ms"] / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def log(self, message: str) -> None:
        sys.stdout.write(message)


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def _install_logging() -> _RequestIdFilter:
    """The runtime's root handler: `[LEVEL]\\tTIME\\tREQUEST_ID\\tmessage`, as lines of the function's log."""
    request_filter = _RequestIdFilter()
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s", "%Y-%m-%dT%H:%M:%S"))
    handler.formatter.converter = time.gmtime
    handler.addFilter(request_filter)
    logging.getLogger().addHandler(handler)
    return request_filter


def _user_frames(error: BaseException) -> list[str]:
    """The traceback from the function's own first frame on (the runner's frames are not the learner's)."""
    frames = traceback.extract_tb(error.__traceback__)
    return traceback.format_list([frame for frame in frames if frame.filename != __file__])


def error_payload(error: BaseException, request_id: str = "") -> dict:
    payload = {"errorMessage": str(error), "errorType": type(error).__name__}
    if request_id:
        payload["requestId"] = request_id
    payload["stackTrace"] = _user_frames(error)
    return payload


def _fault(error_type: str, message: str, stack_trace: list[str] | None = None) -> dict:
    return {"errorMessage": message, "errorType": error_type, "stackTrace": stack_trace or []}


def load_handler(handler: str):
    """Imports the handler as awslambdaric does, turning what goes wrong into its Runtime.* faults."""
    module_name, _, function_name = handler.rpartition(".")
    if not module_name:
        raise _InitFault(_fault("Runtime.MalformedHandlerName", f"Bad handler '{handler}': not enough values to unpack (expected 2, got 1)"))
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as error:
        raise _InitFault(_fault("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {error}"))
    except SyntaxError as error:
        trace = [f'  File "{error.filename}" Line {error.lineno}\n    {error.text}']
        raise _InitFault(_fault("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {error}", trace))
    except Exception as error:  # an error at the module's top level: the learner's own error, as AWS reports it
        raise _InitFault(error_payload(error))
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise _InitFault(_fault("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"))


class _InitFault(Exception):
    def __init__(self, payload: dict):
        super().__init__(payload["errorMessage"])
        self.payload = payload


def _log_error(payload: dict) -> None:
    """The runtime logs an unhandled error as one record: `[ERROR] Type: message` and the traceback."""
    lines = "".join(payload["stackTrace"])
    text = f"[ERROR] {payload['errorType']}: {payload['errorMessage']}\nTraceback (most recent call last):\n{lines}"
    sys.stdout.write(text.rstrip("\n").replace("\n", "\r") + "\n")


def _end_log(request_id: str) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, f"{END_MARK}{request_id}\n".encode())


def invoke(handler, invocation: dict, request_filter: _RequestIdFilter) -> dict:
    request_id = invocation["id"]
    request_filter.request_id = request_id
    try:
        event = json.loads(invocation["event"]) if invocation["event"] else {}
    except ValueError as error:  # Lambda refuses such payloads before they reach a runtime; a safety net
        return {"error": _fault("Runtime.UnmarshalError", f"Unable to unmarshal input: {error}")}
    try:
        result = handler(event, LambdaContext(invocation))
    except Exception as error:
        payload = error_payload(error, request_id)
        _log_error(payload)
        return {"error": payload}
    try:
        return {"result": json.dumps(result)}
    except (TypeError, ValueError) as error:
        payload = _fault("Runtime.MarshalError", f"Unable to marshal response: {error}")
        _log_error(payload)
        return {"error": payload}


def peak_memory_mb(process: str = "self") -> int:
    """VmHWM: the peak resident memory of a process image (of this one by default; getrusage's ru_maxrss would
    carry the stack's own peak over from before exec)."""
    try:
        with open(f"/proc/{process}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except (OSError, IndexError, ValueError):
        pass
    return 0


def main(argv: list[str]) -> int:
    die_with_parent()
    requests = os.fdopen(int(argv[1]), "rb", buffering=0)
    responses = os.fdopen(int(argv[2]), "wb", buffering=0)
    os.set_inheritable(int(argv[1]), False)  # a process the handler starts must not hold the protocol open
    os.set_inheritable(int(argv[2]), False)
    # /var/task first, then the layers' /opt/python folders, then the runtime's own packages (boto3)
    sys.path[:0] = json.loads(argv[4])
    request_filter = _install_logging()
    try:
        handler = load_handler(argv[3])
    except _InitFault as fault:
        _log_error(fault.payload)
        _end_log("init")
        write_message(responses, {"init_error": fault.payload})
        return 1
    _end_log("init")
    write_message(responses, {"ready": True})
    while (invocation := read_message(requests)) is not None:
        answer = invoke(handler, invocation, request_filter)
        _end_log(invocation["id"])
        answer["peak_mb"] = peak_memory_mb()
        write_message(responses, answer)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
