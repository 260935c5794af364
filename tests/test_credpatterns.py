"""Credential formats: each one found where it is, and the look-alikes that are not credentials left alone.

Every credential here is made at run time from its format's prefix and random characters.
"""

from __future__ import annotations

import base64
import json
import secrets
import string

import pytest

from gatepass.credpatterns import PATTERNS, find_credentials, iter_formats
from gatepass.keyformat import generate_key

ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits


def rand(alphabet: str, n: int) -> str:
    """Random characters with at least one upper case letter, one lower case letter and one digit where the
    alphabet has them (as a generated token has, for any length that matters)."""
    while True:
        token = "".join(secrets.choice(alphabet) for _ in range(n))
        wanted = [
            group
            for group in (string.ascii_uppercase, string.ascii_lowercase, string.digits)
            if set(group) & set(alphabet)
        ]
        if all(set(token) & set(group) for group in wanted):
            return token


def aws_key_id() -> str:
    return "AKIA" + rand(UPPER_DIGITS, 16)


def aws_secret() -> str:
    return rand(ALNUM + "/+", 40)


def jwt() -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part({'sub': 'agent'})}.{rand(ALNUM + '-_', 43)}"


def private_key() -> str:
    body = "\n".join(base64.b64encode(secrets.token_bytes(48)).decode() for _ in range(4))
    return f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"


# (pattern name, a line holding one, the credential itself: the span must be exactly it)
POSITIVES = [
    ("aws-access-key-id", lambda c: f"aws_access_key_id = {c}", aws_key_id),
    ("aws-secret-access-key", lambda c: f"aws_secret_access_key = {c}", aws_secret),
    ("aws-secret-access-key", lambda c: f'AWS_SECRET_ACCESS_KEY="{c}"', aws_secret),
    ("aws-secret-access-key", lambda c: f"AWS_SECRET_ACCESS_KEY={c}", aws_secret),
    ("aws-secret-access-key", lambda c: f'{{"SecretAccessKey": "{c}", "SessionToken": null}}', aws_secret),
    ("github-token", lambda c: f"token: {c}", lambda: "ghp_" + rand(ALNUM, 36)),
    ("github-token", lambda c: f"GH_TOKEN={c}", lambda: "gho_" + rand(ALNUM, 36)),
    ("github-token", lambda c: f"GH_TOKEN={c}", lambda: "ghs_" + rand(ALNUM, 36)),
    ("github-token", lambda c: f"GH_TOKEN={c}", lambda: "github_pat_" + rand(ALNUM + "_", 82)),
    ("anthropic-api-key", lambda c: f"x-api-key: {c}", lambda: "sk-ant-api03-" + rand(ALNUM + "-_", 95)),
    ("openai-api-key", lambda c: f"Authorization: Bearer {c}", lambda: "sk-proj-" + rand(ALNUM + "-_", 120)),
    ("openai-api-key", lambda c: f"OPENAI_API_KEY={c}", lambda: "sk-" + rand(ALNUM, 48)),
    ("slack-token", lambda c: f"SLACK_TOKEN={c}", lambda: f"xoxb-{rand(string.digits, 12)}-{rand(ALNUM, 24)}"),
    ("slack-token", lambda c: f"token={c}", lambda: f"xoxp-{rand(string.digits, 12)}-{rand(ALNUM, 32)}"),
    (
        "slack-webhook",
        lambda c: f"url = https://{c}",
        lambda: f"hooks.slack.com/services/T{rand(UPPER_DIGITS, 8)}/B{rand(UPPER_DIGITS, 8)}/{rand(ALNUM, 24)}",
    ),
    ("stripe-key", lambda c: f"STRIPE_KEY={c}", lambda: "sk_live_" + rand(ALNUM, 24)),
    ("stripe-key", lambda c: f"STRIPE_KEY={c}", lambda: "rk_live_" + rand(ALNUM, 24)),
    ("private-key-block", lambda c: f"key: |\n{c}\n", private_key),
    ("private-key-block", lambda c: f"{c}\n", lambda: "-----BEGIN OPENSSH PRIVATE KEY-----"),  # no END: the header
    ("database-url", lambda c: f"DATABASE_URL={c}db.internal:5432/app", lambda: f"postgres://app:{rand(ALNUM, 16)}@"),
    ("database-url", lambda c: f"url = '{c}db/app'", lambda: f"postgresql+psycopg://app:{rand(ALNUM, 16)}@"),
    ("database-url", lambda c: f"{c}db:3306/app", lambda: f"mysql://root:{rand(ALNUM, 12)}@"),
    ("database-url", lambda c: f"{c}db/app", lambda: f"mariadb://u:{rand(ALNUM, 12)}@"),
    ("database-url", lambda c: f"{c}cluster0.example.net/", lambda: f"mongodb+srv://u:{rand(ALNUM, 12)}@"),
    ("database-url", lambda c: f"REDIS_URL={c}cache:6379/0", lambda: f"redis://:{rand(ALNUM, 12)}@"),
    ("database-url", lambda c: f"{c}cache:6380", lambda: f"rediss://default:{rand(ALNUM, 12)}@"),
    ("database-url", lambda c: f"{c}mq/vhost", lambda: f"amqps://guest:{rand(ALNUM, 12)}@"),
    ("database-url", lambda c: f"{c}mq:5672", lambda: f"amqp://guest:{rand(ALNUM, 12)}@"),
    ("jwt", lambda c: f"Authorization: Bearer {c}", jwt),
    ("gatepass-key", lambda c: f"x-api-key: {c}", lambda: generate_key().reveal()),
]


@pytest.mark.parametrize(("name", "line", "make"), POSITIVES, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(POSITIVES)])
def test_each_format_is_found_exactly(name: str, line: object, make: object) -> None:
    assert callable(line) and callable(make)
    credential = make()
    data = ("lorem ipsum\n" + line(credential) + "\ndolor sit amet\n").encode()
    found = [m for m in iter_formats(data) if m.name == name]
    assert len(found) == 1, (name, found)
    assert data[found[0].start : found[0].end] == credential.encode()


def bad_gatepass_key() -> str:
    good = generate_key().reveal()
    return good[:-1] + ("A" if good[-1] != "A" else "B")  # the checksum no longer fits


# Look-alikes: none of these may be a finding of any format.
NEAR_MISSES = [
    lambda: f"value = {aws_secret()}",  # 40 base64 characters with no AWS context nearby
    lambda: f"aws_secret_access_key = {rand(string.ascii_lowercase + string.digits, 40)}",  # a hex-like digest
    lambda: f"commit {secrets.token_hex(20)} aws_secret_access_key",
    lambda: f"aws_secret_access_key = {aws_secret()}=",  # padded: part of a longer base64 value
    lambda: "AKIA" + rand(UPPER_DIGITS, 20),  # too long for a key id
    lambda: "xAKIA" + rand(UPPER_DIGITS, 16),
    lambda: "postgres://app@db.internal:5432/app",  # no password
    lambda: "postgresql://app:${DB_PASSWORD}@db/app",  # a placeholder
    lambda: "mysql://root:***@db/app",
    lambda: "https://user:" + rand(ALNUM, 12) + "@example.com/",  # not a database
    lambda: "gp_" + rand(ALNUM, 39),  # a random look-alike: wrong checksum
    bad_gatepass_key,
    lambda: "sk-learn-compatible-estimator-interface-implementation",  # words, not a key
    lambda: "desk-" + rand(ALNUM, 40),
    lambda: "ghp_" + rand(ALNUM, 10),  # too short
    lambda: "eyJ" + rand(ALNUM, 30),  # one part only
    lambda: (
        "data:" + base64.b64encode(b'{"not": "a jwt"}' + secrets.token_bytes(30)).decode() + ".abc.defghijklmnopqrstu"
    ),
    lambda: "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
    lambda: "-----BEGIN CERTIFICATE-----",
]


@pytest.mark.parametrize("make", NEAR_MISSES, ids=[str(i) for i in range(len(NEAR_MISSES))])
def test_near_misses_are_not_findings(make: object) -> None:
    assert callable(make)
    data = f"some text {make()} more text".encode()
    assert list(iter_formats(data)) == []


def test_a_jwt_header_must_decode_to_a_jose_header() -> None:
    token = jwt()
    rest = token.split(".", 1)[1]
    fake_header = base64.urlsafe_b64encode(b'{"sub": "x", "n": 1}').rstrip(b"=").decode()
    assert list(iter_formats(f"{fake_header}.{rest}".encode())) == []
    assert [m.name for m in iter_formats(token.encode())] == ["jwt"]


def test_an_aws_secret_next_to_its_key_id_is_found_without_a_label() -> None:
    key_id, secret = aws_key_id(), aws_secret()
    header = base64.urlsafe_b64encode(b'{"alg": "HS256", "typ": "JWT"}').decode()  # 40 characters, in a JWT
    names = [m.name for m in iter_formats(f"{key_id} {header}.{header}.{header}".encode())]
    assert "aws-secret-access-key" not in names
    data = f"{key_id},{secret}\n".encode()  # the console's credentials.csv row
    assert sorted(m.name for m in iter_formats(data)) == ["aws-access-key-id", "aws-secret-access-key"]
    far = f"{key_id}{' ' * 400}{secret}".encode()
    assert [m.name for m in iter_formats(far)] == ["aws-access-key-id"]


def test_anthropic_keys_are_not_also_openai_keys() -> None:
    data = ("sk-ant-api03-" + rand(ALNUM, 90)).encode()
    assert [m.name for m in iter_formats(data)] == ["anthropic-api-key"]


def test_a_private_key_block_is_found_whole() -> None:
    block = private_key()
    data = json.dumps({"key": block}).encode()  # escaped newlines inside a JSON string
    (found,) = iter_formats(data)
    assert found.name == "private-key-block"
    assert data[found.start : found.end] == json.dumps(block)[1:-1].encode()


def test_every_pattern_has_anchors_and_a_positive_case() -> None:
    assert {p.name for p in PATTERNS} == {name for name, _, _ in POSITIVES}
    assert all(p.anchors for p in PATTERNS)


def test_find_credentials_gives_sorted_line_numbers() -> None:
    text = "\n".join(["a = 1", f"k = '{aws_key_id()}'", "b = 2", f"t = '{jwt()}' # {generate_key().reveal()}"])
    assert find_credentials(text) == [(2, "aws-access-key-id"), (4, "gatepass-key"), (4, "jwt")]
    assert find_credentials("nothing here\n") == []
