"""Every example in sdk/python/examples runs as it is and prints what
it says it does."""

import os
import subprocess
import sys

import pytest

from conftest import SDK, TOP, list_ids, needs

EXAMPLES = os.path.join(SDK, "examples")
EXPECT = {
    "quickstart.py": ["    4 agentfense", "exit code: 0", "sees .env: False"],
    "sessions.py": ["hello from /workspace/src"],
    "custom_permissions.py": ["written by the agent", "config/app.conf visible: False",
                              "README.md stays read-only: README.md"],
    "async_sandboxes.py": ["sandbox 1 printed 1 line(s)", "sandbox 2 printed 2 line(s)",
                           "sandbox 3 printed 3 line(s)"],
    "error_handling.py": ["timed out: sleep 10", "failed with exit code 3", "hidden: .env",
                          "read-only: src/app.py"],
    "low_level_client.py": ["Hello, World!"],
    "agent_loop.py": ["$ ls  -> exit 0", "$ cat .env  -> exit 1",
                      "$ cd tests && python3 -m unittest -q 2>&1 | tail -1  -> exit 0",
                      "model: Done: the tests pass and the report is in output/report.txt.",
                      "report: tests pass"],
}


def test_every_example_is_tested():
    assert sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".py")) == sorted(EXPECT)


FILES = {"custom_permissions.py", "error_handling.py", "agent_loop.py"}


@pytest.mark.parametrize("name", sorted(EXPECT))
def test_example(name, sandboxes):
    if name in FILES:
        needs(sandboxes, "sandbox_files")
    if name == "sessions.py":
        needs(sandboxes, "sessions")
    before = list_ids("codebases"), list_ids("sandboxes")
    env = dict(os.environ, PYTHONPATH=SDK, PYTHONDONTWRITEBYTECODE="1")
    p = subprocess.run([sys.executable, os.path.join(EXAMPLES, name)], env=env,
                       cwd=EXAMPLES, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=300)
    out = p.stdout.decode()
    assert p.returncode == 0, out + p.stderr.decode()
    assert p.stderr == b""
    lines = out.splitlines()
    for want in EXPECT[name]:
        assert want in lines, "%r not in %r" % (want, lines)
    assert (list_ids("codebases"), list_ids("sandboxes")) == before


def test_readme_sdk_quick_start(sandboxes):
    with open(os.path.join(TOP, "README.md")) as f:
        readme = f.read()
    section = readme.split("## SDK quick start", 1)[1]
    code = section.split("```python\n", 1)[1].split("```", 1)[0]
    env = dict(os.environ, PYTHONPATH=SDK, PYTHONDONTWRITEBYTECODE="1")
    p = subprocess.run([sys.executable, "-c", code], env=env, cwd=TOP,
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode()
    assert p.stdout.decode().splitlines() == [
        "0     4 agentfense", "    2 and", "    2 the", "",
        "cat: .env: No such file or directory", ""]
