"""Lab 04 checks: the learner's lifecycle rules, judged by what they do.

The rules are copied onto a fresh probe bucket, which is seeded with the learner's plan (ages made real by
moving the lab clock), then the clock is moved checkpoint by checkpoint over a year; at each one every
object's storage class or absence, every key's version count and every upload is compared with what the
lab's requirements say must have happened by then. The probe is deleted afterwards. Grading moves the lab
clock forward by about two years.
"""

from __future__ import annotations

import datetime
import uuid
import weakref
from dataclasses import dataclass, field

from botocore.exceptions import ClientError

from dealab import pricing
from dealab.datasets import lifecycle_lab as plan_rules
from dealab.labs import empty_bucket
from grader.core import Fail, LabContext, check

BUCKET = plan_rules.BUCKET
# Days after seeding at which the probe is looked at (each at noon UTC, away from lifecycle's midnights).
CHECKPOINT_DAYS = (1, 8, 31, 61, 91, 181, 366, 400)
DOCS = "https://docs.aws.amazon.com/AmazonS3/latest/userguide"
UTC = datetime.timezone.utc


@dataclass
class Observation:
    moment: datetime.datetime
    current: dict[str, str | None] = field(default_factory=dict)  # key → storage class, None when expired
    versions: dict[str, int] = field(default_factory=dict)
    open_uploads: set[str] = field(default_factory=set)


@dataclass
class ProbeRun:
    seeded_at: datetime.datetime
    created: dict[str, list[datetime.datetime]]  # key → version creation times, oldest first
    observations: list[Observation]
    seeded_storage: dict  # the storage report read once the probe was seeded
    final_storage: dict  # the storage report read at the last checkpoint
    probe: str


_runs: weakref.WeakKeyDictionary[LabContext, ProbeRun] = weakref.WeakKeyDictionary()


def _clock_now(ctx: LabContext) -> datetime.datetime:
    return datetime.datetime.fromisoformat(ctx.admin("clock")["now"])


def _learner_rules(ctx: LabContext) -> dict:
    s3 = ctx.client("s3")
    try:
        configuration = s3.get_bucket_lifecycle_configuration(Bucket=BUCKET)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        raise Fail(f"bucket '{BUCKET}' has no lifecycle configuration ({code}), so nothing would ever expire or move") from None
    return configuration


def _observe(ctx: LabContext, probe: str, plan: dict) -> Observation:
    s3 = ctx.client("s3")
    seen = Observation(_clock_now(ctx))
    for spec in plan["objects"]:
        try:
            seen.current[spec["key"]] = s3.head_object(Bucket=probe, Key=spec["key"]).get("StorageClass", "STANDARD")
        except ClientError:
            seen.current[spec["key"]] = None
        listed = s3.list_object_versions(Bucket=probe, Prefix=spec["key"]).get("Versions", [])
        seen.versions[spec["key"]] = sum(1 for version in listed if version["Key"] == spec["key"])
    seen.open_uploads = {upload["Key"] for upload in s3.list_multipart_uploads(Bucket=probe).get("Uploads", [])}
    return seen


def _empty_and_delete(s3, bucket: str) -> None:
    empty_bucket(s3, bucket)
    s3.delete_bucket(Bucket=bucket)


def probe_run(ctx: LabContext) -> ProbeRun:
    """Runs the learner's rules over a probe seeded with their plan (once per grading)."""
    if ctx in _runs:
        return _runs[ctx]
    configuration = _learner_rules(ctx)
    s3 = ctx.client("s3")
    plan = ctx.dataset
    probe = f"{BUCKET}-probe-{uuid.uuid4().hex[:8]}"

    def copy_rules() -> None:
        extra = {}
        if configuration.get("TransitionDefaultMinimumObjectSize"):
            extra["TransitionDefaultMinimumObjectSize"] = configuration["TransitionDefaultMinimumObjectSize"]
        try:
            s3.put_bucket_lifecycle_configuration(Bucket=probe, LifecycleConfiguration={"Rules": configuration["Rules"]}, **extra)
        except ClientError as error:
            raise Fail(f"the rules of '{BUCKET}' cannot be applied to a fresh bucket: {error.response['Error'].get('Message', error)}") from None

    try:
        created = plan_rules.seed_bucket(s3, lambda by: ctx.admin("clock", {"action": "advance", "by": by}), probe, plan, ctx.seed, copy_rules)
        # Seeding ends with the youngest objects put after its last clock move, and lifecycle acts only when
        # the clock moves: a move of no time carries out anything already due, so the bucket is as the
        # rules leave it at seeding.
        ctx.admin("clock", {"action": "advance", "by": "0s"})
        seeded_at = _clock_now(ctx)
        seeded_storage = ctx.admin("storage")
        observations = [_observe(ctx, probe, plan)]
        for days in CHECKPOINT_DAYS:
            noon = plan_rules.due(seeded_at, days) + datetime.timedelta(hours=12)
            ctx.admin("clock", {"action": "set", "to": noon.isoformat()})
            observations.append(_observe(ctx, probe, plan))
        final_storage = ctx.admin("storage")
    finally:
        try:
            _empty_and_delete(s3, probe)
        except ClientError:
            pass
    _runs[ctx] = ProbeRun(seeded_at, created, observations, seeded_storage, final_storage, probe)
    return _runs[ctx]


def _specs(ctx: LabContext, prefix: str, retention: str = plan_rules.STANDARD_RETENTION) -> list[dict]:
    return [s for s in ctx.dataset["objects"] if s["key"].startswith(prefix) and s["retention"] == retention]


def _day(run: ProbeRun, seen: Observation) -> int:
    return (seen.moment - run.seeded_at).days


def _compare_current(ctx: LabContext, specs: list[dict], what, describe: str) -> str:
    """`what(expected, observed)` → True when the difference matters to this check."""
    run = probe_run(ctx)
    for seen in run.observations:
        for spec in specs:
            created = run.created[spec["key"]][-1]
            expected = plan_rules.expected_current(spec, created, seen.moment)
            observed = seen.current[spec["key"]]
            if what(expected, observed):
                age = (seen.moment - created).days
                raise Fail(
                    f"{spec['key']} ({spec['size']:,} bytes) at {age} days old: expected "
                    f"{expected or 'expired (a delete marker)'}, found {observed or 'expired (a delete marker)'}, "
                    "which the lab's retention policy does not allow"
                )
    return f"{len(specs)} objects {describe} at each of {len(run.observations)} checkpoints over {CHECKPOINT_DAYS[-1]} days"


@check("L04-01", "The lab bucket keeps versions and has lifecycle rules", points=1, task="2.3",
       hints=("A bucket's lifecycle configuration is one document holding all its rules; S3 applies the enabled ones "
              "to every object they select, once a day.",
              "s3 put_bucket_lifecycle_configuration on dea-lifecycle-lab (it replaces the whole configuration: send "
              "every rule in one call); get_bucket_lifecycle_configuration shows what is in force.",
              "s3.put_bucket_lifecycle_configuration(Bucket='dea-lifecycle-lab', LifecycleConfiguration={'Rules': rules}), "
              "each rule with an ID, Status='Enabled' and a Filter."),
       docs=f"{DOCS}/object-lifecycle-mgmt.html")
def bucket_and_rules(ctx: LabContext) -> str:
    try:
        status = ctx.client("s3").get_bucket_versioning(Bucket=BUCKET).get("Status")
    except ClientError as error:
        raise Fail(f"bucket '{BUCKET}' cannot be read ({error.response['Error']['Code']}); `make lab-4` creates it") from None
    if status != "Enabled":
        raise Fail(f"bucket '{BUCKET}': versioning is {status or 'off'}, expected Enabled")
    rules = _learner_rules(ctx)["Rules"]
    enabled = [rule.get("ID", "?") for rule in rules if rule.get("Status") == "Enabled"]
    if not enabled:
        raise Fail(f"bucket '{BUCKET}': every lifecycle rule is Disabled")
    return f"bucket '{BUCKET}' is versioned and has {len(enabled)} enabled rules: {', '.join(enabled)}"


@check("L04-02", "raw/ objects move to Standard-IA at 30 days and Glacier Instant Retrieval at 90", points=3, task="2.3",
       hints=("Transitions move ageing objects to cheaper storage classes; days count from creation, rounded up to the "
              "next midnight UTC. By default S3 does not transition objects under 128 KiB.",
              "A rule's Transitions list, one entry per class (Days, StorageClass), in a rule whose Filter selects raw/ "
              "objects tagged retention=standard.",
              "'Filter': {'And': {'Prefix': 'raw/', 'Tags': [{'Key': 'retention', 'Value': 'standard'}]}}, "
              "'Transitions': [{'Days': 30, 'StorageClass': 'STANDARD_IA'}, {'Days': 90, 'StorageClass': 'GLACIER_IR'}]."),
       docs=f"{DOCS}/lifecycle-transition-general-considerations.html")
def raw_tiering(ctx: LabContext) -> str:
    return _compare_current(ctx, _specs(ctx, "raw/"), lambda expected, observed: expected is not None and observed is not None and expected != observed,
                            "in the storage class their age calls for")


@check("L04-03", "raw/ objects expire after 365 days", points=2, task="2.3",
       hints=("Expiration ends an object's life N days after it was created; in a versioned bucket it places a delete "
              "marker and the data becomes a noncurrent version.",
              "An Expiration action (Days) in the rule that selects raw/ objects tagged retention=standard; it must come "
              "after every transition of that rule.",
              "'Expiration': {'Days': 365} in the raw/ rule, next to its Transitions."),
       docs=f"{DOCS}/lifecycle-expire-general-considerations.html")
def raw_expiry(ctx: LabContext) -> str:
    return _compare_current(ctx, _specs(ctx, "raw/"), lambda expected, observed: (expected is None) != (observed is None),
                            "present until 365 days and expired after")


@check("L04-04", "tmp/ objects expire after 7 days", points=2, task="2.3",
       hints=("Scratch data should not outlive its use: an expiration rule on its prefix cleans it up by itself.",
              "A rule whose Filter selects tmp/ objects tagged retention=standard, with an Expiration action.",
              "{'ID': 'tmp-expiry', 'Status': 'Enabled', 'Filter': {'And': {'Prefix': 'tmp/', 'Tags': "
              "[{'Key': 'retention', 'Value': 'standard'}]}}, 'Expiration': {'Days': 7}}."),
       docs=f"{DOCS}/lifecycle-expire-general-considerations.html")
def tmp_expiry(ctx: LabContext) -> str:
    return _compare_current(ctx, _specs(ctx, "tmp/"), lambda expected, observed: (expected is None) != (observed is None),
                            "present until 7 days and expired after")


@check("L04-05", "Noncurrent versions expire after 30 days, the 3 newest kept", points=2, task="2.3",
       hints=("In a versioned bucket every overwrite keeps the old version, billed in full; only a noncurrent-version "
              "rule removes old versions, counting days from when each became noncurrent.",
              "NoncurrentVersionExpiration with NoncurrentDays and NewerNoncurrentVersions (how many newest noncurrent "
              "versions to keep whatever their age), in a rule over the whole bucket.",
              "'NoncurrentVersionExpiration': {'NoncurrentDays': 30, 'NewerNoncurrentVersions': 3}, with 'Filter': {'Prefix': ''}."),
       docs=f"{DOCS}/intro-lifecycle-rules.html#intro-lifecycle-rules-actions")
def noncurrent_versions(ctx: LabContext) -> str:
    run = probe_run(ctx)
    keys = [spec["key"] for spec in _specs(ctx, "logs/")]
    for seen in run.observations:
        for key in keys:
            expected = plan_rules.expected_versions(run.created[key], seen.moment)
            if seen.versions[key] != expected:
                raise Fail(f"{key} on day {_day(run, seen)} after seeding: {seen.versions[key]} versions kept, expected {expected}")
    return f"{len(keys)} multi-version keys kept the right versions at each of {len(run.observations)} checkpoints"


@check("L04-06", "Incomplete multipart uploads are aborted after 7 days", points=1, task="2.3",
       hints=("The parts of a multipart upload that was never completed or aborted are stored and billed forever, "
              "invisible in object listings.",
              "The AbortIncompleteMultipartUpload action (DaysAfterInitiation) in a rule over the whole bucket; it "
              "cannot be combined with a tag filter.",
              "{'ID': 'abort-incomplete-uploads', 'Status': 'Enabled', 'Filter': {'Prefix': ''}, "
              "'AbortIncompleteMultipartUpload': {'DaysAfterInitiation': 7}}."),
       docs=f"{DOCS}/mpu-abort-incomplete-mpu-lifecycle-config.html")
def uploads_aborted(ctx: LabContext) -> str:
    run = probe_run(ctx)
    uploads = ctx.dataset["uploads"]
    for seen in run.observations:
        for upload in uploads:
            initiated = run.seeded_at - datetime.timedelta(days=upload["age"])
            expected_open = not plan_rules.upload_aborted(initiated, seen.moment)
            if (upload["key"] in seen.open_uploads) != expected_open:
                state = "still open" if not expected_open else "already aborted"
                raise Fail(f"upload of {upload['key']}, begun {upload['age']} days before seeding ended, is {state} on day {_day(run, seen)}")
    return f"{len(uploads)} incomplete uploads aborted 7 days after they began"


@check("L04-07", "Objects on legal hold are never touched", points=2, task="2.3",
       hints=("Lifecycle filters select, they never exclude: to leave some objects alone, the rules must select only "
              "the others.",
              "Every seeded object is tagged retention=standard or retention=legal-hold: an And filter of Prefix and "
              "Tags makes a rule select only the standard ones.",
              "'Filter': {'And': {'Prefix': 'raw/', 'Tags': [{'Key': 'retention', 'Value': 'standard'}]}} for the raw/ rule, "
              "the same with 'tmp/' for the tmp/ rule."),
       docs=f"{DOCS}/intro-lifecycle-rules.html#intro-lifecycle-rules-filter")
def legal_hold(ctx: LabContext) -> str:
    run = probe_run(ctx)
    held = [spec for spec in ctx.dataset["objects"] if spec["retention"] == plan_rules.LEGAL_HOLD]
    for seen in run.observations:
        for spec in held:
            if seen.current[spec["key"]] != "STANDARD" or seen.versions[spec["key"]] != 1:
                raise Fail(f"{spec['key']} (legal hold) on day {_day(run, seen)}: {seen.current[spec['key']] or 'expired'}, "
                           f"{seen.versions[spec['key']]} versions; it must stay STANDARD with its one version")
    return f"{len(held)} legal-hold objects stayed as they were for {CHECKPOINT_DAYS[-1]} days"


def _reported_cost(report: dict, bucket: str) -> float:
    """The report's monthly cost of one bucket, from its totals per class with the report's own price table,
    at full precision: the report rounds each class's usd_month to a millionth of a dollar, and
    the probe costs a few hundred-thousandths."""
    classes = report["buckets"].get(bucket)
    if classes is None:
        raise Fail(f"the storage report read at {report['now']} does not list the probe bucket {bucket}")
    return pricing.cost_of({cls: [entry[field] for field in pricing.TOTALS_FIELDS] for cls, entry in classes.items()})


def _expected_cost(ctx: LabContext, run: ProbeRun, moment: datetime.datetime) -> float:
    """What the probe must cost at `moment` under the lab's rules, priced as the report prices a bucket:
    every version that must remain, in the class it must be stored in, tallied per class."""
    classes: dict[str, list[int]] = {}
    for spec in ctx.dataset["objects"]:
        times = run.created[spec["key"]]
        kept = plan_rules.expected_versions(times, moment) if len(times) > 1 else 1
        for created in times[len(times) - kept:]:
            storage_class = plan_rules.expected_stored_class(spec, created, moment)
            pricing.tally(classes.setdefault(storage_class, pricing.new_totals()), storage_class, spec["size"])
    return pricing.cost_of(classes)


@check("L04-08", "The storage report shows the rules cutting the monthly storage cost", points=2, task="2.3",
       hints=("The point of lifecycle rules is the bill: bytes that move to colder classes or expire cost less per month.",
              "The storage report (`dealab storage report`) prices each bucket's bytes per storage class; move the lab "
              "clock forward (`dealab clock advance`) and compare.",
              "`dealab clock advance 400d` then `dealab storage report --png storage.png`: STANDARD bytes should shift to "
              "STANDARD_IA and GLACIER_IR and the expired ones should go."),
       docs="https://aws.amazon.com/s3/pricing/")
def cost_reduction(ctx: LabContext) -> str:
    run = probe_run(ctx)
    start = _reported_cost(run.seeded_storage, run.probe)
    end = _reported_cost(run.final_storage, run.probe)
    end_moment = datetime.datetime.fromisoformat(run.final_storage["now"])
    expected_cut = 1 - _expected_cost(ctx, run, end_moment) / _expected_cost(ctx, run, run.seeded_at)
    measured_cut = 1 - end / start
    if measured_cut < expected_cut / 2:
        raise Fail(f"probe bucket {run.probe} (your rules on your seeded data): the storage report's monthly cost went from "
                   f"{start:.8f} to {end:.8f} USD over {CHECKPOINT_DAYS[-1]} days ({measured_cut:.1%} less); the lab's rules cut it by {expected_cut:.1%}")
    return f"monthly storage cost of the seeded data fell {measured_cut:.1%} over {CHECKPOINT_DAYS[-1]} days ({start:.8f} → {end:.8f} USD at list prices; the lab's rules: {expected_cut:.1%})"
