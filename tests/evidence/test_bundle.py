"""The evidence bundle built from a results document, and every way ``verify`` catches a
change: a byte of a file, a file added or removed, the manifest, the signature."""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from pgwarden.cli.main import cli
from pgwarden.evidence.bundle import BundleInput, build_bundle
from pgwarden.evidence.signing import PASSPHRASE_VARIABLE, load_public_key, load_signing_key
from pgwarden.evidence.verify import verify_bundle
from pgwarden.model.config import parse_config
from pgwarden.model.errors import UsageError
from pgwarden.model.results import Results
from pgwarden.reports import sarif
from tests.evidence import rewrite_entry
from tests.reports.conftest import large_results, load_fixture

# A canary: it must appear in no byte of the bundle.
PASSWORD = "Sup3r-s3cret_pw"
CONFIG_TEXT = f"""[policy]
fail_on = "high"

[[server]]
name = "ctxeco-db"
dsn = "postgresql://ctxecoadmin:{PASSWORD}@ctxeco-db.example.com/postgres?sslmode=require"  # no

[[server]]
name = "legacy-db"
dsn = "env:LEGACY_DSN"
"""


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def _write(tmp_path: Path, results: Results, key: Ed25519PrivateKey | None = None) -> Path:
    config = parse_config(CONFIG_TEXT, "pgwarden.toml")
    bundle = build_bundle(
        BundleInput(results=results, config=config, config_text=CONFIG_TEXT, signing_key=key)
    )
    path = tmp_path / "bundle.zip"
    path.write_bytes(bundle)
    return path


def _public(key: Ed25519PrivateKey, tmp_path: Path, name: str = "public.pem") -> Path:
    path = tmp_path / name
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def _contents(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_the_bundle_lists_every_file_with_its_hash(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    results = load_fixture()
    path = _write(tmp_path, results, key)
    contents = _contents(path)
    manifest = json.loads(contents["manifest.json"])
    listed = {f["path"] for f in manifest["files"]}
    assert listed == set(contents) - {"manifest.json", "manifest.json.sig"}
    assert {
        "results.json",
        "reports/report.html",
        "reports/results.sarif",
        "reports/junit.xml",
        "reports/summary.md",
        "reports/results.csv",
        "config/pgwarden.toml",
        "config/effective.json",
    } == listed
    assert manifest["tool_version"] == results.tool.version
    assert manifest["scan"]["config_sha256"] == results.scan.config_sha256
    assert [s["postgres_role"] for s in manifest["servers"]] == [
        s.connected_as for s in results.servers
    ]
    assert manifest["signature"]["algorithm"] == "Ed25519"
    assert "no snapshot" in manifest["notes"][0]
    verified = verify_bundle(path, load_public_key(_public(key, tmp_path)))
    assert verified.intact and verified.signature == "valid"
    assert verified.checked == len(listed)


def test_no_password_enters_the_bundle(tmp_path: Path) -> None:
    contents = _contents(_write(tmp_path, load_fixture()))
    for name, data in contents.items():
        assert PASSWORD.encode() not in data, name
    toml = contents["config/pgwarden.toml"].decode()
    assert "password=REDACTED" in toml and "env:LEGACY_DSN" in toml
    effective = json.loads(contents["config/effective.json"])
    assert "password=REDACTED" in effective["server"][0]["dsn"]
    assert effective["server"][1]["dsn"] == "env:LEGACY_DSN"


@pytest.mark.parametrize("entry", ["results.json", "reports/results.csv", "config/effective.json"])
def test_one_changed_byte_of_any_file_is_caught(tmp_path: Path, entry: str) -> None:
    path = _write(tmp_path, load_fixture())
    edited = tmp_path / "edited.zip"
    rewrite_entry(path, edited, entry, flip=10)
    found = verify_bundle(edited)
    assert not found.intact
    assert found.problems == [f"{entry}: altered (its SHA-256 is not the manifest's)"]


def test_a_file_added_or_removed_is_caught(tmp_path: Path) -> None:
    path = _write(tmp_path, load_fixture())
    added = tmp_path / "added.zip"
    added.write_bytes(path.read_bytes())
    with zipfile.ZipFile(added, "a") as archive:
        archive.writestr("reports/extra.html", "<p>trust me</p>")
    assert verify_bundle(added).problems == ["reports/extra.html: not listed in the manifest"]
    removed = tmp_path / "removed.zip"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(removed, "w") as target:
        for info in source.infolist():
            if info.filename != "reports/summary.md":
                target.writestr(info, source.read(info))
    assert verify_bundle(removed).problems == ["reports/summary.md: missing"]


def test_a_corrupted_archive_is_not_intact(tmp_path: Path) -> None:
    path = _write(tmp_path, load_fixture())
    data = bytearray(path.read_bytes())
    data[200] ^= 0xFF  # inside the first entry's compressed data
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(data))
    assert not verify_bundle(damaged).intact
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(bytes(data[: len(data) // 2]))
    assert "not a readable zip archive" in verify_bundle(truncated).problems[0]


def test_a_rewritten_manifest_breaks_the_signature(tmp_path: Path, key: Ed25519PrivateKey) -> None:
    """Whoever edits a file and its hash in the manifest cannot sign the new manifest."""
    path = _write(tmp_path, load_fixture(), key)
    contents = _contents(path)
    forged_csv = contents["reports/results.csv"] + b"forged\r\n"
    manifest = json.loads(contents["manifest.json"])
    for item in manifest["files"]:
        if item["path"] == "reports/results.csv":
            item["sha256"] = hashlib.sha256(forged_csv).hexdigest()
            item["size"] = len(forged_csv)
    once = tmp_path / "once.zip"
    rewrite_entry(path, once, "reports/results.csv", content=forged_csv)
    forged = tmp_path / "forged.zip"
    rewrite_entry(once, forged, "manifest.json", content=json.dumps(manifest, indent=2).encode())
    public = load_public_key(_public(key, tmp_path))
    unsigned_check = verify_bundle(forged)
    assert unsigned_check.intact and unsigned_check.signature == "not checked"
    signed_check = verify_bundle(forged, public)
    assert not signed_check.intact and signed_check.signature == "invalid"
    other = load_public_key(_public(Ed25519PrivateKey.generate(), tmp_path, "other.pem"))
    wrong_key = verify_bundle(path, other)
    assert wrong_key.signature == "invalid"
    assert "signed with another key" in wrong_key.problems[0]


def test_verify_exits_0_when_intact_and_1_when_altered(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    path = _write(tmp_path, load_fixture(), key)
    runner = CliRunner()
    public = _public(key, tmp_path)
    intact = runner.invoke(cli, ["verify", str(path), "--public-key", str(public)])
    assert intact.exit_code == 0, intact.output
    assert "signature: valid" in intact.output and "intact: 8 file(s)" in intact.output
    edited = tmp_path / "edited.zip"
    rewrite_entry(path, edited, "results.json", flip=0)
    altered = runner.invoke(cli, ["verify", str(edited), "--public-key", str(public)])
    assert altered.exit_code == 1
    assert "ALTERED: results.json: altered" in altered.output
    plain = tmp_path / "plain"
    plain.mkdir()
    unsigned = _write(plain, load_fixture())
    missing = runner.invoke(cli, ["verify", str(unsigned), "--public-key", str(public)])
    assert missing.exit_code == 1 and "not signed" in missing.output
    absent = runner.invoke(cli, ["verify", str(tmp_path / "nowhere.zip")])
    assert absent.exit_code == 2 and "no such file" in absent.output


def test_signing_keys_pem_openssh_and_encrypted(
    tmp_path: Path, key: Ed25519PrivateKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    openssh = tmp_path / "id_ed25519"
    openssh.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.OpenSSH,
            serialization.NoEncryption(),
        )
    )
    assert load_signing_key(openssh).public_key() == key.public_key()
    ssh_public = tmp_path / "id_ed25519.pub"
    ssh_public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
    )
    assert load_public_key(ssh_public) == key.public_key()
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"correct horse"),
        )
    )
    monkeypatch.delenv(PASSPHRASE_VARIABLE, raising=False)
    with pytest.raises(UsageError, match="is encrypted"):
        load_signing_key(encrypted)
    monkeypatch.setenv(PASSPHRASE_VARIABLE, "correct horse")
    assert load_signing_key(encrypted).public_key() == key.public_key()
    ec = tmp_path / "ec.pem"
    ec.write_bytes(
        generate_private_key(SECP256R1()).private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(UsageError, match="not an Ed25519 key"):
        load_signing_key(ec)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a key")
    with pytest.raises(UsageError, match="not a readable private key"):
        load_signing_key(garbage)


def test_no_room_for_the_bundles_files_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The bundle's files go through temporary files: a temporary folder that cannot
    # take them is one line naming it and what to do, not a traceback.
    missing = tmp_path / "no-such-folder"
    monkeypatch.setattr(tempfile, "tempdir", str(missing))
    with pytest.raises(UsageError) as raised:
        _write(tmp_path, load_fixture())
    message = str(raised.value)
    assert "\n" not in message
    assert f"temporary file in {missing}" in message and "TMPDIR" in message
    assert not (tmp_path / "bundle.zip").exists()


def test_a_sarif_log_github_would_refuse_leaves_only_itself_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Too many rule-and-server stories for one GitHub run: the SARIF log is not made
    # (reports.sarif), and the bundle keeps every other file and says why.
    monkeypatch.setattr(sarif, "MAX_RESULTS_ACCEPTED", 12)
    path = _write(tmp_path, large_results(2_000, servers=25))
    contents = _contents(path)
    assert "reports/results.sarif" not in contents
    assert {"results.json", "reports/report.html", "reports/results.csv"} <= set(contents)
    manifest = json.loads(contents["manifest.json"])
    assert any(
        note.startswith("reports/results.sarif left out: ") and "GitHub" in note
        for note in manifest["notes"]
    )
    assert verify_bundle(path).intact
