"""Tools for the security sweep (``test_security.py``): what the tests need that the
shared fixtures do not have.

* :class:`PasswordRedis`: a real ``redis-server`` with ``requirepass``, so its password can be
  searched for in what the gateway emits.
* :class:`SpanLog`: the real OTLP receiver, also keeping every export request whole (span
  names, attributes, events, links, status messages, resources) as JSON text to scan.
* :func:`leaks`: every place a secret shows up, as is or in an obvious encoding.
* :func:`raw_http`: one HTTP/1.1 exchange over a plain socket, bytes in and bytes out, so a
  test can send what no client library would (a CR inside a header value).
* :func:`raw_grpc`: one unary gRPC call over a hand-driven HTTP/2 connection, headers not
  validated, so a test can send metadata grpcio refuses to send.
* :class:`SourceRelay`: a TCP relay whose outgoing connections come from another loopback
  address (127.0.0.2), so the gateway sees a peer other than 127.0.0.1.

Example::

    with SourceRelay(gw.grpc_port) as relay:      # gRPC from 127.0.0.2
        channel = grpc.insecure_channel(relay.target)
"""

from __future__ import annotations

import base64
import socket
import subprocess
import threading
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h2.config
import h2.connection
import h2.events
from google.protobuf import json_format

from tests.fakes.otlp import OtlpReceiver
from tests.servers import RedisServer, _wait_port

__all__ = ["PasswordRedis", "RawGrpc", "RawHttp", "SourceRelay", "SpanLog", "encodings",
           "leaks", "raw_grpc", "raw_http"]


class PasswordRedis(RedisServer):
    """``redis-server`` that demands a password (``requirepass``); :attr:`url` carries it."""

    def __init__(self, workdir: Path, password: str):
        super().__init__(workdir)
        self.password = password

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@127.0.0.1:{self.port}/0"

    def start(self) -> PasswordRedis:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.workdir), "--requirepass", self.password],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_port(self.port)
        return self


class SpanLog(OtlpReceiver):
    """An OTLP receiver that also keeps each export request whole, as JSON text."""

    def __init__(self) -> None:
        super().__init__()
        self.exports: list[str] = []

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC method name
        text = json_format.MessageToJson(request, preserving_proto_field_name=True)
        with self._lock:
            self.exports.append(text)
            # The protobuf bytes too: a string field appears in them verbatim.
            self.exports.append(request.SerializeToString().decode("latin-1"))
        return super().Export(request, context)


def encodings(secret: str) -> dict[str, str]:
    """``secret`` as is and in the encodings a careless log line or header might use:
    URL-encoded, and base64 (standard and URL-safe) at each of the three alignments it can
    have inside a longer base64 text (e.g. ``Basic base64(user:secret)``)."""
    raw = secret.encode()
    found = {"as is": secret, "url-encoded": urllib.parse.quote(secret, safe=""),
             "form-encoded": urllib.parse.quote_plus(secret)}
    for shift in range(3):
        for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            text = encode(b"\0" * shift + raw).decode().rstrip("=")
            # Drop the characters that mix in the neighbours' bits: the first group when
            # shifted, and the last one or two characters.
            core = text[4:] if shift else text
            core = core[:-(len(core) % 4 or 4)] if len(core) > 8 else core
            found[f"{name}+{shift}"] = core
    unique: dict[str, str] = {}
    for name, value in found.items():
        if len(value) >= 8 and value not in unique.values():
            unique[name] = value
    return unique


def leaks(secrets: Mapping[str, str], places: Mapping[str, Iterable[str]]) -> list[str]:
    """``"<secret> (<encoding>) in <place>"`` for every hit; empty when nothing leaked."""
    hits = []
    variants = {name: encodings(value) for name, value in secrets.items()}
    for place, texts in places.items():
        for text in texts:
            for name, forms in variants.items():
                for form, needle in forms.items():
                    if needle in text:
                        hits.append(f"{name} ({form}) in {place}: "
                                    f"...{_around(text, needle)}...")
    return sorted(set(hits))


def _around(text: str, needle: str, width: int = 60) -> str:
    at = text.find(needle)
    return text[max(0, at - width):at + len(needle) + width].replace("\n", "\\n")


# --- raw HTTP/1.1 ----------------------------------------------------------------------------


@dataclass
class RawHttp:
    status: int  # 0: the connection closed without an answer
    head: bytes  # the status line and header lines, as sent
    body: bytes

    def header_lines(self) -> list[bytes]:
        return self.head.split(b"\r\n")[1:]

    def header(self, name: str) -> str | None:
        prefix = name.lower().encode() + b":"
        for line in self.header_lines():
            if line.lower().startswith(prefix):
                return line[len(prefix):].strip().decode("latin-1")
        return None


def raw_http(port: int, request: bytes, *, timeout: float = 10) -> RawHttp:
    """Send ``request`` as is; read until the server closes (send ``Connection: close``)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        received = bytearray()
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            pass
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    return RawHttp(status, head, body)


def http_request(method: str, path: str, headers: Iterable[tuple[bytes, bytes]],
                 body: bytes = b"") -> bytes:
    """A request with ``headers`` written exactly as given (no validation, no folding)."""
    lines = [f"{method} {path} HTTP/1.1".encode(), b"Host: 127.0.0.1", b"Connection: close",
             b"Content-Length: " + str(len(body)).encode()]
    if body:
        lines.append(b"Content-Type: application/json")
    lines += [name + b": " + value for name, value in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


# --- raw gRPC over HTTP/2 --------------------------------------------------------------------


@dataclass
class RawGrpc:
    """What came back for one hand-made gRPC call."""

    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    data: bytes = b""
    reset: int | None = None  # RST_STREAM error code
    goaway: int | None = None  # GOAWAY error code
    closed: bool = False  # the connection closed before the stream ended

    def metadata(self, name: str) -> str | None:
        key = name.encode()
        for k, v in [*self.headers, *self.trailers]:
            if k == key:
                return v.decode("latin-1")
        return None

    @property
    def grpc_status(self) -> int | None:
        value = self.metadata("grpc-status")
        return int(value) if value is not None else None

    def everything(self) -> bytes:
        return b"\n".join(k + b": " + v for k, v in [*self.headers, *self.trailers])


def raw_grpc(port: int, path: str, message: bytes,
             metadata: Iterable[tuple[bytes, bytes]], *, timeout: float = 10) -> RawGrpc:
    """One unary call; ``metadata`` goes on the wire unvalidated (CR, LF, NUL, non-ASCII)."""
    config = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                       validate_outbound_headers=False,
                                       normalize_outbound_headers=False,
                                       validate_inbound_headers=False)
    conn = h2.connection.H2Connection(config=config)
    out = RawGrpc()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        conn.initiate_connection()
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [
            (b":method", b"POST"), (b":scheme", b"http"), (b":path", path.encode()),
            (b":authority", f"127.0.0.1:{port}".encode()), (b"content-type", b"application/grpc"),
            (b"te", b"trailers"), *metadata])
        conn.send_data(sid, b"\0" + len(message).to_bytes(4, "big") + message, end_stream=True)
        sock.sendall(conn.data_to_send())
        ended = False
        while not ended:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                chunk = b""
            if not chunk:
                out.closed = True
                break
            for event in conn.receive_data(chunk):
                if isinstance(event, h2.events.ResponseReceived):
                    out.headers += [(bytes(k), bytes(v)) for k, v in event.headers]
                elif isinstance(event, h2.events.TrailersReceived):
                    out.trailers += [(bytes(k), bytes(v)) for k, v in event.headers]
                elif isinstance(event, h2.events.DataReceived):
                    out.data += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamReset):
                    out.reset, ended = int(event.error_code or 0), True
                elif isinstance(event, h2.events.StreamEnded):
                    ended = True
                elif isinstance(event, h2.events.ConnectionTerminated):
                    out.goaway, ended = int(event.error_code or 0), True
            pending = conn.data_to_send()
            if pending:
                sock.sendall(pending)
    return out


# --- a relay from another loopback address ---------------------------------------------------


class SourceRelay:
    """Listens on 127.0.0.1 (:attr:`target`); each connection is relayed to 127.0.0.1:``port``
    from ``source``, so that the gateway's peer is ``source``."""

    def __init__(self, port: int, source: str = "127.0.0.2"):
        self._port = port
        self._source = source
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.target = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def __enter__(self) -> SourceRelay:
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() in its thread
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
        for thread in self._threads:
            thread.join(5)

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        with self._lock:
            self._threads.append(thread)
        thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._port),
                                                source_address=(self._source, 0))
            with self._lock:
                self._sockets += [client, upstream]
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass
