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

# rss_growth N PYTHON: run PYTHON (after DEEP_PY; it calls warm() a third
# of the way through its loop over range(N), once allocators are warm even
# under AddressSanitizer, and done() at the end)
# in a sandbox and print how many KiB agentfense's peak RSS grew from
# warm() to done().
rss_growth() {
	local warm=0 hwm=0 i
	# freed memory must be reused, not parked in AddressSanitizer's
	# quarantines (the global one and each thread's)
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=0:thread_local_quarantine_size_kb=0 \
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
    if i == N // 3: warm()
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
    if i == N // 3: warm()
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
    if i == N // 3: warm()
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

@test "disk-limit: writing past --disk-limit fails with ENOSPC in the sandbox, and says so" {
	run --separate-stderr af run --disk-limit 16M "$P" -- sh -c \
		'dd if=/dev/zero of=/workspace/output/fill bs=1M count=64 2>/dev/null; echo "dd: $?"'
	assert_status 0
	assert_output "dd: 1"
	assert_eq "agentfense: the sandbox reached its disk limit (16 MiB): writes past it failed with 'No space left on device'" \
		"${stderr_lines[0]}"
	assert_eq "hint: give it more with --disk-limit SIZE" "${stderr_lines[1]}"
	# what did fit was synced, and no more than the limit
	size=$(stat -c %s "$P/output/fill")
	[ "$size" -gt 0 ] && [ "$size" -le $((16 << 20)) ]
}

@test "disk-limit: fallocate, copy_file_range and the copy-up of a big project file are charged too" {
	head -c $((24 << 20)) /dev/urandom >"$P/output/big.bin"
	run af run --changes discard --disk-limit 16M "$P" -- python3 -c '
import errno, os
def try_(what, f):
    try:
        f()
        print(what, "OK")
    except OSError as e:
        print(what, errno.errorcode[e.errno])
def falloc():
    fd = os.open("/workspace/output/fa", os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        os.posix_fallocate(fd, 0, 32 << 20)
    finally:
        os.close(fd)
def cfr():
    i = os.open("/workspace/output/big.bin", os.O_RDONLY)
    o = os.open("/workspace/output/copy", os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        while os.copy_file_range(i, o, 1 << 30):
            pass
    finally:
        os.close(i)
        os.close(o)
def append():
    fd = os.open("/workspace/output/big.bin", os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, b"x")
    finally:
        os.close(fd)
try_("fallocate", falloc)
try_("copy_file_range", cfr)
try_("copy-up", append)
print("copy size ok:", os.stat("/workspace/output/copy").st_size <= 16 << 20)
try_("small write", lambda: open("/workspace/output/small", "w").write("fits\n"))
'
	assert_status 0
	assert_eq "fallocate ENOSPC
copy_file_range ENOSPC
copy-up ENOSPC
copy size ok: True
small write OK" "$(grep -v '^agentfense:\|^hint:' <<<"$output")"
}

@test "disk-limit: a deleted file gives its room back, one held open after unlink does not" {
	run af run --changes discard --disk-limit 16M "$P" -- python3 -c '
import errno, os, time
def fill(path, mib):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o644)
    try:
        for _ in range(mib):
            os.write(fd, b"\1" * (1 << 20))
        return "OK"
    except OSError as e:
        return errno.errorcode[e.errno]
    finally:
        os.close(fd)
for i in range(5):
    print("fill", i, fill("/workspace/output/f", 12))
    os.unlink("/workspace/output/f")
    time.sleep(0.2)
held = os.open("/workspace/output/held", os.O_CREAT | os.O_WRONLY, 0o644)
os.write(held, b"\1" * (12 << 20))
os.unlink("/workspace/output/held")
time.sleep(0.2)
print("while held", fill("/workspace/output/g", 12))
'
	assert_status 0
	assert_eq "fill 0 OK
fill 1 OK
fill 2 OK
fill 3 OK
fill 4 OK
while held ENOSPC" "$(grep -v '^agentfense:\|^hint:' <<<"$output")"
}

@test "disk-limit: a sparse file costs what it holds, and df in the sandbox shows the limit" {
	run af run -q --disk-limit 1M "$P" -- sh -c \
		'truncate -s 100G /workspace/output/huge && df -B1 --output=size /workspace | tail -1'
	assert_status 0
	assert_eq 1048576 "$(tr -d ' ' <<<"$output")"
	assert_eq $((100 << 30)) "$(stat -c %s "$P/output/huge")"
	assert_eq 0 "$(blocks "$P/output/huge")"
}

@test "disk-limit: by default the sandbox may fill at most half of the free space" {
	local free
	free=$(df -B1 --output=avail "$XDG_STATE_HOME" | tail -1)
	run af run --changes discard "$P" -- df -B1 --output=size,avail /workspace
	assert_status 0
	read -r size avail <<<"$(tail -1 <<<"$output")"
	# half of it then, give or take what other programs wrote meanwhile
	[ "$size" -le $((free / 2 + (256 << 20))) ]
	[ "$size" -ge $((free / 2 - (256 << 20))) ]
	[ "$avail" -le "$size" ]
}

@test "disk-limit: a bad size is a usage error" {
	run --separate-stderr af run --disk-limit 10X "$P" -- true
	assert_error 125 "invalid value '10X' for --disk-limit: expected a size such as 512M, 1.5G or 1GiB"
	run --separate-stderr af run --disk-limit 512K "$P" -- true
	assert_error 125 "invalid value '512K' for --disk-limit: the sandbox needs at least 1M"
	run --separate-stderr af run --disk-limit 99999999T "$P" -- true
	assert_error 125 "invalid value '99999999T' for --disk-limit: too large"
}

# harness [OPTION...] -- CMD...: the view alone, served by viewharness
# (its --max-nodes sets a cap a test can reach), over $P.
harness() {
	split_opts "$@"
	AF_TEST_MARK="$T" "${AF_BUILD:-$(dirname "$AGENTFENSE")}/viewharness" "${OPTS[@]}" \
		"$P" "$T/hstate" -- "${ARGS[@]}"
}

# Python run in the harness's view (cwd: the view's root): hold N
# lookups of project files, count the ENFILE refusals.
NODES_PY='
import errno, os, sys
names = sorted(os.listdir("output/many"))
held, refused = [], 0
for n in names:
    try:
        os.stat("output/many/" + n)
        held.append(n)
    except OSError as e:
        if e.errno != errno.ENFILE:
            raise
        refused += 1
print("held", len(held) > 0, "refused", refused > 0)
'

@test "nodes: lookups past the node cap fail with ENFILE and the view goes on serving" {
	mkdir -p "$P/output/many"
	for i in $(seq 300); do : >"$P/output/many/f$i"; done
	run --separate-stderr harness --max-nodes 100 -- python3 -c 'open("README.md").read()'"$NODES_PY"'
# an inode the kernel holds is served as before
print("readme:", open("README.md").read().strip())
'
	assert_status 0
	assert_output "held True refused True
readme: hello agentfense"
	assert_contains "$stderr" "viewharness: node cap 100 reached"
}

@test "nodes: creating entries past the node cap fails with ENFILE, never the server" {
	mkdir -p "$P/output/many"
	run --separate-stderr harness --max-nodes 100 -- python3 -c '
import errno, os
fds, codes = [], set()
for i in range(300):
    try:
        fds.append(os.open("output/n%d" % i, os.O_CREAT | os.O_WRONLY, 0o644))
    except OSError as e:
        codes.add(errno.errorcode[e.errno])
print("opened some:", len(fds) > 10, sorted(codes))
for fd in fds:
    os.write(fd, b"x")
    os.close(fd)
print(open("output/n0").read())
'
	assert_status 0
	assert_output "opened some: True ['ENFILE']
x"
	# a refused create left nothing behind in the delta
	assert_eq "$(ls "$T"/hstate/*/upper/output | grep -c '^n')" \
		"$(ls "$T"/hstate/*/upper/output | grep '^n' | while read -r f; do [ -s "$T"/hstate/*/upper/output/"$f" ] && echo; done | wc -l)"
	assert_contains "$stderr" "viewharness: node cap 100 reached"
}

@test "nodes: inodes the kernel lets go of make room under the cap again" {
	mkdir -p "$P/output/many"
	for i in $(seq 300); do : >"$P/output/many/f$i"; done
	run --separate-stderr harness --max-nodes 100 -- python3 -c "$NODES_PY"'
# an unlinked file is forgotten at once: its node is freed
for n in held:
    os.unlink("output/many/" + n)
again = [n for n in names if n not in held]
ok = 0
for n in again[:len(held) // 2]:
    os.stat("output/many/" + n)
    ok += 1
print("stat after unlinks:", ok > 0)
'
	assert_status 0
	assert_output "held True refused True
stat after unlinks: True"
}

@test "disk-limit: rewriting a file with O_TRUNC gives its old blocks back, in either open mode" {
	# without -k, O_TRUNC reaches the view inside the open (atomic
	# O_TRUNC); run's view gets a size change instead, tested above
	local py='
import os, sys
for i in range(6):
    fd = os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    os.write(fd, b"\1" * (12 << 20))
    os.close(fd)
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_TRUNC)
os.close(fd)
print("rewrote", i + 1, "size", os.stat(sys.argv[1]).st_size)
fd = os.open(sys.argv[1], os.O_WRONLY)
os.write(fd, b"\1" * (12 << 20))
os.close(fd)
print("and again")
'
	run --separate-stderr harness --disk-limit $((16 << 20)) -- python3 -c "$py" output/f
	assert_status 0
	assert_output "rewrote 6 size 0
and again"
	run --separate-stderr af run --changes discard --disk-limit 16M "$P" -- python3 -c "$py" /workspace/output/f
	assert_status 0
	assert_output "rewrote 6 size 0
and again"
}

@test "disk-limit: sync writes no more than the limit to the project, hard links included" {
	# one 12 MiB file under three names is 12 MiB in the delta, but
	# sync writes each name as a file of its own: 36 MiB
	run --separate-stderr af run --disk-limit 16M "$P" -- python3 -c '
import os
with open("/workspace/output/a", "wb") as f:
    f.write(os.urandom(12 << 20))
os.link("/workspace/output/a", "/workspace/output/l1")
os.link("/workspace/output/a", "/workspace/output/l2")
print("linked")'
	assert_status 125
	assert_output "linked"
	assert_eq "agentfense: warning: cannot write 'output/l2' in the project: No space left on device" \
		"${stderr_lines[0]}"
	assert_eq "agentfense: cannot write 'output/l1' in the project: No space left on device" \
		"${stderr_lines[1]}"
	assert_contains "$stderr" "changes not synced are kept in '$RUNS/"
	assert_eq $((12 << 20)) "$(stat -c %s "$P/output/a")"
	[ ! -e "$P/output/l1" ] && [ ! -e "$P/output/l2" ]
	cmp "$P/output/a" "$RUNS"/*/upper/output/l1
}

# ---- entries and extended attributes in the disk limit ------------------------

# A loop making entries under --disk-limit 1M: prints how many it made and
# the errno that stopped it (NONE if none did), then, with "again", frees
# them all and makes them once more.  ENTRY_PY KIND MAX [again]
ENTRY_PY='
import errno, os, sys
kind, top, again = sys.argv[1], int(sys.argv[2]), len(sys.argv) > 3
base = "/workspace/output/"
open(base + "f", "w").close()
def make(i):
    p = base + "e%d" % i
    if kind == "dir":
        os.mkdir(p)
    elif kind == "fifo":
        os.mkfifo(p)
    elif kind == "file":
        os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
    elif kind == "link":
        os.link(base + "f", p)
    elif kind == "symlink":
        os.symlink("t" * 4000, p)
    elif kind == "xattr":
        os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o644))
        os.setxattr(p, "user.pad", b"v" * 3000)
def free(i):
    p = base + "e%d" % i
    (os.rmdir if kind == "dir" else os.unlink)(p)
def loop():
    n = 0
    try:
        while n < top:
            make(n)
            n += 1
        return n, "NONE"
    except OSError as e:
        return n, errno.errorcode[e.errno]
n, why = loop()
print(kind, why, n)
if again:
    for i in range(n):
        free(i)
    if kind == "xattr":
        try:
            os.unlink(base + "e%d" % n)  # the file whose attribute failed
        except FileNotFoundError:
            pass
    m, why = loop()
    print("again", why, m - n)
'

# entries PYTHON-ARGS...: run ENTRY_PY under --disk-limit 1M, discarding
entries() {
	run --separate-stderr af run --changes discard --disk-limit 1M "$P" -- \
		python3 -c "$ENTRY_PY" "$@"
}

# the count in "KIND ENOSPC N" is between lo and hi
count_between() {
	local n
	n=$(awk '{print $3}' <<<"${lines[0]}")
	[ "$n" -ge "$1" ] && [ "$n" -le "$2" ] || {
		echo "count $n not in [$1, $2]: $output" >&2
		return 1
	}
}

@test "disk-limit: directories with attributes and long symbolic links stop at the limit, and the delta stays within it" {
	run --separate-stderr af run --changes keep --disk-limit 1M "$P" -- python3 -c '
import errno, os
made = 0
try:
    for i in range(5000):
        d = "/workspace/output/d%d" % i
        os.mkdir(d)
        os.setxattr(d, "user.pad", b"x" * 2000)
        os.symlink("a" * 3000, "/workspace/output/l%d" % i)
        made += 1
    print("no error", made)
except OSError as e:
    print(errno.errorcode[e.errno], made < 100)'
	assert_status 0
	assert_output "ENOSPC True"
	assert_eq "agentfense: the sandbox reached its disk limit (1 MiB): writes past it failed with 'No space left on device'" \
		"${stderr_lines[0]}"
	# what the delta really takes, with its own records, is the limit
	# and a little more
	local run_dir apparent allocated
	run_dir=$(echo "$RUNS"/*)
	apparent=$(du -s -B1 --apparent-size "$run_dir" | cut -f1)
	allocated=$(du -s -B1 "$run_dir" | cut -f1)
	[ "$apparent" -le $(((1 << 20) + (128 << 10))) ] || { echo "apparent $apparent" >&2; false; }
	[ "$allocated" -le $(((1 << 20) + (128 << 10))) ] || { echo "allocated $allocated" >&2; false; }
}

@test "disk-limit: a directory costs 4 KiB, and rmdir gives it back" {
	entries dir 2000 again
	assert_status 0
	# 1 MiB is 256 entries; output/ itself and the file f take two
	count_between 240 254
	assert_eq "dir ENOSPC" "$(cut -d' ' -f1,2 <<<"${lines[0]}")"
	assert_eq "again ENOSPC 0" "${lines[1]}"
}

@test "disk-limit: FIFOs, empty files and hard links cost 4 KiB each, and unlink gives it back" {
	for kind in fifo file link; do
		entries $kind 2000 again
		assert_status 0
		count_between 240 254
		assert_eq "$kind ENOSPC" "$(cut -d' ' -f1,2 <<<"${lines[0]}")"
		assert_eq "again ENOSPC 0" "${lines[1]}"
	done
}

@test "disk-limit: a symbolic link costs 4 KiB and its target, and unlink gives it back" {
	entries symlink 2000 again
	assert_status 0
	# 4096 + 4000 bytes each: 129 in 1 MiB, less output/ and f
	count_between 120 128
	assert_eq "symlink ENOSPC" "$(cut -d' ' -f1,2 <<<"${lines[0]}")"
	assert_eq "again ENOSPC 0" "${lines[1]}"
}

@test "disk-limit: extended attributes cost their block, name and value; removing or replacing them gives it back" {
	# a file with a 3000-byte attribute: 4096 + 4096 + 8 + 3000
	entries xattr 2000 again
	assert_status 0
	count_between 80 92
	assert_eq "xattr ENOSPC" "$(cut -d' ' -f1,2 <<<"${lines[0]}")"
	assert_eq "again ENOSPC 0" "${lines[1]}"
	run --separate-stderr af run --changes discard --disk-limit 1M "$P" -- python3 -c '
import errno, os
p = "/workspace/output/x"
open(p, "w").close()
# replacing one value a thousand times costs it once (ext4 holds one
# block of attributes per file: 4 KiB for all of them)
for i in range(1000):
    os.setxattr(p, "user.v", b"%d" % i * 250)
# set and removed a thousand times, an attribute costs nothing
for i in range(1000):
    os.setxattr(p, "user.n%d" % (i % 2), b"z" * 2000)
    os.removexattr(p, "user.n%d" % (i % 2))
n = 0
try:
    while n < 2000:
        os.mkdir("/workspace/output/d%d" % n)
        n += 1
except OSError as e:
    print(errno.errorcode[e.errno], n >= 230)'
	assert_status 0
	assert_output "ENOSPC True"
}

@test "disk-limit: deleting project entries needs no room, even at the limit" {
	mkdir "$P/output/many"
	for i in $(seq 600); do : >"$P/output/many/f$i"; mkdir "$P/output/many/d$i"; done
	run --separate-stderr af run --disk-limit 1M "$P" -- sh -c '
i=0
while [ $i -lt 2000 ] && mkdir /workspace/output/fill$i 2>/dev/null; do i=$((i + 1)); done
echo "filled: $([ $i -lt 2000 ] && echo at the limit)"
rm -rf /workspace/output/many/* && echo "deleted $(ls /workspace/output/many | wc -l)"'
	assert_status 0
	assert_output "filled: at the limit
deleted 0"
	[ -d "$P/output/many" ] && [ -z "$(ls "$P/output/many")" ]
}

@test "disk-limit: a copy-up costs an entry too, and the project is given no more than the limit" {
	mkdir "$P/output/many"
	for i in $(seq 400); do : >"$P/output/many/f$i"; done
	# changing a project file copies it up: 400 entries are 1.6 MiB
	run --separate-stderr af run --disk-limit 1M "$P" -- sh -c \
		'chmod 600 /workspace/output/many/* 2>/dev/null; echo "chmod: $?"'
	assert_status 0
	assert_output "chmod: 1"
	assert_eq "agentfense: the sandbox reached its disk limit (1 MiB): writes past it failed with 'No space left on device'" \
		"${stderr_lines[0]}"
	local synced
	synced=$(find "$P/output/many" -perm 600 | wc -l)
	[ "$synced" -ge 200 ] && [ "$synced" -le 256 ] || { echo "synced $synced" >&2; false; }
}
