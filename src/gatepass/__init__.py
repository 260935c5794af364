"""gatepass: accounts of their own for AI agents.

The public names are re-exported here; modules underneath are free to change.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("gatepass")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+local"

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
