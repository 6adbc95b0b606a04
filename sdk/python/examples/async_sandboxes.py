"""Async: several sandboxes at once with asyncio.gather.

    python3 async_sandboxes.py [PROJECT_DIR]
"""

import asyncio
import os
import sys

from agentfense import AsyncSandbox

HERE = os.path.dirname(os.path.abspath(__file__))
project = sys.argv[1] if len(sys.argv) > 1 else \
    os.path.join(HERE, "..", "..", "..", "tests", "example-project")


async def count_words(n):
    async with await AsyncSandbox.from_local(project) as sandbox:
        result = await sandbox.run("python3 src/app.py README.md | head -%d | wc -l" % n)
        return n, result.stdout.strip()


async def main():
    for n, lines in await asyncio.gather(*(count_words(n) for n in (1, 2, 3))):
        print("sandbox %d printed %s line(s)" % (n, lines))


asyncio.run(main())
