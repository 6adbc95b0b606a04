"""Custom permissions: a preset extended with rules of your own.

    python3 custom_permissions.py [PROJECT_DIR]

agent-safe lets the sandbox write only /output and /tmp; here it may
also change src/, and what is in config/ is hidden as well.
"""

import os
import sys

from agentfense import (PatternType, Permission, PermissionDeniedError, PermissionRule,
                        Sandbox, extend_preset)

HERE = os.path.dirname(os.path.abspath(__file__))
project = sys.argv[1] if len(sys.argv) > 1 else \
    os.path.join(HERE, "..", "..", "..", "tests", "example-project")

rules = extend_preset(
    "agent-safe",
    additions=[
        {"pattern": "/src/**", "permission": "write"},
        PermissionRule(pattern="/config", permission=Permission.NONE,
                       type=PatternType.DIRECTORY),
    ],
)

with Sandbox.from_local(project, permissions=rules) as sandbox:
    sandbox.write_file("src/notes.txt", "written by the agent\n")
    print(sandbox.read_file("src/notes.txt"), end="")
    print("config/app.conf visible:", sandbox.run("test -e config/app.conf").success)
    try:
        sandbox.write_file("README.md", "not allowed")
    except PermissionDeniedError as e:
        print("README.md stays read-only:", e.path)
