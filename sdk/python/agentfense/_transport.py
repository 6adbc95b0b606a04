"""HTTP/1.1 over serve's Unix socket, synchronously (http.client).

Connections are kept alive and reused; one that serve closed while idle
(its client timeout) is noticed before reuse, so no request is sent twice.
"""

import http.client
import select
import socket
import time
from typing import Iterator, List, Tuple

from . import _endpoint
from ._api import Req, parse_line
from .exceptions import ConnectionError


class UnixHTTPConnection(http.client.HTTPConnection):
    """An HTTPConnection to a Unix socket path."""

    def __init__(self, path: str, timeout=None):
        super().__init__("agentfense", timeout=timeout)
        self.socket_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.settimeout(self.timeout)
            s.connect(self.socket_path)
        except OSError:
            s.close()
            raise
        self.sock = s


def _dropped(conn: UnixHTTPConnection) -> bool:
    """Whether an idle connection was closed by serve (readable: EOF)."""
    if conn.sock is None:
        return True
    p = select.poll()
    p.register(conn.sock, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(p.poll(0))


class Transport:
    """A small pool of kept-alive connections to one socket."""

    def __init__(self, endpoint=None, auto_start: bool = True):
        self.socket_path = _endpoint.resolve(endpoint)
        self.auto_start = auto_start
        self._check_dir = endpoint is None or endpoint == ""
        self._idle: List[UnixHTTPConnection] = []

    def _connect(self) -> UnixHTTPConnection:
        if self._check_dir:
            _endpoint.check_default_dir(self.socket_path)
        conn = UnixHTTPConnection(self.socket_path)
        try:
            conn.connect()
            return conn
        except OSError as e:
            if e.errno not in _endpoint.NOBODY or not self.auto_start:
                raise _endpoint.connect_error(self.socket_path, e) from None
        binary, log = _endpoint.spawn_serve(self.socket_path)
        deadline = time.monotonic() + _endpoint.AUTOSTART_WAIT
        while True:
            try:
                conn.connect()
                _endpoint.forget_log(log)
                return conn
            except OSError as e:
                if e.errno not in _endpoint.NOBODY or time.monotonic() > deadline:
                    err = _endpoint.startup_failed(binary, self.socket_path, log,
                                                   e.strerror or str(e))
                    _endpoint.forget_log(log)
                    raise err from None
            time.sleep(0.02)

    def _get(self) -> UnixHTTPConnection:
        while self._idle:
            c = self._idle.pop()
            if not _dropped(c):
                return c
            c.close()
        return self._connect()

    def _send(self, req: Req) -> Tuple[UnixHTTPConnection, http.client.HTTPResponse]:
        conn = self._get()
        try:
            conn.sock.settimeout(req.timeout)
            try:
                conn.request(req.method, req.url, body=req.body, headers=req.headers)
            except (BrokenPipeError, ConnectionResetError):
                # serve refused the request before its body was all sent
                # (too large, say) and said why: read that reply.
                resp = conn.getresponse()
                resp.will_close = True
                return conn, resp
            return conn, conn.getresponse()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise self._broken(req, e) from None

    def _broken(self, req: Req, e: Exception) -> ConnectionError:
        if isinstance(e, socket.timeout):
            why = "no reply within %gs" % req.timeout
        else:
            why = getattr(e, "strerror", None) or str(e) or type(e).__name__
        return ConnectionError("%s %s: connection to agentfense serve on '%s' failed: %s"
                               % (req.method, req.url.split("?")[0], self.socket_path, why))

    def _done(self, conn: UnixHTTPConnection, resp: http.client.HTTPResponse) -> None:
        if resp.will_close or len(self._idle) >= 4:
            conn.close()
        else:
            self._idle.append(conn)

    def call(self, req: Req):
        """Send req and return its parsed reply (or raise its error)."""
        conn, resp = self._send(req)
        try:
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            raise self._broken(req, e) from None
        self._done(conn, resp)
        return req.result(resp.status, data)

    def stream(self, req: Req) -> Iterator[dict]:
        """Send req and yield the JSON objects of its ndjson reply.  Closing
        the generator early closes the connection (serve then kills the
        command)."""
        conn, resp = self._send(req)
        finished = False
        try:
            if resp.status >= 400:
                data = resp.read()
                finished = True
                req.result(resp.status, data)
            while True:
                try:
                    line = resp.readline()
                except (OSError, http.client.HTTPException) as e:
                    raise self._broken(req, e) from None
                if not line:
                    finished = True
                    return
                if line.strip():
                    yield parse_line(line)
        finally:
            if finished:
                self._done(conn, resp)
            else:
                conn.close()

    def close(self) -> None:
        """Close every idle connection."""
        while self._idle:
            self._idle.pop().close()
