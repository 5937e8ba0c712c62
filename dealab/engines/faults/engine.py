"""The faults engine sees every request first and fails a seeded share of those its rules match.

Batch writes that AWS fails entry by entry (Kinesis PutRecords, Firehose PutRecordBatch) keep their 200:
the chosen entries come back with ErrorCode/ErrorMessage and the failed count, and only the others go on
to the backend, so a producer that drops its failed entries really loses them. Every other matching call
fails whole, with the service's throttling or 5xx error in its protocol's shape.

Rules live in <state_dir>/faults/rules.json and survive restarts (their draw counters start again, as they
do whenever a rule is set); /_dealab/faults sets, lists and clears. Calls engines make (X-Dealab-Engine)
and services whose error shape dealab cannot speak are never failed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading

from botocore import xform_name
from botocore.exceptions import ClientError

from dealab.wire import metrics
from dealab.wire.engine import ANY_OPERATION, Engine, EngineContext
from dealab.engines.faults import errors
from dealab.engines.faults.rules import Rule, RuleError, parse
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.wire.store import JsonFile

log = logging.getLogger("dealab.faults")


class FaultsEngine(Engine):
    name = "faults"
    operations = {(ANY_OPERATION, ANY_OPERATION): "_strike"}
    passes_engine_calls = True  # faults strike learners' calls; an engine's own work is not the exercise

    def __init__(self, context: EngineContext):
        super().__init__(context)
        self._lock = threading.Lock()
        self._path = context.state_dir / self.name / "rules.json"
        self._file = JsonFile(self._path)
        self._rules: dict[str, Rule] = self._load()

    # --- requests -------------------------------------------------------------------------------------

    def _strike(self, request: AwsRequest) -> AwsResponse:
        if not self._rules:
            return request.send_on()
        rule = self._rule_for(request)
        if rule is None or not errors.supports(request.service):
            return request.send_on()  # a service whose error shape dealab cannot speak is never failed
        batch = errors.PARTIAL_BATCHES.get((request.service, request.operation))
        if batch is not None:
            return self._partial_batch(request, rule, batch)
        with self._lock:
            fails = rule.draw()
        _count_throttles(request, rule, int(fails))
        return errors.error_response(rule.error, request.service) if fails else request.send_on()

    def _rule_for(self, request: AwsRequest) -> Rule | None:
        with self._lock:
            matching = [rule for rule in self._rules.values() if rule.matches(request.service, request.operation)]
        # The most specific rule wins: service:Operation before service:* before *:*.
        return max(matching, key=lambda r: (r.service != "*", r.operation != "*"), default=None)

    def _partial_batch(self, request: AwsRequest, rule: Rule, batch: errors.PartialBatch) -> AwsResponse:
        entries = request.json.get(batch.entries)
        if not batch.request_is_valid(entries):
            return request.send_on()  # the service refuses the whole request with its own error
        with self._lock:
            failing = {index for index in range(len(entries)) if rule.draw()}
        if not failing:
            return request.send_on()
        _count_throttles(request, rule, len(failing))
        survivors = [entry for index, entry in enumerate(entries) if index not in failing]
        if survivors:
            body = json.dumps({**request.json, batch.entries: survivors}).encode()
            response = dataclasses.replace(request, body=body).send_on()
            if response.status >= 300:
                return response
            answered = json.loads(response.read())
        else:
            refusal = self._missing_target(request, batch)
            if refusal is not None:
                return refusal
            answered = {batch.failed_count: 0, batch.results: []}
        code, template = batch.entry_errors[rule.error]
        shard_of = self._shard_finder(request) if "{shard}" in template else (lambda entry: "")
        backend_results = iter(answered.get(batch.results, []))
        results = []
        for index, entry in enumerate(entries):
            if index in failing:
                results.append({"ErrorCode": code, "ErrorMessage": template.format(stream=_stream_name(request.json), shard=shard_of(entry))})
            else:
                results.append(next(backend_results))
        answered[batch.results] = results
        answered[batch.failed_count] = answered.get(batch.failed_count, 0) + len(failing)
        return AwsResponse.json(answered)

    def _missing_target(self, request: AwsRequest, batch: errors.PartialBatch) -> AwsResponse | None:
        """With every entry failed nothing reaches the backend; an unknown stream must still be an error."""
        service, operation, params = batch.exists_check
        arguments = {param: request.json[member] for param, member in params.items() if member in request.json}
        client = self.own_client(service, request.region)
        try:
            getattr(client, xform_name(operation))(**arguments)
        except ClientError as error:
            details = error.response["Error"]
            return AwsResponse.json_error(details["Code"], details.get("Message", ""), error.response["ResponseMetadata"]["HTTPStatusCode"])
        return None

    def _shard_finder(self, request: AwsRequest):
        """entry → the id of the open shard its Kinesis record maps to, for AWS's throttling message."""
        stream = {key: request.json[key] for key in ("StreamName", "StreamARN") if key in request.json}
        try:
            shards = self.own_client("kinesis", request.region).list_shards(**stream)["Shards"]
        except ClientError:
            shards = []
        open_ranges = [(int(s["HashKeyRange"]["StartingHashKey"]), int(s["HashKeyRange"]["EndingHashKey"]), s["ShardId"])
                       for s in shards if "EndingSequenceNumber" not in s["SequenceNumberRange"]]

        def shard_of(entry: dict) -> str:
            explicit = entry.get("ExplicitHashKey")
            try:
                hash_key = int(explicit) if explicit else int(hashlib.md5(entry.get("PartitionKey", "").encode()).hexdigest(), 16)
            except ValueError:
                return "unknown"
            return next((shard for low, high, shard in open_ranges if low <= hash_key <= high), "unknown")

        return shard_of

    # --- admin ----------------------------------------------------------------------------------------

    def admin_routes(self):
        return {"faults": self._admin}

    def _admin(self, request: AwsRequest) -> AwsResponse:
        """GET lists the rules; POST {"action": "set", "rules": [...]} or {"action": "clear", "targets": [...]}."""
        if request.method == "POST":
            action = request.json.get("action")
            try:
                if action == "set":
                    self.set_rules(request.json.get("rules") or [])
                elif action == "clear":
                    self.clear(request.json.get("targets") or [])
                else:
                    return AwsResponse.json_error("InvalidAction", f"action must be 'set' or 'clear', not {action!r}")
            except RuleError as error:
                return AwsResponse.json_error("InvalidFaultRule", str(error))
        with self._lock:
            return AwsResponse.json({"rules": [rule.to_dict() for rule in self._rules.values()]})

    def set_rules(self, specs: list[str]) -> None:
        if isinstance(specs, str):
            specs = [specs]
        rules = [parse(spec) for spec in specs]
        for rule in rules:
            if not errors.supports(rule.service):
                raise RuleError(f"dealab cannot fail {rule.service} calls: its protocol "
                                f"'{errors.protocol_of(rule.service) or 'unknown service'}' is not one it answers in")
        with self._lock:
            for rule in rules:
                self._rules[rule.target] = rule
            self._save()
        log.info("fault rules: %s", [rule.spec() for rule in self._rules.values()])

    def clear(self, targets: list[str]) -> None:
        with self._lock:
            if not targets:
                self._rules.clear()
            for target in targets:
                service, _, operation = target.partition(":")
                self._rules.pop(f"{service.lower()}:{operation}", None)
            self._save()

    # --- state ----------------------------------------------------------------------------------------

    def _load(self) -> dict[str, Rule]:
        specs = self._file.load([])  # unreadable rules are set aside (and logged) by the store
        rules = {}
        for spec in specs:
            try:
                rule = parse(spec)
            except RuleError as error:
                log.warning("ignoring fault rule %r from %s: %s", spec, self._path, error)
                continue
            rules[rule.target] = rule
        return rules

    def _save(self) -> None:
        self._file.save([rule.spec() for rule in self._rules.values()])

    def reset(self) -> None:
        self.clear([])


# An injected throttle counts where AWS counts a real one: (service, operation) → (namespace, metric, dimensions).
THROTTLE_METRICS = {
    ("kinesis", "PutRecord"): ("AWS/Kinesis", "WriteProvisionedThroughputExceeded", lambda p: {"StreamName": _stream_name(p)}),
    ("kinesis", "PutRecords"): ("AWS/Kinesis", "WriteProvisionedThroughputExceeded", lambda p: {"StreamName": _stream_name(p)}),
    **{("dynamodb", operation): ("AWS/DynamoDB", "ThrottledRequests", lambda p, operation=operation: {"TableName": p.get("TableName", ""), "Operation": operation})
       for operation in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchWriteItem", "BatchGetItem")},
}


def _count_throttles(request: AwsRequest, rule: Rule, refused: int) -> None:
    metric = THROTTLE_METRICS.get((request.service, request.operation))
    if refused and metric and rule.error == "throttling":
        namespace, name, dimensions = metric
        metrics.put(namespace, name, dimensions(request.json), refused, region=request.region)


def _stream_name(parameters: dict) -> str:
    return parameters.get("StreamName") or parameters.get("StreamARN", "").rpartition("/")[2] or parameters.get("DeliveryStreamName", "")

