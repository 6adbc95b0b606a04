#!/usr/bin/env bats
# Attacks on the defences of sync and the run itself, by a command that
# controls everything it writes into the delta: other spellings of what
# sync holds back (case-insensitive projects, renames, hard links, long
# names), links to hidden files under other spellings, the disk limit,
# the masked /proc files, the relayed terminal, the view's hang detection
# and the cost of the link checks at sync.  Each case asserts the exact
# outcome.

load helper
load sync_helper
load term_helper

RAWSYS_PY=$(cat "$BATS_TEST_DIRNAME/../tools/rawsys.py")

setup() {
	af_setup
	M=
}

teardown() {
	# af_teardown reports a mount this leaves behind
	if [ -n "$M" ] && grep -qF " $M " /proc/self/mountinfo; then
		fusermount3 -u "$M" || true
	fi
	af_teardown
}

# casefold_project: move the project behind casefs (tests/tools/casefs.c),
# a passthrough FUSE file system that resolves names without regard to
# case; B is the backing directory, P the case-insensitive one.
casefold_project() {
	local casefs=${AF_BUILD:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)/build}/casefs
	if [ ! -x "$casefs" ]; then
		echo "casefs is not built: run 'make tools' (make check builds it)" >&2
		return 1
	fi
	B=$T/backing
	M=$T/ci
	mv "$P" "$B"
	mkdir "$M"
	"$casefs" "$B" "$M"
	P=$M
	assert_eq "hello agentfense" "$(cat "$M"/readme.MD)"
}

# U+017F LATIN SMALL LETTER LONG S folds to s, U+212A KELVIN SIGN to k
S=$(printf '\xc5\xbf')
K=$(printf '\xe2\x84\xaa')

# ---- case-insensitive projects -----------------------------------------------

@test "casefold: a link to a hidden file under another case is held at sync" {
	casefold_project
	printf '%s_token\n' "$SECRET_MARK" >"$B"/secrets/token.txt
	run --separate-stderr af run "$P" -- sh -c 'cd /workspace/output
ln -s ../SECRETS/token.txt a.txt
ln -s ../Server.KEY b.txt
cat a.txt b.txt; echo "cat=$?"'
	assert_status 0
	assert_output "cat=1"
	assert_eq "cat: a.txt: No such file or directory
cat: b.txt: No such file or directory
$(held output/a.txt "is a symlink to '../SECRETS/token.txt': it leads to 'SECRETS', which the policy hides")
$(held output/b.txt "is a symlink to '../Server.KEY': it leads to 'Server.KEY', which the policy hides")
$(summary 2)" "$(without_synced 2)"
	assert_eq "" "$(ls -A "$B/output")"
	run cat "$P/output/a.txt" "$P/output/b.txt"
	refute_contains "$output" "$SECRET_MARK"
}

@test "casefold: a link naming a hidden file with LONG S or KELVIN SIGN is held at sync" {
	casefold_project
	run --separate-stderr af run "$P" -- sh -c 'cd /workspace/output
ln -s "../${1}ecrets/key.txt" a.txt
ln -s "../server.${2}ey" b.txt' sh "$S" "$K"
	assert_status 0
	assert_output ""
	assert_eq "$(held output/a.txt "is a symlink to '../${S}ecrets/key.txt': it leads to '${S}ecrets', which the policy hides")
$(held output/b.txt "is a symlink to '../server.${K}ey': it leads to 'server.${K}ey', which the policy hides")
$(summary 2)" "$(without_synced 2)"
	assert_eq "" "$(ls -A "$B/output")"
	run cat "$P/output/a.txt" "$P/output/b.txt"
	refute_contains "$output" "$SECRET_MARK"
}

@test "casefold: a repository planted with objects and refs in LONG S is held" {
	casefold_project
	run --separate-stderr af run "$P" -- sh -c 'cd /workspace/output
mkdir -p "object$1" "ref$1/heads"
echo "ref: refs/heads/main" > HEAD
printf "[core]\n\tfsmonitor = \"touch '"$T"'/pwned; echo x\"\n" > config
echo data > result.txt' sh "$S"
	assert_status 0
	assert_output ""
	assert_eq "$(held output/HEAD "$(r_gitdir output)")
$(held output/config "$(r_gitconf output)")
$(held "output/object$S" "$(r_gitdir output)")
$(held "output/ref$S" "$(r_gitdir output)")
$(summary 4)" "$(without_synced 4)"
	assert_eq "result.txt" "$(ls -A "$B/output")"
	run host_git "$P/output" status
	assert_status 128
	assert_contains "$output" "fatal: not a git repository"
	[ ! -e "$T/pwned" ]
}

@test "casefold: hooks and config.worktree of a project repository in LONG S and KELVIN SIGN are held" {
	git init -q --bare "$P/fixtures.git"
	rm -rf "$P/fixtures.git/hooks"
	casefold_project
	run --separate-stderr af run -p development "$P" -- sh -c 'cd /workspace/fixtures.git
mkdir "hook$1"
printf "#!/bin/sh\ntouch '"$T"'/pwned\n" > "hook$1/post-checkout"
chmod +x "hook$1/post-checkout"
printf "[core]\n\tfsmonitor = \"touch '"$T"'/pwned\"\n" > "config.wor${2}tree"
echo "a description" > description' sh "$S" "$K"
	assert_status 0
	assert_eq "$(held "fixtures.git/config.wor${K}tree" "$(r_gitconf fixtures.git)")
$(held "fixtures.git/hook$S" "$(r_gitconf fixtures.git)")
$(summary 2)" "$(without_synced 2)"
	assert_eq "a description" "$(cat "$B/fixtures.git/description")"
	[ ! -e "$P/fixtures.git/hooks/post-checkout" ]
	[ ! -e "$P/fixtures.git/config.worktree" ]
}

# ---- repositories planted by rename, link and long names --------------------

@test "git: a '.git' made by renaming a prepared directory or hard-linking a file is held" {
	mkdir -p "$T/evil" && git init -q --bare "$T/evil"
	printf '[core]\n\tfsmonitor = "touch %s/pwned"\n' "$T" >>"$T/evil/config"
	run --separate-stderr af run -p full-access "$P" -- sh -c 'cd /workspace/output
mkdir -p a/prep/objects a/prep/refs/heads b
echo "ref: refs/heads/main" > a/prep/HEAD
printf "[core]\n\tfsmonitor = \"touch '"$T"'/pwned\"\n" > a/prep/config
mv a/prep a/.git
echo "gitdir: '"$T"'/evil" > b/plain
ln b/plain b/.git'
	assert_status 0
	assert_eq "$(held output/a/.git "$R_DOTGIT")
$(held output/b/.git "$R_DOTGIT")
$(summary 2)" "$(without_synced 2)"
	assert_eq "gitdir: $T/evil" "$(cat "$P/output/b/plain")"
	[ ! -e "$P/output/a/.git" ] && [ ! -e "$P/output/b/.git" ]
	run host_git "$P/output/a" status
	assert_status 128
	run host_git "$P/output/b" status
	assert_status 128
	[ ! -e "$T/pwned" ]
}

@test "git: under agent-safe, '.git' cannot be made by rename, link or symlink at all" {
	run --separate-stderr ops -- mkdir output/d create output/f \
		mv output/d output/.git link output/f output/.git symlink f output/.git \
		mv output/f .git level output/.git
	assert_status 0
	assert_output "mkdir output/d: OK
create output/f: OK
mv output/d output/.git: EACCES
link output/f output/.git: EACCES
symlink f output/.git: EACCES
mv output/f .git: EACCES
level output/.git: none"
	assert_eq 0 "$(runs_count)"
}

@test "git: '.git' padded with trailing dots or spaces to a long name is held" {
	run --separate-stderr af run -p full-access "$P" -- python3 -c '
import os
os.chdir("/workspace/output")
for n in [".git" + "." * 80, ".GIT" + " " * 200 + ".", ".git" + " " * 70 + "::$DATA", "git~1" + "." * 250]:
    open(n, "w").write("gitdir: /tmp/elsewhere\n")
open(".git" + "." * 80 + "x", "w").write("plain\n")
'
	assert_status 0
	expect=
	for n in ".GIT$(printf '%200s' '')." ".git$(printf '%70s' '')::\$DATA" ".git$(printf '%80s' '' | tr ' ' .)" "git~1$(printf '%250s' '' | tr ' ' .)"; do
		expect+="$(held "output/$n" "$R_DOTGIT")"$'\n'
	done
	expect+="$(summary 4)"
	assert_eq "$expect" "$(without_synced 4)"
	assert_eq ".git$(printf '%80s' '' | tr ' ' .)x" "$(ls -A "$P/output")"
}

@test "git: a repository renamed into place two levels down, or completed by rename, is held" {
	run --separate-stderr af run "$P" -- sh -c 'cd /workspace/output
mkdir -p t/objects t/refs/heads deep/er u/refs
echo "ref: refs/heads/main" > t/HEAD
printf "[core]\n\tfsmonitor = \"touch '"$T"'/pwned\"\n" > t/config
mv t deep/er/repo
echo "ref: refs/heads/main" > u/HEAD
mkdir v
mv v u/objects'
	assert_status 0
	assert_eq "$(held output/deep/er/repo/HEAD "$(r_gitdir output/deep/er/repo)")
$(held output/deep/er/repo/config "$(r_gitconf output/deep/er/repo)")
$(held output/deep/er/repo/objects "$(r_gitdir output/deep/er/repo)")
$(held output/deep/er/repo/refs "$(r_gitdir output/deep/er/repo)")
$(held output/u/HEAD "$(r_gitdir output/u)")
$(held output/u/objects "$(r_gitdir output/u)")
$(held output/u/refs "$(r_gitdir output/u)")
$(summary 7)" "$(without_synced 7)"
	run host_git "$P/output/deep/er/repo" status
	assert_status 128
	run host_git "$P/output/u" status
	assert_status 128
	[ ! -e "$T/pwned" ]
}

# ---- links -----------------------------------------------------------------

@test "links: trailing slashes, '.', doubled slashes and chains through made links are held" {
	run --separate-stderr af run "$P" -- sh -c 'cd /workspace/output
ln -s ../secrets/ a
ln -s ./.././secrets//key.txt b
ln -s ../a/b/. c
ln -s ../a/b d
ln -s d/secrets/deep.txt e
mkdir -p f/g && ln -s ../../a/../.env f/g/h
ln -s ../docs/ ok'
	assert_status 0
	assert_eq "$(held output/a "is a symlink to '../secrets/': it leads to 'secrets', which the policy hides")
$(held output/b "is a symlink to './.././secrets//key.txt': it leads to 'secrets', which the policy hides")
$(held output/c "is a symlink to '../a/b/.': it leads to 'a/b/c/.env', which the policy hides")
$(held output/d "is a symlink to '../a/b': it leads to 'a/b/c/.env', which the policy hides")
$(held output/e "is a symlink to 'd/secrets/deep.txt': it leads to 'a/b/secrets', which the policy hides")
$(held output/f/g/h "is a symlink to '../../a/../.env': it leads to 'output/.env', which the policy hides")
$(summary 6)" "$(without_synced 6)"
	assert_eq "f
ok" "$(ls -A "$P/output")"
	run tar -C "$P" -ch output
	refute_contains "$output" "$SECRET_MARK"
}

@test "links: a project directory and file replaced by links to hidden ones are held, the originals kept" {
	mkdir "$P/output/sub"
	printf 'sub\n' >"$P/output/sub/f.txt"
	printf 'file\n' >"$P/output/file.txt"
	run --separate-stderr af run "$P" -- sh -c 'cd /workspace/output
rm -r sub && ln -s ../secrets sub
rm file.txt && ln -s ../a/b/secrets/deep.txt file.txt'
	assert_status 0
	assert_eq "$(held output/file.txt "is a symlink to '../a/b/secrets/deep.txt': it leads to 'a/b/secrets', which the policy hides")
$(held output/sub "is a symlink to '../secrets': it leads to 'secrets', which the policy hides")
$(summary 2)" "$(without_synced 2)"
	assert_eq "sub" "$(cat "$P/output/sub/f.txt")"
	assert_eq "file" "$(cat "$P/output/file.txt")"
	[ ! -L "$P/output/sub" ] && [ ! -L "$P/output/file.txt" ]
}

@test "links: escape sequences and newlines in a held link's name and target reach the terminal escaped" {
	run --separate-stderr af run -p full-access "$P" -- python3 -c '
import os
os.chdir("/workspace/output")
os.mkdir("\x1b[31mred")
os.symlink("/etc/\x1b]52;c;ZXZpbA==\x07\nagentfense: all synced", "\x1b[31mred/l")
open("\x1b[31mred/.git", "w").write("gitdir: /tmp\n")
'
	assert_status 0
	local d='output/\x1b[31mred'
	assert_eq "$(held "$d/.git" "$R_DOTGIT")
$(held "$d/l" "is a symlink to '/etc/\\x1b]52;c;ZXZpbA==\\x07\\nagentfense: all synced': an absolute path, outside the project")
hint: a symlink out of the project is never synced, the host's files being other than the sandbox's; make it on the host if it is wanted
$(summary 2)" "$(without_synced 2)"
	refute_contains "$stderr" $'\x1b'
}

# ---- the disk limit ------------------------------------------------------------

# DISK_PY: fallocate(2) through ctypes, and the view's df (used KiB).
DISK_PY='
import ctypes, errno, mmap, os
libc = ctypes.CDLL(None, use_errno=True)
libc.fallocate.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_long, ctypes.c_long]
KEEP, PUNCH, COLLAPSE, ZERO, INSERT = 0x01, 0x02, 0x08, 0x10, 0x20
M = 1 << 20
def fa(fd, mode, off, n):
    return "OK" if libc.fallocate(fd, mode, off, n) == 0 else errno.errorcode[ctypes.get_errno()]
def used():
    s = os.statvfs("/workspace")
    return (s.f_blocks - s.f_bfree) * s.f_frsize
def within():
    return "within" if used() <= 4 * M else "over: %d" % used()
os.chdir("/workspace/output")
'

@test "disk-limit: fallocate past EOF, zero range, insert and collapse, and a punched hole refilled stay within it" {
	run --separate-stderr af run --disk-limit 4M --changes keep "$P" -- python3 -c "$DISK_PY"'
fd = os.open("f", os.O_RDWR | os.O_CREAT, 0o644)
print("keep 8M:", fa(fd, KEEP, 0, 8 * M), within())
print("zero|keep 8M:", fa(fd, ZERO | KEEP, 0, 8 * M), within())
print("zero 8M:", fa(fd, ZERO, 0, 8 * M), within())
print("insert:", fa(fd, INSERT, 0, M), "collapse:", fa(fd, COLLAPSE, 0, M))
os.write(fd, b"a" * 3 * M)
os.fsync(fd)
print("punch 3M:", fa(fd, PUNCH | KEEP, 0, 3 * M), within())
os.pwrite(fd, b"b" * 3 * M, 0)
os.fsync(fd)
print("refill 3M:", within())
print("keep 2M more:", fa(fd, KEEP, 3 * M, 2 * M), within())
print("zero 2M more:", fa(fd, ZERO, 3 * M, 2 * M), within())
'
	assert_status 0
	assert_output "keep 8M: ENOSPC within
zero|keep 8M: ENOSPC within
zero 8M: ENOSPC within
insert: ENOTSUP collapse: ENOTSUP
punch 3M: OK within
refill 3M: within
keep 2M more: ENOSPC within
zero 2M more: ENOSPC within"
	assert_contains "$stderr" "agentfense: the sandbox reached its disk limit (4 MiB)"
	# what the delta holds on disk, its directories aside
	[ "$(du -sk "$RUNS"/*/upper/output/f | cut -f1)" -le 4096 ]
}

@test "disk-limit: copy_file_range to the same file, mmap writes and O_TMPFILE stay within it" {
	run --separate-stderr af run --disk-limit 4M --changes keep "$P" -- python3 -c "$DISK_PY"'
fd = os.open("f", os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, b"a" * 3 * M)
try:
    print("copy to itself:", os.copy_file_range(fd, fd, 3 * M, 0, 3 * M), within())
except OSError as e:
    print("copy to itself:", errno.errorcode[e.errno], within())
os.ftruncate(fd, 0)
g = os.open("m", os.O_RDWR | os.O_CREAT, 0o644)
os.ftruncate(g, 8 * M)
mm = mmap.mmap(g, 8 * M)
for i in range(0, 8 * M, 4096):
    mm[i] = 1
try:
    mm.flush()
    print("mmap 8M: OK", within())
except OSError as e:
    print("mmap 8M:", errno.errorcode[e.errno], within())
mm.close()
for d in (".", "/workspace/tmp"):
    try:
        os.open(d, os.O_TMPFILE | os.O_RDWR, 0o600)
        print("O_TMPFILE: OK")
    except OSError as e:
        print("O_TMPFILE:", errno.errorcode[e.errno])
'
	assert_status 0
	assert_output "copy to itself: ENOSPC within
mmap 8M: ENOSPC within
O_TMPFILE: ENOTSUP
O_TMPFILE: ENOTSUP"
	assert_contains "$stderr" "agentfense: the sandbox reached its disk limit (4 MiB)"
	[ "$(du -sk "$RUNS"/*/upper/output/m | cut -f1)" -le 4096 ]
}

# ---- /proc ---------------------------------------------------------------------

@test "proc: /proc/keys and /proc/timer_list stay masked through roots, tasks and directory fds" {
	run --separate-stderr af run --changes discard "$P" -- python3 -c '
import errno, os, threading
def rd(p, dir_fd=None):
    try:
        fd = os.open(p, os.O_RDONLY, dir_fd=dir_fd)
        try:
            return repr(os.read(fd, 4096))
        finally:
            os.close(fd)
    except OSError as e:
        return errno.errorcode[e.errno]
tid = threading.get_native_id()
proc = os.open("/proc", os.O_PATH | os.O_DIRECTORY)
for p in ["/proc/self/root/proc/keys", "/proc/thread-self/root/proc/keys",
          "/proc/self/task/%d/root/proc/keys" % tid, "/proc/1/root/proc/keys",
          "/proc/self/root/proc/timer_list", "/proc/self/cwd/../proc/keys"]:
    print(p.replace(str(tid), "TID") + ":", rd(p))
print("keys from a /proc fd:", rd("keys", proc))
print("timer_list from a /proc fd:", rd("timer_list", proc))
try:
    open("/proc/sys/kernel/keys/maxkeys", "w").write("1\n")
    print("write maxkeys: OK")
except OSError as e:
    print("write maxkeys:", errno.errorcode[e.errno])
'
	assert_status 0
	assert_output "/proc/self/root/proc/keys: b''
/proc/thread-self/root/proc/keys: b''
/proc/self/task/TID/root/proc/keys: b''
/proc/1/root/proc/keys: EACCES
/proc/self/root/proc/timer_list: b''
/proc/self/cwd/../proc/keys: b''
keys from a /proc fd: b''
timer_list from a /proc fd: b''
write maxkeys: EROFS"
}

@test "proc: mountinfo, mounts and environ inside show nothing of the project's host path" {
	run --separate-stderr af run --changes discard "$P" -- sh -c \
		'cat /proc/self/mountinfo /proc/self/mounts; tr "\0" "\n" </proc/self/environ; pwd'
	assert_status 0
	refute_contains "$output" "$P"
	refute_contains "$output" "$T"
	assert_contains "$output" "agentfense /workspace fuse.agentfense rw,"
}

# ---- the relayed terminal --------------------------------------------------------

@test "tty: a command that stops itself holds the terminal only until Ctrl-Z; fg resumes it" {
	term sleep 1 send '\x1a' expect '^run:147$' -- '
		$AF run --changes discard "$P" -- sh -c "kill -STOP \$\$; echo resumed"
		echo "run:$?"
		fg >/dev/null; echo "fg:$?"'
	assert_status 0
	assert_contains "$output" $'run:147\nresumed\nfg:0\n@@ exit 0\n@@ termios same'
}

@test "tty: processes the command leaves behind, in a session of their own or not, end with the run" {
	term -- '
		$AF run --changes discard "$P" -- sh -c "setsid sh -c \"sleep 31.4159\" &
			(sleep 31.4159 </dev/null >/dev/null 2>&1 &); sleep 0.2; echo started"
		echo "run:$?"
		sleep 0.5; pgrep -f "^(sh -c )?sleep 31[.]4159" || echo none-left'
	assert_status 0
	assert_contains "$output" $'started\nrun:0\nnone-left\n@@ exit 0\n@@ termios same'
}

@test "tty: a run with no standard stream on the terminal has no controlling terminal to reach it" {
	term -- '
		$AF run --changes discard "$P" -- python3 -c "
import errno, fcntl, os, termios
try:
    os.open(\"/dev/tty\", os.O_RDWR)
    print(\"dev-tty: OK\")
except OSError as e:
    print(\"dev-tty:\", errno.errorcode[e.errno])
for fd in (0, 1, 2):
    try:
        fcntl.ioctl(fd, termios.TIOCSTI, b\"x\")
        print(\"TIOCSTI:\", fd, \"OK\")
    except OSError as e:
        print(\"TIOCSTI:\", fd, errno.errorcode[e.errno])
print(\"sid-leader:\", os.getsid(0) == os.getpid())
" </dev/null >'"$T"'/out 2>&1
		echo "run:$?"'
	assert_status 0
	assert_contains "$output" $'run:0\n@@ exit 0\n@@ termios same'
	assert_eq "dev-tty: ENXIO
TIOCSTI: 0 EPERM
TIOCSTI: 1 EPERM
TIOCSTI: 2 EPERM
sid-leader: True" "$(cat "$T/out")"
}

# ---- the view's hang detection -------------------------------------------------

# COPY_PY: copy /workspace/big.bin to output/copy with copy_file_range,
# asking for all of it each time, until its end.
COPY_PY='
import os
def copy_all():
    a = os.open("/workspace/big.bin", os.O_RDONLY)
    b = os.open("/workspace/output/copy", os.O_WRONLY | os.O_CREAT, 0o644)
    while os.copy_file_range(a, b, 4 << 30) > 0:
        pass
'

@test "hang: a run ending while a child copies gigabytes with copy_file_range is no hung view" {
	truncate -s 3G "$P/big.bin"
	run --separate-stderr af run --changes discard "$P" -- python3 -c "$COPY_PY"'
import time
if os.fork() == 0:
    copy_all()
    os._exit(0)
time.sleep(0.5)
print("main done")
'
	assert_status 0
	assert_output "main done"
	assert_eq "" "$stderr"
	assert_eq 0 "$(runs_count)"
}

@test "hang: --timeout during a copy of gigabytes ends the run as for any command" {
	truncate -s 3G "$P/big.bin"
	run --separate-stderr af run --changes discard --timeout 1 "$P" -- python3 -c "$COPY_PY"'
copy_all()
'
	assert_status 124
	assert_output ""
	assert_eq "agentfense: command timed out after 1s" "$stderr"
	assert_eq 0 "$(runs_count)"
}

@test "hang: copy_file_range copies a bounded part per call, and cp still copies a whole file" {
	head -c 80M /dev/urandom >"$P/data.bin"
	truncate -s 3G "$P/big.bin"
	run --separate-stderr af run "$P" -- python3 -c '
import os
a = os.open("/workspace/big.bin", os.O_RDONLY)
b = os.open("/workspace/tmp/x", os.O_WRONLY | os.O_CREAT, 0o644)
print("one call:", os.copy_file_range(a, b, 3 << 30) >> 20, "MiB")
os.unlink("/workspace/tmp/x")
os.system("cp /workspace/data.bin /workspace/output/data.bin")
'
	assert_status 0
	assert_output "one call: 32 MiB"
	assert_eq "$(synced_line 1 0 0)" "$stderr"
	cmp "$P/data.bin" "$P/output/data.bin"
}

# ---- the cost of the link checks at sync ---------------------------------------

# many_files DIR N: N empty files in DIR.
many_files() {
	mkdir -p "$1"
	(cd "$1" && seq -f 'f%05g' "$2" | xargs touch)
}

# links_py N TARGET [CHAIN]: Python making N links output/lI -> TARGET
# (an expression of i) in the sandbox, and with CHAIN a link
# output/cI -> lI to each.
links_py() {
	printf 'import os\nos.chdir("/workspace/output")\nfor i in range(%s):\n    os.symlink(%s, "l%%d" %% i)\n' "$1" "$2"
	[ -z "${3:-}" ] || printf '    os.symlink("l%%d" %% i, "c%%d" %% i)\n'
}

# Each of these took the old sync a minute or more: every link looked
# through the whole directory it leads to again.

@test "links: 1000 links to a project directory of 19,000 entries sync in seconds" {
	many_files "$P/big" 19000
	SECONDS=0
	run --separate-stderr af run "$P" -- python3 -c "$(links_py 1000 '"../big"')"
	local took=$SECONDS
	assert_status 0
	assert_eq "$(synced_line 1000 0 0)" "$stderr"
	assert_eq 1000 "$(find "$P/output" -type l | wc -l)"
	[ "$took" -le 10 ] || { echo "sync took ${took}s" >&2; return 1; }
}

@test "links: 1000 links to a large directory holding a hidden file late in it are all held, in seconds" {
	many_files "$P/big" 19000
	mkdir -p "$P/big/zzzz/secrets"
	printf '%s_late\n' "$SECRET_MARK" >"$P/big/zzzz/secrets/k.txt"
	SECONDS=0
	run --separate-stderr af run "$P" -- python3 -c "$(links_py 1000 '"../big"')"
	local took=$SECONDS
	assert_status 0
	assert_eq 1002 "${#stderr_lines[@]}"
	assert_eq "$(held output/l0 "is a symlink to '../big': it leads to 'big/zzzz/secrets', which the policy hides")" "${stderr_lines[0]}"
	assert_eq "$(held output/l999 "is a symlink to '../big': it leads to 'big/zzzz/secrets', which the policy hides")" "${stderr_lines[999]}"
	assert_eq "$(synced_line 0 0 1000)" "${stderr_lines[1000]}"
	assert_eq "$(summary 1000)" "${stderr_lines[1001]}"
	assert_eq "" "$(ls -A "$P/output")"
	[ "$took" -le 10 ] || { echo "sync took ${took}s" >&2; return 1; }
}

@test "links: links to the parts of a large tree, chains through them and one to all of it sync in seconds" {
	local i
	for i in $(seq 0 9); do
		many_files "$P/tree/d$i" 1900
	done
	SECONDS=0
	run --separate-stderr af run "$P" -- python3 -c "$(links_py 2000 '"../tree/d%d" % (i % 10)' chain)
os.symlink('../tree', 'all')"
	local took=$SECONDS
	assert_status 0
	assert_eq "$(synced_line 4001 0 0)" "$stderr"
	assert_eq 4001 "$(find "$P/output" -type l | wc -l)"
	[ "$took" -le 10 ] || { echo "sync took ${took}s" >&2; return 1; }
}
