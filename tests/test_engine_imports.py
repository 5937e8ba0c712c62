"""Engines load when first used: a stack starts with the few every S3 call passes, and imports the others on the
first request for a service they take; the heavy libraries of the data plane (DuckDB, sqlglot, Arrow, pandas,
Spark) load only when an engine first needs them, so an idle stack stays small (README: stack RSS idle)."""

import json
import subprocess
import sys

import pytest

from dealab.engines import ENGINES, FROM_START, USED_FILE, StackEngines, engine_class, services_taken
from dealab.wire.engine import ANY_OPERATION, EngineContext

LOADED_ON_FIRST_USE = ("duckdb", "sqlglot", "pyarrow", "pandas", "numpy", "pyspark")


def test_loading_every_engine_loads_none_of_the_data_planes_libraries():
    code = ("import json, sys\nfrom dealab.engines import engine_classes\nengine_classes()\n"
            f"print(json.dumps([name for name in {LOADED_ON_FIRST_USE!r} if name in sys.modules]))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(run.stdout.strip().splitlines()[-1]) == []


@pytest.mark.parametrize("entry", ENGINES, ids=lambda entry: entry.name)
def test_the_table_says_what_each_engine_takes(entry):
    """The router builds an engine on the services and admin endpoints the table names: they must be its own."""
    engine = engine_class(entry.spec)
    assert engine.name == entry.name
    taken = services_taken(engine)
    if entry.services is FROM_START:
        return
    assert ANY_OPERATION not in taken, "an engine that takes every call must be built at start"
    assert set(entry.services) == taken
    assert set(entry.admin) == set(engine.admin_routes(engine.__new__(engine)))


def test_a_stack_starts_with_only_the_engines_marked_from_start_and_builds_others_on_first_use(tmp_path):
    code = f"""
import json, sys
from pathlib import Path
from dealab.engines import StackEngines
from dealab.wire.engine import EngineContext
engines = StackEngines(EngineContext("http://127.0.0.1:9", "us-east-1", Path({str(tmp_path)!r})))
at_start = [engine.name for engine in engines.in_order]
modules = sorted(name.split(".")[2] for name in sys.modules if name.startswith("dealab.engines.") and name.count(".") == 2)
s3 = [engine.name for engine in engines.for_service("s3")]
glue = [engine.name for engine in engines.for_service("glue")]
firehose_admin = [engine.name for engine in engines.for_admin("firehose")]
for engine in engines.in_order:
    engine.close()
print(json.dumps([at_start, modules, s3, glue, firehose_admin]))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    at_start, modules, s3, glue, firehose_admin = json.loads(run.stdout.strip().splitlines()[-1])
    from_start = [entry.name for entry in ENGINES if entry.services is FROM_START]
    assert at_start == from_start == s3
    assert not {"glue", "athena", "redshift", "awslambda", "logs", "stepfunctions"} & set(modules)
    assert glue == [entry.name for entry in ENGINES if entry.services is FROM_START or "glue" in entry.services]  # in gateway order
    assert firehose_admin == [entry.name for entry in ENGINES if entry.services is FROM_START or "glue" in entry.services or entry.name == "firehose"]
    # what was built once is built at the folder's next start, before any request: it re-arms what it armed
    assert set(json.loads((tmp_path / USED_FILE).read_text())) == {"lakeformation", "athena", "glue", "dataquality", "firehose"}
    again = StackEngines(EngineContext("http://127.0.0.1:9", "us-east-1", tmp_path))
    try:
        assert [engine.name for engine in again.in_order] == firehose_admin
    finally:
        for engine in again.in_order:
            engine.close()


def test_a_reset_with_the_stack_down_forgets_which_engines_were_used(tmp_path):
    from dealab.stack.control import reset_state_folder

    (tmp_path / USED_FILE).write_text('["glue"]')
    (tmp_path / "glue").mkdir()
    reset_state_folder(tmp_path)
    assert not (tmp_path / USED_FILE).exists() and not (tmp_path / "glue").exists()
