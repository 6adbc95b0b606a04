"""The high-level synchronous API: a Sandbox object over a codebase."""

import os
import re
from typing import Any, Dict, List, Optional

from . import _images
from . import exceptions as E
from ._api import DOCKER_NEEDS_IMAGE
from .client import ExecStream, SandboxClient, SessionWrapper
from .types import (Codebase, ExecResult, FileInfo, RuntimeType, SandboxInfo,
                    SandboxStatus)


def check_config(path, runtime, image):
    """Refuse what cannot work before anything is created; returns the
    runtime and the image's directory (a reference fetched)."""
    try:
        rt = RuntimeType.parse(runtime if runtime is not None else RuntimeType.BWRAP)
    except ValueError as e:
        raise E.InvalidConfigurationError(str(e)) from None
    if rt is RuntimeType.DOCKER and not image:
        raise E.InvalidConfigurationError(DOCKER_NEEDS_IMAGE)
    if path is not None:
        p = os.fspath(path)
        if not os.path.exists(p):
            raise E.FileNotFoundError("no directory '%s' to make a sandbox of" % p, path=p)
        if not os.path.isdir(p):
            raise E.InvalidConfigurationError("'%s' is not a directory" % p)
    return rt, _images.resolve(image)


def codebase_name(path: str) -> str:
    """A codebase name from a directory's name."""
    n = os.path.basename(os.path.abspath(os.fspath(path))) or "root"
    return re.sub(r"[^A-Za-z0-9._-]", "-", n)


class _SandboxState:
    """What Sandbox and AsyncSandbox tell alike about the sandbox, from
    the info serve last gave (self._info) and its runtime."""

    @property
    def id(self) -> str:
        """The sandbox's id (sb_...)."""
        return self._info.id

    @property
    def codebase_id(self) -> str:
        """The id of the codebase it shows."""
        return self._info.codebase_id

    @property
    def status(self) -> SandboxStatus:
        """Its status as last seen (refresh() asks again)."""
        return self._info.status

    @property
    def runtime(self) -> RuntimeType:
        """What runs it: BWRAP or DOCKER."""
        return self._runtime

    @property
    def info(self) -> SandboxInfo:
        """Everything serve said about it, as last seen."""
        return self._info


class Sandbox(_SandboxState):
    """A sandbox: a command environment over a codebase, seen through
    permission rules, its changes kept in a private layer.

    Make one with :meth:`from_local` (a host directory),
    :meth:`from_codebase` or :meth:`connect`.  As a context manager it
    destroys, at the end, what it created — the sandbox, and the codebase
    ``from_local`` imported — and only that, also when the body raises.
    """

    def __init__(self, client: SandboxClient, info: SandboxInfo, owns_client: bool = True,
                 owns_sandbox: bool = False, owns_codebase: bool = False,
                 runtime: RuntimeType = RuntimeType.BWRAP):
        self._client = client
        self._info = info
        self._codebase: Optional[Codebase] = None
        self._owns_client = owns_client
        self._owns_sandbox = owns_sandbox
        self._owns_codebase = owns_codebase
        self._runtime = runtime
        self._destroyed = False

    # --- making one

    @classmethod
    def from_local(cls, path: str, preset: str = "agent-safe", permissions=None,
                   runtime=RuntimeType.BWRAP, image: Optional[str] = None, resources=None,
                   endpoint: Optional[str] = None, secure: bool = False,
                   owner_id: Optional[str] = None, codebase_name: Optional[str] = None,
                   ignore_patterns: Optional[List[str]] = None,
                   labels: Optional[Dict[str, str]] = None, auto_start: bool = True,
                   **kw) -> "Sandbox":
        """Import the directory ``path`` into a new codebase (serve's import:
        .gitignore, .sandboxignore and ``ignore_patterns`` honoured, files
        over the size limit skipped) and create a sandbox over it with
        ``preset`` plus ``permissions``; started unless ``auto_start`` is
        false.  ``expires_in``, ``network`` ("none" or "host"),
        ``on_destroy`` ("sync", "keep", "discard") and ``git_identity``
        (False: no host git identity) are passed on to create_sandbox.  Anything created is removed again if a later step
        fails."""
        rt, image = check_config(path, runtime, image)
        client = SandboxClient(endpoint, secure=secure)
        cb = None
        try:
            cb = client.create_codebase(codebase_name or _codebase_name(path),
                                        owner_id=owner_id, source_path=os.fspath(path),
                                        ignore_patterns=ignore_patterns, labels=labels)
            info = client.create_sandbox(cb.id, permissions=permissions, preset=preset,
                                         runtime=rt, image=image, resources=resources,
                                         labels=labels, start=auto_start, **kw)
        except BaseException:
            if cb is not None:
                _quietly(client.delete_codebase, cb.id, True)
            client.close()
            raise
        sb = cls(client, info, owns_sandbox=True, owns_codebase=True, runtime=rt)
        sb._codebase = cb
        sb._check_started(auto_start)
        return sb

    @classmethod
    def from_codebase(cls, codebase_id: str, preset: str = "agent-safe", permissions=None,
                      runtime=RuntimeType.BWRAP, image: Optional[str] = None,
                      resources=None, endpoint: Optional[str] = None, secure: bool = False,
                      labels: Optional[Dict[str, str]] = None, auto_start: bool = True,
                      **kw) -> "Sandbox":
        """Create a sandbox over an existing codebase (which it will not
        delete)."""
        rt, image = check_config(None, runtime, image)
        client = SandboxClient(endpoint, secure=secure)
        try:
            info = client.create_sandbox(codebase_id, permissions=permissions, preset=preset,
                                         runtime=rt, image=image, resources=resources,
                                         labels=labels, start=auto_start, **kw)
        except BaseException:
            client.close()
            raise
        sb = cls(client, info, owns_sandbox=True, runtime=rt)
        sb._check_started(auto_start)
        return sb

    @classmethod
    def connect(cls, sandbox_id: str, endpoint: Optional[str] = None,
                secure: bool = False) -> "Sandbox":
        """An existing sandbox; leaving a ``with`` block does not destroy
        it (call destroy() for that)."""
        client = SandboxClient(endpoint, secure=secure)
        try:
            info = client.get_sandbox(sandbox_id)
        except BaseException:
            client.close()
            raise
        return cls(client, info, runtime=info.runtime)

    def _check_started(self, auto_start: bool) -> None:
        # A sandbox that could not start is an error of the create call,
        # not a surprise at the first run().
        if auto_start and self._info.status is SandboxStatus.ERROR:
            err = E.SandboxError("sandbox %s could not start: %s"
                                 % (self.id, self._info.error or "unknown error"))
            self.destroy()
            raise err

    # --- what it is

    @property
    def codebase(self) -> Codebase:
        """Its codebase (fetched on first use)."""
        if self._codebase is None:
            self._codebase = self._client.get_codebase(self.codebase_id)
        return self._codebase

    @property
    def client(self) -> SandboxClient:
        """The low-level client it uses."""
        return self._client

    def refresh(self) -> SandboxInfo:
        """Ask serve for its state again."""
        self._info = self._client.get_sandbox(self.id)
        return self._info

    # --- life

    def start(self) -> "Sandbox":
        """Start it (nothing happens if it runs already)."""
        self._info = self._client.start_sandbox(self.id)
        return self

    def stop(self) -> "Sandbox":
        """Stop it; its changes stay for the next start."""
        self._info = self._client.stop_sandbox(self.id)
        return self

    def destroy(self, delete_codebase: Optional[bool] = None) -> Dict[str, Any]:
        """Destroy the sandbox and, if ``delete_codebase`` (default: when
        from_local created it), its codebase.  Returns what became of its
        changes (the ``delta`` of the reply)."""
        if delete_codebase is None:
            delete_codebase = self._owns_codebase
        delta: Dict[str, Any] = {}
        try:
            if not self._destroyed:
                try:
                    delta = self._client.destroy_sandbox(self.id)
                except E.SandboxNotFoundError:
                    pass
                self._destroyed = True
                self._info.status = SandboxStatus.STOPPED
            if delete_codebase:
                try:
                    self._client.delete_codebase(self.codebase_id, force=True)
                except E.CodebaseNotFoundError:
                    pass
                self._owns_codebase = False
        finally:
            self._owns_sandbox = False
        return delta

    def close(self) -> None:
        """Close the connection (the sandbox stays)."""
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if self._owns_sandbox or self._owns_codebase:
                self.destroy(delete_codebase=self._owns_codebase)
        except E.SandboxError:
            if exc_type is None:
                raise  # else the body's own exception is the one to see
        finally:
            self.close()

    # --- commands

    def run(self, command, timeout=60, env: Optional[Dict[str, str]] = None,
            workdir: Optional[str] = None, raise_on_error: bool = False) -> ExecResult:
        """Run a command and return its result.  Past ``timeout`` seconds it
        is killed and CommandTimeoutError raised; with ``raise_on_error`` a
        non-zero exit raises CommandExecutionError."""
        r = self._client.exec(self.id, command, env=env, workdir=workdir, timeout=timeout)
        if raise_on_error and r.exit_code != 0:
            raise E.CommandExecutionError(r.exit_code, r.stdout, r.stderr, r.command)
        return r

    def exec(self, command, stdin=None, env: Optional[Dict[str, str]] = None,
             workdir: Optional[str] = None, timeout=None) -> ExecResult:
        """Run a command with stdin (str or bytes), env, workdir (absolute,
        or relative to /workspace) and a timeout (seconds or timedelta)."""
        return self._client.exec(self.id, command, stdin=stdin, env=env, workdir=workdir,
                                 timeout=timeout)

    def exec_stream(self, command, stdin=None, env: Optional[Dict[str, str]] = None,
                    workdir: Optional[str] = None, timeout=None) -> ExecStream:
        """Run a command, its output given as it comes (an ExecStream of
        bytes chunks; ``.result`` at the end)."""
        return self._client.exec_stream(self.id, command, stdin=stdin, env=env,
                                        workdir=workdir, timeout=timeout)

    def session(self, shell: str = "/bin/sh", env: Optional[Dict[str, str]] = None,
                workdir: Optional[str] = None) -> SessionWrapper:
        """Start a session: a shell whose cd, variables and jobs persist
        between its exec() calls.  A context manager that closes it."""
        return self._client.session(self.id, shell=shell, env=env, workdir=workdir)

    # --- files (paths relative to /workspace; "/workspace/x" works too)

    def read_file(self, path: str, encoding: str = "utf-8") -> str:
        """A file's content as text, as the sandbox sees it."""
        return self.read_file_bytes(path).decode(encoding)

    def read_file_bytes(self, path: str) -> bytes:
        """A file's content, as the sandbox sees it (FileNotFoundError if
        missing or hidden, PermissionDeniedError if unreadable)."""
        return self._client.sandbox_read_file(self.id, path)

    def write_file(self, path: str, content) -> Dict[str, Any]:
        """Write a file (str or bytes) through the sandbox's rules
        (PermissionDeniedError where it may not write)."""
        return self._client.sandbox_write_file(self.id, path, content)

    def list_files(self, path: str = "/", recursive: bool = False) -> List[FileInfo]:
        """The entries of a directory as the sandbox sees it."""
        return self._client.sandbox_list_files(self.id, path, recursive)

    def __repr__(self) -> str:
        return "<Sandbox %s %s>" % (self.id, self.status.value)


_codebase_name = codebase_name


def _quietly(fn, *args) -> None:
    try:
        fn(*args)
    except E.SandboxError:
        pass
