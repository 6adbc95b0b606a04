"""Sessions: a shell that keeps its state between commands."""

import asyncio

import pytest

import agentfense as af

pytestmark = pytest.mark.usefixtures("sandboxes")
NOBODY_SS = "ss_" + "0" * 32


@pytest.fixture
def sb(project, serve):
    needs_sessions(serve)
    with af.Sandbox.from_local(str(project)) as s:
        yield s


def needs_sessions(serve):
    if "sessions" not in serve.features:
        pytest.skip("this agentfense serve lacks sessions")


def test_session_keeps_state(sb):
    with sb.session() as s:
        assert s.id.startswith("ss_") and s.sandbox_id == sb.id
        assert s.status is af.SessionStatus.ACTIVE
        assert s.session.shell == "/bin/sh"
        assert s.exec("cd src && export FOO=bar && X=1").success
        r = s.exec("pwd; echo $FOO $X")
        assert r.stdout == "/workspace/src\nbar 1\n"
        r = s.exec("echo err >&2; false")
        assert (r.exit_code, r.stderr) == (1, "err\n")
        assert s.exec("cat", stdin="typed\n").stdout == "typed\n"
        assert b"".join(s.exec_stream("echo a; echo b")) == b"a\nb\n"
        assert [x.id for x in sb.client.list_sessions(sb.id)] == [s.id]
        assert s.refresh().status is af.SessionStatus.ACTIVE
        with pytest.raises(af.CommandTimeoutError):
            s.exec("sleep 30", timeout=1)
    with pytest.raises(af.SessionClosedError) as e:
        s.exec("true")
    assert str(e.value) == "session %s is closed" % s.id
    s.close()  # closing twice is fine


def test_session_env_shell_and_its_end(sb):
    with sb.session(shell="/bin/sh", env={"GREETING": "hi"}) as s:
        assert s.exec("echo $GREETING").stdout == "hi\n"
        s.exec("exit 3")
        with pytest.raises(af.SessionClosedError, match="closed"):
            s.exec("true")
        info = sb.client.get_session(s.id)
        assert info.status is af.SessionStatus.CLOSED and "3" in (info.error or "")


def test_session_deleted_by_another_client_is_closed(sb):
    # a client racing a close is told "closed", not "no such session"
    with sb.session() as s:
        assert s.exec("true").success
        with af.SandboxClient() as other:
            other.destroy_session(s.id)
        for call in (lambda: s.exec("true"), lambda: sb.client.session_exec(s.id, "true"),
                     lambda: b"".join(s.exec_stream("true"))):
            with pytest.raises(af.SessionClosedError) as e:
                call()
            assert (e.value.code, e.value.status, e.value.session_id) == ("not_running", 409, s.id)
            assert str(e.value) == "session '%s' is closed: deleted by request" % s.id
        with pytest.raises(af.SessionNotFoundError):
            sb.client.get_session(s.id)


def test_session_errors(sb):
    c = sb.client
    for call in (lambda: c.get_session(NOBODY_SS), lambda: c.session_exec(NOBODY_SS, "true"),
                 lambda: c.destroy_session(NOBODY_SS)):
        with pytest.raises(af.SessionNotFoundError) as e:
            call()
        assert e.value.session_id == NOBODY_SS and e.value.code == "not_found"
    with pytest.raises(af.SandboxNotFoundError):
        c.create_session("sb_" + "0" * 32)
    with pytest.raises(af.InvalidConfigurationError):
        c.session_exec(NOBODY_SS, ["not", "a", "string"])
    s = c.session(sb.id)
    sb.stop()
    with pytest.raises((af.SessionClosedError, af.SessionNotFoundError)):
        s.exec("true")


def test_one_command_at_a_time(sb):
    async def main():
        async with af.AsyncSandboxClient() as c:
            async with c.session(sb.id) as s:
                slow = asyncio.ensure_future(s.exec("sleep 2; echo slow"))
                await asyncio.sleep(0.5)
                with pytest.raises(af.SessionError) as e:
                    await s.exec("echo fast")
                assert e.value.code == "conflict"
                assert not isinstance(e.value, af.SessionClosedError)
                assert (await slow).stdout == "slow\n"
                assert (await s.exec("echo after")).stdout == "after\n"
    asyncio.run(main())
