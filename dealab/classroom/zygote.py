"""The classroom's zygote: one process that loads what every learner's stack loads, then forks each stack.

A learner's stack started as its own interpreter holds its own copy of moto, botocore's service models,
werkzeug and the rest (~180 MB each). Forked from this process, which has imported them and frozen them out of
the collector's reach (gc.freeze: a collection would write to every object's header and copy its page), a
stack shares those pages with the zygote and every other learner's stack until it writes to them.

What is loaded here is what holds no learner's secret: dealab.config reads the stack's key pair from the
environment when it is first imported, and a dozen modules copy it at their own import, so every dealab module
that reaches dealab.config is imported by the forked stack, after its environment is the learner's
(tests/test_classroom.py checks). Libraries that start threads when imported (DuckDB, Arrow's numpy) are not
loaded here either: a fork keeps only the thread that forks, and they load in the stack on first use, as in any
stack. The zygote stays single-threaded: it reads one order per line on stdin (a stack's argv, environment and
log file), forks, and answers the child's pid on stdout. It never waits for its children (SIGCHLD ignored: the
kernel reaps them), so a stack that dies is gone at once for the front door's supervisor.
`python -m dealab.classroom.zygote`, started by the front door (`Zygote` below).
"""

from __future__ import annotations

import gc
import importlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path

from dealab.stack.botodata import share_loaded_data

# What a stack loads that the zygote can load for all of them (see the module's docstring for what it cannot).
PRELOADED = (
    "werkzeug.serving", "moto.moto_server.werkzeug_app", "requests",
    "dealab.stack.backend", "dealab.stack.motofast",  # moto's core, S3, DynamoDB and SQS models
    "moto.iam.models", "moto.iam.access_control", "moto.sts.models", "moto.kms.models", "moto.s3.responses",
    "moto.glue.models", "moto.athena.models", "moto.logs.models", "moto.events.models", "moto.cloudwatch.models",
    "moto.cloudtrail.models", "moto.awslambda.models", "moto.sns.models", "moto.stepfunctions.models",
    "moto.firehose.models", "moto.kinesis.models", "moto.secretsmanager.models",
    "boto3", "sqlglot", "sqlglot.dialects.duckdb", "sqlglot.dialects.presto", "sqlglot.dialects.trino",
)
# Services whose botocore models a stack reads on its first requests (the models are the largest part of a
# client); read here into the one cache every botocore loader of the process shares (dealab.stack.botodata).
PRELOADED_MODELS = ("s3", "sts", "iam", "logs", "events", "cloudwatch", "cloudtrail", "glue", "athena", "lakeformation", "lambda", "sqs",
                    "dynamodb", "kms", "kinesis", "firehose", "sns", "secretsmanager", "stepfunctions")
# Imported only by the stack itself, after the fork: it reads the learner's keys (see the module's docstring).
NEVER_PRELOADED = "dealab.config"


def preload() -> None:
    share_loaded_data()
    for name in PRELOADED:
        importlib.import_module(name)
    _read_service_models()
    if NEVER_PRELOADED in sys.modules:
        raise RuntimeError(f"the zygote loaded {NEVER_PRELOADED}: forked stacks would carry its key pair, not their learner's")
    gc.collect()
    gc.freeze()


def _read_service_models() -> None:
    """Fills the caches a stack fills on its first requests with botocore's models: the gateway's (naming
    operations), moto's (its own session and models), and boto3's default session (the engines' clients)."""
    import boto3
    from moto.core import base_backend
    from moto.core import utils as moto_utils

    from dealab.wire import operations

    boto3.setup_default_session()
    loader = boto3.DEFAULT_SESSION._session.get_component("data_loader")
    moto_session = base_backend.AccountSpecificBackend.get_session()
    for partition in moto_session.get_available_partitions():
        moto_session.get_available_regions("s3", partition_name=partition)
    boto3.DEFAULT_SESSION._session.get_component("endpoint_resolver")
    for service in PRELOADED_MODELS:
        loader.load_service_model(service, "service-2")
        loader.load_service_model(service, "paginators-1")
        operations.service_model(service)
        operations._rest_routes(service)
        moto_utils.get_service_model(service)


def serve(orders, answers) -> None:
    """Forks a stack for each order until stdin closes."""
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    for line in orders:
        order = json.loads(line)
        if threading.active_count() != 1:  # a fork keeps only the forking thread: a lock another held stays held
            raise RuntimeError("the zygote must stay single-threaded to fork")
        answers.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _become_stack(order)
        answers.write(json.dumps({"pid": pid}) + "\n")
        answers.flush()


def _become_stack(order: dict) -> None:
    """In the child: the learner's stack, as `python -m dealab.stack.server` would run it. Never returns."""
    code = 1
    try:
        os.setsid()  # as start_new_session: the front door's signals and terminal are not the stack's
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the stack waits for its own children (Spark, Lambda workers)
        log = os.open(order["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        nothing = os.open(os.devnull, os.O_RDONLY)
        os.dup2(nothing, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(nothing)
        os.close(log)
        os.environ.clear()
        os.environ.update(order["env"])
        random.seed()  # the zygote's generator state is every child's: each draws its own
        from dealab.stack import server

        code = server.main(order["argv"])
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class Zygote:
    """The front door's handle on its zygote: started on the first stack it is asked for (or by `start`), and
    started again if it is found dead (the stacks it forked live on: they are their own sessions)."""

    def __init__(self, log: Path, env: dict[str, str]):
        self._log, self._env = log, env
        self._process: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            self._running()

    def fork(self, argv: list[str], env: dict[str, str], log: Path) -> int:
        """A new stack process running `python -m dealab.stack.server argv` with `env`, its output in `log`."""
        order = json.dumps({"argv": argv, "env": env, "log": str(log)}) + "\n"
        with self._lock:
            for attempt in (1, 2):
                process = self._running()
                try:
                    process.stdin.write(order.encode())
                    process.stdin.flush()
                    answer = process.stdout.readline()
                except (BrokenPipeError, OSError):
                    answer = b""
                if answer:
                    return json.loads(answer)["pid"]
                self._stop()
        raise RuntimeError(f"the classroom's zygote exited; see {self._log}")

    def close(self) -> None:
        with self._lock:
            self._stop()

    def _running(self) -> subprocess.Popen:
        if self._process is not None and self._process.poll() is None:
            return self._process
        self._log.parent.mkdir(parents=True, exist_ok=True)
        with self._log.open("ab") as log:
            self._process = subprocess.Popen([sys.executable, "-m", "dealab.classroom.zygote"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                             stderr=log, env=self._env, start_new_session=True)
        return self._process

    def _stop(self) -> None:
        if self._process is None:
            return
        try:
            self._process.stdin.close()  # its loop ends; the stacks it forked go on
        except OSError:  # it is gone already, with an order unsent
            pass
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process.stdout.close()
        self._process = None


def main() -> int:
    preload()
    serve(sys.stdin, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
