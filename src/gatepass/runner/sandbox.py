"""``gatepass run --sandbox``: the agent in a bubblewrap sandbox whose only way out is the gateway.

The sandbox (Linux, ``bwrap``) has:

- new user, PID, IPC, UTS, cgroup and **network** namespaces: loopback only, so the agent can reach
  neither the internet nor the host's loopback services except through the gateway. Its
  ``127.0.0.1:8790`` is :mod:`gatepass.runner.inside`, which relays to a Unix socket in a private
  folder of the host, where :func:`run_sandboxed` relays to the gateway's TCP address;
- the host's file system read-only, the working folder read-write, a private ``/tmp`` and ``/run``
  (no host sockets: ssh-agent, D-Bus, Docker), a minimal ``/dev`` and a ``/proc`` of its own;
- the owner's credential files hidden (:data:`CREDENTIAL_PATHS` under ``$HOME``, ``[run] hide`` in
  config.toml, the gatepass home and store, and ``.env`` / ``.env.*`` / ``.envrc`` files in the working
  folder's tree, found by a bounded walk): folders become an empty tmpfs, files an empty read-only file;
- no capabilities, a session of its own (``--new-session``), death with its parent (``--die-with-parent``),
  and exactly the environment :mod:`gatepass.runner.environment` built (``--clearenv``).

Options that hold secrets (the environment) reach bwrap through a memfd (``--args``), never its
command line, which every local user can read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import gatepass
from gatepass.errors import GatepassError
from gatepass.runner.environment import Endpoint
from gatepass.runner.relay import serve_unix_to_tcp
from gatepass.runner.supervise import STOPPING, Signals, send_to_group, start_process, supervise

__all__ = [
    "CREDENTIAL_PATHS",
    "INSIDE",
    "Sandbox",
    "env_files",
    "find_bwrap",
    "hidden_paths",
    "run_sandboxed",
]

#: Where the agent reaches the gateway inside the sandbox.
INSIDE: Final = Endpoint("127.0.0.1", 8790)
_SOCKET_DIR: Final = "/run/gatepass"
_SOCKET_NAME: Final = "gateway.sock"

#: Credential files and folders under ``$HOME`` that the sandbox hides.
CREDENTIAL_PATHS: Final = (
    ".ssh",
    ".aws",
    ".config/gcloud",
    ".azure",
    ".kube",
    ".docker/config.json",
    ".netrc",
    ".pgpass",
    ".git-credentials",
    ".config/gh",
    ".gnupg",
    ".npmrc",
    ".pypirc",
    ".vault-token",
)
_SKIP_DIRS: Final = frozenset({".git", ".hg", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache", ".tox"})
#: The walk for ``.env`` files stops this deep, or after this many entries (and then refuses: fail closed).
MAX_DEPTH: Final = 8
MAX_ENTRIES: Final = 50_000
_INSTALL: Final = "install bubblewrap (apt-get install bubblewrap, or dnf install bubblewrap)"
#: Replaced by the sandbox's own: nothing under them needs hiding (but what is in the working folder).
_REPLACED: Final = (Path("/tmp"), Path("/run"), Path("/dev"), Path("/proc"))  # noqa: S108


def find_bwrap(search_path: str | None) -> str:
    """The bwrap program on ``search_path``, proven able to make namespaces here; else a one-line error."""
    found = shutil.which("bwrap", path=search_path)
    if found is None:
        raise GatepassError(f"--sandbox needs bubblewrap (bwrap), which is not on PATH: {_INSTALL}")
    try:
        probe = subprocess.run(  # noqa: S603 - fixed arguments
            [found, "--unshare-all", "--ro-bind", "/", "/", "--", "true"],
            env={"PATH": "/usr/bin:/bin"},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GatepassError(f"{found} does not run ({exc.__class__.__name__}): {_INSTALL}") from None
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or ["no message"])[-1]
        raise GatepassError(
            f"{found} cannot create namespaces here ({why}): allow unprivileged user namespaces "
            "(e.g. sysctl kernel.unprivileged_userns_clone=1) or run without --sandbox"
        )
    return found


def env_files(root: Path, *, max_depth: int = MAX_DEPTH, max_entries: int = MAX_ENTRIES) -> list[Path]:
    """``.env``, ``.env.*`` and ``.envrc`` files under ``root`` (not following symlinked folders)."""
    found: list[Path] = []
    seen = 0
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue  # unreadable for the owner: unreadable for the agent too
        for entry in entries:
            seen += 1
            if seen > max_entries:
                raise GatepassError(
                    f"{root} holds more than {max_entries} files to check for .env files: "
                    "run the agent from its own project folder"
                )
            name = entry.name
            if entry.is_dir(follow_symlinks=False):
                if name not in _SKIP_DIRS and depth + 1 < max_depth:
                    stack.append((Path(entry.path), depth + 1))
            elif name in (".env", ".envrc") or name.startswith(".env."):
                found.append(Path(entry.path))
    return sorted(found)


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def hidden_paths(
    *, cwd: Path, home: Path | None, private: Iterable[Path], extra: Iterable[str] = ()
) -> tuple[Path, ...]:
    """What the sandbox hides, resolved: ``private`` (gatepass's home and store), :data:`CREDENTIAL_PATHS`
    under ``home``, ``extra`` (``[run] hide``: absolute, or ``~/...`` under ``home``) and the working
    folder's ``.env`` files.

    Paths that do not exist are left out, and so are those the sandbox replaces anyway (under ``/tmp``,
    ``/run``...) unless they are in the working folder. A working folder inside a hidden path is refused.
    """
    if cwd == Path("/"):
        raise GatepassError("--sandbox would make / writable: run the agent from its own project folder")
    wanted = list(private)
    if home is not None:
        wanted += [home / rel for rel in CREDENTIAL_PATHS]
    for item in extra:
        path = Path(item.removeprefix("~/"))
        wanted.append(path if path.is_absolute() else (home or Path.home()) / path)
    hidden: dict[Path, None] = {}
    for path in [*wanted, *env_files(cwd)]:
        if not os.path.lexists(path):
            continue
        real = path.resolve()
        if _under(cwd, real):
            raise GatepassError(
                f"the working folder {cwd} is inside {real}, which the sandbox hides: "
                "run the agent from its own project folder"
            )
        if _under(real, cwd) or not any(_under(real, root) for root in _REPLACED):
            hidden[real] = None
    return _outermost(hidden)


def _outermost(paths: Iterable[Path]) -> tuple[Path, ...]:
    """The paths without those inside another one (hiding the folder hides them)."""
    kept: list[Path] = []
    for path in sorted(paths):
        if not any(_under(path, parent) for parent in kept):
            kept.append(path)
    return tuple(kept)


def runtime_paths() -> tuple[Path, ...]:
    """Where the interpreter and gatepass itself come from, when the sandbox's private /tmp or /run
    would hide them (a checkout or virtual environment under /tmp): shown again, read-only."""
    found = [Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent]
    found.append(Path(gatepass.__file__).resolve().parent.parent)
    private = (Path("/tmp"), Path("/run"))  # noqa: S108
    return _outermost(p.resolve() for p in found if any(_under(p.resolve(), top) for top in private))


@dataclass(frozen=True, slots=True)
class Sandbox:
    """What a sandboxed run looks like: the bwrap program, the working folder and what is hidden."""

    bwrap: str
    cwd: Path
    hidden: tuple[Path, ...]

    @classmethod
    def prepare(
        cls,
        *,
        search_path: str | None,
        cwd: Path,
        home: Path | None,
        private: Iterable[Path],
        extra: Iterable[str] = (),
    ) -> Sandbox:
        """Check bwrap and list what to hide (see :func:`hidden_paths`)."""
        bwrap = find_bwrap(search_path)
        cwd = cwd.resolve()
        return cls(bwrap, cwd, hidden_paths(cwd=cwd, home=home, private=private, extra=extra))

    def options(self, private: Path, env: Mapping[str, str]) -> list[str]:
        """bwrap's options (for ``--args``: they hold the environment). ``private`` is the run's private
        folder on the host: ``sock/`` (the relay's socket) and ``empty`` (what hidden files show)."""
        options = ["--unshare-all", "--die-with-parent", "--new-session", "--as-pid-1"]
        if os.geteuid() == 0:
            options += ["--cap-drop", "ALL"]  # root keeps its capabilities in the sandbox unless told
        options += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp", "--tmpfs", "/run"]  # noqa: S108
        for path in runtime_paths():
            options += ["--ro-bind", str(path), str(path)]  # the relay's Python, if /tmp or /run hid it
        options += ["--ro-bind", str(private / "sock"), _SOCKET_DIR, "--bind", str(self.cwd), str(self.cwd)]
        for path in self.hidden:
            if path.is_dir():
                options += ["--tmpfs", str(path)]
            else:
                options += ["--ro-bind", str(private / "empty"), str(path)]
        options += ["--chdir", str(self.cwd), "--clearenv"]
        for name, value in env.items():
            options += ["--setenv", name, value]
        return options

    def command(self, args_fd: int, info_fd: int, command: Sequence[str]) -> list[str]:
        """The bwrap command line (no secret in it): options from ``args_fd``, the sandbox pid to ``info_fd``."""
        socket = f"{_SOCKET_DIR}/{_SOCKET_NAME}"
        inside = [sys.executable, "-I", "-m", "gatepass.runner.inside", "--socket", socket, "--listen", INSIDE.netloc]
        return [self.bwrap, "--args", str(args_fd), "--info-fd", str(info_fd), "--", *inside, "--", *command]


def _args_fd(options: Sequence[str]) -> int:
    fd = os.memfd_create("gatepass-run-options")
    os.write(fd, b"".join(option.encode() + b"\0" for option in options))
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


async def run_sandboxed(
    sandbox: Sandbox, command: Sequence[str], *, env: Mapping[str, str], gateway: Endpoint, signals: Signals
) -> int:
    """Run ``command`` in the sandbox with ``env`` (whose URLs point at :data:`INSIDE`); its exit status."""
    private = Path(tempfile.mkdtemp(prefix="gatepass-run-"))
    try:
        (private / "sock").mkdir(mode=0o700)
        (private / "empty").touch(mode=0o400)
        relay = await serve_unix_to_tcp(str(private / "sock" / _SOCKET_NAME), gateway.host, gateway.port)
        try:
            return await _bwrap(sandbox, command, sandbox.options(private, env), signals)
        finally:
            await relay.close()
    finally:
        shutil.rmtree(private, ignore_errors=True)


async def _bwrap(sandbox: Sandbox, command: Sequence[str], options: Sequence[str], signals: Signals) -> int:
    args_fd = _args_fd(options)
    info_read, info_write = os.pipe()
    try:
        process = await start_process(
            sandbox.command(args_fd, info_write, command), env={}, cwd=str(sandbox.cwd), pass_fds=(args_fd, info_write)
        )
    except BaseException:
        os.close(info_read)
        raise
    finally:
        os.close(args_fd)
        os.close(info_write)
    inner: list[int] = []  # the sandbox's first process, as the host sees it, once bwrap has said

    def send(sig: int) -> None:
        if inner:
            with contextlib.suppress(ProcessLookupError):
                os.kill(inner[0], sig)
        elif sig in STOPPING:
            send_to_group(process.pid, signal.SIGKILL)  # still being set up: nothing of the agent's runs yet

    waiting = asyncio.ensure_future(supervise(process, signals, send))
    try:
        info = await asyncio.to_thread(_read_all, info_read)  # bwrap closes it once the sandbox runs, or fails
        if info:
            inner.append(int(json.loads(info)["child-pid"]))
        status = await waiting
    finally:
        os.close(info_read)
        if not waiting.done():  # gatepass failed while the sandbox runs: end it
            send_to_group(process.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await waiting
    if not inner and signals.stop_signal is None:
        raise GatepassError("the sandbox could not be set up (see bwrap's message above); nothing ran")
    return status
