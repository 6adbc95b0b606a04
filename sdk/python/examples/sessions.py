"""Sessions: a shell that keeps its directory, variables and jobs.

    python3 sessions.py [PROJECT_DIR]
"""

import os
import sys

from agentfense import Sandbox

HERE = os.path.dirname(os.path.abspath(__file__))
project = sys.argv[1] if len(sys.argv) > 1 else \
    os.path.join(HERE, "..", "..", "..", "tests", "example-project")

with Sandbox.from_local(project) as sandbox:
    with sandbox.session() as session:
        session.exec("cd src")
        session.exec("export GREETING=hello")
        result = session.exec('echo "$GREETING from $(pwd)"')
        print(result.stdout, end="")
        result = session.exec("python3 app.py ../README.md | wc -l")
        print("distinct words:", result.stdout.strip())
