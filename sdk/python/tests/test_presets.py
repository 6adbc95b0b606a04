"""Presets come from the binary: the SDK keeps no copy of them."""

import json
import os
import subprocess

import pytest

import agentfense as af
from agentfense import presets as presets_mod
from conftest import BIN, raw


def binary_json(*args):
    return json.loads(subprocess.run([BIN, "preset"] + list(args), check=True,
                                     capture_output=True).stdout)


@pytest.fixture(autouse=True)
def no_registered_presets():
    saved = dict(presets_mod._custom)
    yield
    presets_mod._custom.clear()
    presets_mod._custom.update(saved)


def test_list_presets_is_the_binarys():
    assert af.list_presets() == sorted(p["name"] for p in binary_json("list", "--json"))
    assert {"agent-safe", "read-only", "full-access", "development",
            "view-only"} <= set(af.list_presets())


def test_get_preset_is_the_binarys():
    for name in af.list_presets():
        want = [(r["pattern"], r["level"], r["priority"])
                for r in binary_json("show", "--json", name)["rules"]]
        got = af.get_preset(name)
        assert all(isinstance(r, af.PermissionRule) for r in got)
        assert [(r.pattern, r.permission.value, r.priority) for r in got] == want
        assert af.get_preset_dicts(name) == [r.to_dict() for r in got]
    assert af.get_preset("read-only") == [af.PermissionRule("**", af.Permission.READ)]


def test_users_own_presets_are_listed():
    d = os.path.join(os.environ["XDG_CONFIG_HOME"], "agentfense", "presets")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "mine.ini"), "w") as f:
        f.write("[preset]\ndescription = mine\n[rules]\n/src/** = write\n")
    try:
        assert "mine" in af.list_presets()
        assert af.get_preset_dicts("mine") == [
            {"pattern": "/src/**", "permission": "write", "type": "glob", "priority": 0}]
    finally:
        os.unlink(os.path.join(d, "mine.ini"))
    assert "mine" not in af.list_presets()


def test_unknown_preset():
    with pytest.raises(af.InvalidConfigurationError, match="unknown preset 'nope'"):
        af.get_preset("nope")
    with pytest.raises(af.InvalidConfigurationError):
        af.extend_preset("nope")


def test_extend_preset():
    base = af.get_preset("agent-safe")
    rules = af.extend_preset("agent-safe")
    assert rules == base
    rules = af.extend_preset("agent-safe",
                             additions=[{"pattern": "/src/**", "permission": "write"}],
                             overrides={"/output/**": "read", "/new/**": "view"})
    by = {r.pattern: r for r in rules}
    assert by["/output/**"].permission is af.Permission.READ
    assert by["/new/**"].permission is af.Permission.VIEW
    assert rules[-1] == af.PermissionRule("/src/**", af.Permission.WRITE)
    assert len(rules) == len(base) + 2
    rules = af.extend_preset("read-only", overrides=[af.PermissionRule("**", "none")])
    assert rules == [af.PermissionRule("**", af.Permission.NONE)]


def test_register_preset():
    af.register_preset("docs-writer", [{"pattern": "/docs/**", "permission": "write"}])
    assert "docs-writer" in af.list_presets()
    assert af.get_preset_dicts("docs-writer") == [
        {"pattern": "/docs/**", "permission": "write", "type": "glob", "priority": 0}]
    assert presets_mod.resolve("docs-writer", [{"pattern": "x", "permission": "read"}]) == (
        "view-only", [{"pattern": "/docs/**", "permission": "write", "type": "glob",
                       "priority": 0},
                      {"pattern": "x", "permission": "read", "type": "glob", "priority": 0}])
    assert presets_mod.resolve("agent-safe", None) == ("agent-safe", None)
    with pytest.raises(af.InvalidConfigurationError):
        af.register_preset("", [])
    with pytest.raises(af.InvalidConfigurationError):
        af.register_preset("bad", [{"permission": "read"}])


def test_presets_without_a_binary(monkeypatch, tmp_path):
    monkeypatch.setenv("AGENTFENSE_BIN", str(tmp_path / "none"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(af.ConnectionError, match="cannot read the presets"):
        af.list_presets()


def test_serve_gives_the_same_presets(serve):
    if "presets" not in serve.features:
        pytest.skip("this agentfense serve lacks presets")
    st, j = raw("GET", "/v1/presets")
    assert st == 200
    assert sorted(p["name"] for p in j["presets"]) == af.list_presets()
    with af.SandboxClient() as c:
        for p in c.list_presets():
            assert [af.PermissionRule.from_dict(r) for r in p["rules"]] == \
                af.get_preset(p["name"])
        assert c.get_preset("read-only")["rules"] == af.get_preset_dicts("read-only")
        with pytest.raises(af.InvalidConfigurationError):
            c.get_preset("no-such-preset")
