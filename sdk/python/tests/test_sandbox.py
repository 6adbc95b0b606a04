"""The high-level Sandbox and the client's sandbox and exec methods,
against a real serve."""

import asyncio
import datetime
import os
import subprocess
import sys
import time
import warnings

import pytest

import agentfense as af
from conftest import list_ids, needs

pytestmark = pytest.mark.usefixtures("sandboxes")
NOBODY_SB = "sb_" + "0" * 32
NOBODY_CB = "cb_" + "0" * 32


def test_from_local_run_and_cleanup(project):
    before_cb, before_sb = list_ids("codebases"), list_ids("sandboxes")
    with af.Sandbox.from_local(str(project)) as sb:
        assert sb.id.startswith("sb_") and len(sb.id) == 35
        assert sb.status is af.SandboxStatus.RUNNING and sb.runtime is af.RuntimeType.BWRAP
        assert list_ids("codebases") - before_cb == {sb.codebase_id}
        assert list_ids("sandboxes") - before_sb == {sb.id}
        assert sb.info.preset == "agent-safe" and sb.info.id == sb.id
        assert sb.codebase.name == "project" and sb.codebase.id == sb.codebase_id
        r = sb.run("cat src/main.py; echo err >&2; exit 3")
        assert (r.stdout, r.stderr, r.exit_code, r.success) == \
            ("print('hello from main')\n", "err\n", 3, False)
        assert r.command == "cat src/main.py; echo err >&2; exit 3"
        assert isinstance(r.duration, datetime.timedelta) and r.duration.total_seconds() < 30
        # agent-safe hides the secret; .gitignore kept build.log out
        assert sb.run("ls -A /workspace").stdout.split() == \
            [".gitignore", "README.md", "output", "src"]
        assert sb.run("pwd").stdout == "/workspace\n"
        assert repr(sb) == "<Sandbox %s running>" % sb.id
    assert list_ids("codebases") == before_cb and list_ids("sandboxes") == before_sb


def test_cleanup_when_the_body_raises_removes_only_what_it_created(project):
    with af.SandboxClient() as c:
        keep = c.create_codebase("keep", source_path=str(project))
        other = c.create_sandbox(keep.id)
        try:
            with pytest.raises(RuntimeError, match="boom"):
                with af.Sandbox.from_local(str(project)) as sb:
                    mine = (sb.id, sb.codebase_id)
                    raise RuntimeError("boom")
            assert mine[0] not in list_ids("sandboxes")
            assert mine[1] not in list_ids("codebases")
            with pytest.raises(ZeroDivisionError):
                with af.Sandbox.from_codebase(keep.id) as sb:
                    sid = sb.id
                    1 / 0
            assert sid not in list_ids("sandboxes")
            with af.Sandbox.connect(other.id) as sb:
                assert sb.status is af.SandboxStatus.PENDING and sb.codebase_id == keep.id
            assert other.id in list_ids("sandboxes") and keep.id in list_ids("codebases")
            # destroy() of a connected sandbox keeps its codebase unless asked
            sb = af.Sandbox.connect(other.id)
            assert sb.destroy()["fate"] in ("none", "discarded", "synced")
            sb.close()
            assert other.id not in list_ids("sandboxes") and keep.id in list_ids("codebases")
        finally:
            if other.id in list_ids("sandboxes"):
                c.destroy_sandbox(other.id)
            c.delete_codebase(keep.id)


def test_exec_options(project):
    with af.Sandbox.from_local(str(project)) as sb:
        r = sb.exec("cat; echo $FOO; pwd", stdin="in\n", env={"FOO": "bar"}, workdir="src")
        assert r.stdout == "in\nbar\n/workspace/src\n"
        assert sb.exec("pwd", workdir="/workspace/output").stdout == "/workspace/output\n"
        assert sb.exec(["printf", "%s|", "a b", "c"]).stdout == "a b|c|"
        assert sb.exec("od -An -tx1", stdin=b"\xff\x00\x01").stdout.split() == \
            ["ff", "00", "01"]
        r = sb.exec("printf '\\377\\376ok'")
        assert r.stdout_bytes == b"\xff\xfeok" and r.stdout.endswith("ok")
        r = sb.run("no-such-command-here")
        assert r.exit_code == 127 and "not found" in r.stderr
        r = sb.run("kill -9 $$")
        assert r.exit_code == 137 and r.signal == 9
        r = sb.exec("true", timeout=datetime.timedelta(seconds=5))
        assert r.success and r.output == ""


def test_timeouts(project):
    with af.Sandbox.from_local(str(project)) as sb:
        t0 = time.monotonic()
        with pytest.raises(af.CommandTimeoutError) as e:
            sb.run("echo started; sleep 30", timeout=1)
        assert time.monotonic() - t0 < 15
        assert e.value.result.exit_code == 124 and e.value.result.timed_out
        assert e.value.stdout == "started\n" and e.value.timeout == 1
        assert e.value.command == "echo started; sleep 30"
        with pytest.raises(af.CommandTimeoutError):
            sb.exec("sleep 30", timeout=datetime.timedelta(milliseconds=500))
        assert sb.run("echo still here").stdout == "still here\n"


def test_raise_on_error(project):
    with af.Sandbox.from_local(str(project)) as sb:
        with pytest.raises(af.CommandExecutionError) as e:
            sb.run("echo out; echo bad >&2; exit 2", raise_on_error=True)
        assert (e.value.exit_code, e.value.stdout, e.value.stderr) == (2, "out\n", "bad\n")
        assert e.value.command == "echo out; echo bad >&2; exit 2"
        assert sb.run("true", raise_on_error=True).success


def test_files_through_the_view(project, serve):
    needs(serve, "sandbox_files")
    with af.Sandbox.from_local(str(project)) as sb:
        assert sb.read_file("README.md") == "# demo\n"
        assert sb.read_file("/workspace/README.md") == "# demo\n"
        with pytest.raises(af.FileNotFoundError) as e:
            sb.read_file(".env")  # hidden by agent-safe: not there at all
        assert e.value.path == ".env" and e.value.code == "not_found"
        with pytest.raises(af.FileNotFoundError):
            sb.read_file_bytes("no/such/file")
        with pytest.raises(af.PermissionDeniedError) as e:
            sb.write_file("src/main.py", "hacked")
        assert e.value.path == "src/main.py" and e.value.status == 403
        assert sb.read_file("src/main.py") == "print('hello from main')\n"
        sb.write_file("output/result.txt", "result\n")
        sb.write_file("/workspace/output/b.bin", bytes(range(256)))
        assert sb.read_file_bytes("output/b.bin") == bytes(range(256))
        assert sb.run("cat output/result.txt").stdout == "result\n"
        sb.run("echo made > output/by-cmd")
        assert sb.read_file("output/by-cmd") == "made\n"
        top = {f.path: f for f in sb.list_files()}
        assert sorted(top) == [".gitignore", "README.md", "output", "src"]
        assert top["src"].is_dir and not top["README.md"].is_dir and top["README.md"].size == 7
        deep = [f.path for f in sb.list_files("/", recursive=True)]
        assert "src/main.py" in deep and "output/b.bin" in deep and ".env" not in deep
        assert [f.name for f in sb.list_files("output")] == ["b.bin", "by-cmd", "result.txt"]
        with pytest.raises(af.FileNotFoundError):
            sb.list_files("secrets")


def test_lifecycle(project):
    with af.Sandbox.from_local(str(project), auto_start=False) as sb:
        assert sb.status is af.SandboxStatus.PENDING
        with pytest.raises(af.SandboxNotRunningError) as e:
            sb.run("true")
        assert e.value.code == "not_running" and e.value.status == 409
        with pytest.raises(af.SandboxNotRunningError):
            sb.exec("true")
        assert sb.start() is sb and sb.status is af.SandboxStatus.RUNNING
        assert sb.info.started_at is not None
        sb.start()  # idempotent
        sb.run("echo kept > output/x")
        sb.stop()
        assert sb.status is af.SandboxStatus.STOPPED
        with pytest.raises(af.SandboxNotRunningError):
            sb.exec("true")
        with pytest.raises(af.SandboxNotRunningError):
            list(sb.exec_stream("true"))
        assert sb.refresh().status is af.SandboxStatus.STOPPED
        sb.start()
        assert sb.run("cat output/x").stdout == "kept\n"
        sid, cid = sb.id, sb.codebase_id
        delta = sb.destroy()
        assert delta["fate"] == "synced" and delta["written"] >= 1
    assert sid not in list_ids("sandboxes") and cid not in list_ids("codebases")
    with pytest.raises(af.SandboxNotFoundError):
        af.Sandbox.connect(sid)


def test_not_found_errors(serve):
    with af.SandboxClient() as c:
        for call in (lambda: c.get_sandbox(NOBODY_SB), lambda: c.start_sandbox(NOBODY_SB),
                     lambda: c.stop_sandbox(NOBODY_SB), lambda: c.destroy_sandbox(NOBODY_SB),
                     lambda: c.exec(NOBODY_SB, "true"),
                     lambda: list(c.exec_stream(NOBODY_SB, "true"))):
            with pytest.raises(af.SandboxNotFoundError) as e:
                call()
            assert e.value.sandbox_id == NOBODY_SB and NOBODY_SB in str(e.value)
        with pytest.raises(af.CodebaseNotFoundError):
            c.create_sandbox(NOBODY_CB)
        with pytest.raises(af.SandboxNotFoundError):
            af.Sandbox.connect(NOBODY_SB)
        cb = c.create_codebase("nf")
        try:
            with pytest.raises(af.InvalidConfigurationError, match="no-such-preset") as e:
                c.create_sandbox(cb.id, preset="no-such-preset")
            assert e.value.code == "invalid_argument" and e.value.status == 400
            with pytest.raises(af.InvalidConfigurationError, match="not a Permission"):
                c.create_sandbox(cb.id, permissions=[{"pattern": "x", "permission": "all"}])
        finally:
            c.delete_codebase(cb.id)


def test_docker_runtime_needs_an_image(project):
    before = list_ids("codebases"), list_ids("sandboxes")
    with pytest.raises(af.InvalidConfigurationError, match="DOCKER needs an image"):
        af.Sandbox.from_local(str(project), runtime=af.RuntimeType.DOCKER)
    with pytest.raises(af.InvalidConfigurationError, match="DOCKER needs an image"):
        af.Sandbox.from_codebase(NOBODY_CB, runtime="docker")
    with af.SandboxClient() as c:
        with pytest.raises(af.InvalidConfigurationError, match="DOCKER needs an image"):
            c.create_sandbox(NOBODY_CB, runtime=af.RuntimeType.DOCKER)
    # an image that is not there is named, and nothing is left behind
    with pytest.raises(af.InvalidConfigurationError, match="/no/such/image"):
        af.Sandbox.from_local(str(project), runtime=af.RuntimeType.DOCKER,
                              image="/no/such/image")
    assert (list_ids("codebases"), list_ids("sandboxes")) == before


def test_from_local_of_a_missing_directory(tmp_path):
    before = list_ids("codebases")
    with pytest.raises(af.FileNotFoundError, match="no directory"):
        af.Sandbox.from_local(str(tmp_path / "absent"))
    (tmp_path / "file").write_text("x")
    with pytest.raises(af.InvalidConfigurationError, match="not a directory"):
        af.Sandbox.from_local(str(tmp_path / "file"))
    assert list_ids("codebases") == before


def test_rules_presets_and_labels(project):
    perms = af.extend_preset("agent-safe", additions=[
        {"pattern": "/src/**", "permission": "write"},
        af.PermissionRule("/docs", af.Permission.WRITE, af.PatternType.DIRECTORY)])
    with af.Sandbox.from_local(str(project), permissions=perms, labels={"job": "t1"},
                               ignore_patterns=["README.md"], codebase_name="rules") as sb:
        assert sb.run("echo y >> src/main.py && mkdir -p docs && echo d > docs/a").success
        assert sb.run("test -e .env").exit_code == 1
        assert sb.run("test -e README.md").exit_code == 1  # not imported
        assert sb.info.labels == {"job": "t1"} and sb.codebase.name == "rules"
        assert {"pattern": "/src/**", "permission": "write", "type": "glob",
                "priority": 0} in [p.to_dict() for p in sb.info.permissions]
        with af.SandboxClient() as c:
            assert [s.id for s in c.list_sandboxes(labels={"job": "t1"})] == [sb.id]
            assert c.list_sandboxes(labels={"job": "t1", "other": "x"}) == []
            assert [s.id for s in c.list_sandboxes(codebase_id=sb.codebase_id)] == [sb.id]
            assert sb.id in [s.id for s in c.list_sandboxes(status=af.SandboxStatus.RUNNING)]
            assert sb.id not in [s.id for s in c.list_sandboxes(status="stopped")]
    af.register_preset("readme-only", [{"pattern": "/README.md", "permission": "read"}])
    assert "readme-only" in af.list_presets()
    with af.Sandbox.from_local(str(project), preset="readme-only") as sb:
        assert sb.info.preset == "view-only"
        assert sb.run("cat README.md").stdout == "# demo\n"
        assert "main.py" in sb.run("ls src").stdout  # the base, view-only: names
        r = sb.run("cat src/main.py")
        assert r.exit_code == 1 and "Permission denied" in r.stderr


def test_git_identity(project):
    # the project's own repository names who commits (as the user's
    # configuration on the host would)
    for args in (["init", "-q"], ["config", "user.name", "Ann Host"],
                 ["config", "user.email", "ann@host.example"]):
        subprocess.run(["git", "-C", str(project)] + args, check=True)
    show = "echo \"$GIT_AUTHOR_NAME <$GIT_AUTHOR_EMAIL> $GIT_COMMITTER_NAME\"; env | grep -c ^GIT_"
    with af.Sandbox.from_local(str(project)) as sb:
        assert sb.info.git_identity is True
        assert sb.run(show).stdout == "Ann Host <ann@host.example> Ann Host\n4\n"
        assert sb.run(show, env={"GIT_AUTHOR_NAME": "Other"}).stdout == \
            "Other <ann@host.example> Ann Host\n4\n"
    with af.Sandbox.from_local(str(project), git_identity=False) as sb:
        assert sb.info.git_identity is False
        assert sb.run(show).stdout == " <> \n0\n"

    async def main():
        async with await af.AsyncSandbox.from_local(str(project), git_identity=False) as sb:
            assert sb.info.git_identity is False
            assert (await sb.run(show)).stdout == " <> \n0\n"
    asyncio.run(main())
    with af.SandboxClient() as c:
        with pytest.raises(af.InvalidConfigurationError, match="git_identity"):
            c.create_sandbox(NOBODY_CB, git_identity="no")


def test_exec_stream(project):
    with af.Sandbox.from_local(str(project)) as sb:
        got, times = [], []
        with sb.exec_stream("for i in 1 2 3; do echo out$i; echo err$i >&2; sleep 0.3; "
                            "done; exit 4") as st:
            for ch in st:
                assert isinstance(ch, bytes) and ch.stream in ("stdout", "stderr")
                got.append((ch.stream, bytes(ch)))
                times.append(time.monotonic())
        assert b"".join(b for s, b in got if s == "stdout") == b"out1\nout2\nout3\n"
        assert b"".join(b for s, b in got if s == "stderr") == b"err1\nerr2\nerr3\n"
        assert st.result.exit_code == 4 and st.exit_code == 4
        assert times[-1] - times[0] >= 0.5  # as it came, not all at the end
        # bytes that are not UTF-8 come through whole
        data = b"".join(sb.exec_stream("printf '\\377\\000\\303'"))
        assert data == b"\xff\x00\xc3"
        with pytest.raises(af.CommandTimeoutError):
            for _ in sb.exec_stream("echo x; sleep 30", timeout=1):
                pass
        # leaving early kills the command: it never writes its file
        st = sb.exec_stream("echo go; sleep 2; echo late > output/late")
        assert next(iter(st)) == b"go\n"
        st.close()
        time.sleep(3)
        assert sb.run("test -e output/late").exit_code == 1
        assert sb.client.exec(sb.id, "echo ok").stdout == "ok\n"


def test_client_low_level(project):
    with af.SandboxClient() as c:
        cb = c.create_codebase("ll", source_path=str(project))
        try:
            with warnings.catch_warnings(record=True) as said:
                warnings.simplefilter("always")
                info = c.create_sandbox(cb.id, preset="read-only", expires_in=3600,
                                        resources=af.ResourceLimits(pids_limit=64))
                assert info.status is af.SandboxStatus.PENDING
                started = c.start_sandbox(info.id)
            assert started.status is af.SandboxStatus.RUNNING
            # what the machine cannot enforce (as the CLI would say) is a warning
            assert [str(w.message) for w in said] == \
                ["agentfense: sandbox %s: %s" % (info.id, m)
                 for m in info.warnings + started.warnings]
            assert all(w.category is RuntimeWarning for w in said)
            assert info.resources.pids_limit == 64
            assert info.preset == "read-only" and info.expires_at is not None
            assert c.exec(info.id, "cat README.md").stdout == "# demo\n"
            r = c.exec(info.id, "yes | head -c 100000; yes e | head -c 10 >&2", max_output=1000)
            assert (len(r.stdout), r.stdout_truncated, r.stderr, r.stderr_truncated) == \
                (1000, True, "e\ne\ne\ne\ne\n", False)
            assert b"".join(c.exec_stream(info.id, "echo s")) == b"s\n"
            with pytest.raises(af.CodebaseError) as e:
                c.delete_codebase(cb.id)  # in use
            assert e.value.code == "conflict"
            assert c.stop_sandbox(info.id).status is af.SandboxStatus.STOPPED
            assert c.get_sandbox(info.id).stopped_at is not None
            assert c.destroy_sandbox(info.id)["fate"] in ("none", "synced", "discarded")
            gone = c.create_sandbox(cb.id, preset="full-access", on_destroy="discard",
                                    start=True)
            assert gone.on_destroy == "discard"
            c.exec(gone.id, "echo x > new-file")
            assert c.destroy_sandbox(gone.id)["fate"] == "discarded"
            assert "new-file" not in [f.path for f in c.list_files(cb.id)]
        finally:
            c.delete_codebase(cb.id, force=True)


def test_not_found_errors_of_files(serve):
    needs(serve, "sandbox_files")
    with af.SandboxClient() as c:
        for call in (lambda: c.sandbox_read_file(NOBODY_SB, "x"),
                     lambda: c.sandbox_write_file(NOBODY_SB, "x", "y"),
                     lambda: c.sandbox_list_files(NOBODY_SB)):
            with pytest.raises(af.SandboxNotFoundError):
                call()


def test_docker_runtime_on_an_image(project, tmp_path):
    tools = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__))))), "tests", "tools")
    root, oci = str(tmp_path / "rootfs"), str(tmp_path / "oci")
    subprocess.run([os.path.join(tools, "mkrootfs"), root], check=True)
    subprocess.run([sys.executable, os.path.join(tools, "mkoci"), oci, root], check=True)
    for image in (oci, root):
        with pytest.warns(RuntimeWarning, match="runtime docker: .*no Docker daemon"):
            sb = af.Sandbox.from_local(str(project), runtime=af.RuntimeType.DOCKER,
                                       image=image)
        with sb:
            assert sb.runtime is af.RuntimeType.DOCKER and sb.info.image == image
            r = sb.run("cat /etc/af-rootfs-marker; cat /workspace/README.md; "
                       "test -e /usr/bin/python3 || echo no-python")
            assert r.stdout == "af-rootfs\n# demo\nno-python\n", r.stderr


def test_registry_image_needs_skopeo(project, tmp_path, monkeypatch):
    before = list_ids("codebases"), list_ids("sandboxes")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(af.InvalidConfigurationError,
                       match=r"image 'python:3.11-slim' is a registry reference, and fetching "
                       r"one needs skopeo, which is not installed here"):
        af.Sandbox.from_local(str(project), runtime=af.RuntimeType.DOCKER,
                              image="python:3.11-slim")
    with af.SandboxClient() as c:
        with pytest.raises(af.InvalidConfigurationError, match="needs skopeo"):
            c.create_sandbox(NOBODY_CB, runtime="docker", image="docker://alpine:3")
    assert (list_ids("codebases"), list_ids("sandboxes")) == before


def test_registry_image_fetched_with_skopeo(project, tmp_path, monkeypatch):
    tools = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.dirname(os.path.abspath(__file__))))), "tests", "tools")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    calls = tmp_path / "calls"
    # skopeo as far as the SDK uses it: copy docker://REF oci:DIR:TAG
    (bindir / "skopeo").write_text(
        "#!/bin/sh\n"
        "echo \"$*\" >> %s\n"
        "[ \"$1\" = copy ] || exit 2\n"
        "case $2 in docker://example/tiny:1) ;; *) echo \"no such image $2\" >&2; exit 1;; esac\n"
        "dir=${3#oci:}; dir=${dir%%:*}\n"
        "%s/mkrootfs %s/rootfs >/dev/null && %s %s/mkoci \"$dir\" %s/rootfs\n"
        % (calls, tools, tmp_path, sys.executable, tools, tmp_path))
    (bindir / "skopeo").chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (bindir, os.environ["PATH"]))
    for _ in range(2):
        with pytest.warns(RuntimeWarning, match="no Docker daemon"):
            sb = af.Sandbox.from_local(str(project), runtime=af.RuntimeType.DOCKER,
                                       image="example/tiny:1")
        with sb:
            assert sb.info.image.startswith(os.environ["XDG_CACHE_HOME"] +
                                            "/agentfense/images/")
            assert sb.run("cat /etc/af-rootfs-marker").stdout == "af-rootfs\n"
    # fetched once, then taken from the cache
    call, = calls.read_text().splitlines()
    assert call.startswith("copy docker://example/tiny:1 oci:%s/.fetch-"
                           % os.path.dirname(sb.info.image)) and call.endswith(":latest")
    with pytest.raises(af.InvalidConfigurationError,
                       match="cannot fetch image 'example/other:2' with skopeo: no such image"):
        af.Sandbox.from_local(str(project), runtime=af.RuntimeType.DOCKER,
                              image="example/other:2")
