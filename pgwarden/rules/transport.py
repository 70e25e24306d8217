"""PGW-TLS: encryption of client connections."""

from __future__ import annotations

from collections.abc import Iterable

from pgwarden.model.frameworks.catalogue import (
    AZURE_POLICY,
    CIS_AZURE,
    CIS_POSTGRESQL_16,
    CIS_POSTGRESQL_17,
)
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.azure_cli import set_parameter
from pgwarden.rules.base import Control, Rule, Section, ServerContext, Verdict
from pgwarden.rules.control_sets import ENCRYPTED_TRANSPORT, TLS_CONFIGURED
from pgwarden.rules.server_settings import (
    SettingsView,
    alter_system,
    read_settings,
    setting_passed,
)

TLS_ORDER = {"tlsv1": 10, "tlsv1.1": 11, "tlsv1.2": 12, "tlsv1.3": 13}
MINIMUM = "TLSv1.2"
NAMES = ("require_secure_transport", "ssl_min_protocol_version", "ssl")
# What an Azure control needs the rule to have read: Azure's server parameters, not
# pg_settings (which the rule falls back to on a server outside Azure).
AZURE_ONLY = (Section.AZURE_CONFIGURATIONS,)
# The switch that makes TLS mandatory: Azure's parameter, else PostgreSQL's own.
SWITCHES = ("setting/require_secure_transport", "setting/ssl")
MINIMUM_SETTING = ("setting/ssl_min_protocol_version",)


def tls_below_minimum(value: str) -> bool:
    """Whether a ``ssl_min_protocol_version`` admits protocols older than TLS 1.2."""
    rank = TLS_ORDER.get(value.strip().lower())
    # An empty or unknown value sets no floor at all.
    return rank is None or rank < TLS_ORDER[MINIMUM.lower()]


class InsecureTransport(Rule):
    """Connections may be unencrypted, or use TLS older than 1.2.

    Without TLS, passwords (or their SCRAM exchange), queries and every tenant's data
    cross the network in the clear; TLS 1.0 and 1.1 have known weaknesses and are
    deprecated. On Azure the server parameters ``require_secure_transport`` and
    ``ssl_min_protocol_version`` decide; elsewhere PostgreSQL's ``ssl`` and
    ``ssl_min_protocol_version`` (pg_hba.conf's hostssl lines, which pgwarden cannot
    read, must then refuse plain connections).

    Violation: ``require_secure_transport`` is off (Azure) or ``ssl`` is off
    (PostgreSQL), or ``ssl_min_protocol_version`` is below TLSv1.2.

    Fix: on Azure, az postgres flexible-server parameter set … --name
    require_secure_transport --value on (and ssl_min_protocol_version TLSv1.2);
    elsewhere ALTER SYSTEM SET ssl = on (with a certificate and key),
    ALTER SYSTEM SET ssl_min_protocol_version = 'TLSv1.2', SELECT pg_reload_conf(),
    and hostssl lines in pg_hba.conf.
    """

    id = "PGW-TLS-001"
    severity = "high"
    controls = (
        Control(CIS_AZURE, "5.2.1", resources=SWITCHES, sections=AZURE_ONLY),
        Control(CIS_POSTGRESQL_16, "5.2"),
        Control(CIS_POSTGRESQL_17, "5.4"),
        *TLS_CONFIGURED,
        Control(
            AZURE_POLICY,
            "c29c38cb-74a7-4505-9a06-e588ab86620a",
            resources=SWITCHES,
            sections=AZURE_ONLY,
        ),
        Control(
            AZURE_POLICY,
            "a43d5475-c569-45ce-a268-28fa79f4e87a",
            resources=MINIMUM_SETTING,
            sections=AZURE_ONLY,
        ),
        *ENCRYPTED_TRANSPORT,
    )
    # Either Azure's server parameters or pg_settings will do: the rule decides.
    requires = ()

    def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
        view = read_settings(snapshot, NAMES)
        if isinstance(view, str):
            yield Verdict(
                resource=f"server/{context.name}",
                status="error",
                message=f"TLS settings cannot be judged: {view}",
            )
            return
        switch = "require_secure_transport" if view.source == "azure" else "ssl"
        yield from self._switch(snapshot, context, view, switch)
        yield from self._minimum(snapshot, context, view)

    def _switch(
        self, snapshot: ServerSnapshot, context: ServerContext, view: SettingsView, name: str
    ) -> Iterable[Verdict]:
        if (unreported := view.unreported(name)) is not None:
            yield unreported
            return
        value = view.values.get(name)
        if not view.is_off(name):
            if context.include_passed:
                yield setting_passed(
                    view, name, f"{name} is {value!r}: clients must connect with TLS"
                )
            return
        yield Verdict(
            resource=f"setting/{name}",
            message=f"{name} is {value!r}: clients may connect to every database on the "
            "server without encryption",
            evidence={"setting": name, "value": value, "source": view.where},
            remediation=set_parameter(snapshot, context, name, "on")
            if view.source == "azure"
            else "Install a server certificate and key (ssl_cert_file, ssl_key_file), then:\n"
            + alter_system("ssl", "on")
            + "\nand use hostssl (not host) lines in pg_hba.conf",
        )

    def _minimum(
        self, snapshot: ServerSnapshot, context: ServerContext, view: SettingsView
    ) -> Iterable[Verdict]:
        name = "ssl_min_protocol_version"
        if (unreported := view.unreported(name)) is not None:
            yield unreported
            return
        value = view.values.get(name) or ""
        if not tls_below_minimum(value):
            if context.include_passed:
                yield setting_passed(
                    view, name, f"{name} is {value!r}: nothing older than {MINIMUM} is accepted"
                )
            return
        yield Verdict(
            resource=f"setting/{name}",
            message=f"{name} is {value or '(empty)'!r}: clients may use TLS older than {MINIMUM}",
            evidence={"setting": name, "value": value, "minimum": MINIMUM, "source": view.where},
            remediation=set_parameter(snapshot, context, name, MINIMUM)
            if view.source == "azure"
            else alter_system(name, MINIMUM),
        )


RULES = [InsecureTransport]
