"""HTTP/1.1 over serve's Unix socket on asyncio's own streams.

A minimal client: requests with Content-Length, replies with
Content-Length, chunked transfer encoding or read to EOF, kept-alive
connections pooled per client.  No threads: everything runs on the loop.
"""

import asyncio
import time
from typing import AsyncIterator, Dict, List, Optional, Tuple

from . import _endpoint
from ._api import Req, parse_line
from .exceptions import ConnectionError

MAX_HEAD = 64 << 10
MAX_BODY = 1 << 30
# Connections one client opens at once; more requests wait their turn
# rather than pass serve's client limit (64 by default) and be refused.
MAX_CONNS = 16
EXPECT_MIN = 64 << 10


class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        try:
            self.writer.close()
        except Exception:  # the loop may already be closed
            pass


class _Reply:
    def __init__(self, status: int, headers: Dict[str, str], conn: _Conn):
        self.status = status
        self.headers = headers
        self.conn = conn
        self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        cl = headers.get("content-length")
        self.length: Optional[int] = int(cl) if cl is not None and not self.chunked else None
        self.keep_alive = headers.get("connection", "").lower() != "close" and \
            (self.chunked or self.length is not None)

    async def pieces(self) -> AsyncIterator[bytes]:
        """The body, as it arrives."""
        r = self.conn.reader
        if self.chunked:
            while True:
                line = await r.readline()
                if not line.endswith(b"\n"):
                    raise asyncio.IncompleteReadError(line, None)
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while (await r.readline()).strip():  # trailers
                        pass
                    return
                data = await r.readexactly(size)
                await r.readexactly(2)
                yield data
        elif self.length is not None:
            left = self.length
            while left > 0:
                data = await r.read(min(left, 1 << 20))
                if not data:
                    raise asyncio.IncompleteReadError(b"", left)
                left -= len(data)
                yield data
        else:
            while True:
                data = await r.read(1 << 20)
                if not data:
                    return
                yield data

    async def body(self) -> bytes:
        parts: List[bytes] = []
        n = 0
        async for p in self.pieces():
            n += len(p)
            if n > MAX_BODY:
                raise ConnectionError("serve's reply is larger than %d bytes" % MAX_BODY)
            parts.append(p)
        return b"".join(parts)


async def _drain(conn: _Conn) -> None:
    """Wait until the request is sent.  serve may answer before it has
    read all of it (an error) and close: the reply is then in the reader,
    which is read next."""
    try:
        await conn.writer.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass


class AsyncTransport:
    """A pool of kept-alive connections to one socket, on the running loop."""

    def __init__(self, endpoint=None, auto_start: bool = True):
        self.socket_path = _endpoint.resolve(endpoint)
        self.auto_start = auto_start
        self._check_dir = endpoint is None or endpoint == ""
        self._idle: List[_Conn] = []
        self._slots: Optional[asyncio.Semaphore] = None
        self._loop = None

    def _sem(self) -> asyncio.Semaphore:
        # Made in the loop that runs the requests; a client used again
        # under another loop (a second asyncio.run) starts afresh, as its
        # connections belonged to the first.
        loop = asyncio.get_running_loop()
        if self._slots is None or self._loop is not loop:
            self._slots = asyncio.Semaphore(MAX_CONNS)
            self._loop = loop
            self._idle = []
        return self._slots

    async def _connect(self) -> _Conn:
        if self._check_dir:
            _endpoint.check_default_dir(self.socket_path)
        try:
            return _Conn(*await asyncio.open_unix_connection(self.socket_path, limit=MAX_HEAD))
        except OSError as e:
            if e.errno not in _endpoint.NOBODY or not self.auto_start:
                raise _endpoint.connect_error(self.socket_path, e) from None
        binary, log = _endpoint.spawn_serve(self.socket_path)
        deadline = time.monotonic() + _endpoint.AUTOSTART_WAIT
        while True:
            try:
                c = _Conn(*await asyncio.open_unix_connection(self.socket_path, limit=MAX_HEAD))
                _endpoint.forget_log(log)
                return c
            except OSError as e:
                if e.errno not in _endpoint.NOBODY or time.monotonic() > deadline:
                    err = _endpoint.startup_failed(binary, self.socket_path, log,
                                                   e.strerror or str(e))
                    _endpoint.forget_log(log)
                    raise err from None
            await asyncio.sleep(0.02)

    async def _get(self) -> _Conn:
        while self._idle:
            c = self._idle.pop()
            if not c.reader.at_eof() and not c.writer.is_closing():
                return c
            c.close()
        return await self._connect()

    def _broken(self, req: Req, e: BaseException) -> ConnectionError:
        if isinstance(e, asyncio.TimeoutError):
            why = "no reply within %gs" % req.timeout
        elif isinstance(e, asyncio.IncompleteReadError):
            why = "the connection closed in the middle of the reply"
        else:
            why = getattr(e, "strerror", None) or str(e) or type(e).__name__
        return ConnectionError("%s %s: connection to agentfense serve on '%s' failed: %s"
                               % (req.method, req.url.split("?")[0], self.socket_path, why))

    async def _send(self, req: Req) -> _Reply:
        conn = await self._get()
        try:
            head = ["%s %s HTTP/1.1" % (req.method, req.url), "Host: agentfense"]
            head += ["%s: %s" % kv for kv in req.headers.items()]
            if req.body is not None:
                head.append("Content-Length: %d" % len(req.body))
            # A large body waits for serve's go-ahead: one it refuses (too
            # large) is then answered, not cut off by a broken pipe.
            wait = req.body is not None and len(req.body) > EXPECT_MIN
            if wait:
                head.append("Expect: 100-continue")
            # One write: head and body go out in one send, before serve
            # can answer the head and close.
            data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
            conn.writer.write(data + req.body if req.body and not wait else data)
            await _drain(conn)
            raw = await conn.reader.readuntil(b"\r\n\r\n")
            if wait and raw.startswith((b"HTTP/1.1 100 ", b"HTTP/1.0 100 ")):
                conn.writer.write(req.body)
                await _drain(conn)
                raw = await conn.reader.readuntil(b"\r\n\r\n")
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as e:
            conn.close()
            raise self._broken(req, e) from None
        except BaseException:
            conn.close()
            raise
        lines = raw.decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split(" ", 2)[1])
        except (IndexError, ValueError):
            conn.close()
            raise ConnectionError("serve sent a malformed status line: %r" % lines[0]) from None
        headers: Dict[str, str] = {}
        for ln in lines[1:]:
            if ":" in ln:
                k, v = ln.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        return _Reply(status, headers, conn)

    def _done(self, rep: _Reply) -> None:
        if rep.keep_alive and len(self._idle) < MAX_CONNS:
            self._idle.append(rep.conn)
        else:
            rep.conn.close()

    async def _call(self, req: Req) -> Tuple[int, bytes]:
        rep = await self._send(req)
        try:
            data = await rep.body()
        except (OSError, asyncio.IncompleteReadError, ValueError) as e:
            rep.conn.close()
            raise self._broken(req, e) from None
        except BaseException:
            rep.conn.close()
            raise
        self._done(rep)
        return rep.status, data

    async def call(self, req: Req):
        """Send req and return its parsed reply (or raise its error)."""
        async with self._sem():
            try:
                if req.timeout is None:
                    status, data = await self._call(req)
                else:
                    status, data = await asyncio.wait_for(self._call(req), req.timeout)
            except asyncio.TimeoutError as e:
                raise self._broken(req, e) from None
        return req.result(status, data)

    async def stream(self, req: Req) -> AsyncIterator[dict]:
        """Send req and yield the JSON objects of its ndjson reply; closing
        the generator early closes the connection (serve kills the command)."""
        async with self._sem():
            inner = self._stream(req)
            try:
                async for ev in inner:
                    yield ev
            finally:
                await inner.aclose()  # now: its connection, and so the command, ends

    async def _stream(self, req: Req) -> AsyncIterator[dict]:
        rep = await self._send(req)
        finished = False
        try:
            if rep.status >= 400:
                data = await rep.body()
                finished = True
                req.result(rep.status, data)
            buf = b""
            try:
                async for piece in rep.pieces():
                    buf += piece
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        if line.strip():
                            yield parse_line(line)
            except (OSError, asyncio.IncompleteReadError, ValueError) as e:
                raise self._broken(req, e) from None
            if buf.strip():
                yield parse_line(buf)
            finished = True
        finally:
            if finished:
                self._done(rep)
            else:
                rep.conn.close()

    async def close(self) -> None:
        """Close every idle connection."""
        while self._idle:
            c = self._idle.pop()
            c.close()
            try:
                await c.writer.wait_closed()
            except Exception:
                pass
