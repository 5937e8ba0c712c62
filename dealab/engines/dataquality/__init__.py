from dealab.engines.dataquality.engine import DataQualityEngine
