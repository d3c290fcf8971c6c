"""Scrubbing credentials out of URIs and messages before they reach logs, status or evidence."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SECRET_ENV_PATTERN = re.compile(
    r"(SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|PRIVATE_KEY|SESSION|API_KEY|ACCESS_KEY)",
    re.IGNORECASE,
)
"""Environment variable names whose values are treated as secrets and scrubbed."""

_SECRET_QUERY = re.compile(
    r"(sig|signature|token|secret|key|credential|password|auth|session)", re.IGNORECASE
)

_MIN_SECRET_LEN = 6


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of credential-like environment variables, longest first (for scrubbing)."""
    env = os.environ if environ is None else environ
    values = {
        value
        for name, value in env.items()
        if SECRET_ENV_PATTERN.search(name) and value and len(value) >= _MIN_SECRET_LEN
    }
    return sorted(values, key=len, reverse=True)


def scrub(text: str, environ: Mapping[str, str] | None = None) -> str:
    """Replace every credential value found in the environment, and URI userinfo, by ***."""
    for value in secret_values(environ):
        text = text.replace(value, "***")
    return re.sub(r"([a-z][a-z0-9+.-]*://)[^/\s@]+@", r"\1***@", text)


def redact_uri(uri: str) -> str:
    """The URI without userinfo and with secret-looking query values replaced by ***."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return scrub(uri)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(k, "***" if _SECRET_QUERY.search(k) else v) for k, v in pairs], safe="*"
        )
    return scrub(urlunsplit((parts.scheme, netloc, parts.path, query, "")))
