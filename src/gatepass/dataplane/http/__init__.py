"""The data plane's HTTP/1.1 layer: a server for agents and a pooled client for upstreams.

Built on asyncio Protocols and httptools (llhttp); run it on uvloop (:func:`new_event_loop`).
Server side: :func:`start_server`, :class:`IncomingRequest`, :class:`ResponseWriter`.
Client side: :class:`UpstreamPool`, :class:`Origin`, :class:`UpstreamResponse`.
Tunnels (CONNECT): :func:`connect_address`, :class:`TunnelUpstream`, :class:`TunnelStats`.
"""

from gatepass.dataplane.http.client import Origin, UpstreamPool
from gatepass.dataplane.http.response import UpstreamResponse
from gatepass.dataplane.http.server import (
    ClientDisconnected,
    ErrorBody,
    Handler,
    HttpServer,
    IncomingRequest,
    ResponseWriter,
    ServerLimits,
    new_event_loop,
    start_server,
)
from gatepass.dataplane.http.tunnel import TunnelStats, TunnelUpstream, connect_address

__all__ = [
    "ClientDisconnected",
    "ErrorBody",
    "Handler",
    "HttpServer",
    "IncomingRequest",
    "Origin",
    "ResponseWriter",
    "ServerLimits",
    "TunnelStats",
    "TunnelUpstream",
    "UpstreamPool",
    "UpstreamResponse",
    "connect_address",
    "new_event_loop",
    "start_server",
]
