"""Lab 08's data: order records (with later versions of some orders arriving out of order), the access
patterns the table must answer, and web sessions that expire.
"""

from __future__ import annotations

import datetime
import json
from pathlib import Path

from dealab.datasets import rng, write_bytes

ORDERS_TABLE = "dea-orders"
SESSIONS_TABLE = "dea-sessions"
STATUS_INDEX = "status-index"
CHANGELOG_BUCKET = "dea-orders-changelog"
CHANGELOG_PREFIX = "orders/"
STATUSES = ("PENDING", "PAID", "SHIPPED", "DELIVERED", "CANCELLED")
SESSION_TTL_ATTRIBUTE = "expires_at"


def order_key(order: dict) -> str:
    """The sort key the lab asks for: date first, so a BETWEEN on it is a date range."""
    return f"{order['order_date']}#{order['order_id']}"


def generate(seed: str, out_dir: Path, customers: int = 25, orders: int = 240, sessions: int = 40) -> dict:
    """Writes data/orders.jsonl (every version of every order, in arrival order) and data/sessions.jsonl;
    returns the latest version of each order, the writes a conditional loader accepts, the queries to
    answer, and the sessions."""
    random = rng(seed, "order-model")
    start = datetime.date(2025, 1, 1) + datetime.timedelta(days=random.randrange(200))
    customer_ids = [f"C{random.randrange(10_000, 99_999)}" for _ in range(customers)]
    arrivals: list[dict] = []
    for number in range(orders):
        order = {
            "order_id": f"O{number:05d}",
            "customer_id": random.choice(customer_ids),
            "order_date": (start + datetime.timedelta(days=random.randrange(120))).isoformat(),
            "amount": f"{random.uniform(5, 900):.2f}",
        }
        for version, status in enumerate(STATUSES[:random.randint(1, 4)], start=1):
            arrivals.append({**order, "status": status, "version": version})
        if random.random() < 0.1:
            arrivals.append({**order, "status": "CANCELLED", "version": version + 1})
    # Updates arrive late and out of order: shuffle within a sliding window so some older versions come last.
    for index in range(len(arrivals) - 1, 0, -1):
        other = max(0, index - random.randint(0, 12))
        arrivals[index], arrivals[other] = arrivals[other], arrivals[index]
    write_bytes(out_dir / "orders.jsonl", "".join(json.dumps(a) + "\n" for a in arrivals).encode())

    latest: dict[str, dict] = {}
    accepted: list[list] = []
    for arrival in arrivals:
        held = latest.get(arrival["order_id"])
        if held is None or held["version"] < arrival["version"]:
            latest[arrival["order_id"]] = arrival
            accepted.append([arrival["order_id"], arrival["version"]])
    queries = []
    for customer in random.sample(customer_ids, 4):
        low = start + datetime.timedelta(days=random.randrange(60))
        high = low + datetime.timedelta(days=random.randrange(10, 60))
        queries.append({"customer_id": customer, "from": low.isoformat(), "to": high.isoformat()})

    session_list = [
        {"session_id": f"S{random.getrandbits(48):012x}", "customer_id": random.choice(customer_ids),
         "ttl_hours": random.choice((0.5, 2, 8, 20, 30, 60, 100, 200))}
        for _ in range(sessions)
    ]
    write_bytes(out_dir / "sessions.jsonl", "".join(json.dumps(s) + "\n" for s in session_list).encode())
    return {"latest": latest, "accepted": accepted, "queries": queries, "statuses": list(STATUSES), "sessions": session_list}


def orders_between(summary: dict, customer_id: str, low: str, high: str) -> set[str]:
    """Access pattern 1 as the seed answers it: a customer's orders dated low..high (inclusive)."""
    return {o["order_id"] for o in summary["latest"].values() if o["customer_id"] == customer_id and low <= o["order_date"] <= high}


def orders_with_status(summary: dict, status: str) -> set[str]:
    """Access pattern 2: the orders whose latest status is `status`."""
    return {o["order_id"] for o in summary["latest"].values() if o["status"] == status}


def setup(ctx) -> None:
    """`lab start`: the change-log bucket the stream lands in."""
    s3 = ctx.client("s3")
    try:
        s3.create_bucket(Bucket=CHANGELOG_BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
