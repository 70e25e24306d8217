"""Malformed and hostile input files: exit 2 and one line naming the file and the place."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import run_pgwarden

SNAPSHOT = (
    '{"schema_version": "1.0", "tool_version": "t", '
    '"collected_at": "2026-01-01T00:00:00Z", "servers": []}'
)
DEEP = 100_000
RESULTS_PATH = Path(__file__).parent.parent / "reports" / "fixtures" / "results.json"

CASES: list[tuple[str, bytes, list[str], str]] = [
    ("deep.toml", b"a = " + b"[" * DEEP + b"]" * DEEP, ["scan", "--config"], "nested too deeply"),
    ("huge.toml", b"# padding\n" * 1_000_000, ["scan", "--config"], "too large (10 MiB"),
    ("types.toml", b"[policy]\nfail_on = 3\n", ["scan", "--config"], "policy.fail_on:"),
    (
        "unknown.toml",
        b"[[server]]\nname = 'a'\nhots = 'x'\n",
        ["scan", "--config"],
        "hots: unknown key",
    ),
    ("bad.toml", b"[policy]\nfail_on = '\xc3\x28'\n", ["scan", "--config"], "not UTF-8 (line 2"),
    ("deep.json", b"[" * DEEP + b"]" * DEEP, ["scan", "--snapshot"], "not valid JSON"),
    ("bad.json", b'{"a": "\xff"}', ["scan", "--snapshot"], "not UTF-8 (line 1, byte 7)"),
    ("types.json", SNAPSHOT.replace('"t"', "5").encode(), ["scan", "--snapshot"], "tool_version:"),
    (
        "extra.json",
        SNAPSHOT[:-1].encode() + b', "x": 1}',
        ["scan", "--snapshot"],
        "x: Extra inputs",
    ),
    ("array.json", b"[1, 2]", ["scan", "--snapshot"], "not a pgwarden snapshot"),
    (
        "deep-w.toml",
        b"[[waiver]]\nrule = " + b"[" * DEEP + b"]" * DEEP,
        ["scan", "--waivers"],
        "nested too deeply",
    ),
    ("w.toml", b"[[waiver]]\nrule = 'PGW-*'\nresource = 5\n", ["scan", "--waivers"], "resource:"),
    (
        "deep-b.json",
        b'{"a": ' + b"[" * DEEP + b"]" * DEEP + b"}",
        ["scan", "--baseline"],
        "not valid JSON",
    ),
    ("results.json", b'{"schema_version": "2.0"}', ["report"], "schema_version"),
    # One kind of document where the other is wanted: said so, with the command for it.
    ("snapshot.json", SNAPSHOT.encode(), ["report"], "a snapshot, not a results document"),
    (
        "results2.json",
        RESULTS_PATH.read_bytes(),
        ["scan", "--snapshot"],
        "a results document, not a snapshot",
    ),
]


@pytest.mark.parametrize(
    ("name", "content", "command", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_hostile_file_is_one_clear_line(
    tmp_path: Path, name: str, content: bytes, command: list[str], expected: str
) -> None:
    (tmp_path / name).write_bytes(content)
    (tmp_path / "snap.json").write_text(SNAPSHOT)
    args = [*command, name]
    if command[-1] in ("--waivers", "--baseline"):
        args += ["--snapshot", "snap.json"]
    if command == ["report"]:
        args += ["--html", "out.html"]
    run = run_pgwarden(*args, cwd=tmp_path)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith(f"pgwarden: error: {name}: ")
    assert expected in lines[0]
    assert not (tmp_path / "out.html").exists()
