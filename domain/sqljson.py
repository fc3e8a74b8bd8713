"""SQL text that makes PostgreSQL write JSON exactly as the API writes it: objects with keys in order, ISO
timestamps as ``datetime.isoformat()`` writes them in UTC, and global ids as :func:`schema.relay.to_global_id`
encodes them. Used by the compiled reads (:mod:`resolvers.compiled`) and the bulk export
(:mod:`domain.export`). Only keys and fixed strings are written into the SQL, never a value from a request.

Objects and lists are concatenated JSON text rather than ``json_build_object``/``json_agg``: those look up
every argument's type and output function on every row, about 0.45 µs per key here, which made them most
of the work of a page. A value is written by ``to_json`` (any type, escaped), or, where the SQL already is
JSON (:class:`JSONText`) or a string that needs no escaping (:class:`Ascii`: ids and times), as it is."""

from __future__ import annotations

import json
from collections.abc import Iterable


class JSONText(str):
    """SQL whose value is JSON text, never NULL."""


class Ascii(str):
    """SQL whose value is a string that JSON writes without escapes (global ids, cursors, ISO times), or NULL."""


def literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def json_literal(value: str) -> JSONText:
    """A fixed string (a ``__typename``) as JSON."""
    return JSONText(literal(json.dumps(value)))


def json_value(sql: str) -> str:
    """The JSON text of a SQL value (``null`` for NULL)."""
    if isinstance(sql, JSONText):
        return sql
    if sql == "NULL":  # a hidden field (``to_json`` cannot take an untyped NULL)
        return "'null'"
    if isinstance(sql, Ascii):
        return f"""coalesce('"' || {sql} || '"', 'null')"""
    return f"coalesce(to_json({sql})::text, 'null')"


def obj(pairs: Iterable[tuple[str, str]]) -> JSONText:
    """A JSON object with these keys in this order (keys are GraphQL names and aliases)."""
    pieces: list[str] = []
    for key, value in pairs:
        pieces += [literal(("," if pieces else "{") + json.dumps(key) + ":"), json_value(value)]
    return JSONText("(" + " || ".join(pieces) + " || '}')") if pieces else JSONText("'{}'")


def json_list(element: str, source: str, order: str) -> JSONText:
    """A JSON array of ``element`` for each row of ``FROM source``, in ``order``."""
    return JSONText(f"(SELECT coalesce('[' || string_agg({json_value(element)}, ',' ORDER BY {order}) || ']', '[]') "
                    f"FROM {source})")


def iso(column: str) -> Ascii:
    """A timestamp exactly as ``datetime.isoformat()`` writes it in UTC (microseconds only when not zero): one
    ``to_char`` whose pattern is picked by the fraction."""
    whole, fraction = """'YYYY-MM-DD"T"HH24:MI:SS"+00:00"'""", """'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'"""
    return Ascii(f"to_char({column} AT TIME ZONE 'UTC', CASE WHEN date_trunc('second', {column}) = {column} "
                 f"THEN {whole} ELSE {fraction} END)")


def b64url(text: str) -> Ascii:
    """base64url without padding, as :func:`schema.relay.to_global_id` and the cursors encode (``replace`` is
    several times cheaper than ``translate`` here, and PostgreSQL breaks base64 lines at 76 characters)."""
    return Ascii(_url_safe(f"encode(convert_to({text}, 'UTF8'), 'base64')", newlines=True))


def global_id(type_name: str, pk: str) -> Ascii:
    """The global id of an integer key: type name and digits are ASCII, so the text is its own UTF-8 bytes, and
    under 57 bytes it is one base64 line."""
    return Ascii(_url_safe(f"encode(({literal(type_name + ':')} || {pk})::bytea, 'base64')", newlines=False))


def _url_safe(base64: str, *, newlines: bool) -> str:
    out = f"replace(replace(replace({base64}, '+', '-'), '/', '_'), '=', '')"
    return f"replace({out}, E'\\n', '')" if newlines else out
