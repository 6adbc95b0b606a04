#!/usr/bin/env bats
# The built-in presets inside a real sandbox, agent-safe (the default)
# above all: secrets hidden at every depth, /output and /tmp writable,
# everything else read-only.

load helper

@test "agent-safe: .env files are hidden at every depth" {
	run inside -- 'cd /workspace; for f in .env a/.env.local a/b/c/.env; do cat $f; done; ls -A . a a/b/c'
	assert_status 0
	assert_output "cat: .env: No such file or directory
cat: a/.env.local: No such file or directory
cat: a/b/c/.env: No such file or directory
.:
README.md
a
certs
config
docs
link-readme
output
src
tmp

a:
b
readme.txt

a/b/c:
code.py"
}

@test "agent-safe: secrets/ directories are hidden at the root and deep" {
	run inside -- 'cd /workspace; cat secrets/key.txt a/b/secrets/deep.txt; ls secrets; ls -A a/b; cd secrets'
	assert_status 2
	assert_output "cat: secrets/key.txt: No such file or directory
cat: a/b/secrets/deep.txt: No such file or directory
ls: cannot access 'secrets': No such file or directory
c
sh: 1: cd: can't cd to secrets"
}

@test "agent-safe: *.key, *.pem and credentials* are hidden" {
	mkdir -p "$P/deep/er"
	printf '%s\n' "$SECRET_MARK" >"$P/deep/er/id.key"
	printf '%s\n' "$SECRET_MARK" >"$P/deep/er/credentials"
	run inside -- 'cd /workspace; cat server.key certs/server.pem config/credentials.json deep/er/id.key deep/er/credentials; ls -A certs config deep/er'
	assert_status 0
	assert_output "cat: server.key: No such file or directory
cat: certs/server.pem: No such file or directory
cat: config/credentials.json: No such file or directory
cat: deep/er/id.key: No such file or directory
cat: deep/er/credentials: No such file or directory
certs:
ca.crt

config:
app.json

deep/er:"
}

@test "agent-safe: a plain user rule does not uncover a secret" {
	run inside -r '.env=read' -r '/secrets/**=read' -r '/server.key=write' -- 'cat /workspace/.env /workspace/secrets/key.txt /workspace/server.key'
	assert_status 1
	assert_output "cat: /workspace/.env: No such file or directory
cat: /workspace/secrets/key.txt: No such file or directory
cat: /workspace/server.key: No such file or directory"
}

@test "agent-safe: .git/config is shown cleaned, .git/hooks hidden, the rest of .git readable" {
	mkdir -p "$P/.git/hooks" "$P/.git/refs"
	printf '[remote "origin"]\n\turl = https://%s@example.com/x\n' "$SECRET_MARK" >"$P/.git/config"
	printf '#!/bin/sh\necho %s\n' "$SECRET_MARK" >"$P/.git/hooks/pre-commit"
	printf 'ref: refs/heads/main\n' >"$P/.git/HEAD"
	run inside -- 'cd /workspace/.git; cat config hooks/pre-commit HEAD; ls -A'
	assert_status 0
	assert_output "# the repository's configuration as agentfense shows it in the sandbox
[remote \"origin\"]
	url = \"https://example.com/x\"
cat: hooks/pre-commit: No such file or directory
ref: refs/heads/main
HEAD
config
refs"
}

@test "agent-safe: /output and /tmp below the project are writable" {
	run af run -e LC_ALL=C "$P" -- sh -c 'cd /workspace; echo out > output/new.txt && mkdir -p output/d/e && echo deep > output/d/e/f && echo t > tmp/t.txt && cat output/new.txt output/d/e/f tmp/t.txt'
	assert_status 0
	assert_contains "$output" "out
deep
t"
	[ "$(cat "$P/output/new.txt")" = out ]
	[ "$(cat "$P/output/d/e/f")" = deep ]
	[ "$(cat "$P/tmp/t.txt")" = t ]
}

@test "agent-safe: everything else is read-only" {
	local before
	before=$(tree_sig "$P")
	run af run -e LC_ALL=C "$P" -- sh -c 'cd /workspace
echo x >> README.md
echo x > new.txt
rm src/main.c
mkdir newdir
touch docs/guide.txt
mv docs/notes.md output/
rmdir output
ln -s README.md a/l
chmod 600 README.md
cat README.md'
	assert_status 0
	assert_output "sh: 2: cannot create README.md: Permission denied
sh: 3: cannot create new.txt: Permission denied
rm: cannot remove 'src/main.c': Permission denied
mkdir: cannot create directory 'newdir': Permission denied
touch: cannot touch 'docs/guide.txt': Permission denied
mv: cannot move 'docs/notes.md' to 'output/notes.md': Permission denied
rmdir: failed to remove 'output': Permission denied
ln: failed to create symbolic link 'a/l': Permission denied
chmod: changing permissions of 'README.md': Permission denied
hello agentfense"
	assert_eq "$before" "$(tree_sig "$P")"
}

@test "agent-safe: the sandbox's own /tmp is writable and private" {
	run inside -- 'echo x > /tmp/f && cat /tmp/f && ls -A /tmp'
	assert_status 0
	assert_output "x
f"
}

@test "agent-safe is the default preset" {
	run af explain --json "$P" /.env /README.md /output/x
	assert_status 0
	local a
	a=$output
	run af explain --json -p agent-safe "$P" /.env /README.md /output/x
	assert_eq "$output" "$a"
}

@test "read-only: everything readable, nothing writable, not even /output" {
	run inside -p read-only -- 'cat /workspace/README.md; echo x > /workspace/output/x; echo x >> /workspace/README.md'
	assert_status 2
	assert_output "hello agentfense
sh: 1: cannot create /workspace/output/x: Permission denied
sh: 1: cannot create /workspace/README.md: Permission denied"
}

@test "full-access: everything writable, nothing hidden" {
	run af run -p full-access "$P" -- sh -c 'cat /workspace/.env; echo changed > /workspace/README.md; rm /workspace/server.key'
	assert_status 0
	assert_contains "$output" "SECRET=${SECRET_MARK}_env"
	[ "$(cat "$P/README.md")" = changed ]
	[ ! -e "$P/server.key" ]
}

@test "development: everything writable except the secrets" {
	run af run -e LC_ALL=C -p development "$P" -- sh -c 'cd /workspace; echo changed > README.md; echo new > src/new.c; rm docs/notes.md; cat .env a/b/secrets/deep.txt; echo x > .env; echo x > server.key'
	assert_status 2
	assert_contains "$output" "cat: .env: No such file or directory
cat: a/b/secrets/deep.txt: No such file or directory
sh: 1: cannot create .env: Permission denied
sh: 1: cannot create server.key: Permission denied"
	[ "$(cat "$P/README.md")" = changed ]
	[ "$(cat "$P/src/new.c")" = new ]
	[ ! -e "$P/docs/notes.md" ]
	[ "$(cat "$P/.env")" = "SECRET=${SECRET_MARK}_env" ]
	[ "$(cat "$P/server.key")" = "${SECRET_MARK}_server_key" ]
}

@test "view-only: names and sizes, no content" {
	run inside -p view-only -- 'ls /workspace/docs; stat -c %s /workspace/README.md; cat /workspace/README.md; head -c1 /workspace/src/main.c'
	assert_status 1
	assert_output "guide.txt
notes.md
17
cat: /workspace/README.md: Permission denied
head: cannot open '/workspace/src/main.c' for reading: Permission denied"
}
