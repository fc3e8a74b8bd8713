"""SQL text that makes PostgreSQL write JSON exactly as the API writes it: objects with keys in order, ISO
timestamps as ``datetime.isoformat()`` writes them in UTC, and global ids as :func:`schema.relay.to_global_id`
encodes them. Used by the compiled reads (:mod:`resolvers.compiled`) and the bulk export
(:mod:`domain.export`). Only keys and fixed strings are written into the SQL, never a value from a request."""

from __future__ import annotations

from collections.abc import Iterable


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def obj(pairs: Iterable[tuple[str, str]]) -> str:
    return "json_build_object(" + ", ".join(f"{literal(key)}, {value}" for key, value in pairs) + ")"


def iso(column: str) -> str:
    """A timestamp exactly as ``datetime.isoformat()`` writes it in UTC (microseconds only when not zero)."""
    utc = f"({column} AT TIME ZONE 'UTC')"
    return (f"(to_char({utc}, 'YYYY-MM-DD\"T\"HH24:MI:SS') || CASE WHEN date_trunc('second', {column}) = {column} "
            f"THEN '' ELSE to_char({utc}, '.US') END || '+00:00')")


def b64url(text: str) -> str:
    """base64url without padding, as :func:`schema.relay.to_global_id` and the cursors encode."""
    return f"rtrim(translate(encode(convert_to({text}, 'UTF8'), 'base64'), E'+/\\n', '-_'), '=')"


def global_id(type_name: str, pk: str) -> str:
    return b64url(f"{literal(type_name + ':')} || {pk}")
