"""The requests of agentfense-api(7), built once for both clients.

Each operation is a function returning a :class:`Req`: method, path,
body, and a ``parse`` function from the reply to the SDK's types.  The
sync and async clients differ only in how they carry a Req, so both give
the same results and raise the same exceptions.
"""

import base64
import hashlib
import json
import os
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import quote, urlencode

from . import exceptions as E
from .types import (Codebase, ExecResult, FileInfo, PermissionRule, ResourceLimits,
                    RuntimeType, SandboxInfo, Session, StreamChunk, UploadResult,
                    rules_to_dicts, seconds)

# Added to a command's own timeout for the socket's: serve answers after
# killing the command, so a reply later than this means serve is stuck.
TIMEOUT_SLACK = 30.0
# Requests that run no command.
DEFAULT_TIMEOUT = 300.0
DOCKER_NEEDS_IMAGE = (
    "runtime DOCKER needs an image: pass image= an OCI layout directory or a root file "
    "system directory on this machine, or a registry reference where skopeo is installed "
    "(or use RuntimeType.BWRAP, which runs on the host's own system)")


class Req:
    """One request: what to send, how to read the reply, and what it is
    about (``ctx``: kind, ids, path, command) for the error it may get."""

    def __init__(self, method: str, route: str, query: Optional[Dict[str, Any]] = None,
                 body: Any = None, raw: Optional[bytes] = None,
                 parse: Optional[Callable[[Any], Any]] = None, expect: str = "json",
                 timeout: Optional[float] = DEFAULT_TIMEOUT, **ctx):
        q = {k: v for k, v in (query or {}).items() if v is not None}
        self.method = method
        self.url = route + ("?" + urlencode(q, doseq=True) if q else "")
        self.headers = {"Accept": "application/json"}
        if raw is not None:
            self.body = raw
            self.headers["Content-Type"] = "application/octet-stream"
        elif body is not None:
            self.body = json.dumps(body).encode()
            self.headers["Content-Type"] = "application/json"
        else:
            self.body = b"" if method in ("POST", "PUT") else None
        self.parse = parse or (lambda j: j)
        self.expect = expect  # json, raw or ndjson
        self.timeout = timeout
        self.ctx = ctx

    def result(self, status: int, data: bytes):
        """The parsed reply, or the mapped exception raised."""
        if status >= 400:
            raise error_for(status, data, self.ctx)
        if self.expect == "raw":
            return self.parse(data)
        try:
            j = json.loads(data.decode("utf-8")) if data.strip() else {}
        except ValueError as e:
            raise E.SandboxError("serve sent a reply that is not JSON: %s" % e,
                                 status=status) from e
        return self.parse(j)


def error_for(status: int, data: bytes, ctx: Dict[str, Any]) -> E.SandboxError:
    """The exception for an error reply, from serve's code and what the
    request was about."""
    try:
        j = json.loads(data.decode("utf-8"))
        code, msg = j.get("code") or "", j.get("message") or ""
    except (ValueError, AttributeError):
        code, msg = "", data.decode("utf-8", "replace").strip()
    return map_error(status, code, msg or "HTTP status %d" % status, ctx)


def map_error(status: int, code: str, msg: str, ctx: Dict[str, Any]) -> E.SandboxError:
    """The exception for serve's error ``code`` (see agentfense-api(7))."""
    kind = ctx.get("kind", "")
    sb, cb, ss, path = (ctx.get("sandbox_id"), ctx.get("codebase_id"),
                        ctx.get("session_id"), ctx.get("path"))
    kw = {"code": code, "status": status or None}  # 0: an error event in a stream
    if code == "not_found":
        if msg.startswith("no route"):
            return E.SandboxError("%s: this agentfense serve does not offer it (is it older "
                                  "than this SDK? update agentfense)" % msg, **kw)
        if ss and ss in msg:
            return E.SessionNotFoundError(msg, session_id=ss, **kw)
        if sb and sb in msg:
            return E.SandboxNotFoundError(msg, sandbox_id=sb, **kw)
        if cb and cb in msg:
            return E.CodebaseNotFoundError(msg, codebase_id=cb, **kw)
        if kind == "file":
            return E.FileNotFoundError(msg, path=path, **kw)
        if kind == "session":
            return E.SessionNotFoundError(msg, session_id=ss, **kw)
        if kind == "sandbox":
            return E.SandboxNotFoundError(msg, sandbox_id=sb, **kw)
        if kind == "codebase":
            return E.CodebaseNotFoundError(msg, codebase_id=cb, **kw)
        if kind == "preset":
            return E.InvalidConfigurationError(msg, **kw)
        return E.SandboxError(msg, **kw)
    if code == "not_running":
        if ss:
            return E.SessionClosedError(msg, session_id=ss, **kw)
        return E.SandboxNotRunningError(msg, sandbox_id=sb, **kw)
    if code == "permission_denied":
        return E.PermissionDeniedError(msg, path=path, **kw)
    if ctx.get("upload") and code == "conflict":
        return E.UploadError(msg, **kw)
    if code == "invalid_argument":
        return E.InvalidConfigurationError(msg, **kw)
    if code in ("resource_exhausted", "payload_too_large") or status in (413, 429, 431, 507):
        return E.ResourceLimitExceededError(msg, **kw)
    if ss or kind == "session":
        return E.SessionError(msg, **kw)
    if cb and not sb:
        return E.CodebaseError(msg, **kw)
    return E.SandboxError(msg, **kw)


def _id(s: str, what: str) -> str:
    if not isinstance(s, str) or not s or "/" in s:
        raise E.InvalidConfigurationError("%s must be an id string, not %r" % (what, s))
    return quote(s, safe="")


def _rel(path: str) -> str:
    """A path in a sandbox or codebase as the URL wants it: relative to its
    root; "/workspace/x", "/x" and "x" are the same file."""
    p = os.fspath(path)
    if p == "/workspace" or p.startswith("/workspace/"):
        p = p[len("/workspace"):]
    return p.strip("/")


def _timeout_field(t) -> Optional[float]:
    try:
        return seconds(t)
    except ValueError as e:
        raise E.InvalidConfigurationError(str(e)) from None


def _having(labels: Optional[Dict[str, str]], objs: list) -> list:
    """The objects that carry every label: serve filters on one."""
    if not labels:
        return objs
    return [o for o in objs if all(o.labels.get(k) == v for k, v in labels.items())]


# --- codebases ---------------------------------------------------------------

def create_codebase(name: str, owner_id: Optional[str] = None,
                    labels: Optional[Dict[str, str]] = None, source_path: Optional[str] = None,
                    ignore_patterns: Optional[List[str]] = None,
                    max_file_size: Optional[int] = None) -> Req:
    body: Dict[str, Any] = {"name": name}
    if owner_id is not None:
        body["owner_id"] = owner_id
    if labels:
        body["labels"] = dict(labels)
    if source_path is not None:
        body["source_path"] = os.path.abspath(os.fspath(source_path))
    if ignore_patterns:
        body["ignore_patterns"] = list(ignore_patterns)
    if max_file_size is not None:
        body["max_file_size"] = int(max_file_size)
    return Req("POST", "/v1/codebases", body=body, parse=Codebase.from_dict, kind="codebase")


def get_codebase(codebase_id: str) -> Req:
    return Req("GET", "/v1/codebases/" + _id(codebase_id, "codebase_id"),
               parse=Codebase.from_dict, kind="codebase", codebase_id=codebase_id)


def list_codebases(owner_id: Optional[str] = None, labels: Optional[Dict[str, str]] = None) -> Req:
    q: Dict[str, Any] = {"owner_id": owner_id}
    if labels:
        q["label"] = ["%s=%s" % kv for kv in labels.items()]
    return Req("GET", "/v1/codebases", query=q, kind="codebase",
               parse=lambda j: _having(labels, [Codebase.from_dict(c)
                                                for c in j.get("codebases", [])]))


def delete_codebase(codebase_id: str, force: bool = False) -> Req:
    return Req("DELETE", "/v1/codebases/" + _id(codebase_id, "codebase_id"),
               query={"force": "true" if force else None}, parse=lambda j: None,
               kind="codebase", codebase_id=codebase_id)


def list_files(codebase_id: str, path: str = "/", recursive: bool = False) -> Req:
    return Req("GET", "/v1/codebases/%s/files" % _id(codebase_id, "codebase_id"),
               query={"path": _rel(path) or "/", "recursive": "true" if recursive else None},
               parse=lambda j: [FileInfo.from_dict(f) for f in j.get("files", [])],
               kind="file", codebase_id=codebase_id, path=path)


def download_file(codebase_id: str, file_path: str) -> Req:
    return Req("GET", "/v1/codebases/%s/files/%s" % (_id(codebase_id, "codebase_id"),
                                                     quote(_rel(file_path))),
               expect="raw", kind="file", codebase_id=codebase_id, path=file_path)


def upload_file(codebase_id: str, file_path: str, content, mode: Optional[int] = None) -> Req:
    data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    return Req("PUT", "/v1/codebases/%s/files/%s" % (_id(codebase_id, "codebase_id"),
                                                     quote(_rel(file_path))),
               query={"mode": "%04o" % mode if mode is not None else None}, raw=data,
               parse=lambda j: UploadResult(size=int(j.get("size", len(data))),
                                            checksum=digest, codebase_id=codebase_id,
                                            file_path=j.get("path", _rel(file_path))),
               kind="file", codebase_id=codebase_id, path=file_path, upload=True)


# --- sandboxes ---------------------------------------------------------------

def create_sandbox(codebase_id: str, permissions=None, preset: Optional[str] = None,
                   runtime=RuntimeType.BWRAP, image: Optional[str] = None,
                   resources=None, labels: Optional[Dict[str, str]] = None,
                   expires_in=None, start: bool = False, network: Optional[str] = None,
                   on_destroy: Optional[str] = None, git_identity: bool = True) -> Req:
    if not isinstance(git_identity, bool):
        raise E.InvalidConfigurationError("git_identity must be True or False, not %r"
                                          % (git_identity,))
    try:
        rt = RuntimeType.parse(runtime if runtime is not None else RuntimeType.BWRAP)
        rules = rules_to_dicts(permissions)
    except ValueError as e:
        raise E.InvalidConfigurationError(str(e)) from None
    if rt is RuntimeType.DOCKER and not image:
        raise E.InvalidConfigurationError(DOCKER_NEEDS_IMAGE)
    body: Dict[str, Any] = {"codebase_id": codebase_id, "runtime": rt.value}
    if preset is not None:
        body["preset"] = preset
    if rules:
        body["permissions"] = rules
    if image is not None:
        body["image"] = image  # a directory: see _images.resolve
    if resources is not None:
        r = resources.to_dict() if isinstance(resources, ResourceLimits) else dict(resources)
        if r:
            body["resources"] = r
    if labels:
        body["labels"] = dict(labels)
    if expires_in is not None:
        body["expires_in"] = _timeout_field(expires_in)
    if network is not None:
        body["network"] = network
    if on_destroy is not None:
        body["on_destroy"] = on_destroy
    if not git_identity:
        body["git_identity"] = False
    if start:
        body["start"] = True
    return Req("POST", "/v1/sandboxes", body=body, parse=SandboxInfo.from_dict,
               kind="sandbox", codebase_id=codebase_id)


def get_sandbox(sandbox_id: str) -> Req:
    return Req("GET", "/v1/sandboxes/" + _id(sandbox_id, "sandbox_id"),
               parse=SandboxInfo.from_dict, kind="sandbox", sandbox_id=sandbox_id)


def list_sandboxes(codebase_id: Optional[str] = None, status=None,
                   labels: Optional[Dict[str, str]] = None) -> Req:
    q: Dict[str, Any] = {"codebase_id": codebase_id,
                         "status": getattr(status, "value", status)}
    if labels:
        q["label"] = ["%s=%s" % kv for kv in labels.items()]
    return Req("GET", "/v1/sandboxes", query=q, kind="sandbox",
               parse=lambda j: _having(labels, [SandboxInfo.from_dict(s)
                                                for s in j.get("sandboxes", [])]))


def start_sandbox(sandbox_id: str) -> Req:
    return Req("POST", "/v1/sandboxes/%s/start" % _id(sandbox_id, "sandbox_id"),
               parse=SandboxInfo.from_dict, kind="sandbox", sandbox_id=sandbox_id)


def stop_sandbox(sandbox_id: str) -> Req:
    return Req("POST", "/v1/sandboxes/%s/stop" % _id(sandbox_id, "sandbox_id"),
               parse=SandboxInfo.from_dict, kind="sandbox", sandbox_id=sandbox_id)


def destroy_sandbox(sandbox_id: str) -> Req:
    return Req("DELETE", "/v1/sandboxes/" + _id(sandbox_id, "sandbox_id"),
               parse=lambda j: j.get("delta") or {}, kind="sandbox", sandbox_id=sandbox_id)


def sandbox_list_files(sandbox_id: str, path: str = "/", recursive: bool = False) -> Req:
    return Req("GET", "/v1/sandboxes/%s/files" % _id(sandbox_id, "sandbox_id"),
               query={"path": _rel(path) or "/", "recursive": "true" if recursive else "false"},
               parse=lambda j: [FileInfo.from_dict(f) for f in j.get("files", [])],
               kind="file", sandbox_id=sandbox_id, path=path)


def sandbox_read_file(sandbox_id: str, path: str) -> Req:
    return Req("GET", "/v1/sandboxes/%s/files/%s" % (_id(sandbox_id, "sandbox_id"),
                                                     quote(_rel(path))),
               expect="raw", kind="file", sandbox_id=sandbox_id, path=path)


def sandbox_write_file(sandbox_id: str, path: str, content) -> Req:
    data = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    return Req("PUT", "/v1/sandboxes/%s/files/%s" % (_id(sandbox_id, "sandbox_id"),
                                                     quote(_rel(path))), raw=data,
               kind="file", sandbox_id=sandbox_id, path=path)


# --- exec ----------------------------------------------------------------------

def _exec_body(command, stdin=None, env=None, workdir=None, timeout=None,
               max_output=None) -> Dict[str, Any]:
    body: Dict[str, Any] = {}
    if isinstance(command, str):
        body["command"] = command
    elif isinstance(command, (list, tuple)) and command and all(isinstance(a, str) for a in command):
        body["argv"] = list(command)
    else:
        raise E.InvalidConfigurationError(
            "command must be a string (run by /bin/sh -c) or a non-empty list of strings, "
            "not %r" % (command,))
    if stdin is not None:
        if isinstance(stdin, str):
            body["stdin"] = stdin
        else:
            body["stdin_base64"] = base64.b64encode(bytes(stdin)).decode()
    if env:
        body["env"] = {str(k): str(v) for k, v in env.items()}
    if workdir is not None:
        body["workdir"] = os.fspath(workdir)
    t = _timeout_field(timeout)
    if t is not None:
        body["timeout"] = t
    if max_output is not None:
        body["max_output"] = int(max_output)
    return body


def _cmd_text(command) -> str:
    return command if isinstance(command, str) else " ".join(command)


def _exec_parse(command, t):
    def parse(j):
        r = ExecResult.from_dict(j, command=_cmd_text(command))
        if r.timed_out:
            raise E.CommandTimeoutError("command timed out after %gs: %s" % (t, r.command),
                                        command=r.command, timeout=t, result=r)
        return r
    return parse


def _read_timeout(t) -> Optional[float]:
    s = _timeout_field(t)
    return s + TIMEOUT_SLACK if s is not None else None


def exec_(sandbox_id: str, command, stdin=None, env=None, workdir=None, timeout=None,
          max_output=None, stream: bool = False) -> Req:
    body = _exec_body(command, stdin, env, workdir, timeout, max_output)
    return Req("POST", "/v1/sandboxes/%s/exec%s" % (_id(sandbox_id, "sandbox_id"),
                                                    "/stream" if stream else ""),
               body=body, parse=_exec_parse(command, body.get("timeout")),
               expect="ndjson" if stream else "json", timeout=_read_timeout(timeout),
               kind="sandbox", sandbox_id=sandbox_id, command=_cmd_text(command))


# --- sessions ------------------------------------------------------------------

def create_session(sandbox_id: str, shell: str = "/bin/sh", env=None, workdir=None) -> Req:
    body: Dict[str, Any] = {"shell": shell or "/bin/sh"}
    if env:
        body["env"] = {str(k): str(v) for k, v in env.items()}
    if workdir is not None:
        body["workdir"] = os.fspath(workdir)
    return Req("POST", "/v1/sandboxes/%s/sessions" % _id(sandbox_id, "sandbox_id"),
               body=body, parse=Session.from_dict, kind="sandbox", sandbox_id=sandbox_id)


def get_session(session_id: str) -> Req:
    return Req("GET", "/v1/sessions/" + _id(session_id, "session_id"),
               parse=Session.from_dict, kind="session", session_id=session_id)


def list_sessions(sandbox_id: str) -> Req:
    return Req("GET", "/v1/sandboxes/%s/sessions" % _id(sandbox_id, "sandbox_id"),
               parse=lambda j: [Session.from_dict(s) for s in j.get("sessions", [])],
               kind="sandbox", sandbox_id=sandbox_id)


def destroy_session(session_id: str) -> Req:
    return Req("DELETE", "/v1/sessions/" + _id(session_id, "session_id"),
               parse=lambda j: None, kind="session", session_id=session_id)


def session_exec(session_id: str, command: str, timeout=None, stdin=None,
                 stream: bool = False) -> Req:
    if not isinstance(command, str):
        raise E.InvalidConfigurationError("a session runs a command string, not %r" % (command,))
    body = _exec_body(command, stdin, None, None, timeout)
    return Req("POST", "/v1/sessions/%s/exec%s" % (_id(session_id, "session_id"),
                                                   "/stream" if stream else ""),
               body=body, parse=_exec_parse(command, body.get("timeout")),
               expect="ndjson" if stream else "json", timeout=_read_timeout(timeout),
               kind="session", session_id=session_id, command=command)


# --- presets -------------------------------------------------------------------

def list_presets_req() -> Req:
    return Req("GET", "/v1/presets", kind="preset", parse=lambda j: j.get("presets", []))


def get_preset_req(name: str) -> Req:
    return Req("GET", "/v1/presets/" + _id(name, "preset name"), kind="preset")


def version() -> Req:
    return Req("GET", "/v1/version")


# --- streams -------------------------------------------------------------------

class StreamState:
    """Turns a stream's ndjson events into output chunks and its end."""

    def __init__(self, req: Req):
        self.req = req
        self.result: Optional[ExecResult] = None

    def event(self, ev: Dict[str, Any]) -> Optional[StreamChunk]:
        """The chunk of an output event; None for the final one (then
        ``result`` is set, or the mapped error raised)."""
        t = ev.get("type")
        if t in ("stdout", "stderr"):
            if "data_base64" in ev:
                data = base64.b64decode(ev["data_base64"])
            else:
                data = (ev.get("data") or "").encode("utf-8", "surrogatepass")
            return StreamChunk(data, t)
        if t == "exit":
            self.result = self.req.parse(dict(ev, stdout="", stderr=""))
            return None
        if t == "error":
            raise map_error(0, ev.get("code") or "", ev.get("message") or "stream error",
                            self.req.ctx)
        return None  # an event this SDK does not know

    def ended(self) -> ExecResult:
        """The result at the end of the stream; a stream cut short is an error."""
        if self.result is None:
            raise E.ConnectionError("the exec stream ended without the command's exit status")
        return self.result


def parse_line(line: bytes) -> Dict[str, Any]:
    try:
        ev = json.loads(line.decode("utf-8"))
    except ValueError as e:
        raise E.SandboxError("serve sent a stream line that is not JSON: %s" % e) from None
    if not isinstance(ev, dict):
        raise E.SandboxError("serve sent a stream line that is not a JSON object")
    return ev


def rules_of(preset_json: Dict[str, Any]) -> List[PermissionRule]:
    """A preset's rules from serve's or the CLI's JSON (``permission`` or
    ``level``)."""
    return [PermissionRule.from_dict(r) for r in preset_json.get("rules", [])]
