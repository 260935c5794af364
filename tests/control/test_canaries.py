"""Canaries through the control layer: decoy formats, sealing, planting, tripping and what is never shown."""

from __future__ import annotations

import json
import re
import sqlite3
import string
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from gatepass.audit import tail_directory
from gatepass.control import agents, canaries, keys
from gatepass.control.app import Gatepass, init_home
from gatepass.credpatterns import find_credentials
from gatepass.errors import ConflictError, InvalidInputError, NotFoundError, TamperedCiphertextError
from gatepass.model import AgentStatus, Canary

AGENT = "acme-research-dev"

# kind -> the format of each of its values, in order
FORMATS: dict[str, tuple[str, ...]] = {
    "aws": (r"AKIA[A-Z2-7]{16}", r"[A-Za-z0-9/+]{40}"),
    "github": (r"ghp_[A-Za-z0-9]{36}",),
    "anthropic": (r"sk-ant-api03-[A-Za-z0-9_-]{93}AA",),
    "openai": (r"sk-proj-[A-Za-z0-9_-]{74}T3BlbkFJ[A-Za-z0-9_-]{74}",),
    "slack": (r"xoxb-\d{12}-\d{13}-[A-Za-z0-9]{24}",),
    "stripe": (r"sk_live_[A-Za-z0-9]{99}",),
    "database": (r"postgresql://app_admin:[A-Za-z0-9]{32}@prod-db-[a-z0-9]{6}\.internal:5432/production",),
}
NAMES = {
    "aws": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    "github": ("GH_ADMIN_TOKEN",),
    "anthropic": ("ANTHROPIC_ADMIN_KEY",),
    "openai": ("OPENAI_ORG_ADMIN_KEY",),
    "slack": ("SLACK_BOT_TOKEN",),
    "stripe": ("STRIPE_SECRET_KEY",),
    "database": ("DATABASE_URL",),
}


@pytest.fixture
def app(home: Path) -> Iterator[Gatepass]:
    init_home()
    with Gatepass.open(actor="test") as opened:
        with opened.session() as s:
            agents.create_agent(s, AGENT, owner="me@example.com")
            agents.create_agent(s, "acme-other-dev", owner="me@example.com")
        yield opened


def add(app: Gatepass, kind: str = "aws", agent: str = AGENT, **kw: object) -> canaries.CanaryInfo:
    with app.session() as s:
        return canaries.add_canary(s, agent, kind, **kw)  # type: ignore[arg-type]


def stored(app: Gatepass, canary_id: str) -> Canary:
    with app.read() as tx:
        (found,) = [c for c in tx.list_canaries() if c.id == canary_id]
    return found


def values_of(app: Gatepass, canary_id: str) -> dict[str, str]:
    return canaries.canary_values(app.vault, stored(app, canary_id))


def every_byte_of(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_the_kinds_are_the_table_of_this_test() -> None:
    assert set(canaries.KINDS) == set(FORMATS) == set(NAMES)


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_decoys_have_the_real_format_and_are_random(kind: str) -> None:
    first = canaries.generate_decoys(kind)
    second = canaries.generate_decoys(kind)
    assert tuple(first) == NAMES[kind]
    for value, pattern in zip(first.values(), FORMATS[kind], strict=True):
        assert re.fullmatch(pattern, value), (kind, pattern)
    assert all(a != b for a, b in zip(first.values(), second.values(), strict=True))


def test_github_decoys_carry_a_valid_checksum() -> None:
    token = canaries.generate_decoys("github")["GH_ADMIN_TOKEN"].removeprefix("ghp_")
    body, check = token[:30], token[30:]
    digits = string.digits + string.ascii_uppercase + string.ascii_lowercase
    value = 0
    for char in check:
        value = value * 62 + digits.index(char)
    assert value == zlib.crc32(body.encode())


@pytest.mark.parametrize("kind", sorted(FORMATS))
def test_gatepass_credential_detection_recognises_each_decoy(kind: str) -> None:
    for name, value in canaries.generate_decoys(kind).items():
        if name != "AWS_SECRET_ACCESS_KEY":  # 40 base64 characters: a finding only in AWS context (below)
            assert find_credentials(value), f"find_credentials does not recognise a {kind} decoy"


def test_an_aws_secret_decoy_is_recognised_in_its_context() -> None:
    secret = canaries.generate_decoys("aws")["AWS_SECRET_ACCESS_KEY"]
    assert (1, "aws-secret-access-key") in find_credentials(f"aws_secret_access_key = {secret}")
    if not find_credentials(f"AWS_SECRET_ACCESS_KEY={secret}"):
        pytest.xfail("credpatterns misses an AWS secret key right after '=' (its look-behind excludes '=')")


def test_reserved_names_cover_those_gatepass_run_sets() -> None:
    environment = pytest.importorskip("gatepass.runner.environment")
    for name in environment.RESERVED_NAMES:
        with pytest.raises(InvalidInputError, match="gatepass run sets"):
            canaries.generate_decoys("github", [name])


def test_env_names_can_be_chosen_but_not_the_ones_gatepass_run_sets() -> None:
    assert list(canaries.generate_decoys("aws", ["PROD_AWS_KEY_ID", "PROD_AWS_SECRET"])) == [
        "PROD_AWS_KEY_ID",
        "PROD_AWS_SECRET",
    ]
    for names, message in (
        (["ANTHROPIC_API_KEY"], "gatepass run sets"),
        (["openai_api_key"], "gatepass run sets"),
        (["GATEPASS_KEY"], "gatepass run sets"),
        (["1ABC"], "invalid --env"),
        (["A", "B"], "give --env that many times"),
    ):
        with pytest.raises(InvalidInputError, match=message):
            canaries.generate_decoys("github", names)
    with pytest.raises(InvalidInputError, match="must differ"):
        canaries.generate_decoys("aws", ["SAME", "SAME"])


def test_unknown_kind_lists_the_kinds() -> None:
    with pytest.raises(InvalidInputError, match="use one of aws, github, anthropic, openai, slack, stripe, database"):
        canaries.generate_decoys("gcp")


def test_values_are_sealed_in_the_store_and_round_trip(app: Gatepass, home: Path) -> None:
    info = add(app, "aws")
    values = values_of(app, info.id)
    assert tuple(values) == info.env == NAMES["aws"]
    with sqlite3.connect(home / "gatepass.db") as db:
        ((sealed, fingerprint),) = db.execute("SELECT sealed, fingerprint FROM canaries").fetchall()
    assert all(v not in sealed for v in values.values())
    assert all(v.encode() not in (home / "gatepass.db").read_bytes() for v in values.values())
    assert re.fullmatch(r"[0-9a-f]{12}", fingerprint)
    # The seal is bound to the canary's id: moved to another record, it does not open.
    moved = Canary("cn_other", stored(app, info.id).agent_id, "aws", sealed, fingerprint)
    with pytest.raises(TamperedCiphertextError, match="canary:cn_other"):
        canaries.canary_values(app.vault, moved)


def test_planted_environment_and_files(app: Gatepass) -> None:
    env_aws = add(app, "aws")
    env_gh = add(app, "github")
    dotenv = add(app, "stripe", file="./.env")
    ini = add(app, "aws", file=".aws/credentials")
    as_json = add(app, "slack", file="config/secrets.json", env=["SLACK_TOKEN"])
    add(app, "anthropic", agent="acme-other-dev")
    with app.read() as tx:
        agent_id = agents.get_agent(tx, AGENT).id
        environment = canaries.planted_environment(tx, app.vault, agent_id)
        files = dict(canaries.planted_files(tx, app.vault, agent_id))
    assert environment == values_of(app, env_aws.id) | values_of(app, env_gh.id)
    assert dotenv.file == ".env" and dotenv.env == ("STRIPE_SECRET_KEY",)
    assert files[".env"] == f"STRIPE_SECRET_KEY={values_of(app, dotenv.id)['STRIPE_SECRET_KEY']}\n"
    key_id, secret = values_of(app, ini.id).values()
    assert files[".aws/credentials"] == (f"[default]\naws_access_key_id = {key_id}\naws_secret_access_key = {secret}\n")
    assert json.loads(files["config/secrets.json"]) == values_of(app, as_json.id)
    assert set(files) == {".env", ".aws/credentials", "config/secrets.json"}


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/etc/passwd", "must be relative"),
        ("~/.aws/credentials", "must be relative"),
        ("../.env", "remove '..'"),
        ("config/../../.env", "remove '..'"),
        ("", "give a relative path"),
        (".", "names no file"),
        ("a\\b", "give a relative path"),
        ("credentials", "holds only aws canaries"),
    ],
)
def test_bad_file_paths_are_refused(app: Gatepass, path: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        add(app, "github", file=path)


def test_clashing_variables_and_files_are_refused(app: Gatepass) -> None:
    first = add(app, "aws")
    with pytest.raises(ConflictError, match=f"canary {first.id} already plants AWS_ACCESS_KEY_ID"):
        add(app, "aws")
    add(app, "aws", env=["AWS_ACCESS_KEY_ID_PROD", "AWS_SECRET_ACCESS_KEY_PROD"])
    add(app, "aws", file=".env")  # a file canary does not touch the environment
    with pytest.raises(ConflictError, match=r"already plants \.env"):
        add(app, "stripe", file=".env")
    add(app, "aws", agent="acme-other-dev")


def test_list_and_remove(app: Gatepass) -> None:
    one = add(app, "aws")
    two = add(app, "database", file=".env", revoke=False)
    other = add(app, "slack", agent="acme-other-dev")
    with app.read() as tx:
        assert sorted(canaries.list_canaries(tx, app.vault, AGENT), key=lambda c: c.id) == sorted(
            [one, two], key=lambda c: c.id
        )
        assert {c.id for c in canaries.list_canaries(tx, app.vault)} == {one.id, two.id, other.id}
        with pytest.raises(NotFoundError, match="unknown agent"):
            canaries.list_canaries(tx, app.vault, "acme-nobody-dev")
    assert (two.file, two.revoke, two.agent) == (".env", False, AGENT)
    with app.session() as s:
        assert canaries.remove_canary(s, AGENT, one.id) == one
    with app.session() as s, pytest.raises(NotFoundError, match=f"has no canary {other.id!r}"):
        canaries.remove_canary(s, AGENT, other.id)
    with app.read() as tx:
        assert canaries.list_canaries(tx, app.vault, AGENT) == [two]
    actions = [r.action for r in tail_directory(app.home.audit_dir, 10, lambda r: r.action.startswith("canary."))]
    assert actions == ["canary.add", "canary.add", "canary.add", "canary.remove"]


def issue_keys(app: Gatepass, agent: str, n: int) -> list[str]:
    with app.session() as s:
        return [keys.issue_key(s, agent)[1].id for _ in range(n)]


def test_a_tripped_canary_revokes_every_key_of_its_agent(app: Gatepass) -> None:
    info = add(app, "anthropic")
    mine = issue_keys(app, AGENT, 2)
    theirs = issue_keys(app, "acme-other-dev", 1)
    with app.session(actor="gateway:canaries") as s:
        revoked = canaries.canary_tripped(s, stored(app, info.id), where="anthropic request body")
    assert sorted(revoked) == sorted(mine)
    with app.read() as tx:
        agent = agents.get_agent(tx, AGENT)
        assert agent.status is AgentStatus.SUSPENDED
        assert all(k.revoked_at is not None for k in tx.list_keys(agent.id))
        assert all(k.revoked_at is None for k in tx.list_keys(agents.get_agent(tx, "acme-other-dev").id))
    (event,) = tail_directory(app.home.audit_dir, 1, lambda r: r.action == "canary.tripped")
    assert (event.actor, event.target, event.decision, event.reason) == (
        "gateway:canaries",
        AGENT,
        "deny",
        "canary_tripped",
    )
    assert event.meta == {
        "canary": info.id,
        "agent": AGENT,
        "kind": "anthropic",
        "where": "anthropic request body",
        "revoke": True,
    }
    assert theirs[0] not in revoked


def test_a_tripped_canary_without_revoke_only_audits(app: Gatepass) -> None:
    info = add(app, "stripe", revoke=False)
    issue_keys(app, AGENT, 1)
    with app.session() as s:
        assert canaries.canary_tripped(s, stored(app, info.id), where="egress to api.stripe.com") == []
    with app.read() as tx:
        agent = agents.get_agent(tx, AGENT)
        assert agent.status is AgentStatus.ACTIVE
        assert all(k.revoked_at is None for k in tx.list_keys(agent.id))
    (event,) = tail_directory(app.home.audit_dir, 1, lambda r: r.action == "canary.tripped")
    assert event.meta["revoke"] is False


def test_tripped_message_names_the_canary_and_what_was_done() -> None:
    canary = Canary("cn_1", "ag_1", "aws", "sealed", "f" * 12, revoke=True)
    subject, body = canaries.tripped_message(AGENT, canary, "openai request body")
    assert subject == f"gatepass: canary tripped by {AGENT}"
    assert "canary cn_1" in body and "openai request body" in body and "revoked every key" in body
    assert "\n" not in body
    _, quiet = canaries.tripped_message(AGENT, Canary("cn_1", "ag_1", "aws", "s", "f", revoke=False), "x")
    assert "revoked every key" not in quiet


def test_no_value_in_reprs_or_the_audit_log(app: Gatepass, home: Path) -> None:
    infos = [add(app, kind) if kind != "aws" else add(app, kind, file=".env") for kind in canaries.KINDS]
    issue_keys(app, AGENT, 1)
    with app.session() as s:
        for info in infos:
            canaries.canary_tripped(s, stored(app, info.id), where="anthropic request body")
    with app.read() as tx:
        agent_id = agents.get_agent(tx, AGENT).id
        shown = repr(canaries.list_canaries(tx, app.vault)) + repr(tx.list_canaries())
        planted = canaries.planted_environment(tx, app.vault, agent_id)
        files = canaries.planted_files(tx, app.vault, agent_id)
    shown += repr(infos) + repr([canaries.tripped_message(AGENT, stored(app, i.id), "x") for i in infos])
    audit = every_byte_of(home / "audit")
    values = [v for info in infos for v in values_of(app, info.id).values()]
    assert len(values) == 8
    assert all(v in planted.values() or any(v in text for _, text in files) for v in values)
    for value in values:
        assert value not in shown
        assert value.encode() not in audit
