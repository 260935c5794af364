"""The public surface is what the package __init__ re-exports; this pins it."""

import gatepass


def test_public_names() -> None:
    assert sorted(gatepass.__all__) == sorted(
        [
            "Decision",
            "Gatepass",
            "GatepassError",
            "Reason",
            "Request",
            "Result",
            "Secret",
            "__version__",
            "decide",
            "init_home",
        ]
    )
    for name in gatepass.__all__:
        assert hasattr(gatepass, name)
