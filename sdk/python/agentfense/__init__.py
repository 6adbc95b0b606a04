"""agentfense: run commands in least-privilege sandboxes from Python.

The SDK talks to ``agentfense serve`` on its Unix socket (and starts it
when nothing listens there).  The high-level API::

    from agentfense import Sandbox

    with Sandbox.from_local("./my-project") as sandbox:
        result = sandbox.run("python -m pytest -q")
        print(result.exit_code, result.stdout)

imports the directory into a codebase, creates a sandbox with the
``agent-safe`` preset (secrets hidden, writes only to /output and /tmp),
runs the command, and at the end destroys what it created.
``AsyncSandbox`` is the same with ``await``; ``SandboxClient`` and
``AsyncSandboxClient`` have one method per route of serve.

Standard library only; Python 3.9 or later.
"""

from ._async import AsyncExecStream, AsyncSandbox, AsyncSandboxClient, AsyncSessionWrapper
from .client import ExecStream, SandboxClient, SessionWrapper
from .exceptions import (CodebaseError, CodebaseNotFoundError, CommandExecutionError,
                         CommandTimeoutError, ConnectionError, FileNotFoundError,
                         InvalidConfigurationError, PermissionDeniedError,
                         ResourceLimitExceededError, SandboxError, SandboxNotFoundError,
                         SandboxNotRunningError, SessionClosedError, SessionError,
                         SessionNotFoundError, UploadError)
from .presets import (extend_preset, get_preset, get_preset_dicts, list_presets,
                      register_preset)
from .sandbox import Sandbox
from .types import (Codebase, ExecResult, FileInfo, PatternType, Permission, PermissionRule,
                    ResourceLimits, RuntimeType, SandboxInfo, SandboxStatus, Session,
                    SessionStatus, StreamChunk, UploadResult)

__version__ = "0.1.0"

__all__ = [
    "AsyncExecStream", "AsyncSandbox", "AsyncSandboxClient", "AsyncSessionWrapper",
    "Codebase", "CodebaseError", "CodebaseNotFoundError", "CommandExecutionError",
    "CommandTimeoutError", "ConnectionError", "ExecResult", "ExecStream", "FileInfo",
    "FileNotFoundError", "InvalidConfigurationError", "PatternType", "Permission",
    "PermissionDeniedError", "PermissionRule", "ResourceLimitExceededError",
    "ResourceLimits", "RuntimeType", "Sandbox", "SandboxClient", "SandboxError",
    "SandboxInfo", "SandboxNotFoundError", "SandboxNotRunningError", "SandboxStatus",
    "Session", "SessionClosedError", "SessionError", "SessionNotFoundError",
    "SessionStatus", "SessionWrapper", "StreamChunk", "UploadError", "UploadResult",
    "extend_preset", "get_preset", "get_preset_dicts", "list_presets", "register_preset",
]
