"""Framework controls that rules of several families check alike.

One place for the mappings that repeat (the CIS PostgreSQL item on administrative
privileges is checked by the ROLE, ADM and KV families), so the 16 and 17 editions'
numbers are never paired wrongly in one rule and rightly in another.
"""

from __future__ import annotations

from pgwarden.model.frameworks.catalogue import (
    CIS_POSTGRESQL_16,
    CIS_POSTGRESQL_17,
    NIST_800_53,
    Control,
)

# CIS PostgreSQL: "Ensure excessive administrative privileges are revoked".
ADMIN_PRIVILEGES = (Control(CIS_POSTGRESQL_16, "4.2"), Control(CIS_POSTGRESQL_17, "4.3"))
# CIS PostgreSQL: "Ensure excessive DML privileges are revoked".
DML_PRIVILEGES = (Control(CIS_POSTGRESQL_16, "4.4"), Control(CIS_POSTGRESQL_17, "4.6"))
# CIS PostgreSQL: "Make use of predefined roles".
PREDEFINED_ROLES = (Control(CIS_POSTGRESQL_16, "4.7"), Control(CIS_POSTGRESQL_17, "4.9"))
# CIS PostgreSQL: "Ensure TLS is enabled and configured correctly".
TLS_CONFIGURED = (Control(CIS_POSTGRESQL_16, "6.8"), Control(CIS_POSTGRESQL_17, "6.8"))
# CIS PostgreSQL: "Ensure base backups are configured and functional".
BASE_BACKUPS = (Control(CIS_POSTGRESQL_16, "7.3"), Control(CIS_POSTGRESQL_17, "7.3"))

# NIST SP 800-53: access between tenants.
LEAST_PRIVILEGE = (Control(NIST_800_53, "AC-3"), Control(NIST_800_53, "AC-6"))
PRIVILEGED_ACCOUNTS = (Control(NIST_800_53, "AC-6"), Control(NIST_800_53, "AC-6(5)"))
ADMIN_FOR_APPLICATIONS = (Control(NIST_800_53, "AC-6(2)"), Control(NIST_800_53, "AC-6(5)"))
ENCRYPTED_TRANSPORT = (Control(NIST_800_53, "SC-8"), Control(NIST_800_53, "SC-8(1)"))
AUTHENTICATORS = (Control(NIST_800_53, "IA-5"),)
BOUNDARY = (Control(NIST_800_53, "SC-7"),)
INFORMATION_FLOW = (Control(NIST_800_53, "AC-4"),)
