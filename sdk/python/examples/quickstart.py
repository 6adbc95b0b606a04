"""Quick start: a sandbox from a local directory, one command in it.

    python3 quickstart.py [PROJECT_DIR]

The directory (default: agentfense's example project) is imported into a
codebase; the sandbox shows it at /workspace with the agent-safe preset:
everything readable, secrets hidden, writes only to /output and /tmp.
Leaving the `with` block destroys the sandbox and the codebase.
"""

import os
import sys

from agentfense import Sandbox

HERE = os.path.dirname(os.path.abspath(__file__))
project = sys.argv[1] if len(sys.argv) > 1 else \
    os.path.join(HERE, "..", "..", "..", "tests", "example-project")

with Sandbox.from_local(project) as sandbox:
    result = sandbox.run("python3 src/app.py README.md | head -3")
    print(result.stdout, end="")
    print("exit code:", result.exit_code)

    # The secret is not hidden by a permission error: it is not there.
    print("sees .env:", sandbox.run("test -e .env").success)
