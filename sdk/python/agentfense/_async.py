"""The asynchronous API: the same as the sync one, with await, on
asyncio's Unix-socket streams (no threads)."""

import os
import warnings
from typing import Any, AsyncIterator, Dict, List, Optional

from . import _api
from . import exceptions as E
from . import _images
from . import presets as _presets
from ._aio_transport import AsyncTransport
from .sandbox import _SandboxState, check_config, codebase_name as _codebase_name
from .types import (Codebase, ExecResult, FileInfo, RuntimeType, SandboxInfo,
                    SandboxStatus, Session, StreamChunk, UploadResult)


def _warn(info: SandboxInfo) -> SandboxInfo:
    for w in info.warnings:
        warnings.warn("agentfense: sandbox %s: %s" % (info.id, w), RuntimeWarning, stacklevel=3)
    return info


class AsyncExecStream:
    """A streamed command: ``async for chunk in stream`` gives
    StreamChunk objects (bytes with ``.stream``); ``result`` is set at the
    end; ``await stream.aclose()`` (or ``async with``) before the end kills
    the command."""

    def __init__(self, transport: AsyncTransport, req: _api.Req):
        self._state = _api.StreamState(req)
        self._events = transport.stream(req)
        self.result: Optional[ExecResult] = None

    async def __aiter__(self) -> AsyncIterator[StreamChunk]:
        try:
            async for ev in self._events:
                chunk = self._state.event(ev)
                if chunk:
                    yield chunk
            self.result = self._state.ended()
        finally:
            await self._events.aclose()

    async def aclose(self) -> None:
        """Stop reading; a command still running is killed."""
        await self._events.aclose()

    async def __aenter__(self) -> "AsyncExecStream":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    @property
    def exit_code(self) -> Optional[int]:
        """The exit code, once the stream has ended."""
        return self.result.exit_code if self.result else None


class AsyncSessionWrapper:
    """A session, asynchronously.  ``async with sandbox.session() as s``
    starts it and closes it at the end; ``s = await sandbox.session()``
    starts it (then ``await s.close()``)."""

    def __init__(self, client: "AsyncSandboxClient", sandbox_id: str, shell: str = "/bin/sh",
                 env: Optional[Dict[str, str]] = None, workdir: Optional[str] = None,
                 session: Optional[Session] = None):
        self._client = client
        self._args = (sandbox_id, shell, env, workdir)
        self.session = session
        self._closed = False

    def _open_id(self) -> str:
        if self._closed:
            raise E.SessionClosedError("session %s is closed" % self.session.id,
                                       session_id=self.session.id)
        return self.id

    async def _start(self) -> "AsyncSessionWrapper":
        if self.session is None:
            self.session = await self._client.create_session(*self._args)
        return self

    def __await__(self):
        return self._start().__await__()

    async def __aenter__(self) -> "AsyncSessionWrapper":
        return await self._start()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    @property
    def id(self) -> str:
        """The session's id (ss_...)."""
        if self.session is None:
            raise E.SessionError("the session is not started yet: await it first")
        return self.session.id

    @property
    def sandbox_id(self) -> str:
        """The id of its sandbox."""
        return self._args[0]

    @property
    def status(self):
        """Its SessionStatus as last seen."""
        return self.session.status if self.session else None

    async def refresh(self) -> Session:
        """Ask serve for the session's state again."""
        self.session = await self._client.get_session(self.id)
        return self.session

    async def exec(self, command: str, timeout=None, stdin=None) -> ExecResult:
        """Run a command in the session's shell."""
        return await self._client.session_exec(self._open_id(), command, timeout=timeout,
                                               stdin=stdin)

    def exec_stream(self, command: str, timeout=None, stdin=None) -> AsyncExecStream:
        """Run a command in the session, its output streamed."""
        return self._client.session_exec_stream(self._open_id(), command, timeout=timeout,
                                                stdin=stdin)

    async def close(self) -> None:
        """End the session; one already gone is not an error."""
        if self.session is None or self._closed:
            return
        try:
            await self._client.destroy_session(self.session.id)
        except E.SessionNotFoundError:
            pass
        self._closed = True


class AsyncSandboxClient:
    """SandboxClient with await: every method is a coroutine except the
    streams (AsyncExecStream) and ``session`` (an AsyncSessionWrapper).
    Use ``async with AsyncSandboxClient() as c`` or ``await c.close()``."""

    def __init__(self, endpoint: Optional[str] = None, secure: bool = False,
                 auto_start: bool = True):
        self.endpoint = endpoint
        self._t = AsyncTransport(endpoint, auto_start=auto_start)

    @property
    def socket_path(self) -> str:
        """The socket this client talks to."""
        return self._t.socket_path

    async def close(self) -> None:
        """Close the client's connections."""
        await self._t.close()

    async def __aenter__(self) -> "AsyncSandboxClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def version(self) -> Dict[str, Any]:
        """serve's version and features."""
        return await self._t.call(_api.version())

    async def create_codebase(self, name: str, owner_id: Optional[str] = None,
                              labels: Optional[Dict[str, str]] = None,
                              source_path: Optional[str] = None,
                              ignore_patterns: Optional[List[str]] = None,
                              max_file_size: Optional[int] = None) -> Codebase:
        """See SandboxClient.create_codebase."""
        return await self._t.call(_api.create_codebase(name, owner_id, labels, source_path,
                                                       ignore_patterns, max_file_size))

    async def get_codebase(self, codebase_id: str) -> Codebase:
        """See SandboxClient.get_codebase."""
        return await self._t.call(_api.get_codebase(codebase_id))

    async def list_codebases(self, owner_id: Optional[str] = None,
                             labels: Optional[Dict[str, str]] = None) -> List[Codebase]:
        """See SandboxClient.list_codebases."""
        return await self._t.call(_api.list_codebases(owner_id, labels))

    async def delete_codebase(self, codebase_id: str, force: bool = False) -> None:
        """See SandboxClient.delete_codebase."""
        await self._t.call(_api.delete_codebase(codebase_id, force))

    async def upload_file(self, codebase_id: str, file_path: str, content,
                          mode: Optional[int] = None) -> UploadResult:
        """See SandboxClient.upload_file."""
        return await self._t.call(_api.upload_file(codebase_id, file_path, content, mode))

    async def download_file(self, codebase_id: str, file_path: str) -> bytes:
        """See SandboxClient.download_file."""
        return await self._t.call(_api.download_file(codebase_id, file_path))

    async def list_files(self, codebase_id: str, path: str = "/",
                         recursive: bool = False) -> List[FileInfo]:
        """See SandboxClient.list_files."""
        return await self._t.call(_api.list_files(codebase_id, path, recursive))

    async def create_sandbox(self, codebase_id: str, permissions=None,
                             preset: Optional[str] = None, runtime=RuntimeType.BWRAP,
                             image: Optional[str] = None, resources=None,
                             labels: Optional[Dict[str, str]] = None, expires_in=None,
                             start: bool = False, network: Optional[str] = None,
                             on_destroy: Optional[str] = None,
                             git_identity: bool = True) -> SandboxInfo:
        """See SandboxClient.create_sandbox."""
        preset, permissions = _presets.resolve(preset, permissions)
        image = _images.resolve(image)
        return _warn(await self._t.call(_api.create_sandbox(
            codebase_id, permissions, preset, runtime, image, resources, labels, expires_in,
            start, network, on_destroy, git_identity)))

    async def get_sandbox(self, sandbox_id: str) -> SandboxInfo:
        """See SandboxClient.get_sandbox."""
        return await self._t.call(_api.get_sandbox(sandbox_id))

    async def list_sandboxes(self, codebase_id: Optional[str] = None, status=None,
                             labels: Optional[Dict[str, str]] = None) -> List[SandboxInfo]:
        """See SandboxClient.list_sandboxes."""
        return await self._t.call(_api.list_sandboxes(codebase_id, status, labels))

    async def start_sandbox(self, sandbox_id: str) -> SandboxInfo:
        """See SandboxClient.start_sandbox."""
        return _warn(await self._t.call(_api.start_sandbox(sandbox_id)))

    async def stop_sandbox(self, sandbox_id: str) -> SandboxInfo:
        """See SandboxClient.stop_sandbox."""
        return await self._t.call(_api.stop_sandbox(sandbox_id))

    async def destroy_sandbox(self, sandbox_id: str) -> Dict[str, Any]:
        """See SandboxClient.destroy_sandbox."""
        return await self._t.call(_api.destroy_sandbox(sandbox_id))

    async def sandbox_list_files(self, sandbox_id: str, path: str = "/",
                                 recursive: bool = False) -> List[FileInfo]:
        """See SandboxClient.sandbox_list_files."""
        return await self._t.call(_api.sandbox_list_files(sandbox_id, path, recursive))

    async def sandbox_read_file(self, sandbox_id: str, path: str) -> bytes:
        """See SandboxClient.sandbox_read_file."""
        return await self._t.call(_api.sandbox_read_file(sandbox_id, path))

    async def sandbox_write_file(self, sandbox_id: str, path: str, content) -> Dict[str, Any]:
        """See SandboxClient.sandbox_write_file."""
        return await self._t.call(_api.sandbox_write_file(sandbox_id, path, content))

    async def exec(self, sandbox_id: str, command, stdin=None,
                   env: Optional[Dict[str, str]] = None, workdir: Optional[str] = None,
                   timeout=None, max_output: Optional[int] = None) -> ExecResult:
        """See SandboxClient.exec."""
        return await self._t.call(_api.exec_(sandbox_id, command, stdin, env, workdir,
                                             timeout, max_output))

    def exec_stream(self, sandbox_id: str, command, stdin=None,
                    env: Optional[Dict[str, str]] = None, workdir: Optional[str] = None,
                    timeout=None, max_output: Optional[int] = None) -> AsyncExecStream:
        """See SandboxClient.exec_stream: ``async for chunk in ...``."""
        return AsyncExecStream(self._t, _api.exec_(sandbox_id, command, stdin, env, workdir,
                                                   timeout, max_output, stream=True))

    async def create_session(self, sandbox_id: str, shell: str = "/bin/sh",
                             env: Optional[Dict[str, str]] = None,
                             workdir: Optional[str] = None) -> Session:
        """See SandboxClient.create_session."""
        return await self._t.call(_api.create_session(sandbox_id, shell, env, workdir))

    async def get_session(self, session_id: str) -> Session:
        """See SandboxClient.get_session."""
        return await self._t.call(_api.get_session(session_id))

    async def list_sessions(self, sandbox_id: str) -> List[Session]:
        """See SandboxClient.list_sessions."""
        return await self._t.call(_api.list_sessions(sandbox_id))

    async def session_exec(self, session_id: str, command: str, timeout=None,
                           stdin=None) -> ExecResult:
        """See SandboxClient.session_exec."""
        return await self._t.call(_api.session_exec(session_id, command, timeout, stdin))

    def session_exec_stream(self, session_id: str, command: str, timeout=None,
                            stdin=None) -> AsyncExecStream:
        """See SandboxClient.session_exec_stream."""
        return AsyncExecStream(self._t, _api.session_exec(session_id, command, timeout, stdin,
                                                          stream=True))

    async def destroy_session(self, session_id: str) -> None:
        """See SandboxClient.destroy_session."""
        await self._t.call(_api.destroy_session(session_id))

    def session(self, sandbox_id: str, shell: str = "/bin/sh",
                env: Optional[Dict[str, str]] = None,
                workdir: Optional[str] = None) -> AsyncSessionWrapper:
        """A session to ``await`` or ``async with``."""
        return AsyncSessionWrapper(self, sandbox_id, shell, env, workdir)

    async def list_presets(self) -> List[Dict[str, Any]]:
        """serve's presets."""
        return await self._t.call(_api.list_presets_req())

    async def get_preset(self, name: str) -> Dict[str, Any]:
        """One of serve's presets."""
        return await self._t.call(_api.get_preset_req(name))


class AsyncSandbox(_SandboxState):
    """Sandbox with await.  ``async with await AsyncSandbox.from_local(p) as
    sb`` destroys what it created at the end, also when the body raises."""

    def __init__(self, client: AsyncSandboxClient, info: SandboxInfo,
                 owns_sandbox: bool = False, owns_codebase: bool = False,
                 runtime: RuntimeType = RuntimeType.BWRAP):
        self._client = client
        self._info = info
        self._codebase: Optional[Codebase] = None
        self._owns_sandbox = owns_sandbox
        self._owns_codebase = owns_codebase
        self._runtime = runtime
        self._destroyed = False

    @classmethod
    async def from_local(cls, path: str, preset: str = "agent-safe", permissions=None,
                         runtime=RuntimeType.BWRAP, image: Optional[str] = None,
                         resources=None, endpoint: Optional[str] = None,
                         secure: bool = False, owner_id: Optional[str] = None,
                         codebase_name: Optional[str] = None,
                         ignore_patterns: Optional[List[str]] = None,
                         labels: Optional[Dict[str, str]] = None, auto_start: bool = True,
                         **kw) -> "AsyncSandbox":
        """See Sandbox.from_local."""
        rt, image = check_config(path, runtime, image)
        client = AsyncSandboxClient(endpoint, secure=secure)
        cb = None
        try:
            cb = await client.create_codebase(codebase_name or _codebase_name(path),
                                              owner_id=owner_id, source_path=os.fspath(path),
                                              ignore_patterns=ignore_patterns, labels=labels)
            info = await client.create_sandbox(cb.id, permissions=permissions, preset=preset,
                                               runtime=rt, image=image, resources=resources,
                                               labels=labels, start=auto_start, **kw)
        except BaseException:
            if cb is not None:
                try:
                    await client.delete_codebase(cb.id, force=True)
                except E.SandboxError:
                    pass
            await client.close()
            raise
        sb = cls(client, info, owns_sandbox=True, owns_codebase=True, runtime=rt)
        sb._codebase = cb
        await sb._check_started(auto_start)
        return sb

    @classmethod
    async def from_codebase(cls, codebase_id: str, preset: str = "agent-safe",
                            permissions=None, runtime=RuntimeType.BWRAP,
                            image: Optional[str] = None, resources=None,
                            endpoint: Optional[str] = None, secure: bool = False,
                            labels: Optional[Dict[str, str]] = None,
                            auto_start: bool = True, **kw) -> "AsyncSandbox":
        """See Sandbox.from_codebase."""
        rt, image = check_config(None, runtime, image)
        client = AsyncSandboxClient(endpoint, secure=secure)
        try:
            info = await client.create_sandbox(codebase_id, permissions=permissions,
                                               preset=preset, runtime=rt, image=image,
                                               resources=resources, labels=labels,
                                               start=auto_start, **kw)
        except BaseException:
            await client.close()
            raise
        sb = cls(client, info, owns_sandbox=True, runtime=rt)
        await sb._check_started(auto_start)
        return sb

    @classmethod
    async def connect(cls, sandbox_id: str, endpoint: Optional[str] = None,
                      secure: bool = False) -> "AsyncSandbox":
        """See Sandbox.connect."""
        client = AsyncSandboxClient(endpoint, secure=secure)
        try:
            info = await client.get_sandbox(sandbox_id)
        except BaseException:
            await client.close()
            raise
        return cls(client, info, runtime=info.runtime)

    async def _check_started(self, auto_start: bool) -> None:
        if auto_start and self._info.status is SandboxStatus.ERROR:
            err = E.SandboxError("sandbox %s could not start: %s"
                                 % (self.id, self._info.error or "unknown error"))
            await self.destroy()
            await self.close()
            raise err

    @property
    def codebase(self) -> Optional[Codebase]:
        """Its codebase as last fetched (``await get_codebase()`` fetches)."""
        return self._codebase

    @property
    def client(self) -> AsyncSandboxClient:
        """The low-level client it uses."""
        return self._client

    async def get_codebase(self) -> Codebase:
        """Fetch its codebase."""
        self._codebase = await self._client.get_codebase(self.codebase_id)
        return self._codebase

    async def refresh(self) -> SandboxInfo:
        """Ask serve for its state again."""
        self._info = await self._client.get_sandbox(self.id)
        return self._info

    async def start(self) -> "AsyncSandbox":
        """Start it."""
        self._info = await self._client.start_sandbox(self.id)
        return self

    async def stop(self) -> "AsyncSandbox":
        """Stop it."""
        self._info = await self._client.stop_sandbox(self.id)
        return self

    async def destroy(self, delete_codebase: Optional[bool] = None) -> Dict[str, Any]:
        """See Sandbox.destroy."""
        if delete_codebase is None:
            delete_codebase = self._owns_codebase
        delta: Dict[str, Any] = {}
        try:
            if not self._destroyed:
                try:
                    delta = await self._client.destroy_sandbox(self.id)
                except E.SandboxNotFoundError:
                    pass
                self._destroyed = True
                self._info.status = SandboxStatus.STOPPED
            if delete_codebase:
                try:
                    await self._client.delete_codebase(self.codebase_id, force=True)
                except E.CodebaseNotFoundError:
                    pass
                self._owns_codebase = False
        finally:
            self._owns_sandbox = False
        return delta

    async def close(self) -> None:
        """Close the connection (the sandbox stays)."""
        await self._client.close()

    async def __aenter__(self) -> "AsyncSandbox":
        return self

    async def __aexit__(self, exc_type, exc, tb) -> None:
        try:
            if self._owns_sandbox or self._owns_codebase:
                await self.destroy(delete_codebase=self._owns_codebase)
        except E.SandboxError:
            if exc_type is None:
                raise
        finally:
            await self.close()

    async def run(self, command, timeout=60, env: Optional[Dict[str, str]] = None,
                  workdir: Optional[str] = None, raise_on_error: bool = False) -> ExecResult:
        """See Sandbox.run."""
        r = await self._client.exec(self.id, command, env=env, workdir=workdir,
                                    timeout=timeout)
        if raise_on_error and r.exit_code != 0:
            raise E.CommandExecutionError(r.exit_code, r.stdout, r.stderr, r.command)
        return r

    async def exec(self, command, stdin=None, env: Optional[Dict[str, str]] = None,
                   workdir: Optional[str] = None, timeout=None) -> ExecResult:
        """See Sandbox.exec."""
        return await self._client.exec(self.id, command, stdin=stdin, env=env,
                                       workdir=workdir, timeout=timeout)

    def exec_stream(self, command, stdin=None, env: Optional[Dict[str, str]] = None,
                    workdir: Optional[str] = None, timeout=None) -> AsyncExecStream:
        """See Sandbox.exec_stream: ``async for chunk in sb.exec_stream(...)``."""
        return self._client.exec_stream(self.id, command, stdin=stdin, env=env,
                                        workdir=workdir, timeout=timeout)

    def session(self, shell: str = "/bin/sh", env: Optional[Dict[str, str]] = None,
                workdir: Optional[str] = None) -> AsyncSessionWrapper:
        """A session: ``async with sb.session() as s`` or ``await sb.session()``."""
        return self._client.session(self.id, shell=shell, env=env, workdir=workdir)

    async def read_file(self, path: str, encoding: str = "utf-8") -> str:
        """See Sandbox.read_file."""
        return (await self.read_file_bytes(path)).decode(encoding)

    async def read_file_bytes(self, path: str) -> bytes:
        """See Sandbox.read_file_bytes."""
        return await self._client.sandbox_read_file(self.id, path)

    async def write_file(self, path: str, content) -> Dict[str, Any]:
        """See Sandbox.write_file."""
        return await self._client.sandbox_write_file(self.id, path, content)

    async def list_files(self, path: str = "/", recursive: bool = False) -> List[FileInfo]:
        """See Sandbox.list_files."""
        return await self._client.sandbox_list_files(self.id, path, recursive)

    def __repr__(self) -> str:
        return "<AsyncSandbox %s %s>" % (self.id, self.status.value)
