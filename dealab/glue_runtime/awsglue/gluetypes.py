"""awsglue.gluetypes: the Glue type classes that `DynamicFrame.schema()` returns, as in AWS Glue's library.

A Glue schema is a StructType of Field(name, dataType); atomic types are classes whose `typeName()` is the
lower-case class name without "Type" (IntegerType is "int"); ChoiceType holds the types one field takes across
records. `from_spark` translates a Spark type, which is what dealab's frames carry underneath.
"""

from __future__ import annotations

import json


class DataType:
    def __init__(self, properties: dict | None = None):
        self.properties = dict(properties or {})

    def __eq__(self, other) -> bool:
        return isinstance(other, self.__class__) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(str(self.__class__))

    @classmethod
    def typeName(cls) -> str:
        return cls.__name__[:-4].lower()

    def jsonValue(self) -> dict:
        return {"dataType": self.typeName(), "properties": self.properties}

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self.properties})"


class AtomicType(DataType):
    @classmethod
    def fromJsonValue(cls, json_value: dict):
        return cls(**{key: value for key, value in json_value.items() if key != "dataType"})


class BinaryType(AtomicType):
    pass


class BooleanType(AtomicType):
    pass


class ByteType(AtomicType):
    pass


class DateType(AtomicType):
    pass


class DecimalType(AtomicType):
    def __init__(self, precision: int = 10, scale: int = 2, properties: dict | None = None):
        super().__init__(properties)
        self.precision, self.scale = precision, scale

    def __repr__(self) -> str:
        return f"DecimalType({self.precision}, {self.scale}, {self.properties})"

    def jsonValue(self) -> dict:
        return {**super().jsonValue(), "precision": self.precision, "scale": self.scale}


class DoubleType(AtomicType):
    pass


class FloatType(AtomicType):
    pass


class IntegerType(AtomicType):
    @classmethod
    def typeName(cls) -> str:
        return "int"


class LongType(AtomicType):
    pass


class NullType(AtomicType):
    pass


class ShortType(AtomicType):
    pass


class StringType(AtomicType):
    pass


class TimestampType(AtomicType):
    pass


class UnknownType(AtomicType):
    pass


class ArrayType(DataType):
    def __init__(self, elementType: DataType | None = None, properties: dict | None = None):
        super().__init__(properties)
        self.elementType = elementType if elementType is not None else UnknownType()

    def __repr__(self) -> str:
        return f"ArrayType({self.elementType}, {self.properties})"

    def jsonValue(self) -> dict:
        return {**super().jsonValue(), "elementType": self.elementType.jsonValue()}

    @classmethod
    def fromJsonValue(cls, json_value: dict):
        return cls(_from_json_value(json_value["elementType"]), json_value.get("properties", {}))


class MapType(DataType):
    def __init__(self, valueType: DataType | None = None, properties: dict | None = None):
        super().__init__(properties)
        self.valueType = valueType if valueType is not None else UnknownType()

    def __repr__(self) -> str:
        return f"MapType({self.valueType}, {self.properties})"

    def jsonValue(self) -> dict:
        return {**super().jsonValue(), "valueType": self.valueType.jsonValue()}

    @classmethod
    def fromJsonValue(cls, json_value: dict):
        return cls(_from_json_value(json_value["valueType"]), json_value.get("properties", {}))


class ChoiceType(DataType):
    """The types one field has across records, keyed by type name (a field read as int here and string there)."""

    def __init__(self, choices=(), properties: dict | None = None):
        super().__init__(properties)
        self.choices: dict[str, DataType] = {}
        for choice in choices:
            self.add(choice)

    def __repr__(self) -> str:
        ordered = sorted(self.choices.values(), key=lambda choice: choice.typeName())
        return f"ChoiceType([{','.join(str(choice) for choice in ordered)}], {self.properties})"

    def add(self, new_choice: DataType) -> None:
        if new_choice.typeName() in self.choices:
            raise ValueError("Attempting to insert duplicate choice", new_choice)
        self.choices[new_choice.typeName()] = new_choice

    def jsonValue(self) -> dict:
        return {**super().jsonValue(), "choices": [choice.jsonValue() for choice in self.choices.values()]}

    @classmethod
    def fromJsonValue(cls, json_value: dict):
        return cls([_from_json_value(choice) for choice in json_value["choices"]], json_value.get("properties", {}))


class Field:
    def __init__(self, name: str, dataType: DataType, properties: dict | None = None):
        if not isinstance(dataType, DataType):
            raise TypeError(f"dataType should be DataType. Got {dataType.__class__}")
        self.name, self.dataType, self.properties = name, dataType, dict(properties or {})

    def __eq__(self, other) -> bool:
        return isinstance(other, Field) and self.name == other.name and self.dataType == other.dataType

    def __repr__(self) -> str:
        return f"Field({self.name}, {self.dataType}, {self.properties})"

    def jsonValue(self) -> dict:
        return {"name": self.name, "container": self.dataType.jsonValue(), "properties": self.properties}

    @classmethod
    def fromJsonValue(cls, json_value: dict):
        return cls(json_value["name"], _from_json_value(json_value["container"]), json_value.get("properties", {}))


class StructType(DataType):
    def __init__(self, fields=(), properties: dict | None = None):
        super().__init__(properties)
        self.fields: list[Field] = list(fields)
        self.field_map = {field.name: field for field in self.fields}

    def __iter__(self):
        return iter(self.fields)

    def __repr__(self) -> str:
        return f"StructType([{','.join(str(field) for field in self.fields)}], {self.properties})"

    def add(self, field: Field) -> None:
        self.fields.append(field)
        self.field_map[field.name] = field

    def hasField(self, field) -> bool:
        return (field.name if isinstance(field, Field) else field) in self.field_map

    def getField(self, field) -> Field:
        return self.field_map[field.name if isinstance(field, Field) else field]

    def jsonValue(self) -> dict:
        return {**super().jsonValue(), "fields": [field.jsonValue() for field in self.fields]}

    @classmethod
    def fromJsonValue(cls, json_value: dict):
        return cls([Field.fromJsonValue(field) for field in json_value["fields"]], json_value.get("properties", {}))


_ALL_TYPES = {kind.typeName(): kind for kind in (
    BinaryType, BooleanType, ByteType, DateType, DecimalType, DoubleType, FloatType, IntegerType, LongType, NullType,
    ShortType, StringType, TimestampType, UnknownType, ArrayType, ChoiceType, MapType, StructType)}


def _from_json_value(json_value: dict) -> DataType:
    return _ALL_TYPES[json_value["dataType"]].fromJsonValue(json_value)


def _deserialize_json_string(json_string: str) -> DataType:
    return _from_json_value(json.loads(json_string))


# Spark's atomic type names (DataType.typeName()) → the Glue type each reads as.
_FROM_SPARK_ATOMIC = {
    "binary": BinaryType, "boolean": BooleanType, "byte": ByteType, "date": DateType, "double": DoubleType,
    "float": FloatType, "integer": IntegerType, "long": LongType, "void": NullType, "short": ShortType,
    "string": StringType, "timestamp": TimestampType, "timestamp_ntz": TimestampType,
}
_TO_SPARK_ATOMIC = {glue: spark_name for spark_name, glue in _FROM_SPARK_ATOMIC.items() if spark_name != "timestamp_ntz"}


def from_spark(spark_type) -> DataType:
    """The Glue type of a Spark type (a frame's choice columns, encoded by the frame, are the frame's to translate)."""
    from pyspark.sql import types as spark

    if isinstance(spark_type, spark.StructType):
        return StructType([Field(field.name, from_spark(field.dataType)) for field in spark_type.fields])
    if isinstance(spark_type, spark.ArrayType):
        return ArrayType(from_spark(spark_type.elementType))
    if isinstance(spark_type, spark.MapType):
        return MapType(from_spark(spark_type.valueType))
    if isinstance(spark_type, spark.DecimalType):
        return DecimalType(spark_type.precision, spark_type.scale)
    return _FROM_SPARK_ATOMIC.get(spark_type.typeName(), UnknownType)()


def to_spark(glue_type: DataType):
    """The Spark type of a Glue type (a ChoiceType has none: resolve it first)."""
    from pyspark.sql import types as spark

    if isinstance(glue_type, StructType):
        return spark.StructType([spark.StructField(field.name, to_spark(field.dataType)) for field in glue_type.fields])
    if isinstance(glue_type, ArrayType):
        return spark.ArrayType(to_spark(glue_type.elementType))
    if isinstance(glue_type, MapType):
        return spark.MapType(spark.StringType(), to_spark(glue_type.valueType))
    if isinstance(glue_type, DecimalType):
        return spark.DecimalType(glue_type.precision, glue_type.scale)
    if type(glue_type) not in _TO_SPARK_ATOMIC:
        raise ValueError(f"{glue_type!r} has no Spark type; resolve a ChoiceType (resolveChoice) first")
    return spark._parse_datatype_json_value(_TO_SPARK_ATOMIC[type(glue_type)])
