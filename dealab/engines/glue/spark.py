"""How a local Spark session is built so that `s3://` paths reach the stack's S3 through the s3a connector,
and the class archive that makes its JVM start faster.

pyspark 3.5 (the Spark of AWS Glue 5.0) ships the Hadoop 3.3.4 client but not the S3A connector. Its jars
(hadoop-aws 3.3.1 and the AWS Java SDK bundle) come offline only from the `sagemaker-pyspark==1.4.5` wheel,
installed with --no-deps. `s3://` and `s3n://` are mapped to S3A so learner code keeps AWS's spelling.

The class archive is a Java 17 dynamic CDS archive (AppCDS): the classes a Spark job loads, already parsed and
verified, which the JVM maps from disk instead of reading them from ~270 jars. It only depends on the JVM and
the jars, so it is kept per machine under ~/.cache/dealab/ and made once, in the background, by a separate
process (`python -m dealab.engines.glue.worker --build-class-archive`, see worker.py).

With a Spark standalone master (DEALAB_SPARK_MASTER, `SparkCluster`) the session's driver stays in the worker
process and its tasks run on the cluster's executors, which reach the stack's S3 with the same S3A settings.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dealab.config import TEST_ACCESS_KEY, TEST_SECRET_KEY

S3A_JAR_PREFIXES = ("hadoop-aws-", "aws-java-sdk-bundle-")
INSTALL_HINT = "install the S3A jars with: .venv/bin/pip install --no-deps sagemaker-pyspark==1.4.5"
# Small jobs on 2 cores: the C1 compiler alone and one GC thread leave the CPU to the job. Measured back to back
# on a busy 2-core machine (Lab 06 job): warm runs 6.7 s → 4.3 s, cold 28.9 s → 26.0 s.
DRIVER_JAVA_OPTIONS = ("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1")
LOOPBACK = "127.0.0.1"
MASTER_VARIABLE = "DEALAB_SPARK_MASTER"
# spark://host:port, or several masters for standby failover (spark://host1:port1,host2:port2).
MASTER_URL = re.compile(r"spark://(?P<masters>[^\s/,:]+:\d+(?:,[^\s/,:]+:\d+)*)/?")
MASTER_CONNECT_SECONDS = 5.0
# S3A's credential providers: keys read from the JVM's system properties at every request (a Glue run's role
# session, set per run), and the keys written in the session's settings.
SYSTEM_PROPERTIES_PROVIDER = "com.amazonaws.auth.SystemPropertiesCredentialsProvider"
SIMPLE_PROVIDER = "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"


class SparkSetupError(RuntimeError):
    """Spark cannot be configured for S3 on this machine; the message says how to fix it."""


def s3a_jars() -> list[Path]:
    spec = importlib.util.find_spec("sagemaker_pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise SparkSetupError(f"the S3A connector jars are missing; {INSTALL_HINT}")
    jar_dir = Path(list(spec.submodule_search_locations)[0]) / "jars"
    jars = [jar for jar in sorted(jar_dir.glob("*.jar")) if jar.name.startswith(S3A_JAR_PREFIXES)]
    if len(jars) != len(S3A_JAR_PREFIXES):
        raise SparkSetupError(f"expected hadoop-aws and aws-java-sdk-bundle jars in {jar_dir}; {INSTALL_HINT}")
    return jars


@dataclass(frozen=True)
class SparkCluster:
    """A Spark standalone cluster whose executors run a session's tasks, the driver staying in the worker process.

    `driver_host` is the address the executors reach the driver at (the driver listens there too), and
    `s3_endpoint` the stack's S3 as the executors reach it (the driver uses it as well); on one machine both are
    the loopback defaults. The executors need this Python's minor version at this interpreter's path and the
    S3A jars at the paths they have here, as in dealab's own image."""

    master: str
    driver_host: str = LOOPBACK
    s3_endpoint: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> SparkCluster | None:
        master = environ.get(MASTER_VARIABLE)
        if not master:
            return None
        return cls(master, environ.get("DEALAB_SPARK_DRIVER_HOST") or LOOPBACK, environ.get("DEALAB_SPARK_S3_ENDPOINT") or None)

    def masters(self) -> list[tuple[str, int]]:
        """The master's host and port (each standby's too); SparkSetupError for a URL that is not spark://host:port."""
        match = MASTER_URL.fullmatch(self.master)
        if match is None:
            raise SparkSetupError(f"DEALAB_SPARK_MASTER {self.master!r} is not a Spark standalone master URL (spark://host:port)")
        return [(host, int(port)) for host, port in (address.rsplit(":", 1) for address in match["masters"].split(","))]

    def check_master(self) -> None:
        """Fails at once, saying which master, when none answers: Spark itself would retry for a minute."""
        failures = []
        for host, port in self.masters():
            try:
                socket.create_connection((host, port), timeout=MASTER_CONNECT_SECONDS).close()
                return
            except OSError as error:
                failures.append(f"{host}:{port}: {error.strerror or error}")
        raise SparkSetupError(f"the Spark master {self.master} does not answer ({'; '.join(failures)})")


def spark_conf(endpoint_url: str, app_name: str, cores: int = 2, driver_memory: str = "768m",
               java_options: tuple[str, ...] = (), cluster: SparkCluster | None = None,
               credentials: tuple[str, str] = (TEST_ACCESS_KEY, TEST_SECRET_KEY), per_run_credentials: bool = False) -> dict[str, str]:
    """The Spark settings of a session whose S3 is the stack at `endpoint_url` (path-style, plain HTTP), signed
    with `credentials`: local with `cores` threads, or on `cluster` with at most `cores` of its cores.

    With `per_run_credentials` (the Glue worker), the driver's JVM signs with the keys in its system properties
    aws.accessKeyId, aws.secretKey and aws.sessionToken, read at every request, so each run can act with its own
    role session (set_run_credentials); JVMs without them (a cluster's executors) sign with `credentials`."""
    driver_host = cluster.driver_host if cluster else LOOPBACK
    if cluster and cluster.s3_endpoint:
        endpoint_url = cluster.s3_endpoint
    access_key, secret_key = credentials
    conf = {
        "spark.master": cluster.master if cluster else f"local[{cores}]",
        "spark.app.name": app_name,
        "spark.driver.memory": driver_memory,
        "spark.driver.extraJavaOptions": " ".join(DRIVER_JAVA_OPTIONS + java_options),
        "spark.driver.host": driver_host,
        "spark.driver.bindAddress": driver_host,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "4",
        # Expressions and operators interpreted rather than compiled to Java classes by Janino for every query:
        # on lab data (thousands of rows) compiling costs more than it saves, and Janino, a signed jar, cannot go
        # into the class archive. Lab 06 job, 5 runs of each alternated at load 1.5-4: cold median 19.8 s → 16.6 s,
        # warm 6.1 s → 5.4 s (whole-stage codegen off alone: 19.2 s; adaptive query execution off: 24.7 s, slower).
        "spark.sql.codegen.wholeStage": "false",
        "spark.sql.codegen.factoryMode": "NO_CODEGEN",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.sources.partitionOverwriteMode": "dynamic",
        # On the JVM's own class path rather than in spark.jars: a local session would otherwise copy the 190 MB
        # SDK bundle into a temporary folder at every start (left behind when the worker is killed), and only
        # classes of the JVM's own class path can go into the class archive.
        "spark.driver.extraClassPath": os.pathsep.join(str(jar) for jar in s3a_jars()),
        "spark.hadoop.fs.s3a.endpoint": endpoint_url,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.access.key": access_key,
        "spark.hadoop.fs.s3a.secret.key": secret_key,
        "spark.hadoop.fs.s3a.aws.credentials.provider": (SYSTEM_PROPERTIES_PROVIDER + "," if per_run_credentials else "") + SIMPLE_PROVIDER,
        "spark.hadoop.fs.s3a.change.detection.mode": "none",
        "spark.hadoop.fs.s3a.attempts.maximum": "3",
        "spark.hadoop.fs.s3a.retry.limit": "3",
        "spark.hadoop.fs.s3a.connection.establish.timeout": "5000",
        "spark.hadoop.fs.s3a.connection.timeout": "60000",
        "spark.hadoop.mapreduce.fileoutputcommitter.algorithm.version": "2",
        "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
        "spark.sql.parquet.compression.codec": "snappy",
    }
    for scheme in ("s3", "s3n"):
        conf[f"spark.hadoop.fs.{scheme}.impl"] = "org.apache.hadoop.fs.s3a.S3AFileSystem"
        conf[f"spark.hadoop.fs.AbstractFileSystem.{scheme}.impl"] = "org.apache.hadoop.fs.s3a.S3A"
    if cluster:
        conf.update(cluster_conf(conf, endpoint_url, cores, credentials))
    return conf


def cluster_conf(conf: dict[str, str], endpoint_url: str, cores: int, credentials: tuple[str, str]) -> dict[str, str]:
    """What a session on a standalone cluster needs besides a local one's settings."""
    access_key, secret_key = credentials
    return {
        # Standalone gives an application every free core of the cluster unless capped: a learner's warm worker
        # would hold them all, and every other learner's job would wait for it to go idle.
        "spark.cores.max": str(cores),
        "spark.executor.extraClassPath": conf["spark.driver.extraClassPath"],
        # The driver's JIT and GC choice for lab-sized tasks. Lab 06 job on a 2-core cluster worker, alternated
        # at load 8-11: warm 14.1/10.4 and 13.7/13.4 s → 6.9/7.5 and 5.5/4.8 s, cold 52.7, 71.7 s → 45.8, 42.3 s.
        "spark.executor.extraJavaOptions": " ".join(DRIVER_JAVA_OPTIONS),
        # A script's own boto3 calls inside tasks (foreachPartition) reach the stack as the driver's do.
        "spark.executorEnv.AWS_ENDPOINT_URL": endpoint_url,
        "spark.executorEnv.AWS_ACCESS_KEY_ID": access_key,
        "spark.executorEnv.AWS_SECRET_ACCESS_KEY": secret_key,
        "spark.executorEnv.AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    }


def build_session(endpoint_url: str, app_name: str, java_options: tuple[str, ...] = (), cluster: SparkCluster | None = None,
                  credentials: tuple[str, str] = (TEST_ACCESS_KEY, TEST_SECRET_KEY), per_run_credentials: bool = False):
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in spark_conf(endpoint_url, app_name, java_options=java_options, cluster=cluster, credentials=credentials,
                                 per_run_credentials=per_run_credentials).items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    if per_run_credentials:
        set_run_credentials(session, credentials[0], credentials[1], None)
    return session


def set_run_credentials(session, access_key: str, secret_key: str, token: str | None) -> None:
    """The keys the driver's S3A requests are signed with from now on (a session built with per_run_credentials)."""
    system = session._jvm.java.lang.System
    system.setProperty("aws.accessKeyId", access_key)
    system.setProperty("aws.secretKey", secret_key)
    if token:
        system.setProperty("aws.sessionToken", token)
    else:
        system.clearProperty("aws.sessionToken")


# ---- the class archive -------------------------------------------------------------------------------
def class_archive_folder() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dealab" / "spark-class-archive"


def class_archive_key() -> str:
    """What an archive is only valid for: the JVM spark-submit starts, every jar of its class path (name, size,
    time), and our JVM options. A new JDK or pyspark gives a new key, so a new archive is made, instead of
    one the JVM would refuse on every start. pyspark is found, not imported: the gateway asks this too."""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or not spec.submodule_search_locations:
        raise SparkSetupError("pyspark is not installed")
    spark_jars = sorted((Path(list(spec.submodule_search_locations)[0]) / "jars").glob("*.jar"))
    java = Path(os.environ["JAVA_HOME"]) / "bin" / "java" if os.environ.get("JAVA_HOME") else Path(shutil.which("java") or "java")
    java = java.resolve()
    files = [java, java.parent.parent / "lib" / "server" / "libjvm.so", *s3a_jars(), *spark_jars]
    digest = hashlib.sha256(" ".join(DRIVER_JAVA_OPTIONS).encode())
    for path in files:
        stat = path.stat() if path.exists() else None
        digest.update(f"{path}|{stat.st_size if stat else '-'}|{stat.st_mtime_ns if stat else '-'}\n".encode())
    return digest.hexdigest()[:16]


def usable_class_archive() -> Path | None:
    """The archive of this JVM and these jars, if one was written in full.

    An archive is named <key>-<size in bytes>.jsa when its builder is done. A file shorter than its name says
    is never handed to the JVM: Java 17 crashes (SIGBUS) on a cut-short archive instead of ignoring it.
    """
    try:
        key = class_archive_key()
        candidates = list(class_archive_folder().glob(f"{key}-*.jsa"))
    except (OSError, SparkSetupError):
        return None
    for path in candidates:
        size = path.stem.rsplit("-", 1)[1]
        try:
            if size.isdigit() and path.stat().st_size == int(size):
                return path
        except OSError:  # removed meanwhile
            continue
    return None


def class_archive_wanted() -> bool:
    """No usable archive, and no builder found that this JVM cannot write one (it then leaves <key>.failed)."""
    if usable_class_archive() is not None:
        return False
    try:
        return not (class_archive_folder() / f"{class_archive_key()}.failed").exists()
    except (OSError, SparkSetupError):
        return False


def using_class_archive(archive: Path) -> tuple[str, ...]:
    """JVM options to start with `archive`. VerifySharedSpaces checks its checksums first, so a damaged archive is
    refused (the JVM then runs without it) rather than mapped; that costs ~0.15 s a start (`spark-submit --version`
    with the archive: 1.49 s, 1.35 s without the check). Should the JVM still die on an archive, its crash report
    goes next to the archive rather than into the worker's working folder, the repository."""
    return (_path_option("SharedArchiveFile", archive), "-XX:+VerifySharedSpaces", _path_option("ErrorFile", archive.parent / "hs_err_pid%p.log"))


def writing_class_archive(archive: Path) -> tuple[str, ...]:
    """JVM options that write the classes loaded into `archive` when the JVM exits, with the checksums
    using_class_archive() verifies. Without its CDS warnings: one line per class it leaves out (~500: classes of
    signed jars such as Janino's, generated ones), which are loaded from their jars as before."""
    return (_path_option("ArchiveClassesAtExit", archive), "-XX:+VerifySharedSpaces", "-Xlog:cds*=error")


def _path_option(name: str, path: Path) -> str:
    # Quoted because spark-submit splits extraJavaOptions at spaces, as a shell would, and a home folder may have one.
    quoted = str(path).replace("\\", "\\\\").replace('"', '\\"')
    return f'-XX:{name}="{quoted}"'
