"""Lab 13's customers: a CSV extract with personal data (names, emails, US/Canada phone numbers, US Social Security
numbers, payment card numbers, IBANs) for customers in three regions, landed in the lake's raw zone at lab start.

Every identifier is valid for the detector meant to find it (cards pass Luhn and carry an issuer prefix, IBANs pass
ISO 7064 mod 97, SSNs follow the SSA's area/group/serial rules, phones are NANP numbers), and is unique, so the
grader can say which of the learner's seeded values show up where they must not. The grader recomputes all of it
from the learner's seed.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from dealab.datasets import rng, write_bytes

LAKE_BUCKET = "dea-gov-lake"
RAW_PREFIX = "raw/customers/"
RAW_KEY = RAW_PREFIX + "customers.csv"
MASKED_PREFIX = "masked/customers/"
DATABASE = "gov_lake"
TABLE = "customers"
MASKED_TABLE = "customers_masked"
COLUMNS = ("customer_id", "full_name", "email", "phone", "ssn", "card_number", "iban", "region", "country", "segment",
           "lifetime_value")
PII_COLUMNS = ("full_name", "email", "phone", "ssn", "card_number", "iban")
PUBLIC_COLUMNS = tuple(column for column in COLUMNS if column not in PII_COLUMNS)
REGIONS = {"EU": ("DE", "FR", "NL", "ES", "IT"), "US": ("US",), "APAC": ("JP", "AU", "SG")}
SEGMENTS = ("consumer", "smb", "enterprise")
# IBAN layout per EU country used here: (length, BBAN made of digits only)
IBAN_LENGTHS = {"DE": 22, "FR": 27, "NL": 18, "ES": 24, "IT": 27}
FIRST = ("Ana", "Bruno", "Chloe", "Dmitri", "Elena", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kai", "Lena", "Marco",
         "Noor", "Oskar", "Priya", "Quinn", "Rosa", "Sven", "Tara", "Uma", "Viktor", "Wen", "Yara", "Zoe")
LAST = ("Alvarez", "Berger", "Costa", "Dubois", "Eriksen", "Fischer", "Garcia", "Hansen", "Ito", "Jansen", "Kowalski",
        "Laurent", "Moreau", "Nakamura", "Okafor", "Petrov", "Rossi", "Schmidt", "Tanaka", "Visser", "Weber", "Young")
# Macie's managed data identifiers that find what this extract holds (email has none in Macie)
CARD_TYPE = "CREDIT_CARD_NUMBER"
SSN_TYPE = "USA_SOCIAL_SECURITY_NUMBER"
PHONE_TYPE = "PHONE_NUMBER"
IBAN_TYPES = {"DE": "GERMANY_BANK_ACCOUNT_NUMBER", "FR": "FRANCE_BANK_ACCOUNT_NUMBER", "NL": "NETHERLANDS_BANK_ACCOUNT_NUMBER",
              "ES": "SPAIN_BANK_ACCOUNT_NUMBER", "IT": "ITALY_BANK_ACCOUNT_NUMBER"}


def _luhn_complete(partial: str) -> str:
    """`partial` plus the check digit that makes it pass Luhn."""
    total = 0
    for position, char in enumerate(reversed(partial)):
        digit = int(char)
        if position % 2 == 0:
            digit *= 2
            digit -= 9 if digit > 9 else 0
        total += digit
    return partial + str((10 - total % 10) % 10)


def _iban(country: str, random) -> str:
    bban = "".join(random.choice("0123456789") for _ in range(IBAN_LENGTHS[country] - 4))
    moved = bban + country + "00"
    check = 98 - int("".join(str(int(char, 36)) for char in moved)) % 97
    return f"{country}{check:02d}{bban}"


def _ssn(random) -> str:
    area = random.choice([n for n in range(1, 900) if n != 666])
    return f"{area:03d}-{random.randint(1, 99):02d}-{random.randint(1, 9999):04d}"


def _phone(random) -> str:
    return f"+1 {random.randint(201, 989)}-{random.randint(201, 989)}-{random.randint(0, 9999):04d}"


def _card(random) -> str:
    prefix = random.choice(("4", "51", "52", "53", "54", "55"))
    return _luhn_complete(prefix + "".join(random.choice("0123456789") for _ in range(15 - len(prefix))))


def customers(seed: str, count: int) -> list[dict]:
    random = rng(seed, "gov-customers")
    regions = ["EU"] * (count * 2 // 5) + ["US"] * (count * 2 // 5)
    regions += ["APAC"] * (count - len(regions))
    random.shuffle(regions)
    seen: set[str] = set()

    def fresh(make) -> str:
        while (value := make(random)) in seen:
            pass
        seen.add(value)
        return value

    rows = []
    for number, region in enumerate(regions, start=1):
        country = random.choice(REGIONS[region])
        first, last = random.choice(FIRST), random.choice(LAST)
        rows.append({
            "customer_id": f"C{random.randint(10, 99)}{number:04d}",
            "full_name": f"{first} {last}",
            "email": fresh(lambda r: f"{first.lower()}.{last.lower()}{r.randint(10, 9999)}@example.{r.choice(('com', 'org', 'net'))}"),
            "phone": fresh(_phone),
            "ssn": fresh(_ssn) if region == "US" else "",
            "card_number": fresh(_card),
            "iban": fresh(lambda r: _iban(country, r)) if region == "EU" else "",
            "region": region,
            "country": country,
            "segment": random.choice(SEGMENTS),
            "lifetime_value": f"{random.uniform(20, 9000):.2f}",
        })
    return rows


def to_csv(rows: list[dict], columns=COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def identifiers(rows: list[dict]) -> dict[str, list[str]]:
    """Each seeded identifier a masked copy must not show, by column."""
    return {column: [row[column] for row in rows if row[column]] for column in ("email", "phone", "ssn", "card_number", "iban")}


def expected_detections(rows: list[dict]) -> dict[str, int]:
    """Macie's managed identifier → how many values of it the extract holds."""
    counts = {CARD_TYPE: len(rows), PHONE_TYPE: len(rows), SSN_TYPE: sum(1 for row in rows if row["ssn"])}
    for row in rows:
        if row["iban"]:
            counts[IBAN_TYPES[row["country"]]] = counts.get(IBAN_TYPES[row["country"]], 0) + 1
    return counts


def generate(seed: str, out_dir: Path, customers_count: int = 60) -> dict:
    """data/customers.csv, the extract the lab lands in s3://dea-gov-lake/raw/customers/ at start."""
    rows = customers(seed, customers_count)
    write_bytes(out_dir / "customers.csv", to_csv(rows))
    return {"customers": rows, "eu_ids": sorted(row["customer_id"] for row in rows if row["region"] == "EU")}


def table_input(name: str, location: str, columns=COLUMNS) -> dict:
    return {
        "Name": name,
        "TableType": "EXTERNAL_TABLE",
        "Parameters": {"classification": "csv", "skip.header.line.count": "1"},
        "StorageDescriptor": {
            "Columns": [{"Name": column, "Type": "double" if column == "lifetime_value" else "string"} for column in columns],
            "Location": location,
            "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
            "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
            "SerdeInfo": {"SerializationLibrary": "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe",
                          "Parameters": {"field.delim": ","}},
        },
    }


def setup(ctx) -> None:
    """The lake bucket with the extract in its raw zone (unencrypted, as it arrived), and the catalog database and
    table over it, made under a fresh account's Lake Formation settings: every new database and table handed to
    IAM_ALLOWED_PRINCIPALS (a lab started again gets those defaults back first)."""
    s3, glue, lakeformation = ctx.client("s3"), ctx.client("glue"), ctx.client("lakeformation")
    settings = lakeformation.get_data_lake_settings()["DataLakeSettings"]
    if not settings.get("CreateTableDefaultPermissions"):  # a lab started again after its defaults were emptied
        everyone = [{"Principal": {"DataLakePrincipalIdentifier": "IAM_ALLOWED_PRINCIPALS"}, "Permissions": ["ALL"]}]
        settings.update(CreateDatabaseDefaultPermissions=everyone, CreateTableDefaultPermissions=everyone)
        lakeformation.put_data_lake_settings(DataLakeSettings=settings)
    try:
        s3.create_bucket(Bucket=LAKE_BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    s3.upload_file(str(ctx.data_dir / "customers.csv"), LAKE_BUCKET, RAW_KEY)
    try:
        glue.create_database(DatabaseInput={"Name": DATABASE, "Description": "customers of the governed lake"})
    except glue.exceptions.AlreadyExistsException:
        pass
    table = table_input(TABLE, f"s3://{LAKE_BUCKET}/{RAW_PREFIX}")
    try:
        glue.create_table(DatabaseName=DATABASE, TableInput=table)
    except glue.exceptions.AlreadyExistsException:
        glue.update_table(DatabaseName=DATABASE, TableInput=table)
