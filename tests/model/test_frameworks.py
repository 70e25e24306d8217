"""The shipped frameworks, and every rule's mapping to them."""

from __future__ import annotations

import re
from collections.abc import Iterable

import pytest
from click.testing import CliRunner

from pgwarden.cli.main import cli
from pgwarden.engine import rule_info
from pgwarden.model.context import ServerContext
from pgwarden.model.frameworks.catalogue import (
    AZURE_POLICY,
    CIS_AZURE,
    CIS_POSTGRESQL_16,
    CIS_POSTGRESQL_17,
    NIST_800_53,
    SHIPPED,
    Control,
    control_problem,
    shipped_frameworks,
)
from pgwarden.model.snapshot import ServerSnapshot
from pgwarden.rules.base import Rule, RuleDefinitionError, Verdict
from pgwarden.rules.registry import RegisteredRule, load_rules

GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
NIST_ID = re.compile(r"^[A-Z]{2}-\d+(\(\d+\))?$")
CIS_ID = re.compile(r"^\d+(\.\d+)+$")


def test_every_shipped_framework_loads_with_unique_titled_controls() -> None:
    frameworks = shipped_frameworks()
    assert list(frameworks) == list(SHIPPED)
    for framework in frameworks.values():
        ids = [c.id for c in framework.controls]
        assert ids and len(ids) == len(set(ids)), framework.id
        for control in framework.controls:
            assert control.title.strip() == control.title and control.title
            # A control that cannot apply says why, and is not also a person's to check.
            assert not (control.not_applicable and control.manual), (framework.id, control.id)
            if control.not_applicable is not None:
                assert len(control.not_applicable) > 20


@pytest.mark.parametrize(
    ("framework", "pattern"),
    [
        (CIS_AZURE, CIS_ID),
        (CIS_POSTGRESQL_16, CIS_ID),
        (CIS_POSTGRESQL_17, CIS_ID),
        (AZURE_POLICY, GUID),
        (NIST_800_53, NIST_ID),
    ],
)
def test_control_ids_have_their_framework_s_form(framework: str, pattern: re.Pattern[str]) -> None:
    for control in shipped_frameworks()[framework].controls:
        assert pattern.match(control.id), control.id


def _builtin() -> list[RegisteredRule]:
    return [e for e in load_rules() if e.source == "built-in"]


def test_every_mapping_points_at_a_shipped_control() -> None:
    frameworks = shipped_frameworks()
    for entry in _builtin():
        rule = entry.rule
        assert rule.controls, f"{rule.id} maps to no control"
        assert not rule.frameworks, f"{rule.id} still uses free-text frameworks"
        for control in rule.controls:
            assert control.framework in frameworks, (rule.id, control)
            assert frameworks[control.framework].control(control.id) is not None, (rule.id, control)
            assert control_problem(control) is None


def test_every_applicable_control_a_rule_checks_is_mapped_and_no_rule_checks_an_excluded_one() -> (
    None
):
    mapped = {(c.framework, c.id) for e in _builtin() for c in e.rule.controls}
    for framework in shipped_frameworks().values():
        for control in framework.controls:
            if control.not_applicable:
                assert (framework.id, control.id) not in mapped, (framework.id, control.id)
    # Each framework is checked by at least one rule; both CIS PostgreSQL editions alike.
    assert {framework for framework, _ in mapped} == set(SHIPPED)
    sixteen = {c for f, c in mapped if f == CIS_POSTGRESQL_16}
    seventeen = {c for f, c in mapped if f == CIS_POSTGRESQL_17}
    assert len(sixteen) >= 8 and len(seventeen) >= 10


def test_the_admin_privileges_item_is_numbered_per_edition() -> None:
    """CIS PostgreSQL 16 and 17 number these items differently: never mixed up."""
    for entry in _builtin():
        controls = {(c.framework, c.id) for c in entry.rule.controls}
        assert ((CIS_POSTGRESQL_16, "4.2") in controls) == ((CIS_POSTGRESQL_17, "4.3") in controls)
        # Function privileges: 16's 4.3 is 17's 4.5; DML privileges: 16's 4.4 is 17's 4.6.
        assert ((CIS_POSTGRESQL_16, "4.3") in controls) == ((CIS_POSTGRESQL_17, "4.5") in controls)
        assert ((CIS_POSTGRESQL_16, "4.4") in controls) == ((CIS_POSTGRESQL_17, "4.6") in controls)


def _rule(**attributes: object) -> type[Rule]:
    class PluginRule(Rule):
        """A plug-in's rule.

        Fix: nothing.
        """

        id = "ACME-DB-001"
        severity = "low"

        def check(self, snapshot: ServerSnapshot, context: ServerContext) -> Iterable[Verdict]:
            return ()

    for name, value in attributes.items():
        setattr(PluginRule, name, value)
    return PluginRule


def test_a_plugin_with_free_text_frameworks_still_loads_and_shows_them() -> None:
    legacy = _rule(frameworks=("ACME standard 7.1", "SOC 2 CC6.1"))
    legacy.validate("acme-rules")
    info = rule_info(RegisteredRule(legacy, "acme-rules"))
    assert info.frameworks == ("ACME standard 7.1", "SOC 2 CC6.1")
    assert info.controls == ()


def test_a_plugin_may_map_to_shipped_controls_or_to_its_own_framework() -> None:
    mapped = _rule(
        controls=(
            Control(NIST_800_53, "AC-6"),
            Control("acme-dbsec-2", "DB-7", title="Every database login has a named owner"),
        )
    )
    mapped.validate("acme-rules")
    info = rule_info(RegisteredRule(mapped, "acme-rules"))
    assert [(c.framework, c.id, c.title) for c in info.controls or ()] == [
        (NIST_800_53, "AC-6", "Least Privilege"),
        ("acme-dbsec-2", "DB-7", "Every database login has a named owner"),
    ]
    assert "NIST SP 800-53 Rev. 5 AC-6" in info.frameworks


@pytest.mark.parametrize(
    ("controls", "problem"),
    [
        ((Control(NIST_800_53, "AC-99"),), "has no control 'AC-99'"),
        ((Control("acme-dbsec-2", "DB-7"),), "needs a title"),
        (("NIST SP 800-53 AC-6",), "is not a Control"),
        ((Control(NIST_800_53, "AC-6", resources=("",)),), "resources must be"),
        ((Control(NIST_800_53, "AC-6", sections=("nowhere",)),), "sections must be"),
    ],
)
def test_a_bad_mapping_is_refused_when_rules_register(controls: object, problem: str) -> None:
    with pytest.raises(RuleDefinitionError, match=re.escape(problem)):
        _rule(controls=controls).validate("acme-rules")


def test_pgwarden_frameworks_lists_frameworks_and_controls() -> None:
    runner = CliRunner()
    listed = runner.invoke(cli, ["frameworks"])
    assert listed.exit_code == 0, listed.output
    for framework_id in SHIPPED:
        assert framework_id in listed.output
    one = runner.invoke(cli, ["frameworks", "--framework", CIS_POSTGRESQL_16, "--json"])
    assert one.exit_code == 0, one.output
    assert '"id": "4.2"' in one.output and "PGW-ROLE-001" in one.output
    unknown = runner.invoke(cli, ["frameworks", "--framework", "iso-27001"])
    assert unknown.exit_code == 2 and "no such framework" in unknown.output
