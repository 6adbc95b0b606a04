"""The low-level synchronous client: one method per route of serve."""

import warnings
from typing import Any, Dict, Iterator, List, Optional

from . import _api
from .exceptions import SessionClosedError, SessionNotFoundError
from . import _images
from . import presets as _presets
from ._transport import Transport
from .types import (Codebase, ExecResult, FileInfo, RuntimeType, SandboxInfo, Session,
                    StreamChunk, UploadResult)


def _warn(info: SandboxInfo) -> SandboxInfo:
    for w in info.warnings:
        warnings.warn("agentfense: sandbox %s: %s" % (info.id, w), RuntimeWarning, stacklevel=3)
    return info


class ExecStream:
    """The output of a streamed command, as it comes: iterate to get
    :class:`~agentfense.types.StreamChunk` objects (bytes with ``.stream``
    "stdout" or "stderr").  After the last one, ``result`` is the
    :class:`~agentfense.ExecResult` (exit code, duration; its stdout and
    stderr are empty, the output having been streamed).  A timeout raises
    :class:`~agentfense.CommandTimeoutError` at the end.  ``close()`` (or
    leaving a ``with`` block) before the end kills the command."""

    def __init__(self, transport: Transport, req: _api.Req):
        self._state = _api.StreamState(req)
        self._events = transport.stream(req)
        self.result: Optional[ExecResult] = None

    def __iter__(self) -> Iterator[StreamChunk]:
        try:
            for ev in self._events:
                chunk = self._state.event(ev)
                if chunk:
                    yield chunk
            self.result = self._state.ended()
        finally:
            self.close()

    def close(self) -> None:
        """Stop reading; a command still running is killed."""
        self._events.close()

    def __enter__(self) -> "ExecStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def exit_code(self) -> Optional[int]:
        """The exit code, once the stream has ended."""
        return self.result.exit_code if self.result else None


class SessionWrapper:
    """A session (a shell that keeps its state between commands) as an
    object: ``exec`` runs a command in it, ``close`` ends it (its shell and
    all its jobs).  As a context manager it closes the session at the end."""

    def __init__(self, client: "SandboxClient", session: Session):
        self._client = client
        self.session = session
        self._closed = False

    def _open_id(self) -> str:
        # serve forgets a session once it is deleted; to this object it
        # is closed, not unknown.
        if self._closed:
            raise SessionClosedError("session %s is closed" % self.session.id,
                                     session_id=self.session.id)
        return self.session.id

    @property
    def id(self) -> str:
        """The session's id (ss_...)."""
        return self.session.id

    @property
    def sandbox_id(self) -> str:
        """The id of its sandbox."""
        return self.session.sandbox_id

    @property
    def status(self):
        """Its SessionStatus as last seen (see refresh)."""
        return self.session.status

    def refresh(self) -> Session:
        """Ask serve for the session's state again."""
        self.session = self._client.get_session(self.id)
        return self.session

    def exec(self, command: str, timeout=None, stdin=None) -> ExecResult:
        """Run a command in the session's shell (its cd, exports and
        background jobs stay); timeout in seconds or a timedelta."""
        return self._client.session_exec(self._open_id(), command, timeout=timeout,
                                         stdin=stdin)

    def exec_stream(self, command: str, timeout=None, stdin=None) -> ExecStream:
        """Run a command in the session, its output streamed as it comes."""
        return self._client.session_exec_stream(self._open_id(), command, timeout=timeout,
                                                stdin=stdin)

    def close(self) -> None:
        """End the session; one already gone is not an error."""
        if self._closed:
            return
        try:
            self._client.destroy_session(self.id)
        except SessionNotFoundError:
            pass
        self._closed = True

    def __enter__(self) -> "SessionWrapper":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class SandboxClient:
    """A connection to agentfense serve.

    ``endpoint`` is the socket path or ``unix:///path`` (None: serve's
    default socket).  When nothing listens there and ``auto_start`` is true,
    the client starts ``agentfense serve`` itself (the binary from
    $AGENTFENSE_BIN or PATH), which exits after 5 minutes without clients.
    A ``host:port`` endpoint raises InvalidConfigurationError: serve has no
    TCP listener.  Use it as a context manager, or call ``close()``.
    """

    def __init__(self, endpoint: Optional[str] = None, secure: bool = False,
                 auto_start: bool = True):
        # secure (TLS for gRPC in other SDKs) has no meaning on a Unix
        # socket, whose access serve checks by uid; accepted for old code.
        self.endpoint = endpoint
        self._t = Transport(endpoint, auto_start=auto_start)

    @property
    def socket_path(self) -> str:
        """The socket this client talks to."""
        return self._t.socket_path

    def close(self) -> None:
        """Close the client's connections."""
        self._t.close()

    def __enter__(self) -> "SandboxClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def version(self) -> Dict[str, Any]:
        """serve's version and features (GET /v1/version)."""
        return self._t.call(_api.version())

    # --- codebases

    def create_codebase(self, name: str, owner_id: Optional[str] = None,
                        labels: Optional[Dict[str, str]] = None,
                        source_path: Optional[str] = None,
                        ignore_patterns: Optional[List[str]] = None,
                        max_file_size: Optional[int] = None) -> Codebase:
        """Create a codebase, empty or imported by serve from the host
        directory ``source_path`` (.gitignore, .sandboxignore and
        ``ignore_patterns`` honoured; files over ``max_file_size`` skipped
        and listed in ``Codebase.skipped``)."""
        return self._t.call(_api.create_codebase(name, owner_id, labels, source_path,
                                                 ignore_patterns, max_file_size))

    def get_codebase(self, codebase_id: str) -> Codebase:
        """A codebase by id (CodebaseNotFoundError if there is none)."""
        return self._t.call(_api.get_codebase(codebase_id))

    def list_codebases(self, owner_id: Optional[str] = None,
                       labels: Optional[Dict[str, str]] = None) -> List[Codebase]:
        """The codebases, oldest first; filtered by owner and labels."""
        return self._t.call(_api.list_codebases(owner_id, labels))

    def delete_codebase(self, codebase_id: str, force: bool = False) -> None:
        """Delete a codebase; one in use by a sandbox raises CodebaseError
        unless ``force``."""
        self._t.call(_api.delete_codebase(codebase_id, force))

    def upload_file(self, codebase_id: str, file_path: str, content,
                    mode: Optional[int] = None) -> UploadResult:
        """Write a file (str or bytes) into a codebase, creating its
        directories."""
        return self._t.call(_api.upload_file(codebase_id, file_path, content, mode))

    def download_file(self, codebase_id: str, file_path: str) -> bytes:
        """A file of a codebase (FileNotFoundError if missing)."""
        return self._t.call(_api.download_file(codebase_id, file_path))

    def list_files(self, codebase_id: str, path: str = "/",
                   recursive: bool = False) -> List[FileInfo]:
        """The entries of a codebase directory, sorted by path."""
        return self._t.call(_api.list_files(codebase_id, path, recursive))

    # --- sandboxes

    def create_sandbox(self, codebase_id: str, permissions=None, preset: Optional[str] = None,
                       runtime=RuntimeType.BWRAP, image: Optional[str] = None,
                       resources=None, labels: Optional[Dict[str, str]] = None,
                       expires_in=None, start: bool = False, network: Optional[str] = None,
                       on_destroy: Optional[str] = None,
                       git_identity: bool = True) -> SandboxInfo:
        """Create a sandbox over a codebase: ``preset`` (serve's default
        agent-safe) plus ``permissions`` (PermissionRule objects or dicts),
        ``runtime`` DOCKER with ``image`` (an OCI layout or root file
        system directory), ``resources``, ``labels``, ``expires_in``
        (seconds or timedelta); ``start`` starts it at once.  Its commands
        get the host's git user.name and user.email unless ``git_identity``
        is false.  Limits the machine cannot enforce give a
        RuntimeWarning."""
        preset, permissions = _presets.resolve(preset, permissions)
        image = _images.resolve(image)
        return _warn(self._t.call(_api.create_sandbox(
            codebase_id, permissions, preset, runtime, image, resources, labels, expires_in,
            start, network, on_destroy, git_identity)))

    def get_sandbox(self, sandbox_id: str) -> SandboxInfo:
        """A sandbox by id (SandboxNotFoundError if there is none)."""
        return self._t.call(_api.get_sandbox(sandbox_id))

    def list_sandboxes(self, codebase_id: Optional[str] = None, status=None,
                       labels: Optional[Dict[str, str]] = None) -> List[SandboxInfo]:
        """The sandboxes, filtered by codebase, status and labels."""
        return self._t.call(_api.list_sandboxes(codebase_id, status, labels))

    def start_sandbox(self, sandbox_id: str) -> SandboxInfo:
        """Start a sandbox (one running already is left as it is)."""
        return _warn(self._t.call(_api.start_sandbox(sandbox_id)))

    def stop_sandbox(self, sandbox_id: str) -> SandboxInfo:
        """Stop a sandbox; its changes are kept for a later start."""
        return self._t.call(_api.stop_sandbox(sandbox_id))

    def destroy_sandbox(self, sandbox_id: str) -> Dict[str, Any]:
        """Destroy a sandbox; returns what became of its changes (the
        ``delta``: fate, written, deleted, conflicts, notes)."""
        return self._t.call(_api.destroy_sandbox(sandbox_id))

    def sandbox_list_files(self, sandbox_id: str, path: str = "/",
                           recursive: bool = False) -> List[FileInfo]:
        """The entries of a directory as the sandbox sees it (hidden ones
        are not there)."""
        return self._t.call(_api.sandbox_list_files(sandbox_id, path, recursive))

    def sandbox_read_file(self, sandbox_id: str, path: str) -> bytes:
        """A file as the sandbox sees it, path relative to /workspace."""
        return self._t.call(_api.sandbox_read_file(sandbox_id, path))

    def sandbox_write_file(self, sandbox_id: str, path: str, content) -> Dict[str, Any]:
        """Write a file through the sandbox's rules (PermissionDeniedError
        where it may not write)."""
        return self._t.call(_api.sandbox_write_file(sandbox_id, path, content))

    # --- exec

    def exec(self, sandbox_id: str, command, stdin=None, env: Optional[Dict[str, str]] = None,
             workdir: Optional[str] = None, timeout=None,
             max_output: Optional[int] = None) -> ExecResult:
        """Run a command (a string for /bin/sh -c, or an argv list) and
        return its result; a timeout (seconds or timedelta) kills it and
        raises CommandTimeoutError."""
        return self._t.call(_api.exec_(sandbox_id, command, stdin, env, workdir, timeout,
                                       max_output))

    def exec_stream(self, sandbox_id: str, command, stdin=None,
                    env: Optional[Dict[str, str]] = None, workdir: Optional[str] = None,
                    timeout=None, max_output: Optional[int] = None) -> ExecStream:
        """Run a command and stream its output: an ExecStream of bytes
        chunks."""
        return ExecStream(self._t, _api.exec_(sandbox_id, command, stdin, env, workdir,
                                              timeout, max_output, stream=True))

    # --- sessions

    def create_session(self, sandbox_id: str, shell: str = "/bin/sh",
                       env: Optional[Dict[str, str]] = None,
                       workdir: Optional[str] = None) -> Session:
        """Start a session: a shell in the sandbox that keeps its state."""
        return self._t.call(_api.create_session(sandbox_id, shell, env, workdir))

    def get_session(self, session_id: str) -> Session:
        """A session by id (SessionNotFoundError if there is none)."""
        return self._t.call(_api.get_session(session_id))

    def list_sessions(self, sandbox_id: str) -> List[Session]:
        """A sandbox's sessions."""
        return self._t.call(_api.list_sessions(sandbox_id))

    def session_exec(self, session_id: str, command: str, timeout=None,
                     stdin=None) -> ExecResult:
        """Run a command in a session (SessionError if one runs already,
        SessionClosedError if it was closed or its shell exited)."""
        return self._t.call(_api.session_exec(session_id, command, timeout, stdin))

    def session_exec_stream(self, session_id: str, command: str, timeout=None,
                            stdin=None) -> ExecStream:
        """Run a command in a session, its output streamed."""
        return ExecStream(self._t, _api.session_exec(session_id, command, timeout, stdin,
                                                     stream=True))

    def destroy_session(self, session_id: str) -> None:
        """End a session: its shell and every job it started."""
        self._t.call(_api.destroy_session(session_id))

    def session(self, sandbox_id: str, shell: str = "/bin/sh",
                env: Optional[Dict[str, str]] = None,
                workdir: Optional[str] = None) -> SessionWrapper:
        """Start a session and return it as a SessionWrapper (a context
        manager that closes it)."""
        return SessionWrapper(self, self.create_session(sandbox_id, shell, env, workdir))

    # --- presets

    def list_presets(self) -> List[Dict[str, Any]]:
        """serve's presets: name, description, rules."""
        return self._t.call(_api.list_presets_req())

    def get_preset(self, name: str) -> Dict[str, Any]:
        """One of serve's presets (InvalidConfigurationError if unknown)."""
        return self._t.call(_api.get_preset_req(name))
