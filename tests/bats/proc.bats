#!/usr/bin/env bats
# What /proc and sockets give away of the host: the keys of the user's
# keyrings, kernel timers and hardware in /proc (hidden as container
# runtimes hide them), and keys loaded into AF_ALG crypto sockets.

load helper

RAWSYS="$BATS_TEST_DIRNAME/../tools/rawsys.py"

# in_keysession CMD...: CMD in a new session keyring of the test's,
# holding a user key named as an attacker would look for.
in_keysession() {
	# keyctl's "Joined session keyring" to /dev/null, not CMD's stderr
	AF_TEST_MARK="$T" keyctl session - sh -c \
		'exec 2>&3 3>&-; keyctl add user "github-token:alice@corp" hunter2 @s >/dev/null &&
		exec "$@"' sh "$@" 3>&2 2>/dev/null
}

@test "proc: /proc/keys lists no key of the host's session" {
	command -v keyctl >/dev/null || skip "keyctl (keyutils) is not installed"
	# the key is there for any other process of the session
	run in_keysession sh -c 'grep -c github-token /proc/keys'
	assert_output 1
	run in_keysession "$AGENTFENSE" run "$P" -- sh -c 'cat /proc/keys; echo "rc:$?"'
	assert_status 0
	assert_output "rc:0"
}

@test "proc: /proc/keys cannot be read around the mask, nor the keyring asked" {
	command -v keyctl >/dev/null || skip "keyctl (keyutils) is not installed"
	run in_keysession "$AGENTFENSE" run "$P" -- sh -c '
		for f in /proc/self/root/proc/keys /proc/thread-self/root/proc/keys \
			/proc/$$/root/proc/keys; do
			printf "%s:[%s]\n" "$f" "$(cat "$f")"
		done
		cat /proc/1/root/proc/keys 2>/dev/null || echo "pid1: refused"
		keyctl show @s >/dev/null 2>&1 || echo "keyctl: refused"
		grep -l github-token /proc/key-users /proc/*/task/*/stat 2>/dev/null
		echo end'
	assert_status 0
	assert_output "/proc/self/root/proc/keys:[]
/proc/thread-self/root/proc/keys:[]
/proc/2/root/proc/keys:[]
pid1: refused
keyctl: refused
end"
}

@test "proc: the files and directories runtimes mask show nothing; /proc/fs is read-only" {
	run af run "$P" -- sh -c '
		for f in keys timer_list sched_debug kcore latency_stats timer_stats; do
			[ -e /proc/$f ] && echo "$f:$(head -c 100 /proc/$f | wc -c)"
		done
		for d in acpi asound scsi; do
			[ -d /proc/$d ] || continue
			echo "$d:[$(ls -A /proc/$d)]"
			touch /proc/$d/x 2>/dev/null && echo "$d: WRITABLE"
		done
		touch /proc/fs/x 2>/dev/null && echo "fs: WRITABLE" || echo "fs: read-only"'
	assert_status 0
	assert_contains "$output" $'keys:0\ntimer_list:0\n'
	refute_contains "$output" WRITABLE
	# whatever else exists here is as empty
	[[ ! "$output" =~ :[1-9] ]]
	[[ ! "$output" =~ :\[.+\] ]]
	assert_contains "$output" "fs: read-only"
}

@test "proc: the masks cannot be unmounted or mounted over, with or without the filter" {
	local code='
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
for path in (b"/proc/keys", b"/proc/timer_list", b"/proc/acpi"):
    if not os.path.exists(path):
        continue
    r = libc.umount2(path, 2)
    print(path.decode(), "umount:", errno.errorcode[ctypes.get_errno()] if r else "OK")
r = libc.mount(b"proc", b"/tmp", b"proc", 0, None)
print("new proc:", errno.errorcode[ctypes.get_errno()] if r else "OK")
print("keys:", len(open("/proc/keys").read()))
'
	run af run "$P" -- python3 -c "$code"
	assert_status 0
	assert_contains "$output" "/proc/keys umount: EPERM"
	assert_contains "$output" "/proc/timer_list umount: EPERM"
	assert_contains "$output" $'new proc: EPERM\nkeys: 0'
	run af run --seccomp off "$P" -- python3 -c "$code"
	assert_status 0
	assert_contains "$output" "/proc/keys umount: EPERM"
	assert_contains "$output" $'new proc: EPERM\nkeys: 0'
}

@test "proc: AF_ALG sockets are refused: socket, socketpair, a family with high bits set" {
	run af run "$P" -- python3 -c "$(cat "$RAWSYS")"'
import socket
def alg():
    socket.socket(socket.AF_ALG, socket.SOCK_SEQPACKET, 0)
t("socket", alg)
def pair():
    socket.socketpair(socket.AF_ALG, socket.SOCK_SEQPACKET, 0)
t("socketpair", pair)
def raw():
    cerr(libc.syscall(41 if MACHINE == "x86_64" else 198, ctypes.c_long((1 << 32) | 38),
                      socket.SOCK_SEQPACKET, 0))
t("raw", raw)
def unix():
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()
t("unix", unix)'
	assert_status 0
	# EPERM from the filter: a kernel without AF_ALG says EAFNOSUPPORT
	assert_output "socket: EPERM
socketpair: EPERM
raw: EPERM
unix: OK"
}
