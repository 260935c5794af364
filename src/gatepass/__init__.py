"""gatepass: accounts of their own for AI agents.

The public names are re-exported here (loaded on first use, so that ``import gatepass`` stays
light); modules underneath are free to change.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gatepass.control.app import Gatepass, init_home
    from gatepass.errors import GatepassError
    from gatepass.policy.decision import Decision, Reason, Request, Result, decide
    from gatepass.sensitive import Secret

__all__ = [
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

_LAZY = {
    "Gatepass": "gatepass.control.app",
    "init_home": "gatepass.control.app",
    "GatepassError": "gatepass.errors",
    "Decision": "gatepass.policy.decision",
    "Reason": "gatepass.policy.decision",
    "Request": "gatepass.policy.decision",
    "Result": "gatepass.policy.decision",
    "decide": "gatepass.policy.decision",
    "Secret": "gatepass.sensitive",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("gatepass")
        except PackageNotFoundError:  # pragma: no cover - running from a source tree
            return "0.0.0+local"
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gatepass' has no attribute {name!r}")
    return getattr(import_module(module), name)
