"""Rules plug in through entry points and --rules-dir, validated at registration."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from pgwarden.engine import evaluate
from pgwarden.model.config import parse_config
from pgwarden.model.errors import UsageError
from pgwarden.model.snapshot import Snapshot
from pgwarden.rules.base import RuleDefinitionError
from pgwarden.rules.registry import find_rule, load_rules, select_rules
from tests.cli import run_pgwarden

FIXTURE = Path(__file__).parent.parent / "fixtures" / "small_server.json"

PLUGIN = '''
from pgwarden.rules.base import Rule, Verdict


class NoCreatedbAnywhere(Rule):
    """No role may create databases.

    House rule of this team.

    Violation: a role with CREATEDB.

    Fix: ALTER ROLE ... NOCREATEDB.
    """

    id = "ACME-ROLE-001"
    severity = "low"

    def check(self, snapshot, config):
        for role in snapshot.postgres.roles:
            if role.createdb:
                yield Verdict(resource=f"role/{role.name}", message="can create databases")


RULES = [NoCreatedbAnywhere]
'''


def test_the_readme_plugin_example_works_as_written(tmp_path: Path) -> None:
    """The README's plugin example, copied verbatim, loads and finds what it says."""
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    section = readme.split("### Writing your own rules", 1)[1]
    example = section.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "acme_rules.py").write_text(example)
    registered = load_rules([tmp_path])
    entry = find_rule(registered, "ACME-ROLE-001")
    snapshot = Snapshot.model_validate_json(FIXTURE.read_text())
    server = snapshot.servers[0]
    assert server.postgres is not None
    # One app login gains CREATEDB; the admin has it already and is no tenant.
    roles = tuple(
        replace(role, createdb=True) if role.name == "ctxeco_app" else role
        for role in server.postgres.roles
    )
    pg = server.postgres.model_copy(update={"roles": roles})
    snapshot = snapshot.model_copy(
        update={"servers": (server.model_copy(update={"postgres": pg}),)}
    )
    config = parse_config(
        '[[server]]\nname = "ctxeco-db"\nadmin_role = "ctxecoadmin"\n', "pgwarden.toml"
    )
    results = evaluate(snapshot, config, [entry])
    flagged = {f.resource for f in results.findings if f.rule_id == "ACME-ROLE-001"}
    assert flagged == {"role/ctxeco_app"}


def test_builtin_rules_come_through_entry_points() -> None:
    registered = load_rules()
    ids = {entry.rule.id for entry in registered}
    assert {"PGW-MAP-001", "PGW-MAP-002", "PGW-ISO-001", "PGW-ADM-001"} <= ids
    assert all(
        entry.source == "built-in" for entry in registered if entry.rule.id.startswith("PGW")
    )


def test_rules_dir_plugin_is_loaded_and_selected(tmp_path: Path) -> None:
    (tmp_path / "acme.py").write_text(PLUGIN)
    registered = load_rules([tmp_path])
    entry = find_rule(registered, "acme-role-001")
    assert entry.source.endswith("acme.py")
    assert entry.rule.title() == "No role may create databases."
    chosen = select_rules(registered, include=["ACME-*", "pgw-map-*"], exclude=["PGW-MAP-002"])
    assert [e.rule.id for e in chosen] == ["ACME-ROLE-001", "PGW-MAP-001"]
    with pytest.raises(UsageError, match="matches no rule"):
        select_rules(registered, include=["NOPE-*"])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (('id = "ACME-ROLE-001"', 'id = "acme1"'), "is not like PGW-ISO-001"),
        (('severity = "low"', 'severity = "severe"'), "severity must be one of"),
        (
            ('severity = "low"', 'severity = "low"\n    policy_switch = "require_nothing"'),
            "policy_switch 'require_nothing' is not a \\[policy\\] key",
        ),
        (("    Fix: ALTER ROLE ... NOCREATEDB.\n", ""), "needs a 'Fix:' paragraph"),
        (("RULES = [NoCreatedbAnywhere]", "RULES = [print]"), "is not a Rule subclass"),
        (("RULES = [NoCreatedbAnywhere]", ""), "defines no RULES list"),
        (("from pgwarden", "import nonexistent_module\nfrom pgwarden"), "failed to load"),
    ],
)
def test_bad_plugins_fail_at_registration(
    tmp_path: Path, edit: tuple[str, str], message: str
) -> None:
    (tmp_path / "acme.py").write_text(PLUGIN.replace(*edit))
    with pytest.raises(RuleDefinitionError, match=message):
        load_rules([tmp_path])


def test_duplicate_rule_id_is_refused(tmp_path: Path) -> None:
    (tmp_path / "acme.py").write_text(PLUGIN.replace("ACME-ROLE-001", "PGW-ISO-001"))
    with pytest.raises(RuleDefinitionError, match="PGW-ISO-001 is defined twice"):
        load_rules([tmp_path])


def test_rules_and_explain_commands(tmp_path: Path) -> None:
    (tmp_path / "acme.py").write_text(PLUGIN)
    listed = run_pgwarden("rules", "--json", "--rules-dir", str(tmp_path))
    assert listed.returncode == 0, listed.stderr
    catalogue = {rule["id"]: rule for rule in json.loads(listed.stdout)}
    assert catalogue["PGW-ISO-001"]["severity"] == "high"
    assert catalogue["ACME-ROLE-001"]["source"].endswith("acme.py")
    explained = run_pgwarden("explain", "PGW-ISO-001")
    assert explained.returncode == 0
    assert "PUBLIC holds CONNECT on an app database" in explained.stdout
    assert "How to fix it" in explained.stdout and "REVOKE CONNECT" in explained.stdout
    unknown = run_pgwarden("explain", "PGW-NOPE-001")
    assert unknown.returncode == 2 and "no rule 'PGW-NOPE-001'" in unknown.stderr
