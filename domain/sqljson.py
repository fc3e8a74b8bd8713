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
    """A timestamp exactly as ``datetime.isoformat()`` writes it in UTC (microseconds only when not zero): one
    ``to_char`` whose pattern is picked by the fraction."""
    whole, fraction = """'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'""", """'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'"""
    return (f"to_char({column} AT TIME ZONE 'UTC', CASE WHEN date_trunc('second', {column}) = {column} "
            f"THEN {whole} ELSE {fraction} END)")


def b64url(text: str) -> str:
    """base64url without padding, as :func:`schema.relay.to_global_id` and the cursors encode (``replace`` is
    several times cheaper than ``translate`` here, and PostgreSQL breaks base64 lines at 76 characters)."""
    return _url_safe(f"encode(convert_to({text}, 'UTF8'), 'base64')", newlines=True)


def global_id(type_name: str, pk: str) -> str:
    """The global id of an integer key: type name and digits are ASCII, so the text is its own UTF-8 bytes, and
    under 57 bytes it is one base64 line."""
    return _url_safe(f"encode(({literal(type_name + ':')} || {pk})::bytea, 'base64')", newlines=False)


def _url_safe(base64: str, *, newlines: bool) -> str:
    out = f"replace(replace(replace({base64}, '+', '-'), '/', '_'), '=', '')"
    return f"replace({out}, E'\\n', '')" if newlines else out
