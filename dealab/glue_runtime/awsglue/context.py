"""GlueContext: reading and writing DynamicFrames on S3 and through the Data Catalog, over Spark."""

from __future__ import annotations

import logging
import sys

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from awsglue import catalog, choice, lakeformation, redshift, run_context, s3_housekeeping, s3_objects, sources
from awsglue.dynamicframe import DynamicFrame

SPARK_READ_FORMATS = {"csv": "csv", "json": "json", "parquet": "parquet", "glueparquet": "parquet", "orc": "orc", "avro": "avro"}
AVRO_CLASS = "org.apache.spark.sql.avro.AvroFileFormat"
CORRUPT_RECORD = "_corrupt_record"


def _spark_format(data_format: str) -> str:
    name = (data_format or "").lower()
    if name not in SPARK_READ_FORMATS:
        raise ValueError(f"format {data_format!r} is not supported by dealab; use one of {sorted(SPARK_READ_FORMATS)}")
    return SPARK_READ_FORMATS[name]


def _require_avro(spark) -> None:
    """Spark's Avro data source is a separate jar (spark-avro) that pyspark does not ship; say so in one line."""
    try:
        spark._jvm.java.lang.Thread.currentThread().getContextClassLoader().loadClass(AVRO_CLASS)
    except Exception:
        raise ValueError("format 'avro' needs Spark's Avro data source (spark-avro_2.12-3.5.x.jar, class "
                         f"{AVRO_CLASS}), which is not on the Glue worker's class path: pyspark ships no spark-avro jar "
                         "and dealab downloads nothing; use parquet, orc, json or csv") from None


def _csv_read_options(format_options: dict, infer_schema: bool = True) -> dict[str, str]:
    quote = format_options.get("quoteChar", '"')
    options = {
        "header": str(bool(format_options.get("withHeader", False))).lower(),
        "sep": format_options.get("separator", ","),
        "quote": "\u0000" if quote in (-1, "-1", None, "") else quote,  # -1 turns quoting off, as in AWS Glue
        "escape": format_options.get("escaper", "\\") or "\\",
        "multiLine": str(bool(format_options.get("multiLine", False))).lower(),
        "inferSchema": str(infer_schema).lower(),
    }
    if format_options.get("nullValue") is not None:
        options["nullValue"] = format_options["nullValue"]
    return options


def _split_errors(dataframe: DataFrame, site: str) -> tuple[DataFrame, DataFrame | None]:
    """The records that parsed, and the error records of those that did not (Spark's corrupt-record column)."""
    if CORRUPT_RECORD not in dataframe.columns:
        return dataframe, None
    # Spark refuses a query of raw JSON that needs only the corrupt-record column unless the data is cached (the
    # worker clears its cache after every run).
    dataframe = dataframe.cache()
    corrupt = F.col(CORRUPT_RECORD)
    errors = dataframe.where(corrupt.isNotNull()).select(F.struct(
        F.lit("Malformed record: it does not parse as JSON").alias("msg"), corrupt.alias("input"),
        F.struct(F.lit(site).alias("site"), F.lit("").alias("info")).alias("callsite"),
    ).alias("error"))
    return dataframe.where(corrupt.isNull()).drop(CORRUPT_RECORD), errors


def _positional_names(dataframe: DataFrame) -> DataFrame:
    """CSV read without a header: AWS Glue names the columns col0, col1, ... (Spark's _c0, _c1, ...)."""
    return dataframe.select(*[F.col(f"`{c}`").alias("col" + c[2:]) if c.startswith("_c") and c[2:].isdigit() else F.col(f"`{c}`")
                              for c in dataframe.columns])


class GlueContext:
    def __init__(self, spark_context, **options):
        self._sc = spark_context
        self.spark_session = SparkSession.builder.getOrCreate()
        self.create_dynamic_frame = DynamicFrameReader(self)
        self.create_data_frame = DataFrameReader(self)
        self.write_dynamic_frame = DynamicFrameWriter(self)

    # AWS Glue also offers the readers and writers as methods named with underscores.
    def create_dynamic_frame_from_catalog(self, *args, **kwargs) -> DynamicFrame:
        return self.create_dynamic_frame.from_catalog(*args, **kwargs)

    def create_dynamic_frame_from_options(self, *args, **kwargs) -> DynamicFrame:
        return self.create_dynamic_frame.from_options(*args, **kwargs)

    def create_data_frame_from_catalog(self, *args, **kwargs) -> DataFrame:
        return self.create_data_frame.from_catalog(*args, **kwargs)

    def create_data_frame_from_options(self, *args, **kwargs) -> DataFrame:
        return self.create_data_frame.from_options(*args, **kwargs)

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
                exclusions=None, recurse: bool = True, base_path: str | None = None, schema: StructType | None = None,
                infer_schema: bool = True) -> DataFrame:
        """The DataFrame of the objects under `paths`, minus those the job bookmark says were read already.
        JSON records that do not parse are kept in a `_corrupt_record` column (see read_s3_records)."""
        spark_format = _spark_format(data_format)
        if spark_format == "avro":
            _require_avro(self.spark_session)
        objects = s3_objects.list_objects(paths, exclusions, recurse)
        already_read = run_context.current.already_read(transformation_ctx)
        new = {uri: etag for uri, etag in objects.items() if already_read.get(uri) != etag}
        run_context.current.record_read(transformation_ctx, new)
        if not new:
            return self.spark_session.createDataFrame([], StructType([]))
        reader = self.spark_session.read.format(spark_format)
        if schema is not None:
            reader = reader.schema(schema)
        if spark_format == "csv":
            reader = reader.options(**_csv_read_options(format_options, infer_schema))
        elif spark_format == "json":
            reader = reader.option("multiLine", str(bool(format_options.get("multiline", format_options.get("multiLine", False)))).lower())
            reader = reader.option("columnNameOfCorruptRecord", CORRUPT_RECORD)
        folder = (base_path or (paths[0] if len(paths) == 1 else "")).rstrip("/") + "/"
        if folder != "/" and all(uri.startswith(folder) for uri in new):  # a folder, not a single file
            reader = reader.option("basePath", folder)
        return reader.load(sorted(new))


    def read_s3_records(self, paths: list[str], data_format: str, format_options: dict, transformation_ctx: str,
                        exclusions=None, recurse: bool = True) -> tuple[DataFrame, DataFrame | None]:
        """Records as AWS Glue's readers give them, and the error records: CSV values typed record by record
        (a column whose records disagree is a choice; without a header the columns are col0, col1, ...), JSON
        records that do not parse as error records."""
        spark_format = _spark_format(data_format)
        if spark_format == "csv":
            dataframe = self.read_s3(paths, data_format, format_options, transformation_ctx, exclusions, recurse, infer_schema=False)
            if not format_options.get("withHeader"):
                dataframe = _positional_names(dataframe)
            return choice.type_records(dataframe), None
        dataframe = self.read_s3(paths, data_format, format_options, transformation_ctx, exclusions, recurse)
        return _split_errors(dataframe, transformation_ctx or "create_dynamic_frame")


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
        dataframe, errors = self._glue_context.read_s3_records(
            paths, format or "json", format_options or {}, transformation_ctx, options.get("exclusions"), options.get("recurse", True)
        )
        frame = DynamicFrame(dataframe, self._glue_context, transformation_ctx)
        return frame._with_stage_errors(errors, _.get("stageThreshold", 0), _.get("totalThreshold", 0))

    def from_catalog(self, database: str | None = None, table_name: str | None = None, redshift_tmp_dir: str = "",
                     transformation_ctx: str = "", push_down_predicate: str = "", additional_options: dict | None = None,
                     name_space: str | None = None, **options) -> DynamicFrame:
        """The table's data with the catalog's column names. CSV columns map by position (the header line skipped
        per skip.header.line.count, the SerDe's delimiter, quote, escape and null format applied) and their
        values are typed record by record, as AWS Glue does: a column whose records disagree is a choice. Other
        formats are cast to the catalog's types. A table over Redshift (a JDBC crawler's, with its connection) is
        UNLOADed through redshift_tmp_dir and read from there. A table the job's role may read only in part (Lake
        Formation) is refused: AWS Glue 5.0 filters columns and rows for DataFrames only (lakeformation.py)."""
        database = database or name_space
        readable = lakeformation.readable(database, table_name)
        if readable.restricted:
            lakeformation.refuse_dynamic_frame(database, table_name)
        over_redshift = redshift.catalog_table_options(readable.table, redshift_tmp_dir, additional_options)
        if over_redshift is not None:
            return DynamicFrame(redshift.read(self._glue_context, over_redshift), self._glue_context, transformation_ctx)
        dataframe, errors = catalog_records(self._glue_context, readable, database, table_name, transformation_ctx,
                                            push_down_predicate, additional_options, typed=True)
        frame = DynamicFrame(dataframe, self._glue_context, transformation_ctx)
        return frame._with_stage_errors(errors, options.get("stageThreshold", 0), options.get("totalThreshold", 0))


def catalog_records(glue_context: GlueContext, readable: lakeformation.Access, database: str, table_name: str,
                    transformation_ctx: str = "", push_down_predicate: str = "", additional_options: dict | None = None,
                    typed: bool = True) -> tuple[DataFrame, DataFrame | None]:
    """A catalog table's records and error records, as much of them as Lake Formation lets the job's role read.
    `typed`: CSV values typed record by record (DynamicFrame); otherwise every column cast to its catalog type (a
    value that does not parse is null; DataFrame readers)."""
    spark = glue_context.spark_session
    table = readable.table
    data_format = catalog.table_format(table)
    location = table["StorageDescriptor"]["Location"]
    partition_keys = [key["Name"] for key in table.get("PartitionKeys", [])]
    if partition_keys:
        paths = [p["StorageDescriptor"]["Location"] for p in catalog.partitions(database, table_name)]
        if not paths:
            return spark.createDataFrame([], StructType([])), None
    else:
        paths = [location]
    types = catalog.column_types(table)
    errors = None
    if data_format == "csv":
        csv = catalog.csv_options(table)
        data_columns = [column["Name"] for column in table.get("StorageDescriptor", {}).get("Columns", [])]
        # Columns map by position, as Hive's LazySimpleSerDe maps them: missing fields are null, extra ones dropped.
        schema = StructType([StructField(f"_col{index}", StringType()) for index in range(len(data_columns))])
        format_options = {"withHeader": csv["header_lines"] > 0, "separator": csv["sep"], "quoteChar": csv["quote"],
                          "escaper": csv["escape"], "nullValue": csv["null_format"]}
        dataframe = glue_context.read_s3(paths, "csv", format_options, transformation_ctx, base_path=location, schema=schema,
                                         infer_schema=False)
        if dataframe.columns:
            names = dict(zip(schema.fieldNames(), data_columns))
            dataframe = dataframe.select(*[F.col(f"`{c}`").alias(names.get(c, c)) for c in dataframe.columns])
            if typed:
                dataframe = choice.type_records(dataframe, data_columns)
        cast = set(partition_keys) if typed else set(types)
    else:
        dataframe = glue_context.read_s3(paths, data_format, {}, transformation_ctx, base_path=location)
        dataframe, errors = _split_errors(dataframe, transformation_ctx or f"{database}.{table_name}")
        cast = set(types)
    if partition_keys and dataframe.columns:
        dataframe = _with_partition_columns(spark, dataframe, location, partition_keys)
    dataframe = dataframe.select(*[F.col(f"`{c}`").cast(types[c]).alias(c) if c in types and c in cast else F.col(f"`{c}`")
                                   for c in dataframe.columns])
    if readable.restricted and dataframe.columns:
        # the rows first (a filter may test a column the role does not read), then the columns; the job's own
        # predicate after both, so it cannot test what the role may not read
        if readable.row_filter:
            dataframe = dataframe.where(lakeformation.spark_condition(readable.row_filter, f"{database}.{table_name}"))
        if readable.columns is not None:
            authorized = {name.lower() for name in readable.columns}
            dataframe = dataframe.select(*[F.col(f"`{c}`") for c in dataframe.columns if c.lower() in authorized])
    predicate = push_down_predicate or (additional_options or {}).get("catalogPartitionPredicate", "")
    if predicate and dataframe.columns:
        dataframe = dataframe.where(predicate)
    return dataframe, errors


class DataFrameReader:
    """`glueContext.create_data_frame` (AWS Glue 3.0 and later): the same sources, as Spark DataFrames."""

    def __init__(self, glue_context: GlueContext):
        self._glue_context = glue_context

    def from_catalog(self, database: str | None = None, table_name: str | None = None, redshift_tmp_dir: str = "",
                     transformation_ctx: str = "", push_down_predicate: str = "", additional_options: dict | None = None,
                     catalog_id: str | None = None, name_space: str | None = None, **_) -> DataFrame:
        """The table's records with the catalog's names and types (a value that does not parse as its type is null);
        of a table the job's role may read only in part (Lake Formation), with fine-grained access control, only
        the columns and rows it may read (lakeformation.py)."""
        database = database or name_space
        dataframe, _errors = catalog_records(self._glue_context, lakeformation.readable(database, table_name), database, table_name,
                                             transformation_ctx, push_down_predicate, additional_options, typed=False)
        return dataframe

    def from_options(self, connection_type: str = "s3", connection_options: dict | None = None, format: str | None = None,
                     format_options: dict | None = None, transformation_ctx: str = "", **options) -> DataFrame:
        """The records as create_dynamic_frame.from_options reads them (CSV without a header: col0, col1, ...); a
        column whose records disagree gets the type Spark would give it (string when any record is text)."""
        frame = self._glue_context.create_dynamic_frame.from_options(connection_type, connection_options, format, format_options,
                                                                      transformation_ctx, **options)
        dataframe = frame._df
        choices = set(choice.choice_columns(dataframe.schema))
        if not choices:
            return dataframe
        fields = {field.name: field for field in dataframe.schema.fields}
        return dataframe.select(*[
            choice.plain(choice.cast_choice(F.col(choice.quoted(c)), fields[c].dataType, choice.most_general(fields[c].dataType)), c)
            if c in choices else F.col(choice.quoted(c)) for c in dataframe.columns
        ])


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
        found = lakeformation.access(database, table_name)
        if found.restricted and lakeformation.fine_grained():
            lakeformation.refuse_write(database, table_name)
        table = found.table
        over_redshift = redshift.catalog_table_options(table, redshift_tmp_dir, additional_options)
        if over_redshift is not None:  # a table over Redshift: staged in redshift_tmp_dir and COPYed
            redshift.write(frame.toDF(), over_redshift)
            return frame
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
        options = {"connectionName": catalog_connection, "redshiftTmpDir": redshift_tmp_dir, **(connection_options or {})}
        return sources.ConnectionSink(connection_type, options).writeFrame(frame)


def write_frame(dataframe: DataFrame, path: str, data_format: str, format_options: dict, partition_keys: list[str]) -> list[tuple[str, ...]]:
    """Appends `dataframe` under `path` as AWS Glue does (new files next to the old, Hive-style partition folders)
    and returns the partition values it wrote. An empty frame (say, a bookmarked run with no new input) writes
    nothing. (Caching the frame for the three passes measured slower on small data than computing it again.)
    """
    if not dataframe.columns or dataframe.isEmpty():
        return []
    spark_format = _spark_format(data_format)
    if spark_format == "avro":
        _require_avro(dataframe.sparkSession)
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
