"""Distributed Map's two S3 ends, finished where moto's interpreter leaves them half done.

- ItemReader `s3:listObjectsV2`: moto reads one page and hands on boto3's own entries (a KeyError when nothing
  matches). Here every page is read, and each item has the shape AWS documents for a listed object:
  `Etag`, `Key`, `LastModified` (epoch seconds), `Size`, `StorageClass`. (`s3:getObject` with a JSON array or
  a CSV, header row or given headers, is moto's and works as AWS's.)
- ResultWriter `s3:putObject`: moto writes a manifest that lists no files. Here the children's results are
  written as AWS writes them: `<Prefix>/<map run id>/SUCCEEDED_0.json`, a JSON array with one entry per child
  execution (ExecutionArn, Name, Input, Output, Status, StartDate, StopDate, StateMachineArn, ...), and the
  manifest lists it with its size. `Prefix` may be left out, as on AWS.

Not done: moto's map run fails at the first failed child (ToleratedFailureCount/Percentage are not applied), so
there is never a FAILED_0.json or PENDING_0.json; `Input` is the item as the reader gave it (before an
ItemSelector); ResultWriter's WriterConfig (JSONL output, COMPACT/FLATTEN) and ItemReader's JSONL, MANIFEST and
PARQUET input types are not supported (moto refuses the definition).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from dealab.wire import labtime

ITEMS_ATTRIBUTE = "dealab_items"  # on a MapRunRecord: (the items its children ran on, lab time it began)


def install() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.item_reader.eval import resource_eval_s3 as reader
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration import distributed_iteration_component as iteration
    from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import resource_eval_s3 as writer

    def list_objects_v2(env, resource_runtime_part, state_credentials) -> None:
        s3 = reader.ResourceEvalS3._get_s3_client(resource_runtime_part=resource_runtime_part, state_credentials=state_credentials)
        parameters = env.stack.pop()
        env.stack.append([listed_item(entry) for page in s3.get_paginator("list_objects_v2").paginate(**parameters)
                          for entry in page.get("Contents", [])])

    def put_results(env, resource_runtime_part, state_credentials) -> None:
        parameters = env.stack.pop()
        outputs = env.stack.pop()
        s3 = writer.ResourceEvalS3._get_s3_client(resource_runtime_part=resource_runtime_part, state_credentials=state_credentials)
        record = env.map_run_record_pool_manager.get_all()[-1]
        items, started = getattr(record, ITEMS_ATTRIBUTE, ([], labtime.live_now()))
        bucket, folder = parameters["Bucket"], result_folder(parameters.get("Prefix", ""), record.map_run_arn)
        children = child_results(record.map_run_arn, record.map_state_machine_arn, items, outputs, started, labtime.live_now())
        results_key, body = folder + "SUCCEEDED_0.json", json.dumps(children, indent=2).encode()
        s3.put_object(Bucket=bucket, Key=results_key, Body=body)
        manifest = {"DestinationBucket": bucket, "MapRunArn": record.map_run_arn,
                    "ResultFiles": {"FAILED": [], "PENDING": [], "SUCCEEDED": [{"Key": results_key, "Size": len(body)}]}}
        s3.put_object(Bucket=bucket, Key=folder + "manifest.json", Body=json.dumps(manifest, indent=2).encode())
        env.stack.append({"MapRunArn": record.map_run_arn, "ResultWriterDetails": {"Bucket": bucket, "Key": folder + "manifest.json"}})

    map_run = iteration.DistributedIterationComponent._map_run

    def map_run_keeping_items(self, env, eval_input) -> None:
        setattr(eval_input.map_run_record, ITEMS_ATTRIBUTE, (list(env.stack[-1]), labtime.live_now()))
        map_run(self, env, eval_input)

    reader.ResourceEvalS3._handle_list_objects_v2 = staticmethod(list_objects_v2)
    writer.ResourceEvalS3._handle_put_object = staticmethod(put_results)
    iteration.DistributedIterationComponent._map_run = map_run_keeping_items


def listed_item(entry: dict) -> dict:
    """A ListObjectsV2 entry (boto3's) as a distributed Map's child gets it."""
    return {"Etag": entry["ETag"], "Key": entry["Key"], "LastModified": int(entry["LastModified"].timestamp()),
            "Size": entry["Size"], "StorageClass": entry.get("StorageClass", "STANDARD")}


def result_folder(prefix: str, map_run_arn: str) -> str:
    """`<Prefix>/<map run id>/`: the run's id is the last part of its ARN."""
    prefix = prefix if not prefix or prefix.endswith("/") else prefix + "/"
    return f"{prefix}{map_run_arn.rsplit(':', 1)[1]}/"


def child_results(map_run_arn: str, machine_arn: str, items: list[Any], outputs: list[Any], started, stopped) -> list[dict]:
    """One SUCCEEDED_0.json entry per child execution, named as AWS names a distributed Map's children
    (`arn:aws:states:<region>:<account>:execution:<machine>/<map run label>:<id>`); `machine_arn`: the map
    run's own state machine (`<machine ARN>/<label>`)."""
    arn_head, run_resource = map_run_arn.split(":mapRun:")
    label = run_resource.rsplit(":", 1)[0]
    children = []
    for item, output in zip(items, outputs):
        name = str(uuid.uuid4())
        children.append({
            "ExecutionArn": f"{arn_head}:execution:{label}:{name}", "Input": json.dumps(item), "InputDetails": {"Included": True},
            "Name": name, "Output": json.dumps(output), "OutputDetails": {"Included": True}, "RedriveCount": 0,
            "RedriveStatus": "NOT_REDRIVABLE", "RedriveStatusReason": "Execution is SUCCEEDED and cannot be redriven",
            "StartDate": started.isoformat(timespec="milliseconds") + "Z", "StateMachineArn": machine_arn, "Status": "SUCCEEDED",
            "StopDate": stopped.isoformat(timespec="milliseconds") + "Z",
        })
    return children
