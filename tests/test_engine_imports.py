"""Every stack loads every engine at start; the heavy libraries of the data plane (DuckDB, sqlglot, Arrow, pandas,
Spark) load only when an engine first needs them, so an idle stack stays small (README: stack RSS idle)."""

import json
import subprocess
import sys

LOADED_ON_FIRST_USE = ("duckdb", "sqlglot", "pyarrow", "pandas", "numpy", "pyspark")


def test_loading_every_engine_loads_none_of_the_data_planes_libraries():
    code = ("import json, sys\nfrom dealab.engines import engine_classes\nengine_classes()\n"
            f"print(json.dumps([name for name in {LOADED_ON_FIRST_USE!r} if name in sys.modules]))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(run.stdout.strip().splitlines()[-1]) == []
