"""awsglue.transforms: the transform classes AWS Glue scripts call as `Transform.apply(frame=..., ...)`."""

from __future__ import annotations

from awsglue.dynamicframe import DynamicFrame, DynamicFrameCollection


class GlueTransform:
    @classmethod
    def apply(cls, *args, **kwargs):
        return cls()(*args, **kwargs)


class ApplyMapping(GlueTransform):
    def __call__(self, frame: DynamicFrame, mappings, case_sensitive: bool = False, transformation_ctx: str = "", **_) -> DynamicFrame:
        return frame.apply_mapping(mappings, case_sensitive, transformation_ctx)


class ResolveChoice(GlueTransform):
    def __call__(self, frame: DynamicFrame, specs=None, choice: str = "", database=None, table_name=None, transformation_ctx: str = "", **_) -> DynamicFrame:
        return frame.resolveChoice(specs, choice, database, table_name, transformation_ctx)


class DropNullFields(GlueTransform):
    def __call__(self, frame: DynamicFrame, transformation_ctx: str = "", **_) -> DynamicFrame:
        return frame.drop_null_fields(transformation_ctx)


class Filter(GlueTransform):
    def __call__(self, frame: DynamicFrame, f, transformation_ctx: str = "", **_) -> DynamicFrame:
        return frame.filter(f, transformation_ctx)


class Map(GlueTransform):
    def __call__(self, frame: DynamicFrame, f, transformation_ctx: str = "", **_) -> DynamicFrame:
        return frame.map(f, transformation_ctx)


class Join(GlueTransform):
    def __call__(self, frame1: DynamicFrame, frame2: DynamicFrame, keys1, keys2, transformation_ctx: str = "", **_) -> DynamicFrame:
        keys1 = [keys1] if isinstance(keys1, str) else list(keys1)
        keys2 = [keys2] if isinstance(keys2, str) else list(keys2)
        return frame1.join(keys1, keys2, frame2, transformation_ctx)


class SelectFields(GlueTransform):
    def __call__(self, frame: DynamicFrame, paths, transformation_ctx: str = "", **_) -> DynamicFrame:
        return frame.select_fields(paths, transformation_ctx)


class DropFields(GlueTransform):
    def __call__(self, frame: DynamicFrame, paths, transformation_ctx: str = "", **_) -> DynamicFrame:
        return frame.drop_fields(paths, transformation_ctx)


class RenameField(GlueTransform):
    def __call__(self, frame: DynamicFrame, old_name: str, new_name: str, transformation_ctx: str = "", **_) -> DynamicFrame:
        return frame.rename_field(old_name, new_name, transformation_ctx)


class Relationalize(GlueTransform):
    def __call__(self, frame: DynamicFrame, staging_path: str = "", name: str = "roottable", options=None, transformation_ctx: str = "", **_) -> DynamicFrameCollection:
        return frame.relationalize(name, staging_path, options, transformation_ctx)


class SplitFields(GlueTransform):
    def __call__(self, frame: DynamicFrame, paths, name1: str = "", name2: str = "", transformation_ctx: str = "", **_) -> DynamicFrameCollection:
        return frame.split_fields(paths, name1 or f"{frame.name}_split_0", name2 or f"{frame.name}_split_1", transformation_ctx)


class SelectFromCollection(GlueTransform):
    def __call__(self, dfc: DynamicFrameCollection, key: str, transformation_ctx: str = "", **_) -> DynamicFrame:
        return dfc.select(key, transformation_ctx)



class MapToCollection(GlueTransform):
    def __call__(self, dfc: DynamicFrameCollection, callable, transformation_ctx: str = "", **_) -> DynamicFrameCollection:
        return dfc.map(callable, transformation_ctx)


class Spigot(GlueTransform):
    def __call__(self, frame: DynamicFrame, path: str, options=None, transformation_ctx: str = "", **_) -> DynamicFrame:
        return frame.spigot(path, options, transformation_ctx)


class SplitRows(GlueTransform):
    def __call__(self, frame: DynamicFrame, comparison_dict: dict, name1: str = "frame1", name2: str = "frame2",
                 transformation_ctx: str = "", **_) -> DynamicFrameCollection:
        return frame.split_rows(comparison_dict, name1, name2, transformation_ctx)


class Unbox(GlueTransform):
    def __call__(self, frame: DynamicFrame, path: str, format: str, transformation_ctx: str = "", info: str = "",
                 stageThreshold: int = 0, totalThreshold: int = 0, **options) -> DynamicFrame:
        return frame.unbox(path, format, transformation_ctx, info, stageThreshold, totalThreshold, **options)


class UnnestFrame(GlueTransform):
    def __call__(self, frame: DynamicFrame, transformation_ctx: str = "", **_) -> DynamicFrame:
        return frame.unnest(transformation_ctx)
