"""PGW-FUNC: SECURITY DEFINER routines that hand their owner's privileges to callers."""

from __future__ import annotations

from pgwarden.rules.functions.escalation import (
    ForeignDefinerEscalation,
    PrivilegedDefinerEscalation,
)
from pgwarden.rules.functions.pinned import DefinerCalledAcrossApps

RULES = [PrivilegedDefinerEscalation, ForeignDefinerEscalation, DefinerCalledAcrossApps]
