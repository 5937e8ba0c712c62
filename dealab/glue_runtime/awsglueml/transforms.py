"""Glue's Detect PII transform for job scripts (awsglueml.transforms.EntityDetector), as Glue Studio's generated
scripts call it.

One table, not two: the entity types are the `glue_name` column of the table Macie's managed data identifiers come
from (dealab/engines/macie/identifiers.py), matched by pattern and validator (Luhn, mod 97, SSN rules) only — no
model is downloaded or run, and Macie's keyword requirements do not apply, since Glue looks at one cell at a time.

- `detect(frame, entity_types, output_column_name="DetectedEntities")` returns the frame with one more column: a
  map from column name to the entities found in that row's value, each {entityType, start, end} (end exclusive),
  which is what Glue Studio's generated masking code reads to replace or hash the spans.
- `classify_columns(frame, entity_types, sample_fraction=0.1, threshold_fraction=0.1)` samples the rows and returns
  {column: [entity types]} for the types found in at least `threshold_fraction` of the sampled rows.
"""

from __future__ import annotations

from collections.abc import Callable

from awsglue.dynamicframe import DynamicFrame
from pyspark.sql import functions as F
from pyspark.sql.types import ArrayType, IntegerType, MapType, StringType, StructField, StructType

from dealab.engines.macie.identifiers import glue_detectors

ENTITY = StructType([StructField("entityType", StringType()), StructField("start", IntegerType()), StructField("end", IntegerType())])
DETECTED = MapType(StringType(), ArrayType(ENTITY))
SAMPLE_SEED = 17  # the same rows sampled on every run of a script, so a classification is repeatable


def _row_entities(columns: list[str], detectors) -> Callable[..., dict]:
    def detect_row(*values) -> dict:
        found = {}
        for column, value in zip(columns, values):
            if value is None:
                continue
            text = str(value)
            entities = [{"entityType": detector.glue_name, "start": start, "end": end}
                        for detector in detectors for start, end in detector.find(text, keywords_apply=False)]
            if entities:
                found[column] = sorted(entities, key=lambda entity: (entity["start"], entity["end"]))
        return found

    return detect_row


def _entity_types(entity_types_to_detect) -> list[str]:
    if isinstance(entity_types_to_detect, dict):
        raise ValueError("detect() with detectionParameters (fine-grained actions) is not supported by dealab: pass a list of "
                         "entity types and mask in the script, as Glue Studio's generated code does (docs/macie.md)")
    return list(entity_types_to_detect)


class EntityDetector:
    def detect(self, frame: DynamicFrame, entity_types_to_detect, output_column_name: str = "DetectedEntities",
               detection_sensitivity: str = "LOW") -> DynamicFrame:
        detectors = glue_detectors(_entity_types(entity_types_to_detect))
        dataframe = frame.toDF()
        columns = dataframe.columns
        detect_row = F.udf(_row_entities(columns, detectors), DETECTED)
        detected = dataframe.withColumn(output_column_name, detect_row(*[F.col(f"`{column}`") for column in columns]))
        return DynamicFrame.fromDF(detected, frame.glue_ctx, f"{frame.name}_detected" if frame.name else "detected")

    def classify_columns(self, frame: DynamicFrame, entity_types_to_detect, sample_fraction: float = 0.1,
                         threshold_fraction: float = 0.1, detection_sensitivity: str = "LOW") -> dict[str, list[str]]:
        detectors = glue_detectors(_entity_types(entity_types_to_detect))
        dataframe = frame.toDF()
        sampled = dataframe if sample_fraction >= 1 else dataframe.sample(fraction=sample_fraction, seed=SAMPLE_SEED)
        detect_row = _row_entities(dataframe.columns, detectors)
        rows, hits = 0, {}
        for row in sampled.toLocalIterator():
            rows += 1
            for column, entities in detect_row(*row).items():
                for entity_type in {entity["entityType"] for entity in entities}:
                    hits[(column, entity_type)] = hits.get((column, entity_type), 0) + 1
        classified: dict[str, list[str]] = {}
        for (column, entity_type), count in sorted(hits.items()):
            if rows and count / rows >= threshold_fraction:
                classified.setdefault(column, []).append(entity_type)
        return classified
