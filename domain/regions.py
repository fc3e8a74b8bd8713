"""Regions by Kemendagri code: province ``12``, kabupaten/kota ``12.72``, kecamatan ``12.72.01``,
desa/kelurahan ``12.72.01.1001``. A scope is a subtree, written as its root code."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import CheckConstraint, ColumnElement, ForeignKey, Index, String, false, or_
from sqlalchemy.orm import Mapped, mapped_column

from domain.base import Base
from domain.enums import RegionLevel, check_constraint
from domain.errors import DomainError, ValidationFailed

CODE_RE = re.compile(r"[0-9]{2}(\.[0-9]{2}(\.[0-9]{2}(\.[0-9]{4})?)?)?")
LEVELS = (RegionLevel.PROVINCE, RegionLevel.KABUPATEN, RegionLevel.KECAMATAN, RegionLevel.DESA)


class Region(Base):
    __tablename__ = "regions"
    __table_args__ = (
        CheckConstraint(check_constraint("level", RegionLevel), name="level"),
        CheckConstraint(r"code ~ '^\d{2}(\.\d{2}(\.\d{2}(\.\d{4})?)?)?$'", name="code_format"),
        Index("ix_regions_code_pattern", "code", postgresql_ops={"code": "text_pattern_ops"}),
    )

    code: Mapped[str] = mapped_column(String(13), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    level: Mapped[str] = mapped_column(String(12))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("regions.code"), index=True)


def is_valid_code(code: str) -> bool:
    return bool(CODE_RE.fullmatch(code))


def level_of(code: str) -> RegionLevel:
    return LEVELS[code.count(".")]


def covers(scope: str | None, code: str) -> bool:
    """Whether the subtree rooted at ``scope`` holds ``code``; ``None`` is the whole country."""
    return scope is None or code == scope or code.startswith(scope + ".")


def in_subtree(column: Any, scope: str) -> ColumnElement[bool]:
    """SQL for ``column`` lying in the subtree rooted at ``scope`` (uses the text_pattern_ops index)."""
    if not is_valid_code(scope):
        raise ValidationFailed([DomainError("not a Kemendagri region code", field="regionCode",
                                            code="INVALID_REGION_CODE")])
    return or_(column == scope, column.like(scope + ".%"))


def in_scope(column: Any, scopes: tuple[str, ...]) -> ColumnElement[bool]:
    """SQL for ``column`` lying in any of the subtrees rooted at ``scopes``."""
    if not scopes:
        return false()
    return or_(*[in_subtree(column, scope) for scope in scopes])
