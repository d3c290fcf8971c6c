"""CSRF protection of the app's forms (the Promote button): a random nonce in a cookie
(HttpOnly, SameSite=Strict) and, in the form, the nonce's HMAC under the app's secret.

A POST counts only when the form's token is the HMAC of the cookie's nonce (compared
with :func:`hmac.compare_digest`) and its ``Origin``, when sent, is the app's own. Another
site can make a browser send the cookie (not with SameSite=Strict, but older browsers),
yet it can neither read it nor sign a nonce without the secret. No session store: any
replica with the same secret checks any form.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from aiohttp import web

COOKIE = "tunixrt_csrf"
FIELD = "csrf_token"


def sign(secret: str, nonce: str) -> str:
    return hmac.new(secret.encode(), nonce.encode(), hashlib.sha256).hexdigest()


def nonce_of(request: web.Request) -> tuple[str, bool]:
    """The request's nonce, and whether it is new (then the response must set it)."""
    nonce = request.cookies.get(COOKIE, "")
    if len(nonce) == 64 and all(c in "0123456789abcdef" for c in nonce):
        return nonce, False
    return secrets.token_hex(32), True


def set_cookie(response: web.StreamResponse, nonce: str, *, secure: bool) -> None:
    response.set_cookie(
        COOKIE, nonce, httponly=True, samesite="Strict", secure=secure, path="/", max_age=86400
    )


def same_origin(request: web.Request) -> bool:
    """No ``Origin`` header (old browsers, curl), or the app's own host."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.host


def valid(request: web.Request, secret: str, token: str) -> bool:
    """Whether a POST's ``token`` signs the nonce of its cookie, from this origin."""
    nonce = request.cookies.get(COOKIE, "")
    if not nonce or not token or not same_origin(request):
        return False
    return hmac.compare_digest(token.encode(), sign(secret, nonce).encode())
