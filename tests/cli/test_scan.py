"""``gatepass scan``: secrets, canaries and credential formats in files, folders, stdin; exit codes, JSON, --redact."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest

from gatepass.cli import scan
from gatepass.control.app import Gatepass
from gatepass.control.canaries import canary_values
from gatepass.keyformat import generate_key
from gatepass.vault.crypto import MasterKey
from tests.conftest import Gp, fake_secret


@pytest.fixture
def vault_value(gp: Gp) -> str:
    """An initialised home whose vault holds secret "anthropic-main" with this (fake) value."""
    value = fake_secret("FAKE-", 40)
    assert gp("init").code == 0
    assert gp("secret", "add", "anthropic-main", "--upstream", "anthropic", input=value).code == 0
    return value


def aws_key_id() -> str:
    return "AKIA" + fake_secret("", 16).upper()


def test_a_clean_folder_exits_0(gp: Gp, vault_value: str, tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.py").write_text("print('hello')\n")
    result = gp("scan", str(tmp_path / "src"))
    assert result.code == 0, result
    assert result.out == ""
    assert result.err == "0 findings in 0 of 1 input (15 bytes); looked for 1 vault secret and credential formats\n"


def test_vault_secrets_and_formats_are_found_with_line_and_column(gp: Gp, vault_value: str, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "deep").mkdir(parents=True)
    encoded = base64.b64encode(b"xy" + vault_value.encode()).decode()
    (tree / "deep" / "log.txt").write_text(f"line one\nsent: {vault_value}\nécho {encoded}\n")
    (tree / "creds.env").write_text(f"AWS_ACCESS_KEY_ID={aws_key_id()}\n")
    result = gp("scan", str(tree))
    assert result.code == 1, result
    assert result.out.splitlines() == [
        f"{tree}/creds.env:1:19: aws-access-key-id (pattern)",
        f"{tree}/deep/log.txt:2:7: anthropic-main (secret)",
        # columns count characters (é is one); the first 3 base64 characters also encode "xy", so are not in it
        f"{tree}/deep/log.txt:3:9: anthropic-main (secret, base64)",
    ]
    assert result.err.startswith("3 findings in 2 of 2 inputs")
    assert vault_value not in result.out + result.err


def test_json_for_ci(gp: Gp, vault_value: str, tmp_path: Path) -> None:
    target = tmp_path / "app.cfg"
    target.write_text(f"token = {vault_value.encode().hex()}\n")
    result = gp("scan", "--json", str(target))
    assert result.code == 1
    document = json.loads(result.out)
    assert document == {
        "findings": [
            {"path": str(target), "line": 1, "column": 9, "kind": "secret", "name": "anthropic-main", "encoding": "hex"}
        ],
        "inputs_scanned": 1,
        "skipped": [],
        "vault_secrets": 1,
        "canaries": 0,
    }
    clean = tmp_path / "clean.cfg"
    clean.write_text("nothing = 1\n")
    assert gp("scan", "--json", str(clean)).code == 0


def test_canaries_are_found_by_id_and_never_shown(gp: Gp, vault_value: str, tmp_path: Path) -> None:
    assert gp("agent", "create", "acme-research-dev", "--owner", "me@example.com").code == 0
    added = gp("canary", "add", "acme-research-dev", "--kind", "aws")
    assert added.code == 0, added
    canary_id = added.out.strip()
    with Gatepass.open() as app, app.read() as tx:
        (canary,) = tx.list_canaries()
        values = canary_values(app.vault, canary)
    secret_key = values["AWS_SECRET_ACCESS_KEY"]
    target = tmp_path / "notes.txt"
    target.write_text(f"found this:\n  key = {secret_key}\n")
    result = gp("scan", str(target))
    assert result.code == 1, result
    assert result.out == f"{target}:2:9: {canary_id} (canary)\n"
    assert result.err.endswith("; looked for 1 vault secret, 1 canary and credential formats\n")
    as_json = gp("scan", "--json", str(target))
    assert as_json.code == 1
    document = json.loads(as_json.out)
    assert [(f["kind"], f["name"], f["line"]) for f in document["findings"]] == [("canary", canary_id, 2)]
    assert document["canaries"] == 1
    for shown in (result, as_json):
        assert all(value not in shown.out + shown.err for value in values.values())


def test_redact_writes_a_private_copy_and_leaves_the_original(gp: Gp, vault_value: str, tmp_path: Path) -> None:
    original = f"a {vault_value}\nb {aws_key_id()}\nc {vault_value}{vault_value}\n".encode()
    target = tmp_path / "agent.log"
    target.write_bytes(original)
    (tmp_path / "clean.log").write_text("fine\n")
    result = gp("scan", "--redact", str(tmp_path))
    assert result.code == 1, result
    copy = tmp_path / "agent.log.redacted"
    assert target.read_bytes() == original
    assert copy.read_bytes() == (
        b"a [REDACTED:anthropic-main]\nb [REDACTED:aws-access-key-id]\n"
        b"c [REDACTED:anthropic-main][REDACTED:anthropic-main]\n"
    )
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert not (tmp_path / "clean.log.redacted").exists()
    assert f"wrote {copy} (4 findings redacted)" in result.err

    again = gp("scan", "--redact", str(target))
    assert (
        again.code == 1
        and again.err == f"gatepass: error: {copy} already exists: remove it, or pass --force to replace it\n"
    )
    copy.write_bytes(b"stale")
    forced = gp("scan", "--redact", "--force", str(target))
    assert forced.code == 1 and copy.read_bytes().startswith(b"a [REDACTED:")
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600


def test_redact_force_replaces_a_link_not_its_target(gp: Gp, vault_value: str, tmp_path: Path) -> None:
    target = tmp_path / "a.log"
    target.write_text(vault_value)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("keep me")
    (tmp_path / "a.log.redacted").symlink_to(elsewhere)
    assert gp("scan", "--redact", str(target)).code == 1
    assert gp("scan", "--redact", "--force", str(target)).code == 1
    assert elsewhere.read_text() == "keep me"
    assert (tmp_path / "a.log.redacted").read_bytes() == b"[REDACTED:anthropic-main]"


def test_stdin(gp: Gp, vault_value: str) -> None:
    text = f"first\nthen {vault_value} and {generate_key().reveal()}\n"
    for args in (("scan", "-"), ("scan",)):  # no PATH: stdin, when it is not a terminal
        result = gp(*args, input=text)
        assert result.code == 1, result
        assert result.out.splitlines() == ["-:2:6: anthropic-main (secret)", "-:2:56: gatepass-key (pattern)"]
    assert gp("scan", "-", input="nothing to see\n").code == 0


def test_redact_stdin_prints_the_redacted_stream(gp: Gp, vault_value: str) -> None:
    result = gp("scan", "--redact", "-", input=f"x {vault_value} y\n")
    assert result.code == 1
    assert result.out == "x [REDACTED:anthropic-main] y\n"
    assert "-:1:3: anthropic-main (secret)" in result.err  # findings move to stderr: stdout is the data
    clean = gp("scan", "--redact", "-", input="all clean\n")
    assert clean.code == 0 and clean.out == "all clean\n"


def test_formats_only_without_a_home(gp: Gp, home: Path, tmp_path: Path) -> None:
    target = tmp_path / "cfg.env"
    target.write_text(f"KEY={aws_key_id()}\n")
    result = gp("scan", str(target))
    assert result.code == 1
    assert result.out == f"{target}:1:5: aws-access-key-id (pattern)\n"
    first, summary = result.err.splitlines()
    assert first.startswith("gatepass: no vault secrets or canaries to look for (no gatepass home at ")
    assert first.endswith("; looking for credential formats only")
    assert summary.endswith("; looked for credential formats only")
    assert not home.exists()  # scanning creates no home


def test_formats_only_when_the_vault_does_not_open(gp: Gp, vault_value: str, tmp_path: Path) -> None:
    target = tmp_path / "log"
    target.write_text(vault_value)
    wrong = MasterKey.generate().to_text()
    result = gp("scan", str(target), env={"GATEPASS_MASTER_KEY": wrong})
    assert result.code == 0, result  # the value is not a known format, and the vault is closed
    assert "does not open this home" in result.err and "looking for credential formats only" in result.err
    assert wrong not in result.err


def test_usage_errors(gp: Gp, tmp_path: Path) -> None:
    missing = gp("scan", str(tmp_path / "nope"))
    assert missing.code == 2
    assert (
        missing.err
        == f"gatepass: error: no such file or folder: {tmp_path / 'nope'}; check the path, or use - to read stdin\n"
    )
    credential = aws_key_id()
    typed = gp("scan", credential)
    assert typed.code == 2 and credential not in typed.err and "pipe it on stdin" in typed.err
    assert gp("scan", "--force", str(tmp_path)).code == 2
    assert gp("scan", "--redact", "--json", "-", input="x").code == 2
    assert gp("scan", "-", "-", input="x").code == 2
    for result in (missing, typed):
        assert result.err.count("\n") == 1


def test_skips_vcs_folders_links_binaries_and_large_files(gp: Gp, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / ".git").mkdir(parents=True)
    (tree / ".git" / "config").write_text(aws_key_id())
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text(aws_key_id())
    (tree / "out-link").symlink_to(outside)
    (tree / "file-link").symlink_to(outside / "secret.txt")
    (tree / "image.bin").write_bytes(b"\0\1\2" + aws_key_id().encode())
    (tree / "big.txt").write_text("x" * (1024 * 1024) + "\n" + aws_key_id())
    result = gp("scan", "--json", "--max-size", "1", str(tree))
    assert result.code == 0, result
    document = json.loads(result.out)
    assert document["inputs_scanned"] == 0
    assert sorted(document["skipped"], key=lambda s: s["path"]) == [
        {"path": str(tree / "big.txt"), "reason": "too large"},
        {"path": str(tree / "file-link"), "reason": "symbolic link"},
        {"path": str(tree / "image.bin"), "reason": "binary"},
        {"path": str(tree / "out-link"), "reason": "symbolic link"},
    ]
    assert "raise --max-size" in result.err
    with_binary = gp("scan", "--binary", "--max-size", "2", str(tree))
    assert with_binary.code == 1
    assert [line.split(":")[0] for line in with_binary.out.splitlines()] == [
        str(tree / "big.txt"),
        str(tree / "image.bin"),
    ]
    assert gp("scan", str(tree / "file-link")).code == 1  # a link named on the command line is followed


def test_an_unreadable_file_is_skipped_with_a_note(gp: Gp, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "locked"
    target.write_text("x")

    def refuse(path: str, limit: int) -> bytes:
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(scan, "_read", refuse)  # chmod 0 would not stop root
    result = gp("scan", "--json", str(tmp_path))
    assert result.code == 0
    assert f"cannot read {target}: Permission denied; skipped" in result.err
    assert json.loads(result.out)["skipped"] == [{"path": str(target), "reason": "unreadable"}]
