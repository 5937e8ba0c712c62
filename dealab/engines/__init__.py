"""Engines own the data-plane behaviours labs are graded on. Each is one package with one Engine class
(the base is on the shared floor, `dealab.wire.engine`); this module lists them in gateway order and loads
them. The stack imports engines only through here.

An engine is imported and built on the first request for a service it takes (or its first admin call), so a
stack starts, and stays while idle, with only the engines its learner has used: most labs touch a handful of the
services. Engines marked FROM_START are built with the stack: those that take every call (CloudTrail, faults,
IAM), those an S3 request reaches anyway, and those others count on from the start (the clock's timers, the
CloudWatch engine that sends every engine's metrics and service events). An engine once built in a state folder
is built at every later start of that folder, before any request: whatever it armed (a schedule, a rotation, a
poller, a buffered delivery) is armed again from its saved state exactly as when every engine loaded at start.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass

from dealab.wire.engine import Engine, EngineContext
from dealab.wire.store import JsonFile

FROM_START = None
# The engines built in a state folder so far (names): each is built again at the folder's next start.
USED_FILE = "engines-used.json"


@dataclass(frozen=True)
class EngineEntry:
    name: str  # Engine.name: its state folder's name too
    spec: str  # module:Class
    services: tuple[str, ...] | None  # the services whose requests build it (its operations' services); FROM_START: built at start
    admin: tuple[str, ...] = ()  # its admin endpoints (under /_dealab/), which build it too


# Gateway order: an engine earlier in the list sees a request before the ones after it.
ENGINES = (
    # first: it acts on nothing, and sees the answer the caller gets from all the others (a fault, a denial)
    EngineEntry("cloudtrail", "dealab.engines.cloudtrail:CloudTrailEngine", FROM_START),
    EngineEntry("faults", "dealab.engines.faults:FaultsEngine", FROM_START, ("faults",)),  # first to act: a fault must strike before any engine acts
    # before validation: AWS authorizes a call before it reads its parameters; after faults and cloudtrail, which
    # strike and record denied calls too. It evaluates bucket policies for s3access (one evaluator)
    EngineEntry("iam", "dealab.engines.iam:IamEngine", FROM_START),
    EngineEntry("validation", "dealab.engines.validation:ValidationEngine", FROM_START),  # refuses what AWS refuses before any engine acts on it
    # after iam (AWS checks IAM, then Lake Formation); before athena and glue: it filters a principal's GetTable before
    # any engine answers, and sees the answer of every catalog write (default grants), its callers' and engines' alike
    EngineEntry("lakeformation", "dealab.engines.lakeformation:LakeFormationEngine", ("glue", "lakeformation")),
    EngineEntry("s3access", "dealab.engines.s3access:S3AccessEngine", FROM_START),  # the door asks it about anonymous requests
    # before clock: sees the answer of a RestoreObject the clock engine gives; listens to the clock's object notices
    EngineEntry("s3notify", "dealab.engines.s3notify:S3NotifyEngine", FROM_START),
    EngineEntry("clock", "dealab.engines.clock:ClockEngine", FROM_START, ("clock", "storage")),  # the lab clock: lifecycle, TTL, restores
    EngineEntry("athena", "dealab.engines.athena:AthenaEngine", ("athena", "glue"), ("athena/reads",)),
    # Serverless, clusters' endpoints, the Data API on DuckDB, COPY/UNLOAD
    EngineEntry("redshift", "dealab.engines.redshift:RedshiftEngine", ("redshift", "redshift-data", "redshift-serverless")),
    EngineEntry("kinesis", "dealab.engines.kinesis:KinesisEngine", ("kinesis",)),
    EngineEntry("firehose", "dealab.engines.firehose:FirehoseEngine", ("firehose",), ("firehose",)),
    EngineEntry("glue", "dealab.engines.glue:GlueEngine", ("glue",), ("glue",)),
    EngineEntry("dataquality", "dealab.engines.dataquality:DataQualityEngine", ("glue",)),  # Glue Data Quality: the backend has none
    # Macie jobs, data identifiers and findings: the backend keeps only the session
    EngineEntry("macie", "dealab.engines.macie:MacieEngine", ("macie2",)),
    EngineEntry("stepfunctions", "dealab.engines.stepfunctions:StepFunctionsEngine", ("stepfunctions",)),
    EngineEntry("lambda", "dealab.engines.awslambda:LambdaEngine", ("lambda",), ("lambda/workers",)),
    # Secrets Manager rotation: invokes the rotation function through the Lambda engine
    EngineEntry("secrets", "dealab.engines.secrets:SecretsEngine", ("secretsmanager",), ("secrets/rotations",)),
    EngineEntry("eventsources", "dealab.engines.eventsources:EventSourcesEngine", ("lambda",)),  # polls SQS, Kinesis and DynamoDB streams for Lambda mappings
    EngineEntry("sns", "dealab.engines.sns:SnsEngine", ("sns",)),  # delivers to lambda subscribers after the backend accepted a Publish
    # after s3access: an S3 write a policy denies sends no event; listens to the clock's object notices
    EngineEntry("events", "dealab.engines.events:EventsEngine", FROM_START),
    # SQS and DynamoDB usage metrics, counted from the answers of calls that got past faults
    EngineEntry("usage", "dealab.engines.usage:UsageEngine", ("dynamodb", "sqs")),
    # alarms: evaluates datapoints, sends alarm actions; sends every engine's metrics and service events
    EngineEntry("cloudwatch", "dealab.engines.cloudwatch:CloudWatchEngine", FROM_START),
    EngineEntry("logs", "dealab.engines.logs:LogsEngine", ("logs",)),  # Logs Insights, metric/subscription filters, retention, exports
)
ENGINE_CLASSES = tuple(entry.spec for entry in ENGINES)
ENGINE_NAMES = tuple(entry.name for entry in ENGINES)


def engine_class(spec: str) -> type[Engine]:
    module_name, _, class_name = spec.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def engine_classes(names: tuple[str, ...] = ENGINE_CLASSES) -> list[type[Engine]]:
    return [engine_class(spec) for spec in names]


def load_engines(context: EngineContext, names: tuple[str, ...] = ENGINE_CLASSES) -> list[Engine]:
    """Every engine, built now (benches and tests that want the whole gateway at once)."""
    return [engine(context) for engine in engine_classes(names)]


def services_taken(engine: type[Engine]) -> set[str]:
    """The services an engine's operations table names (ANY_OPERATION: every service)."""
    return {service for service, _ in engine.operations}


class StackEngines:
    """A stack's engines in gateway order, each built when first needed (see the module's docstring).
    `in_order` is the list of those built so far; it is replaced, never changed, so a request reads it unlocked."""

    def __init__(self, context: EngineContext, entries: tuple[EngineEntry, ...] = ENGINES):
        self.context = context
        self._entries = entries
        self._lock = threading.RLock()
        self._built: dict[str, Engine] = {}
        self._claimed: set[str] = set()  # built or being built (an engine's own start may call its own service)
        self._used_file = JsonFile(context.state_dir / USED_FILE)
        self._used: list[str] = self._used_file.load([])
        # the services and admin endpoints some unbuilt engine waits for: the only requests that take the lock
        self._waiting_services: frozenset[str] = frozenset()
        self._waiting_admin: frozenset[str] = frozenset()
        self.in_order: list[Engine] = []
        self._build([entry for entry in entries if entry.services is FROM_START or entry.name in self._used])

    def for_service(self, service: str | None) -> list[Engine]:
        if service in self._waiting_services:
            self._build([entry for entry in self._entries if entry.services is not FROM_START and service in entry.services])
        return self.in_order

    def for_admin(self, endpoint: str) -> list[Engine]:
        if endpoint in self._waiting_admin:
            self._build([entry for entry in self._entries if endpoint in entry.admin])
        return self.in_order

    def named(self, name: str) -> Engine:
        self._build([entry for entry in self._entries if entry.name == name])
        return self._built[name]

    def _build(self, entries: list[EngineEntry]) -> None:
        with self._lock:
            try:
                for entry in entries:
                    if entry.name not in self._claimed:
                        self._build_one(entry)
            finally:
                self.in_order = [self._built[entry.name] for entry in self._entries if entry.name in self._built]
                unbuilt = [entry for entry in self._entries if entry.name not in self._claimed]
                self._waiting_services = frozenset(service for entry in unbuilt for service in entry.services or ())
                self._waiting_admin = frozenset(endpoint for entry in unbuilt for endpoint in entry.admin)

    def _build_one(self, entry: EngineEntry) -> None:
        self._claimed.add(entry.name)
        try:
            self._built[entry.name] = engine_class(entry.spec)(self.context)
        except BaseException:
            self._claimed.discard(entry.name)  # the next request for it tries again
            raise
        if entry.services is not FROM_START and entry.name not in self._used:
            self._used = [*self._used, entry.name]
            self._used_file.save(self._used)
