"""DynamicFrame, the AWS Glue frame, over a Spark DataFrame.

Text read through GlueContext is typed record by record, as AWS Glue does, so a column whose records
disagree is a *choice* (see choice.py for its encoding); `resolveChoice` resolves it, `toDF()` hands it to
Spark as a struct of its types. Records that fail parsing are error records: not in the frame, but counted by
`errorsCount()` / `stageErrorsCount()` and returned by `errorsAsDynamicFrame()`.
Records handed to `filter` and `map` functions are dicts, as in AWS Glue (`rec["field"]`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable

from awsglue import choice as _choice
from awsglue import gluetypes
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, StringType, StructField, StructType

# What errorsAsDynamicFrame() holds: one `error` field per error record, with the message and the input.
ERROR_SCHEMA = StructType([StructField("error", StructType([
    StructField("msg", StringType()), StructField("input", StringType()),
    StructField("callsite", StructType([StructField("site", StringType()), StructField("info", StringType())])),
]))])


class GlueErrorThresholdException(Exception):
    """More error records than a frame's stageThreshold / totalThreshold allow."""


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


def _split_path(path: str) -> list[str]:
    """`a.b` → [a, b]; backticks keep a literal dot: `` `a.b`.c `` → [a.b, c], as in AWS Glue."""
    parts, current, quoted, index = [], "", False, 0
    while index < len(path):
        char = path[index]
        if char == "`":
            if quoted and path[index + 1:index + 2] == "`":
                current += "`"
                index += 1
            else:
                quoted = not quoted
        elif char == "." and not quoted:
            parts.append(current)
            current = ""
        else:
            current += char
        index += 1
    parts.append(current)
    return parts


def _find_field(schema: StructType, parts: list[str], case_sensitive: bool = True) -> list[StructField] | None:
    """The fields along a path (one per part), or None when the path is not in the schema."""
    found, current = [], schema
    for part in parts:
        if not isinstance(current, StructType):
            return None
        match = next((f for f in current.fields if f.name == part), None)
        if match is None and not case_sensitive:
            match = next((f for f in current.fields if f.name.lower() == part.lower()), None)
        if match is None:
            return None
        found.append(match)
        current = match.dataType
    return found


def _column_at(fields: list[StructField]):
    column = F.col(_choice.quoted(fields[0].name))
    for field in fields[1:]:
        column = column.getField(field.name)
    return column


def _nest(tree, name: str):
    """The column for one entry of apply_mapping's target tree: a value, or a struct of further entries."""
    if isinstance(tree, dict):
        return F.struct(*[_nest(child, child_name) for child_name, child in tree.items()]).alias(name)
    return tree.alias(name)


def _record_converter(schema: StructType):
    """Row → dict as AWS Glue hands records to Python code: a choice field is the value it holds."""
    choices = _choice.choice_columns(schema)

    def convert(row) -> dict:
        record = row.asDict(recursive=True)
        for name in choices:
            value = record.get(name)
            if isinstance(value, dict):
                record[name] = next((item for item in value.values() if item is not None), None)
        return record

    return convert


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
        self._errors: DataFrame | None = None  # error records of this frame and of the frames it came from
        self._stage_errors: DataFrame | None = None  # those of the step that made this frame
        self._thresholds = (0, 0)  # stageThreshold, totalThreshold: 0 is no limit

    @staticmethod
    def fromDF(dataframe: DataFrame, glue_ctx, name: str = "") -> DynamicFrame:
        return DynamicFrame(dataframe, glue_ctx, name)

    def _with(self, dataframe: DataFrame) -> DynamicFrame:
        frame = DynamicFrame(dataframe, self.glue_ctx, self.name)
        frame._errors = self._errors
        return frame

    def _with_stage_errors(self, errors: DataFrame | None, stage_threshold: int = 0, total_threshold: int = 0) -> DynamicFrame:
        """This frame with `errors` as the error records of the step that made it."""
        self._stage_errors = errors
        if errors is not None:
            self._errors = errors if self._errors is None else self._errors.unionByName(errors)
        self._thresholds = (int(stage_threshold or 0), int(total_threshold or 0))
        return self

    def toDF(self, options=None) -> DataFrame:
        """The Spark DataFrame; a choice that is still unresolved becomes a struct of its types, as in AWS Glue."""
        return _choice.to_plain_dataframe(self._df)

    def count(self) -> int:
        return self._df.count()

    def schema(self) -> gluetypes.StructType:
        """The Glue schema (awsglue.gluetypes), as AWS Glue's DynamicFrame.schema() returns it."""
        return gluetypes.StructType([
            gluetypes.Field(field.name, gluetypes.ChoiceType([gluetypes.from_spark(f.dataType) for f in field.dataType.fields])
                            if _choice.is_choice(field) else gluetypes.from_spark(field.dataType))
            for field in self._df.schema.fields
        ])

    def printSchema(self) -> None:
        """The schema as AWS Glue prints it (`|-- provider id: choice` with `|    |-- long`, `|    |-- string`)."""
        print(_choice.tree_string(self._df.schema))

    def show(self, num_rows: int = 20) -> None:
        convert = _record_converter(self._df.schema)
        for row in self._df.limit(num_rows).collect():
            print(json.dumps(convert(row), default=str))

    def getNumPartitions(self) -> int:
        return self._df.rdd.getNumPartitions()

    def repartition(self, num_partitions: int, transformation_ctx: str = "", **_) -> DynamicFrame:
        return self._with(self._df.repartition(num_partitions))

    def coalesce(self, num_partitions: int, shuffle: bool = False, transformation_ctx: str = "", **_) -> DynamicFrame:
        return self._with(self._df.repartition(num_partitions) if shuffle else self._df.coalesce(num_partitions))

    def errorsCount(self) -> int:
        """Error records of this frame, those of the frames it was made from included."""
        return 0 if self._errors is None else self._errors.count()

    def stageErrorsCount(self) -> int:
        """Error records of the step that made this frame."""
        return 0 if self._stage_errors is None else self._stage_errors.count()

    def errorsAsDynamicFrame(self) -> DynamicFrame:
        """The error records, each an `error` field holding `msg`, `input` and `callsite`."""
        errors = self._errors
        if errors is None:
            errors = self._df.sparkSession.createDataFrame([], ERROR_SCHEMA)
        return DynamicFrame(errors, self.glue_ctx, f"{self.name}_errors" if self.name else "errors")

    def assertErrorThreshold(self) -> None:
        """Raises when the error records exceed the frame's stageThreshold or totalThreshold (0: no limit)."""
        stage_threshold, total_threshold = self._thresholds
        if not stage_threshold and not total_threshold:
            return
        stage, total = self.stageErrorsCount(), self.errorsCount()
        if stage_threshold and stage > stage_threshold:
            raise GlueErrorThresholdException(f"{stage} error records in this stage exceed its stageThreshold of {stage_threshold}")
        if total_threshold and total > total_threshold:
            raise GlueErrorThresholdException(f"{total} error records in all exceed the totalThreshold of {total_threshold}")

    def _field_path(self, path: str, case_sensitive: bool = True) -> list[StructField] | None:
        """The fields along `path` (dots nest, backticks quote), or a top-level field named `path` itself."""
        schema = self._df.schema
        return _find_field(schema, _split_path(path), case_sensitive) or _find_field(schema, [path], case_sensitive)

    def apply_mapping(self, mappings: Iterable[tuple], case_sensitive: bool = False, transformation_ctx: str = "", **_) -> DynamicFrame:
        """Keeps only the mapped fields: (source path, source type, target path, target type) each. A dotted target
        (`provider.id`) builds a struct `provider` with the field `id`; backticks keep a literal dot (`` `a.b` ``).
        A missing source gives nulls; a choice source is cast to the target type."""
        tree: dict = {}
        for mapping in mappings:
            if len(mapping) == 4:
                source, _source_type, target, target_type = mapping
            elif len(mapping) == 3:
                source, target, target_type = mapping
            else:
                raise ValueError(f"a mapping is (source, source_type, target, target_type), got {mapping!r}")
            fields = self._field_path(source, case_sensitive)
            if fields is None:
                column = F.lit(None).cast(target_type)
            elif _choice.is_choice(fields[-1]):
                column = _choice.cast_choice(_column_at(fields), fields[-1].dataType, target_type)
            else:
                column = _column_at(fields).cast(target_type)
            *parents, leaf = _split_path(target)
            node = tree
            for part in parents:
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise ValueError(f"apply_mapping target {target!r} nests under {part!r}, which another mapping made a value")
            if isinstance(node.get(leaf), dict):
                raise ValueError(f"apply_mapping target {target!r} is also a struct of other targets")
            node[leaf] = column
        return self._with(self._df.select(*[_nest(value, name) for name, value in tree.items()]))

    def resolveChoice(self, specs: list[tuple[str, str]] | None = None, choice: str = "", database: str | None = None,
                      table_name: str | None = None, transformation_ctx: str = "", info: str = "", stageThreshold: int = 0,
                      totalThreshold: int = 0, catalog_id: str | None = None, **_) -> DynamicFrame:
        """Resolves choices as AWS Glue does, per path (`specs=[(path, action)]`) or for every choice (`choice=`):
        `cast:<type>` (every value cast, one that does not parse becomes null), `project:<type>` (values of that type
        kept, the others null), `make_cols` (one column `<name>_<type>` per type), `make_struct` (a struct of the
        types) and `match_catalog` (cast to the type of the column in `database`.`table_name`). cast and project
        also cast a field that is not a choice; make_cols and make_struct leave it as it is."""
        if specs and choice:
            raise ValueError("resolveChoice takes specs or choice, not both")
        dataframe = self._df
        catalog_types: dict[str, str] = {}
        actions = [action for _, action in specs or []] + [choice]
        if "match_catalog" in actions:
            if not (database and table_name):
                raise ValueError("resolveChoice match_catalog needs database and table_name")
            from awsglue import catalog

            catalog_types = catalog.column_types(catalog.get_table(database, table_name))
        if choice == "match_catalog":
            specs = [(column, choice) for column in dataframe.columns if column in catalog_types or column.lower() in catalog_types]
        elif choice:
            specs = [(column, choice) for column in _choice.choice_columns(dataframe.schema)]
        for path, action in specs or []:
            dataframe = _resolve(dataframe, path, action, catalog_types)
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
        convert = _record_converter(self._df.schema)
        kept = self._df.rdd.filter(lambda row: bool(f(convert(row))))
        return self._with(spark.createDataFrame(kept, self._df.schema))

    def map(self, f: Callable[[dict], dict], transformation_ctx: str = "", **_) -> DynamicFrame:
        """Applies `f` to every record; the new schema is read from the records, as DynamicFrames do."""
        spark = self._df.sparkSession
        convert = _record_converter(self._df.schema)
        mapped = self._df.rdd.map(lambda row: json.dumps(f(convert(row)), default=str))
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
        """An inner equality join. A field both frames have, outside the keys, appears once, as in AWS Glue:
        frame2's value where it has one, frame1's otherwise (a choice of both types when their types differ).
        A key both frames name alike appears once too."""
        paths1 = [paths1] if isinstance(paths1, str) else list(paths1)
        paths2 = [paths2] if isinstance(paths2, str) else list(paths2)
        left = self._df
        right_names = {name: f"__frame2_{index}" for index, name in enumerate(frame2._df.columns)}
        right = frame2._df.select(*[F.col(_choice.quoted(name)).alias(alias) for name, alias in right_names.items()])
        condition = F.lit(True)
        for path1, path2 in zip(paths1, paths2):
            fields1 = self._field_path(path1)
            fields2 = frame2._field_path(path2)
            if fields1 is None or fields2 is None:
                missing = path1 if fields1 is None else path2
                raise ValueError(f"join key {missing!r} is not a field of its frame")
            key2 = F.col(_choice.quoted(right_names[fields2[0].name]))
            for field in fields2[1:]:
                key2 = key2.getField(field.name)
            condition = condition & (_column_at(fields1) == key2)
        joined = left.join(right, condition, "inner")
        same_keys = {a for a, b in zip(paths1, paths2) if a == b}
        right_fields = {field.name: field for field in frame2._df.schema.fields}
        columns = []
        for field in left.schema.fields:
            mine = F.col(_choice.quoted(field.name))
            other = right_fields.get(field.name)
            if other is None or field.name in same_keys:
                columns.append(mine)
                continue
            theirs = F.col(_choice.quoted(right_names[field.name]))
            columns.append(_merged(field, mine, other, theirs))
        columns += [F.col(_choice.quoted(alias)).alias(name) for name, alias in right_names.items()
                    if name not in {field.name for field in left.schema.fields}]
        return self._with(joined.select(*columns))

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


RESOLVE_KINDS = ("cast", "project", "make_cols", "make_struct", "match_catalog")


def _resolve(dataframe: DataFrame, path: str, action: str, catalog_types: dict[str, str]) -> DataFrame:
    """`dataframe` with one resolveChoice (path, action) applied."""
    kind, _, target = action.strip().partition(":")
    if kind not in RESOLVE_KINDS or (kind in ("cast", "project")) != bool(target):
        raise ValueError(f"resolveChoice action {action!r} is not one of cast:<type>, project:<type>, make_cols, make_struct, match_catalog")
    if "[]" in path:
        raise ValueError(f"resolveChoice on a path into an array ({path}) is not supported by dealab; relationalize first")
    schema = dataframe.schema
    fields = _find_field(schema, _split_path(path)) or _find_field(schema, [path])
    if fields is None:
        return dataframe
    if kind == "match_catalog":
        target = catalog_types.get(fields[0].name) or catalog_types.get(fields[0].name.lower())
        if target is None or len(fields) > 1:
            return dataframe
        kind = "cast"
    field, column = fields[-1], _column_at(fields)
    is_choice = _choice.is_choice(field)
    if kind == "cast":
        resolved = _choice.cast_choice(column, field.dataType, target) if is_choice else column.cast(target)
    elif kind == "project":
        resolved = _choice.project_choice(column, field.dataType, target) if is_choice else column.cast(target)
    elif not is_choice:
        return dataframe
    else:
        resolved = column
    if len(fields) > 1:
        top = fields[0].name
        return dataframe.withColumn(top, F.col(_choice.quoted(top)).withField(".".join(f.name for f in fields[1:]), resolved))
    name = field.name
    if kind == "make_cols":
        first, *others = field.dataType.fields
        columns = [column.getField(first.name).alias(f"{name}_{first.name}") if c == name else F.col(_choice.quoted(c))
                   for c in dataframe.columns]
        # AWS Glue keeps the first type's column in place and adds the others after the last field.
        return dataframe.select(*columns, *[column.getField(other.name).alias(f"{name}_{other.name}") for other in others])
    struct = field.dataType if kind == "make_struct" else None
    return dataframe.select(*[_choice.plain(resolved, c, struct) if c == name else F.col(_choice.quoted(c)) for c in dataframe.columns])


def _drop_nested(parent: str, leaf: str):
    return F.col(_quoted(parent.split(".")[0])).dropFields(".".join(parent.split(".")[1:] + [leaf]))


def _merged(field: StructField, mine, other: StructField, theirs):
    """One field from two same-named ones of a join: frame2's value where it has one, else frame1's."""
    if field.dataType == other.dataType:
        merged = F.coalesce(theirs, mine)
        return merged.alias(field.name, metadata={_choice.CHOICE_KEY: True}) if _choice.is_choice(field) else merged.alias(field.name)
    if _choice.is_choice(field) or _choice.is_choice(other):
        return theirs.alias(field.name)
    mine_type, their_type = _choice.glue_type_name(field.dataType), _choice.glue_type_name(other.dataType)
    if mine_type == their_type:  # e.g. two structs with different fields: frame2's wins
        return theirs.alias(field.name)
    return _choice.choice_column([(their_type, theirs), (mine_type, F.when(theirs.isNull(), mine))], field.name)


def _flat_columns(schema: StructType, prefix: str = "", parent=None) -> list[tuple[str, object]]:
    """(dotted name, column) of every leaf field (a choice is a leaf); names that already hold dots are kept."""
    columns = []
    for field in schema.fields:
        path = f"{prefix}.{field.name}" if prefix else field.name
        column = parent.getField(field.name) if parent is not None else F.col(f"`{field.name}`")
        if isinstance(field.dataType, StructType) and not _choice.is_choice(field):
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
