"""GlueContext: reading and writing DynamicFrames on S3 and through the Data Catalog, over Spark."""

from __future__ import annotations

import logging
import sys

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from awsglue import catalog, run_context, s3_housekeeping, s3_objects, sources
from awsglue.dynamicframe import DynamicFrame

SPARK_READ_FORMATS = {"csv": "csv", "json": "json", "parquet": "parquet", "glueparquet": "parquet", "orc": "orc"}


def _spark_format(data_format: str) -> str:
    name = (data_format or "").lower()
    if name not in SPARK_READ_FORMATS:
        raise ValueError(f"format {data_format!r} is not supported by dealab; use one of {sorted(SPARK_READ_FORMATS)}")
    return SPARK_READ_FORMATS[name]


def _csv_read_options(format_options: dict) -> dict[str, str]:
    return {
        "header": str(bool(format_options.get("withHeader", False))).lower(),
        "sep": format_options.get("separator", ","),
        "quote": format_options.get("quoteChar", '"'),
        "escape": format_options.get("escaper", "\\") or "\\",
        "multiLine": str(bool(format_options.get("multiLine", False))).lower(),
        "inferSchema": "true",
    }


class GlueContext:
    def __init__(self, spark_context, **options):
        self._sc = spark_context
        self.spark_session = SparkSession.builder.getOrCreate()
        self.create_dynamic_frame = DynamicFrameReader(self)
        self.write_dynamic_frame = DynamicFrameWriter(self)

    # AWS Glue also offers the readers and writers as methods named with underscores.
    def create_dynamic_frame_from_catalog(self, *args, **kwargs) -> DynamicFrame:
        return self.create_dynamic_frame.from_catalog(*args, **kwargs)

    def create_dynamic_frame_from_options(self, *args, **kwargs) -> DynamicFrame:
        return self.create_dynamic_frame.from_options(*args, **kwargs)

    def write_dynamic_frame_from_options(self, *args, **kwargs):
        return self.write_dynamic_frame.from_options(*args, **kwargs)

    def write_dynamic_frame_from_catalog(self, *args, **kwargs):
        return self.write_dynamic_frame.from_catalog(*args, **kwargs)

    def get_logger(self) -> logging.Logger:
        logger = logging.getLogger("awsglue")
        if not logger.handlers:
            handler = logging.StreamHandler(_CurrentStderr())
            handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
        return logger

    def getSource(self, connection_type: str, format: str | None = None, transformation_ctx: str = "",
                  push_down_predicate: str = "", **options) -> sources.DataSource:
        source = sources.DataSource(self, connection_type, options, transformation_ctx, push_down_predicate)
        if format:
            source.setFormat(format)
        return source

    def getSink(self, connection_type: str, format: str | None = None, transformation_ctx: str = "", **options):
        if connection_type != "s3":
            return sources.ConnectionSink(connection_type, options)
        sink = DataSink(self, options.get("path", ""), bool(options.get("enableUpdateCatalog", False)),
                        options.get("updateBehavior", "UPDATE_IN_DATABASE"), list(options.get("partitionKeys") or []),
                        options.get("compression"))
        if format:
            sink.setFormat(format)
        return sink

    def purge_s3_path(self, s3_path: str, options: dict | None = None, transformation_ctx: str = "") -> None:
        s3_housekeeping.purge(s3_path, options or {}, transformation_ctx)

    def purge_table(self, database: str, table_name: str, options: dict | None = None, transformation_ctx: str = "",
                    catalog_id: str | None = None) -> None:
        s3_housekeeping.purge_table(database, table_name, options or {}, transformation_ctx)

    def transition_s3_path(self, s3_path: str, transition_to: str, options: dict | None = None, transformation_ctx: str = "") -> None:
        s3_housekeeping.transition(s3_path, transition_to, options or {}, transformation_ctx)

    def transition_table(self, database: str, table_name: str, transition_to: str, options: dict | None = None,
                         transformation_ctx: str = "", catalog_id: str | None = None) -> None:
        s3_housekeeping.transition_table(database, table_name, transition_to, options or {}, transformation_ctx)

    def write_dynamic_frame_from_jdbc_conf(self, *args, **kwargs):
        return self.write_dynamic_frame.from_jdbc_conf(*args, **kwargs)

    def read_s3(self, paths: list[str], data_format: str, format_options: dict, transformation_ctx: str,
                exclusions=None, recurse: bool = True, base_path: str | None = None) -> DataFrame:
        """The DataFrame of the objects under `paths`, minus those the job bookmark says were read already."""
        spark_format = _spark_format(data_format)
        objects = s3_objects.list_objects(paths, exclusions, recurse)
        already_read = run_context.current.already_read(transformation_ctx)
        new = {uri: etag for uri, etag in objects.items() if already_read.get(uri) != etag}
        run_context.current.record_read(transformation_ctx, new)
        if not new:
            return self.spark_session.createDataFrame([], StructType([]))
        reader = self.spark_session.read.format(spark_format)
        if spark_format == "csv":
            reader = reader.options(**_csv_read_options(format_options))
        elif spark_format == "json":
            reader = reader.option("multiLine", str(bool(format_options.get("multiline", format_options.get("multiLine", False)))).lower())
        folder = (base_path or (paths[0] if len(paths) == 1 else "")).rstrip("/") + "/"
        if folder != "/" and all(uri.startswith(folder) for uri in new):  # a folder, not a single file
            reader = reader.option("basePath", folder)
        return reader.load(sorted(new))


class DynamicFrameReader:
    def __init__(self, glue_context: GlueContext):
        self._glue_context = glue_context

    def from_options(self, connection_type: str = "s3", connection_options: dict | None = None, format: str | None = None,
                     format_options: dict | None = None, transformation_ctx: str = "", **_) -> DynamicFrame:
        if connection_type != "s3":
            return sources.DataSource(self._glue_context, connection_type, connection_options or {}, transformation_ctx).getFrame()
        options = connection_options or {}
        paths = options.get("paths") or ([options["path"]] if "path" in options else [])
        if not paths:
            raise ValueError("connection_options needs 'paths': a list of s3:// paths")
        dataframe = self._glue_context.read_s3(
            paths, format or "json", format_options or {}, transformation_ctx, options.get("exclusions"), options.get("recurse", True)
        )
        return DynamicFrame(dataframe, self._glue_context, transformation_ctx)

    def from_catalog(self, database: str | None = None, table_name: str | None = None, redshift_tmp_dir: str = "",
                     transformation_ctx: str = "", push_down_predicate: str = "", additional_options: dict | None = None,
                     name_space: str | None = None, **_) -> DynamicFrame:
        database = database or name_space
        table = catalog.get_table(database, table_name)
        data_format = catalog.table_format(table)
        location = table["StorageDescriptor"]["Location"]
        partition_keys = [key["Name"] for key in table.get("PartitionKeys", [])]
        if partition_keys:
            paths = [p["StorageDescriptor"]["Location"] for p in catalog.partitions(database, table_name)]
            if not paths:
                return DynamicFrame(self._glue_context.spark_session.createDataFrame([], StructType([])), self._glue_context, transformation_ctx)
        else:
            paths = [location]
        format_options = {}
        if data_format == "csv":
            csv = catalog.csv_options(table)
            format_options = {"withHeader": csv["header"] == "true", "separator": csv["sep"]}
        dataframe = self._glue_context.read_s3(paths, data_format, format_options, transformation_ctx, base_path=location)
        if partition_keys and paths and dataframe.columns:
            dataframe = _with_partition_columns(self._glue_context.spark_session, dataframe, location, partition_keys)
        types = catalog.column_types(table)
        dataframe = dataframe.select(*[F.col(f"`{c}`").cast(types[c]).alias(c) if c in types else F.col(f"`{c}`") for c in dataframe.columns])
        predicate = push_down_predicate or (additional_options or {}).get("catalogPartitionPredicate", "")
        if predicate and dataframe.columns:
            dataframe = dataframe.where(predicate)
        return DynamicFrame(dataframe, self._glue_context, transformation_ctx)


def _with_partition_columns(spark, dataframe: DataFrame, location: str, partition_keys: list[str]) -> DataFrame:
    """Adds partition values of files under unnamed partition folders (2024/01/01/), which Spark cannot see."""
    missing = [key for key in partition_keys if key not in dataframe.columns]
    if not missing:
        return dataframe
    base = location.rstrip("/") + "/"
    folders = F.split(F.regexp_replace(F.input_file_name(), "^s3[an]?://", "s3://").substr(len(base) + 1, 100000), "/")
    for index, key in enumerate(partition_keys):
        if key in missing:
            dataframe = dataframe.withColumn(key, folders.getItem(index))
    return dataframe


class DynamicFrameWriter:
    def __init__(self, glue_context: GlueContext):
        self._glue_context = glue_context

    def from_options(self, frame: DynamicFrame, connection_type: str = "s3", connection_options: dict | None = None,
                     format: str | None = None, format_options: dict | None = None, transformation_ctx: str = "", **_) -> DynamicFrame:
        if connection_type != "s3":
            return sources.ConnectionSink(connection_type, connection_options or {}).writeFrame(frame)
        options = connection_options or {}
        if "path" not in options:
            raise ValueError("connection_options needs 'path': the s3:// folder to write to")
        write_frame(frame.toDF(), options["path"], format or "json", format_options or {}, list(options.get("partitionKeys", [])))
        return frame

    def from_catalog(self, frame: DynamicFrame, database: str | None = None, table_name: str | None = None,
                     redshift_tmp_dir: str = "", transformation_ctx: str = "", additional_options: dict | None = None,
                     name_space: str | None = None, **_) -> DynamicFrame:
        database = database or name_space
        options = additional_options or {}
        table = catalog.get_table(database, table_name)
        data_format = catalog.table_format(table)
        partition_keys = list(options.get("partitionKeys") or [key["Name"] for key in table.get("PartitionKeys", [])])
        path = table["StorageDescriptor"]["Location"]
        format_options = {"compression": options["compression"]} if "compression" in options else {}
        if data_format == "csv":
            csv = catalog.csv_options(table)
            format_options.update(separator=csv["sep"], writeHeader=csv["header"] == "true")
        dataframe = frame.toDF()
        written = write_frame(dataframe, path, data_format, format_options, partition_keys)
        if options.get("enableUpdateCatalog") and dataframe.columns:
            catalog.register_output(database, table_name, path, data_format, dataframe.schema, partition_keys,
                                    written, options.get("updateBehavior", "UPDATE_IN_DATABASE") == "UPDATE_IN_DATABASE")
        return frame

    def from_jdbc_conf(self, frame: DynamicFrame, catalog_connection: str, connection_options: dict | None = None,
                       redshift_tmp_dir: str = "", transformation_ctx: str = "", catalog_id: str | None = None) -> DynamicFrame:
        connection_type = sources.jdbc_connection_type(catalog_connection)
        return sources.ConnectionSink(connection_type, connection_options or {}).writeFrame(frame)


def write_frame(dataframe: DataFrame, path: str, data_format: str, format_options: dict, partition_keys: list[str]) -> list[tuple[str, ...]]:
    """Appends `dataframe` under `path` as AWS Glue does (new files next to the old, Hive-style partition folders)
    and returns the partition values it wrote. An empty frame (say, a bookmarked run with no new input) writes
    nothing. (Caching the frame for the three passes measured slower on small data than computing it again.)
    """
    if not dataframe.columns or dataframe.isEmpty():
        return []
    spark_format = _spark_format(data_format)
    writer = dataframe.write.mode("append").format(spark_format)
    if partition_keys:
        writer = writer.partitionBy(*partition_keys)
    if spark_format in ("parquet", "orc"):
        writer = writer.option("compression", format_options.get("compression", "snappy"))
    elif spark_format == "csv":
        writer = writer.options(header=str(format_options.get("writeHeader", True)).lower(), sep=format_options.get("separator", ","))
    elif "compression" in format_options:
        writer = writer.option("compression", format_options["compression"])
    writer.save(path)
    return _partition_values(dataframe, partition_keys)


def _partition_values(dataframe: DataFrame, partition_keys: list[str]) -> list[tuple[str, ...]]:
    if not partition_keys:
        return []
    rows = dataframe.select(*partition_keys).distinct().collect()
    return [tuple("__HIVE_DEFAULT_PARTITION__" if value is None else str(value) for value in row) for row in rows]


class DataSink:
    """What `GlueContext.getSink` returns: a writer that can also keep the catalog up to date."""

    def __init__(self, glue_context: GlueContext, path: str, update_catalog: bool, update_behavior: str,
                 partition_keys: list[str], compression: str | None):
        self._glue_context = glue_context
        self.path = path
        self.update_catalog = update_catalog
        self.update_behavior = update_behavior
        self.partition_keys = partition_keys
        self.format = "json"
        self.format_options: dict = {"compression": compression} if compression else {}
        self.database = ""
        self.table_name = ""

    def setFormat(self, format: str, **options) -> None:
        self.format = format
        self.format_options.update({key: value for key, value in options.items() if key != "useGlueParquetWriter"})

    def setCatalogInfo(self, catalogDatabase: str, catalogTableName: str, catalogId: str | None = None) -> None:
        self.database, self.table_name = catalogDatabase, catalogTableName

    def writeFrame(self, dynamic_frame: DynamicFrame, info: str = "") -> DynamicFrame:
        dataframe = dynamic_frame.toDF()
        written = write_frame(dataframe, self.path, self.format, self.format_options, self.partition_keys)
        if self.update_catalog and dataframe.columns:
            if not (self.database and self.table_name):
                raise ValueError("enableUpdateCatalog needs setCatalogInfo(catalogDatabase=..., catalogTableName=...) before writeFrame")
            catalog.register_output(self.database, self.table_name, self.path, self.format, dataframe.schema, self.partition_keys,
                                    written, self.update_behavior == "UPDATE_IN_DATABASE",
                                    self.format_options.get("compression", "snappy" if _spark_format(self.format) == "parquet" else None))
        return dynamic_frame


class _CurrentStderr:
    """A stream that writes to whatever sys.stderr is at the moment (the run's error log in the worker)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()
