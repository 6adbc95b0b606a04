#!/usr/bin/env bats
# Escape attempts at the system call level, by an unprivileged command
# inside the sandbox: every route to a hidden file (lookups of all kinds,
# openat2, handles, getdents, /proc, symlink and rename races, io_uring),
# every way to change a read-only one, the FUSE server and PID 1 as
# targets, the network namespace, namespaces and roots, other system
# call ABIs, and exhausting the view.  Each case asserts the exact
# failure; the raw calls are in tests/tools/rawsys.py.

load helper

RAWSYS_PY=$(cat "$BATS_TEST_DIRNAME/../tools/rawsys.py")

setup() {
	af_setup
	LISTENER_PID=
	SHM_DIR=
}

teardown() {
	if [ -n "$LISTENER_PID" ]; then
		kill "$LISTENER_PID" 2>/dev/null
		wait "$LISTENER_PID" 2>/dev/null
	fi
	[ -z "$SHM_DIR" ] || rm -rf "$SHM_DIR"
	af_teardown
}

# py [RUN-OPTION...] -- SCRIPT [ARG...]: python3 with rawsys.py and then
# SCRIPT inside a sandbox over $P (cwd /workspace), changes synced.
py() {
	split_opts "$@"
	af run -e LC_ALL=C "${OPTS[@]}" "$P" -- python3 -c "$RAWSYS_PY
os.chdir('/workspace')
${ARGS[0]}" "${ARGS[@]:1}"
}

need_arch() {
	case $(uname -m) in
	x86_64 | aarch64) ;;
	*) skip "no system call numbers for $(uname -m) in tests/tools/rawsys.py" ;;
	esac
}

@test "a hidden name fails ENOENT on every route, exactly as an absent one" {
	need_arch
	run --separate-stderr py -- '
def statx(p, flags=0):
    buf = ctypes.create_string_buffer(256)
    cerr(libc.statx(AT_FDCWD, os.fsencode(p), flags, 0xfff, buf))
root = os.open("/workspace", os.O_PATH | os.O_DIRECTORY)
ops = [
    ("stat", lambda p: os.stat(p) and None),
    ("lstat", lambda p: os.lstat(p) and None),
    ("statx", statx),
    ("access", lambda p: cerr(libc.access(os.fsencode(p), os.F_OK))),
    ("open O_PATH", lambda p: os.open(p, os.O_PATH)),
    ("open O_PATH|O_NOFOLLOW", lambda p: os.open(p, os.O_PATH | os.O_NOFOLLOW)),
    ("openat2 BENEATH", lambda p: openat2(root, p, os.O_RDONLY, RESOLVE_BENEATH)),
    ("openat2 IN_ROOT dotdot", lambda p: openat2(root, "../../" + p, os.O_RDONLY, RESOLVE_IN_ROOT)),
    ("openat2 IN_ROOT abs", lambda p: openat2(root, "/" + p, os.O_RDONLY, RESOLVE_IN_ROOT)),
    ("openat2 NO_SYMLINKS", lambda p: openat2(AT_FDCWD, p, os.O_RDONLY, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)),
    ("name_to_handle_at", lambda p: name_to_handle(p) and None),
    ("readlink", os.readlink),
    ("getxattr", lambda p: os.getxattr(p, "user.x")),
    ("listxattr", lambda p: os.listxattr(p) and None),
    ("chdir", os.chdir),
    ("opendir", lambda p: os.listdir(p) and None),
    ("utime", os.utime),
    ("chmod", lambda p: os.chmod(p, 0o600)),
    ("truncate", lambda p: os.truncate(p, 0)),
    ("unlink", os.unlink),
    ("rmdir", os.rmdir),
    ("rename away", lambda p: os.rename(p, "output/stolen")),
    ("link away", lambda p: os.link(p, "output/stolen")),
    ("through /proc/self/cwd", lambda p: open("/proc/self/cwd/" + p).read()),
    ("through /proc/self/root", lambda p: open("/proc/self/root/workspace/" + p).read()),
    ("through a dir fd", lambda p: os.open(p, os.O_RDONLY, dir_fd=root)),
]
def mklinks(p, tag):
    os.symlink("/workspace/" + p, "/tmp/abs-" + tag)
    os.symlink("../" + p, "output/rel-" + tag)
    return [("abs symlink in /tmp", "/tmp/abs-" + tag), ("rel symlink in output", "output/rel-" + tag)]
for hidden, absent in [(".env", ".env.absent"), ("secrets/key.txt", "secrets/absent.txt"),
                       ("secrets", "secrets.absent"), ("a/b/c/.env", "a/b/c/.env.absent"),
                       ("certs/server.pem", "certs/absent.pem")]:
    for name, fn in ops:
        outs = []
        for p in (hidden, absent):
            os.chdir("/workspace")
            try:
                fn(p)
                outs.append("OK")
            except OSError as e:
                outs.append(errno.errorcode[e.errno])
        print("%s %s: %s" % (name, hidden, outs[0] if outs[0] == outs[1] else "DIFFERS %s" % outs))
    for (what, lh), (_, la) in zip(mklinks(hidden, "h" + str(len(hidden))), mklinks(absent, "a" + str(len(hidden)))):
        t("%s %s" % (what, hidden), lambda: open(lh).read())
        t("%s %s (absent)" % (what, hidden), lambda: open(la).read())'
	assert_status 0
	refute_contains "$output" "$SECRET_MARK"
	refute_contains "$output" "DIFFERS"
	refute_contains "$output" ": OK"
	# every route, for every hidden path, says ENOENT: 26 calls and 4
	# symlinks for each of the 5 paths
	[ "$(grep -vc ': ENOENT$' <<<"$output")" = 0 ] || { grep -v ': ENOENT$' <<<"$output" >&2; false; }
	[ "$(wc -l <<<"$output")" = $(( 5 * (26 + 4) )) ]
	[ "$(cat "$P/.env")" = "SECRET=${SECRET_MARK}_env" ]
	[ -f "$P/secrets/key.txt" ] && [ ! -e "$P/output/stolen" ]
}

@test "getdents64 names no hidden entry and its offsets have no gaps" {
	need_arch
	run --separate-stderr py -- '
for d in [".", "config", "a", "a/b", "a/b/c", "certs"]:
    ents = getdents(d)
    names = ",".join(sorted(n for n, _ in ents if n not in (".", "..")))
    offs = [o for _, o in ents]
    print("%s: %s %s" % (d, names, offs == list(range(1, len(ents) + 1))))'
	assert_status 0
	assert_output ".: README.md,a,certs,config,docs,link-readme,output,src,tmp True
config: app.json True
a: b,readme.txt True
a/b: c True
a/b/c: code.py True
certs: ca.crt True"
}

@test "a directory's size does not count its hidden entries" {
	# tmpfs, btrfs and XFS size a directory by its entries' names: a
	# hidden one would show as a bigger directory.  The project goes on
	# the tmpfs of /dev/shm where there is one (ext4 would hide the leak).
	local proj=$P
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then
		SHM_DIR=$(mktemp -d /dev/shm/agentfense-test.XXXXXX)
		proj=$SHM_DIR
	fi
	mkdir -p "$proj/output/plain" "$proj/output/hiding" "$proj/a/b/secrets"
	printf 'x\n' >"$proj/output/plain/a"
	printf 'x\n' >"$proj/output/hiding/a"
	printf '%s\n' "$SECRET_MARK" >"$proj/output/hiding/a-very-long-name-for-a-hidden-file.pem"
	printf '%s\n' "$SECRET_MARK" >"$proj/a/b/secrets/k"
	run --separate-stderr af run --changes discard "$proj" -- python3 -c '
import os
os.chdir("/workspace")
for d in ["output/plain", "output/hiding", "a/b", "a", "."]:
    st = os.stat(d)
    print(d, st.st_size, st.st_blocks, st.st_nlink)'
	assert_status 0
	assert_output "output/plain 4096 8 1
output/hiding 4096 8 1
a/b 4096 8 1
a 4096 8 1
. 4096 8 1"
}

@test "a view-level file shows its size, times and type, and nothing of its content" {
	need_arch
	touch -d '2001-02-03 04:05:06' "$P/docs/guide.txt"
	run --separate-stderr py -r '/docs/guide.txt=view@5' -- '
st = os.stat("docs/guide.txt")
print("size", st.st_size, "mtime", int(st.st_mtime), "mode", oct(st.st_mode))
t("open", lambda: os.open("docs/guide.txt", os.O_RDONLY))
t("open O_PATH", lambda: os.open("docs/guide.txt", os.O_PATH) and None)
fd = os.open("docs/guide.txt", os.O_PATH)
t("reopen through /proc", lambda: os.open("/proc/self/fd/%d" % fd, os.O_RDONLY))
t("openat2", lambda: openat2(AT_FDCWD, "docs/guide.txt", os.O_RDONLY, RESOLVE_BENEATH))
t("linkat AT_EMPTY_PATH", lambda: cerr(libc.linkat(fd, b"", AT_FDCWD, b"output/g", 0x1000)))
t("link", lambda: os.link("docs/guide.txt", "output/g"))
t("getxattr", lambda: os.getxattr("docs/guide.txt", "user.x"))
t("exec", lambda: os.execv("/workspace/docs/guide.txt", ["x"]))
t("handle", lambda: name_to_handle("docs/guide.txt") and None)
t("output", lambda: ",".join(os.listdir("output")))'
	assert_status 0
	output=${output//EPERM/EACCES}
	assert_output "size 6 mtime $(date -d '2001-02-03 04:05:06' +%s) mode 0o100000
open: EACCES
open O_PATH: OK
reopen through /proc: EACCES
openat2: EACCES
linkat AT_EMPTY_PATH: EACCES
link: EACCES
getxattr: EACCES
exec: EACCES
handle: OK
output: "
	[ ! -e "$P/output/g" ]
}

@test "a read-only file cannot be changed by path, handle, link or rename" {
	need_arch
	run --separate-stderr py -- '
open("output/a", "w").write("A")
t("truncate", lambda: os.truncate("README.md", 0))
t("open O_TRUNC", lambda: os.open("README.md", os.O_RDONLY | os.O_TRUNC))
t("open O_WRONLY|O_APPEND", lambda: os.open("README.md", os.O_WRONLY | os.O_APPEND))
t("open O_CREAT|O_RDWR", lambda: os.open("README.md", os.O_CREAT | os.O_RDWR, 0o666))
t("openat2 O_RDWR", lambda: openat2(AT_FDCWD, "README.md", os.O_RDWR, RESOLVE_BENEATH))
t("utime", lambda: os.utime("README.md", (0, 0)))
t("utime now", lambda: os.utime("README.md"))
t("chmod", lambda: os.chmod("README.md", 0o666))
t("chown", lambda: os.chown("README.md", os.getuid(), os.getgid()))
t("setxattr", lambda: os.setxattr("README.md", "user.x", b"y"))
t("removexattr", lambda: os.removexattr("README.md", "user.x"))
t("rename over", lambda: os.rename("output/a", "README.md"))
t("rename away", lambda: os.rename("README.md", "output/r"))
t("unlink", lambda: os.unlink("README.md"))
t("symlink over", lambda: os.symlink("output/a", "README.md"))
fd = os.open("README.md", os.O_PATH)
t("fchmod O_PATH", lambda: os.fchmod(fd, 0o666))
t("linkat AT_EMPTY_PATH", lambda: cerr(libc.linkat(fd, b"", AT_FDCWD, b"output/l", 0x1000)))
t("write through the link", lambda: os.write(os.open("output/l", os.O_WRONLY | os.O_APPEND), b"PWNED\n"))
t("link", lambda: os.link("README.md", "output/l2"))
t("truncate the link", lambda: os.truncate("output/l2", 0))
t("read", lambda: open("README.md").read().strip())'
	assert_status 0
	output=$(sed -E 's/: EPERM$/: EACCES/' <<<"$output")
	assert_output "truncate: EACCES
open O_TRUNC: EACCES
open O_WRONLY|O_APPEND: EACCES
open O_CREAT|O_RDWR: EACCES
openat2 O_RDWR: EACCES
utime: EACCES
utime now: EACCES
chmod: EACCES
chown: EACCES
setxattr: EACCES
removexattr: EACCES
rename over: EACCES
rename away: EACCES
unlink: EACCES
symlink over: EEXIST
fchmod O_PATH: EBADF
linkat AT_EMPTY_PATH: EACCES
write through the link: ENOENT
link: EACCES
truncate the link: ENOENT
read: hello agentfense"
	[ "$(cat "$P/README.md")" = "hello agentfense" ]
	[ "$(stat -c '%a %h' "$P/README.md")" = "644 1" ]
	[ ! -e "$P/output/l" ] && [ ! -e "$P/output/l2" ]
}

@test "io_uring is refused; without the filter its opens still meet the view's checks" {
	need_arch
	local script='
t("io_uring_setup", lambda: sys_call("io_uring_setup", 4, ctypes.create_string_buffer(120)))
t("uring open README.md", lambda: uring_openat("README.md", os.O_RDONLY) and None)
t("uring open README.md rw", lambda: uring_openat("README.md", os.O_RDWR))
t("uring open .env", lambda: uring_openat(".env", os.O_RDONLY))
t("uring open secrets/key.txt", lambda: uring_openat("/workspace/secrets/key.txt", os.O_RDONLY))'
	run --separate-stderr py -- "$script"
	assert_status 0
	assert_output "io_uring_setup: EPERM
uring open README.md: EPERM
uring open README.md rw: EPERM
uring open .env: EPERM
uring open secrets/key.txt: EPERM"
	# where the kernel disables io_uring, there is nothing more to show
	[ "$(cat /proc/sys/kernel/io_uring_disabled 2>/dev/null || echo 0)" = 0 ] || return 0
	run --separate-stderr py --seccomp off -- "$script"
	assert_status 0
	assert_output "io_uring_setup: OK
uring open README.md: OK
uring open README.md rw: EACCES
uring open .env: ENOENT
uring open secrets/key.txt: ENOENT"
}

@test "symlink and rename races never reach a hidden file" {
	printf '%s_out_env\n' "$SECRET_MARK" >"$P/output/.env"
	run --separate-stderr py -t 60 -- '
import threading, time
for d in ["output/d", "tmp/d"]:
    os.makedirs(d + "/sub")
os.chdir("output")
open("d/f", "w").write("legit")
os.symlink("../.env", "d/l1")
os.symlink("../../.env", "d/l2")
os.symlink("/workspace/.env", "d/l3")
os.symlink("../../../secrets/key.txt", "d/sub/l4")
stop = time.time() + 2.5
seen, legit, lock = set(), [0], threading.Lock()
places = ["/workspace/output/d", "/workspace/output/e", "/workspace/tmp/d/x", "/workspace/output/d/sub/y"]
def renamer():
    i = 0
    while time.time() < stop:
        a, b = places[i % 4], places[(i + 1) % 4]
        i += 1
        try: os.rename(a, b)
        except OSError: pass
def reader():
    while time.time() < stop:
        for p in places:
            for n in ["l1", "l2", "l3", "sub/l4", "../.env", "../../.env", "f"]:
                try:
                    data = open(p + "/" + n).read()
                    r = "LEAK" if "TOPSECRET" in data else "legit"
                except OSError as e:
                    r = errno.errorcode[e.errno]
                with lock:
                    if r == "legit": legit[0] += 1
                    else: seen.add(r)
            try:
                dfd = os.open(p, os.O_RDONLY | os.O_DIRECTORY)
                try:
                    for n in ["l1", "../.env", "../../secrets/key.txt"]:
                        try:
                            os.close(os.open(n, os.O_RDONLY, dir_fd=dfd))
                            with lock: seen.add("LEAK-openat")
                        except OSError as e:
                            with lock: seen.add(errno.errorcode[e.errno])
                finally:
                    os.close(dfd)
            except OSError:
                pass
ts = [threading.Thread(target=f) for f in [renamer, renamer, reader, reader, reader]]
[x.start() for x in ts]
[x.join() for x in ts]
print("outcomes:", ",".join(sorted(seen)))
print("legit reads:", legit[0] > 0)'
	assert_status 0
	refute_contains "$output" LEAK
	assert_output "outcomes: ENOENT
legit reads: True"
	[ "$(cat "$P/output/.env")" = "${SECRET_MARK}_out_env" ]
}

@test "/proc, /dev and /sys lead to neither the view's backing files nor the FUSE device" {
	need_arch
	run --separate-stderr py -- '
for n in ["root", "cwd", "exe", "fd/3"]:
    t("readlink /proc/1/" + n, lambda: os.readlink("/proc/1/" + n))
for n in ["fd", "map_files", "ns", "root", "cwd"]:
    t("list /proc/1/" + n, lambda: ",".join(os.listdir("/proc/1/" + n)))
for n in ["environ", "mem", "auxv", "syscall", "stack"]:
    t("read /proc/1/" + n, lambda: open("/proc/1/" + n, "rb").read(1) and None)
t("ptrace PID 1", lambda: ptrace(PTRACE_ATTACH, 1))
t("ptrace seize PID 1", lambda: ptrace(PTRACE_SEIZE, 1))
t("process_vm_readv PID 1", lambda: vm_readv(1))
pidfd = sys_call("pidfd_open", 1, 0)
t("pidfd_getfd PID 1 control socket", lambda: libc.syscall(ctypes.c_long(438), pidfd, 3, 0) >= 0 or cerr(-1))
f = open("README.md", "rb")
m = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
mf = [l.split()[0] for l in open("/proc/self/maps") if l.rstrip().endswith("/workspace/README.md")][0]
t("map_files reopen rw", lambda: os.open("/proc/self/map_files/" + mf, os.O_RDWR))
t("/dev/fuse", lambda: os.open("/dev/fuse", os.O_RDWR))
t("/sys/fs/fuse/connections", lambda: os.listdir("/sys/fs/fuse/connections"))
links = []
for n in os.listdir("/proc/self/fd"):
    try: links.append(os.readlink("/proc/self/fd/" + n))
    except OSError: pass
print("fuse fd inherited:", [l for l in links if "fuse" in l])
fuse = [l.split(" - ")[0].split()[4] for l in open("/proc/self/mountinfo") if l.split(" - ")[1].startswith("fuse")]
print("fuse mounts:", fuse)'
	assert_status 0
	assert_output "readlink /proc/1/root: EACCES
readlink /proc/1/cwd: EACCES
readlink /proc/1/exe: EACCES
readlink /proc/1/fd/3: EACCES
list /proc/1/fd: EACCES
list /proc/1/map_files: EACCES
list /proc/1/ns: EACCES
list /proc/1/root: EACCES
list /proc/1/cwd: EACCES
read /proc/1/environ: EACCES
read /proc/1/mem: EACCES
read /proc/1/auxv: EACCES
read /proc/1/syscall: EACCES
read /proc/1/stack: EACCES
ptrace PID 1: EPERM
ptrace seize PID 1: EPERM
process_vm_readv PID 1: EPERM
pidfd_getfd PID 1 control socket: EPERM
map_files reopen rw: EPERM
/dev/fuse: ENOENT
/sys/fs/fuse/connections: ENOENT
fuse fd inherited: []
fuse mounts: ['/workspace']"
}

@test "no new namespace, no other root: setns, unshare, chroot, pivot_root" {
	need_arch
	run --separate-stderr py -- '
fd = os.open("/proc/self/ns/mnt", os.O_RDONLY)
t("setns own mnt ns", lambda: cerr(libc.setns(fd, 0)))
t("setns own user ns", lambda: cerr(libc.setns(os.open("/proc/self/ns/user", os.O_RDONLY), 0)))
for flag, name in [(0x10000000, "USER"), (0x10020000, "USER|NS"), (0x20000, "NS"), (0x40000000, "NET"),
                   (0x4000000, "UTS"), (0x8000000, "IPC"), (0x20000000, "PID"), (0x2000000, "CGROUP"), (0x80, "TIME")]:
    t("unshare " + name, lambda: cerr(libc.unshare(flag)))
t("chroot", lambda: os.chroot("/tmp"))
t("pivot_root", lambda: sys_call("pivot_root", ctypes.c_char_p(b"/tmp"), ctypes.c_char_p(b"/tmp")))
t("mount over /workspace", lambda: cerr(libc.mount(b"none", b"/workspace", b"tmpfs", 0, None)))
t("bind mount", lambda: cerr(libc.mount(b"/tmp", b"/workspace", None, 0x1000, None)))'
	assert_status 0
	assert_output "setns own mnt ns: EPERM
setns own user ns: EPERM
unshare USER: EPERM
unshare USER|NS: EPERM
unshare NS: EPERM
unshare NET: EPERM
unshare UTS: EPERM
unshare IPC: EPERM
unshare PID: EPERM
unshare CGROUP: EPERM
unshare TIME: EPERM
chroot: EPERM
pivot_root: EPERM
mount over /workspace: EPERM
bind mount: EPERM"
	# and with a shell: unshare -Urm fails before any mount is tried
	run --separate-stderr inside -- 'unshare -Urm sh -c "mount -t tmpfs none /workspace && echo MOUNTED"'
	[ "$status" -ne 0 ]
	refute_contains "$output" MOUNTED
	assert_contains "$stderr" "Operation not permitted"
}

@test "the FUSE server outside the PID namespace cannot be found, signalled, traced or read" {
	need_arch
	# exec keeps the shell's pid: $$ is agentfense's, the FUSE server's
	run --separate-stderr bash -c 'exec env AF_TEST_MARK="$1" "$2" run -e LC_ALL=C "$3" -- python3 -c "$4" "$$"' _ \
		"$T" "$AGENTFENSE" "$P" "$RAWSYS_PY
os.chdir('/workspace')"'
import signal
host = int(sys.argv[1])
t("kill 0", lambda: os.kill(host, 0))
t("kill KILL", lambda: os.kill(host, signal.SIGKILL))
t("kill STOP", lambda: os.kill(host, signal.SIGSTOP))
t("kill TERM", lambda: os.kill(host, signal.SIGTERM))
t("tgkill", lambda: sys_call("tgkill", host, host, signal.SIGKILL))
t("ptrace", lambda: ptrace(PTRACE_ATTACH, host))
t("process_vm_readv", lambda: vm_readv(host))
t("pidfd_open", lambda: sys_call("pidfd_open", host, 0))
t("/proc entry", lambda: os.stat("/proc/%d" % host) and None)
t("getpgid", lambda: os.getpgid(host))
t("kill -1", lambda: os.kill(-1, 0))
t("PID 1 ignores SIGSTOP", lambda: os.kill(1, signal.SIGSTOP))
t("PID 1 ignores SIGKILL", lambda: os.kill(1, signal.SIGKILL))
pid_max = min(int(open("/proc/sys/kernel/pid_max").read()), 1 << 16)
mine = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
found = [p for p in list(range(1, pid_max)) + list(range(host - 64, host + 64))
         if p > 0 and libc.kill(p, 0) == 0]
print("signallable pids are the sandbox'"'"'s own:", sorted(set(found)) == mine, len(mine) <= 3)
open("output/alive", "w").write("ok")'
	assert_status 0
	assert_output "kill 0: ESRCH
kill KILL: ESRCH
kill STOP: ESRCH
kill TERM: ESRCH
tgkill: ESRCH
ptrace: ESRCH
process_vm_readv: ESRCH
pidfd_open: ESRCH
/proc entry: ENOENT
getpgid: ESRCH
kill -1: ESRCH
PID 1 ignores SIGSTOP: OK
PID 1 ignores SIGKILL: OK
signallable pids are the sandbox's own: True True"
	# the server lived to sync the change
	[ "$(cat "$P/output/alive")" = ok ]
}

# listen NAME: start a host listener on the abstract Unix socket @NAME
# and on a TCP port of 127.0.0.1, each greeting whoever connects with
# "hello"; PORT is the TCP port.
listen() {
	python3 - "$1" "$T/port" <<'EOF' &
import os, select, socket, sys
u = socket.socket(socket.AF_UNIX)
u.bind(b"\0" + sys.argv[1].encode())
u.listen(8)
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
with open(sys.argv[2] + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
os.rename(sys.argv[2] + ".tmp", sys.argv[2])
while True:
    for l in select.select([u, s], [], [])[0]:
        c, _ = l.accept()
        c.sendall(b"hello")
        c.close()
EOF
	LISTENER_PID=$!
	local i
	for ((i = 0; i < 250; i++)); do
		[ -s "$T/port" ] && break
		sleep 0.02
	done
	PORT=$(cat "$T/port")
}

@test "host listeners, abstract Unix and loopback TCP: refused with --net none, reached with --net host" {
	local name="agentfense-test-$$-$RANDOM"
	listen "$name"
	local script='
import socket
def unix():
    c = socket.socket(socket.AF_UNIX)
    c.connect(b"\0" + sys.argv[1].encode())
    return c.recv(5).decode()
def tcp(host):
    c = socket.create_connection((host, int(sys.argv[2])), timeout=5)
    return c.recv(5).decode()
t("abstract unix", unix)
t("tcp 127.0.0.1", lambda: tcp("127.0.0.1"))
t("tcp localhost", lambda: tcp("localhost"))'
	run --separate-stderr py --changes discard -- "$script" "$name" "$PORT"
	assert_status 0
	assert_output "abstract unix: ECONNREFUSED
tcp 127.0.0.1: ECONNREFUSED
tcp localhost: ECONNREFUSED"
	run --separate-stderr py --changes discard --net host -- "$script" "$name" "$PORT"
	assert_status 0
	assert_output "abstract unix: hello
tcp 127.0.0.1: hello
tcp localhost: hello"
}

@test "other system call ABIs kill the process: x32 and int 0x80" {
	[ "$(uname -m)" = x86_64 ] || skip "the x32 and i386 ABIs exist on x86_64 only"
	# getpid through int 0x80 (i386 number 20), and through the x32 bit;
	# what int 0x80 does on this kernel without any filter decides what
	# the filter must turn it into
	local script='
t("int 0x80", lambda: machine_code(bytes([0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3])))
t("x32", lambda: raw_syscall_child(0x40000000 | NR["getpid"]))
t("native", lambda: raw_syscall_child(NR["getpid"]))'
	local host_int80
	host_int80=$(python3 -c "$RAWSYS_PY
print(machine_code(bytes([0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3])))")
	run --separate-stderr py --changes discard -- "$script"
	assert_status 0
	if [ "$host_int80" = "exit 0" ]; then
		assert_eq "int 0x80: signal SIGSYS" "${lines[0]}"
	else
		# no i386 emulation here (a fault, not a system call)
		assert_eq "int 0x80: $host_int80" "${lines[0]}"
		refute_contains "$host_int80" "exit"
	fi
	assert_eq "x32: signal SIGSYS
native: exit 0" "$(printf '%s\n' "${lines[@]:1}")"
	# without the filter the x32 call reaches the kernel (which may not
	# have the x32 ABI: ENOSYS), proving it is the filter that kills
	run --separate-stderr py --changes discard --seccomp off -- "$script"
	assert_status 0
	[[ "${lines[1]}" =~ ^"x32: "("exit 0"|"errno ENOSYS")$ ]]
	[ "${lines[0]}" = "int 0x80: $host_int80" ]
}

@test "exhausting the view: a huge directory, long paths, loops, many open files; the next run works" {
	python3 - "$P/output/big" <<'EOF'
import os, sys
os.mkdir(sys.argv[1])
for i in range(20000):
    name = "k%05d.pem" % i if i % 10 == 0 else "f%05d" % i
    with open(os.path.join(sys.argv[1], name), "w") as f:
        f.write("TOPSECRET" if i % 10 == 0 else "x")
EOF
	run --separate-stderr py -t 120 -- '
import resource
names = os.listdir("output/big")
print("listed", len(names), sum(n.endswith(".pem") for n in names))
t("path of 5000 bytes", lambda: os.stat("output/" + "/".join(["d" * 99] * 50)))
t("name of 256 bytes", lambda: os.stat("output/" + "n" * 256))
t("component of 100000 bytes", lambda: os.stat("x" * 100000))
os.symlink("loop2", "output/loop1")
os.symlink("loop1", "output/loop2")
t("symlink loop", lambda: open("output/loop1").read())
os.symlink("/workspace/output/chain0", "output/chain41")
for i in range(41):
    os.symlink("chain%d" % (i + 1), "output/chain%d" % i)
t("41 links deep", lambda: open("output/chain0").read())
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
fds = []
def many():
    for i in range(3000):
        fds.append(os.open("output/big/f%05d" % (i * 5 + 1), os.O_RDONLY))
        fds.append(os.open("output/n%d" % i, os.O_CREAT | os.O_RDWR, 0o644))
t("6000 open files", many)
print("opened", len(fds))
for fd in fds:
    os.close(fd)
t("read after", lambda: open("README.md").read().strip())'
	assert_status 0
	assert_output "listed 18000 0
path of 5000 bytes: ENAMETOOLONG
name of 256 bytes: ENAMETOOLONG
component of 100000 bytes: ENAMETOOLONG
symlink loop: ELOOP
41 links deep: ELOOP
6000 open files: OK
opened 6000
read after: hello agentfense"
	run --separate-stderr af run --changes discard "$P" -- sh -c 'ls /workspace/output/big | wc -l; cat /workspace/README.md'
	assert_status 0
	assert_output "18000
hello agentfense"
}
