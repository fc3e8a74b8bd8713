"""Signed, expiring bearer tokens (HMAC-SHA256): short-lived access tokens and longer refresh tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Literal

from domain.errors import Unauthenticated

Kind = Literal["access", "refresh"]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True, slots=True)
class TokenClaims:
    staff_id: int
    kind: Kind
    expires_at: int


class TokenSigner:
    def __init__(self, secret: str, *, access_ttl: int, refresh_ttl: int, remember: int = 10_000) -> None:
        self._key = hashlib.sha256(b"rujuk-token:" + secret.encode()).digest()
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        #: tokens whose signature and claims were checked, so a client's next request skips the HMAC and the
        #: decoding (expiry is still checked every time); the least recently used are forgotten first
        self._verified: OrderedDict[tuple[str, Kind], TokenClaims] = OrderedDict()
        self._remember = remember

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())

    def issue(self, staff_id: int, kind: Kind, *, now: float | None = None, ttl: int | None = None) -> str:
        now = time.time() if now is None else now
        ttl = ttl if ttl is not None else self.access_ttl if kind == "access" else self.refresh_ttl
        body = _b64(json.dumps({"sub": staff_id, "typ": kind, "exp": int(now) + ttl}).encode())
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str, kind: Kind, *, now: float | None = None) -> TokenClaims:
        claims = self._verified.get((token, kind))
        if claims is None:
            claims = self._check(token, kind)
            self._verified[(token, kind)] = claims
            if len(self._verified) > self._remember:
                self._verified.popitem(last=False)
        else:
            self._verified.move_to_end((token, kind))
        if claims.expires_at < (time.time() if now is None else now):
            raise Unauthenticated("the token has expired; log in or refresh", code="TOKEN_EXPIRED")
        return claims

    def _check(self, token: str, kind: Kind) -> TokenClaims:
        body, _, signature = token.partition(".")
        if not body or not hmac.compare_digest(signature, self._sign(body)):
            raise Unauthenticated("the token is not valid", code="INVALID_TOKEN")
        try:
            claims = json.loads(_unb64(body))
            staff_id, typ, exp = int(claims["sub"]), claims["typ"], int(claims["exp"])
        except (ValueError, KeyError, TypeError):
            raise Unauthenticated("the token is not valid", code="INVALID_TOKEN") from None
        if typ != kind:
            raise Unauthenticated("the token is not valid", code="INVALID_TOKEN")
        return TokenClaims(staff_id=staff_id, kind=kind, expires_at=exp)
