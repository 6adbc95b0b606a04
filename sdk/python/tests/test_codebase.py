"""The low-level client's codebase methods, sync and async, and the
exceptions serve's errors become."""

import asyncio
import hashlib

import pytest

import agentfense as af
from conftest import MAX_UPLOAD


@pytest.fixture
def client(serve):
    with af.SandboxClient() as c:
        yield c


def test_codebase_lifecycle(client, project):
    cb = client.create_codebase("demo", owner_id="user_1", labels={"team": "web"},
                                source_path=str(project), ignore_patterns=["README.md"])
    try:
        assert cb.id.startswith("cb_") and len(cb.id) == 35
        assert (cb.name, cb.owner_id, cb.labels) == ("demo", "user_1", {"team": "web"})
        # .gitignore's *.log and the request's README.md are left out
        assert cb.file_count == 3 and cb.ignored_count == 2
        assert client.get_codebase(cb.id) == af.Codebase(**{**cb.__dict__, "skipped": [],
                                                           "ignored_count": 0})
        assert [c.id for c in client.list_codebases(owner_id="user_1")] == [cb.id]
        assert client.list_codebases(owner_id="nobody") == []
        assert [c.id for c in client.list_codebases(labels={"team": "web"})] == [cb.id]
        assert client.list_codebases(labels={"team": "web", "tier": "1"}) == []
        files = client.list_files(cb.id, recursive=True)
        assert [(f.path, f.is_dir) for f in files] == [
            (".env", False), (".gitignore", False), ("output", True), ("src", True),
            ("src/main.py", False)]
        assert [f.name for f in client.list_files(cb.id, "src")] == ["main.py"]
        assert client.download_file(cb.id, "src/main.py") == b"print('hello from main')\n"
        up = client.upload_file(cb.id, "docs/new.txt", "new\n", mode=0o600)
        assert up.size == 4 and up.file_path == "docs/new.txt"
        assert up.checksum == "sha256:" + hashlib.sha256(b"new\n").hexdigest()
        assert client.download_file(cb.id, "/docs/new.txt") == b"new\n"
        assert client.list_files(cb.id, "docs/new.txt")[0].mode == "0600"
        client.upload_file(cb.id, "bin.dat", bytes(range(256)))
        assert client.download_file(cb.id, "bin.dat") == bytes(range(256))
    finally:
        client.delete_codebase(cb.id)
    with pytest.raises(af.CodebaseNotFoundError):
        client.get_codebase(cb.id)


def test_codebase_errors(client):
    cb = client.create_codebase("errs")
    try:
        with pytest.raises(af.CodebaseNotFoundError) as e:
            client.get_codebase("cb_" + "0" * 32)
        assert e.value.code == "not_found" and e.value.status == 404
        assert e.value.codebase_id == "cb_" + "0" * 32
        assert str(e.value) == "no codebase 'cb_%s'" % ("0" * 32)
        with pytest.raises(af.CodebaseNotFoundError):
            client.delete_codebase("cb_" + "1" * 32)
        with pytest.raises(af.FileNotFoundError) as e:
            client.download_file(cb.id, "missing.txt")
        assert e.value.path == "missing.txt" and isinstance(e.value, FileNotFoundError)
        with pytest.raises(af.FileNotFoundError):
            client.list_files(cb.id, "nodir")
        with pytest.raises(af.InvalidConfigurationError) as e:
            client.download_file(cb.id, "a/../../etc/passwd")
        assert e.value.code == "invalid_argument" and e.value.status == 400
        client.upload_file(cb.id, "d/f", b"x")
        with pytest.raises(af.UploadError) as e:
            client.upload_file(cb.id, "d", b"onto a directory")
        assert e.value.code == "conflict" and isinstance(e.value, af.CodebaseError)
        with pytest.raises(af.ResourceLimitExceededError) as e:
            client.upload_file(cb.id, "big", b"\0" * (MAX_UPLOAD + 1))
        assert e.value.status == 413
        assert client.download_file(cb.id, "d/f") == b"x"  # the client goes on working
        with pytest.raises(af.InvalidConfigurationError, match="id string"):
            client.get_codebase("../v1/version")
    finally:
        client.delete_codebase(cb.id)


def test_async_codebase(serve, project):
    async def main():
        async with af.AsyncSandboxClient() as c:
            cb = await c.create_codebase("async", source_path=str(project))
            try:
                assert (await c.get_codebase(cb.id)).name == "async"
                assert cb.id in [x.id for x in await c.list_codebases()]
                assert [f.path for f in await c.list_files(cb.id, "src")] == ["src/main.py"]
                await c.upload_file(cb.id, "x/y", b"\xff\x00")
                assert await c.download_file(cb.id, "x/y") == b"\xff\x00"
                with pytest.raises(af.FileNotFoundError):
                    await c.download_file(cb.id, "nope")
                big = bytes(range(256)) * 8192  # 2 MiB through one connection
                await c.upload_file(cb.id, "big", big)
                got = await asyncio.gather(*(c.download_file(cb.id, "big") for _ in range(8)))
                assert all(g == big for g in got)
                with pytest.raises(af.ResourceLimitExceededError):
                    await c.upload_file(cb.id, "huge", b"\0" * (MAX_UPLOAD + 1))
                assert await c.download_file(cb.id, "x/y") == b"\xff\x00"
            finally:
                await c.delete_codebase(cb.id)
            with pytest.raises(af.CodebaseNotFoundError):
                await c.get_codebase(cb.id)
    asyncio.run(main())


def test_async_client_under_two_loops(serve):
    c = af.AsyncSandboxClient()
    assert asyncio.run(c.version())["api_version"] == "v1"
    assert asyncio.run(c.version())["api_version"] == "v1"
    asyncio.run(c.close())
