"""Redshift data sharing: a producer namespace shares a schema's tables with a consumer namespace in the same
stack; the consumer's database made from the share reads the producer's live data, read-only; the system views
and DescribeDataShares show it; a restart keeps it."""

from __future__ import annotations

from tests.conftest import client
from tests.test_redshift import ok, rows, run
from tests.test_redshift_streaming import _serverless


def test_a_consumer_reads_the_producers_live_data_through_a_datashare(clean_stack):
    producer, consumer = _serverless(clean_stack, "sales"), _serverless(clean_stack, "marketing")
    namespaces = {found["namespaceName"]: found["namespaceId"]
                  for found in client(clean_stack, "redshift-serverless").list_namespaces()["namespaces"]}
    data = client(clean_stack, "redshift-data")
    ok(data, "CREATE SCHEMA sales", **producer)
    ok(data, "CREATE TABLE sales.orders (id INT, amount DECIMAL(10,2))", **producer)
    ok(data, "CREATE TABLE sales.secrets (id INT)", **producer)
    ok(data, "INSERT INTO sales.orders VALUES (1, 10.50), (2, 20.00)", **producer)
    ok(data, "CREATE DATASHARE sales_share", **producer)
    refused = run(data, "ALTER DATASHARE sales_share ADD TABLE sales.orders", **producer)
    assert refused["Status"] == "FAILED" and "add the schema first" in refused["Error"]
    ok(data, "ALTER DATASHARE sales_share ADD SCHEMA sales", **producer)
    ok(data, "ALTER DATASHARE sales_share ADD TABLE sales.orders", **producer)
    not_yet = run(data, f"CREATE DATABASE sales_db FROM DATASHARE sales_share OF NAMESPACE '{namespaces['sales']}'", **consumer)
    assert not_yet["Status"] == "FAILED" and "not shared with this namespace" in not_yet["Error"]
    ok(data, f"GRANT USAGE ON DATASHARE sales_share TO NAMESPACE '{namespaces['marketing']}'", **producer)
    ok(data, f"CREATE DATABASE sales_db FROM DATASHARE sales_share OF NAMESPACE '{namespaces['sales']}'", **consumer)

    assert rows(data, "SELECT sum(amount) FROM sales_db.sales.orders", **consumer) == [["30.50"]]
    ok(data, "INSERT INTO sales.orders VALUES (3, 5.00)", **producer)  # live: the next query sees it
    ok(data, "CREATE TABLE local_ids (id INT)", **consumer)
    ok(data, "INSERT INTO local_ids VALUES (3)", **consumer)
    assert rows(data, "SELECT o.amount FROM sales_db.sales.orders o JOIN local_ids l ON l.id = o.id", **consumer) == [["5.00"]]
    hidden = run(data, "SELECT * FROM sales_db.sales.secrets", **consumer)
    assert hidden["Status"] == "FAILED" and 'relation "sales_db.sales.secrets" does not exist' in hidden["Error"]
    for write in ("INSERT INTO sales_db.sales.orders VALUES (9, 1)", "DELETE FROM sales_db.sales.orders",
                  "UPDATE sales_db.sales.orders SET amount = 0"):
        refused = run(data, write, **consumer)
        assert refused["Status"] == "FAILED" and "read-only" in refused["Error"], write

    assert rows(data, "SELECT share_name, share_type, source_database, producer_namespace FROM svv_datashares", **producer) == [
        ["sales_share", "OUTBOUND", "dev", namespaces["sales"]]]
    assert rows(data, "SELECT share_name, share_type, consumer_database FROM svv_datashares", **consumer) == [
        ["sales_share", "INBOUND", "sales_db"]]
    assert rows(data, "SELECT object_type, object_name FROM svv_datashare_objects ORDER BY 1", **producer) == [
        ["schema", "sales"], ["table", "sales.orders"]]
    assert rows(data, "SELECT share_name, consumer_namespace FROM svv_datashare_consumers", **producer) == [
        ["sales_share", namespaces["marketing"]]]
    described = client(clean_stack, "redshift").describe_data_shares()["DataShares"]
    assert [(share["DataShareArn"].split("/")[-1], [a["ConsumerIdentifier"] for a in share["DataShareAssociations"]])
            for share in described] == [("sales_share", [namespaces["marketing"]])]
    assert described[0]["ProducerArn"].endswith(f":namespace:{namespaces['sales']}")
    redshift = client(clean_stack, "redshift")
    assert len(redshift.describe_data_shares_for_producer(ProducerArn=described[0]["ProducerArn"])["DataShares"]) == 1
    consumer_arn = described[0]["ProducerArn"].replace(namespaces["sales"], namespaces["marketing"])
    assert len(redshift.describe_data_shares_for_consumer(ConsumerArn=consumer_arn)["DataShares"]) == 1
    assert redshift.describe_data_shares_for_consumer(ConsumerArn=described[0]["ProducerArn"])["DataShares"] == []

    ok(data, f"REVOKE USAGE ON DATASHARE sales_share FROM NAMESPACE '{namespaces['marketing']}'", **producer)
    gone = run(data, "SELECT * FROM sales_db.sales.orders", **consumer)
    assert gone["Status"] == "FAILED"


def test_shares_and_consumer_databases_survive_a_kill_9(private_stack):
    from dealab.stack import control
    from tests.conftest import kill_hard

    producer, consumer = _serverless(private_stack, "sales"), _serverless(private_stack, "marketing")
    namespaces = {found["namespaceName"]: found["namespaceId"]
                  for found in client(private_stack, "redshift-serverless").list_namespaces()["namespaces"]}
    data = client(private_stack, "redshift-data")
    for sql in ("CREATE TABLE orders (id INT)", "INSERT INTO orders VALUES (7)", "CREATE DATASHARE s",
                "ALTER DATASHARE s ADD SCHEMA public", "ALTER DATASHARE s ADD ALL TABLES IN SCHEMA public",
                f"GRANT USAGE ON DATASHARE s TO NAMESPACE '{namespaces['marketing']}'"):
        ok(data, sql, **producer)
    ok(data, f"CREATE DATABASE shared FROM DATASHARE s OF NAMESPACE '{namespaces['sales']}'", **consumer)
    kill_hard(private_stack)
    control.up(private_stack)
    data = client(private_stack, "redshift-data")
    assert rows(data, "SELECT id FROM shared.public.orders", **consumer) == [[7]]
    assert rows(data, "SELECT object_type, object_name, include_new FROM svv_datashare_objects ORDER BY 2", **producer) == [
        ["schema", "public", True], ["table", "public.orders", False]]
