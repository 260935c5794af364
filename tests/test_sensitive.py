import pickle

import pytest

from gatepass.sensitive import Secret


def test_secret_never_prints_its_value() -> None:
    value = "FAKE-value-that-must-not-print"
    secret = Secret(value)
    for shown in (
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r}",
        f"{secret:>40}",
        str([secret]),
        str({"k": secret}),
    ):
        assert value not in shown
    assert secret.reveal() == value


def test_secret_is_not_hashable_or_picklable() -> None:
    secret = Secret("FAKE-x")
    with pytest.raises(TypeError):
        hash(secret)
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_secret_equality_and_type() -> None:
    assert Secret("a") == Secret("a")
    assert Secret("a") != Secret("b")
    with pytest.raises(TypeError):
        Secret(b"bytes")  # type: ignore[arg-type]
