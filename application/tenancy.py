"""Who is calling: the tenant every read and write is scoped to."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    key_id: str
    role: str = "admin"
