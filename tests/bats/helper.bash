# helper.bash - shared set-up for the agentfense end-to-end tests.
#
# Every test gets a fresh project tree in its own temporary directory, with
# XDG_STATE_HOME and XDG_CONFIG_HOME pointed inside it so deltas and user
# presets never touch the real home.  Teardown fails the test if anything
# the test started is still running or mounted.
#
# The binary under test is $AGENTFENSE (default: the repository's
# build/agentfense).  The suite is meant to run as an ordinary user.

bats_require_minimum_version 1.5.0

if [ -z "${AGENTFENSE:-}" ]; then
	AGENTFENSE=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)/build/agentfense
fi
export AGENTFENSE
export LC_ALL=C

# Marker text every secret in the fixture contains: it must never appear
# in anything a sandboxed command prints.
SECRET_MARK=TOPSECRET

setup() {
	af_setup
}

teardown() {
	af_teardown
}

af_setup() {
	T=$BATS_TEST_TMPDIR
	P=$T/proj
	export XDG_STATE_HOME=$T/state
	export XDG_CONFIG_HOME=$T/config
	RUNS=$XDG_STATE_HOME/agentfense/runs
	BG_PIDS=
	mkdir -p "$XDG_STATE_HOME" "$XDG_CONFIG_HOME"
	make_project "$P"
	FUSE_MOUNTS_BEFORE=$(grep -c fuse /proc/self/mountinfo || true)
}

af_teardown() {
	local bad="" p left="" i
	# Background runs a test started must be over by now.
	for p in $BG_PIDS; do
		if kill -0 "$p" 2>/dev/null; then
			bad+="background process $p still running at teardown"$'\n'
			kill -KILL "$p" 2>/dev/null
		fi
		wait "$p" 2>/dev/null
	done
	# Nothing agentfense started may outlive it; allow the kernel a
	# moment to finish tearing a dead sandbox down.
	for i in $(seq 50); do
		left=$(af_leftovers)
		[ -z "$left" ] && break
		sleep 0.02
	done
	if [ -n "$left" ]; then
		bad+="processes left behind:"$'\n'"$left"$'\n'
	fi
	local mounts
	mounts=$(grep -c fuse /proc/self/mountinfo || true)
	if [ "$mounts" != "$FUSE_MOUNTS_BEFORE" ]; then
		bad+="fuse mounts: $FUSE_MOUNTS_BEFORE before, $mounts after"$'\n'
	fi
	if grep -F -- "$T" /proc/self/mountinfo >/dev/null; then
		bad+="a mount under the test directory is left:"$'\n'"$(grep -F -- "$T" /proc/self/mountinfo)"$'\n'
	fi
	chmod -R u+rwX "$T" 2>/dev/null
	rm -rf "${T:?}"/* "${T:?}"/.[!.]* 2>/dev/null
	if [ -n "$bad" ]; then
		printf 'teardown: %s' "$bad" >&2
		return 1
	fi
}

# Print the processes agentfense started for this test that still exist:
# those whose environment carries this test's marker (agentfense itself and
# the sandbox's init, which is a clone of it), and all their descendants
# (the sandboxed commands).  The marker is set only by af/bg_af.
af_leftovers() {
	python3 - "AF_TEST_MARK=$T" <<'EOF'
import os, sys
mark = sys.argv[1].encode()
me = os.getpid()
procs = {}
for d in os.listdir('/proc'):
    if not d.isdigit():
        continue
    pid = int(d)
    try:
        with open('/proc/%d/stat' % pid, 'rb') as f:
            st = f.read()
        ppid = int(st[st.rindex(b')') + 2:].split()[1])
        state = st[st.rindex(b')') + 2:].split()[0]
    except (OSError, ValueError):
        continue
    if state == b'Z':
        continue
    marked = False
    try:
        with open('/proc/%d/environ' % pid, 'rb') as f:
            marked = mark in f.read().split(b'\0')
    except OSError:
        pass
    procs[pid] = (ppid, marked)
found = {p for p, (pp, m) in procs.items() if m and p != me}
changed = True
while changed:
    changed = False
    for p, (pp, m) in procs.items():
        if p not in found and pp in found:
            found.add(p)
            changed = True
for p in sorted(found):
    try:
        with open('/proc/%d/cmdline' % p, 'rb') as f:
            cmd = f.read().replace(b'\0', b' ').decode(errors='replace')
    except OSError:
        cmd = '?'
    print(p, cmd)
EOF
}

# The project every test starts from.  Every secret contains SECRET_MARK.
make_project() {
	local d=$1
	mkdir -p "$d"/src/lib "$d"/docs "$d"/output "$d"/tmp "$d"/a/b/c \
		"$d"/secrets "$d"/a/b/secrets "$d"/certs "$d"/config
	printf 'hello agentfense\n' >"$d"/README.md
	printf 'int main(void) { return 0; }\n' >"$d"/src/main.c
	printf 'int util;\n' >"$d"/src/lib/util.c
	printf 'guide\n' >"$d"/docs/guide.txt
	printf 'notes\n' >"$d"/docs/notes.md
	printf 'a-readme\n' >"$d"/a/readme.txt
	printf "print('c')\n" >"$d"/a/b/c/code.py
	printf 'public-cert\n' >"$d"/certs/ca.crt
	printf '{"debug": false}\n' >"$d"/config/app.json
	printf 'SECRET=%s_env\n' "$SECRET_MARK" >"$d"/.env
	printf 'SECRET=%s_env_local\n' "$SECRET_MARK" >"$d"/a/.env.local
	printf 'SECRET=%s_deep_env\n' "$SECRET_MARK" >"$d"/a/b/c/.env
	printf '%s_root_secrets\n' "$SECRET_MARK" >"$d"/secrets/key.txt
	printf '%s_deep_secrets\n' "$SECRET_MARK" >"$d"/a/b/secrets/deep.txt
	printf '%s_server_key\n' "$SECRET_MARK" >"$d"/server.key
	printf '%s_pem\n' "$SECRET_MARK" >"$d"/certs/server.pem
	printf '{"token": "%s_credentials"}\n' "$SECRET_MARK" >"$d"/config/credentials.json
	ln -s README.md "$d"/link-readme
}

# What `find /workspace` shows of the fixture under agent-safe, sorted.
AGENT_SAFE_VISIBLE='/workspace
/workspace/README.md
/workspace/a
/workspace/a/b
/workspace/a/b/c
/workspace/a/b/c/code.py
/workspace/a/readme.txt
/workspace/certs
/workspace/certs/ca.crt
/workspace/config
/workspace/config/app.json
/workspace/docs
/workspace/docs/guide.txt
/workspace/docs/notes.md
/workspace/link-readme
/workspace/output
/workspace/src
/workspace/src/lib
/workspace/src/lib/util.c
/workspace/src/main.c
/workspace/tmp'

# af ARG...: the binary under test.
af() {
	AF_TEST_MARK="$T" "$AGENTFENSE" "$@"
}

# bg_af OUTFILE ARG...: start agentfense in the background, stdout and
# stderr to OUTFILE; BG_PID is its pid (agentfense itself, not a shell).
bg_af() {
	local out=$1
	shift
	AF_TEST_MARK="$T" "$AGENTFENSE" "$@" >"$out" 2>&1 &
	BG_PID=$!
	BG_PIDS+=" $BG_PID"
}

# split_opts [OPTION...] -- ARG...: set OPTS to the options before "--"
# and ARGS to what follows it; callers copy them before calling another
# helper that uses split_opts.
split_opts() {
	OPTS=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		OPTS+=("$1")
		shift
	done
	[ $# -gt 0 ] && shift
	ARGS=("$@")
}

# run_in DIR SCRIPT: sh -c SCRIPT in a sandbox over DIR, changes discarded.
run_in() {
	af run --changes discard -e LC_ALL=C "$1" -- sh -c "$2"
}

# inside [RUN-OPTION...] -- SCRIPT: sh -c SCRIPT in a sandbox over $P,
# changes discarded, messages in the C locale (plain quotes).
inside() {
	split_opts "$@"
	af run --changes discard -e LC_ALL=C "${OPTS[@]}" "$P" -- sh -c "${ARGS[0]}"
}

# ops [RUN-OPTION...] -- OP ARG... [OP ARG...]: perform filesystem
# operations inside a sandbox over $P (cwd /workspace, changes discarded)
# and print one line per operation: "OP ARGS: RESULT", RESULT being OK,
# a value, or the errno name (ENOENT, EACCES, ...).
ops() {
	split_opts "$@"
	af run --changes discard "${OPTS[@]}" "$P" -- python3 -c "$OPS_PY" "${ARGS[@]}"
}

# The operation runner used by ops (runs inside the sandbox).
# level PATH classifies a path by behaviour: none (does not exist), view
# (stat works, content unreadable), read (readable, unchangeable), write;
# directories are none, ro (listable, unchangeable) or write.
OPS_PY='
import errno, os, stat, sys
def cat(p):
    with open(p, "rb") as f:
        return repr(f.read().decode())
def wr(p, flags):
    fd = os.open(p, flags, 0o644)
    try:
        os.write(fd, b"W\n")
    finally:
        os.close(fd)
def level(p):
    try:
        st = os.lstat(p)
    except FileNotFoundError:
        return "none"
    if stat.S_ISLNK(st.st_mode):
        return "symlink"
    ts = (st.st_atime_ns, st.st_mtime_ns)
    if stat.S_ISDIR(st.st_mode):
        os.listdir(p)
        try:
            os.utime(p, ns=ts)
            return "write"
        except PermissionError:
            return "ro"
    try:
        os.close(os.open(p, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK))
    except PermissionError:
        return "view"
    try:
        os.utime(p, ns=ts, follow_symlinks=False)
        return "write"
    except PermissionError:
        return "read"
OPS = {
    "stat": (1, lambda p: os.lstat(p) and None),
    "mode": (1, lambda p: oct(os.lstat(p).st_mode & 0o7777)),
    "size": (1, lambda p: str(os.lstat(p).st_size)),
    "ls": (1, lambda p: ",".join(sorted(os.listdir(p)))),
    "cat": (1, cat),
    "readlink": (1, os.readlink),
    "xattr": (1, lambda p: os.getxattr(p, "user.af", follow_symlinks=False).decode()),
    "write": (1, lambda p: wr(p, os.O_WRONLY)),
    "append": (1, lambda p: wr(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT)),
    "create": (1, lambda p: wr(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL)),
    "trunc": (1, lambda p: os.truncate(p, 0)),
    "chmod": (1, lambda p: os.chmod(p, 0o640)),
    "utime": (1, lambda p: os.utime(p)),
    "mkdir": (1, os.mkdir),
    "rmdir": (1, os.rmdir),
    "rm": (1, os.unlink),
    "mkfifo": (1, os.mkfifo),
    "mv": (2, os.rename),
    "link": (2, os.link),
    "symlink": (2, os.symlink),
    "level": (1, level),
}
a = sys.argv[1:]
while a:
    n, f = OPS[a[0]]
    args = a[1:1 + n]
    try:
        r = f(*args)
        r = "OK" if r is None else r
    except OSError as e:
        r = errno.errorcode.get(e.errno, str(e.errno))
    print("%s %s: %s" % (a[0], " ".join(args), r))
    a = a[1 + n:]
'

# levels [RUN-OPTION...] -- PATH...: "level PATH: LEVEL" for each path.
levels() {
	local opts=() a=() p
	split_opts "$@"
	opts=("${OPTS[@]}")
	for p in "${ARGS[@]}"; do
		a+=(level "$p")
	done
	ops "${opts[@]}" -- "${a[@]}"
}

# assert_eq EXPECTED ACTUAL: exact comparison with a diff on failure.
assert_eq() {
	if [ "$1" != "$2" ]; then
		echo "expected:" >&2
		printf '%s\n' "$1" >&2
		echo "actual:" >&2
		printf '%s\n' "$2" >&2
		diff <(printf '%s\n' "$1") <(printf '%s\n' "$2") >&2
		return 1
	fi
}

# assert_output EXPECTED: $output is exactly EXPECTED.
assert_output() {
	assert_eq "$1" "$output"
}

# assert_status N: $status is N (prints output on failure).
assert_status() {
	if [ "$status" != "$1" ]; then
		echo "expected status $1, got $status; output:" >&2
		printf '%s\n' "$output" >&2
		[ -z "${stderr:-}" ] || printf 'stderr:\n%s\n' "$stderr" >&2
		return 1
	fi
}

# assert_contains HAYSTACK NEEDLE
assert_contains() {
	if [[ "$1" != *"$2"* ]]; then
		printf 'expected to find %s in:\n%s\n' "$2" "$1" >&2
		return 1
	fi
}

# refute_contains HAYSTACK NEEDLE
refute_contains() {
	if [[ "$1" == *"$2"* ]]; then
		printf 'did not expect %s in:\n%s\n' "$2" "$1" >&2
		return 1
	fi
}

# assert_error STATUS SUBSTRING...: after `run --separate-stderr`, the
# command failed with STATUS, printed nothing on stdout, and printed one
# error line "agentfense: ..." containing every SUBSTRING, optionally
# followed by "hint: ..." lines and nothing else.
assert_error() {
	local want=$1 l
	shift
	assert_status "$want"
	assert_eq "" "$output"
	if [[ "${stderr_lines[0]:-}" != "agentfense: "* ]]; then
		printf 'first stderr line is not an agentfense error:\n%s\n' "$stderr" >&2
		return 1
	fi
	for s in "$@"; do
		assert_contains "${stderr_lines[0]}" "$s"
	done
	for l in "${stderr_lines[@]:1}"; do
		if [[ "$l" != "hint: "* ]]; then
			printf 'expected one error line and hints only:\n%s\n' "$stderr" >&2
			return 1
		fi
	done
}

# synced_line W D C: the summary line of a sync of $P.
synced_line() {
	printf "agentfense: synced changes to '%s': %s written, %s deleted, %s conflict%s" \
		"$P" "$1" "$2" "$3" "$([ "$3" = 1 ] || echo s)"
}

# without_synced C: $stderr without the summary line of a sync that left
# C conflicts (held entries included), which must be there once; for
# the tests of the other lines (run_end.bats tests the counts).
without_synced() {
	local re="^agentfense: synced changes to '.*': [0-9]+ written, [0-9]+ deleted, $1 conflicts?\$"
	if [ "$(grep -cE "$re" <<<"$stderr")" != 1 ]; then
		echo "(no summary line with $1 conflicts)"
		return 0
	fi
	grep -vE "$re" <<<"$stderr" || true
}

# tree_sig DIR: a listing of DIR with type, mode, size, link target and
# content hash of every entry, to prove a tree unchanged.
tree_sig() {
	(cd "$1" && find . -printf '%p %y %m %s %l\n' | LC_ALL=C sort &&
		find . -type f -exec sha256sum {} + | LC_ALL=C sort -k2)
}

# wait_for_line FILE LINE [SECONDS]: wait until FILE has LINE.
wait_for_line() {
	local i n=$(( ${3:-10} * 50 ))
	for ((i = 0; i < n; i++)); do
		grep -qxF -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.02
	done
	printf 'timed out waiting for %s in %s:\n' "$2" "$1" >&2
	cat "$1" >&2
	return 1
}

# wait_gone PID...: wait (up to 5s) until none of PIDs exists.
wait_gone() {
	local i p alive
	for ((i = 0; i < 250; i++)); do
		alive=
		for p in "$@"; do
			[ -d /proc/"$p" ] && [ "$(awk '{print $3}' /proc/"$p"/stat 2>/dev/null)" != Z ] && alive+=" $p"
		done
		[ -z "$alive" ] && return 0
		sleep 0.02
	done
	echo "still alive:$alive" >&2
	return 1
}

# descendants PID: the pids of every descendant of PID.
descendants() {
	python3 - "$1" <<'EOF'
import os, sys
kids = {}
for d in os.listdir('/proc'):
    if d.isdigit():
        try:
            st = open('/proc/%s/stat' % d, 'rb').read()
            kids.setdefault(int(st[st.rindex(b')') + 2:].split()[1]), []).append(int(d))
        except (OSError, ValueError):
            pass
todo, out = [int(sys.argv[1])], []
while todo:
    for k in kids.get(todo.pop(), []):
        out.append(k)
        todo.append(k)
print(' '.join(map(str, out)))
EOF
}

# runs_count: how many run directories exist in the state directory.
runs_count() {
	if [ -d "$RUNS" ]; then
		find "$RUNS" -mindepth 1 -maxdepth 1 | wc -l
	else
		echo 0
	fi
}

# user_preset NAME CONTENT: install a user preset.
user_preset() {
	mkdir -p "$XDG_CONFIG_HOME/agentfense/presets"
	printf '%s\n' "$2" >"$XDG_CONFIG_HOME/agentfense/presets/$1.ini"
}
