"""The seam other engines read catalog tables through (Glue Data Quality): a locked-down DuckDB database whose
s3:// reads are the caller's GetObject calls through the gateway (s3reads.py), and catalog tables turned into
DuckDB relations exactly as Athena's queries see them (planner.py, catalog.py). Nothing here is copied: the
reader only puts the Athena engine's own pieces together for a caller that is not a query."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import duckdb

from dealab.engines.athena import sandbox, translate
from dealab.engines.athena.catalog import GlueCatalog, Table, relation_sql
from dealab.engines.athena.planner import Planner
from dealab.engines.athena.s3reads import CallerS3, ObjectCache, S3ReadFileSystem


class TableNotFound(LookupError):
    pass


class CatalogTableReader:
    """One database for one piece of work (an evaluation run): `relation(database, table)` gives the SELECT that
    reads a catalog table; `close()` throws the database and its scratch folder away."""

    def __init__(self, catalog: GlueCatalog, caller: CallerS3, scratch: Path):
        scratch.mkdir(parents=True, exist_ok=True)
        self.catalog = catalog
        self.folder = Path(tempfile.mkdtemp(prefix="read-", dir=scratch.resolve()))
        self.connection = duckdb.connect(config=sandbox.CONNECT_CONFIG)
        # registered before the lockdown: a file system registered after it is refused every path
        files = S3ReadFileSystem(caller, ObjectCache(), catalog.listed)
        self.connection.register_filesystem(files)
        self.s3_prefix = files.open_reads().prefix  # this reader's reads, for as long as it lives
        for statement in [*translate.setup_statements(), *sandbox.lockdown_statements(self.folder)]:
            self.connection.execute(statement)

    def table(self, database: str, name: str) -> Table:
        found = self.catalog.table(database.lower(), name.lower())
        if found is None:
            raise TableNotFound(f"Table {name} in database {database} not found")
        return found

    def relation(self, database: str, name: str) -> str:
        table = self.table(database, name)
        planner = Planner(self.catalog, self.connection, "", database, s3_prefix=self.s3_prefix)
        partitions = planner.partitions_for(table)
        planner.fill_files(table, partitions)
        return relation_sql(table, partitions, union_by_name=True)

    def close(self) -> None:
        self.connection.close()
        shutil.rmtree(self.folder, ignore_errors=True)
