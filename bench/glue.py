"""Glue benchmark, in one run on a real stack: the Lab 06 job (solution script, Lab 06 data, bookmarks off so
every run does the same work) from StartJobRun to SUCCEEDED, cold and warm, against the same script run by
plain `spark-submit` (a fresh JVM each time, the same Spark settings but no class archive, our awsglue on its
PYTHONPATH, the same S3 through the same gateway); a crawler over 1,000 objects in 30 partitions; the peak
RSS of the Spark worker's process tree; and the same job, cold and warm, on a second stack started with
DEALAB_SPARK_MASTER pointing at a Spark standalone cluster (one master, one worker with 2 cores and 1 GB, from the
installed pyspark on 127.0.0.1): the driver stays in the stack's worker, the tasks run in the cluster's executor.

The cold run is measured as it is on a machine after its first Glue run: with the JVM class archive (see
dealab/engines/glue/spark.py), which a first run leaves behind once per machine. On a machine without one, it is
made first, before anything is measured, and the output says so.

Goals (issue 4, 2 cores): warm ≤ 5 s, cold ≤ 20 s, crawler ≤ 10 s, worker peak RSS ≤ 1 GB.

Run: `.venv/bin/python bench/glue.py [--warm-runs 3] [--submit-runs 2]` (about 4 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import boto3

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dealab.config import TEST_ACCESS_KEY, TEST_SECRET_KEY, Settings  # noqa: E402
from dealab.datasets import etl_orders  # noqa: E402
from dealab.engines.glue.spark import spark_conf, usable_class_archive  # noqa: E402
from dealab.engines.glue.worker_process import RUNTIME_DIR, SparkWorker, process_tree_rss_bytes  # noqa: E402
from dealab.stack import control  # noqa: E402
from tests.conftest import service_role  # noqa: E402

SCRIPT = REPO / "solutions" / "06-glue-etl" / "etl_orders.py"
CRAWL_OBJECTS, CRAWL_PARTITIONS = 1000, 30


def client_of(settings: Settings, service: str):
    return boto3.client(service, endpoint_url=settings.endpoint_url, region_name=settings.region,
                        aws_access_key_id=TEST_ACCESS_KEY, aws_secret_access_key=TEST_SECRET_KEY)


def arguments(label: str) -> dict:
    return {"--JOB_NAME": "orders-etl", "--raw_path": "s3://dea-etl-raw/orders/", "--database": "sales", "--table": f"orders_{label}",
            "--curated_path": f"s3://dea-etl-curated/{label}/curated/", "--quarantine_path": f"s3://dea-etl-curated/{label}/quarantine/"}


def load_lab06(settings: Settings, data: Path) -> dict:
    """The Lab 06 data, script and database in the stack; the data's summary."""
    s3, glue = client_of(settings, "s3"), client_of(settings, "glue")
    summary = etl_orders.generate("bench", data, orders=600, days=4)
    for bucket in ("dea-etl-raw", "dea-etl-curated", "dea-etl-scripts"):
        s3.create_bucket(Bucket=bucket)
    for path in sorted((data / "raw").rglob("*.json")):
        s3.upload_file(str(path), "dea-etl-raw", f"orders/{path.name}")
    s3.upload_file(str(SCRIPT), "dea-etl-scripts", "jobs/etl_orders.py")
    glue.create_database(DatabaseInput={"Name": "sales"})
    return summary


def cold_and_warm_runs(glue, warm_runs: int) -> tuple[float, list[float]]:
    """CreateJob, then StartJobRun at once (the worker's start is inside the cold run), then warm runs."""
    glue.create_job(Name="orders-etl", Role=service_role(glue, "glue", "glue"), GlueVersion="5.0",
                    Command={"Name": "glueetl", "ScriptLocation": "s3://dea-etl-scripts/jobs/etl_orders.py"})
    cold = timed_run(glue, "orders-etl", {k: v for k, v in arguments("cold").items() if k != "--JOB_NAME"})
    warm = [timed_run(glue, "orders-etl", {k: v for k, v in arguments(f"warm{n}").items() if k != "--JOB_NAME"}) for n in range(warm_runs)]
    return cold, warm


def on_cluster(state: Path, warm_runs: int) -> tuple[float, list[float]]:
    """The same runs on a stack whose Glue jobs go to a standalone cluster started for the purpose."""
    from tests.sparkcluster import standalone_cluster

    with standalone_cluster(state / "cluster", cores=2, memory="1g") as cluster:
        port = control.free_port_pair()
        settings = Settings(state_dir=state / "cluster-stack", port=port, insecure_port=port + 1, region="us-east-1", backend_url=None,
                            spark_master=cluster.master)
        control.up(settings)
        try:
            load_lab06(settings, state / "cluster-data")
            return cold_and_warm_runs(client_of(settings, "glue"), warm_runs)
        finally:
            control.down(settings)


class WorkerMemory:
    """Samples the RSS of the Spark worker's process tree (a child of the stack process) every 0.2 s."""

    def __init__(self, stack_pid: int):
        self.stack_pid, self.peak = stack_pid, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _worker_pids(self) -> list[int]:
        """This stack's workers only: other stacks on the machine (test suites) run workers too."""
        pids = []
        for entry in Path("/proc").iterdir():
            try:
                if not entry.name.isdigit() or int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) != self.stack_pid:
                    continue
                command = (entry / "cmdline").read_bytes()
                if b"dealab.engines.glue.worker" in command and b"--build-class-archive" not in command:
                    pids.append(int(entry.name))
            except OSError:
                continue
        return pids

    def _sample(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max([self.peak] + [process_tree_rss_bytes(pid) for pid in self._worker_pids()])

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def timed_run(glue, job: str, arguments: dict) -> float:
    started = time.perf_counter()
    run_id = glue.start_job_run(JobName=job, Arguments=arguments)["JobRunId"]
    while True:
        run = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
        if run["JobRunState"] not in ("STARTING", "RUNNING", "STOPPING", "WAITING"):
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    if run["JobRunState"] != "SUCCEEDED":
        raise SystemExit(f"run {run_id} ended {run['JobRunState']}: {run.get('ErrorMessage')}")
    return elapsed


def spark_submit(settings: Settings, arguments: dict) -> tuple[float, int]:
    """Wall time and peak RSS of the same script under plain spark-submit."""
    import pyspark

    submit = Path(pyspark.__file__).parent / "bin" / "spark-submit"
    command = [str(submit)]
    for key, value in spark_conf(settings.endpoint_url, "bench-spark-submit").items():
        if key == "spark.master":
            command += ["--master", value]
        elif key == "spark.driver.memory":
            command += ["--driver-memory", value]
        else:
            command += ["--conf", f"{key}={value}"]
    command += [str(SCRIPT)] + [token for pair in arguments.items() for token in pair]
    environment = {
        **os.environ, **settings.client_env(), "PYSPARK_PYTHON": sys.executable, "SPARK_LOCAL_IP": "127.0.0.1",
        "PYTHONPATH": os.pathsep.join([str(RUNTIME_DIR), str(REPO)]),
    }
    peak = 0
    started = time.perf_counter()
    process = subprocess.Popen(command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = []
    reader = threading.Thread(target=lambda: output.extend(process.stdout), daemon=True)
    reader.start()
    while process.poll() is None:
        peak = max(peak, process_tree_rss_bytes(process.pid))
        time.sleep(0.2)
    elapsed = time.perf_counter() - started
    reader.join()
    if process.returncode != 0:
        raise SystemExit(f"spark-submit failed:\n{b''.join(output).decode(errors='replace')[-3000:]}")
    return elapsed, peak


def ensure_class_archive(settings: Settings, state: Path) -> str:
    """What the output says about the class archive; made now if this machine has none yet."""
    archive = usable_class_archive()
    if archive is not None:
        return f"class archive: present, {archive.stat().st_size / 2**20:.0f} MB ({archive})"
    started = time.perf_counter()
    code = SparkWorker(settings.endpoint_url, settings.region, state / "glue" / "spark-worker.log").build_class_archive().wait()
    archive = usable_class_archive()
    if code != 0 or archive is None:
        raise SystemExit(f"the class archive could not be made (exit status {code}); see {state / 'glue' / 'spark-class-archive.log'}")
    return f"class archive: none on this machine, made first in {time.perf_counter() - started:.0f}s ({archive})"


def crawl(settings: Settings, s3, glue) -> float:
    s3.create_bucket(Bucket="bench-crawl")
    for index in range(CRAWL_OBJECTS):
        day = f"2024-05-{index % CRAWL_PARTITIONS + 1:02d}"
        body = "".join(json.dumps({"id": index * 10 + n, "amount": n * 1.5, "ok": n % 2 == 0, "tag": f"t{n}"}) + "\n" for n in range(10))
        s3.put_object(Bucket="bench-crawl", Key=f"events/dt={day}/part-{index:04d}.json", Body=body.encode())
    glue.create_database(DatabaseInput={"Name": "bench"})
    glue.create_crawler(Name="bench", Role=service_role(glue, "crawler", "glue"), DatabaseName="bench",
                        Targets={"S3Targets": [{"Path": "s3://bench-crawl/events/"}]})
    started = time.perf_counter()
    glue.start_crawler(Name="bench")
    while True:
        crawler = glue.get_crawler(Name="bench")["Crawler"]
        if crawler["State"] == "READY" and crawler.get("LastCrawl"):
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    partitions = len(glue.get_partitions(DatabaseName="bench", TableName="events")["Partitions"])
    if crawler["LastCrawl"]["Status"] != "SUCCEEDED" or partitions != CRAWL_PARTITIONS:
        raise SystemExit(f"crawl {crawler['LastCrawl']['Status']}, {partitions} partitions")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm-runs", type=int, default=3)
    parser.add_argument("--submit-runs", type=int, default=2)
    options = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="dealab-bench-glue-"))
    port = control.free_port_pair()
    settings = Settings(state_dir=state, port=port, insecure_port=port + 1, region="us-east-1", backend_url=None)
    health = control.up(settings)
    try:
        s3, glue = client_of(settings, "s3"), client_of(settings, "glue")
        summary = load_lab06(settings, state / "data")
        print(ensure_class_archive(settings, state))
        print(f"Lab 06 data: {summary['raw_rows']} raw rows in {len(summary['batch_1_files']) + len(summary['batch_2_files'])} files; "
              f"{len(summary['curated'])} curated orders over {len(summary['order_dates'])} days")
        load_before = os.getloadavg()[0]
        with WorkerMemory(health["pid"]) as memory:
            cold, warm = cold_and_warm_runs(glue, options.warm_runs)
        submits = [spark_submit(settings, arguments(f"submit{n}")) for n in range(options.submit_runs)]
        crawl_seconds = crawl(settings, s3, glue)
    finally:
        control.down(settings)
    try:
        cluster_cold, cluster_warm = on_cluster(state, options.warm_runs)
    finally:
        shutil.rmtree(state, ignore_errors=True)

    print(f"machine: {os.cpu_count()} cores, 1-minute load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after "
          "(other work on the machine slows every number)")
    warm_median = statistics.median(warm)
    submit_median = statistics.median(seconds for seconds, _ in submits)
    submit_peak = max(peak for _, peak in submits)
    print(f"{'measure':58} {'value':>10}  goal")
    print(f"{'dealab job run, cold (StartJobRun → SUCCEEDED)':58} {cold:9.1f}s  ≤ 20 s")
    print(f"{'dealab job run, warm (median of %d)' % len(warm):58} {warm_median:9.1f}s  ≤ 5 s   runs: {', '.join(f'{w:.1f}' for w in warm)}")
    print(f"{'plain spark-submit, same script (median of %d)' % len(submits):58} {submit_median:9.1f}s")
    print(f"{'ratio warm dealab / spark-submit':58} {warm_median / submit_median:9.2f}x")
    print(f"{'ratio cold dealab / spark-submit':58} {cold / submit_median:9.2f}x")
    print(f"{'crawler, %d objects in %d partitions' % (CRAWL_OBJECTS, CRAWL_PARTITIONS):58} {crawl_seconds:9.1f}s  ≤ 10 s")
    cluster_warm_median = statistics.median(cluster_warm)
    print(f"{'job run on a standalone cluster (1 worker, 2 cores), cold':58} {cluster_cold:9.1f}s  {cluster_cold / cold:.2f}x local cold")
    print(f"{'job run on a standalone cluster, warm (median of %d)' % len(cluster_warm):58} {cluster_warm_median:9.1f}s  "
          f"{cluster_warm_median / warm_median:.2f}x local warm   runs: {', '.join(f'{w:.1f}' for w in cluster_warm)}")
    print(f"{'Spark worker peak RSS (process tree)':58} {memory.peak / 2**20:8.0f}MB  ≤ 1024 MB")
    print(f"{'spark-submit peak RSS (process tree)':58} {submit_peak / 2**20:8.0f}MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
