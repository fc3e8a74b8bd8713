"""Personal data at rest: NIK and No. KK are stored encrypted beside a keyed hash.

The keyed hash (HMAC-SHA256) serves exact-match dedup and lookup without decrypting; the ciphertext
(AES-256-GCM, random nonce) is only opened for roles allowed to see the number. Both keys derive from
``RUJUK_PII_KEY`` with HKDF and distinct labels, so one secret rotates both.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_NONCE = 12


def _derive(secret: str, label: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"rujuk-pii", info=label).derive(secret.encode())


@dataclass(frozen=True, slots=True)
class Sealed:
    digest: bytes
    ciphertext: bytes
    masked: str


class PersonalDataCipher:
    def __init__(self, secret: str) -> None:
        self._hash_key = _derive(secret, b"lookup-hash")
        self._aead = AESGCM(_derive(secret, b"encryption"))

    def digest(self, value: str) -> bytes:
        return hmac.new(self._hash_key, value.encode(), hashlib.sha256).digest()

    def seal(self, value: str, *, kind: bytes) -> Sealed:
        nonce = os.urandom(_NONCE)
        ciphertext = nonce + self._aead.encrypt(nonce, value.encode(), kind)
        return Sealed(digest=self.digest(value), ciphertext=ciphertext, masked=mask(value))

    def open(self, ciphertext: bytes, *, kind: bytes) -> str:
        return self._aead.decrypt(ciphertext[:_NONCE], ciphertext[_NONCE:], kind).decode()


def mask(value: str) -> str:
    """``1272015203840001`` -> ``1272**********01``: the kabupaten stays readable, the person does not."""
    if len(value) <= 6:
        return "*" * len(value)
    return value[:4] + "*" * (len(value) - 6) + value[-2:]


NIK = b"nik"
KK = b"kk"
