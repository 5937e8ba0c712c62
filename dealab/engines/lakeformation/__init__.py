"""Lake Formation: grants, LF-tags and registered locations, enforced for IAM principals in Glue and Athena."""

from dealab.engines.lakeformation.engine import LakeFormationEngine

__all__ = ["LakeFormationEngine"]
