import base64
import json
import sqlite3
from pathlib import Path

from gatepass.vault.crypto import MasterKey
from tests.conftest import Gp, fake_secret


def test_secret_add_list_rotate_rm(gp: Gp, home: Path) -> None:
    assert gp("init").code == 0
    value = fake_secret()
    added = gp("secret", "add", "anthropic-main", "--upstream", "anthropic", input=value + "\n")
    assert added.code == 0, added
    assert "created upstream 'anthropic'" in added.err
    listed = json.loads(gp("secret", "list", "--json").out)
    assert [(s["name"], s["upstream"]) for s in listed] == [("anthropic-main", "anthropic")]
    fingerprint = listed[0]["fingerprint"]
    assert value not in json.dumps(listed)
    upstreams = json.loads(gp("upstream", "list", "--json").out)
    assert upstreams[0]["secret"] == "anthropic-main" and upstreams[0]["secret_status"] == "present"
    assert gp("secret", "rotate", "anthropic-main", input=fake_secret()).code == 0
    rotated = json.loads(gp("secret", "list", "--json").out)[0]
    assert rotated["fingerprint"] != fingerprint and rotated["rotated_at"]
    table = gp("secret", "list")
    assert "anthropic-main" in table.out and value not in table.out
    removed = gp("secret", "rm", "anthropic-main")
    assert removed.code == 0 and "upstream anthropic now has no credential" in removed.err
    assert json.loads(gp("secret", "list", "--json").out) == []


def test_secret_values_are_refused_on_the_command_line(gp: Gp) -> None:
    assert gp("init").code == 0
    value = fake_secret()
    result = gp("secret", "add", "x", value, "--upstream", "anthropic", input="")
    assert result.code == 2
    assert value not in result.err  # not even echoed back in the usage error


def test_bad_secret_input(gp: Gp) -> None:
    assert gp("init").code == 0
    cases = [
        (("secret", "add", "x", "--upstream", "anthropic"), "", "empty"),
        (("secret", "add", "x", "--upstream", "anthropic"), "a\nb", "line break"),
        (("secret", "add", "Bad_Name", "--upstream", "anthropic"), "v", "invalid secret name"),
        (("secret", "add", "x", "--upstream", "nowhere"), "v", "unknown upstream 'nowhere'"),
        (("secret", "rotate", "missing"), "v", "no secret named 'missing'"),
        (("secret", "rm", "missing"), None, "no secret named 'missing'"),
    ]
    for args, stdin, message in cases:
        result = gp(*args, input=stdin)
        assert result.code != 0, (args, result)
        assert message in result.err, (args, result)
        assert result.err.count("\n") == 1, result
    assert json.loads(gp("secret", "list", "--json").out) == []
    assert json.loads(gp("upstream", "list", "--json").out) == []


def test_duplicate_secret_is_refused_and_the_value_kept(gp: Gp) -> None:
    assert gp("init").code == 0
    assert gp("secret", "add", "main", "--upstream", "openai", input=fake_secret()).code == 0
    before = json.loads(gp("secret", "list", "--json").out)
    again = gp("secret", "add", "main", "--upstream", "openai", input=fake_secret())
    assert again.code == 1 and "gatepass secret rotate main" in again.err
    assert json.loads(gp("secret", "list", "--json").out) == before


def test_wrong_master_key_is_one_clear_line(gp: Gp) -> None:
    assert gp("init").code == 0
    wrong = MasterKey.generate().to_text()
    result = gp(
        "secret", "add", "main", "--upstream", "openai", input=fake_secret(), env={"GATEPASS_MASTER_KEY": wrong}
    )
    assert result.code == 1
    assert "does not open this home" in result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert wrong not in result.err
    assert json.loads(gp("secret", "list", "--json").out) == []


def test_tampered_ciphertext_swap_is_refused(gp: Gp, home: Path) -> None:
    from gatepass.control.app import Gatepass
    from gatepass.store.interface import SealedSecret

    assert gp("init").code == 0
    assert gp("secret", "add", "one", "--upstream", "openai", input=fake_secret()).code == 0
    assert gp("secret", "add", "two", "--upstream", "anthropic", input=fake_secret()).code == 0
    db = sqlite3.connect(home / "gatepass.db")
    rows = dict(db.execute("SELECT name, ciphertext FROM secrets"))
    nonces = dict(db.execute("SELECT name, nonce FROM secrets"))
    db.execute("UPDATE secrets SET ciphertext = ?, nonce = ? WHERE name = 'one'", (rows["two"], nonces["two"]))
    db.commit()
    db.close()
    import pytest

    from gatepass.errors import TamperedCiphertextError

    with Gatepass.open() as app, app.read() as tx:
        one = tx.get_secret("one")
        two = tx.get_secret("two")
        assert isinstance(one, SealedSecret) and isinstance(two, SealedSecret)
        assert app.vault.open_secret(two).reveal()
        with pytest.raises(TamperedCiphertextError):
            app.vault.open_secret(one)


def test_no_secret_value_anywhere_in_the_home(gp: Gp, home: Path) -> None:
    """After a session of commands, search every byte of every file for every secret and key."""
    assert gp("init").code == 0
    values = [fake_secret() for _ in range(3)]
    assert gp("secret", "add", "anthropic-main", "--upstream", "anthropic", input=values[0]).code == 0
    assert gp("secret", "add", "openai-main", "--upstream", "openai", input=values[1]).code == 0
    assert gp("secret", "rotate", "openai-main", input=values[2]).code == 0
    assert gp("agent", "create", "acme-research-dev", "--owner", "me@example.com").code == 0
    assert gp("allow", "acme-research-dev", "anthropic").code == 0
    keys = [gp("key", "issue", "acme-research-dev", "--ttl", "1h").out.strip() for _ in range(3)]
    assert gp("key", "issue", "acme-research-dev", "--uses", "1").code == 0
    assert gp("revoke", "acme-research-dev").code == 0
    assert gp("audit", "verify").code == 0
    needles = []
    for value in values + keys:
        raw = value.encode()
        needles += [raw, raw.hex().encode(), base64.b64encode(raw), base64.b64encode(raw).rstrip(b"=")[:-2]]
        needles += [raw[4:-4]]  # a long inner part too
    files = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.name.endswith("-wal") or p.name == "gatepass.db" for p in files)
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"secret material found in {path}"
