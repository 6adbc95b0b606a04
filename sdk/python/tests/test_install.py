"""The package installs without the network, with Debian's pip."""

import os
import subprocess
import sys

from conftest import SDK


def test_pip_install_offline(tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True, capture_output=True, timeout=120)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONPATH="")
    # a copy, so that the build leaves nothing in the tree
    src = tmp_path / "src"
    subprocess.run(["cp", "-r", SDK, str(src)], check=True)
    p = subprocess.run([str(venv / "bin" / "pip"), "install", "--no-index",
                        "--no-build-isolation", str(src)], env=env, capture_output=True,
                       timeout=300)
    assert p.returncode == 0, p.stdout.decode() + p.stderr.decode()
    p = subprocess.run([str(venv / "bin" / "python"), "-c",
                        "import agentfense, sys; print(agentfense.__version__); "
                        "print(agentfense.__file__); print(len(agentfense.__all__))"],
                       env=env, cwd=str(tmp_path), capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    version, where, n = p.stdout.decode().split()
    assert version == "0.1.0" and where.startswith(str(venv)) and int(n) > 40
