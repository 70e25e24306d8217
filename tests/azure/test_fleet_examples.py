"""The fleet examples in examples/fleet run as written: a GitHub Actions matrix and a
Kubernetes Indexed Job, each shard at the same time (recording into one PostgreSQL
history), then the merge. Azure is the HTTPS fake, reached through the credential chain
(managed identity); the servers are the test PostgreSQL."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import quote

import pytest

from pgwarden.cli.localpg import LocalServer
from pgwarden.model.config import load_config
from pgwarden.model.fleet import load_fleet_maps
from tests.azure.fakes import FakeAzure, TlsFixture
from tests.azure.test_fleet_scan import fleet_server, fleet_workspace
from tests.gate.conftest import Workspace
from tests.gate.test_examples import shell_blocks

pytestmark = pytest.mark.azure
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "fleet"
ARG_BLOCK = re.compile(r"^(\s*)- \|\s*$")


def arg_blocks(path: Path) -> list[str]:
    """The ``args: - |`` shell scripts of a Kubernetes manifest."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[str] = []
    for index, line in enumerate(lines):
        match = ARG_BLOCK.match(line)
        if not match or not lines[index - 1].strip().startswith("args:"):
            continue
        body: list[str] = []
        for following in lines[index + 1 :]:
            if following.strip() and len(following) - len(following.lstrip()) <= len(
                match.group(1)
            ):
                break
            body.append(following)
        blocks.append(textwrap.dedent("\n".join(body)).strip() + "\n")
    return blocks


@pytest.fixture
def fleet_env(
    fake: FakeAzure, tls: TlsFixture, clean_server: LocalServer, tmp_path: Path
) -> tuple[Workspace, dict[str, str]]:
    """A fleet of three servers on the test PostgreSQL, its config and maps, a history
    database, and the environment a pod or a runner would give pgwarden."""
    workspace = fleet_workspace(tmp_path, clean_server, fake)
    workspace.create_database("alpha", public_connect=True)
    workspace.create_database("beta", public_connect=False)
    for name, tags in (("db-a", {}), ("db-b", {}), ("db-c", {"pgwarden-map": "shared"})):
        fake.add_server(fleet_server(name, "127.0.0.1", tags))
    workspace.sql("DROP DATABASE IF EXISTS fleet_history")
    workspace.sql("CREATE DATABASE fleet_history")
    server = workspace.server
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PG", "GITHUB_", "AZURE_"))},
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PGPASSWORD": server.password,
        "PGWARDEN_HISTORY": (
            f"postgresql://{server.superuser}:{quote(server.password, safe='')}@{server.host}:"
            f"{server.port}/fleet_history?sslmode=disable"
        ),
        # DefaultAzureCredential, narrowed to a managed identity the fake serves (in the
        # examples: workload identity on Kubernetes, OpenID Connect on GitHub).
        "AZURE_TOKEN_CREDENTIALS": "ManagedIdentityCredential",
        "IDENTITY_ENDPOINT": f"{fake.arm_url}/msi/token",
        "IDENTITY_HEADER": "fake-identity-header",
        "REQUESTS_CA_BUNDLE": str(tls.ca_path),
    }
    return workspace, env


def _at_once(
    scripts: list[tuple[str, dict[str, str]]], cwd: Path | list[Path]
) -> list[tuple[int, str]]:
    """Run each script with bash at the same time (as a matrix or an Indexed Job does),
    in ``cwd`` or each in its own directory."""
    places = cwd if isinstance(cwd, list) else [cwd] * len(scripts)
    running = [
        subprocess.Popen(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
            cwd=place,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for (script, env), place in zip(scripts, places, strict=True)
    ]
    done = []
    for process in running:
        _out, err = process.communicate(timeout=240)
        done.append((process.returncode, err))
    return done


def _in_own_checkouts(
    workspace: Workspace, jobs: list[tuple[str, dict[str, str]]]
) -> list[tuple[int, str]]:
    return _at_once(jobs, [workspace.path / f"job-{shard}" for shard in range(len(jobs))])


def _history_runs(workspace: Workspace) -> int:
    import psycopg

    with psycopg.connect(workspace.server.dsn(dbname="fleet_history")) as conn:
        row = conn.execute("SELECT count(*) FROM pgwarden_runs").fetchone()
    assert row is not None
    return int(row[0])


def test_the_example_config_and_map_are_valid() -> None:
    config = load_config(EXAMPLES / "pgwarden.toml")
    assert config.fleet is not None and config.fleet.dsn_template is not None
    assert "password=entra" in config.fleet.dsn_template
    maps = load_fleet_maps(config)
    assert list(maps.maps) == ["ctxeco-db"] and maps.maps["ctxeco-db"].app[0].name == "secai-radar"


def test_github_actions_matrix(fleet_env: tuple[Workspace, dict[str, str]]) -> None:
    workspace, base = fleet_env
    workflow = (EXAMPLES / "github-actions-matrix.yml").read_text(encoding="utf-8")
    shards = int(re.search(r'SHARDS: "(\d+)"', workflow).group(1))  # type: ignore[union-attr]
    matrix = re.search(r"shard: \[([\d, ]+)\]", workflow).group(1)  # type: ignore[union-attr]
    assert [int(s) for s in matrix.split(",")] == list(range(shards))
    scan, merge = shell_blocks(EXAMPLES / "github-actions-matrix.yml")

    jobs = []
    for shard in range(shards):
        job = workspace.path / f"job-{shard}"
        job.mkdir()
        shutil.copy(workspace.path / "pgwarden.toml", job)
        shutil.copytree(workspace.path / "maps", job / "maps")
        env = {
            **base,
            "SHARD": str(shard),
            "SHARDS": str(shards),
            "GITHUB_OUTPUT": str(job / "github-output"),
        }
        jobs.append((scan, env))
    for code, err in _in_own_checkouts(workspace, jobs):
        assert code == 0, err  # violations and all, every job wrote its part
    assert _history_runs(workspace) == shards  # every shard recorded, at the same time

    # download-artifact with merge-multiple puts every part in one folder.
    parts = workspace.path / "merge" / "parts"
    parts.mkdir(parents=True)
    for shard in range(shards):
        shutil.copy(workspace.path / f"job-{shard}" / f"pgwarden-part-{shard}.json", parts)
    env = {
        **base,
        "GITHUB_OUTPUT": str(workspace.path / "merge" / "github-output"),
        "GITHUB_STEP_SUMMARY": str(workspace.path / "merge" / "summary.md"),
    }
    run = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", merge],
        cwd=workspace.path / "merge",
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert (workspace.path / "merge" / "github-output").read_text() == "exit-code=1\n"
    merged = (workspace.path / "merge" / "pgwarden-results.json").read_text()
    assert '"missing": []' in merged and '"name": "db-c"' in merged
    assert (workspace.path / "merge" / "summary.md").read_text().startswith("### ")
    assert (workspace.path / "merge" / "pgwarden-report.html").exists()


def test_kubernetes_indexed_job(fleet_env: tuple[Workspace, dict[str, str]]) -> None:
    workspace, base = fleet_env
    manifest = (EXAMPLES / "kubernetes-indexed-job.yaml").read_text(encoding="utf-8")
    completions = int(re.search(r"completions: (\d+)", manifest).group(1))  # type: ignore[union-attr]
    assert f"parallelism: {completions}" in manifest
    assert re.search(rf'name: SHARDS\n\s+value: "{completions}"', manifest)
    assert "completionMode: Indexed" in manifest
    (scan,) = arg_blocks(EXAMPLES / "kubernetes-indexed-job.yaml")
    (merge,) = arg_blocks(EXAMPLES / "kubernetes-merge-job.yaml")
    results = workspace.path / "volume" / "parts"
    pod = {
        **base,
        "SHARDS": str(completions),
        "PGWARDEN_CONFIG": str(workspace.path / "pgwarden.toml"),
        "PGWARDEN_RESULTS": str(results),
    }
    pods = [(scan, {**pod, "JOB_COMPLETION_INDEX": str(i)}) for i in range(completions)]
    for code, err in _at_once(pods, workspace.path):
        assert code == 0, err  # violations and all, every pod wrote its part
    assert sorted(p.name for p in results.iterdir()) == [
        f"part-{i}.json" for i in range(completions)
    ]
    assert _history_runs(workspace) == completions

    def merge_pod() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", "-c", merge],
            cwd=workspace.path,
            env={**base, "PGWARDEN_RESULTS": str(results)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    run = merge_pod()
    assert run.returncode == 1, run.stderr  # db-a's alpha is open to PUBLIC
    assert f"merged {completions} part(s) of {completions} shard(s): 3 server(s)" in run.stderr
    for name in ("results.json", "report.html", "results.sarif"):
        assert (results / name).exists(), name

    # A pod that never ran: the merge says which shard is missing.
    (results / "part-1.json").unlink()
    (results / "results.json").unlink()
    run = merge_pod()
    assert f"missing shard(s): 1/{completions}" in run.stderr
