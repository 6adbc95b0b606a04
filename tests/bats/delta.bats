#!/usr/bin/env bats
# The copy-on-write delta: sync, discard, keep, conflicts, concurrent runs,
# and the project never touched while the command runs.

load helper

# The sandboxed commands below that must wait for the test do so until
# SIGTERM, which agentfense forwards to them: no timing window.
WAIT_TERM='trap "exit 0" TERM; echo ready; while :; do sleep 0.02; done'

# kept_path: the run directory a `--changes keep` run printed, from $output.
kept_path() {
	sed -n "s/^agentfense: .*kept in '\\(.*\\)'\$/\\1/p" <<<"$output" | tail -n 1
}

@test "sync writes back new, modified, deleted, renamed files, links and modes" {
	run --separate-stderr af run -p development "$P" -- sh -c 'cd /workspace
echo new > new.txt
mkdir -p newdir/sub && echo n > newdir/sub/f
echo mod > README.md
printf more >> docs/guide.txt
rm docs/notes.md
rm -r src/lib
mv a/readme.txt a/renamed.txt
ln -s README.md newlink
chmod 755 src/main.c
touch -d @1000000000 config/app.json'
	assert_status 0
	[ "$(cat "$P/new.txt")" = new ]
	[ "$(cat "$P/newdir/sub/f")" = n ]
	[ "$(cat "$P/README.md")" = mod ]
	[ "$(cat "$P/docs/guide.txt")" = "guide
more" ]
	[ ! -e "$P/docs/notes.md" ]
	[ ! -e "$P/src/lib" ]
	[ ! -e "$P/a/readme.txt" ]
	[ "$(cat "$P/a/renamed.txt")" = a-readme ]
	[ "$(readlink "$P/newlink")" = README.md ]
	[ "$(stat -c %a "$P/src/main.c")" = 755 ]
	[ "$(stat -c %Y "$P/config/app.json")" = 1000000000 ]
	# hidden files are untouched, and a clean sync leaves no delta behind
	[ "$(cat "$P/.env")" = "SECRET=${SECRET_MARK}_env" ]
	[ "$(cat "$P/a/.env.local")" = "SECRET=${SECRET_MARK}_env_local" ]
	refute_contains "$stderr" "conflict:"
	refute_contains "$stderr" " 1 conflict"
	[ "$(runs_count)" = 0 ]
}

@test "sync: a directory replaced by a new one keeps none of the old entries" {
	run --separate-stderr af run -p development "$P" -- sh -c 'cd /workspace
rm -r src && mkdir src && echo only > src/only.c
rm -r docs && echo file > docs
rm README.md && mkdir README.md && echo in > README.md/f'
	assert_status 0
	assert_eq "only.c" "$(ls -A "$P/src")"
	[ "$(cat "$P/docs")" = file ]
	[ "$(cat "$P/README.md/f")" = in ]
	[ "$(runs_count)" = 0 ]
}

@test "sync: a hidden entry in a directory keeps the directory" {
	run af run -e LC_ALL=C -p development "$P" -- sh -c 'rm -rf /workspace/a; ls -A /workspace/a'
	assert_status 0
	[ ! -e "$P/a/readme.txt" ]
	[ ! -e "$P/a/b/c/code.py" ]
	[ "$(cat "$P/a/.env.local")" = "SECRET=${SECRET_MARK}_env_local" ]
	[ "$(cat "$P/a/b/c/.env")" = "SECRET=${SECRET_MARK}_deep_env" ]
}

@test "sync applies the changes even when the command fails" {
	run af run "$P" -- sh -c 'echo x > /workspace/output/x; exit 3'
	assert_status 3
	[ "$(cat "$P/output/x")" = x ]
}

@test "a small change to a large file copies it up whole" {
	head -c 3000000 /dev/urandom >"$P/output/big"
	cp "$P/output/big" "$T/big.orig"
	run af run "$P" -- sh -c 'printf XYZ | dd of=/workspace/output/big bs=1 seek=1500000 conv=notrunc status=none'
	assert_status 0
	printf XYZ | dd of="$T/big.orig" bs=1 seek=1500000 conv=notrunc status=none
	cmp "$P/output/big" "$T/big.orig"
}

@test "reads through the server see a copy-up made after the file was first read" {
	# O_DIRECT reads bypass the page cache and reach the view at an
	# offset, where it keeps the file's fd between requests: a copy-up
	# in between (here by a hard link, written through the other name)
	# must not leave reads on the project's stale file.
	head -c 3145728 /dev/zero >"$P/output/big"
	run af run --changes discard "$P" -- sh -c 'cd /workspace/output
rd() { dd if=big bs=1M skip=1 count=1 iflag=direct status=none | head -c 4 | od -An -tx1 | tr -d " "; }
rd
ln big big2
printf XYZ | dd of=big2 bs=1 seek=1048576 conv=notrunc status=none
rd
printf ABC | dd of=big bs=1 seek=1048576 conv=notrunc status=none
rd
truncate -s 1048577 big
dd if=big bs=1M skip=1 iflag=direct status=none | od -An -tx1 | tr -d " "'
	assert_status 0
	assert_eq $'00000000\n58595a00\n41424300\n41' "$output"
}

@test "discard leaves the project untouched and no delta behind" {
	local before
	before=$(tree_sig "$P")
	run af run --changes discard -p development "$P" -- sh -c 'cd /workspace; echo x > new; echo y > README.md; rm -r src; chmod 600 docs/guide.txt; mkdir d'
	assert_status 0
	assert_eq "" "$output"
	assert_eq "$before" "$(tree_sig "$P")"
	[ "$(runs_count)" = 0 ]
}

@test "keep prints where the delta is and leaves the project untouched" {
	local before d
	before=$(tree_sig "$P")
	run --separate-stderr af run --changes keep -p development "$P" -- sh -c 'cd /workspace; echo kept > output/k; rm docs/notes.md; echo mod > README.md'
	assert_status 0
	assert_eq "$before" "$(tree_sig "$P")"
	output=$stderr
	d=$(kept_path)
	[ -n "$d" ]
	[ "$(dirname "$d")" = "$RUNS" ]
	[ "$(cat "$d/upper/output/k")" = kept ]
	[ "$(cat "$d/upper/README.md")" = mod ]
	[ "$(stat -c '%F %t:%T' "$d/upper/docs/notes.md")" = "character special file 0:0" ]
	[ "$(runs_count)" = 1 ]
}

@test "conflict: the host changed a file after the sandbox copied it" {
	bg_af "$T/out" run -p development "$P" -- sh -c 'echo sandbox-v1 > /workspace/README.md; echo other > /workspace/output/other; trap "echo sandbox-v2 > /workspace/README.md; exit 0" TERM; echo ready; while :; do sleep 0.02; done'
	wait_for_line "$T/out" ready
	echo host-version >"$P/README.md"
	kill -TERM "$BG_PID"
	local st=0
	wait "$BG_PID" || st=$?
	output=$(cat "$T/out")
	[ "$st" = 0 ]
	assert_contains "$output" "conflict"
	assert_contains "$output" "README.md"
	# the project keeps its version, other changes are synced
	[ "$(cat "$P/README.md")" = host-version ]
	[ "$(cat "$P/output/other")" = other ]
	# the sandbox's version stays in the kept delta
	[ "$(runs_count)" = 1 ]
	[ "$(cat "$RUNS"/*/upper/README.md)" = sandbox-v2 ]
}

@test "conflict: the host deleted a file the sandbox changed" {
	bg_af "$T/out" run -p development "$P" -- sh -c 'echo sandbox > /workspace/docs/guide.txt; '"$WAIT_TERM"
	wait_for_line "$T/out" ready
	rm "$P/docs/guide.txt"
	kill -TERM "$BG_PID"
	local st=0
	wait "$BG_PID" || st=$?
	[ "$st" = 0 ]
	assert_contains "$(cat "$T/out")" "conflict"
	[ ! -e "$P/docs/guide.txt" ]
	[ "$(cat "$RUNS"/*/upper/docs/guide.txt)" = sandbox ]
}

@test "no conflict: a file changed only on the host keeps the host's version" {
	bg_af "$T/out" run -p development "$P" -- sh -c 'cat /workspace/docs/guide.txt >/dev/null; echo new > /workspace/output/n; '"$WAIT_TERM"
	wait_for_line "$T/out" ready
	echo host >"$P/docs/guide.txt"
	kill -TERM "$BG_PID"
	wait "$BG_PID"
	refute_contains "$(cat "$T/out")" "conflict:"
	[ "$(cat "$P/docs/guide.txt")" = host ]
	[ "$(cat "$P/output/n")" = new ]
	[ "$(runs_count)" = 0 ]
}

@test "the project is never modified while the command runs" {
	local before
	before=$(tree_sig "$P")
	bg_af "$T/out" run -p development "$P" -- sh -c 'cd /workspace; echo mod > README.md; rm docs/notes.md; echo new > output/n; mkdir newd; chmod 600 src/main.c; mv a/readme.txt a/r2; '"$WAIT_TERM"
	wait_for_line "$T/out" ready
	assert_eq "$before" "$(tree_sig "$P")"
	kill -TERM "$BG_PID"
	wait "$BG_PID"
	[ "$(cat "$P/README.md")" = mod ]
	[ -d "$P/newd" ]
	[ ! -e "$P/docs/notes.md" ]
}

@test "two concurrent runs over the same project each get their own delta" {
	local before d1 d2
	before=$(tree_sig "$P")
	bg_af "$T/out1" run --changes keep "$P" -- sh -c 'echo one > /workspace/output/one; trap "ls /workspace/output; exit 0" TERM; echo ready; while :; do sleep 0.02; done'
	local p1=$BG_PID
	wait_for_line "$T/out1" ready
	bg_af "$T/out2" run --changes keep "$P" -- sh -c 'echo two > /workspace/output/two; echo ready; ls /workspace/output'
	local p2=$BG_PID
	wait "$p2"
	kill -TERM "$p1"
	wait "$p1"
	output=$(cat "$T/out1")
	assert_contains "$output" "ready
one"
	refute_contains "$output" "two"
	d1=$(kept_path)
	output=$(cat "$T/out2")
	assert_contains "$output" "ready
two"
	refute_contains "$output" "one"
	d2=$(kept_path)
	[ -n "$d1" ] && [ -n "$d2" ] && [ "$d1" != "$d2" ]
	assert_eq "one" "$(ls "$d1/upper/output")"
	assert_eq "two" "$(ls "$d2/upper/output")"
	assert_eq "$before" "$(tree_sig "$P")"
}

@test "two concurrent runs syncing different files both land" {
	bg_af "$T/out1" run "$P" -- sh -c 'echo one > /workspace/output/one; '"$WAIT_TERM"
	local p1=$BG_PID
	wait_for_line "$T/out1" ready
	bg_af "$T/out2" run "$P" -- sh -c 'echo two > /workspace/output/two'
	local p2=$BG_PID
	wait "$p2"
	kill -TERM "$p1"
	wait "$p1"
	[ "$(cat "$P/output/one")" = one ]
	[ "$(cat "$P/output/two")" = two ]
	[ "$(runs_count)" = 0 ]
}

# cfr SCRIPT: python3 in the sandbox (development preset) with cp(SRC,
# DST, [SRC_OFF, DST_OFF, COUNT]) doing the copy with copy_file_range(2)
# alone, in a loop until COUNT bytes (default: all of SRC) are copied.
CFR_PY='import os, sys
def cp(src, dst, soff=0, doff=0, count=None, trunc=True):
    i = os.open(src, os.O_RDONLY)
    o = os.open(dst, os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if trunc else 0), 0o644)
    left = os.fstat(i).st_size - soff if count is None else count
    while left > 0:
        n = os.copy_file_range(i, o, left, soff, doff)
        if n == 0:
            break
        soff += n; doff += n; left -= n
    os.close(i); os.close(o)
'

@test "copy_file_range: copies of project and new files, at offsets, sync back" {
	head -c 3000000 /dev/urandom >"$P/docs/big.bin"
	printf '0123456789abcdef' >"$P/docs/digits.txt"
	run --separate-stderr af run -p development "$P" -- python3 -c "$CFR_PY"'
cp("/workspace/README.md", "/workspace/copy.md")
cp("/workspace/docs/big.bin", "/workspace/output/big.copy")
cp("/workspace/output/big.copy", "/workspace/output/big.copy2")
# into the middle of an existing project file: copied up first
cp("/workspace/README.md", "/workspace/docs/digits.txt", 0, 4, 5, trunc=False)
print("done")'
	assert_status 0
	assert_eq done "$output"
	cmp "$P/README.md" "$P/copy.md"
	cmp "$P/docs/big.bin" "$P/output/big.copy"
	cmp "$P/docs/big.bin" "$P/output/big.copy2"
	assert_eq "0123hello9abcdef" "$(cat "$P/docs/digits.txt")"
	[ "$(runs_count)" = 0 ]
}

@test "copy_file_range: a read-only file is no destination, a hidden one no source" {
	run af run -p agent-safe -r 'docs/**=read' "$P" -- python3 -c "$CFR_PY"'
import errno
for src, dst in (("/workspace/README.md", "/workspace/docs/guide.txt"),
                 ("/workspace/.env", "/workspace/output/x")):
    try:
        cp(src, dst)
        print("copied", dst)
    except OSError as e:
        print(errno.errorcode[e.errno], os.path.basename(src))
print(open("/workspace/docs/guide.txt").read().strip())'
	assert_status 0
	assert_eq "EACCES README.md
ENOENT .env
guide" "$output"
	assert_eq guide "$(cat "$P/docs/guide.txt")"
	[ ! -e "$P/output/x" ]
}

@test "copy_file_range: overlapping ranges of one file through two names are refused" {
	# two names of one file are two inodes to the sandbox's kernel, so
	# only the view can see the overlap
	run --separate-stderr af run -p development "$P" -- python3 -c '
import errno, os
os.chdir("/workspace/output")
data = bytes(range(256)) * 1024
with open("a", "wb") as f:
    f.write(data)
os.link("a", "b")
i = os.open("a", os.O_RDONLY)
o = os.open("b", os.O_WRONLY)
try:
    print("copied", os.copy_file_range(i, o, 200000, 0, 10))
except OSError as e:
    print(errno.errorcode[e.errno])
print("intact" if open("a", "rb").read() == data else "garbled")'
	assert_status 0
	assert_eq "EINVAL
intact" "$output"
	assert_eq "$(synced_line 2 0 0)" "$stderr"
}

@test "copy_file_range: project and delta on different file systems" {
	local shm
	shm=$(mktemp -d /dev/shm/af-cfr.XXXXXX 2>/dev/null) || skip "no /dev/shm to put the project on"
	if [ "$(stat -c %d "$shm")" = "$(stat -c %d "$T")" ]; then
		rm -rf "$shm"
		skip "/dev/shm and $T are one file system"
	fi
	head -c 2500000 /dev/urandom >"$shm/big.bin"
	run af run -q -p development "$shm" -- python3 -c "$CFR_PY"'
cp("/workspace/big.bin", "/workspace/big.copy")
print("done")'
	local st=$status out=$output
	cmp "$shm/big.bin" "$shm/big.copy" && local same=1
	rm -rf "$shm"
	[ "$st" = 0 ] && [ "$out" = done ] && [ "${same:-}" = 1 ]
}

@test "a slow copy-up does not hold up the other requests" {
	# a copy-up is one request that takes as long as the copy; the view
	# must go on serving everything else meanwhile
	head -c 512M /dev/zero >"$P/docs/big.bin"
	run af run -p development --changes discard "$P" -- sh -c 'cd /workspace
now() { date +%s%N; }
t0=$(now)
( echo x >> docs/big.bin; echo "copyup $(( ($(now) - t0) / 1000000 ))" ) &
sleep 0.05
cat README.md >/dev/null && echo "read $(( ($(now) - t0) / 1000000 ))"
wait'
	assert_status 0
	local copy read
	copy=$(sed -n 's/^copyup //p' <<<"$output")
	read=$(sed -n 's/^read //p' <<<"$output")
	[ -n "$copy" ] && [ -n "$read" ]
	if [ "$copy" -lt 150 ]; then
		skip "the copy-up took ${copy} ms: too fast to tell (reflinks, or a fast disk)"
	fi
	# the read started 50 ms in; it must not have waited for the copy
	echo "copy-up ${copy} ms, read done at ${read} ms" >&2
	[ $((read + 25)) -lt "$copy" ]
}
