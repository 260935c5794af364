"""The first process of a ``gatepass run --sandbox`` sandbox.

::

    python -I -m gatepass.runner.inside --socket /run/gatepass/gateway.sock --listen 127.0.0.1:8790 -- CMD ...

It listens on the sandbox's own loopback and relays each connection to the gateway through the Unix
socket (the sandbox has no other network), then starts CMD in a process group of its own, passes it
the signals it receives (:data:`~gatepass.runner.supervise.FORWARDED`) and exits with its exit code
(128+N when CMD died of signal N). As the sandbox's PID 1 it also reaps orphaned processes; when it
exits, the kernel ends everything left in the sandbox.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence

from gatepass.runner.relay import serve_tcp_to_unix
from gatepass.runner.supervise import FORWARDED, exit_status, launch_failure, send_to_group

__all__ = ["main"]

#: Reset to their default action in CMD (Python ignores SIGPIPE and SIGXFSZ, and exec keeps what is ignored).
_DEFAULT_IN_CHILD = (*FORWARDED, signal.SIGPIPE, signal.SIGXFSZ, signal.SIGCHLD)


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gatepass.runner.inside", description=__doc__.splitlines()[0])
    parser.add_argument("--socket", required=True, help="the Unix socket that leads to the gateway")
    parser.add_argument("--listen", required=True, metavar="HOST:PORT", help="where to accept the agent's traffic")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ...")
    args = parser.parse_args(argv)
    if args.command[:1] == ["--"]:
        args.command = args.command[1:]
    host, _, port = args.listen.rpartition(":")
    if not args.command or not host or not port.isdigit():
        parser.error("give --listen HOST:PORT and a command after --")
    args.host, args.port = host.strip("[]"), int(port)
    return args


async def _run(socket_path: str, host: str, port: int, command: list[str]) -> int:
    loop = asyncio.get_running_loop()
    try:
        relay = await serve_tcp_to_unix(host, port, socket_path)
    except OSError as exc:
        print(f"gatepass: error: the sandbox cannot listen on {host}:{port} ({exc.strerror})", file=sys.stderr)
        return 1
    exited: asyncio.Future[int] = loop.create_future()
    pid = 0

    def reap() -> None:
        while True:
            try:
                child, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if child == 0:
                return
            if child == pid and not exited.done():
                exited.set_result(os.waitstatus_to_exitcode(status))

    loop.add_signal_handler(signal.SIGCHLD, reap)
    try:
        try:
            pid = os.posix_spawnp(
                command[0], command, os.environ, setpgroup=0, setsigmask=(), setsigdef=_DEFAULT_IN_CHILD
            )
        except OSError as exc:
            code, message = launch_failure(exc, command[0])
            print(f"gatepass: error: {message}", file=sys.stderr)
            return code
        for sig in FORWARDED:
            loop.add_signal_handler(sig, send_to_group, pid, sig)
        return exit_status(await exited)
    finally:
        await relay.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse(argv)
    return asyncio.run(_run(args.socket, args.host, args.port, args.command))


if __name__ == "__main__":
    sys.exit(main())
