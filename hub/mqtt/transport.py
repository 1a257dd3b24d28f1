"""The byte pipe under an MQTT connection: plain TCP, or TLS over it.

One reader thread receives while other threads send (acknowledgements after a commit). A plain
TCP socket allows that. An OpenSSL connection does not: an SSL object must not be used by two
threads at once, and ``ssl.SSLSocket`` does nothing to prevent it (its reads and writes release
the GIL). So TLS runs on memory BIOs: the TCP socket is read and written as usual, and every
use of the SSL object (decrypting what came in, encrypting what goes out, sending the records
it produces) happens under one lock.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading

RECV_CHUNK = 1 << 18


def open_transport(
    host: str, port: int, tls: ssl.SSLContext | None, timeout: float
) -> PlainTransport | TlsTransport:
    """Connected, and for TLS the handshake done (the broker's certificate checked against
    ``tls``), each step within ``timeout``. Raises OSError (ssl.SSLError included)."""
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # acks are latency
        if tls is None:
            return PlainTransport(sock)
        return TlsTransport(sock, tls, host)
    except BaseException:
        sock.close()
        raise


class PlainTransport:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def recv_into(self, view: memoryview) -> int:
        """Reader thread only. 0 at the end of the stream; TimeoutError after the timeout."""
        return self.sock.recv_into(view)

    def sendall(self, data: bytes) -> None:
        """The caller keeps writes from interleaving (one writer at a time)."""
        self.sock.sendall(data)

    def settimeout(self, seconds: float) -> None:
        self.sock.settimeout(seconds)

    def shutdown(self) -> None:
        """Any thread: wakes the reader out of recv."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self.sock.close()


class TlsTransport(PlainTransport):
    def __init__(self, sock: socket.socket, context: ssl.SSLContext, host: str) -> None:
        super().__init__(sock)
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._ssl = context.wrap_bio(self._in, self._out, server_hostname=host)
        self._lock = threading.Lock()
        while True:  # the handshake, before any other thread knows of us: no lock needed
            try:
                self._ssl.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                if not self._receive():
                    raise ConnectionError("closed during the TLS handshake") from None
        self._flush()

    def recv_into(self, view: memoryview) -> int:
        while True:
            with self._lock:
                try:
                    data = self._ssl.read(len(view))
                    view[: len(data)] = data
                    return len(data)
                except ssl.SSLWantReadError:
                    pass
                except ssl.SSLZeroReturnError:  # the broker's close_notify
                    return 0
                finally:
                    self._flush()  # reading can produce records too (TLS 1.3 key updates)
            if not self._receive():
                return 0

    def sendall(self, data: bytes) -> None:
        with self._lock:
            view = memoryview(data)
            while view:
                view = view[self._ssl.write(view) :]
            self._flush()

    def _receive(self) -> bool:
        data = self.sock.recv(RECV_CHUNK)
        if not data:
            return False
        with self._lock:
            self._in.write(data)
        return True

    def _flush(self) -> None:
        pending = self._out.read()
        if pending:
            self.sock.sendall(pending)
