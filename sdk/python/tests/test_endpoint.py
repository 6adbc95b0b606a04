"""Endpoints, auto-start of serve, and the connection's life."""

import asyncio
import os
import signal
import subprocess
import time

import pytest

import agentfense as af
from conftest import BIN, list_ids


def serves_in(rt):
    """Our serve processes whose XDG_RUNTIME_DIR is rt: {pid: argv}."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
            with open("/proc/%s/environ" % pid, "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if len(argv) > 1 and argv[1] == b"serve" and \
                ("XDG_RUNTIME_DIR=" + rt).encode() in env:
            found[int(pid)] = [a.decode() for a in argv if a]
    return found


def kill_and_wait(pid):
    os.kill(pid, signal.SIGTERM)
    for _ in range(500):
        if not os.path.exists("/proc/%d" % pid):
            return
        with open("/proc/%d/stat" % pid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return
        time.sleep(0.02)
    raise AssertionError("serve %d did not exit" % pid)


@pytest.fixture
def empty_runtime(tmp_path, monkeypatch):
    rt = tmp_path / "rt"
    rt.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(rt))
    yield str(rt)
    for pid in serves_in(str(rt)):
        kill_and_wait(pid)


@pytest.mark.parametrize("ep", ["localhost:9000", "127.0.0.1:9000", "[::1]:9000",
                                "http://localhost:9000", "grpc://sandbox:9000"])
def test_tcp_endpoint_is_refused_with_an_explanation(ep):
    with pytest.raises(af.InvalidConfigurationError, match="Unix socket") as e:
        af.SandboxClient(endpoint=ep)
    assert ep in str(e.value) and "unix:///" in str(e.value)
    with pytest.raises(af.InvalidConfigurationError, match="Unix socket"):
        af.AsyncSandboxClient(endpoint=ep)


def test_tcp_endpoint_creates_nothing(serve, project):
    before = list_ids("codebases")
    with pytest.raises(af.InvalidConfigurationError, match="no TCP"):
        af.Sandbox.from_local(str(project), endpoint="localhost:9000")
    with pytest.raises(af.InvalidConfigurationError, match="no TCP"):
        asyncio.run(af.AsyncSandbox.from_local(str(project), endpoint="localhost:9000"))
    assert list_ids("codebases") == before


def test_socket_path_and_unix_url(serve):
    for ep in (serve.socket, "unix://" + serve.socket, None):
        with af.SandboxClient(endpoint=ep) as c:
            assert c.socket_path == serve.socket
            assert "codebases" in c.version()["features"]
    with pytest.raises(af.InvalidConfigurationError, match="absolute"):
        af.SandboxClient(endpoint="unix://relative.sock")


def test_auto_start_when_nothing_listens(empty_runtime):
    assert serves_in(empty_runtime) == {}
    with af.SandboxClient() as c:
        assert c.socket_path == empty_runtime + "/agentfense/agentfense.sock"
        assert c.version()["api_version"] == "v1"
    (pid, argv), = serves_in(empty_runtime).items()
    assert argv == [BIN, "serve", "--idle-exit", "300"]
    # detached: not our child, not in our session
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    assert int(fields[1]) != os.getpid()
    assert int(fields[3]) != os.getsid(0)
    # a second client uses it rather than starting another
    with af.SandboxClient() as c:
        c.version()
    assert list(serves_in(empty_runtime)) == [pid]


def test_async_auto_start(empty_runtime):
    async def main():
        async with af.AsyncSandboxClient() as c:
            return await c.version()
    assert asyncio.run(main())["api_version"] == "v1"
    assert len(serves_in(empty_runtime)) == 1


def test_auto_start_without_a_binary(empty_runtime, monkeypatch, tmp_path):
    monkeypatch.setenv("AGENTFENSE_BIN", str(tmp_path / "no-such-agentfense"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(af.ConnectionError) as e:
        af.SandboxClient().version()
    msg = str(e.value)
    assert "cannot start agentfense serve on '%s/agentfense/agentfense.sock'" % empty_runtime in msg
    assert "AGENTFENSE_BIN is '%s'" % (tmp_path / "no-such-agentfense") in msg
    assert "not in PATH" in msg
    monkeypatch.delenv("AGENTFENSE_BIN")
    with pytest.raises(af.ConnectionError, match="AGENTFENSE_BIN is unset"):
        asyncio.run(af.AsyncSandboxClient().version())
    assert serves_in(empty_runtime) == {}


def test_auto_start_that_fails_says_what_serve_said(tmp_path):
    sock = str(tmp_path / "missing-dir" / "s.sock")
    with pytest.raises(af.ConnectionError) as e:
        af.SandboxClient(endpoint=sock).version()
    msg = str(e.value)
    assert msg.startswith("started '%s serve --socket %s', but it did not answer" % (BIN, sock))
    assert "it said: agentfense: cannot" in msg


def test_no_auto_start(empty_runtime):
    with pytest.raises(af.ConnectionError, match="cannot connect to agentfense serve on "
                       "'%s/agentfense/agentfense.sock': No such file" % empty_runtime):
        af.SandboxClient(auto_start=False).version()
    assert serves_in(empty_runtime) == {}


def test_idle_connection_closed_by_serve_is_reopened(tmp_path):
    sock = str(tmp_path / "s.sock")
    p = subprocess.Popen([BIN, "serve", "--socket", sock, "--client-timeout", "1"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    try:
        for _ in range(250):
            if os.path.exists(sock):
                break
            time.sleep(0.02)
        c = af.SandboxClient(endpoint=sock, auto_start=False)
        c.version()
        time.sleep(1.6)  # serve closes the idle connection
        assert c.list_codebases() == []

        async def main():
            async with af.AsyncSandboxClient(endpoint=sock, auto_start=False) as ac:
                await ac.version()
                await asyncio.sleep(1.6)
                return await ac.list_codebases()
        assert asyncio.run(main()) == []
        c.close()
    finally:
        p.terminate()
        out = p.communicate(timeout=30)[0]
    assert p.returncode == 0 and out == b""


def test_default_socket_directory_must_be_private(empty_runtime, tmp_path):
    d = empty_runtime + "/agentfense"
    os.mkdir(d, 0o755)
    os.chmod(d, 0o755)
    with pytest.raises(af.ConnectionError, match=r"refusing socket directory '%s': mode 0755 "
                       r"lets others in \(hint: run 'chmod 700 %s'\)" % (d, d)):
        af.SandboxClient().version()
    with pytest.raises(af.ConnectionError, match="mode 0755 lets others in"):
        asyncio.run(af.AsyncSandboxClient().version())
    os.rmdir(d)
    os.mkdir(tmp_path / "elsewhere", 0o700)
    os.symlink(tmp_path / "elsewhere", d)
    with pytest.raises(af.ConnectionError, match="'%s': not a directory" % d):
        af.SandboxClient().version()
    assert serves_in(empty_runtime) == {}
    os.unlink(d)
    # XDG_RUNTIME_DIR must be absolute, as for serve
    os.environ["XDG_RUNTIME_DIR"] = "relative"
    try:
        assert af.SandboxClient(auto_start=False).socket_path == \
            "/tmp/agentfense-%d/agentfense.sock" % os.getuid()
    finally:
        os.environ["XDG_RUNTIME_DIR"] = empty_runtime
