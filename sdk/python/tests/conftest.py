"""Fixtures for the SDK's tests: a real `agentfense serve`, started once
for the session as the user running the tests, in private runtime, data,
state and config directories, and the binary from $AGENTFENSE (make check
sets it; else the tree's build/agentfense).

With AF_PYTEST_TAP=FILE set (tests/run does), every result is also
written to FILE as a TAP line, so the runner counts these tests with the
others.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SDK = os.path.dirname(HERE)
TOP = os.path.dirname(os.path.dirname(SDK))
sys.path.insert(0, SDK)


def _binary():
    b = os.environ.get("AGENTFENSE") or os.path.join(TOP, "build", "agentfense")
    return os.path.abspath(b)


BIN = _binary()
# The session's own directories, set before anything reads them: the SDK
# then finds this serve on its default socket, and the presets of this
# binary (and no user's own).
ROOT = tempfile.mkdtemp(prefix="agentfense-sdk-tests-")
os.chmod(ROOT, 0o700)
for _d in ("rt", "data", "state", "config", "cache"):
    os.mkdir(os.path.join(ROOT, _d), 0o700)
os.environ.update(XDG_RUNTIME_DIR=os.path.join(ROOT, "rt"),
                  XDG_DATA_HOME=os.path.join(ROOT, "data"),
                  XDG_STATE_HOME=os.path.join(ROOT, "state"),
                  XDG_CONFIG_HOME=os.path.join(ROOT, "config"),
                  XDG_CACHE_HOME=os.path.join(ROOT, "cache"),
                  AGENTFENSE_BIN=BIN)
SOCK = os.path.join(ROOT, "rt", "agentfense", "agentfense.sock")
# Small enough to test the limit quickly.
MAX_UPLOAD = 4 << 20


class Serve:
    """The session's serve: its process, socket, log and features."""

    def __init__(self):
        self.log = os.path.join(ROOT, "serve.log")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [BIN, "serve", "--max-upload", str(MAX_UPLOAD)], stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        for _ in range(500):
            if os.path.exists(SOCK):
                break
            if self.proc.poll() is not None:
                raise RuntimeError("serve exited %s: %s" % (self.proc.returncode,
                                                          open(self.log).read()))
            time.sleep(0.02)
        else:
            raise RuntimeError("serve did not create %s" % SOCK)
        self.socket = SOCK
        self.features = set(raw("GET", "/v1/version")[1].get("features", []))

    def stop(self):
        """SIGTERM, then the exit status and the log: serve must exit 0
        without a word (a sanitizer report, a leak)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with open(self.log, errors="replace") as f:
            return self.proc.returncode, f.read()


def raw(method, path, body=None, sock=SOCK):
    """One request with nothing of the SDK in the way: (status, JSON)."""
    import http.client
    c = http.client.HTTPConnection("agentfense")
    c.sock = socket.socket(socket.AF_UNIX)
    c.sock.connect(sock)
    c.request(method, path, body=json.dumps(body) if body is not None else None)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data) if data.strip() else None


_serve = None


def serve_instance():
    global _serve
    if _serve is None:
        _serve = Serve()
    return _serve


@pytest.fixture(scope="session")
def serve():
    """The session's serve (started on first use)."""
    return serve_instance()


@pytest.fixture
def sandboxes(serve):
    """Skip (saying why) where this serve has no sandbox routes."""
    missing = {"sandboxes", "exec"} - serve.features
    if missing:
        pytest.skip("this agentfense serve lacks %s (features: %s)"
                    % (", ".join(sorted(missing)), ", ".join(sorted(serve.features))))
    return serve


def needs(serve, *features):
    missing = set(features) - serve.features
    if missing:
        pytest.skip("this agentfense serve lacks %s" % ", ".join(sorted(missing)))


@pytest.fixture
def project(tmp_path):
    """A small project: code, a secret, an output directory."""
    p = tmp_path / "project"
    (p / "src").mkdir(parents=True)
    (p / "output").mkdir()
    (p / "src" / "main.py").write_text("print('hello from main')\n")
    (p / "README.md").write_text("# demo\n")
    (p / ".env").write_text("API_KEY=sk-secret\n")
    (p / "build.log").write_text("noise\n")
    (p / ".gitignore").write_text("*.log\n")
    return p


def list_ids(kind):
    """The ids of every codebase or sandbox serve has now."""
    st, j = raw("GET", "/v1/" + kind)
    assert st == 200, j
    return {x["id"] for x in j[kind]}


def pytest_sessionfinish(session, exitstatus):
    if _serve is not None:
        code, log = _serve.stop()
        tap = os.environ.get("AF_PYTEST_TAP")
        if code != 0 or log.strip():
            msg = "serve exited %s; its output: %s" % (code, log.strip())
            print("\n" + msg, file=sys.stderr)
            if tap:
                _tap_line("not ok", "serve exits 0 and silently at the end", msg)
            session.exitstatus = 1
        elif tap:
            _tap_line("ok", "serve exits 0 and silently at the end")
    if os.environ.get("AF_PYTEST_TAP"):
        with open(os.environ["AF_PYTEST_TAP"], "a") as f:
            f.write("1..%d\n" % _tap["n"])
    shutil.rmtree(ROOT, ignore_errors=True)


# --- TAP for tests/run ---------------------------------------------------------

_tap = {"n": 0}


def _tap_line(status, name, detail=""):
    _tap["n"] += 1
    with open(os.environ["AF_PYTEST_TAP"], "a") as f:
        f.write("%s %d - %s\n" % (status, _tap["n"], name))
        for ln in detail.splitlines()[-20:]:
            f.write("# %s\n" % ln)


@pytest.hookimpl(trylast=True)
def pytest_runtest_logreport(report):
    if not os.environ.get("AF_PYTEST_TAP"):
        return
    name = "sdk: " + report.nodeid.split("/")[-1]
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if report.skipped:
            reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
            _tap_line("ok", "%s # skip %s" % (name, reason.replace("Skipped: ", "")))
        elif report.passed:
            _tap_line("ok", name)
        else:
            _tap_line("not ok", name, str(report.longrepr))
    elif report.when == "teardown" and report.failed:
        _tap_line("not ok", name + " (teardown)", str(report.longrepr))
