"""Child supervision: the signals passed on to the agent, the grace period, and the exit code.

:class:`Signals` holds the forwarded signals (:data:`FORWARDED`) for a whole run, from before the
key is issued until after it is revoked, so that a SIGTERM at any moment ends the run through its
cleanup instead of killing gatepass on the spot. While a child runs, each signal is passed on to it;
a stop signal (:data:`STOPPING`) also starts the grace period, after which the child is killed with
SIGKILL. Before a child runs, a stop signal is remembered and the child is not started.

The child runs in a session of its own: a terminal's Ctrl-C reaches gatepass, which passes it on
once, and the agent cannot push keystrokes into the owner's terminal (TIOCSTI needs a controlling
terminal). SIGKILL of gatepass itself cannot be caught: the key's TTL bounds what the agent can do then.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from types import FrameType, TracebackType
from typing import Any, Final

__all__ = [
    "FORWARDED",
    "STOPPING",
    "Signals",
    "exit_status",
    "launch_failure",
    "protect_process",
    "send_to_group",
    "start_process",
    "supervise",
]

#: Signals passed on to the child.
FORWARDED: Final = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
)
#: Those that ask gatepass run to stop: the child gets them, then ``grace_seconds`` before SIGKILL.
STOPPING: Final = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT})

_PR_SET_DUMPABLE: Final = 4
_Handler = Callable[[int, FrameType | None], Any] | int | None


def protect_process() -> None:
    """Make this process non-dumpable (Linux): a child running as the same user can then read neither
    its environment (``/proc/PID/environ``, the owner's) nor its memory (the vault, with an own gateway)."""
    if sys.platform != "linux":
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def exit_status(returncode: int) -> int:
    """A process's exit code as a shell reports it: the code, or 128+N after signal N."""
    return 128 - returncode if returncode < 0 else returncode


def launch_failure(exc: OSError, program: str) -> tuple[int, str]:
    """The exit code (127 not found, 126 not executable) and one line for a command that could not start."""
    if isinstance(exc, FileNotFoundError):
        return 127, f"command not found: {program}: check its name, or give its path"
    return 126, f"cannot execute {program} ({exc.strerror or exc.__class__.__name__}): check that it is a program"


def send_to_group(pgid: int, sig: int) -> None:
    """Signal a process group; one that is already gone is not an error."""
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


class Signals:
    """Catches :data:`FORWARDED` for the duration of a ``with`` block and passes them to the attached child.

    Outside an event loop a signal is only remembered; within :meth:`on_loop` it is handled by the
    loop (which wakes at once) and passed to the child once one is :meth:`attach`-ed.
    """

    def __init__(self, grace: float) -> None:
        self.grace = grace
        #: The first stop signal received, if any.
        self.stop_signal: int | None = None
        #: True once the child was killed for outliving the grace period.
        self.killed = False
        self._saved: dict[int, _Handler] = {}
        self._pending: list[int] = []
        self._send: Callable[[int], None] | None = None
        self._kill: Callable[[], None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def __enter__(self) -> Signals:
        for sig in FORWARDED:
            self._saved[sig] = signal.signal(sig, self._remember)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        for sig, handler in self._saved.items():
            signal.signal(sig, handler)
        self._saved.clear()

    @contextlib.contextmanager
    def on_loop(self, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
        """Handle the signals on ``loop`` (running in this, the main, thread) while the block lasts."""
        for sig in FORWARDED:
            loop.add_signal_handler(sig, self._received, sig)
        try:
            yield
        finally:
            self.detach()
            # Held back while the handlers change hands, so that none falls into the default action.
            signal.pthread_sigmask(signal.SIG_BLOCK, FORWARDED)
            try:
                for sig in FORWARDED:
                    loop.remove_signal_handler(sig)
                    signal.signal(sig, self._remember)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, FORWARDED)

    def attach(self, send: Callable[[int], None], kill: Callable[[], None]) -> None:
        """From now on signals go to ``send``; ``kill`` ends the child after the grace period.

        Signals that arrived before (stop signals only) are passed on at once."""
        self._send, self._kill = send, kill
        pending, self._pending = self._pending, []
        for sig in pending:
            self._forward(sig)

    def detach(self) -> None:
        """The child is gone: stop forwarding and cancel the grace period."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._send = self._kill = None

    def _remember(self, sig: int, _frame: FrameType | None) -> None:
        if sig in STOPPING and self.stop_signal is None:
            self.stop_signal = sig

    def _received(self, sig: int) -> None:
        self._remember(sig, None)
        if self._send is not None:
            self._forward(sig)
        elif sig in STOPPING:
            self._pending.append(sig)

    def _forward(self, sig: int) -> None:
        assert self._send is not None
        self._send(sig)
        if sig in STOPPING and self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.grace, self._expire)

    def _expire(self) -> None:
        if self._kill is not None:
            self.killed = True
            self._kill()


async def start_process(
    command: Sequence[str], *, env: dict[str, str], cwd: str, pass_fds: Sequence[int] = ()
) -> asyncio.subprocess.Process:
    """Start ``command`` in a session of its own, with the standard streams of gatepass run."""
    return await asyncio.create_subprocess_exec(
        *command, env=env, cwd=cwd, start_new_session=True, pass_fds=tuple(pass_fds)
    )


async def supervise(
    process: asyncio.subprocess.Process, signals: Signals, send: Callable[[int], None] | None = None
) -> int:
    """Pass signals to the process (by default to its process group) until it exits; its exit status."""
    signals.attach(
        send or (lambda sig: send_to_group(process.pid, sig)), lambda: send_to_group(process.pid, signal.SIGKILL)
    )
    try:
        return exit_status(await process.wait())
    finally:
        signals.detach()
