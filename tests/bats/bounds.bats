#!/usr/bin/env bats
# Bounds on what a sandbox can make agentfense hold or write: the view's
# memory follows what exists in the delta, not what was ever done in it,
# the delta's disk use is capped (--disk-limit), and sparse files stay
# sparse through copy-up and sync.

load helper

# A directory 40 levels deep, so every path the loops below touch is
# about 900 bytes long and a record kept per path shows in the RSS.
DEEP_PY='
import os, sys, time
d = "/workspace/output/" + "/".join("deep-directory-level-%02d" % i for i in range(40))
os.makedirs(d)
def warm():
    print("warm", flush=True)
    time.sleep(0.5)
def done():
    print("done", flush=True)
    time.sleep(0.5)
'

# rss_growth N PYTHON: run PYTHON (after DEEP_PY; it calls warm() once
# the loop is under way and done() at the end, and loops over range(N))
# in a sandbox and print how many KiB agentfense's peak RSS grew from
# warm() to done().
rss_growth() {
	local warm=0 hwm=0 i
	# freed memory must be reused, not parked, under AddressSanitizer too
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1 \
		bg_af "$T/out" run --changes discard "$P" -- python3 -c "$DEEP_PY
N = $1
$2"
	wait_for_line "$T/out" warm 30
	warm=$(awk '/^VmRSS/ { print $2 }' /proc/"$BG_PID"/status)
	while grep -qx warm "$T/out" && ! grep -qx done "$T/out"; do
		sleep 0.05
	done
	hwm=$(awk '/^VmHWM/ { print $2 }' /proc/"$BG_PID"/status)
	wait "$BG_PID"
	echo $((hwm - warm))
}

@test "bounds: 60,000 creates and unlinks in a deep directory leave the view's memory flat" {
	run rss_growth 60000 '
for i in range(N):
    p = d + "/file-%08d" % i
    os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
    os.unlink(p)
    if i == 1000: warm()
done()'
	assert_status 0
	echo "RSS growth: $output KiB" >&2
	[ "$output" -lt 8192 ]
}

@test "bounds: create, rename and unlink in a loop keeps the view's memory flat" {
	run rss_growth 20000 '
for i in range(N):
    p = d + "/a-%08d" % i
    q = d + "/b-%08d" % i
    os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
    os.rename(p, q)
    os.unlink(q)
    if i == 1000: warm()
done()'
	assert_status 0
	echo "RSS growth: $output KiB" >&2
	[ "$output" -lt 8192 ]
}

@test "bounds: mkdir and rmdir in a loop keeps the view's memory flat" {
	run rss_growth 20000 '
for i in range(N):
    p = d + "/dir-%08d" % i
    os.mkdir(p)
    os.symlink("target", p + "/link")
    os.unlink(p + "/link")
    os.rmdir(p)
    if i == 1000: warm()
done()'
	assert_status 0
	echo "RSS growth: $output KiB" >&2
	[ "$output" -lt 8192 ]
}

# blocks FILE: the KiB FILE has allocated on disk.
blocks() {
	echo $(($(stat -c '%b * %B' "$1") / 1024))
}

@test "sparse: truncate -s 2G in the sandbox syncs as a sparse file, fast" {
	SECONDS=0
	run af run "$P" -- truncate -s 2G /workspace/output/big
	assert_status 0
	[ "$SECONDS" -lt 10 ]
	assert_eq 2147483648 "$(stat -c %s "$P/output/big")"
	assert_eq 0 "$(blocks "$P/output/big")"
	assert_eq "" "$(ls "$RUNS" 2>/dev/null)"
}

@test "sparse: data islands in a sparse file keep their data and their holes through sync" {
	run af run "$P" -- python3 -c '
import os
fd = os.open("/workspace/output/islands", os.O_CREAT | os.O_WRONLY, 0o644)
os.pwrite(fd, b"A" * 8192, 0)
os.pwrite(fd, b"B" * 100, 1 << 30)
os.pwrite(fd, b"C" * 5000, (3 << 30) - 5000)
os.close(fd)'
	assert_status 0
	python3 -c '
import os
fd = os.open("'"$T"'/expected", os.O_CREAT | os.O_WRONLY, 0o644)
os.pwrite(fd, b"A" * 8192, 0)
os.pwrite(fd, b"B" * 100, 1 << 30)
os.pwrite(fd, b"C" * 5000, (3 << 30) - 5000)
os.close(fd)'
	cmp "$T/expected" "$P/output/islands"
	# three islands: a few blocks each, nowhere near 3 GiB
	[ "$(blocks "$P/output/islands")" -le 64 ]
}

@test "sparse: a copy-up of a sparse project file keeps its holes in the delta and at sync" {
	truncate -s 1G "$P/output/disk.img"
	printf 'head' | dd of="$P/output/disk.img" conv=notrunc status=none
	printf 'tail' | dd of="$P/output/disk.img" bs=1 seek=$((1 << 29)) conv=notrunc status=none
	cp --sparse=always "$P/output/disk.img" "$T/expected"
	printf 'more' | dd of="$T/expected" bs=1 seek=$((1 << 30)) conv=notrunc status=none
	# kept: the copy-up in the delta can be looked at
	run af run --changes keep "$P" -- sh -c 'printf more >>/workspace/output/disk.img'
	assert_status 0
	local up
	up=$(echo "$RUNS"/*/upper/output/disk.img)
	assert_eq $(((1 << 30) + 4)) "$(stat -c %s "$up")"
	[ "$(blocks "$up")" -le 64 ]
	cmp "$T/expected" "$up"
	# and the same file through a sync
	rm -rf "$RUNS"
	run af run "$P" -- sh -c 'printf more >>/workspace/output/disk.img'
	assert_status 0
	cmp "$T/expected" "$P/output/disk.img"
	[ "$(blocks "$P/output/disk.img")" -le 64 ]
}
