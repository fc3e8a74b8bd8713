"""How personal data is shown to those without the grant to see it."""

from __future__ import annotations


def initials(name: str) -> str:
    """``Siti Nurhaliza Harahap`` -> ``S. N. H.``"""
    return " ".join(part[0] + "." for part in name.split() if part)
