"""A TCP proxy in front of PostgreSQL that loses the replies to chosen statements.

Each client connection is relayed to the server by two threads. The client-to-server side
reads the protocol's messages (startup, then typed messages), so it knows which SQL each
simple query (``Q``) or bound statement (``B``, through the ``P`` that prepared it) runs.
When an armed rule matches that SQL, the statement still goes to the server and runs (and
commits, for ``COMMIT`` or an autocommit statement), but nothing the server sends from then
on reaches the client: at the server's next ``ReadyForQuery`` both sockets are closed. The
client sees its connection lost without a reply, exactly the case of a reply lost on the
network after the server committed.

Connections must not negotiate TLS or GSS encryption (``sslmode=disable``,
``gssencmode=disable``: see :meth:`PgFaultProxy.url`).
"""

from __future__ import annotations

import contextlib
import random
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.engine import URL

Matcher = Callable[[str], bool]


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    chunks, left = [], size
    while left:
        try:
            chunk = sock.recv(left)
        except OSError:
            return None
        if not chunk:
            return None
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _cstrings(body: bytes, count: int) -> list[str]:
    parts = body.split(b"\x00", count)
    return [part.decode("utf-8", "replace") for part in parts[:count]]


@dataclass
class _Rule:
    matches: Matcher
    remaining: int | None
    """How many more statements this rule loses the reply of (None: no limit)."""
    probability: float = 1.0
    rng: random.Random = field(default_factory=random.Random)


class _Link:
    """One client connection and its server connection."""

    def __init__(self, proxy: PgFaultProxy, client: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.server = socket.create_connection(proxy.upstream)
        for sock in (client, self.server):  # relay each message at once (no Nagle delay)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.doomed = False
        self.statements: dict[str, str] = {}
        self._closed = threading.Event()
        for target in (self._client_to_server, self._server_to_client):
            threading.Thread(target=target, daemon=True).start()

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.proxy.forget(self)

    def _client_to_server(self) -> None:
        try:
            header = _read_exactly(self.client, 4)  # the startup packet has no type byte
            if header is None:
                return
            (length,) = struct.unpack("!I", header)
            rest = _read_exactly(self.client, length - 4)
            if rest is None:
                return
            self.server.sendall(header + rest)
            while True:
                head = _read_exactly(self.client, 5)
                if head is None:
                    return
                kind, length = head[:1], struct.unpack("!I", head[1:])[0]
                body = _read_exactly(self.client, length - 4)
                if body is None:
                    return
                sql = self._sql_of(kind, body)
                if sql is not None and self.proxy.should_lose(sql):
                    self.doomed = True
                self.server.sendall(head + body)
        except OSError:
            pass
        finally:
            self.close()

    def _sql_of(self, kind: bytes, body: bytes) -> str | None:
        if kind == b"Q":
            return _cstrings(body, 1)[0]
        if kind == b"P":
            name, query = _cstrings(body, 2)
            self.statements[name] = query
        elif kind == b"B":
            _portal, name = _cstrings(body, 2)
            return self.statements.get(name, "")
        return None

    def _server_to_client(self) -> None:
        try:
            while True:
                head = _read_exactly(self.server, 5)
                if head is None:
                    return
                length = struct.unpack("!I", head[1:])[0]
                body = _read_exactly(self.server, length - 4)
                if body is None:
                    return
                if self.doomed:
                    if head[:1] == b"Z":  # the statement is done (committed, if it commits)
                        self.proxy.count_lost()
                        return
                    continue
                self.client.sendall(head + body)
        except OSError:
            pass
        finally:
            self.close()


class PgFaultProxy:
    """Listens on 127.0.0.1 (a free port) and relays to ``upstream``; see the module doc."""

    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.upstream = upstream
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._rules: list[_Rule] = []
        self._links: set[_Link] = set()
        self.lost = 0
        """Replies lost so far."""
        self.refusing = False
        """While true, new connections are closed at once (the database is unreachable)."""
        self.refuse_after_loss = False
        """Set :attr:`refusing` as soon as a reply is lost."""
        self._running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, url: URL) -> URL:
        """``url`` pointed at the proxy, without TLS or GSS encryption."""
        query = {**url.query, "sslmode": "disable", "gssencmode": "disable"}
        return url.set(host="127.0.0.1", port=self.port, query=query)

    def lose_replies(
        self, matches: Matcher, times: int | None = 1, probability: float = 1.0, seed: int = 0
    ) -> None:
        """Lose the replies of the next ``times`` statements whose SQL ``matches`` (each with
        ``probability``; ``times=None``: no limit)."""
        with self._lock:
            self._rules.append(_Rule(matches, times, probability, random.Random(seed)))

    def stop_losing(self) -> None:
        with self._lock:
            self._rules.clear()

    def should_lose(self, sql: str) -> bool:
        with self._lock:
            for rule in self._rules:
                if rule.remaining == 0 or not rule.matches(sql):
                    continue
                if rule.rng.random() >= rule.probability:
                    return False
                if rule.remaining is not None:
                    rule.remaining -= 1
                return True
        return False

    def count_lost(self) -> None:
        with self._lock:
            self.lost += 1
            if self.refuse_after_loss:
                self.refusing = True

    def forget(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)

    def _accept(self) -> None:
        while self._running:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.refusing:
                client.close()
                continue
            try:
                link = _Link(self, client)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._links.add(link)

    def close(self) -> None:
        self._running = False
        self._listener.close()
        with self._lock:
            links = list(self._links)
        for link in links:
            link.close()
