"""Sensitive data identifiers as data: one table serves Macie's managed data identifiers and the entity types of
Glue's Detect PII transform (awsglueml.transforms.EntityDetector), so both find the same things the same way.

Each row names the data twice: `macie_id` (the managed data identifier ID from Macie's "Detailed reference" pages;
None where Macie has no managed identifier for it, as for email addresses) and `glue_name` (the entity type a
Glue job script asks for; None where dealab offers none). A row is one or more `Form`s (a regular expression and
whether a keyword must be near it), a validator (Luhn, ISO 7064 mod 97, SSN area/group/serial rules), the
keywords and how far from the data one may be, and the example values Macie documents it never reports.

Pattern-based only: no model is downloaded or run. Custom data identifiers (regex, keywords, ignore words,
maximum match distance) become `Detector`s of the same kind (`custom_detector`), so a job scans with one loop.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

# Macie: "the keyword typically has to be within 30 characters (inclusively) of the data" (Keyword requirements)
MANAGED_KEYWORD_DISTANCE = 30
CUSTOM_DEFAULT_DISTANCE = 50  # CreateCustomDataIdentifier's maximumMatchDistance default


class Keyword(enum.Enum):
    REQUIRED = "required"  # reported only with a keyword near it
    NOT_REQUIRED = "not required"
    ABSENT = "absent"  # reported only without a keyword near it (CREDIT_CARD_NUMBER_(NO_KEYWORD))


@dataclass(frozen=True)
class Form:
    """One way the data is written, and whether that way needs a keyword near it."""

    regex: re.Pattern
    keyword: Keyword


def digits(text: str) -> str:
    return "".join(char for char in text if char.isdigit())


def luhn(number: str) -> bool:
    """The Luhn check formula over the digits of `number`."""
    total = 0
    for position, digit in enumerate(int(char) for char in reversed(digits(number))):
        if position % 2:
            digit *= 2
            digit -= 9 if digit > 9 else 0
        total += digit
    return total % 10 == 0


# Issuer prefixes of the card types Macie names (American Express, Dankort, Diner's Club, Discover, Electron, JCB,
# Mastercard, UnionPay, Visa), as ranges of the leading digits.
CARD_PREFIXES = (
    ("34", "34"), ("37", "37"), ("5019", "5019"), ("300", "305"), ("36", "36"), ("38", "39"), ("6011", "6011"),
    ("644", "649"), ("65", "65"), ("4", "4"), ("3528", "3589"), ("51", "55"), ("2221", "2720"), ("62", "62"),
)


def card_number(value: str) -> bool:
    number = digits(value)
    prefixed = any(low <= number[:len(low)] <= high for low, high in CARD_PREFIXES)
    return 13 <= len(number) <= 19 and prefixed and luhn(number)


def us_ssn(value: str) -> bool:
    """The Social Security Administration never issues area 000, 666 or 900-999, group 00 or serial 0000."""
    number = digits(value)
    area, group, serial = number[:3], number[3:5], number[5:]
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and serial != "0000"


# IBAN lengths by country (ISO 13616 registry) and the managed data identifier Macie names for each country's IBANs
# ("International Bank Account Number (IBAN)" in Macie's financial reference).
IBAN_COUNTRIES = {
    "AL": ("ALBANIA", 28), "AD": ("ANDORRA", 24), "BA": ("BOSNIA_AND_HERZEGOVINA", 20), "BR": ("BRAZIL", 29),
    "BG": ("BULGARIA", 22), "CR": ("COSTA_RICA", 22), "HR": ("CROATIA", 21), "CY": ("CYPRUS", 28),
    "CZ": ("CZECH_REPUBLIC", 24), "DK": ("DENMARK", 18), "DO": ("DOMINICAN_REPUBLIC", 28), "EG": ("EGYPT", 29),
    "EE": ("ESTONIA", 20), "FO": ("FAROE_ISLANDS", 18), "FI": ("FINLAND", 18), "FR": ("FRANCE", 27),
    "GE": ("GEORGIA", 22), "DE": ("GERMANY", 22), "GR": ("GREECE", 27), "GL": ("GREENLAND", 18),
    "HU": ("HUNGARY", 28), "IS": ("ICELAND", 26), "IE": ("IRELAND", 22), "IT": ("ITALY", 27), "JO": ("JORDAN", 30),
    "XK": ("KOSOVO", 20), "LI": ("LIECHTENSTEIN", 21), "LT": ("LITHUANIA", 20), "MT": ("MALTA", 31),
    "MR": ("MAURITANIA", 27), "MU": ("MAURITIUS", 30), "MC": ("MONACO", 27), "ME": ("MONTENEGRO", 22),
    "NL": ("NETHERLANDS", 18), "MK": ("NORTH_MACEDONIA", 19), "PL": ("POLAND", 28), "PT": ("PORTUGAL", 25),
    "SM": ("SAN_MARINO", 27), "SN": ("SENEGAL", 28), "RS": ("SERBIA", 22), "SK": ("SLOVAKIA", 24),
    "SI": ("SLOVENIA", 19), "ES": ("SPAIN", 24), "SE": ("SWEDEN", 24), "CH": ("SWITZERLAND", 21),
    "TL": ("TIMOR_LESTE", 23), "TN": ("TUNISIA", 24), "TR": ("TURKIYE", 26), "GB": ("UK", 22), "UA": ("UKRAINE", 29),
    "AE": ("UNITED_ARAB_EMIRATES", 23), "VG": ("VIRGIN_ISLANDS", 24),
}


def iban(value: str) -> bool:
    """ISO 7064 mod 97-10: the country's length, and the IBAN moved (first four characters last, letters as
    10..35) read as a number leaves 1 modulo 97."""
    compact = re.sub(r"[ -]", "", value).upper()
    country = IBAN_COUNTRIES.get(compact[:2])
    if country is None or len(compact) != country[1]:
        return False
    moved = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in moved)) % 97 == 1


def aws_secret_key(value: str) -> bool:
    """40 characters of base64 that look drawn at random: upper and lower case letters and a digit or / or +."""
    return any(c.isupper() for c in value) and any(c.islower() for c in value) and any(c.isdigit() or c in "/+" for c in value)


@dataclass(frozen=True)
class Detector:
    """What finds one type of sensitive data: a managed identifier's row, or a custom data identifier."""

    key: str  # the managed data identifier ID, the custom identifier's id, or a Glue-only entity name
    category: str  # FINANCIAL_INFORMATION, PERSONAL_INFORMATION, CREDENTIALS, CUSTOM_IDENTIFIER
    forms: tuple[Form, ...]
    keywords: tuple[str, ...] = ()
    max_distance: int = MANAGED_KEYWORD_DISTANCE
    validator: Callable[[str], bool] | None = None
    never_reported: frozenset[str] = frozenset()  # documented example values, compared without separators
    ignore_words: tuple[str, ...] = ()  # custom identifiers: a match containing one is dropped (case-sensitive)
    keyword_before_only: bool = False  # custom identifiers: the keyword must precede the match
    macie_id: str | None = None
    glue_name: str | None = None
    recommended: bool = False  # in the set a job's RECOMMENDED selector uses
    iban_country: str | None = None  # an IBAN row: tried only on texts where an IBAN of its country may start
    _keyword_pattern: re.Pattern | None = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.keywords:
            words = "|".join(re.escape(word.lower()) for word in sorted(self.keywords, key=len, reverse=True))
            bounded = not self.keyword_before_only  # managed keywords are words; custom ones plain sequences
            object.__setattr__(self, "_keyword_pattern", re.compile(rf"(?<![a-z0-9])(?:{words})(?![a-z0-9])" if bounded else words))

    def keyword_in(self, text: str) -> bool:
        return bool(self._keyword_pattern and self._keyword_pattern.search(text.lower()))

    def _keyword_near(self, lowered: str, start: int, end: int) -> bool:
        if self._keyword_pattern is None:
            return False
        window = lowered[max(0, start - self.max_distance - 90):end + (0 if self.keyword_before_only else self.max_distance + 90)]
        offset = max(0, start - self.max_distance - 90)
        for found in self._keyword_pattern.finditer(window):
            k_start, k_end = found.start() + offset, found.end() + offset
            if self.keyword_before_only:
                if k_end <= start and end - k_end <= self.max_distance:
                    return True
            elif (k_end <= start and start - k_end <= self.max_distance) or (k_start >= end and k_start - end <= self.max_distance):
                return True
        return False

    def find(self, text: str, field_name: str = "", keywords_apply: bool = True) -> list[tuple[int, int]]:
        """Spans of `text` this detector reports. `field_name` is the column name or JSON path of a structured value:
        a keyword in it counts as near every value of the field, as Macie treats columnar and record data.
        Without `keywords_apply` (Glue's entity detection) only patterns and validators decide."""
        spans: list[tuple[int, int]] = []
        lowered = in_field = None  # worked out only for a match whose form asks about keywords
        for form in self.forms:
            for match in form.regex.finditer(text):
                start, end = match.span()
                value = match.group()
                if any(s < end and start < e for s, e in spans):
                    continue
                if self.validator is not None and not self.validator(value):
                    continue
                if self.never_reported and re.sub(r"[ -]", "", value) in self.never_reported:
                    continue
                if any(word in value for word in self.ignore_words):
                    continue
                if keywords_apply and form.keyword is not Keyword.NOT_REQUIRED:
                    if lowered is None:
                        lowered, in_field = text.lower(), bool(field_name) and self.keyword_in(field_name)
                    near = in_field or self._keyword_near(lowered, start, end)
                    if near != (form.keyword is Keyword.REQUIRED):
                        continue
                spans.append((start, end))
        return sorted(spans)


def _re(pattern: str) -> re.Pattern:
    return re.compile(pattern)


CARD = _re(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
CARD_KEYWORDS = (
    "account number", "american express", "amex", "bank card", "c card", "card", "cc #", "ccn", "check card", "cred card",
    "credit", "credit card", "credit cards", "credit no", "credit num", "dankort", "debit", "debit card", "debit no",
    "debit num", "diners club", "discover", "electron", "japanese card bureau", "jcb", "mastercard", "mc", "pan",
    "payment account number", "payment card number", "pcn", "pmnt #", "pmnt card", "pmnt no", "pmnt number", "union pay", "visa",
)
# Numbers card issuers reserve for public testing, which Macie never reports (credit card number reference).
CARD_TEST_NUMBERS = frozenset("""
122000000000003 2222405343248877 2222990905257051 2223007648726984 2223577120017656 30569309025904 34343434343434
3528000700000000 3530111333300000 3566002020360505 36148900647913 36700102000000 371449635398431 378282246310005
378734493671000 38520000023237 4012888888881881 4111111111111111 4222222222222 4444333322221111 4462030000000000
4484070000000000 4911830000000 4917300800000000 4917610000000000 4917610000000000003 5019717010103742
5105105105105100 5111010030175156 5185540810000019 5200828282828210 5204230080000017 5204740009900014
5420923878724339 5454545454545454 5455330760000018 5506900490000436 5506900490000444 5506900510000234
5506920809243667 5506922400634930 5506927427317625 5553042241984105 5555553753048194 5555555555554444
5610591081018250 6011000990139424 6011000400000000 6011111111111117 630490017740292441 630495060000000000
6331101999990016 6759649826438453 6799990100000000019 76009244561
""".split())
SSN = _re(r"(?<![\d-])\d{3}([ -]?)\d{2}\1\d{4}(?![\d-])")
PHONE_WITH_COUNTRY_CODE = _re(r"(?<![\w+])\+1[ .-]?\(?[2-9]\d{2}\)?[ .-]?[2-9]\d{2}[ .-]?\d{4}(?!\d)")
PHONE_NATIONAL = _re(r"(?<![\w+])\(?[2-9]\d{2}\)?[ .-]?[2-9]\d{2}[ .-]?\d{4}(?!\d)")
PHONE_KEYWORDS = ("cell", "contact", "fax", "fax number", "mobile", "phone", "phone number", "tel", "telephone", "telephone number")
AWS_SECRET = _re(r"(?<![A-Za-z0-9/+])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])")
EMAIL = _re(r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")


IBAN_START = _re(r"(?<![A-Za-z0-9])([A-Z]{2})\d{2}")


class DetectorSet:
    """The detectors a job uses, asked per text for the ones worth trying: the 52 IBAN rows are looked up by the
    country codes that start an IBAN-like sequence in the text (one search), not tried one by one."""

    def __init__(self, detectors: Iterable[Detector]):
        detectors = list(detectors)
        self.always = [d for d in detectors if d.iban_country is None]
        self.by_country = {d.iban_country: d for d in detectors if d.iban_country is not None}

    def candidates(self, text: str) -> list[Detector]:
        if not self.by_country:
            return self.always
        countries = {code for code in IBAN_START.findall(text) if code in self.by_country}
        return self.always + [self.by_country[code] for code in sorted(countries)]


def _iban_rows() -> list[Detector]:
    return [Detector(
        key=f"{name}_BANK_ACCOUNT_NUMBER", macie_id=f"{name}_BANK_ACCOUNT_NUMBER", glue_name="BANK_ACCOUNT",
        category="FINANCIAL_INFORMATION", recommended=True, validator=iban,
        iban_country=code,
        forms=(Form(_re(rf"(?<![A-Za-z0-9]){code}\d{{2}}(?:[ -]?[A-Z0-9]){{{length - 4}}}(?![A-Za-z0-9])"), Keyword.NOT_REQUIRED),),
    ) for code, (name, length) in IBAN_COUNTRIES.items()]


MANAGED: tuple[Detector, ...] = (
    Detector(key="AWS_CREDENTIALS", macie_id="AWS_CREDENTIALS", category="CREDENTIALS", recommended=True,
             forms=(Form(AWS_SECRET, Keyword.REQUIRED),), validator=aws_secret_key,
             keywords=("aws_secret_access_key", "credentials", "secret access key", "secret key", "set-awscredential"),
             never_reported=frozenset({"je7MtGbClwBF/2Zp9Utk/h3yCo8nvbEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"})),
    Detector(key="CREDIT_CARD_NUMBER", macie_id="CREDIT_CARD_NUMBER", glue_name="CREDIT_CARD", category="FINANCIAL_INFORMATION",
             recommended=True, forms=(Form(CARD, Keyword.REQUIRED),), keywords=CARD_KEYWORDS, validator=card_number,
             never_reported=CARD_TEST_NUMBERS),
    Detector(key="CREDIT_CARD_NUMBER_(NO_KEYWORD)", macie_id="CREDIT_CARD_NUMBER_(NO_KEYWORD)", category="FINANCIAL_INFORMATION",
             forms=(Form(CARD, Keyword.ABSENT),), keywords=CARD_KEYWORDS, validator=card_number, never_reported=CARD_TEST_NUMBERS),
    *_iban_rows(),
    Detector(key="USA_SOCIAL_SECURITY_NUMBER", macie_id="USA_SOCIAL_SECURITY_NUMBER", glue_name="USA_SSN", category="PERSONAL_INFORMATION",
             recommended=True, forms=(Form(SSN, Keyword.REQUIRED),), keywords=("social security", "ss#", "ssn"), validator=us_ssn),
    # Canada and the US: with a keyword near it a number needs no country code; without one it must have +1.
    Detector(key="PHONE_NUMBER", macie_id="PHONE_NUMBER", glue_name="PHONE_NUMBER", category="PERSONAL_INFORMATION",
             forms=(Form(PHONE_WITH_COUNTRY_CODE, Keyword.NOT_REQUIRED), Form(PHONE_NATIONAL, Keyword.REQUIRED)),
             keywords=PHONE_KEYWORDS),
    # Macie has no managed data identifier for email addresses (its PII reference lists none): a job finds them with a
    # custom data identifier. Glue's Detect PII has the EMAIL entity type.
    Detector(key="EMAIL", glue_name="EMAIL", category="PERSONAL_INFORMATION", forms=(Form(EMAIL, Keyword.NOT_REQUIRED),)),
)
MACIE_MANAGED = {row.macie_id: row for row in MANAGED if row.macie_id}
GLUE_ENTITY_TYPES = sorted({row.glue_name for row in MANAGED if row.glue_name})


def glue_detectors(entity_types: Iterable[str]) -> list[Detector]:
    """The rows behind Glue entity types, refusing names dealab does not know (as Glue refuses unknown types)."""
    wanted = list(entity_types)
    unknown = sorted(set(wanted) - set(GLUE_ENTITY_TYPES))
    if unknown:
        raise ValueError(f"unknown entity types {unknown}: dealab's Detect PII knows {GLUE_ENTITY_TYPES} (docs/macie.md)")
    return [row for row in MANAGED if row.glue_name in wanted]


def custom_detector(identifier: dict) -> Detector:
    """A custom data identifier (CreateCustomDataIdentifier's members) as a Detector: keywords must precede the
    match within maximumMatchDistance; a match containing an ignore word is dropped."""
    keywords = tuple(identifier.get("keywords") or ())
    return Detector(
        key=identifier.get("id", "test"), category="CUSTOM_IDENTIFIER",
        forms=(Form(re.compile(identifier["regex"]), Keyword.REQUIRED if keywords else Keyword.NOT_REQUIRED),),
        keywords=keywords, max_distance=int(identifier.get("maximumMatchDistance") or CUSTOM_DEFAULT_DISTANCE),
        ignore_words=tuple(identifier.get("ignoreWords") or ()), keyword_before_only=True,
    )
