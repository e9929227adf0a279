"""A loopback HTTP proxy in front of an MLflow tracking server, which the fault tests take down and bring back.

Down, it is what a stopped server is to its clients: its port refuses connections, and the requests in flight
get no answer (their connections are cut; a request the server already carried out loses only its answer, as
when a server dies just after a write). Up again, it forwards to the same server on the same port, as a server
restarted on its store does. The outage can be set off by a request (the n-th one matching a method and a path
pattern), so that it lands at an exact moment of a sweep, not after a guessed sleep; ``requests`` logs what the
clients asked, and ``down_s`` adds up how long it was down.
"""
from __future__ import annotations

import http.client
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade",
        "content-length"}


class _Drop(Exception):
    """This request gets no answer: the proxy is down."""


class OutageProxy:
    """``OutageProxy(upstream_port)``: ``url`` to give the clients; :meth:`down`, :meth:`up`, :meth:`down_on`."""

    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (host, upstream_port)
        self.host = host
        with socket.socket() as s:
            s.bind((host, 0))
            self.port = s.getsockname()[1]
        self.url = f"http://{host}:{self.port}"
        self.requests: list[tuple[str, str]] = []
        self.outages = 0
        self._lock = threading.Lock()
        self._rules: list[dict] = []
        self._conns: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._is_down = True
        self._down_since: float | None = None
        self._down_total = 0.0
        self.went_down = threading.Event()
        self.up()

    # -- control --------------------------------------------------------------------------------------------
    @property
    def is_down(self) -> bool:
        return self._is_down

    @property
    def down_s(self) -> float:
        """Seconds spent down so far (outages only: not the time before the first :meth:`up`)."""
        with self._lock:
            extra = time.monotonic() - self._down_since if self._is_down and self._down_since else 0.0
            return self._down_total + extra

    def up(self) -> None:
        """Listen again on the same port and forward."""
        with self._lock:
            if not self._is_down:
                return
            server = ThreadingHTTPServer((self.host, self.port), _handler(self), bind_and_activate=False)
            server.handle_error = lambda request, address: None  # a connection cut by an outage is expected
            server.daemon_threads = True
            server.allow_reuse_address = True
            server.server_bind()
            server.server_activate()
            self._server = server
            if self._down_since is not None:
                self._down_total += time.monotonic() - self._down_since
            self._is_down, self._down_since = False, None
            self.went_down.clear()
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def down(self) -> None:
        """Refuse connections and cut the open ones (requests in flight get no answer)."""
        with self._lock:
            if self._is_down:
                return
            self._is_down, self._down_since = True, time.monotonic()
            self.outages += 1
            server, self._server = self._server, None
            conns = list(self._conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if server is not None:
            server.shutdown()  # its loop stops within a poll interval (50 ms); then the port refuses
            server.server_close()
        self.went_down.set()

    def down_on(self, method: str, path: str, nth: int = 1, *, reaches_server: bool = False) -> threading.Event:
        """Go down at the ``nth`` request whose method is ``method`` and whose path matches the regex ``path``.
        That request gets no answer; with ``reaches_server`` the server carries it out first. Returns an event
        set when it happened."""
        fired = threading.Event()
        with self._lock:
            self._rules.append({"method": method, "path": re.compile(path), "left": nth,
                                "reaches": reaches_server, "fired": fired})
        return fired

    def count(self, method: str, path: str) -> int:
        """Requests so far with this method whose path matches the regex ``path``."""
        pattern = re.compile(path)
        with self._lock:
            return sum(1 for m, p in self.requests if m == method and pattern.search(p))

    def close(self) -> None:
        self.down()

    # -- forwarding -----------------------------------------------------------------------------------------
    def _rule_for(self, method: str, path: str) -> dict | None:
        with self._lock:
            self.requests.append((method, path))
            for rule in self._rules:
                if rule["left"] > 0 and rule["method"] == method and rule["path"].search(path):
                    rule["left"] -= 1
                    if rule["left"] == 0:
                        return rule
        return None

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, list, bytes]:
        if self._is_down:
            raise _Drop
        rule = self._rule_for(method, path)
        if rule is not None and not rule["reaches"]:
            self.down()
            rule["fired"].set()
            raise _Drop
        conn = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            conn.request(method, path, body=body or None, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            out = (resp.status, [(k, v) for k, v in resp.getheaders() if k.lower() not in _HOP], data)
        finally:
            conn.close()
        if rule is not None:
            self.down()
            rule["fired"].set()
        if self._is_down:
            raise _Drop
        return out


def _handler(proxy: OutageProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            with proxy._lock:
                proxy._conns.add(self.connection)

        def finish(self) -> None:
            with proxy._lock:
                proxy._conns.discard(self.connection)
            try:
                super().finish()
            except OSError:
                pass

        def log_message(self, *args) -> None:  # quiet
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                parts = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        self.rfile.readline()
                        return b"".join(parts)
                    parts.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _any(self) -> None:
            try:
                body = self._body()
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                if body:
                    headers["Content-Length"] = str(len(body))
                status, out_headers, data = proxy.forward(self.command, self.path, headers, body)
            except (_Drop, OSError, http.client.HTTPException):
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            try:
                self.send_response(status)
                for k, v in out_headers:
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
            except OSError:
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _any

    return Handler
