"""Optional compiled build of gatepass's request path (everything else is in pyproject.toml).

    GATEPASS_COMPILE=1 pip install --no-build-isolation .    # needs mypy, a C compiler and Python's headers

With ``GATEPASS_COMPILE=1`` the modules a gateway request runs through are compiled with mypyc
(https://mypyc.readthedocs.io): about a quarter fewer instructions and 15 % less CPU time per gateway
request (docs/benchmarks.md). The result behaves as the pure-Python package does; CI runs the test
suite on both. Without it (the default, and every editable install) gatepass is pure Python.
"""

import os

from setuptools import Extension, setup

#: The request path: what one gateway request executes, and what those modules import at run time.
#: Modules outside it may import these; these may not subclass a class outside it.
COMPILED = """
    alerts/breaker
    audit/_files audit/log audit/record audit/writer
    dataplane/exchange dataplane/forward dataplane/gateway dataplane/leaks dataplane/metrics dataplane/parts
    dataplane/refusal dataplane/spend dataplane/stages dataplane/state
    dataplane/http/client dataplane/http/connection dataplane/http/messages dataplane/http/reader
    dataplane/http/response dataplane/http/upstream dataplane/http/wire dataplane/http/writer
    credpatterns keyformat model units
    leakguard/literals leakguard/scanner leakguard/stream leakguard/variants
    metering/counters metering/prices metering/ratelimit
    policy/decision
    providers/anthropic providers/base providers/fake providers/http providers/interface providers/openai providers/sse
""".split()


def _extensions() -> list[Extension]:
    if os.environ.get("GATEPASS_COMPILE", "") != "1":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        raise SystemExit(
            "GATEPASS_COMPILE=1 needs mypy in the build environment: "
            "pip install 'mypy>=1.10' 'setuptools>=77', then pip install --no-build-isolation ."
        ) from None
    return mypycify([f"src/gatepass/{name}.py" for name in COMPILED], opt_level="3", debug_level="0")


setup(ext_modules=_extensions())
