"""AWS Signature Version 4 for a request with a body (POST), header-based.

The canonical request is built from the request exactly as it goes on the wire: method, the
already percent-encoded path encoded once more (AWS services other than S3 double-encode),
the sorted query, the signed headers (lower-case names, trimmed values, sorted) and the hex
SHA-256 of the body. The signing key is HMAC-SHA256 chained over the date, region, service and
`aws4_request`, starting from `"AWS4" + secret`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote

__all__ = ["AwsCredentials", "canonical_request", "sign_headers", "signature", "signing_key"]

ALGORITHM = "AWS4-HMAC-SHA256"


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """The derived key for one day (`YYYYMMDD`), region and service."""
    key = _hmac(f"AWS4{secret}".encode(), date)
    key = _hmac(key, region)
    key = _hmac(key, service)
    return _hmac(key, "aws4_request")


def _canonical_query(query: str) -> str:
    pairs = []
    for item in query.split("&") if query else ():
        name, _, value = item.partition("=")
        pairs.append((quote(name, safe="-_.~%"), quote(value, safe="-_.~%")))
    return "&".join(f"{name}={value}" for name, value in sorted(pairs))


def canonical_request(
    method: str, path: str, query: str, headers: Mapping[str, str], payload_hash: str
) -> tuple[str, str]:
    """(canonical request, signed header list) for `path` as sent (percent-encoded)."""
    names = sorted(name.lower() for name in headers)
    values = {name.lower(): " ".join(value.split()) for name, value in headers.items()}
    canonical_headers = "".join(f"{name}:{values[name]}\n" for name in names)
    signed = ";".join(names)
    uri = quote(path or "/", safe="/~")
    lines = [method, uri, _canonical_query(query), canonical_headers, signed, payload_hash]
    return "\n".join(lines), signed


def signature(
    credentials: AwsCredentials, canonical: str, amz_date: str, region: str, service: str
) -> str:
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"
    key = signing_key(credentials.secret_access_key, amz_date[:8], region, service)
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


def sign_headers(
    credentials: AwsCredentials,
    *,
    host: str,
    path: str,
    query: str,
    body: bytes,
    region: str,
    service: str,
    now: datetime | None = None,
) -> dict[str, str]:
    """The headers that sign a POST of `body`: host, x-amz-date, [token], authorization."""
    amz_date = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    headers = {"host": host, "x-amz-date": amz_date}
    if credentials.session_token:
        headers["x-amz-security-token"] = credentials.session_token
    payload_hash = hashlib.sha256(body).hexdigest()
    canonical, signed = canonical_request("POST", path, query, headers, payload_hash)
    sig = signature(credentials, canonical, amz_date, region, service)
    scope = f"{amz_date[:8]}/{region}/{service}/aws4_request"
    headers["authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key_id}/{scope}, "
        f"SignedHeaders={signed}, Signature={sig}"
    )
    return headers
