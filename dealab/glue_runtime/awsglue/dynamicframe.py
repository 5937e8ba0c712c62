"""DynamicFrame, the AWS Glue frame, over a Spark DataFrame.

Spark settles one type per column when it reads, so the choice types of AWS Glue do not arise here:
`resolveChoice` casts as asked, and `make_struct` / `make_cols` leave a column that has one type as it is.
Records handed to `filter` and `map` functions are dicts, as in AWS Glue (`rec["field"]`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from awsglue import gluetypes
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StructField, StructType


def _quoted(path: str) -> str:
    """A column reference for a dotted path whose parts may hold characters Spark reads as syntax."""
    return ".".join(f"`{part}`" for part in path.split("."))


def _has_path(schema: StructType, path: str) -> bool:
    current = schema
    for part in path.split("."):
        if not isinstance(current, StructType) or part not in current.fieldNames():
            return False
        current = current[part].dataType
    return True


# spigot, split_rows, unbox (the block at the end of DynamicFrame)
SPIGOT_DEFAULT_TOPK = 100
SPLIT_ROWS_OPERATORS = {
    "<": lambda column, value: column < value, ">": lambda column, value: column > value,
    "<=": lambda column, value: column <= value, ">=": lambda column, value: column >= value,
    "=": lambda column, value: column == value, "!=": lambda column, value: column != value,
}
UNBOX_FORMATS = ("json", "csv")


class DynamicFrame:
    def __init__(self, dataframe: DataFrame, glue_ctx, name: str = ""):
        self._df = dataframe
        self.glue_ctx = glue_ctx
        self.name = name

    @staticmethod
    def fromDF(dataframe: DataFrame, glue_ctx, name: str = "") -> DynamicFrame:
        return DynamicFrame(dataframe, glue_ctx, name)

    def _with(self, dataframe: DataFrame) -> DynamicFrame:
        return DynamicFrame(dataframe, self.glue_ctx, self.name)

    def toDF(self, options=None) -> DataFrame:
        return self._df

    def count(self) -> int:
        return self._df.count()

    def schema(self) -> gluetypes.StructType:
        """The Glue schema (awsglue.gluetypes), as AWS Glue's DynamicFrame.schema() returns it."""
        return gluetypes.from_spark(self._df.schema)

    def printSchema(self) -> None:
        print(self._df._jdf.schema().treeString())

    def show(self, num_rows: int = 20) -> None:
        for row in self._df.limit(num_rows).collect():
            print(json.dumps(row.asDict(recursive=True), default=str))

    def getNumPartitions(self) -> int:
        return self._df.rdd.getNumPartitions()

    def repartition(self, num_partitions: int, transformation_ctx: str = "", **_) -> DynamicFrame:
        return self._with(self._df.repartition(num_partitions))

    def coalesce(self, num_partitions: int, shuffle: bool = False, transformation_ctx: str = "", **_) -> DynamicFrame:
        return self._with(self._df.repartition(num_partitions) if shuffle else self._df.coalesce(num_partitions))

    def errorsCount(self) -> int:
        return 0

    def apply_mapping(self, mappings: Iterable[tuple], case_sensitive: bool = False, transformation_ctx: str = "", **_) -> DynamicFrame:
        """Keeps only the mapped fields: (source path, source type, target name, target type) each."""
        columns = []
        for mapping in mappings:
            if len(mapping) == 4:
                source, _source_type, target, target_type = mapping
            elif len(mapping) == 3:
                source, target, target_type = mapping
            else:
                raise ValueError(f"a mapping is (source, source_type, target, target_type), got {mapping!r}")
            if _has_path(self._df.schema, source):
                column = F.col(_quoted(source))
            else:
                column = F.lit(None)
            columns.append(column.cast(target_type).alias(target))
        return self._with(self._df.select(*columns))

    def resolveChoice(self, specs: list[tuple[str, str]] | None = None, choice: str = "", database: str | None = None,
                      table_name: str | None = None, transformation_ctx: str = "", **_) -> DynamicFrame:
        dataframe = self._df
        if choice == "match_catalog":
            from awsglue import catalog

            wanted = catalog.column_types(catalog.get_table(database, table_name))
            for column in dataframe.columns:
                if column in wanted:
                    dataframe = dataframe.withColumn(column, F.col(f"`{column}`").cast(wanted[column]))
            return self._with(dataframe)
        if choice.startswith(("cast:", "project:")):
            specs = [(column, choice) for column in dataframe.columns] + list(specs or [])
        for path, action in specs or []:
            if action.startswith(("cast:", "project:")):
                top = path.split(".")[0]
                if "." in path:
                    raise ValueError(f"resolveChoice on a nested path ({path}) is not supported by dealab; unnest first")
                if top in dataframe.columns:
                    dataframe = dataframe.withColumn(top, F.col(f"`{top}`").cast(action.split(":", 1)[1]))
            elif action not in ("make_struct", "make_cols"):
                raise ValueError(f"resolveChoice action {action!r} is not one of cast:<type>, project:<type>, make_struct, make_cols")
        return self._with(dataframe)

    def select_fields(self, paths: list[str], transformation_ctx: str = "", **_) -> DynamicFrame:
        present = [path for path in paths if _has_path(self._df.schema, path)]
        return self._with(self._df.select(*[F.col(_quoted(path)).alias(path.split(".")[-1]) for path in present]))

    def drop_fields(self, paths: list[str], transformation_ctx: str = "", **_) -> DynamicFrame:
        dataframe = self._df
        for path in paths:
            if "." not in path:
                dataframe = dataframe.drop(path)
            elif _has_path(dataframe.schema, path):
                parent, _, leaf = path.rpartition(".")
                dataframe = dataframe.withColumn(parent.split(".")[0], _drop_nested(parent, leaf))
        return self._with(dataframe)

    def rename_field(self, oldName: str, newName: str, transformation_ctx: str = "", **_) -> DynamicFrame:
        if "." in oldName:
            raise ValueError(f"rename_field on a nested path ({oldName}) is not supported by dealab; unnest first")
        return self._with(self._df.withColumnRenamed(oldName, newName))

    def filter(self, f: Callable[[dict], bool], transformation_ctx: str = "", **_) -> DynamicFrame:
        spark = self._df.sparkSession
        kept = self._df.rdd.filter(lambda row: bool(f(row.asDict(recursive=True))))
        return self._with(spark.createDataFrame(kept, self._df.schema))

    def map(self, f: Callable[[dict], dict], transformation_ctx: str = "", **_) -> DynamicFrame:
        """Applies `f` to every record; the new schema is read from the records, as DynamicFrames do."""
        spark = self._df.sparkSession
        mapped = self._df.rdd.map(lambda row: json.dumps(f(row.asDict(recursive=True)), default=str))
        if mapped.isEmpty():
            return self._with(spark.createDataFrame([], StructType([])))
        return self._with(spark.read.json(mapped))

    def unnest(self, transformation_ctx: str = "", **_) -> DynamicFrame:
        """Flattens nested structs into top-level fields named with dots (`address.city`)."""
        return self._with(self._df.select(*[column.alias(name) for name, column in _flat_columns(self._df.schema)]))

    def relationalize(self, root_table_name: str, staging_path: str = "", options=None, transformation_ctx: str = "", **_) -> DynamicFrameCollection:
        """Flattens structs and moves every array into its own frame (`root_field`: id, index, field.val...)."""
        frames: dict[str, DataFrame] = {}
        _relationalize_into(frames, root_table_name, self._df)
        return DynamicFrameCollection({name: self._with(frame) for name, frame in frames.items()}, self.glue_ctx)

    def split_fields(self, paths: list[str], name1: str, name2: str, transformation_ctx: str = "", **_) -> DynamicFrameCollection:
        selected = self.select_fields(paths)
        rest = self.drop_fields(paths)
        return DynamicFrameCollection({name1: selected, name2: rest}, self.glue_ctx)

    def join(self, paths1: list[str], paths2: list[str], frame2: DynamicFrame, transformation_ctx: str = "", **_) -> DynamicFrame:
        left, right = self._df, frame2.toDF()
        condition = [left[_quoted(a)] == right[_quoted(b)] for a, b in zip(paths1, paths2)]
        return self._with(left.join(right, condition, "inner"))

    def drop_null_fields(self, transformation_ctx: str = "", **_) -> DynamicFrame:
        """Drops every field that is null in all records (AWS Glue's DropNullFields)."""
        if not self._df.columns:
            return self
        counts = self._df.select([F.count(F.col(f"`{c}`")).alias(c) for c in self._df.columns]).first().asDict()
        return self._with(self._df.drop(*[column for column, non_null in counts.items() if non_null == 0]))

    # ---- spigot, split_rows, unbox, mergeDynamicFrame ---------------------------------------------------
    def spigot(self, path: str, options: dict | None = None, transformation_ctx: str = "", **_) -> DynamicFrame:
        """Writes a sample of the records as JSON lines under `path` and returns the frame as it is: with `prob`
        each record is picked with that probability, then the first `topk` (100 unless given) are kept."""
        options = options or {}
        sample = self._df
        if float(options.get("prob", 1.0)) < 1.0:
            sample = sample.sample(fraction=float(options["prob"]))
        sample.limit(int(options.get("topk", SPIGOT_DEFAULT_TOPK))).coalesce(1).write.mode("append").json(path)
        return self

    def split_rows(self, comparison_dict: dict, name1: str, name2: str, transformation_ctx: str = "", **_) -> DynamicFrameCollection:
        """Records meeting every comparison ({"age": {">": 10, "<": 20}}) go to `name1`, the rest (a missing value
        included) to `name2`."""
        condition = F.lit(True)
        for path, comparisons in comparison_dict.items():
            for operator, value in comparisons.items():
                if operator not in SPLIT_ROWS_OPERATORS:
                    raise ValueError(f"split_rows operator {operator!r} is not one of {sorted(SPLIT_ROWS_OPERATORS)}")
                column = F.col(_quoted(path)) if _has_path(self._df.schema, path) else F.lit(None)
                condition = condition & SPLIT_ROWS_OPERATORS[operator](column, F.lit(value))
        met = F.coalesce(condition, F.lit(False))
        return DynamicFrameCollection({
            name1: DynamicFrame(self._df.where(met), self.glue_ctx, name1),
            name2: DynamicFrame(self._df.where(~met), self.glue_ctx, name2),
        }, self.glue_ctx)

    def unbox(self, path: str, format: str, transformation_ctx: str = "", info: str = "", stageThreshold: int = 0,
              totalThreshold: int = 0, **options) -> DynamicFrame:
        """Parses the string field at `path`, JSON or one CSV line (`separator`, `escaper`), into a struct whose
        schema is `withSchema` (StructType.jsonValue() of awsglue.gluetypes, as a JSON string) or read from the
        values (CSV fields are then col0, col1, ...)."""
        kind = format.lower()
        if kind not in UNBOX_FORMATS:
            raise ValueError(f"unbox format {format!r} is not supported by dealab; use one of {list(UNBOX_FORMATS)}")
        if not _has_path(self._df.schema, path):
            return self
        csv_options = {"sep": options.get("separator", ","), "escape": options.get("escaper", "\\") or "\\"}
        if options.get("withSchema"):
            schema = gluetypes.to_spark(gluetypes._deserialize_json_string(options["withSchema"]))
        else:
            values = self._df.select(F.col(_quoted(path)).alias("value")).where(F.col("value").isNotNull()).rdd.map(lambda row: row.value)
            reader = self._df.sparkSession.read
            if kind == "json":
                schema = reader.json(values).schema
            else:
                inferred = reader.options(inferSchema="true", **csv_options).csv(values).schema
                schema = StructType([StructField(f"col{index}", field.dataType) for index, field in enumerate(inferred.fields)])
        if kind == "json":
            parsed = F.from_json(F.col(_quoted(path)), schema)
        else:
            parsed = F.from_csv(F.col(_quoted(path)), ", ".join(f"`{field.name}` {field.dataType.simpleString()}" for field in schema.fields), csv_options)
        top, _, rest = path.partition(".")
        return self._with(self._df.withColumn(top, F.col(f"`{top}`").withField(rest, parsed) if rest else parsed))

    def mergeDynamicFrame(self, stage_dynamic_frame: DynamicFrame, primary_keys, transformation_ctx: str = "",
                          options: dict | None = None, **_) -> DynamicFrame:
        """The staging frame's records, plus this frame's records whose primary keys the staging frame does not have
        (duplicates kept as they are, as AWS Glue does)."""
        keys = [primary_keys] if isinstance(primary_keys, str) else list(primary_keys)
        staged = stage_dynamic_frame.toDF()
        kept = self._df.join(staged.select(*keys).distinct(), on=keys, how="left_anti")
        return self._with(staged.unionByName(kept, allowMissingColumns=True))


def _drop_nested(parent: str, leaf: str):
    return F.col(_quoted(parent.split(".")[0])).dropFields(".".join(parent.split(".")[1:] + [leaf]))


def _flat_columns(schema: StructType, prefix: str = "", parent=None) -> list[tuple[str, object]]:
    """(dotted name, column) of every leaf field; names that already hold dots are kept as they are."""
    columns = []
    for field in schema.fields:
        path = f"{prefix}.{field.name}" if prefix else field.name
        column = parent.getField(field.name) if parent is not None else F.col(f"`{field.name}`")
        if isinstance(field.dataType, StructType):
            columns.extend(_flat_columns(field.dataType, path, column))
        else:
            columns.append((path, column))
    return columns


def _relationalize_into(frames: dict[str, DataFrame], name: str, dataframe: DataFrame) -> None:
    flat = dataframe.select(*[column.alias(path) for path, column in _flat_columns(dataframe.schema)])
    arrays = [field.name for field in flat.schema.fields if isinstance(field.dataType, ArrayType)]
    if arrays:
        flat = flat.withColumn("__row_id", F.monotonically_increasing_id())
    for array in arrays:
        child = flat.select(
            F.col("__row_id").alias("id"),
            F.posexplode_outer(F.col(f"`{array}`")).alias("index", "__value"),
        ).where(F.col("__value").isNotNull())
        child = child.select("id", "index", F.col("__value").alias(f"{array}.val"))
        _relationalize_into(frames, f"{name}_{array}", child)
        flat = flat.withColumn(array, F.col("__row_id"))
    frames[name] = flat.drop("__row_id") if arrays else flat


class DynamicFrameCollection:
    def __init__(self, dynamic_frames: dict[str, DynamicFrame], glue_ctx):
        self._frames = dict(dynamic_frames)
        self.glue_ctx = glue_ctx

    def __getitem__(self, key: str) -> DynamicFrame:
        return self._frames[key]

    def __len__(self) -> int:
        return len(self._frames)

    def keys(self):
        return self._frames.keys()

    def values(self):
        return self._frames.values()

    def select(self, key: str, transformation_ctx: str = "") -> DynamicFrame:
        return self._frames[key]

    def map(self, callable: Callable, transformation_ctx: str = "") -> DynamicFrameCollection:
        return DynamicFrameCollection({key: callable(frame, transformation_ctx) for key, frame in self._frames.items()}, self.glue_ctx)
