"""Where a running gateway says it is: ``gateway.json`` and ``admin.token`` in the home.

The CLI reads them to reach the gateway's control plane: to tell it at once about a change it
just committed, and to show its live spend figures.
"""

from __future__ import annotations

import json
import os
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from gatepass.home import Home
from gatepass.sensitive import Secret

__all__ = [
    "GatewayInfo",
    "admin_token",
    "call_gateway",
    "read_gateway_info",
    "remove_gateway_info",
    "webhook_secret",
    "write_gateway_info",
]

_INFO = "gateway.json"
_TOKEN = "admin.token"


@dataclass(frozen=True, slots=True)
class GatewayInfo:
    pid: int
    listen: str
    admin_url: str
    started_at: str


def admin_token(home: Home, *, create: bool = False) -> Secret | None:
    path = home.path / _TOKEN
    try:
        return Secret(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        if not create:
            return None
    token = "gpadm_" + secrets.token_urlsafe(32)
    home.write_private(path, (token + "\n").encode())
    return Secret(token)


def webhook_secret(home: Home) -> Secret:
    """The key that signs alert webhooks, made on first use (``webhook.secret`` in the home)."""
    path = home.path / "webhook.secret"
    try:
        return Secret(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        value = "whsec_" + secrets.token_urlsafe(32)
        home.write_private(path, (value + "\n").encode())
        return Secret(value)


def write_gateway_info(home: Home, info: GatewayInfo) -> None:
    path = home.path / _INFO
    path.unlink(missing_ok=True)
    data = {"pid": info.pid, "listen": info.listen, "admin_url": info.admin_url, "started_at": info.started_at}
    home.write_private(path, json.dumps(data).encode())


def remove_gateway_info(home: Home) -> None:
    (home.path / _INFO).unlink(missing_ok=True)


def read_gateway_info(home: Home) -> GatewayInfo | None:
    """The running gateway of this home, or None (no file, or its process is gone)."""
    try:
        data = json.loads((home.path / _INFO).read_text(encoding="utf-8"))
        info = GatewayInfo(int(data["pid"]), str(data["listen"]), str(data["admin_url"]), str(data["started_at"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    try:
        os.kill(info.pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return info


def call_gateway(home: Home, method: str, path: str, *, timeout: float = 2.0) -> Any | None:
    """Call the running gateway's admin API; None when no gateway runs or it does not answer."""
    info = read_gateway_info(home)
    token = admin_token(home)
    if info is None or token is None:
        return None
    url = info.admin_url + path
    if not url.startswith("http://"):
        return None
    request = urllib.request.Request(url, method=method, headers={"authorization": f"Bearer {token.reveal()}"})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - loopback admin URL
            return json.loads(response.read() or b"null")
    except (urllib.error.URLError, OSError, ValueError):
        return None
