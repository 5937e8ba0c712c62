"""AWS Glue Data Quality in job scripts (`from awsgluedq.transforms import EvaluateDataQuality`), as on AWS."""
