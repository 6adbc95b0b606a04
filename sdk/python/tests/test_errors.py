"""How serve's error codes become exceptions: the whole table, then the
cases a real serve gives that the other tests do not reach."""

import pytest

import agentfense as af
from agentfense import _api

SB, CB, SS = "sb_" + "1" * 32, "cb_" + "2" * 32, "ss_" + "3" * 32
CASES = [
    # status, code, message, request context, exception
    (404, "not_found", "no sandbox '%s'" % SB, {"kind": "file", "sandbox_id": SB},
     af.SandboxNotFoundError),
    (404, "not_found", "'a' does not exist", {"kind": "file", "sandbox_id": SB, "path": "a"},
     af.FileNotFoundError),
    (404, "not_found", "no codebase '%s'" % CB, {"kind": "sandbox", "codebase_id": CB},
     af.CodebaseNotFoundError),
    (404, "not_found", "no session '%s'" % SS, {"kind": "session", "session_id": SS},
     af.SessionNotFoundError),
    (404, "not_found", "no preset 'x'", {"kind": "preset"}, af.InvalidConfigurationError),
    (404, "not_found", "no route '/v1/x'", {"kind": "sandbox", "sandbox_id": SB},
     af.SandboxError),
    (409, "not_running", "sandbox is stopped", {"kind": "sandbox", "sandbox_id": SB},
     af.SandboxNotRunningError),
    (409, "not_running", "session %s is closed" % SS, {"kind": "session", "session_id": SS},
     af.SessionClosedError),
    (409, "conflict", "session busy", {"kind": "session", "session_id": SS}, af.SessionError),
    (409, "conflict", "in use", {"kind": "codebase", "codebase_id": CB}, af.CodebaseError),
    (409, "conflict", "a directory", {"kind": "file", "codebase_id": CB, "upload": True},
     af.UploadError),
    (409, "conflict", "cannot start", {"kind": "sandbox", "sandbox_id": SB}, af.SandboxError),
    (403, "permission_denied", "read-only", {"kind": "file", "path": "src/x"},
     af.PermissionDeniedError),
    (400, "invalid_argument", "bad field", {"kind": "sandbox"}, af.InvalidConfigurationError),
    (413, "payload_too_large", "too big", {"kind": "sandbox", "sandbox_id": SB},
     af.ResourceLimitExceededError),
    (413, "resource_exhausted", "upload too large", {"kind": "file", "codebase_id": CB},
     af.ResourceLimitExceededError),
    (429, "resource_exhausted", "too many sandboxes", {"kind": "sandbox"},
     af.ResourceLimitExceededError),
    (503, "resource_exhausted", "too many connections", {}, af.ResourceLimitExceededError),
    (507, "resource_exhausted", "no space left", {"kind": "codebase"},
     af.ResourceLimitExceededError),
    (405, "method_not_allowed", "PATCH is not allowed", {"kind": "sandbox"}, af.SandboxError),
    (500, "internal", "oops", {"kind": "sandbox"}, af.SandboxError),
    (503, "unavailable", "later", {"kind": "sandbox"}, af.SandboxError),
]


@pytest.mark.parametrize("status,code,msg,ctx,cls", CASES)
def test_error_code_mapping(status, code, msg, ctx, cls):
    e = _api.map_error(status, code, msg, ctx)
    assert type(e) is cls
    assert (e.code, e.status) == (code, status)
    assert str(e) == msg or str(e).startswith(msg)


def test_a_reply_that_is_not_json():
    e = _api.error_for(502, b"Bad Gateway\n", {"kind": "sandbox"})
    assert type(e) is af.SandboxError and str(e) == "Bad Gateway" and e.code == ""


def test_method_not_allowed_from_serve(serve):
    with af.SandboxClient() as c:
        with pytest.raises(af.SandboxError) as e:
            c._t.call(_api.Req("PATCH", "/v1/codebases"))
    assert type(e.value) is af.SandboxError
    assert (e.value.code, e.value.status) == ("method_not_allowed", 405)
    assert "GET" in str(e.value) and "POST" in str(e.value)
