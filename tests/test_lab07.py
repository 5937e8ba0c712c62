"""Lab 07 proves its grader: the solution gets full marks, the starter does not, each realistic mistake of a
learner (a mutant of the solution) fails exactly the checks it should, and other correct ways of writing the
solution (variants) still get full marks."""

import pytest

from tests.labkit import FAIL, explain, fresh_lab, grade_lab, prove_breakage, prove_variant, run_solution, solution_report, starter_report

SCRIPT = "analysis.py"
REVENUE_SQL = "SELECT category, round(sum(amount), 2) AS revenue FROM shop.orders GROUP BY category ORDER BY category"
VIEW_SOURCE = "round(sum(amount), 2) AS revenue FROM {DATABASE}.orders GROUP BY category"
CURATED = "external_location = 's3://{LAKE}/curated/orders/'"

MUTANTS = {
    "CTAS compressed with GZIP": ({"L07-05"}, [("write_compression = 'SNAPPY'", "write_compression = 'GZIP'")]),
    # the case: the table lands one folder up, beside whatever else is curated
    "CTAS into the curated/ folder": ({"L07-05"}, [(CURATED, "external_location = 's3://{LAKE}/curated/'")]),
    "CTAS partitioned by category": ({"L07-05"}, [("partitioned_by = ARRAY['order_date'])\n        AS SELECT order_id, customer_id, category, amount, order_date",
                                                   "partitioned_by = ARRAY['category'])\n        AS SELECT order_id, customer_id, amount, order_date, category")]),
    # the case: right answers, but every read of the view scans the whole CSV
    "view over the CSV table": ({"L07-06"}, [(VIEW_SOURCE, "round(sum(amount), 2) AS revenue FROM {DATABASE}.orders_raw GROUP BY category")]),
    "named query over the CSV table": ({"L07-08"}, [(REVENUE_SQL, REVENUE_SQL.replace("shop.orders", "shop.orders_raw"))]),
    "revenue averaged instead of summed": ({"L07-03"}, [(REVENUE_SQL, REVENUE_SQL.replace("sum(amount)", "avg(amount)"))]),
    "revenue rows sorted backwards": ({"L07-03"}, [(REVENUE_SQL, REVENUE_SQL + " DESC")]),
    "results in the bucket's root": ({"L07-07"}, [('{"OutputLocation": f"s3://{RESULTS}/{WORKGROUP}/"}', '{"OutputLocation": f"s3://{RESULTS}/"}')]),
    "daily orders counted over the CSV": ({"L07-04"}, [("SELECT dt, count(*) AS orders FROM shop.orders GROUP BY dt ORDER BY dt",
                                                        "SELECT order_date AS dt, count(*) AS orders FROM shop.orders_raw GROUP BY order_date ORDER BY order_date")]),
    "daily orders counts customers": ({"L07-04"}, [("SELECT dt, count(*) AS orders", "SELECT dt, count(DISTINCT customer_id) AS orders")]),
    # days nobody registered are days nobody reads: every answer from shop.orders comes up short
    "partitions never registered": ({"L07-02", "L07-03", "L07-04", "L07-06"}, [('    run_query(f"MSCK REPAIR TABLE {DATABASE}.orders")\n', "")]),
    "header line read as an order": ({"L07-01", "L07-05"}, [("\n        TBLPROPERTIES ('skip.header.line.count'='1')", "")]),
    "named queries saved outside the work group": ({"L07-03", "L07-04", "L07-08"},
                                                   [("QueryString=sql, WorkGroup=WORKGROUP)\n        run_query(sql)", "QueryString=sql)\n        run_query(sql)")]),
    "no bytes-scanned limit": ({"L07-07"}, [('        "BytesScannedCutoffPerQuery": BYTES_SCANNED_LIMIT,\n    }', "    }"),
                                            ('            "BytesScannedCutoffPerQuery": BYTES_SCANNED_LIMIT,\n        })', "        })")]),
    "work group configuration not enforced": ({"L07-07"}, [('        "EnforceWorkGroupConfiguration": True,\n        "Bytes', '        "EnforceWorkGroupConfiguration": False,\n        "Bytes'),
                                                           ('            "EnforceWorkGroupConfiguration": True,\n', '            "EnforceWorkGroupConfiguration": False,\n')]),
}

VARIANTS = {
    # the case: unqualified table names resolve in the named query's database
    "named queries with unqualified table names": [("FROM shop.orders GROUP BY category ORDER BY category", "FROM orders GROUP BY category ORDER BY category"),
                                                    ("FROM shop.orders GROUP BY dt ORDER BY dt", "FROM orders GROUP BY dt ORDER BY dt")],
    "partition projection instead of registered partitions": [
        ('    run_query(f"MSCK REPAIR TABLE {DATABASE}.orders")\n', ""),
        ("""        LOCATION 's3://{LAKE}/sales/'\"\"\")""",
         """        LOCATION 's3://{LAKE}/sales/'
        TBLPROPERTIES ('projection.enabled'='true', 'projection.dt.type'='date', 'projection.dt.format'='yyyy-MM-dd',
                       'projection.dt.range'='2020-01-01,NOW', 'storage.location.template'='s3://{LAKE}/sales/dt=${{dt}}/')\"\"\")""")],
    "CTAS location without the trailing slash": [(CURATED, "external_location = 's3://{LAKE}/curated/orders'")],
    "view over the curated Parquet table": [(VIEW_SOURCE, "round(sum(amount), 2) AS revenue FROM {DATABASE}.orders_curated GROUP BY category")],
    "smaller bytes-scanned limit, named query through a CTE": [
        ("BYTES_SCANNED_LIMIT = 1024 * 1024 * 1024", "BYTES_SCANNED_LIMIT = 100 * 1000 * 1000"),
        (REVENUE_SQL, "WITH sales AS (SELECT category, amount FROM shop.orders) SELECT category, round(sum(amount), 2) AS revenue FROM sales GROUP BY category ORDER BY category")],
}


def test_solution_gets_full_marks_and_is_rerunnable(aws_env):
    lab = fresh_lab(7, aws_env)
    report = solution_report(lab, aws_env)
    assert report.full_marks, explain(report)
    run_solution(lab, aws_env)
    assert grade_lab(lab, aws_env).full_marks


def test_untouched_starter_does_not_get_full_marks_and_nothing_crashes(aws_env):
    report = starter_report(fresh_lab(7, aws_env), aws_env)
    assert not report.full_marks
    assert report.score < report.total / 3, explain(report)
    assert all(result.status == FAIL for result in report.results if result.earned == 0), explain(report)


def test_the_starter_asks_questions_and_holds_no_sql(aws_env):
    """The learner writes the queries: the starter says what to compute, never the statement to type."""
    starter = (fresh_lab(7, aws_env).starter_dir / SCRIPT).read_text()
    for statement in ("CREATE EXTERNAL TABLE", "MSCK REPAIR", "GROUP BY", "count(*)", "round(sum", "skip.header.line.count", "STORED AS PARQUET"):
        assert statement.lower() not in starter.lower(), statement


@pytest.mark.parametrize("name", MUTANTS)
def test_each_mutant_fails_exactly_its_checks(aws_env, tmp_path, name):
    check_ids, edits = MUTANTS[name]
    prove_breakage(fresh_lab(7, aws_env), aws_env, tmp_path, check_ids, {SCRIPT: edits})


@pytest.mark.parametrize("name", VARIANTS)
def test_each_correct_variant_gets_full_marks(aws_env, tmp_path, name):
    prove_variant(fresh_lab(7, aws_env), aws_env, tmp_path, {SCRIPT: VARIANTS[name]})
