"""The low-level client: one call per step, nothing done for you.

    python3 low_level_client.py
"""

from agentfense import SandboxClient

with SandboxClient() as client:
    codebase = client.create_codebase(name="hello", owner_id="user_123")
    client.upload_file(codebase.id, "hello.py", b'print("Hello, World!")\n')

    sandbox = client.create_sandbox(
        codebase_id=codebase.id,
        permissions=[{"pattern": "**/*.py", "permission": "read"}],
        preset="view-only",
    )
    client.start_sandbox(sandbox.id)
    result = client.exec(sandbox.id, command="python3 hello.py")
    print(result.stdout, end="")

    client.destroy_sandbox(sandbox.id)
    client.delete_codebase(codebase.id)
