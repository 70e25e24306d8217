"""``pgwarden config schema`` and ``pgwarden config check``, run as a user would."""

from __future__ import annotations

from pathlib import Path

from tests.cli import run_pgwarden
from tests.model.test_config_schema import BROKEN, BROKEN_KEYS

ROOT = Path(__file__).resolve().parents[2]


def test_schema_prints_the_shipped_schema(tmp_path: Path) -> None:
    run = run_pgwarden("config", "schema", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout == (ROOT / "pgwarden" / "schemas" / "config.json").read_text("utf-8")


def test_check_accepts_a_valid_map(tmp_path: Path) -> None:
    run = run_pgwarden("config", "check", str(ROOT / "examples" / "pgwarden.toml"), cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.endswith("pgwarden.toml: valid (1 server(s), 4 app(s))\n")


def test_check_lists_every_problem_with_its_key_path(tmp_path: Path) -> None:
    # One more problem only the command sees: an override for a rule nobody registered.
    text = BROKEN.replace("fial_on", 'severity = { PGW-NOPE-001 = "low" }\nfial_on')
    (tmp_path / "pgwarden.toml").write_text(text, encoding="utf-8")
    run = run_pgwarden("config", "check", "pgwarden.toml", cwd=tmp_path)
    assert run.returncode == 2
    lines = run.stdout.splitlines()
    assert len(lines) == len(BROKEN_KEYS) + 1, run.stdout
    assert all(line.startswith("pgwarden.toml: ") for line in lines)
    assert "pgwarden.toml: server[name='ctxeco-db'].app[name='zep'].databases: " in run.stdout
    assert "pgwarden.toml: policy.severity.PGW-NOPE-001: no such rule" in run.stdout
    assert run.stderr == f"pgwarden: {len(lines)} problem(s) in pgwarden.toml\n"


def test_check_of_a_file_that_is_not_there_is_one_line(tmp_path: Path) -> None:
    run = run_pgwarden("config", "check", "absent.toml", cwd=tmp_path)
    assert run.returncode == 2
    assert run.stdout == "" and len(run.stderr.splitlines()) == 1
    assert "absent.toml" in run.stderr
