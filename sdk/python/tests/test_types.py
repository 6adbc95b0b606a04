"""The types, enums and the exception hierarchy (no server needed)."""

import builtins
import datetime

import pytest

import agentfense as af
from agentfense.types import parse_duration, parse_time


def test_enums_take_every_spelling():
    assert af.Permission.parse("read") is af.Permission.READ
    assert af.Permission.parse("PERMISSION_WRITE") is af.Permission.WRITE
    assert af.Permission.parse("VIEW") is af.Permission.VIEW
    assert af.Permission.NONE.value == "none"
    assert af.PatternType.parse("PATTERN_TYPE_DIRECTORY") is af.PatternType.DIRECTORY
    assert af.PatternType.FILE.value == "file"
    assert af.RuntimeType.parse("docker") is af.RuntimeType.DOCKER
    assert af.RuntimeType.BWRAP.value == "bwrap"
    assert af.SandboxStatus.parse("SANDBOX_STATUS_RUNNING") is af.SandboxStatus.RUNNING
    assert [s.value for s in af.SandboxStatus] == ["pending", "running", "stopped", "error"]
    assert af.SessionStatus.parse("active") is af.SessionStatus.ACTIVE
    assert af.SessionStatus.parse("weird") is af.SessionStatus.UNKNOWN
    with pytest.raises(ValueError, match="not a Permission"):
        af.Permission.parse("execute")


def test_permission_rule_and_dicts():
    r = af.PermissionRule("**/*.py")
    assert r.to_dict() == {"pattern": "**/*.py", "permission": "read", "type": "glob",
                           "priority": 0}
    r = af.PermissionRule(pattern="/docs/", permission="write", type="directory", priority=5)
    assert r.permission is af.Permission.WRITE and r.type is af.PatternType.DIRECTORY
    assert af.PermissionRule.from_dict({"pattern": "x", "level": "none"}).permission \
        is af.Permission.NONE
    with pytest.raises(ValueError, match="pattern"):
        af.PermissionRule.from_dict({"permission": "read"})


def test_resource_limits():
    assert af.ResourceLimits(memory_bytes=1 << 20, pids_limit=10).to_dict() == \
        {"memory_bytes": 1 << 20, "pids_limit": 10}
    assert af.ResourceLimits().to_dict() == {}
    assert af.ResourceLimits.from_dict({"cpu_quota": 0, "cpu_shares": 512}) == \
        af.ResourceLimits(cpu_shares=512)


def test_exec_result():
    r = af.ExecResult.from_dict({"stdout": "a\n", "stderr": "b\n", "exit_code": 0,
                                 "duration": "0.012s"}, command="x")
    assert r.success and r.output == "a\nb\n" and r.command == "x"
    assert r.duration == datetime.timedelta(milliseconds=12)
    assert r.stdout_bytes == b"a\n"
    r = af.ExecResult.from_dict({"stdout": "\ufffd", "stdout_base64": "/w==", "exit_code": 3})
    assert not r.success and r.exit_code == 3 and r.stdout_bytes == b"\xff"
    assert af.ExecResult("o", "e", 1).output == "oe"


def test_info_objects():
    s = af.SandboxInfo.from_dict({
        "id": "sb_1", "codebase_id": "cb_1", "status": "running",
        "permissions": [{"pattern": "a", "permission": "PERMISSION_WRITE", "type": "glob",
                         "priority": 1}],
        "labels": {"k": "v"}, "created_at": "2026-01-31T12:00:00.123456Z",
        "started_at": None, "runtime": "docker", "image": "/img", "future_field": 1})
    assert s.status is af.SandboxStatus.RUNNING and s.runtime is af.RuntimeType.DOCKER
    assert s.permissions[0].permission is af.Permission.WRITE
    assert s.created_at == datetime.datetime(2026, 1, 31, 12, 0, 0, 123456,
                                             tzinfo=datetime.timezone.utc)
    assert s.started_at is None and s.operation is None
    d = af.SandboxInfo.from_dict({"id": "sb_1", "status": "stopped", "operation": "destroying"})
    assert d.status is af.SandboxStatus.STOPPED and d.operation == "destroying"
    f = af.FileInfo.from_dict({"name": "a", "path": "d/a", "size": 3, "mode": "0644",
                               "mtime": "2026-01-31T12:00:00Z", "is_dir": False,
                               "type": "file"})
    assert (f.path, f.name, f.size, f.is_dir) == ("d/a", "a", 3, False)
    ss = af.Session.from_dict({"id": "ss_1", "sandbox_id": "sb_1", "status": "closed",
                               "shell": "/bin/sh", "error": "its shell exited 3"})
    assert ss.status is af.SessionStatus.CLOSED and ss.error == "its shell exited 3"
    c = af.Codebase.from_dict({"id": "cb_1", "name": "n", "file_count": 2, "size": 9})
    assert (c.id, c.owner_id, c.file_count, c.size) == ("cb_1", "", 2, 9)
    u = af.UploadResult(size=1, checksum="sha256:00")
    assert u.size == 1


def test_times_and_durations():
    assert parse_time("2026-01-31T12:00:00.1Z").microsecond == 100000
    assert parse_duration("1.5s") == datetime.timedelta(seconds=1.5)
    assert parse_duration("5m") == datetime.timedelta(minutes=5)
    assert parse_duration(2) == datetime.timedelta(seconds=2)


def test_exception_hierarchy():
    for name in ("SandboxNotFoundError", "SandboxNotRunningError", "CodebaseError",
                 "CodebaseNotFoundError", "FileNotFoundError", "CommandTimeoutError",
                 "CommandExecutionError", "PermissionDeniedError", "SessionError",
                 "SessionNotFoundError", "SessionClosedError", "ResourceLimitExceededError",
                 "InvalidConfigurationError", "ConnectionError", "UploadError"):
        assert issubclass(getattr(af, name), af.SandboxError), name
    assert issubclass(af.CodebaseNotFoundError, af.CodebaseError)
    assert issubclass(af.SessionClosedError, af.SessionError)
    assert issubclass(af.FileNotFoundError, builtins.FileNotFoundError)
    assert issubclass(af.ConnectionError, builtins.ConnectionError)
    assert issubclass(af.InvalidConfigurationError, ValueError)
    e = af.CommandExecutionError(2, "out", "boom\n", "make")
    assert (e.exit_code, e.stdout, e.stderr, e.command) == (2, "out", "boom\n", "make")
    assert str(e) == "command exited 2: make: boom"
    assert af.PermissionDeniedError(path="src/x").path == "src/x"
    assert str(af.FileNotFoundError(path="a")) == "'a' not found"


def test_every_public_name_is_documented():
    for name in af.__all__:
        obj = getattr(af, name)
        assert obj.__doc__ and obj.__doc__.strip(), name
        for attr, member in vars(obj).items() if isinstance(obj, type) else ():
            if attr.startswith("_") or not callable(member) and not isinstance(member, property):
                continue
            if isinstance(member, (classmethod, staticmethod)):
                member = member.__func__
            if getattr(member, "__module__", "agentfense").startswith("agentfense") or \
                    isinstance(member, property):
                assert member.__doc__ and member.__doc__.strip(), "%s.%s" % (name, attr)
