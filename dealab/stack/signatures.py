"""Request signatures verified as AWS verifies them: SigV4 and SigV2 (S3), in headers and query strings,
S3 POST policies and SigV4 streaming (aws-chunked) payloads.

Verification works from the request as it arrived: the path exactly as sent (percent-encoding included),
the raw query string, the headers as received. Clients differ in how they canonicalise a path (botocore
signs S3 paths as sent but double-encodes other services' paths; the Java SDK behind Spark's s3a encodes
each segment once), so the canonical forms AWS accepts are tried in turn. Time is compared with *real*
time (15 minutes of skew, as AWS), never the lab clock: clients sign with wall time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import parse_qsl, quote, unquote

from dealab.config import TEST_ACCESS_KEY, TEST_SECRET_KEY
from dealab.wire import labtime

ACCOUNT_ID = "123456789012"
MAX_SKEW_SECONDS = 15 * 60
MAX_PRESIGN_SECONDS = 7 * 24 * 3600
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD"
STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
# Payload hashes that stand for a body the signature does not cover chunk by chunk (trailers are
# checksums, which the backend checks); the seed signature still covers everything else.
UNVERIFIED_PAYLOADS = frozenset({UNSIGNED_PAYLOAD, "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"})

# S3's SigV2 canonical resource keeps these sub-resources of the query (botocore's list, which is AWS's).
SIGV2_SUBRESOURCES = frozenset({
    "accelerate", "acl", "cors", "defaultObjectAcl", "location", "logging", "partNumber", "policy", "requestPayment",
    "torrent", "versioning", "versionId", "versions", "website", "uploads", "uploadId", "response-content-type",
    "response-content-language", "response-expires", "response-cache-control", "response-content-disposition",
    "response-content-encoding", "delete", "lifecycle", "tagging", "restore", "storageClass", "notification",
    "replication", "analytics", "metrics", "inventory", "select", "select-type", "object-lock",
})


@dataclass(frozen=True)
class Credential:
    access_key: str
    secret_key: str
    principal_arn: str
    session_token: str = ""  # temporary (STS) credentials: the request must carry it as X-Amz-Security-Token
    expires_at: float | None = None  # temporary credentials: lab time (seconds since the epoch) they stop working


# The credentials every stack knows. IAM access keys and STS sessions join through `with_issued_keys`.
BUILTIN_CREDENTIALS = {TEST_ACCESS_KEY: Credential(TEST_ACCESS_KEY, TEST_SECRET_KEY, f"arn:aws:iam::{ACCOUNT_ID}:root")}

CredentialLookup = Callable[[str], "Credential | None"]


def credential_for(access_key: str) -> Credential | None:
    """The credential behind an access key id, or None for a key this stack never issued."""
    return BUILTIN_CREDENTIALS.get(access_key)


def with_issued_keys(issued: Callable[[str], object | None]) -> CredentialLookup:
    """The stack's own credential, else one the IAM engine issued or recorded (an IAM user's active access
    key, an STS session): `issued(access_key)` answers an object with this Credential's fields, or None."""

    def lookup(access_key: str) -> Credential | None:
        builtin = credential_for(access_key)
        if builtin is not None:
            return builtin
        key = issued(access_key)
        if key is None:
            return None
        return Credential(access_key, key.secret_key, key.principal_arn, key.session_token, key.expires_at)

    return lookup


class AuthFailure(Exception):
    """Why a request's authentication fails. `kind` is protocol-neutral; the door names the AWS error code."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass
class RawRequest:
    """A request as received: `path` still percent-encoded, `query` the raw query string, `headers` keyed
    by lower-case name."""
    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    service: str = ""

    def header(self, name: str) -> str | None:
        return self.headers.get(name)


class Verifier:
    def __init__(self, lookup: CredentialLookup = credential_for, clock: Callable[[], float] = time.time,
                 lab_clock: Callable[[], float] = lambda: labtime.now().replace(tzinfo=timezone.utc).timestamp()):
        self.lookup = lookup
        self.clock = clock  # real time: the lab clock may be months ahead
        self.lab_clock = lab_clock  # temporary credentials expire in lab time, as STS issued them

    def authenticate(self, request: RawRequest) -> Credential | None:
        """The credential that signed `request`, None when it carries no signature at all (anonymous)."""
        credential = self._signed_by(request)
        if credential is not None:
            token = request.header("x-amz-security-token") or dict(parse_qsl(request.query)).get("X-Amz-Security-Token")
            self.check_session(credential, token)
        return credential

    def check_session(self, credential: Credential, token: str | None) -> None:
        """Temporary credentials work only with their session token, and only until they expire."""
        if not credential.session_token:
            return
        if not token or not hmac.compare_digest(token.encode(), credential.session_token.encode()):
            raise AuthFailure("bad-token", "The security token included in the request is invalid.")
        if credential.expires_at is not None and self.lab_clock() >= credential.expires_at:
            raise AuthFailure("expired-token", "The security token included in the request is expired")

    def _signed_by(self, request: RawRequest) -> Credential | None:
        authorization = request.header("authorization")
        if authorization:
            if authorization.startswith("AWS4-HMAC-SHA256 "):
                return self._sigv4_header(request, authorization)
            if authorization.startswith("AWS "):
                return self._sigv2_header(request, authorization)
            raise AuthFailure("malformed", f"unsupported Authorization scheme {authorization.split(' ', 1)[0]!r}")
        if "X-Amz-Signature=" in request.query or "X-Amz-Credential=" in request.query:
            return self._sigv4_query(request)
        if "Signature=" in request.query and "AWSAccessKeyId=" in request.query:
            return self._sigv2_query(request)
        return None

    # ---- SigV4 -------------------------------------------------------------------------------------
    def _sigv4_header(self, request: RawRequest, authorization: str) -> Credential:
        fields = {}
        for part in authorization[len("AWS4-HMAC-SHA256 "):].split(","):
            name, _, value = part.strip().partition("=")
            fields[name] = value
        try:
            access_key, date, region, service, _ = fields["Credential"].split("/")
            signed_headers, signature = fields["SignedHeaders"], fields["Signature"]
        except (KeyError, ValueError):
            raise AuthFailure("malformed", "Authorization header requires Credential, SignedHeaders and Signature") from None
        credential = self._credential(access_key)
        amz_date = request.header("x-amz-date") or _amz_date_from_http_date(request.header("date"))
        if not amz_date or not amz_date.startswith(date):
            raise AuthFailure("malformed", "X-Amz-Date is missing or does not match the credential scope's date")
        self._check_skew(amz_date)
        payload_hash = request.header("x-amz-content-sha256") or hashlib.sha256(request.body).hexdigest()
        self._check_payload(request, payload_hash)
        key = _signing_key(credential.secret_key, date, region, service)
        scope = f"{date}/{region}/{service}/aws4_request"
        query = _canonical_query(request.query, drop=None)
        seed = self._match_v4(request, key, amz_date, scope, query, signed_headers, payload_hash, signature)
        if payload_hash == STREAMING_SIGNED:
            _verify_chunks(request.body, key, amz_date, scope, seed)
        return credential

    def _sigv4_query(self, request: RawRequest) -> Credential:
        params = dict(parse_qsl(request.query, keep_blank_values=True))
        try:
            access_key, date, region, service, _ = params["X-Amz-Credential"].split("/")
            amz_date, signed_headers, signature = params["X-Amz-Date"], params["X-Amz-SignedHeaders"], params["X-Amz-Signature"]
            expires = int(params.get("X-Amz-Expires", "0"))
        except (KeyError, ValueError):
            raise AuthFailure("malformed", "a presigned URL needs X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature") from None
        if params.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
            raise AuthFailure("malformed", "X-Amz-Algorithm must be AWS4-HMAC-SHA256")
        if not 0 < expires <= MAX_PRESIGN_SECONDS:
            raise AuthFailure("malformed", f"X-Amz-Expires must be between 1 and {MAX_PRESIGN_SECONDS} seconds")
        credential = self._credential(access_key)
        signed_at = _parse_amz_date(amz_date)
        now = self.clock()
        if now > signed_at + expires:
            raise AuthFailure("expired", "Request has expired")
        if signed_at > now + MAX_SKEW_SECONDS:
            raise AuthFailure("expired", "Request is not valid yet: X-Amz-Date is in the future")
        payload_hash = params.get("X-Amz-Content-Sha256") or request.header("x-amz-content-sha256") or UNSIGNED_PAYLOAD
        key = _signing_key(credential.secret_key, date, region, service)
        scope = f"{date}/{region}/{service}/aws4_request"
        query = _canonical_query(request.query, drop="X-Amz-Signature")
        self._match_v4(request, key, amz_date, scope, query, signed_headers, payload_hash, signature)
        return credential

    def _match_v4(self, request, key, amz_date, scope, query, signed_headers, payload_hash, signature) -> str:
        headers = []
        for name in signed_headers.split(";"):
            value = request.header(name)
            if value is None:
                raise AuthFailure("mismatch", f"signed header {name!r} is not in the request")
            headers.append(f"{name}:{' '.join(value.split())}\n")
        canonical_headers = "".join(headers)
        for path in _canonical_paths(request.path, request.service):
            canonical = "\n".join((request.method, path, query, canonical_headers, signed_headers, payload_hash))
            string_to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
            expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
            if hmac.compare_digest(expected, signature):
                return signature
        raise AuthFailure("mismatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")

    # ---- SigV2 (S3) ---------------------------------------------------------------------------------
    def _sigv2_header(self, request: RawRequest, authorization: str) -> Credential:
        access_key, _, signature = authorization[4:].strip().rpartition(":")
        credential = self._credential(access_key)
        date = request.header("x-amz-date") or request.header("date")
        if not date:
            raise AuthFailure("malformed", "a SigV2 request needs a Date or x-amz-date header")
        try:
            signed_at = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            raise AuthFailure("malformed", f"cannot read the request date {date!r}") from None
        if abs(self.clock() - signed_at) > MAX_SKEW_SECONDS:
            raise AuthFailure("skewed", "The difference between the request time and the current time is too large.")
        # AWS: with x-amz-date present the Date line is empty; botocore puts the Date header there
        date_lines = ("", request.header("date") or "") if request.header("x-amz-date") else (date,)
        self._match_v2(request, credential, date_lines, signature)
        return credential

    def _sigv2_query(self, request: RawRequest) -> Credential:
        params = dict(parse_qsl(request.query, keep_blank_values=True))
        credential = self._credential(params.get("AWSAccessKeyId", ""))
        try:
            expires = int(params.get("Expires", ""))
        except ValueError:
            raise AuthFailure("malformed", "a SigV2 presigned URL needs Expires (seconds since the epoch)") from None
        if self.clock() > expires:
            raise AuthFailure("expired", "Request has expired")
        self._match_v2(request, credential, (str(expires),), params.get("Signature", ""))
        return credential

    def _match_v2(self, request: RawRequest, credential: Credential, date_lines, signature: str) -> None:
        amz = _sigv2_amz_headers(request)
        resource_query = _sigv2_subresources(request.query)
        secret = credential.secret_key.encode()
        for date_line in date_lines:
            for path in dict.fromkeys((request.path, quote(unquote(request.path), safe="/~"))):
                string_to_sign = "\n".join((
                    request.method, request.header("content-md5") or "", request.header("content-type") or "", date_line,
                )) + "\n" + amz + path + resource_query
                expected = base64.b64encode(hmac.new(secret, string_to_sign.encode(), hashlib.sha1).digest()).decode()
                if hmac.compare_digest(expected, signature):
                    return
        raise AuthFailure("mismatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")

    # ---- S3 POST policy -------------------------------------------------------------------------------
    def verify_post_policy(self, fields: dict[str, str], bucket: str, file_size: int, file_name: str) -> Credential | None:
        """An S3 browser-form upload: the policy's signature, expiry and conditions. `fields` are the form
        fields (names lower-cased) other than the file. None when the form carries no policy (anonymous)."""
        policy_b64 = fields.get("policy")
        if not policy_b64:
            return None
        if "x-amz-signature" in fields:
            try:
                access_key, date, region, service, _ = fields["x-amz-credential"].split("/")
            except (KeyError, ValueError):
                raise AuthFailure("malformed", "a SigV4 POST form needs x-amz-credential") from None
            credential = self._credential(access_key)
            expected = hmac.new(_signing_key(credential.secret_key, date, region, service), policy_b64.encode(), hashlib.sha256).hexdigest()
            signature = fields["x-amz-signature"]
        else:
            credential = self._credential(fields.get("awsaccesskeyid", ""))
            expected = base64.b64encode(hmac.new(credential.secret_key.encode(), policy_b64.encode(), hashlib.sha1).digest()).decode()
            signature = fields.get("signature", "")
        if not hmac.compare_digest(expected, signature):
            raise AuthFailure("mismatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
        self.check_session(credential, fields.get("x-amz-security-token"))
        try:
            document = json.loads(base64.b64decode(policy_b64))
            expiration = datetime.fromisoformat(document["expiration"].replace("Z", "+00:00")).timestamp()
            conditions = document.get("conditions", [])
        except (ValueError, KeyError, TypeError, AttributeError):
            raise AuthFailure("policy", "Invalid Policy: the policy is not a base64 JSON document with an expiration") from None
        if self.clock() > expiration:
            raise AuthFailure("policy", "Invalid according to Policy: Policy expired.")
        values = {**fields, "bucket": bucket}
        if "key" in values:
            values["key"] = values["key"].replace("${filename}", file_name)
        covered = {"bucket"}
        for condition in conditions:
            covered.add(_check_post_condition(condition, values, file_size))
        extra = sorted(name for name in fields if name not in covered and name not in POST_FIELDS_WITHOUT_CONDITION
                       and not name.startswith("x-ignore-"))
        if extra:
            raise AuthFailure("policy", f"Invalid according to Policy: Extra input fields: {', '.join(extra)}")
        return credential

    # ---- shared ---------------------------------------------------------------------------------------
    def _credential(self, access_key: str) -> Credential:
        credential = self.lookup(access_key)
        if credential is None:
            raise AuthFailure("unknown-key", f"The AWS Access Key Id {access_key!r} does not exist in our records.")
        return credential

    def _check_skew(self, amz_date: str) -> None:
        if abs(self.clock() - _parse_amz_date(amz_date)) > MAX_SKEW_SECONDS:
            raise AuthFailure("skewed", "The difference between the request time and the current time is too large.")

    @staticmethod
    def _check_payload(request: RawRequest, payload_hash: str) -> None:
        if payload_hash in UNVERIFIED_PAYLOADS or payload_hash == STREAMING_SIGNED:
            return
        if not hmac.compare_digest(hashlib.sha256(request.body).hexdigest(), payload_hash.lower()):
            raise AuthFailure("payload", "The provided 'x-amz-content-sha256' header does not match what was computed.")


# Form fields a POST policy needs no condition for (AWS's list).
POST_FIELDS_WITHOUT_CONDITION = frozenset({"policy", "signature", "x-amz-signature", "awsaccesskeyid", "file"})


def _check_post_condition(condition, values: dict[str, str], file_size: int) -> str:
    """Checks one POST policy condition; returns the field name it covers."""
    if isinstance(condition, dict) and len(condition) == 1:
        (name, expected), = condition.items()
        operator, name = "eq", name.lower()
    elif isinstance(condition, list) and len(condition) == 3 and condition[0] == "content-length-range":
        low, high = int(condition[1]), int(condition[2])
        if not low <= file_size <= high:
            raise AuthFailure("policy", f"Your proposed upload size {file_size} is outside content-length-range [{low}, {high}]")
        return "content-length-range"
    elif isinstance(condition, list) and len(condition) == 3 and str(condition[1]).startswith("$"):
        operator, name, expected = str(condition[0]).lower(), str(condition[1])[1:].lower(), condition[2]
    else:
        raise AuthFailure("policy", f"Invalid Policy: cannot read the condition {json.dumps(condition)}")
    actual = values.get(name, "")
    held = actual == str(expected) if operator == "eq" else actual.startswith(str(expected)) if operator == "starts-with" else None
    if held is None:
        raise AuthFailure("policy", f"Invalid Policy: unknown condition operator {operator!r}")
    if not held:
        raise AuthFailure("policy", f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}")
    return name


def _verify_chunks(body: bytes, key: bytes, amz_date: str, scope: str, seed: str) -> None:
    """aws-chunked body: every chunk's signature chains from the previous one, starting at the seed."""
    previous, position = seed, 0
    while True:
        line_end = body.find(b"\r\n", position)
        if line_end < 0:
            raise AuthFailure("payload", "aws-chunked body ends before its final chunk")
        size_text, _, extension = body[position:line_end].partition(b";")
        try:
            size = int(size_text, 16)
        except ValueError:
            raise AuthFailure("payload", "aws-chunked body has an unreadable chunk size") from None
        signature = extension.partition(b"chunk-signature=")[2].decode("ascii", "replace").strip()
        data = body[line_end + 2: line_end + 2 + size]
        string_to_sign = f"AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{previous}\n{EMPTY_SHA256}\n{hashlib.sha256(data).hexdigest()}"
        expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, signature):
            raise AuthFailure("mismatch", "The chunk signature we calculated does not match the chunk-signature you provided.")
        if size == 0:
            return
        previous, position = signature, line_end + 2 + size + 2


@lru_cache(maxsize=256)
def _signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    key = hmac.new(f"AWS4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    for part in (region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def _canonical_paths(raw_path: str, service: str) -> tuple[str, ...]:
    """The canonical URIs a client may have signed for `raw_path`, likeliest first."""
    once = quote(unquote(raw_path), safe="/~")  # AWS's canonical form: each byte encoded once (Java SDK)
    if service == "s3":
        return tuple(dict.fromkeys((raw_path, once)))  # botocore signs S3 paths exactly as sent
    from botocore.utils import normalize_url_path

    twice = quote(normalize_url_path(raw_path), safe="/~")  # botocore encodes other services' paths again
    return tuple(dict.fromkeys((twice, raw_path, once)))


def _canonical_query(raw_query: str, drop: str | None) -> str:
    pairs = []
    for pair in raw_query.split("&") if raw_query else ():
        name, _, value = pair.partition("=")
        if name == drop:
            continue
        pairs.append((quote(unquote(name), safe="-_.~"), quote(unquote(value), safe="-_.~")))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def _sigv2_amz_headers(request: RawRequest) -> str:
    amz = sorted((name, value) for name, value in request.headers.items() if name.startswith("x-amz-"))
    return "".join(f"{name}:{' '.join(value.split())}\n" for name, value in amz)


def _sigv2_subresources(raw_query: str) -> str:
    kept = []
    for pair in raw_query.split("&") if raw_query else ():
        name, equals, value = pair.partition("=")
        if name in SIGV2_SUBRESOURCES:
            kept.append((name, f"{name}={unquote(value)}" if equals else name))
    return ("?" + "&".join(text for _, text in sorted(kept))) if kept else ""


def _parse_amz_date(amz_date: str) -> float:
    try:
        return datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()
    except ValueError:
        raise AuthFailure("malformed", f"X-Amz-Date {amz_date!r} is not in the form YYYYMMDDTHHMMSSZ") from None


def _amz_date_from_http_date(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    except (TypeError, ValueError):
        return None
