"""Tests mirror the source tree: each module of the package has a test file of its own."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "gatepass"

# Modules covered through their package's tests rather than a file of their own.
COVERED_ELSEWHERE = {
    "__init__.py",
    "__main__.py",
    "py.typed",
    "cli/common.py",
    "cli/output.py",  # every CLI test goes through them
    "cli/main.py",  # test_help.py and every CLI test
    "cli/vault.py",  # tests/cli/test_secrets.py
    "control/agents.py",
    "control/grants.py",
    "control/upstreams.py",
    "control/credentials.py",  # tests/cli
    "control/alerts.py",  # tests/cli/test_alerts.py
    "store/interface.py",
    "store/schema.py",  # tests/store/test_sql.py
    "store/migrations/env.py",
    "tomlfile.py",  # tests/policy/test_document.py and tests/test_config.py
    "audit/_files.py",  # tests/audit/test_log.py and test_reader.py
    "model.py",
    "dataplane/exchange.py",  # the Exchange travels every tests/dataplane/test_gateway_*.py request
    "control/serve.py",
    "control/adminapi.py",
    "control/runtime.py",  # tests/cli/test_gateway.py runs them
}


def test_every_module_has_a_test_file() -> None:
    missing = []
    for module in sorted(SRC.rglob("*.py")):
        rel = module.relative_to(SRC).as_posix()
        if rel in COVERED_ELSEWHERE or rel.endswith("__init__.py") or "/versions/" in rel:
            continue
        folder = ROOT / "tests" / Path(rel).parent
        test = folder / f"test_{module.name}"
        # test_<module>.py, or a family test_<module>_*.py (e.g. test_gateway_sdks.py for gateway.py)
        if not test.exists() and not list(folder.glob(f"test_{module.stem}_*.py")):
            missing.append(f"{rel} -> {test.relative_to(ROOT)}")
    assert not missing, "modules without a test file:\n" + "\n".join(missing)


def test_exceptions_for_the_layout_rule_still_exist() -> None:
    for rel in COVERED_ELSEWHERE:
        if rel not in ("__init__.py", "__main__.py", "py.typed"):
            assert (SRC / rel).exists(), f"{rel} is listed in COVERED_ELSEWHERE but does not exist"
