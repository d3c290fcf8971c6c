"""Credentials where a spec, a flag or a message would carry them in plain sight.

One detector for what a credential looks like inside a string:

* userinfo in a URI (``s3://KEY:SECRET@bucket``), the secret possibly holding ``/``,
  ``+`` or ``=`` as AWS secret keys do (``s3://KEY:ab/cd@bucket`` splits its authority at
  the ``/``, so a plain URL parser sees no userinfo there);
* a signed URL's query parameters (``X-Amz-Signature``, ``X-Goog-Credential``, an Azure
  SAS ``sig``, ``access_token``, ``key`` …);
* key-shaped tokens (AWS access key ids, a 40-character AWS secret after ``:`` or ``=``,
  a private-key block, GitHub, Hugging Face, Google and Slack tokens, JWTs).

A spec that holds one is refused (:func:`spec_credentials`, field named, value never
echoed), and :func:`redact` cuts them out of anything shown (CLI, logs, Events, status,
evidence). Credentials belong in the store's Secret or in workload identity: the spec is
readable by anyone who can ``get`` the object, and the RayJob built from it carries it
into its annotation and its command line.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

FIX = (
    "put them in the store's Secret (storage.credentialsSecret in the chart) or use "
    "workload identity (cluster.serviceAccount)"
)
"""The fix every refusal says."""

MASK = "***"

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")
_URI_END = re.compile(r"[\s'\"<>`]")
"""Where a URI inside a longer text ends."""

_SIGNED_PARAMS = frozenset(
    {
        "x-amz-signature",
        "x-amz-credential",
        "x-amz-security-token",
        "x-goog-signature",
        "x-goog-credential",
        "signature",
        "sig",
        "awsaccesskeyid",
        "googleaccessid",
        "access_token",
        "token",
        "key",
        "apikey",
        "api_key",
        "password",
        "secret",
        "client_secret",
    }
)
"""Query parameters of signed URLs and API calls whose value is (or unlocks) a secret."""

_SECRET_PARAM = re.compile(
    r"(?:^|[-_.])(?:signature|token|secret|password|passwd|credentials?|"
    r"api[-_]?key|access[-_]?key|private[-_]?key)$",
    re.IGNORECASE,
)
_REDACT_PARAM = re.compile(
    r"(sig|signature|token|secret|key|credential|password|auth|session)", re.IGNORECASE
)
"""Broader than the refusal: masking a harmless value costs nothing."""

_AWS_SECRET = re.compile(r"(?:(?<=[:=\s,;\"'])|^)([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])")

_TOKENS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "an AWS access key id",
        re.compile(
            r"(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA)"
            r"[A-Z0-9]{16}(?![A-Za-z0-9])"
        ),
    ),
    (
        "a private key",
        re.compile(
            r"-----BEGIN[A-Z ]*PRIVATE KEY-----(?:.*?-----END[A-Z ]*PRIVATE KEY-----)?"
            r"|\"private_key\"\s*:\s*\"[^\"]*\"?",
            re.DOTALL,
        ),
    ),
    (
        "a GitHub token",
        re.compile(r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,})"),
    ),
    ("a Hugging Face token", re.compile(r"(?<![A-Za-z0-9_])hf_[A-Za-z0-9]{30,}")),
    ("a Google API key", re.compile(r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}")),
    ("a Google OAuth token", re.compile(r"(?<![A-Za-z0-9_-])ya29\.[0-9A-Za-z_-]{20,}")),
    ("a Slack token", re.compile(r"(?<![A-Za-z0-9])xox[abposr]-[A-Za-z0-9-]{10,}")),
    (
        "a JSON Web Token",
        re.compile(
            r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"
        ),
    ),
)

_ENV_SECRET_NAME = re.compile(
    r"(?:^|_)(?:SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIALS?|PRIVATE_KEY|API_KEY|ACCESS_KEY"
    r"|ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN)(?:_|$)",
    re.IGNORECASE,
)
"""An environment variable that holds a credential (``HF_TOKEN``, ``AWS_SECRET_ACCESS_KEY``);
not ``TOKENIZERS_PARALLELISM``."""


# ----------------------------------------------------------------------------- finding


def _uris(text: str) -> Iterator[tuple[int, int]]:
    """``(start, end)`` of each ``scheme://…`` inside ``text``."""
    for match in _SCHEME.finditer(text):
        end = _URI_END.search(text, match.end())
        yield match.start(), end.start() if end else len(text)


def userinfo_span(uri: str) -> tuple[int, int] | None:
    """``(start, end)`` of the userinfo of a URI (without the ``@``), or None.

    ``s3://KEY:SECRET@bucket/x`` has one, and so has ``s3://KEY:ab/cd@bucket/x`` (the
    secret holds a ``/``); ``hf://datasets/org/name@main`` (a revision) and
    ``https://host:8080/a@b`` (a port, then a path) have none.
    """
    match = _SCHEME.match(uri)
    if match is None:
        return None
    start = match.end()
    rest = re.split(r"[?#]", uri[start:], maxsplit=1)[0]
    at = rest.find("@")
    if at < 0:
        return None
    authority = rest.split("/", 1)[0]
    if "@" in authority:
        return start, start + authority.rindex("@")
    _, colon, after = authority.partition(":")
    if colon and not after.isdigit():
        return start, start + at
    return None


def _query(uri: str) -> tuple[int, str] | None:
    """Where the query of ``uri`` starts, and the query (without ``#fragment``)."""
    head = uri.split("#", 1)[0]
    if "?" not in head:
        return None
    at = head.index("?") + 1
    return at, head[at:]


def _signed_params(uri: str) -> list[str]:
    """Names of the query parameters of ``uri`` that carry a secret."""
    found = _query(uri)
    if found is None:
        return []
    names = [k for k, _ in parse_qsl(found[1], keep_blank_values=True)]
    lowered = {n.lower() for n in names}
    out = [n for n in names if n.lower() in _SIGNED_PARAMS or _SECRET_PARAM.search(n)]
    if not out and "sv" in lowered and lowered & {"se", "sp", "srt"}:
        out.append("sv (an Azure SAS token)")
    return out


def _aws_secrets(text: str) -> Iterator[re.Match[str]]:
    """40-character AWS secret access keys after a separator (mixed case and digits, not a
    path: a secret rarely holds more than three ``/``, a path of that length does)."""
    for match in _AWS_SECRET.finditer(text):
        value = match.group(1)
        if (
            any(c.isupper() for c in value)
            and any(c.islower() for c in value)
            and any(c.isdigit() for c in value)
            and not value.startswith("/")
            and value.count("/") <= 3
        ):
            yield match


_SUSPECT = re.compile(
    "|".join(["://", _AWS_SECRET.pattern, *(pattern.pattern for _, pattern in _TOKENS)]),
    re.DOTALL,
)
"""Every shape at once: one search clears the usual string (``loguniform``, ``2Gi``)."""


def credentials(text: str) -> list[str]:
    """What credentials ``text`` holds, in words (never the values); empty: none."""
    return list(_credentials(text)) if _SUSPECT.search(text) else []


@lru_cache(maxsize=4096)
def _credentials(text: str) -> tuple[str, ...]:
    """:func:`credentials`, cached: a spec's strings are checked again each time a trial's
    config is validated (``TrainerConfig.with_params``)."""
    out: list[str] = []
    for start, end in _uris(text):
        uri = text[start:end]
        if userinfo_span(uri):
            out.append("a URI with credentials (user:secret@)")
        out.extend(f"a signed URL's {name} parameter" for name in _signed_params(uri))
    out.extend(what for what, pattern in _TOKENS if pattern.search(text))
    if any(True for _ in _aws_secrets(text)):
        out.append("an AWS secret access key")
    return tuple(dict.fromkeys(out))


def credential_problem(text: str) -> str | None:
    """One sentence naming what ``text`` holds and the fix; None when it holds none."""
    found = credentials(text)
    if not found:
        return None
    return f"must not carry credentials (it holds {', '.join(found)}): {FIX}"


def env_problem(name: str, value: str) -> str | None:
    """Why an environment entry of the spec is a credential (by its name), else None: a
    path (a mounted key file, ``GOOGLE_APPLICATION_CREDENTIALS=/var/…``) is fine."""
    if not _ENV_SECRET_NAME.search(name) or not value or value.startswith(("/", "file://")):
        return None
    return f"{name} must not carry a credential in plain sight: {FIX}"


# ----------------------------------------------------------------------------- specs


Loc = tuple[int | str, ...]


def spec_credentials(value: Any, loc: Loc = ()) -> list[tuple[Loc, str]]:
    """``(location, problem)`` for every credential in a spec's wire form (or raw input):
    every string, mapping key and list item, and the names of ``cluster.env``."""
    out: list[tuple[Loc, str]] = []
    if isinstance(value, BaseModel):  # a nested model given as an instance, not validated here
        value = value.model_dump(mode="json", by_alias=True, exclude_none=True, warnings=False)
    if isinstance(value, str):
        problem = credential_problem(value)
        if problem:
            out.append((loc, problem))
    elif isinstance(value, Mapping):
        is_env = len(loc) >= 2 and loc[-1] == "env" and loc[-2] == "cluster"
        for key, item in value.items():
            problem = credential_problem(key) if isinstance(key, str) else None
            where = (*loc, redact(key) if problem else str(key))  # a path is shown
            if problem:
                out.append((where, f"the key {problem}"))
            env = env_problem(str(key), item) if is_env and isinstance(item, str) else None
            if env is not None:
                out.append((where, env))
                continue
            out.extend(spec_credentials(item, where))
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        for index, item in enumerate(value):
            out.extend(spec_credentials(item, (*loc, index)))
    return out


# ----------------------------------------------------------------------------- redaction


def _redact_uri_at(text: str, start: int, end: int) -> str:
    """The URI ``text[start:end]`` with its userinfo and secret query values masked."""
    uri = text[start:end]
    span = userinfo_span(uri)
    if span is not None:
        uri = uri[: span[0]] + MASK + uri[span[1] :]
    found = _query(uri)
    if found is not None:
        at, query = found
        parts = []
        for pair in query.split("&"):
            name, sep, _ = pair.partition("=")
            secret = _REDACT_PARAM.search(name) or name.lower() in _SIGNED_PARAMS
            parts.append(f"{name}={MASK}" if sep and secret else pair)
        uri = uri[:at] + "&".join(parts) + uri[at + len(query) :]
    return uri


def redact(text: str) -> str:
    """``text`` with every credential :func:`credentials` finds replaced by ``***``:
    userinfo (``s3://***@bucket/x``), secret query values, key-shaped tokens."""
    pieces: list[str] = []
    last = 0
    for start, end in _uris(text):
        if start < last:
            continue
        pieces += [text[last:start], _redact_uri_at(text, start, end)]
        last = end
    text = "".join(pieces) + text[last:]
    for _, pattern in _TOKENS:
        text = pattern.sub(MASK, text)
    for match in reversed(list(_aws_secrets(text))):
        text = text[: match.start(1)] + MASK + text[match.end(1) :]
    return text


def refuse_credentials(data: Any) -> Any:
    """The body of a spec's ``mode="before"`` validator: ``data`` unchanged, or one error
    per credential found, each at its field and without the value (run before any other
    check, so that no other message can echo it)."""
    found = spec_credentials(data)
    if not found:
        return data
    raise ValidationError.from_exception_data(
        "ValueError",
        [
            InitErrorDetails(
                type=PydanticCustomError("credentials", "{message}", {"message": message}),
                loc=loc,
                input=None,
            )
            for loc, message in found
        ],
    )
