"""The door: what every request from the network passes before the gateway routes it.

Threat model (README "Security"): `test`/`test` is a public secret, so a signature alone cannot keep a web
page out; a page can sign a query string or send a form POST that needs no preflight. So, in order:
1. Host must name this machine's loopback (or a classroom name from DEALAB_ALLOWED_HOSTS): DNS rebinding.
2. No cross-site request (an Origin header, or Sec-Fetch-Site cross-site/same-site) is served, except S3
   requests that the bucket's own CORS configuration allows; preflights are answered from it, never
   reflected.
3. Admin endpoints want the state folder's token (health alone is readable without it).
4. Each protocol's Content-Type, so no text/plain or form POST reaches a JSON or REST API.
5. The signature (dealab.stack.signatures), or anonymous access where S3 allows it.
Engine calls made inside the stack process never come through here (the gateway knows them by a WSGI
environ key that no HTTP request can set).
"""

from __future__ import annotations

import fnmatch
import hmac
import io
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote

from dealab.wire.admintoken import TOKEN_HEADER
from dealab.wire.messages import AwsRequest, AwsResponse
from dealab.stack.signatures import AuthFailure, Credential, CredentialLookup, RawRequest, Verifier, credential_for

ADMIN_PREFIX = "/_dealab/"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})
CROSS_SITE_FETCHES = frozenset({"cross-site", "same-site"})
# Admin endpoints a caller without the token may use: reading health (status needs the pid; docker's
# healthcheck has no token). Nothing here changes state.
OPEN_ADMIN = frozenset({("GET", "health")})

# What a client of each protocol sends as Content-Type (botocore, the AWS CLI, the Java SDK).
PROTOCOL_CONTENT_TYPES = {
    "json": frozenset({"application/x-amz-json-1.0", "application/x-amz-json-1.1", "application/json"}),
    "smithy-rpc-v2-cbor": frozenset({"application/cbor"}),
    "query": frozenset({"application/x-www-form-urlencoded"}),
}
# Bodies a browser sends cross-site without a preflight: never what a REST API (other than S3) takes.
BROWSER_SIMPLE_TYPES = frozenset({"text/plain", "multipart/form-data", "application/x-www-form-urlencoded"})

# kind of AuthFailure → (status, S3 code, JSON-protocol code, query-protocol code), as AWS answers.
AUTH_ERRORS = {
    "missing": (403, "AccessDenied", "MissingAuthenticationTokenException", "MissingAuthenticationToken"),
    "unknown-key": (403, "InvalidAccessKeyId", "UnrecognizedClientException", "InvalidClientTokenId"),
    "mismatch": (403, "SignatureDoesNotMatch", "InvalidSignatureException", "SignatureDoesNotMatch"),
    "expired": (403, "AccessDenied", "InvalidSignatureException", "SignatureDoesNotMatch"),
    "skewed": (403, "RequestTimeTooSkewed", "InvalidSignatureException", "RequestExpired"),
    "malformed": (400, "AuthorizationHeaderMalformed", "IncompleteSignatureException", "IncompleteSignature"),
    "payload": (400, "XAmzContentSHA256Mismatch", "InvalidSignatureException", "SignatureDoesNotMatch"),
    "policy": (403, "AccessDenied", "AccessDeniedException", "AccessDenied"),
    "bad-token": (403, "InvalidToken", "UnrecognizedClientException", "InvalidClientTokenId"),
    "expired-token": (400, "ExpiredToken", "ExpiredTokenException", "ExpiredToken"),
}
CORS_REFUSAL = ("CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request "
                "method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.")


class S3Access(Protocol):
    """What the door asks of S3 (the s3access engine answers): a bucket's CORS rules, and whether a
    request without any signature may go on (a public bucket policy or ACL)."""

    def cors_rules(self, bucket: str) -> list[dict]: ...

    def allows_anonymous(self, request: AwsRequest) -> bool: ...


@dataclass
class Verdict:
    answer: AwsResponse | None = None  # set: the door answers (a refusal, or a CORS preflight)
    cors_headers: list[tuple[str, str]] = field(default_factory=list)
    credential: Credential | None = None


class Door:
    def __init__(self, ports: Iterable[int], admin_token: str, allowed_hosts: Iterable[str] = (), verify_signatures: bool = True,
                 lookup: CredentialLookup = credential_for, s3_access: S3Access | None = None):
        # a classroom learner's stack also answers requests addressed to the front door it sits behind
        front_ports = [port for port in os.environ.get("DEALAB_FRONT_PORTS", "").split(",") if port.strip()]
        self.ports = frozenset(str(port).strip() for port in [*ports, *front_ports])
        self.admin_token = admin_token
        self.allowed_hosts = LOOPBACK_NAMES | {name.strip().lower() for name in allowed_hosts if name.strip()}
        self.verify_signatures = verify_signatures
        self.verifier = Verifier(lookup)
        self.s3_access = s3_access

    def admit(self, environ: dict, request: AwsRequest) -> Verdict:
        headers = {name.lower(): value for name, value in request.headers.items()}
        if environ.get("CONTENT_LENGTH"):
            headers["content-length"] = environ["CONTENT_LENGTH"]
        admin = request.path.startswith(ADMIN_PREFIX)
        refuse = _admin_error if admin else _error_for(request, headers)
        host = headers.get("host", "")
        if not self._host_allowed(host):
            return Verdict(refuse("AccessDenied", f"dealab answers only requests addressed to this machine (127.0.0.1, localhost), not Host {host!r}; "
                                  "a classroom names its hosts in DEALAB_ALLOWED_HOSTS", 403))
        cross_site = "origin" in headers or headers.get("sec-fetch-site", "").lower() in CROSS_SITE_FETCHES
        if admin:
            return self._admit_admin(request, headers, cross_site)
        verdict = Verdict()
        if cross_site or request.method == "OPTIONS":
            if request.service != "s3":
                return Verdict(refuse("AccessDenied", f"dealab serves no cross-site requests (Origin {headers.get('origin')!r})", 403))
            verdict = self._cors(request, headers)
            if verdict.answer is not None:
                return verdict
        refusal = self._content_type_refusal(request, headers)
        if refusal is not None:
            return Verdict(refusal)
        if self.verify_signatures:
            try:
                verdict.credential = self._authenticate(environ, request, headers)
            except AuthFailure as failure:
                return Verdict(_auth_error(request, headers, failure))
        return verdict

    def finish(self, response: AwsResponse, verdict: Verdict) -> AwsResponse:
        """CORS headers only as the door decided them: whatever the backend added is dropped."""
        if response is verdict.answer:
            return response
        if verdict.cors_headers or any(name.lower().startswith("access-control-") for name, _ in response.headers):
            response.headers = [(n, v) for n, v in response.headers if not n.lower().startswith("access-control-")] + verdict.cors_headers
        return response

    # ---- checks -----------------------------------------------------------------------------------
    def _host_allowed(self, host: str) -> bool:
        host = host.strip().lower()
        if host.startswith("["):
            name, _, rest = host.partition("]")
            name, port = name + "]", rest.removeprefix(":")
        else:
            name, _, port = host.partition(":")
        if port and port not in self.ports and name not in self.allowed_hosts - LOOPBACK_NAMES:
            return False
        # <bucket>.localhost: virtual-hosted S3 on a name that always resolves to this machine (RFC 6761);
        # <label>.127.0.0.1 (an S3 access point ARN, S3 Control's account) resolves nowhere: only a client sending
        # through the gateway as its HTTP proxy can name it, never a web page
        return name in self.allowed_hosts or name.endswith((".localhost", ".127.0.0.1"))

    def _admit_admin(self, request: AwsRequest, headers: dict, cross_site: bool) -> Verdict:
        if cross_site:
            return Verdict(_admin_error("Forbidden", "admin endpoints refuse cross-site requests", 403))
        endpoint = request.path[len(ADMIN_PREFIX):].strip("/")
        if (request.method, endpoint) in OPEN_ADMIN:
            return Verdict()
        if not hmac.compare_digest(headers.get(TOKEN_HEADER.lower(), "").encode(), self.admin_token.encode()):
            return Verdict(_admin_error("Forbidden", f"admin endpoints need the {TOKEN_HEADER} header with the token in the state "
                                        "folder's admin-token file (the dealab CLI and grader send it)", 403))
        return Verdict()

    def _content_type_refusal(self, request: AwsRequest, headers: dict) -> AwsResponse | None:
        if request.service == "s3" or request.service == "moto-api":
            return None  # S3 bodies are objects of any type; browser forms are POST policies, checked below
        protocol = _protocol(request, headers)
        media_type = _media_type(headers)
        allowed = PROTOCOL_CONTENT_TYPES.get(protocol)
        if allowed is not None:
            if (request.body or request.method == "POST") and media_type not in allowed:
                return _error_for(request, headers)("UnsupportedMediaType",
                                                    f"{request.service} ({protocol} protocol) takes Content-Type {' or '.join(sorted(allowed))}, not {media_type or 'none'!r}", 415)
        elif request.body and media_type in BROWSER_SIMPLE_TYPES:
            return _error_for(request, headers)("UnsupportedMediaType", f"{request.service} does not take Content-Type {media_type!r}", 415)
        return None

    def _authenticate(self, environ: dict, request: AwsRequest, headers: dict) -> Credential | None:
        raw_target = environ.get("RAW_URI") or environ.get("REQUEST_URI") or request.path
        raw_path = raw_target.split("?", 1)[0] or "/"
        if "://" in raw_path:  # absolute-form request target
            raw_path = "/" + raw_path.split("://", 1)[1].partition("/")[2]
        raw = RawRequest(request.method, _wsgi_bytes_text(raw_path), _wsgi_bytes_text(request.query_string), headers, request.body, request.service)
        if request.service == "s3" and request.method == "POST" and _media_type(headers) == "multipart/form-data":
            credential = self._post_policy(environ, request, headers)
        else:
            credential = self.verifier.authenticate(raw)
        if credential is None and not self._anonymous_allowed(request):
            raise AuthFailure("missing", "this request carries no signature (Authorization header or presigned query); "
                                         "sign it with the stack's credentials (`dealab env`)" if request.service != "s3" else
                                         "Access Denied: anonymous access is allowed only where the bucket's policy or ACL makes it public")
        return credential

    def _post_policy(self, environ: dict, request: AwsRequest, headers: dict) -> Credential | None:
        from werkzeug.formparser import parse_form_data

        form_environ = {"REQUEST_METHOD": "POST", "CONTENT_TYPE": headers.get("content-type", ""),
                        "CONTENT_LENGTH": str(len(request.body)), "wsgi.input": io.BytesIO(request.body)}
        _, form, files = parse_form_data(form_environ)
        fields = {name.lower(): value for name, value in form.items()}
        upload = files.get("file")
        size = len(upload.read()) if upload is not None else 0
        bucket = unquote(request.path.lstrip("/").partition("/")[0])
        return self.verifier.verify_post_policy(fields, bucket, size, upload.filename or "" if upload is not None else "")

    def _anonymous_allowed(self, request: AwsRequest) -> bool:
        return request.service == "s3" and self.s3_access is not None and self.s3_access.allows_anonymous(request)

    # ---- CORS, as S3 answers it ----------------------------------------------------------------------
    def _cors(self, request: AwsRequest, headers: dict) -> Verdict:
        origin = headers.get("origin")
        preflight = request.method == "OPTIONS"
        if origin is None:
            if preflight:
                return Verdict(AwsResponse.xml_error("BadRequest", "Insufficient information. Origin request header needed.", 400))
            return Verdict(AwsResponse.xml_error("AccessForbidden", "dealab serves no cross-site request without an Origin", 403))
        bucket = unquote(request.path.lstrip("/").partition("/")[0])
        rules = self.s3_access.cors_rules(bucket) if bucket and self.s3_access is not None else []
        if not rules:
            return Verdict(AwsResponse.xml_error("AccessForbidden", "CORSResponse: CORS is not enabled for this bucket.", 403))
        method = headers.get("access-control-request-method", "") if preflight else request.method
        wanted = [h.strip().lower() for h in headers.get("access-control-request-headers", "").split(",") if h.strip()] if preflight else []
        rule = next((r for r in rules if _cors_rule_matches(r, origin, method, wanted)), None)
        if rule is None:
            return Verdict(AwsResponse.xml_error("AccessForbidden", CORS_REFUSAL, 403))
        allowed_origin = "*" if "*" in rule.get("AllowedOrigins", []) else origin
        cors = [("Access-Control-Allow-Origin", allowed_origin), ("Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method"),
                ("Access-Control-Allow-Methods", ", ".join(rule.get("AllowedMethods", [])))]
        if allowed_origin != "*":
            cors.append(("Access-Control-Allow-Credentials", "true"))
        if rule.get("ExposeHeaders"):
            cors.append(("Access-Control-Expose-Headers", ", ".join(rule["ExposeHeaders"])))
        if preflight:
            if wanted:
                cors.append(("Access-Control-Allow-Headers", ", ".join(wanted)))
            if "MaxAgeSeconds" in rule:
                cors.append(("Access-Control-Max-Age", str(rule["MaxAgeSeconds"])))
            return Verdict(AwsResponse(200, cors, b""))
        return Verdict(cors_headers=cors)


def _cors_rule_matches(rule: dict, origin: str, method: str, wanted_headers: list[str]) -> bool:
    # S3: one '*' wildcard per AllowedOrigin / AllowedHeader; methods compare exactly
    if not any(fnmatch.fnmatchcase(origin, pattern) for pattern in rule.get("AllowedOrigins", [])):
        return False
    if method not in rule.get("AllowedMethods", []):
        return False
    patterns = [p.lower() for p in rule.get("AllowedHeaders", [])]
    return all(any(fnmatch.fnmatchcase(header, pattern) for pattern in patterns) for header in wanted_headers)


def _media_type(headers: dict) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _protocol(request: AwsRequest, headers: dict) -> str:
    """The protocol the request speaks, as its client chose among those the service offers."""
    if headers.get("smithy-protocol") == "rpc-v2-cbor":
        return "smithy-rpc-v2-cbor"
    if "x-amz-target" in headers:
        return "json"
    from dealab.wire.operations import service_model

    model = service_model(request.service)
    if model is None:
        return ""
    protocols = model.metadata.get("protocols") or [model.metadata.get("protocol", "")]
    if "query" in protocols or "ec2" in protocols:
        return "query"
    return protocols[0]


def _error_for(request: AwsRequest, headers: dict):
    """The error builder whose shape the request's client parses."""
    if request.service == "s3":
        return AwsResponse.xml_error
    protocol = _protocol(request, headers)
    if protocol in ("json", "rest-json", "smithy-rpc-v2-cbor"):
        return AwsResponse.json_error
    return _query_error if protocol == "query" else AwsResponse.xml_error


def _query_error(code: str, message: str, status: int = 400) -> AwsResponse:
    """An error in the query protocol's XML shape (IAM, STS, ...)."""
    from xml.sax.saxutils import escape

    body = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
            "<RequestId>dealab</RequestId></ErrorResponse>")
    return AwsResponse(status, [("Content-Type", "text/xml")], body.encode())


def _admin_error(code: str, message: str, status: int) -> AwsResponse:
    return AwsResponse.json_error(code, message, status)


def _auth_error(request: AwsRequest, headers: dict, failure: AuthFailure) -> AwsResponse:
    status, s3_code, json_code, query_code = AUTH_ERRORS[failure.kind]
    build = _error_for(request, headers)
    if request.service == "s3":
        code = s3_code
    else:
        code = json_code if build == AwsResponse.json_error else query_code
    return build(code, failure.message, status)


def _wsgi_bytes_text(text: str) -> str:
    # PEP 3333 environ strings hold the raw bytes as latin-1; signatures cover the UTF-8 text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
