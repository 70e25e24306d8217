"""Server settings as the rules read them: Azure server parameters, else ``pg_settings``.

On Azure, ARM's ``configurations`` are authoritative (they also carry Azure-only
parameters such as ``require_secure_transport``); on any other server, or when ARM
could not be read, what PostgreSQL itself reports is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.base import Verdict, quote_literal

Source = Literal["azure", "postgres"]
OFF_VALUES = frozenset({"off", "false", "0", "no", ""})


@dataclass(frozen=True)
class SettingsView:
    """Setting values from one source; a value is None when the source did not show it."""

    source: Source
    values: dict[str, str | None]
    major_version: int | None

    @property
    def where(self) -> str:
        return "Azure server parameters" if self.source == "azure" else "pg_settings"

    def is_off(self, name: str) -> bool:
        value = self.values.get(name)
        return value is not None and value.strip().lower() in OFF_VALUES

    def unreported(self, name: str) -> Verdict | None:
        """An error Verdict when the source did not show the setting: never a silent pass."""
        if self.values.get(name) is not None:
            return None
        return Verdict(
            resource=f"setting/{name}",
            status="error",
            message=f"{name} was not reported by {self.where}",
        )


def setting_passed(view: SettingsView, name: str, message: str) -> Verdict:
    """The pass record of a setting found as it should be: its value and where it was read."""
    return Verdict(
        resource=f"setting/{name}",
        status="pass",
        message=message,
        evidence={
            "setting": name,
            "value": view.values.get(name),
            "source": view.where,
            "major_version": view.major_version,
        },
    )


def alter_system(name: str, value: str) -> str:
    """The SQL that sets a parameter on a self-managed server (a superuser runs it)."""
    return f"ALTER SYSTEM SET {name} = {quote_literal(value)};\nSELECT pg_reload_conf();"


def read_settings(snapshot: ServerSnapshot, names: tuple[str, ...]) -> SettingsView | str:
    """The named settings from the best source, or why neither source is available."""
    azure = snapshot.azure
    pg = snapshot.postgres
    if azure is not None and azure.configurations is not None:
        major = azure.server.major_version if azure.server else None
        if major is None and pg is not None:
            major = pg.version_num // 10000
        return SettingsView(
            source="azure",
            values={n: p.value if (p := azure.parameter(n)) else None for n in names},
            major_version=major,
        )
    if pg is not None:
        return SettingsView(
            source="postgres",
            values={n: s.value if (s := pg.setting(n)) else None for n in names},
            major_version=pg.version_num // 10000,
        )
    reasons = [f"PostgreSQL: {e.reason}" for e in snapshot.errors if e.section == "postgres"]
    gap = azure.gap("azure.configurations") if azure is not None else None
    if gap is not None:
        reasons.append(f"Azure: {gap.reason}" + (f" (fix: {gap.fix})" if gap.fix else ""))
    return "neither Azure server parameters nor pg_settings were collected" + (
        ": " + "; ".join(reasons) if reasons else ""
    )
