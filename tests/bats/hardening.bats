#!/usr/bin/env bats
# Hardening of the sandboxed command: the seccomp filter (refused system
# calls fail with EPERM, --seccomp off lifts it with a warning) and the
# command's own session (no controlling terminal to inject into; the
# terminal's Ctrl-C still reaches it through agentfense).

load helper

# sc NAME ARG...: perform raw system calls inside the sandbox and print
# "NAME: OK" or "NAME: ERRNO" for each.  Numbers are per architecture.
SC_PY='
import ctypes, errno, os, platform, sys
NR = {
    "x86_64": dict(keyctl=250, add_key=248, request_key=249, bpf=321,
                   perf_event_open=298, userfaultfd=323, personality=135,
                   init_module=175, kexec_load=246, setns=308, clone3=435,
                   open_by_handle_at=304, syslog=103, acct=163, clone=56),
    "aarch64": dict(keyctl=219, add_key=217, request_key=218, bpf=280,
                    perf_event_open=241, userfaultfd=282, personality=92,
                    init_module=105, kexec_load=104, setns=268, clone3=435,
                    open_by_handle_at=265, syslog=116, acct=89, clone=220),
}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
def call(name, *args):
    r = libc.syscall(NR[name], *[ctypes.c_ulong(a) for a in args])
    if r < 0:
        return errno.errorcode.get(ctypes.get_errno(), "?")
    return "OK"
for spec in sys.argv[1:]:
    name, *args = spec.split(":")
    print("%s: %s" % (spec, call(name, *[int(a, 0) for a in args])))
'

sc() {
	case $(uname -m) in
	x86_64 | aarch64) ;;
	*) skip "no system call numbers for $(uname -m) in this test" ;;
	esac
	af run --changes discard "$@"
}

@test "refused system calls fail with EPERM" {
	run sc "$P" -- python3 -c "$SC_PY" keyctl:0 add_key:0 request_key:0 bpf:0 \
		perf_event_open:0:0:-1:-1:0 userfaultfd:0 init_module:0:0:0 \
		kexec_load:0:0:0:0 setns:0:0 open_by_handle_at:0:0:0 syslog:3 acct:0
	assert_status 0
	assert_output "keyctl:0: EPERM
add_key:0: EPERM
request_key:0: EPERM
bpf:0: EPERM
perf_event_open:0:0:-1:-1:0: EPERM
userfaultfd:0: EPERM
init_module:0:0:0: EPERM
kexec_load:0:0:0:0: EPERM
setns:0:0: EPERM
open_by_handle_at:0:0:0: EPERM
syslog:3: EPERM
acct:0: EPERM"
}

@test "taking a process's fds or writing its memory is refused; debugging one's own child is not" {
	# the child is one the command may trace: only the filter refuses
	cat >"$T/neighbour.py" <<'PY'
import ctypes, errno, os, signal
libc = ctypes.CDLL(None, use_errno=True)
def err(r):
    return "OK" if r >= 0 else errno.errorcode[ctypes.get_errno()]
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
buf = ctypes.create_string_buffer(b"secret!", 8)
child = os.fork()
if child == 0:
    signal.pause()
    os._exit(0)
io = iovec(ctypes.cast(buf, ctypes.c_void_p), 8)
pidfd = os.pidfd_open(child)
print("pidfd_getfd", err(libc.pidfd_getfd(pidfd, 0, 0)))
print("process_vm_writev", err(libc.process_vm_writev(child, ctypes.byref(io), 1, ctypes.byref(io), 1, 0)))
print("process_vm_readv", err(libc.process_vm_readv(child, ctypes.byref(io), 1, ctypes.byref(io), 1, 0)))
print("ptrace", err(libc.ptrace(16, child, 0, 0)))
os.waitpid(child, 0)
print("detach", err(libc.ptrace(17, child, 0, 0)))
os.kill(child, signal.SIGKILL)
os.waitpid(child, 0)
PY
	run --separate-stderr af run --changes discard --ro-bind "$T/neighbour.py:/tmp/n.py" "$P" -- python3 /tmp/n.py
	assert_status 0
	assert_output "pidfd_getfd EPERM
process_vm_writev EPERM
process_vm_readv OK
ptrace OK
detach OK"
}

@test "personality: PER_LINUX and the query only" {
	# 8 is PER_LINUX32, 0x40000 ADDR_NO_RANDOMIZE, 0x400000 READ_IMPLIES_EXEC;
	# the kernel reads 32 bits, so the high half changes nothing
	run sc "$P" -- python3 -c "$SC_PY" personality:0xffffffff personality:0 \
		personality:8 personality:0x40000 personality:0x400000 \
		personality:0x100000000 personality:0x1ffffffff personality:0x100040000
	assert_status 0
	assert_output "personality:0xffffffff: OK
personality:0: OK
personality:8: EPERM
personality:0x40000: EPERM
personality:0x400000: EPERM
personality:0x100000000: OK
personality:0x1ffffffff: OK
personality:0x100040000: EPERM"
}

@test "clone3 is ENOSYS so libc falls back to a checkable clone" {
	run sc "$P" -- python3 -c "$SC_PY" clone3:0:0
	assert_status 0
	assert_output "clone3:0:0: ENOSYS"
	# ordinary process creation still works (fork, threads)
	run inside -- 'python3 -c "import threading, os; t = threading.Thread(target=print, args=(\"thread\",)); t.start(); t.join(); os.wait() if os.fork() else os._exit(0); print(\"fork\")"'
	assert_status 0
	assert_output "thread
fork"
}

@test "no new user namespace inside the sandbox" {
	run --separate-stderr inside -- 'unshare -U true'
	[ "$status" -ne 0 ]
	assert_contains "$stderr" "Operation not permitted"
	run --separate-stderr inside -- 'unshare -Ur true'
	[ "$status" -ne 0 ]
	# clone(CLONE_NEWUSER | SIGCHLD), flags with and without other bits
	run sc "$P" -- python3 -c "$SC_PY" clone:0x10000011 clone:0x10020011
	assert_status 0
	assert_output "clone:0x10000011: EPERM
clone:0x10020011: EPERM"
	# unshare(CLONE_NEWUSER) through libc
	run inside -- 'python3 -c "
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
r = libc.unshare(0x10000000)
print(r, errno.errorcode[ctypes.get_errno()])
"'
	assert_status 0
	assert_output "-1 EPERM"
}

@test "mounting fails, over /workspace too" {
	run --separate-stderr inside -- 'mount -t tmpfs none /tmp'
	[ "$status" -ne 0 ]
	run inside -- 'python3 -c "
import ctypes, errno
libc = ctypes.CDLL(None, use_errno=True)
for target in (b\"/tmp\", b\"/workspace\"):
    r = libc.mount(b\"none\", target, b\"tmpfs\", 0, None)
    print(target.decode(), r, errno.errorcode[ctypes.get_errno()])
r = libc.umount2(b\"/workspace\", 2)
print(\"umount\", r, errno.errorcode[ctypes.get_errno()])
"'
	assert_status 0
	assert_output "/tmp -1 EPERM
/workspace -1 EPERM
umount -1 EPERM"
}

# Make a pty the command's controlling terminal (it leads its own
# session, so it may) and push a character into it with TIOCSTI.
TIOCSTI_PY='
import errno, fcntl, os, termios
m, s = os.openpty()
fcntl.ioctl(s, termios.TIOCSCTTY, 0)
try:
    fcntl.ioctl(s, termios.TIOCSTI, b"x")
    print("TIOCSTI: OK")
except OSError as e:
    print("TIOCSTI: " + errno.errorcode[e.errno])
try:
    fcntl.ioctl(s, 0x541C, b"\x02")  # TIOCLINUX
    print("TIOCLINUX: OK")
except OSError as e:
    print("TIOCLINUX: " + errno.errorcode[e.errno])
'

@test "terminal injection: TIOCSTI and TIOCLINUX are refused" {
	run af run --changes discard "$P" -- python3 -c "$TIOCSTI_PY"
	assert_status 0
	assert_output "TIOCSTI: EPERM
TIOCLINUX: EPERM"
	# without the filter only the kernel's own rules apply (a pty is
	# not a virtual console: TIOCLINUX fails there anyway)
	run --separate-stderr af run --changes discard --seccomp off "$P" -- python3 -c "$TIOCSTI_PY"
	assert_status 0
	refute_contains "${lines[1]}" EPERM
	if [ "$(cat /proc/sys/dev/tty/legacy_tiocsti 2>/dev/null || echo 1)" = 1 ]; then
		assert_eq "TIOCSTI: OK" "${lines[0]}"
	fi
}

@test "the command leads its own session, without a controlling terminal" {
	run inside -- 'ps -o sid=,pid= -p $$ | awk "{ print (\$1 == \$2) }"; exec python3 -c "
import os
print(os.getsid(0) == os.getpid(), os.getpgid(0) == os.getpid())
try:
    os.open(\"/dev/tty\", os.O_RDWR)
    print(\"tty\")
except OSError as e:
    print(e.strerror)
"'
	assert_status 0
	assert_output "1
True True
No such device or address"
}

@test "stdin from a pipe still reaches the command" {
	run bash -c 'printf "piped\n" | AF_TEST_MARK="$1" "$AGENTFENSE" run --changes discard "$2" -- cat' _ "$T" "$P"
	assert_status 0
	assert_output "piped"
}

@test "--seccomp off lifts the filter and says so" {
	run --separate-stderr af run --changes discard --seccomp off "$P" -- sh -c 'unshare -U true && echo unshared'
	assert_status 0
	assert_output "unshared"
	assert_eq "agentfense: warning: running without the seccomp filter (--seccomp off): the command can reach kernel interfaces the sandbox normally refuses" "$stderr"
	run --separate-stderr af run --changes discard --seccomp on "$P" -- true
	assert_status 0
	assert_eq "" "$stderr"
	# limits too: the filter is what keeps the command from mounting its
	# own cgroup writable in namespaces of its own
	run --separate-stderr af run --changes discard --seccomp off --pids 64 "$P" -- true
	assert_status 0
	assert_contains "$stderr" "agentfense: warning: with --seccomp off the command may lift its own --memory, --cpus and --pids limits"
}

@test "--seccomp takes on or off only" {
	run --separate-stderr af run --seccomp maybe "$P" -- true
	assert_error 125 "invalid value 'maybe' for --seccomp"
}

@test "Ctrl-C at the terminal reaches the command's process group" {
	# agentfense in the foreground of a pty: ^C makes the terminal send
	# SIGINT to agentfense, which must forward it, the command being in a
	# session of its own.  sh runs its trap only once its foreground
	# sleep is over: fast only if the whole group got the signal.
	run env AF_TEST_MARK="$T" python3 - "$AGENTFENSE" "$P" <<'PY'
import os, pty, sys, time
af, proj = sys.argv[1], sys.argv[2]
script = 'trap "echo got-int > /workspace/output/int; exit 4" INT; echo ready; sleep 30'
pid, fd = pty.fork()
if pid == 0:
    os.execv(af, [af, "run", proj, "--", "sh", "-c", script])
buf = b""
deadline = time.time() + 20
while b"ready" not in buf and time.time() < deadline:
    try:
        buf += os.read(fd, 1024)
    except OSError:
        break
time.sleep(0.2)
start = time.time()
os.write(fd, b"\x03")
_, st = os.waitpid(pid, 0)
print(os.waitstatus_to_exitcode(st), time.time() - start < 10)
PY
	assert_status 0
	assert_output "4 True"
	[ "$(cat "$P/output/int")" = got-int ]
}

@test "Ctrl-Z stops the command's whole group and agentfense; SIGCONT resumes both" {
	# The command's group has no terminal and its parent outside its
	# session: the kernel would drop a SIGTSTP there.  agentfense must
	# stop the group itself, then stop, as a shell expects of its job.
	local drive="$BATS_TEST_DIRNAME/../tools/ptydrive.py"
	run timeout -k 5 60 env AF_TEST_MARK="$T" python3 "$drive" \
		waitproc sleep send '\x1a' state - T state sleep T \
		signal CONT state - SR state sleep SR \
		kill sleep TERM -- \
		"$AGENTFENSE" run --changes discard "$P" -- sh -c 'sleep 100 & sleep 100'
	assert_status 0
	assert_contains "$output" "@@ exit 143"
}
