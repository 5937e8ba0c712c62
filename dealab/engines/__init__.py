"""Engines own the data-plane behaviours labs are graded on. Each is one package with one Engine class
(the base is on the shared floor, `dealab.wire.engine`); this module lists them in gateway order and loads
them. The stack imports engines only through here.
"""

from __future__ import annotations

import importlib

from dealab.wire.engine import Engine, EngineContext

# Gateway order: an engine earlier in the list sees a request before the ones after it.
ENGINE_CLASSES = (
    # first: it acts on nothing, and sees the answer the caller gets from all the others (a fault, a denial)
    "dealab.engines.cloudtrail:CloudTrailEngine",
    "dealab.engines.faults:FaultsEngine",  # first to act: a fault must strike before any engine acts
    # before validation: AWS authorizes a call before it reads its parameters; after faults and cloudtrail, which
    # strike and record denied calls too. It evaluates bucket policies for s3access (one evaluator)
    "dealab.engines.iam:IamEngine",
    "dealab.engines.validation:ValidationEngine",  # refuses what AWS refuses before any engine acts on it
    # after iam (AWS checks IAM, then Lake Formation); before athena and glue: it filters a principal's GetTable before
    # any engine answers, and sees the answer of every catalog write (default grants), its callers' and engines' alike
    "dealab.engines.lakeformation:LakeFormationEngine",
    "dealab.engines.s3access:S3AccessEngine",
    "dealab.engines.s3notify:S3NotifyEngine",  # before clock: sees the answer of a RestoreObject the clock engine gives
    "dealab.engines.clock:ClockEngine",
    "dealab.engines.athena:AthenaEngine",
    "dealab.engines.redshift:RedshiftEngine",  # Serverless, clusters' endpoints, the Data API on DuckDB, COPY/UNLOAD
    "dealab.engines.kinesis:KinesisEngine",
    "dealab.engines.firehose:FirehoseEngine",
    "dealab.engines.glue:GlueEngine",
    "dealab.engines.dataquality:DataQualityEngine",  # Glue Data Quality: the backend has none
    "dealab.engines.macie:MacieEngine",  # Macie jobs, data identifiers and findings: the backend keeps only the session
    "dealab.engines.stepfunctions:StepFunctionsEngine",
    "dealab.engines.awslambda:LambdaEngine",
    "dealab.engines.secrets:SecretsEngine",  # Secrets Manager rotation: invokes the rotation function through the Lambda engine
    "dealab.engines.eventsources:EventSourcesEngine",  # polls SQS, Kinesis and DynamoDB streams for Lambda mappings
    "dealab.engines.sns:SnsEngine",  # delivers to lambda subscribers after the backend accepted a Publish
    "dealab.engines.events:EventsEngine",  # after s3access: an S3 write a policy denies sends no event
    "dealab.engines.usage:UsageEngine",  # SQS and DynamoDB usage metrics, counted from the answers of calls that got past faults
    "dealab.engines.cloudwatch:CloudWatchEngine",  # alarms: evaluates datapoints, sends alarm actions; flushes engines' metrics
    "dealab.engines.logs:LogsEngine",  # Logs Insights, metric/subscription filters, retention, exports
)


def engine_classes(names: tuple[str, ...] = ENGINE_CLASSES) -> list[type[Engine]]:
    classes = []
    for spec in names:
        module_name, _, class_name = spec.partition(":")
        classes.append(getattr(importlib.import_module(module_name), class_name))
    return classes


def load_engines(context: EngineContext, names: tuple[str, ...] = ENGINE_CLASSES) -> list[Engine]:
    return [engine(context) for engine in engine_classes(names)]
