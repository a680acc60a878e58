"""Tenant and environment scope: with either set, nothing outside it is reached."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Scope:
    """The tenant and environment a command works in; None means "any"."""

    tenant: str | None = None
    env: str | None = None

    def query(self) -> dict[str, Any]:
        """The filter every query of a scoped collection is ANDed with."""
        clause: dict[str, Any] = {}
        if self.tenant is not None:
            clause["tenantId"] = self.tenant
        if self.env is not None:
            clause["envId"] = self.env
        return clause

    def stamp(self) -> dict[str, str | None]:
        """The scope fields written on a new document."""
        return {"tenantId": self.tenant, "envId": self.env}

    def describe(self) -> str:
        parts = [
            f"tenant {self.tenant!r}" if self.tenant else "",
            f"env {self.env!r}" if self.env else "",
        ]
        joined = ", ".join(p for p in parts if p)
        return f" in {joined}" if joined else ""
