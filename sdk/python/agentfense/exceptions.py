"""The exceptions the SDK raises.

Every one derives from :class:`SandboxError`.  Errors that serve reports
carry its ``code`` (``not_found``, ``not_running``, ...), the HTTP
``status`` and the server's ``message``; the class is chosen from the code
and from what the request was about, so a missing sandbox is a
:class:`SandboxNotFoundError` and a missing file a
:class:`FileNotFoundError`.

:class:`FileNotFoundError` and :class:`ConnectionError` also derive from the
built-in exceptions of the same name, and :class:`InvalidConfigurationError`
from :class:`ValueError`, so generic handlers catch them too.
"""

import builtins
from typing import Optional


class SandboxError(Exception):
    """The root of every agentfense SDK error.

    ``code`` is serve's error code when the server reported the error
    (else ``None``), ``status`` its HTTP status, ``message`` the text.
    """

    def __init__(self, message: str = "", code: Optional[str] = None,
                 status: Optional[int] = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status

    def __str__(self) -> str:
        return self.message


class SandboxNotFoundError(SandboxError):
    """No sandbox with that id."""

    def __init__(self, message: str = "", sandbox_id: Optional[str] = None, **kw):
        super().__init__(message or "sandbox '%s' not found" % sandbox_id, **kw)
        self.sandbox_id = sandbox_id


class SandboxNotRunningError(SandboxError):
    """The sandbox exists but is not running (start it first)."""

    def __init__(self, message: str = "", sandbox_id: Optional[str] = None, **kw):
        super().__init__(message or "sandbox '%s' is not running" % sandbox_id, **kw)
        self.sandbox_id = sandbox_id


class CodebaseError(SandboxError):
    """A codebase operation failed (for instance deleting one in use)."""


class CodebaseNotFoundError(CodebaseError):
    """No codebase with that id."""

    def __init__(self, message: str = "", codebase_id: Optional[str] = None, **kw):
        super().__init__(message or "codebase '%s' not found" % codebase_id, **kw)
        self.codebase_id = codebase_id


class FileNotFoundError(SandboxError, builtins.FileNotFoundError):
    """A path that does not exist, in a codebase or in a sandbox's view
    (where a path the rules hide does not exist either)."""

    def __init__(self, message: str = "", path: Optional[str] = None, **kw):
        SandboxError.__init__(self, message or "'%s' not found" % path, **kw)
        self.path = path
        self.filename = path

    def __str__(self) -> str:
        return self.message


class CommandTimeoutError(SandboxError):
    """A command ran longer than its timeout and was killed.

    ``result`` is the :class:`~agentfense.ExecResult` with the output it
    gave before that (``exit_code`` 124), when there is one.
    """

    def __init__(self, message: str = "", command: Optional[str] = None,
                 timeout: Optional[float] = None, result=None, **kw):
        super().__init__(message or "command timed out after %ss: %s" % (timeout, command), **kw)
        self.command = command
        self.timeout = timeout
        self.result = result
        self.stdout = result.stdout if result is not None else ""
        self.stderr = result.stderr if result is not None else ""


class CommandExecutionError(SandboxError):
    """A command exited non-zero where success was required
    (``raise_on_error=True``)."""

    def __init__(self, exit_code: int, stdout: str = "", stderr: str = "",
                 command: Optional[str] = None, message: str = "", **kw):
        if not message:
            message = "command exited %d: %s" % (exit_code, command)
            tail = (stderr or "").strip().splitlines()
            if tail:
                message += ": " + tail[-1]
        super().__init__(message, **kw)
        self.exit_code = exit_code
        self.stdout = stdout
        self.stderr = stderr
        self.command = command


class PermissionDeniedError(SandboxError):
    """The sandbox's rules (or serve) refuse this access; ``path`` is the
    path concerned, when there is one."""

    def __init__(self, message: str = "", path: Optional[str] = None, **kw):
        super().__init__(message or "permission denied: '%s'" % path, **kw)
        self.path = path


class SessionError(SandboxError):
    """A session operation failed (for instance a second exec while one runs)."""


class SessionNotFoundError(SessionError):
    """No session with that id."""

    def __init__(self, message: str = "", session_id: Optional[str] = None, **kw):
        super().__init__(message or "session '%s' not found" % session_id, **kw)
        self.session_id = session_id


class SessionClosedError(SessionError):
    """The session was closed, or its shell exited."""

    def __init__(self, message: str = "", session_id: Optional[str] = None, **kw):
        super().__init__(message or "session '%s' is closed" % session_id, **kw)
        self.session_id = session_id


class ResourceLimitExceededError(SandboxError):
    """A limit was hit: a body or upload too large, too many clients, no
    space left."""


class InvalidConfigurationError(SandboxError, ValueError):
    """An argument or configuration that cannot work: a TCP endpoint, the
    Docker runtime without an image, a malformed request."""


class ConnectionError(SandboxError, builtins.ConnectionError):
    """serve could not be reached, or started, or the connection broke."""

    def __str__(self) -> str:
        return self.message


class UploadError(CodebaseError):
    """A file could not be uploaded into a codebase."""
