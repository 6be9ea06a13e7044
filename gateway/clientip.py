"""The client's address: the peer, or ``X-Forwarded-For`` when the peer is a trusted proxy.

``X-Forwarded-For`` is read from the right: each hop appends the address it saw,
so the rightmost address that is not a trusted proxy is the client. Anything a
client wrote further left is ignored, so it cannot be spoofed.

Example::

    ips = TrustedProxies(["10.0.0.0/8"])
    ips.client_ip("10.1.2.3", "203.0.113.9, 10.4.5.6")   # "203.0.113.9"
    ips.client_ip("198.51.100.7", "1.2.3.4")             # "198.51.100.7": peer untrusted
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["TrustedProxies", "peer_address"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    def __init__(self, cidrs: Iterable[str]):
        self._networks: list[Network] = [ipaddress.ip_network(c, strict=False) for c in cidrs]

    def trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self._networks)

    def client_ip(self, peer: str, forwarded_for: str | None) -> str:
        if not forwarded_for or not self.trusted(peer):
            return peer
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        for hop in reversed(hops):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                return peer  # a malformed chain: trust nothing in it
            if not self.trusted(hop):
                return hop
        return hops[0] if hops else peer


def peer_address(grpc_peer: str) -> str:
    """``ipv4:1.2.3.4:5678`` / ``ipv6:[::1]:5678`` / ``unix:...`` -> the address part."""
    kind, _, rest = grpc_peer.partition(":")
    if kind == "ipv4":
        return rest.rpartition(":")[0]
    if kind == "ipv6":
        return rest.rpartition(":")[0].strip("[]").replace("%25", "%")
    return kind  # "unix" (the in-process facade), or unknown
