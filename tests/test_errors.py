import pytest

import gatepass.errors as errors


def test_one_root_and_exit_codes() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, errors.GatepassError)
    assert errors.InvalidInputError("x").exit_code == 2
    assert errors.NotFoundError("x").exit_code == 1
    assert issubclass(errors.MasterKeyError, errors.VaultError)
    assert issubclass(errors.StoreLockedError, errors.StoreError)


def test_messages_are_always_one_line() -> None:
    error = errors.ConfigError("first line\nsecond   line\n")
    assert error.message == "first line second line"


def test_authentication_error_carries_a_reason() -> None:
    with pytest.raises(errors.AuthenticationError) as info:
        raise errors.AuthenticationError("bad key", reason="key_malformed")
    assert info.value.reason == "key_malformed"
