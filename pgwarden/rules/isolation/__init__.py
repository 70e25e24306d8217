"""PGW-ISO: isolation between the databases of different apps."""

from __future__ import annotations

from pgwarden.rules.isolation.databases import CrossAppConnect, PublicConnect, PublicTemporary
from pgwarden.rules.isolation.default_privileges import LeakyDefaultPrivileges
from pgwarden.rules.isolation.objects import ForeignObjectPrivileges
from pgwarden.rules.isolation.schemas import PublicCreateInSchema

RULES = [
    PublicConnect,
    CrossAppConnect,
    PublicCreateInSchema,
    ForeignObjectPrivileges,
    PublicTemporary,
    LeakyDefaultPrivileges,
]
