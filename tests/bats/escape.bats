#!/usr/bin/env bats
# Escape attempts by code running inside the sandbox, and by a hostile
# project tree: file descriptor and handle tricks, exotic rename flags,
# xattrs, odd and huge names, deep trees, races, links and symlinks in
# the project, the project changing under the view, and changes that
# would only do harm after sync (set-ID bits, git hooks and config).
# Each case asserts the exact failure and that the host is untouched.

load helper

# The raw calls (t, cerr, rename2, ...) are in tests/tools/rawsys.py.
RAWSYS_PY=$(cat "$BATS_TEST_DIRNAME/../tools/rawsys.py")

# py [RUN-OPTION...] -- SCRIPT [ARG...]: python3 -c SCRIPT inside a
# sandbox over $P (cwd /workspace), changes synced.  SCRIPT gets t(NAME,
# FN), printing "NAME: OK" or the errno name, and the libc helpers.
py() {
	split_opts "$@"
	af run -e LC_ALL=C "${OPTS[@]}" "$P" -- python3 -c "$RAWSYS_PY
os.chdir('/workspace')
${ARGS[0]}" "${ARGS[@]:1}"
}

@test "/proc/self/fd cannot reopen a read-only file for writing" {
	run --separate-stderr py -- '
def reopen(flags, base=os.O_RDONLY):
    fd = os.open("README.md", base)
    return lambda: os.open("/proc/self/fd/%d" % fd, flags)
t("reopen rdwr", reopen(os.O_RDWR))
t("reopen wronly", reopen(os.O_WRONLY))
t("reopen trunc", reopen(os.O_RDONLY | os.O_TRUNC))
t("opath reopen rdwr", reopen(os.O_RDWR, os.O_PATH))
t("opath reopen append", reopen(os.O_WRONLY | os.O_APPEND, os.O_PATH))
t("read", lambda: open("README.md").read().strip())'
	assert_status 0
	assert_output "reopen rdwr: EACCES
reopen wronly: EACCES
reopen trunc: EACCES
opath reopen rdwr: EACCES
opath reopen append: EACCES
read: hello agentfense"
	[ "$(cat "$P/README.md")" = "hello agentfense" ]
}

@test "a read-only file cannot be changed through an fd opened for reading" {
	run --separate-stderr py -- '
fd = os.open("README.md", os.O_RDONLY)
t("fchmod", lambda: os.fchmod(fd, 0o777))
t("fchown", lambda: os.fchown(fd, os.getuid(), os.getgid()))
t("ftruncate", lambda: os.ftruncate(fd, 0))
t("fallocate", lambda: os.posix_fallocate(fd, 0, 100))
t("write", lambda: os.write(fd, b"x"))
t("futimes", lambda: os.utime(fd, (0, 0)))
t("mmap shared", lambda: mmap.mmap(fd, 0, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE))
def private():
    m = mmap.mmap(fd, 0, mmap.MAP_PRIVATE, mmap.PROT_READ | mmap.PROT_WRITE)
    m[0:5] = b"PWNED"
    m.flush()
t("mmap private", private)
t("copy_file_range", lambda: os.copy_file_range(os.open("docs/guide.txt", os.O_RDONLY), os.open("README.md", os.O_WRONLY), 5))
t("read", lambda: open("README.md").read().strip())'
	assert_status 0
	output=${output//EPERM/EACCES}
	assert_output "fchmod: EACCES
fchown: EACCES
ftruncate: EINVAL
fallocate: EBADF
write: EBADF
futimes: EACCES
mmap shared: EACCES
mmap private: OK
copy_file_range: EACCES
read: hello agentfense"
	[ "$(cat "$P/README.md")" = "hello agentfense" ]
	[ "$(stat -c %a "$P/README.md")" = 644 ]
}

@test "O_TMPFILE and linkat cannot place a file at a hidden path" {
	run --separate-stderr py -- '
t("tmpfile in view", lambda: os.open("output", os.O_TMPFILE | os.O_WRONLY, 0o600))
def link_in(dst):
    fd = os.open("/tmp", os.O_TMPFILE | os.O_WRONLY, 0o600)
    os.write(fd, b"PWNED")
    return lambda: os.link("/proc/self/fd/%d" % fd, dst)
t("link tmpfile to .env", link_in(".env"))
t("link tmpfile to output/.env", link_in("output/.env"))
t("link tmpfile to README.md", link_in("README.md"))
t("stat .env", lambda: os.stat(".env") and None)'
	assert_status 0
	output=${output//EOPNOTSUPP/ENOTSUP}
	assert_output "tmpfile in view: ENOTSUP
link tmpfile to .env: EXDEV
link tmpfile to output/.env: EXDEV
link tmpfile to README.md: EEXIST
stat .env: ENOENT"
	[ "$(cat "$P/.env")" = "SECRET=${SECRET_MARK}_env" ]
	[ ! -e "$P/output/.env" ]
}

@test "renameat2 flags: exchange and whiteout cannot swap or hide protected entries" {
	printf '%s_out\n' "$SECRET_MARK" >"$P/output/.env"
	run --separate-stderr py -- '
open("output/a", "w").write("A")
RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4
t("exchange with read-only", lambda: rename2("output/a", "README.md", RENAME_EXCHANGE))
t("exchange with hidden", lambda: rename2("output/a", "output/.env", RENAME_EXCHANGE))
t("exchange with read-only dir", lambda: rename2("tmp", "docs", RENAME_EXCHANGE))
t("whiteout over read-only", lambda: rename2("output/a", "docs/guide.txt", RENAME_WHITEOUT))
t("whiteout", lambda: rename2("output/a", "output/b", RENAME_WHITEOUT))
t("noreplace onto hidden", lambda: rename2("output/a", "output/.env", RENAME_NOREPLACE))
t("ls output", lambda: ",".join(sorted(os.listdir("output"))))'
	assert_status 0
	output=$(sed -E 's/: (EPERM|EINVAL)$/: EACCES/' <<<"$output")
	assert_output "exchange with read-only: EACCES
exchange with hidden: ENOENT
exchange with read-only dir: EACCES
whiteout over read-only: EACCES
whiteout: EACCES
noreplace onto hidden: EACCES
ls output: a"
	[ "$(cat "$P/README.md")" = "hello agentfense" ]
	[ "$(cat "$P/output/.env")" = "${SECRET_MARK}_out" ]
	[ "$(cat "$P/docs/guide.txt")" = "guide" ]
	[ "$(cat "$P/output/a")" = A ]
}

@test "open_by_handle_at cannot reach files by handle" {
	run --separate-stderr py -- '
class FH(ctypes.Structure):
    _fields_ = [("bytes", ctypes.c_uint), ("type", ctypes.c_int), ("h", ctypes.c_ubyte * 128)]
fh = FH(); fh.bytes = 128
mid = ctypes.c_int()
try:
    cerr(libc.name_to_handle_at(AT_FDCWD, b"docs/guide.txt", ctypes.byref(fh), ctypes.byref(mid), 0))
except OSError:
    pass
root = os.open("/workspace", os.O_RDONLY)
t("open_by_handle_at", lambda: cerr(libc.open_by_handle_at(root, ctypes.byref(fh), 0)))
fh.bytes = 8; fh.type = 1
t("forged handle", lambda: cerr(libc.open_by_handle_at(root, ctypes.byref(fh), 0)))'
	assert_status 0
	assert_output "open_by_handle_at: EPERM
forged handle: EPERM"
}

@test "xattrs: only a writable entry takes them, a view-level file's never show" {
	setfattr -n user.af -v "${SECRET_MARK}_xattr" "$P/docs/guide.txt" 2>/dev/null ||
		skip "no user xattrs on the test filesystem"
	run --separate-stderr py -r '/docs/guide.txt=view@5' -- '
open("output/a", "w").write("A")
for p in ["README.md", "docs", "output", "docs/guide.txt", "output/a"]:
    for n in ["user.x", "trusted.overlay.opaque", "trusted.overlay.whiteout", "security.capability"]:
        t("set %s %s" % (p, n), lambda: os.setxattr(p, n, b"y") or "SET")
for p in ["docs/guide.txt", ".env", "secrets/key.txt"]:
    t("get %s" % p, lambda: os.getxattr(p, "user.af").decode())
    t("list %s" % p, lambda: ",".join(os.listxattr(p)))'
	assert_status 0
	refute_contains "$output" "$SECRET_MARK"
	# only user.x on the writable file may succeed (or be unsupported)
	[[ "$(grep -c ': SET$' <<<"$output")" -le 1 ]]
	grep -Eqx 'set output/a user.x: (SET|ENOTSUP|EOPNOTSUPP)' <<<"$output"
	output=$(grep -v '^set output/a user.x' <<<"$output" | sed -E 's/: (EPERM|EINVAL|ENOTSUP)$/: EACCES/')
	assert_output "$(printf '%s\n' 'set README.md user.x: EACCES' 'set README.md trusted.overlay.opaque: EACCES' \
		'set README.md trusted.overlay.whiteout: EACCES' 'set README.md security.capability: EACCES' \
		'set docs user.x: EACCES' 'set docs trusted.overlay.opaque: EACCES' \
		'set docs trusted.overlay.whiteout: EACCES' 'set docs security.capability: EACCES' \
		'set output user.x: EACCES' 'set output trusted.overlay.opaque: EACCES' \
		'set output trusted.overlay.whiteout: EACCES' 'set output security.capability: EACCES' \
		'set docs/guide.txt user.x: EACCES' 'set docs/guide.txt trusted.overlay.opaque: EACCES' \
		'set docs/guide.txt trusted.overlay.whiteout: EACCES' 'set docs/guide.txt security.capability: EACCES' \
		'set output/a trusted.overlay.opaque: EACCES' \
		'set output/a trusted.overlay.whiteout: EACCES' 'set output/a security.capability: EACCES' \
		'get docs/guide.txt: EACCES' 'list docs/guide.txt: ' \
		'get .env: ENOENT' 'list .env: ENOENT' 'get secrets/key.txt: ENOENT' 'list secrets/key.txt: ENOENT')"
	[ -z "$(getfattr -d -m '^(trusted|security)' "$P/output/a" 2>/dev/null)" ]
	[ "$(getfattr --only-values -n user.af "$P/docs/guide.txt")" = "${SECRET_MARK}_xattr" ]
}

@test "no device node, whiteout or socket reaches the project" {
	run --separate-stderr py -- '
t("mknod whiteout", lambda: os.mknod("output/wh", 0o20000 | 0o600, os.makedev(0, 0)))
t("mknod null", lambda: os.mknod("output/null", 0o20000 | 0o666, os.makedev(1, 3)))
t("mknod block", lambda: os.mknod("output/blk", 0o60000 | 0o600, os.makedev(7, 0)))
t("mknod socket", lambda: os.mknod("output/sock", 0o140000 | 0o600))
t("mkfifo", lambda: os.mkfifo("output/fifo", 0o640))
t("ls", lambda: ",".join(sorted(os.listdir("output"))))'
	assert_status 0
	assert_output "mknod whiteout: EPERM
mknod null: EPERM
mknod block: EPERM
mknod socket: OK
mkfifo: OK
ls: fifo,sock"
	assert_contains "$stderr" "not syncing 'output/sock': devices and sockets are not copied"
	[ -p "$P/output/fifo" ]
	[ "$(stat -c %a "$P/output/fifo")" = 640 ]
	[ -z "$(find "$P" -type c -o -type b -o -type s)" ]
}

@test "odd and huge names: handled, refused or synced faithfully, never crash the view" {
	printf 'odd\n' >"$P/docs/"$'bad\xff\nname'
	run --separate-stderr py -- '
def mk(n):
    return lambda: open("output/" + n, "w").write(n[:20])
t("name 255", mk("x" * 255))
t("name 256", lambda: os.open("output/" + "y" * 256, os.O_CREAT | os.O_WRONLY))
t("name 4000", lambda: os.open("output/" + "z" * 4000, os.O_CREAT | os.O_WRONLY))
t("newline", mk("a\nb"))
t("backslash", mk("a" + chr(92) + "nb"))
t("tab and quote", mk("q\t\"x"))
t("sync temp name", mk(".agentfense-AAAAAAAAAA"))
t("dot dot", lambda: open("output/../.env", "w"))
t("dot", lambda: os.stat("output/.") and None)
t("dots", mk("..."))
t("read odd project name", lambda: repr(open(os.fsencode("docs/bad\udcff\nname"), "rb").read()))
t("lookup .. of root", lambda: ",".join(sorted(os.listdir("/workspace/.."))) and None)'
	assert_status 0
	assert_output "name 255: OK
name 256: ENAMETOOLONG
name 4000: ENAMETOOLONG
newline: OK
backslash: OK
tab and quote: OK
sync temp name: OK
dot dot: EACCES
dot: OK
dots: OK
read odd project name: b'odd\\n'
lookup .. of root: OK"
	[ "$(cat "$P/output/$(printf 'x%.0s' $(seq 255))")" = xxxxxxxxxxxxxxxxxxxx ]
	[ "$(cat "$P/output/a"$'\n'"b")" = $'a\nb' ]
	[ "$(cat "$P/output/a\\nb")" = 'a\nb' ]
	[ "$(cat "$P/output/q"$'\t'"\"x")" = $'q\t"x' ]
	[ "$(cat "$P/output/.agentfense-AAAAAAAAAA")" = .agentfense-AAAAAAAA ]
	[ "$(cat "$P/output/...")" = ... ]
	[ "$(find "$P/output" -type f -printf x | wc -c)" = 6 ]
	[ "$(cat "$P/.env")" = "SECRET=${SECRET_MARK}_env" ]
}

@test "a deep tree beyond PATH_MAX is created, synced and removed" {
	run --separate-stderr py -- '
n = "d" * 200
def deep():
    fd = os.open("output", os.O_RDONLY)
    for i in range(40):
        os.mkdir(n, dir_fd=fd)
        nfd = os.open(n, os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    os.write(os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), b"leaf\n")
t("deep", deep)
t("find", lambda: str(os.popen("find output -name leaf | wc -l").read().strip()))'
	assert_status 0
	assert_output "deep: OK
find: 1"
	[ "$(find "$P/output" -name leaf -execdir cat {} +)" = leaf ]
	[ "$(find "$P/output" -type d | wc -l)" = 41 ]
}

@test "concurrent renames, creates, links and deletes do not crash or wedge the view" {
	run --separate-stderr py -t 60 -- '
import random, threading, time
os.chdir("output")
for d in ["d1", "d2", "d3"]:
    os.makedirs(d + "/sub")
    open(d + "/sub/f", "w").write("x")
stop = time.time() + 2.5
def renamer():
    while time.time() < stop:
        a, b = random.sample(["d1", "d2", "d3", "d4"], 2)
        for x, y in [(a, b), (a + "/sub/f", b + "/sub/g"), (b + "/sub/g", a + "/sub/f")]:
            try: os.rename(x, y)
            except OSError: pass
def walker():
    while time.time() < stop:
        for root, ds, fs in os.walk("."):
            for f in fs:
                try: open(os.path.join(root, f)).read()
                except OSError: pass
def creator():
    i = 0
    while time.time() < stop:
        i += 1
        n = random.choice(["d1", "d2", "d3", "d4", "."]) + "/c%d" % (i % 30)
        try:
            if i % 3 == 0: os.mkdir(n)
            elif i % 3 == 1: open(n, "w").write("y")
            elif os.path.isdir(n): os.rmdir(n)
            else: os.unlink(n)
        except OSError: pass
def linker():
    i = 0
    while time.time() < stop:
        i += 1
        for fn in [lambda: os.link("d1/sub/f", "l%d" % (i % 10)), lambda: os.unlink("l%d" % ((i + 3) % 10))]:
            try: fn()
            except OSError: pass
ts = [threading.Thread(target=f) for f in [renamer, renamer, walker, walker, creator, creator, linker]]
[x.start() for x in ts]
[x.join() for x in ts]
os.chdir("/workspace")
t("read", lambda: open("README.md").read().strip())
t("create", lambda: open("output/after", "w").write("ok") and None)
t("secret", lambda: open(".env").read())'
	assert_status 0
	assert_output "read: hello agentfense
create: OK
secret: ENOENT"
	assert_eq "" "$(without_synced 0)"
	[ "$(cat "$P/output/after")" = ok ]
	[ "$(cat "$P/.env")" = "SECRET=${SECRET_MARK}_env" ]
}

@test "thousands of new files do not exhaust the view's descriptors" {
	# a low descriptor limit for agentfense stands for a big tree (a
	# node_modules) on a normal one: the view must not need an open
	# descriptor per file the sandbox created or touched
	run --separate-stderr bash -c 'ulimit -n 512 && "$@"' _ \
		env AF_TEST_MARK="$T" "$AGENTFENSE" run -e LC_ALL=C "$P" -- python3 -c "$RAWSYS_PY
os.chdir('/workspace')"'
os.chdir("output")
open("f", "w").write("x")
bad = None
for i in range(1200):
    try:
        if i % 2:
            os.link("f", "l%d" % i)
        else:
            open("n%d" % i, "w").write("n")
    except OSError as e:
        bad = (i, errno.errorcode[e.errno])
        break
print("first failure:", bad)
t("read", lambda: open("/workspace/README.md").read().strip())'
	assert_status 0
	assert_output "first failure: None
read: hello agentfense"
	[ "$(find "$P/output" -type f | wc -l)" = 1201 ]
}

@test "chmod 0 of the workspace root cannot stop the changes from syncing" {
	local mode
	mode=$(stat -c %a "$P")
	run --separate-stderr af run -e LC_ALL=C -p development "$P" -- sh -c 'echo new >/workspace/newfile; chmod 0 /workspace; echo "chmod=$?"; ls /workspace/newfile'
	assert_status 0
	assert_output "chmod=1
/workspace/newfile"
	assert_contains "$stderr" "chmod: changing permissions of '/workspace': Operation not permitted"
	[ "$(stat -c %a "$P")" = "$mode" ]
	[ "$(cat "$P/newfile")" = new ]
	[ "$(stat -c %a "$P")" != 0 ]
	[ "$(runs_count)" = 0 ]
}

@test "a hard link in the project to a hidden file: writing through it never changes the hidden file" {
	ln "$P/.env" "$P/output/h"
	ln "$P/secrets/key.txt" "$P/tmp/k"
	run --separate-stderr af run -e LC_ALL=C "$P" -- sh -c 'echo PWNED >>/workspace/output/h; echo PWNED >/workspace/tmp/k; rm /workspace/tmp/k'
	assert_status 0
	[ "$(cat "$P/.env")" = "SECRET=${SECRET_MARK}_env" ]
	[ "$(cat "$P/secrets/key.txt")" = "${SECRET_MARK}_root_secrets" ]
	[ "$(tail -n 1 "$P/output/h")" = PWNED ]
	[ "$(stat -c %h "$P/.env")" = 1 ]
	[ ! -e "$P/tmp/k" ]
}

@test "project symlinks pointing outside: writes land inside the sandbox, sync replaces the link, never follows it" {
	mkdir "$T/outside"
	printf 'orig\n' >"$T/outside/victim"
	ln -s "$T/outside" "$P/output/dirlink"
	ln -s "$T/outside/victim" "$P/output/filelink"
	ln -s /tmp/af-escape-victim-$$ "$P/output/tmplink"
	ln -s loop "$P/output/loop"
	run --separate-stderr af run -e LC_ALL=C "$P" -- sh -c '
cd /workspace/output
echo PWNED >filelink; echo "w1=$?"
echo PWNED >dirlink/victim; echo "w2=$?"
echo PWNED >tmplink; echo "w3=$?"
cat loop; echo "loop=$?"
rm dirlink && mkdir dirlink && echo PWNED >dirlink/victim; echo "w4=$?"
rm filelink && echo mine >filelink; echo "w5=$?"'
	assert_status 0
	assert_output "w1=2
w2=2
w3=0
loop=1
w4=0
w5=0"
	[ "$(cat "$T/outside/victim")" = orig ]
	[ "$(ls "$T/outside")" = victim ]
	[ ! -e /tmp/af-escape-victim-$$ ]
	[ -d "$P/output/dirlink" ] && [ ! -L "$P/output/dirlink" ]
	[ "$(cat "$P/output/dirlink/victim")" = PWNED ]
	[ ! -L "$P/output/filelink" ]
	[ "$(cat "$P/output/filelink")" = mine ]
	[ "$(readlink "$P/output/tmplink")" = /tmp/af-escape-victim-$$ ]
}

@test "the project changing under the view: swapped-in symlinks are never followed on the host" {
	printf '%s_host\n' "$SECRET_MARK" >"$T/hostsecret"
	mkdir "$T/hostdir"
	printf '%s_hostdir\n' "$SECRET_MARK" >"$T/hostdir/guide.txt"
	mkfifo "$T/go"
	# a read-write open does not block; the sandbox reads "go" from it
	local go
	exec {go}<>"$T/go"
	bg_af "$T/out" run -e LC_ALL=C "$P" -- sh -c '
cd /workspace
cat docs/guide.txt src/main.c; ls src
echo ready
read line
cat docs/guide.txt; cat src/main.c; cat src/lib/util.c; ls src/ src/lib
cat a/readme.txt
echo done' <"$T/go"
	wait_for_line "$T/out" ready
	# a file becomes a symlink to a host secret; a directory the view
	# already knows and one it does not yet know become symlinks to a
	# host directory
	ln -sf "$T/hostsecret" "$P/docs/guide.txt"
	mv "$P/src" "$T/src.old" && ln -s "$T/hostdir" "$P/src"
	mv "$P/a" "$T/a.old" && ln -s "$T/hostdir" "$P/a"
	echo go >&"$go"
	exec {go}>&-
	wait_for_line "$T/out" done
	wait "$BG_PID"
	run cat "$T/out"
	refute_contains "$output" "$SECRET_MARK"
	[ "$(cat "$T/hostdir/guide.txt")" = "${SECRET_MARK}_hostdir" ]
}

@test "a directory cannot be renamed or moved into a hidden path" {
	mkdir "$P/.git"
	run --separate-stderr py -p development -- '
os.makedirs("output/g/hooks")
open("output/g/hooks/pre-commit", "w").write("#!/bin/sh\n")
open("output/g/config", "w").write("[core]\n")
os.makedirs("output/s")
t("mv to .git", lambda: os.rename("output/g", ".git"))
t("mv to a/.git", lambda: os.rename("output/g", "a/.git"))
t("mv to secrets", lambda: os.rename("output/s", "output/secrets"))
t("mv to x.pem", lambda: os.rename("output/s", "docs/x.pem"))
t("mkdir output/.git", lambda: os.mkdir("output/.git"))
t("gitdir file", lambda: open("output/.git", "w").write("gitdir: g\n"))
t("mv hooks into .git", lambda: os.rename("output/g/hooks", ".git/hooks"))
t("mkdir .git/hooks", lambda: os.mkdir(".git/hooks"))
t("ls .git", lambda: ",".join(sorted(os.listdir(".git"))))'
	assert_status 0
	assert_output "mv to .git: EACCES
mv to a/.git: EACCES
mv to secrets: EACCES
mv to x.pem: EACCES
mkdir output/.git: EACCES
gitdir file: EACCES
mv hooks into .git: EACCES
mkdir .git/hooks: EACCES
ls .git: "
	[ ! -e "$P/.git/hooks" ] && [ ! -e "$P/.git/config" ]
	[ ! -e "$P/a/.git" ] && [ ! -e "$P/output/secrets" ] && [ ! -e "$P/docs/x.pem" ]
	[ -f "$P/output/g/hooks/pre-commit" ] && [ ! -e "$P/output/.git" ]
}

@test "mkdir over a directory holding hidden entries neither empties it nor syncs a deletion" {
	mkdir -p "$P/output/conf"
	printf '%s\n' "$SECRET_MARK" >"$P/output/conf/db.pem"
	printf 'visible\n' >"$P/output/conf/app.json"
	run af run -e LC_ALL=C "$P" -- sh -c 'cd /workspace/output; rm -rf conf; echo "rm=$?"; mkdir conf; echo "mkdir=$?"; ls -A conf'
	assert_status 0
	assert_output "rm: cannot remove 'conf': Directory not empty
rm=1
mkdir: cannot create directory 'conf': File exists
mkdir=1
$(synced_line 0 1 0)"
	[ "$(cat "$P/output/conf/db.pem")" = "$SECRET_MARK" ]
	[ ! -e "$P/output/conf/app.json" ]
}

@test "set-ID bits set inside the sandbox never reach the project" {
	run --separate-stderr py -- '
open("output/x", "w").write("#!/bin/sh\n")
os.mkdir("output/d")
t("chmod setuid", lambda: os.chmod("output/x", 0o6755))
t("chmod setgid dir", lambda: os.chmod("output/d", 0o2775))'
	assert_status 0
	[ "$(stat -c %a "$P/output/x")" = 755 ]
	[ "$(( 0$(stat -c %a "$P/output/d") & 04000 ))" = 0 ]
}

# Git runs code from hooks and from config; the presets hide them, and a
# link or indirection file must not bring them back after sync.

@test "git: a symlink cannot stand in for a hidden .git/hooks directory" {
	mkdir -p "$P/.git" "$P/a/.git"
	printf 'ref: refs/heads/main\n' >"$P/.git/HEAD"
	run --separate-stderr py -p development -- '
os.makedirs("output/h")
open("output/h/pre-commit", "w").write("#!/bin/sh\necho PWNED\n")
t("symlink .git/hooks", lambda: os.symlink("../output/h", ".git/hooks"))
t("symlink a/.git/hooks", lambda: os.symlink("../../output/h", "a/.git/hooks"))
t("symlink .git/config", lambda: os.symlink("../output/h/pre-commit", ".git/config"))'
	assert_status 0
	output=${output//EPERM/EACCES}
	assert_output "symlink .git/hooks: EACCES
symlink a/.git/hooks: EACCES
symlink .git/config: EACCES"
	[ ! -L "$P/.git/hooks" ] && [ ! -e "$P/.git/hooks" ]
	[ ! -L "$P/a/.git/hooks" ] && [ ! -L "$P/.git/config" ]
}

@test "git: .git/commondir cannot redirect git to a config the sandbox wrote" {
	mkdir -p "$P/.git/hooks" "$P/.git/objects" "$P/.git/refs"
	printf 'ref: refs/heads/main\n' >"$P/.git/HEAD"
	printf '[core]\n\trepositoryformatversion = 0\n' >"$P/.git/config"
	run --separate-stderr py -p development -- '
os.makedirs("output/fake/hooks")
open("output/fake/config", "w").write("[core]\n\tfsmonitor = echo PWNED\n")
t("commondir", lambda: open(".git/commondir", "w").write("../output/fake\n") and None)
t("config.worktree", lambda: open(".git/config.worktree", "w").write("[core]\n") and None)'
	assert_status 0
	output=${output//EPERM/EACCES}
	assert_output "commondir: EACCES
config.worktree: EACCES"
	[ ! -e "$P/.git/commondir" ] && [ ! -e "$P/.git/config.worktree" ]
}
