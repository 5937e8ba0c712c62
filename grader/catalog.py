"""What several labs' checks ask of the Glue Data Catalog, said once."""

from __future__ import annotations

from grader.core import Fail, LabContext


def glue_table(ctx: LabContext, database: str, name: str, when_missing: str = "") -> dict:
    """The table's Glue definition; a FAIL naming it (and what usually makes it) when it is not there."""
    glue = ctx.client("glue")
    try:
        return glue.get_table(DatabaseName=database, Name=name)["Table"]
    except glue.exceptions.EntityNotFoundException:
        raise Fail(f"table {database}.{name} does not exist in the Glue Data Catalog" + (f"; {when_missing}" if when_missing else "")) from None
