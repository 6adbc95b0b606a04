"""An agent loop: a model proposes shell commands, the sandbox runs them.

    python3 agent_loop.py [PROJECT_DIR]

The model here is a stub that replays canned replies, so the example runs
offline; replace `StubModel.reply` with a call to a real model.  Each reply
may hold one ```bash block; its command runs in the sandbox and the output
goes back to the model as the next message, until the model answers
without a command.
"""

import os
import re
import sys

from agentfense import Sandbox

HERE = os.path.dirname(os.path.abspath(__file__))
project = sys.argv[1] if len(sys.argv) > 1 else \
    os.path.join(HERE, "..", "..", "..", "tests", "example-project")


class StubModel:
    """Stands in for a language model: canned replies, in order."""

    replies = [
        "Let me look at the project.\n```bash\nls\n```",
        "Now the secrets, if any.\n```bash\ncat .env\n```",
        "Let me run the tests.\n```bash\ncd tests && python3 -m unittest -q 2>&1 | tail -1\n```",
        "I will save a report.\n```bash\necho 'tests pass' > /workspace/output/report.txt\n```",
        "Done: the tests pass and the report is in output/report.txt.",
    ]

    def __init__(self):
        self.turn = 0

    def reply(self, messages):
        text = self.replies[min(self.turn, len(self.replies) - 1)]
        self.turn += 1
        return text


def command_of(reply):
    m = re.search(r"```(?:bash|sh)?\n(.*?)```", reply, re.S)
    return m.group(1).strip() if m else None


def main():
    model = StubModel()
    messages = [{"role": "user", "content": "Check that the project's tests pass."}]
    with Sandbox.from_local(project) as sandbox:
        for _ in range(10):
            reply = model.reply(messages)
            messages.append({"role": "assistant", "content": reply})
            command = command_of(reply)
            if command is None:
                print("model:", reply)
                break
            result = sandbox.run(command, timeout=30)
            print("$ %s  -> exit %d" % (command, result.exit_code))
            messages.append({"role": "user",
                             "content": "exit %d\n%s" % (result.exit_code, result.output)})
        print("report:", sandbox.read_file("output/report.txt"), end="")


main()
