"""Bearer tokens: a token checked once is remembered, but expiry, kind and signature still decide every time."""

from __future__ import annotations

import time

import pytest

from domain.errors import Unauthenticated
from domain.staff.tokens import TokenSigner


def signer(remember: int = 10_000) -> TokenSigner:
    return TokenSigner("a-test-secret-" + "x" * 30, access_ttl=600, refresh_ttl=3600, remember=remember)


def code(call: object) -> str:
    with pytest.raises(Unauthenticated) as caught:
        call()  # type: ignore[operator]
    return str(caught.value.code)


def test_a_remembered_token_still_expires() -> None:
    s = signer()
    token = s.issue(7, "access")
    assert s.verify(token, "access").staff_id == 7
    assert s.verify(token, "access").staff_id == 7  # from memory
    assert code(lambda: s.verify(token, "access", now=time.time() + 601)) == "TOKEN_EXPIRED"
    assert s.verify(token, "access").staff_id == 7


def test_a_remembered_token_is_only_good_for_its_kind() -> None:
    s = signer()
    access, refresh = s.issue(7, "access"), s.issue(7, "refresh")
    s.verify(access, "access")
    s.verify(refresh, "refresh")
    assert code(lambda: s.verify(access, "refresh")) == "INVALID_TOKEN"
    assert code(lambda: s.verify(refresh, "access")) == "INVALID_TOKEN"


def test_forged_and_altered_tokens_are_refused_every_time() -> None:
    s = signer()
    token = s.issue(7, "access")
    s.verify(token, "access")
    body, _, signature = token.partition(".")
    other = TokenSigner("another-secret-" + "y" * 30, access_ttl=600, refresh_ttl=3600).issue(7, "access")
    for bad in (body + "." + signature[:-2] + "AA", body[:-1] + "x." + signature, other, "", "."):
        assert code(lambda bad=bad: s.verify(bad, "access")) == "INVALID_TOKEN"
        assert code(lambda bad=bad: s.verify(bad, "access")) == "INVALID_TOKEN"


def test_memory_is_bounded() -> None:
    s = signer(remember=3)
    tokens = [s.issue(i, "access") for i in range(10)]
    for token in tokens:
        s.verify(token, "access")
    assert len(s._verified) == 3
    assert [s.verify(t, "access").staff_id for t in tokens] == list(range(10))
