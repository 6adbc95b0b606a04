"""Error handling: each failure has its own exception.

    python3 error_handling.py [PROJECT_DIR]
"""

import os
import sys

from agentfense import (CommandExecutionError, CommandTimeoutError, FileNotFoundError,
                        PermissionDeniedError, Sandbox, SandboxError)

HERE = os.path.dirname(os.path.abspath(__file__))
project = sys.argv[1] if len(sys.argv) > 1 else \
    os.path.join(HERE, "..", "..", "..", "tests", "example-project")

try:
    with Sandbox.from_local(project) as sandbox:
        try:
            sandbox.run("sleep 10", timeout=1)
        except CommandTimeoutError as e:
            print("timed out:", e.command)
        try:
            sandbox.run("python3 -c 'import sys; sys.exit(3)'", raise_on_error=True)
        except CommandExecutionError as e:
            print("failed with exit code", e.exit_code)
        try:
            sandbox.read_file(".env")
        except FileNotFoundError as e:
            print("hidden:", e.path)
        try:
            sandbox.write_file("src/app.py", "")
        except PermissionDeniedError as e:
            print("read-only:", e.path)
except SandboxError as e:
    print("sandbox error:", e)
    sys.exit(1)
