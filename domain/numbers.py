"""Parsing numbers that arrive as text from clients: ASCII digits only (``str.isdigit`` also accepts "²"
and other scripts' digits, which ``int`` then rejects or reads differently)."""

from __future__ import annotations

import re

DIGITS = re.compile(r"[0-9]+")
MAX_BIGINT = 2**63 - 1


def bigint(text: str) -> int | None:
    """A positive PostgreSQL ``bigint`` written in ASCII digits, else ``None``."""
    if len(text) > 19 or not DIGITS.fullmatch(text):
        return None
    value = int(text)
    return value if 0 < value <= MAX_BIGINT else None


def cursor(text: str) -> int | None:
    """An event-log cursor: ``0`` (the beginning) or a positive ``bigint``, else ``None``."""
    return 0 if text == "0" else bigint(text)
