"""The SDK's data types: enums, rules, and the objects serve returns.

Every ``from_dict`` accepts the JSON of agentfense-api(7) and ignores
fields it does not know, so a newer serve works with an older SDK.
"""

import datetime as _dt
import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, List, Optional, Union


def _enum_value(enum_cls, value, prefix: str):
    """The member of enum_cls for value: a member, its value ("read"), its
    name ("READ") or the protobuf spelling ("PERMISSION_READ")."""
    if isinstance(value, enum_cls):
        return value
    if not isinstance(value, str):
        raise ValueError("%r is not a %s" % (value, enum_cls.__name__))
    v = value.strip()
    if v.upper().startswith(prefix):
        v = v[len(prefix):]
    for m in enum_cls:
        if m.value == v.lower():
            return m
    raise ValueError("%r is not a %s (one of: %s)" % (
        value, enum_cls.__name__, ", ".join(m.value for m in enum_cls)))


class _ApiEnum(str, Enum):
    """An enum of the API, whose values are its lowercase strings."""

    @classmethod
    def parse(cls, value):
        """A member from a member, its value ("read"), its name ("READ") or
        the protobuf spelling, the class name in capitals as a prefix
        ("PERMISSION_READ", "SANDBOX_STATUS_RUNNING")."""
        prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).upper() + "_"
        return _enum_value(cls, value, prefix)


class Permission(_ApiEnum):
    """How much of a path the sandbox sees: nothing, its name, its
    content, or the right to change it."""
    NONE = "none"
    VIEW = "view"
    READ = "read"
    WRITE = "write"


class PatternType(_ApiEnum):
    """How a rule's pattern is read: a gitignore-style glob, a directory
    (and everything below it) or one file."""
    GLOB = "glob"
    DIRECTORY = "directory"
    FILE = "file"


class RuntimeType(_ApiEnum):
    """What runs the sandbox: agentfense's own namespaces (BWRAP, the
    default) or an OCI image (DOCKER, which needs ``image``)."""
    BWRAP = "bwrap"
    DOCKER = "docker"


class SandboxStatus(_ApiEnum):
    """The life of a sandbox: created (PENDING), RUNNING, STOPPED, or
    ERROR (it could not start; ``SandboxInfo.error`` says why)."""
    PENDING = "pending"
    RUNNING = "running"
    STOPPED = "stopped"
    ERROR = "error"


class SessionStatus(_ApiEnum):
    """The state of a session: ACTIVE, or CLOSED (closed, or its shell
    died); UNKNOWN for a value this SDK does not know."""
    UNKNOWN = "unknown"
    ACTIVE = "active"
    CLOSED = "closed"

    @classmethod
    def parse(cls, value) -> "SessionStatus":
        """A SessionStatus from a member or a string; UNKNOWN for others."""
        try:
            return super().parse(value)
        except ValueError:
            return cls.UNKNOWN


@dataclass
class PermissionRule:
    """One rule: paths matching ``pattern`` get ``permission``; the highest
    ``priority`` wins, then the most specific pattern (see README, Rules
    and priority)."""
    pattern: str
    permission: Permission = Permission.READ
    type: PatternType = PatternType.GLOB
    priority: int = 0

    def __post_init__(self):
        self.permission = Permission.parse(self.permission)
        self.type = PatternType.parse(self.type)
        self.priority = int(self.priority)

    def to_dict(self) -> Dict[str, Any]:
        """The rule as the API's JSON object."""
        return {"pattern": self.pattern, "permission": self.permission.value,
                "type": self.type.value, "priority": self.priority}

    @classmethod
    def from_dict(cls, d: Union["PermissionRule", Dict[str, Any]]) -> "PermissionRule":
        """A rule from a dict (``permission`` or ``level``, ``type``,
        ``priority`` optional) or a PermissionRule."""
        if isinstance(d, PermissionRule):
            return d
        if not isinstance(d, dict) or "pattern" not in d:
            raise ValueError("a permission rule needs a 'pattern': %r" % (d,))
        return cls(pattern=d["pattern"],
                   permission=d.get("permission", d.get("level", Permission.READ)),
                   type=d.get("type", PatternType.GLOB),
                   priority=d.get("priority", 0) or 0)


RuleLike = Union[PermissionRule, Dict[str, Any]]


def rules_to_dicts(rules) -> List[Dict[str, Any]]:
    """Rules (PermissionRule objects or dicts) as API dicts."""
    if rules is None:
        return []
    if isinstance(rules, (PermissionRule, dict)):
        rules = [rules]
    return [PermissionRule.from_dict(r).to_dict() for r in rules]


@dataclass
class ResourceLimits:
    """Limits for the sandbox's processes: memory in bytes, CPU quota and
    shares as serve reads them (agentfense-api(7)), and the number of
    processes; 0 or None: no limit.  Where the machine cannot enforce one,
    serve says so and the SDK gives a warning, as the CLI does."""
    memory_bytes: Optional[int] = None
    cpu_quota: Optional[int] = None
    cpu_shares: Optional[int] = None
    pids_limit: Optional[int] = None

    def to_dict(self) -> Dict[str, int]:
        """The limits as the API's JSON object (unset ones left out)."""
        return {k: int(v) for k, v in (("memory_bytes", self.memory_bytes),
                                      ("cpu_quota", self.cpu_quota),
                                      ("cpu_shares", self.cpu_shares),
                                      ("pids_limit", self.pids_limit)) if v}

    @classmethod
    def from_dict(cls, d: Optional[Dict[str, Any]]) -> "ResourceLimits":
        """Limits from the API's JSON object."""
        d = d or {}
        return cls(memory_bytes=d.get("memory_bytes") or None,
                   cpu_quota=d.get("cpu_quota") or None,
                   cpu_shares=d.get("cpu_shares") or None,
                   pids_limit=d.get("pids_limit") or None)


def parse_time(s: Optional[str]) -> Optional[_dt.datetime]:
    """An RFC 3339 time ("2026-01-31T12:00:00.123456Z") as an aware
    datetime; None stays None."""
    if not s:
        return None
    t = s.strip()
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(.*)$", t)
    if m and m.group(2):  # Python before 3.11 takes 3 or 6 digits only
        t = m.group(1) + (m.group(2) + "000000")[:7] + m.group(3)
    return _dt.datetime.fromisoformat(t)


def parse_duration(v) -> Optional[_dt.timedelta]:
    """A duration as the API gives it ("0.012s", or seconds) as a timedelta."""
    if v is None or v == "":
        return None
    if isinstance(v, (int, float)):
        return _dt.timedelta(seconds=v)
    s = str(v).strip()
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for u in ("ms", "s", "m", "h"):
        if s.endswith(u):
            return _dt.timedelta(seconds=float(s[:-len(u)]) * units[u])
    return _dt.timedelta(seconds=float(s))


def seconds(v) -> Optional[float]:
    """A timeout given as a timedelta or seconds, in seconds (None: none)."""
    if v is None:
        return None
    if isinstance(v, _dt.timedelta):
        return v.total_seconds()
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError("a timeout is a number of seconds or a timedelta, not %r" % (v,))
    return float(v)


@dataclass
class ExecResult:
    """What a command did: its output, exit code (128+N when killed by
    signal N, 124 after a timeout, 127 when not found) and how long it ran.
    ``success`` is exit code 0; ``output`` is stdout followed by stderr."""
    stdout: str
    stderr: str
    exit_code: int
    duration: Optional[_dt.timedelta] = None
    command: Optional[str] = None
    timed_out: bool = False
    signal: int = 0
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    stdout_bytes: Optional[bytes] = None
    stderr_bytes: Optional[bytes] = None

    @property
    def success(self) -> bool:
        """True when the command exited 0."""
        return self.exit_code == 0

    @property
    def output(self) -> str:
        """stdout and stderr together."""
        return self.stdout + self.stderr

    @classmethod
    def from_dict(cls, d: Dict[str, Any], command: Optional[str] = None) -> "ExecResult":
        """An ExecResult from the API's JSON; ``stdout_bytes`` and
        ``stderr_bytes`` hold the exact bytes (from ``*_base64`` when the
        output was not UTF-8)."""
        import base64
        out = {}
        for s in ("stdout", "stderr"):
            text = d.get(s) or ""
            b64 = d.get(s + "_base64")
            out[s] = (text, base64.b64decode(b64) if b64 else text.encode("utf-8", "surrogatepass"))
        return cls(stdout=out["stdout"][0], stderr=out["stderr"][0],
                   exit_code=int(d.get("exit_code", 0)),
                   duration=parse_duration(d.get("duration")),
                   command=d.get("command") or command,
                   timed_out=bool(d.get("timed_out", False)),
                   signal=int(d.get("signal") or 0),
                   stdout_truncated=bool(d.get("stdout_truncated", False)),
                   stderr_truncated=bool(d.get("stderr_truncated", False)),
                   stdout_bytes=out["stdout"][1], stderr_bytes=out["stderr"][1])


class StreamChunk(bytes):
    """A piece of a streamed command's output: bytes, with ``stream``
    "stdout" or "stderr"."""
    stream: str = "stdout"

    def __new__(cls, data: bytes, stream: str = "stdout"):
        o = super().__new__(cls, data)
        o.stream = stream
        return o


@dataclass
class SandboxInfo:
    """A sandbox as serve describes it."""
    id: str
    codebase_id: str
    status: SandboxStatus
    permissions: List[PermissionRule] = field(default_factory=list)
    labels: Dict[str, str] = field(default_factory=dict)
    created_at: Optional[_dt.datetime] = None
    started_at: Optional[_dt.datetime] = None
    stopped_at: Optional[_dt.datetime] = None
    expires_at: Optional[_dt.datetime] = None
    preset: Optional[str] = None
    runtime: RuntimeType = RuntimeType.BWRAP
    image: Optional[str] = None
    resources: Optional[ResourceLimits] = None
    network: Optional[str] = None
    on_destroy: Optional[str] = None
    git_identity: bool = True
    error: Optional[str] = None
    delta_path: Optional[str] = None
    warnings: List[str] = field(default_factory=list)
    #: "stopping" or "destroying" while serve stops or destroys the
    #: sandbox (its status is STOPPED then), else None
    operation: Optional[str] = None

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "SandboxInfo":
        """A SandboxInfo from the API's Sandbox object."""
        try:
            runtime = RuntimeType.parse(d.get("runtime") or "bwrap")
        except ValueError:
            runtime = RuntimeType.BWRAP
        return cls(id=d["id"], codebase_id=d.get("codebase_id", ""),
                   status=SandboxStatus.parse(d.get("status", "pending")),
                   permissions=[PermissionRule.from_dict(r) for r in d.get("permissions") or []],
                   labels=dict(d.get("labels") or {}),
                   created_at=parse_time(d.get("created_at")),
                   started_at=parse_time(d.get("started_at")),
                   stopped_at=parse_time(d.get("stopped_at")),
                   expires_at=parse_time(d.get("expires_at")),
                   preset=d.get("preset"), runtime=runtime, image=d.get("image"),
                   resources=ResourceLimits.from_dict(d.get("resources")),
                   network=d.get("network"), on_destroy=d.get("on_destroy"),
                   git_identity=d.get("git_identity") is not False,
                   error=d.get("error") or None, delta_path=d.get("delta_path"),
                   warnings=list(d.get("warnings") or []),
                   operation=d.get("operation") or None)


@dataclass
class Codebase:
    """A codebase: a project tree stored by serve, which sandboxes show."""
    id: str
    name: str
    owner_id: str = ""
    size: int = 0
    file_count: int = 0
    labels: Dict[str, str] = field(default_factory=dict)
    created_at: Optional[_dt.datetime] = None
    updated_at: Optional[_dt.datetime] = None
    skipped: List[Dict[str, Any]] = field(default_factory=list)
    ignored_count: int = 0

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Codebase":
        """A Codebase from the API's JSON (``skipped`` after an import)."""
        return cls(id=d["id"], name=d.get("name", ""), owner_id=d.get("owner_id") or "",
                   size=int(d.get("size") or 0), file_count=int(d.get("file_count") or 0),
                   labels=dict(d.get("labels") or {}),
                   created_at=parse_time(d.get("created_at")),
                   updated_at=parse_time(d.get("updated_at")),
                   skipped=list(d.get("skipped") or []),
                   ignored_count=int(d.get("ignored_count") or 0))


@dataclass
class FileInfo:
    """One entry of a listing: ``path`` relative to the codebase or to
    /workspace, ``type`` "file", "dir" or "symlink", ``mode`` as octal
    digits ("0644")."""
    path: str
    name: str
    is_dir: bool
    size: int
    modified_at: Optional[_dt.datetime] = None
    mode: Optional[str] = None
    type: Optional[str] = None

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "FileInfo":
        """A FileInfo from the API's JSON."""
        path = d.get("path", "")
        return cls(path=path, name=d.get("name") or path.rsplit("/", 1)[-1],
                   is_dir=bool(d.get("is_dir", d.get("type") == "dir")),
                   size=int(d.get("size") or 0),
                   modified_at=parse_time(d.get("mtime") or d.get("modified_at")),
                   mode=d.get("mode"), type=d.get("type"))


@dataclass
class UploadResult:
    """An upload: its size in bytes and the SHA-256 of what was sent
    ("sha256:" and hex digits)."""
    size: int
    checksum: str
    codebase_id: Optional[str] = None
    file_path: Optional[str] = None


@dataclass
class Session:
    """A session: a shell in a sandbox that keeps its working directory,
    variables and background jobs between commands."""
    id: str
    sandbox_id: str
    status: SessionStatus
    shell: str = "/bin/sh"
    created_at: Optional[_dt.datetime] = None
    closed_at: Optional[_dt.datetime] = None
    error: Optional[str] = None

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Session":
        """A Session from the API's JSON."""
        return cls(id=d["id"], sandbox_id=d.get("sandbox_id", ""),
                   status=SessionStatus.parse(d.get("status", "unknown")),
                   shell=d.get("shell") or "/bin/sh",
                   created_at=parse_time(d.get("created_at")),
                   closed_at=parse_time(d.get("closed_at")),
                   error=d.get("error") or None)
