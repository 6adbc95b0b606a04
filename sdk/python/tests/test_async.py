"""The async API: the same as the sync one, with await, on asyncio."""

import asyncio
import time

import pytest

import agentfense as af
from conftest import list_ids, needs

pytestmark = pytest.mark.usefixtures("sandboxes")


def test_async_sandbox(project, serve):
    before = list_ids("codebases"), list_ids("sandboxes")

    async def main():
        async with await af.AsyncSandbox.from_local(str(project)) as sb:
            assert sb.status is af.SandboxStatus.RUNNING and sb.runtime is af.RuntimeType.BWRAP
            r = await sb.run("cat src/main.py")
            assert r.stdout == "print('hello from main')\n" and r.success
            r = await sb.exec("cat; echo $V; pwd", stdin="i\n", env={"V": "v"}, workdir="src")
            assert r.stdout == "i\nv\n/workspace/src\n"
            with pytest.raises(af.CommandTimeoutError):
                await sb.run("sleep 30", timeout=1)
            with pytest.raises(af.CommandExecutionError) as e:
                await sb.run("exit 5", raise_on_error=True)
            assert e.value.exit_code == 5
            chunks = [c async for c in sb.exec_stream("echo a; echo b >&2; exit 2")]
            assert sorted((c.stream, bytes(c)) for c in chunks) == \
                [("stderr", b"b\n"), ("stdout", b"a\n")]
            await sb.run("printf o > output/o.txt")
            assert (await sb.get_codebase()).id == sb.codebase_id
            if "sessions" in serve.features:
                async with sb.session() as s:
                    await s.exec("cd src; export Q=1")
                    assert (await s.exec("pwd; echo $Q")).stdout == "/workspace/src\n1\n"
                    assert b"".join([c async for c in s.exec_stream("echo z")]) == b"z\n"
                s2 = await sb.session(env={"E": "e"})
                assert (await s2.exec("echo $E")).stdout == "e\n"
                await s2.close()
                with pytest.raises(af.SessionClosedError):
                    await s2.exec("true")
            await sb.stop()
            with pytest.raises(af.SandboxNotRunningError):
                await sb.run("true")
            assert (await sb.refresh()).status is af.SandboxStatus.STOPPED
            await sb.start()
            assert (await sb.run("cat output/o.txt")).stdout == "o"
            sid = sb.id
        with pytest.raises(af.SandboxNotFoundError):
            await af.AsyncSandbox.connect(sid)
        with pytest.raises(af.InvalidConfigurationError, match="DOCKER needs an image"):
            await af.AsyncSandbox.from_local(str(project), runtime=af.RuntimeType.DOCKER)
        with pytest.raises(KeyError):
            async with await af.AsyncSandbox.from_local(str(project)) as sb:
                raise KeyError("boom")
        async with af.AsyncSandboxClient() as c:
            cb = await c.create_codebase("acb", source_path=str(project))
            async with await af.AsyncSandbox.from_codebase(cb.id, preset="read-only") as sb:
                assert (await sb.run("cat README.md")).stdout == "# demo\n"
                async with await af.AsyncSandbox.connect(sb.id) as other:
                    assert other.id == sb.id
                assert sb.id in [s.id for s in await c.list_sandboxes(codebase_id=cb.id)]
            await c.delete_codebase(cb.id)
    asyncio.run(main())
    assert (list_ids("codebases"), list_ids("sandboxes")) == before


def test_async_client_low_level(project):
    async def main():
        async with af.AsyncSandboxClient() as c:
            cb = await c.create_codebase("acl", source_path=str(project))
            try:
                info = await c.create_sandbox(cb.id, start=True)
                assert info.status is af.SandboxStatus.RUNNING
                assert (await c.get_sandbox(info.id)).id == info.id
                assert (await c.exec(info.id, ["echo", "x"])).stdout == "x\n"
                st = c.exec_stream(info.id, "echo y")
                assert b"".join([x async for x in st]) == b"y\n" and st.exit_code == 0
                assert (await c.stop_sandbox(info.id)).status is af.SandboxStatus.STOPPED
                assert (await c.start_sandbox(info.id)).status is af.SandboxStatus.RUNNING
                with pytest.raises(af.SandboxNotFoundError):
                    await c.exec("sb_" + "0" * 32, "true")
                await c.destroy_sandbox(info.id)
            finally:
                await c.delete_codebase(cb.id, force=True)
    asyncio.run(main())


def test_async_files(project, serve):
    needs(serve, "sandbox_files")

    async def main():
        async with await af.AsyncSandbox.from_local(str(project)) as sb:
            await sb.write_file("output/o.txt", "o")
            assert await sb.read_file("output/o.txt") == "o"
            assert await sb.read_file_bytes("README.md") == b"# demo\n"
            with pytest.raises(af.FileNotFoundError):
                await sb.read_file(".env")
            with pytest.raises(af.PermissionDeniedError):
                await sb.write_file("src/main.py", "x")
            assert "src" in [f.path for f in await sb.list_files()]
            c = sb.client
            assert (await c.sandbox_read_file(sb.id, "README.md")) == b"# demo\n"
            await c.sandbox_write_file(sb.id, "output/w", b"w")
            assert [f.name for f in await c.sandbox_list_files(sb.id, "output")] == \
                ["o.txt", "w"]
    asyncio.run(main())


def test_fifty_sandboxes_with_gather(project):
    before = list_ids("codebases"), list_ids("sandboxes")

    async def one(i):
        async with await af.AsyncSandbox.from_local(str(project)) as sb:
            a = await sb.run("echo %d" % i)
            b = await sb.run("cat src/main.py")
            return a.stdout, b.stdout, sb.id

    async def main():
        return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(50))), 180)

    t0 = time.monotonic()
    results = asyncio.run(main())
    took = time.monotonic() - t0
    assert [r[0] for r in results] == ["%d\n" % i for i in range(50)]
    assert all(r[1] == "print('hello from main')\n" for r in results)
    assert len({r[2] for r in results}) == 50
    assert took < 180
    assert (list_ids("codebases"), list_ids("sandboxes")) == before


def test_async_twins_have_the_same_methods():
    import inspect
    for sync, aio in ((af.SandboxClient, af.AsyncSandboxClient), (af.Sandbox, af.AsyncSandbox),
                      (af.SessionWrapper, af.AsyncSessionWrapper),
                      (af.ExecStream, af.AsyncExecStream)):
        for name, f in vars(sync).items():
            if name.startswith("_") or not callable(f) and not isinstance(f, classmethod):
                continue
            orig = name
            if (sync, name) == (af.ExecStream, "close"):
                name = "aclose"
            assert hasattr(aio, name), "%s.%s" % (aio.__name__, name)
            f, g = getattr(sync, orig), getattr(aio, name)
            assert list(inspect.signature(f).parameters) == \
                list(inspect.signature(g).parameters), name


def test_async_sessions_and_presets_low_level(project, serve):
    needs(serve, "sessions", "presets")

    async def main():
        async with af.AsyncSandboxClient() as c:
            assert "sessions" in (await c.version())["features"]
            assert [p["name"] for p in await c.list_presets()] == af.list_presets()
            assert (await c.get_preset("read-only"))["rules"] == af.get_preset_dicts("read-only")
            cb = await c.create_codebase("ases", source_path=str(project))
            try:
                sb = await c.create_sandbox(cb.id, start=True)
                ss = await c.create_session(sb.id, env={"K": "k"})
                assert [s.id for s in await c.list_sessions(sb.id)] == [ss.id]
                assert (await c.get_session(ss.id)).status is af.SessionStatus.ACTIVE
                r = await c.session_exec(ss.id, "echo $K", timeout=10)
                assert r.stdout == "k\n"
                st = c.session_exec_stream(ss.id, "echo s; exit 3")
                async with st:
                    assert b"".join([x async for x in st]) == b"s\n"
                assert st.exit_code == 3
                with pytest.raises(af.SessionClosedError):
                    await c.session_exec(ss.id, "true")  # its shell exited 3
                await c.destroy_session(ss.id)
                with pytest.raises(af.SessionNotFoundError):
                    await c.get_session(ss.id)
                w = c.session(sb.id)
                async with w as s:
                    assert s is w and s.sandbox_id == sb.id
                    assert s.status is af.SessionStatus.ACTIVE
                    assert (await s.refresh()).id == s.id
                await c.destroy_sandbox(sb.id)
            finally:
                await c.delete_codebase(cb.id, force=True)
    asyncio.run(main())


def test_async_stream_left_early_kills_the_command(project):
    async def main():
        async with await af.AsyncSandbox.from_local(str(project)) as sb:
            async with sb.exec_stream("echo go; sleep 2; echo late > output/late") as st:
                async for chunk in st:
                    assert chunk == b"go\n" and chunk.stream == "stdout"
                    break
            await asyncio.sleep(3)
            assert (await sb.run("test -e output/late")).exit_code == 1
            assert (await sb.run("echo on")).stdout == "on\n"
    asyncio.run(main())


def test_stream_error_event_is_mapped(project):
    async def main():
        async with await af.AsyncSandbox.from_local(str(project)) as sb:
            st = sb.exec_stream("echo a; sleep 10; echo b")

            async def stop_soon():
                await asyncio.sleep(0.5)
                await sb.client.stop_sandbox(sb.id)
            stopper = asyncio.ensure_future(stop_soon())
            got = []
            with pytest.raises(af.SandboxNotRunningError) as e:
                async for chunk in st:
                    got.append(bytes(chunk))
            await stopper
            assert got == [b"a\n"] and st.result is None
            assert e.value.code == "not_running" and e.value.status is None
            assert e.value.sandbox_id == sb.id and sb.id in str(e.value)
    asyncio.run(main())


def test_one_client_many_requests_at_once(project):
    async def main():
        async with await af.AsyncSandbox.from_local(str(project)) as sb:
            rs = await asyncio.gather(*(sb.run("echo %d" % i) for i in range(100)))
            assert [r.stdout for r in rs] == ["%d\n" % i for i in range(100)]
    asyncio.run(main())
