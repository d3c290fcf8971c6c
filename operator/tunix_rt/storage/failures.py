"""Why a store call failed: transient (worth a retry) or permanent, and the preflight cause."""

from __future__ import annotations

import errno
from collections.abc import Iterator

from tunix_rt.storage.errors import StoreNotFoundError

_NO_CREDENTIALS = frozenset(
    {
        "NoCredentialsError",
        "PartialCredentialsError",
        "CredentialRetrievalError",
        "DefaultCredentialsError",
        "RefreshError",
    }
)
_BAD_CREDENTIALS = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "InvalidClientTokenId",
        "AuthFailure",
    }
)
_NO_BUCKET = frozenset({"NoSuchBucket", "BucketNotFound"})
_DENIED = frozenset({"AccessDenied", "AllAccessDisabled", "Forbidden", "AccountProblem"})


def probe_cause(exc: BaseException, scheme: str = "s3") -> str:
    """A few words on why a store could not be written: credentials missing or rejected,
    bucket absent, permission denied, read-only file system, unreachable, or unknown."""
    text = str(exc)
    for err in _chain(exc):
        names = {cls.__name__ for cls in type(err).__mro__}
        code = _error_code(err)
        status = _http_status(err)
        if names & _NO_CREDENTIALS:
            return "credentials missing (none found in the environment or workload identity)"
        if code in _BAD_CREDENTIALS or status == 401:
            return "credentials rejected (check the access key and secret)"
        if code in _NO_BUCKET or "bucket does not exist" in str(err).lower():
            return "bucket absent"
        if code in _DENIED or status == 403 or isinstance(err, PermissionError):
            return "permission denied"
        if isinstance(err, OSError) and err.errno == errno.EROFS:
            return "read-only file system"
    if isinstance(exc, StoreNotFoundError) or "not found" in text:
        if scheme == "file":
            return "folder cannot be created (a parent is missing or not a folder)"
        return "bucket absent"
    if "Unable to locate credentials" in text or "NoCredentialsError" in text:
        return "credentials missing (none found in the environment or workload identity)"
    if any(code in text for code in _BAD_CREDENTIALS) or "status=401" in text:
        return "credentials rejected (check the access key and secret)"
    if any(code in text for code in _NO_BUCKET):
        return "bucket absent"
    if any(code in text for code in _DENIED) or "PermissionError" in text or "403" in text:
        return "permission denied"
    if "Read-only file system" in text:
        return "read-only file system"
    if "attempts" in text:
        return "unreachable (transient errors persisted after retries)"
    return "cannot write"


_TRANSIENT_CODES = frozenset(
    {
        "SlowDown",
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "BadGateway",
        "GatewayTimeout",
    }
)
_TRANSIENT_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EREMOTEIO,
        errno.EAGAIN,
    }
)
_PERMANENT = (
    FileNotFoundError,
    FileExistsError,
    PermissionError,
    IsADirectoryError,
    NotADirectoryError,
    ValueError,
    TypeError,
)
_TRANSIENT_NAMES = frozenset(
    {
        # botocore
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ConnectTimeoutError",
        "ReadTimeoutError",
        "HTTPClientError",
        "ProxyConnectionError",
        "ResponseStreamingError",
        "IncompleteReadError",
        # aiohttp
        "ClientConnectionError",
        "ClientConnectorError",
        "ClientOSError",
        "ServerDisconnectedError",
        "ServerTimeoutError",
        "ClientPayloadError",
        # fsspec / http.client / google-auth
        "FSTimeoutError",
        "IncompleteRead",
        "RemoteDisconnected",
        "TransportError",
        # what gcsfs's own (disabled) retry loop retried: a token refresh that failed
        # (metadata server, workload identity), HTTP 502 (raised as requests'
        # ProxyError), a payload whose checksum did not match
        "RefreshError",
        "ProxyError",
        "ChecksumError",
    }
)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        meta = response.get("ResponseMetadata") or {}
        status = meta.get("HTTPStatusCode")
        if isinstance(status, int):
            return status
    for attr in ("status", "code", "status_code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    return None


def _error_code(exc: BaseException) -> str | None:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = (response.get("Error") or {}).get("Code")
        return str(code) if code is not None else None
    return None


def is_transient(exc: BaseException) -> bool:
    """True for failures worth retrying: connection trouble, timeouts, 5xx, throttling."""
    for err in _chain(exc):
        status = _http_status(err)
        code = _error_code(err)
        if code in _TRANSIENT_CODES:
            return True
        if status is not None:
            return status >= 500 or status in (408, 429)
        if code is not None:  # an S3 error response without a retryable code: 4xx
            return False
        if any(cls.__name__ in _TRANSIENT_NAMES for cls in type(err).__mro__):
            return True
        if isinstance(err, ConnectionError | TimeoutError):
            return True
        if isinstance(err, OSError) and err.errno in _TRANSIENT_ERRNOS:
            return True
        if isinstance(err, _PERMANENT):
            return False
    return False
