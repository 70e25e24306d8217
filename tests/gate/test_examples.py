"""The ready-made integrations in examples/ run as written against a real server.

The GitHub workflow's jobs run step by step as the runner would (tests/github_actions.py:
pgwarden's action with its own steps, other actions checked, not run); every shell block
of the Azure Pipelines file that calls pgwarden is taken from the file and run with
bash. Secrets and CI variables point at the test server (shaped like the seed's shared
server, scanned as a least-privilege auditor). The scheduled-audit script runs as is.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from pgwarden.cli.demo import AUDITOR, DEMO_CONFIG, DEMO_DSN_VARIABLE, SeedServer
from pgwarden.gate.waivers import load_waivers
from tests.cli.test_wheel import NOT_SOURCE
from tests.gate.conftest import Workspace
from tests.github_actions import ROOT, Runner, StepRun, substitute

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
BLOCK = re.compile(r"^(\s*)(?:- )?(?:run|script): \|\s*$")
CONFIG = DEMO_CONFIG.replace(f"env:{DEMO_DSN_VARIABLE}", "env:PGWARDEN_DSN").replace(
    "[policy]\n", "[policy]\nsession_samples = 1\nsession_window_seconds = 0\n", 1
)


def shell_blocks(path: Path) -> list[str]:
    """The ``run: |`` / ``script: |`` blocks of a CI file that call pgwarden."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[str] = []
    for i, line in enumerate(lines):
        match = BLOCK.match(line)
        if not match:
            continue
        # A block scalar runs while lines are indented at least as much as its first.
        first = next((row for row in lines[i + 1 :] if row.strip()), "")
        indent = len(first) - len(first.lstrip())
        if indent <= len(match.group(1)):
            continue
        body: list[str] = []
        for following in lines[i + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) < indent:
                break
            body.append(following)
        script = textwrap.dedent("\n".join(body)).strip() + "\n"
        if any(row.startswith("pgwarden ") for row in script.splitlines()):
            blocks.append(script)
    return blocks


def _bash(
    script: str, workspace: Workspace, env: dict[str, str], *, errexit: bool
) -> subprocess.CompletedProcess[str]:
    # GitHub runs "bash --noprofile --norc -eo pipefail"; Azure Pipelines plain bash.
    flags = ["-eo", "pipefail"] if errexit else []
    return subprocess.run(
        ["bash", "--noprofile", "--norc", *flags, "-c", script],
        cwd=workspace.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def seeded(
    seed_server: SeedServer, tmp_path_factory: pytest.TempPathFactory
) -> tuple[SeedServer, str]:
    """The seed-shaped server, and a baseline.json of its findings as the repo keeps it."""
    workspace = Workspace(tmp_path_factory.mktemp("baseline"), seed_server.server)
    workspace.env = {"PGWARDEN_DSN": seed_server.dsn(AUDITOR)}
    workspace.write("pgwarden.toml", CONFIG)
    made = workspace.pgwarden("scan", "--json", "today.json", "-q")
    assert made.exit_code in (1, 3), made.output
    created = workspace.pgwarden("baseline", "create", "today.json", "-o", "baseline.json")
    assert created.exit_code == 0, created.output
    return seed_server, (workspace.path / "baseline.json").read_text(encoding="utf-8")


@pytest.fixture
def repo(seeded: tuple[SeedServer, str], tmp_path: Path) -> tuple[Workspace, dict[str, str]]:
    """A repository like the one the examples expect: config, waivers, baseline."""
    seed, baseline = seeded
    workspace = Workspace(tmp_path, seed.server)
    workspace.write("pgwarden.toml", CONFIG)
    workspace.write("waivers.toml", (EXAMPLES / "waivers.toml").read_text(encoding="utf-8"))
    workspace.write("baseline.json", baseline)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "GITHUB_", "BUILD_"))},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PGWARDEN_DSN": seed.dsn(AUDITOR),
    }
    return workspace, env


def test_the_example_waivers_file_is_valid() -> None:
    waivers = load_waivers(EXAMPLES / "waivers.toml")
    assert len(waivers.entries) == 2


@pytest.fixture(scope="module")
def runner_temp(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The runner's temporary folder (pgwarden's venv kept there between jobs) and a
    checkout of the action, as GitHub lays them out."""
    action = tmp_path_factory.mktemp("action") / "pgwarden"
    shutil.copytree(ROOT, action, ignore=NOT_SOURCE)
    return tmp_path_factory.mktemp("runner-temp"), action


def run_job(
    name: str, workspace: Workspace, base: dict[str, str], runner_temp: tuple[Path, Path]
) -> Runner:
    """One job of the example workflow, its steps run in order as GitHub would."""
    workflow = yaml.safe_load((EXAMPLES / "github-actions" / "pgwarden.yml").read_text())
    job = workflow["jobs"][name]

    def lookup(expression: str) -> str:
        if expression.startswith("secrets."):  # the workflow maps them into its env
            return base[expression.removeprefix("secrets.")]
        if expression == "github.run_id":
            return "1"
        raise AssertionError(f"unsupported expression in the workflow: {expression}")

    temp, action = runner_temp
    job_temp = workspace.path / f"runner-{name}"
    job_temp.mkdir()
    env = {**base}
    for scope in (workflow, job):
        env.update({k: substitute(str(v), lookup) for k, v in scope.get("env", {}).items()})
    # pgwarden's venv lives in the runner's temporary folder, shared by the jobs here.
    runner = Runner(
        workspace=workspace.path, env=env, temp=job_temp, action_path=action, runner_temp=temp
    )
    runner.run_steps(job["steps"], lookup, env)
    return runner


def _step(runner: Runner, name: str) -> StepRun:
    (step,) = [s for s in runner.steps if s.name == name]
    return step


def test_github_actions_workflow(
    repo: tuple[Workspace, dict[str, str]], runner_temp: tuple[Path, Path]
) -> None:
    workspace, base = repo
    results_file = workspace.path / "pgwarden-results" / "results.json"

    # The gate on a pull request after a change opened secai-radar to everyone: of all
    # the server's violations only that new one fails the gate.
    workspace.sql("GRANT CONNECT ON DATABASE secairadar TO PUBLIC")
    try:
        gate = run_job("gate", workspace, base, runner_temp)
    finally:
        workspace.sql("REVOKE CONNECT ON DATABASE secairadar FROM PUBLIC")
    install = _step(gate, "pgwarden: Install pgwarden")
    assert install.exit_code == 0, install.stderr
    scan = _step(gate, "Scan")
    assert scan.exit_code == 1 and scan.outputs["exit-code"] == "1"
    assert _step(gate, "pgwarden: Fail on violations or an incomplete scan").exit_code == 1
    results = json.loads(results_file.read_text())
    failing_new = [
        (f["rule_id"], f["resource"])
        for f in results["findings"]
        if f["status"] == "fail" and f.get("baseline_state") == "new" and f["severity"] == "high"
    ]
    assert failing_new == [("PGW-ISO-001", "database/secairadar")]
    assert results["summary"]["fail"] > 1  # the baseline accepted the others
    sarif = json.loads((workspace.path / "pgwarden-results" / "results.sarif").read_text())
    assert sarif["version"] == "2.1.0"
    assert {r["baselineState"] for r in sarif["runs"][0]["results"]} == {"unchanged", "new"}
    assert gate.summary.read_text().startswith("### ")
    (upload,) = gate.recorded("github/codeql-action/upload-sarif@")
    assert upload.with_ == {"sarif_file": "pgwarden-results/results.sarif", "category": "pgwarden"}
    (kept,) = gate.recorded("actions/upload-artifact@")
    assert kept.with_["path"] == "pgwarden-results/results.json"

    # The scheduled audit: the action records the exit code, the last step fails the job.
    results_file.unlink()
    audit = run_job("audit", workspace, base, runner_temp)
    step = _step(audit, "Audit")
    assert step.exit_code == 0 and step.outputs["exit-code"] == "1"
    assert _step(audit, "Fail on violations or an incomplete scan").exit_code == 1
    results = json.loads(results_file.read_text())
    assert results["history"]["run_id"] == 1
    waived = [f for f in results["findings"] if f["status"] == "waived"]
    assert sorted((f["resource"], f["waiver"]["owner"]) for f in waived) == [
        ("database/temporal", "temporal-oncall@example.com"),
        ("database/temporal_visibility", "temporal-oncall@example.com"),
        ("database/zep", "platform-team@example.com"),
    ]
    assert (workspace.path / "pgwarden-results" / "report.html").exists()
    recent = _step(audit, "Recent runs")
    assert recent.exit_code == 0, recent.stderr
    assert "ctxeco-db" in recent.stdout  # pgwarden on PATH after the action (GITHUB_PATH)
    assert audit.recorded("actions/cache/save@")  # the history file exists to be saved


def test_azure_pipelines_with_a_postgresql_history(
    repo: tuple[Workspace, dict[str, str]],
) -> None:
    workspace, base = repo
    workspace.sql("DROP DATABASE IF EXISTS gate_examples_history")
    # The history database sits on the test server only because it is the one we have;
    # in production it is a database pgwarden may write to, not the audited server.
    workspace.sql("CREATE DATABASE gate_examples_history")
    server = workspace.server
    history = (
        f"postgresql://{server.superuser}:{quote(server.password, safe='')}@{server.host}:"
        f"{server.port}/gate_examples_history?sslmode=disable"
    )
    staging = workspace.path / "staging"
    staging.mkdir()
    env = {**base, "BUILD_ARTIFACTSTAGINGDIRECTORY": str(staging)}
    audit_env = {**env, "PGWARDEN_HISTORY": history}  # mapped into the audit steps only
    try:
        gate, audit, recent = shell_blocks(EXAMPLES / "azure-pipelines" / "azure-pipelines.yml")
        run = _bash(gate, workspace, env, errexit=False)
        assert run.returncode in (0, 3), run.stderr
        assert (staging / "CodeAnalysisLogs" / "pgwarden.sarif").exists()
        assert (staging / "pgwarden-junit.xml").read_text().startswith("<?xml")
        assert (staging / "pgwarden-summary.md").exists()

        run = _bash(audit, workspace, audit_env, errexit=False)
        assert run.returncode == 1, run.stderr
        results = json.loads((staging / "pgwarden-results.json").read_text())
        assert results["history"]["run_id"] == 1
        assert results["history"]["store"].startswith("postgresql://postgres@")
        assert server.password not in json.dumps(results)

        run = _bash(recent, workspace, audit_env, errexit=False)
        assert run.returncode == 0, run.stderr
        assert "ctxeco-db" in run.stdout
    finally:
        workspace.sql("DROP DATABASE IF EXISTS gate_examples_history WITH (FORCE)")


def test_scheduled_audit_script_keeps_reports_and_history_on_the_volume(
    repo: tuple[Workspace, dict[str, str]],
) -> None:
    workspace, base = repo
    volume = workspace.path / "volume"
    volume.mkdir()
    env = {
        **base,
        "PGWARDEN_CONFIG": str(workspace.path / "pgwarden.toml"),
        "PGWARDEN_WAIVERS": str(workspace.path / "waivers.toml"),
        "PGWARDEN_HISTORY": str(volume / "history.sqlite"),
        "PGWARDEN_REPORTS": str(volume / "reports"),
    }
    script = EXAMPLES / "scheduled" / "pgwarden-audit.sh"
    run = subprocess.run(
        ["sh", str(script)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 1, run.stderr  # the seed-shaped server has violations
    assert "pgwarden audit finished with exit code 1" in run.stderr
    latest = volume / "reports" / "latest"
    results = json.loads((latest / "results.json").read_text())
    assert results["history"] == {
        **results["history"],
        "run_id": 1,
        "store": str(volume / "history.sqlite"),
    }
    for name in ("report.html", "results.sarif", "summary.md"):
        assert (latest / name).exists(), name
    assert "ctxeco-db" in (latest / "recent-runs.txt").read_text()

    # The container and cron recipes run this script with the history on the volume.
    dockerfile = (EXAMPLES / "scheduled" / "Dockerfile").read_text()
    assert "COPY pgwarden-audit.sh /usr/local/bin/pgwarden-audit" in dockerfile
    assert 'VOLUME ["/var/lib/pgwarden"]' in dockerfile
    cronjob = (EXAMPLES / "scheduled" / "kubernetes-cronjob.yaml").read_text()
    assert "value: /var/lib/pgwarden/history.sqlite" in cronjob
    assert "mountPath: /var/lib/pgwarden}" in cronjob
    assert "/usr/local/bin/pgwarden-audit" in (EXAMPLES / "scheduled" / "crontab").read_text()
