"""Scrubbing credentials out of URIs and messages before they reach logs, status or evidence."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import Any

from tunix_rt.api.secrets import redact

SECRET_ENV_PATTERN = re.compile(
    r"(SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|PRIVATE_KEY|SESSION|API_KEY|ACCESS_KEY)",
    re.IGNORECASE,
)
"""Environment variable names whose values are treated as secrets and scrubbed."""

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
    """Replace every credential value found in the environment, and every credential
    :func:`tunix_rt.api.secrets.redact` finds (URI userinfo, signed query values,
    key-shaped tokens), by ***."""
    for value in secret_values(environ):
        text = text.replace(value, "***")
    return redact(text)


def scrub_tree(value: Any, environ: Mapping[str, str] | None = None) -> Any:
    """``value`` (JSON-like: mappings, lists, scalars) with :func:`scrub` applied to every
    string, keys included: a config or spec written to evidence never carries a
    credential, even one that slipped past validation."""
    if isinstance(value, str):
        return scrub(value, environ)
    if isinstance(value, Mapping):
        return {scrub_tree(k, environ): scrub_tree(v, environ) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_tree(v, environ) for v in value]
    return value


def redact_uri(uri: str) -> str:
    """The URI without userinfo (also when the secret holds ``/``), with secret-looking
    query values and key-shaped tokens replaced by ***, and environment secrets scrubbed:
    the one form in which a URI is shown (CLI, logs, Events, status, evidence)."""
    return scrub(uri)


class ScrubFilter(logging.Filter):
    """A handler filter that scrubs every record's message (:func:`scrub`): the operator's
    log, kopf's DEBUG dumps of whole objects included, never shows a credential."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def scrub_log_handlers(logger: logging.Logger | None = None) -> None:
    """Add one :class:`ScrubFilter` to each handler of ``logger`` (default: the root)."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, ScrubFilter) for f in handler.filters):
            handler.addFilter(ScrubFilter())
