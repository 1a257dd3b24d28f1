"""The meter on asyncio: paho's packet engine on the event loop's sockets.

The same pattern as aiomqtt (paho's external-loop hooks: socket open/close and write interest
become ``add_reader``/``add_writer``), but callback-based like the ``MqttClient`` interface,
and light: no task per client, one timer per client for keepalive. The blocking part of a
connection attempt (TCP connect, TLS handshake, CONNECT) runs in an executor thread, so a
fleet connects many meters at once; every event reaches the meter on the loop's thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ssl
import threading
from functools import partial
from typing import Any

import paho.mqtt.client as mqtt

from firmware_stub.paho_session import BrokerAddress, PahoSession
from firmware_stub.transport import Will


class AsyncioMqttClient(PahoSession):
    def __init__(
        self,
        address: BrokerAddress,
        *,
        loop: asyncio.AbstractEventLoop,
        executor: concurrent.futures.Executor | None = None,
        misc_interval_s: float = 5.0,
    ) -> None:
        super().__init__(address)
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._executor = executor
        self._misc_interval = misc_interval_s
        self._fd: int | None = None
        self._writer = False  # a writer is registered (the socket buffer was full)
        self._flushing = False  # a write is scheduled for the end of this loop iteration
        self._misc: asyncio.TimerHandle | None = None

    def connect(self, will: Will) -> None:
        c = self._new_attempt(will)
        c.on_socket_open = self._socket_open
        c.on_socket_close = self._socket_close
        c.on_socket_register_write = self._register_write
        c.on_socket_unregister_write = self._unregister_write
        a = self.address
        blocking = partial(c.connect, a.host, a.port, a.keepalive, clean_start=True)
        future = self._loop.run_in_executor(self._executor, blocking)
        future.add_done_callback(partial(self._connect_done, c))

    # ---- the attempt ---------------------------------------------------------------------

    def _connect_done(self, c: mqtt.Client, future: asyncio.Future[Any]) -> None:
        error = None if future.cancelled() else future.exception()
        if c is not self._paho:  # abandoned meanwhile: release what the attempt opened
            sock = c.socket()
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.close()
            return
        if future.cancelled():
            self._end(c, "connection attempt cancelled")
            return
        if error is not None:
            self._end(c, str(error) or type(error).__name__)
            return
        self._misc = self._loop.call_later(self._misc_interval, self._keepalive, c)

    def _keepalive(self, c: mqtt.Client) -> None:
        if c is self._paho and c.socket() is not None:
            c.loop_misc()  # PINGREQ when due; closes a connection whose PINGRESP never came
            self._misc = self._loop.call_later(self._misc_interval, self._keepalive, c)

    def _discard(self) -> None:
        self._unwatch(self._fd)
        if self._misc is not None:
            self._misc.cancel()
            self._misc = None
        super()._discard()

    # ---- socket hooks (paho calls them from the executor thread during connect()) -----------

    def _in_loop(self, fn: Any, *args: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            fn(*args)
        else:
            self._loop.call_soon_threadsafe(fn, *args)

    def _socket_open(self, c: mqtt.Client, _u: Any, sock: Any) -> None:
        self._in_loop(self._watch, c, sock)

    def _watch(self, c: mqtt.Client, sock: Any) -> None:
        current = c.socket()
        if c is self._paho and current is not None and current is sock:
            self._fd = current.fileno()
            self._loop.add_reader(self._fd, self._readable, c)

    def _socket_close(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        # Runs before paho closes the descriptor, so the loop forgets it while it is still ours.
        self._in_loop(self._unwatch, sock.fileno())

    def _unwatch(self, fd: int | None) -> None:
        if fd is not None and fd == self._fd:
            self._loop.remove_reader(fd)
            if self._writer:
                self._loop.remove_writer(fd)
            self._fd, self._writer = None, False

    def _register_write(self, c: mqtt.Client, _u: Any, sock: Any) -> None:
        self._in_loop(self._want_write, c, sock.fileno())

    def _want_write(self, c: mqtt.Client, fd: int) -> None:
        # Write at the end of this loop iteration rather than registering a writer: a burst of
        # publishes then costs one send() and no epoll changes. Only a full socket buffer
        # needs the writer (see _flush).
        if c is self._paho and fd == self._fd and not (self._writer or self._flushing):
            self._flushing = True
            self._loop.call_soon(self._flush, c)

    def _flush(self, c: mqtt.Client) -> None:
        self._writable(c)  # paho's register/unregister hooks fire inside; _flushing mutes them
        self._flushing = False
        if c is self._paho and self._fd is not None and c.want_write() and not self._writer:
            self._writer = True
            self._loop.add_writer(self._fd, self._writable, c)

    def _unregister_write(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        if self._writer and sock.fileno() == self._fd:
            self._writer = False
            self._loop.remove_writer(sock.fileno())

    def _readable(self, c: mqtt.Client) -> None:
        try:
            while True:
                c.loop_read()
                sock = c.socket()
                # TLS may hold decrypted bytes the selector cannot see.
                if not (isinstance(sock, ssl.SSLSocket) and sock.pending() > 0):
                    break
        except OSError as exc:
            self._broken(c, str(exc))

    def _writable(self, c: mqtt.Client) -> None:
        try:
            c.loop_write()
        except OSError as exc:
            self._broken(c, str(exc))

    def _broken(self, c: mqtt.Client, reason: str) -> None:
        self._end(c, reason)
        if c is self._paho:
            self._discard()
