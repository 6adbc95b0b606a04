#!/usr/bin/env bats
# service.bats - service sandboxes (sandbox.h "Service mode"): a
# long-lived sandbox whose PID 1 starts processes on request, each in a
# PID namespace of its own, driven through lifecycle.h by
# tests/tools/svcbox.c.  Exact outputs, exit codes and errors; attempts
# of a process against PID 1, its exec init and the other sandbox; and
# nothing left in the process once everything is freed.

load helper

setup() {
	af_setup
	mkdir -p "$T/boxes"
}

# svcbox [OPTION...] MODE: run the tool on fresh projects below $T/boxes.
svcbox() {
	AF_TEST_MARK="$T" "${AF_BUILD:-$(dirname "$AGENTFENSE")}/svcbox" "$@" "$T/boxes"
}

@test "service: many processes per sandbox, output and exit codes exact" {
	run --separate-stderr svcbox -n 2 -k 40 exec
	assert_eq "" "$stderr"
	assert_status 0
	assert_output "box 0: 40 of 40 processes exact
box 1: 40 of 40 processes exact
no-such-command: exit 127, cannot run 'no-such-command': No such file or directory
/workspace/secret.txt: exit 126, cannot run '/workspace/secret.txt': Permission denied
workdir /workspace/nowhere: exit 125, cannot change to working directory '/workspace/nowhere': No such file or directory
workdir /workspace/src: exit 0, pwd /workspace/src

workdir /tmp: exit 0, pwd /tmp

stdin: HELLO STDIN
open files: the caller's limit
spawn in run's sandbox: EINVAL, cannot start a process: not a service sandbox
too long: E2BIG
long arguments: exit 0, 261888
svcbox: exec done, nothing left"
}

@test "service: a killed process takes its whole tree, background jobs end with it" {
	run --separate-stderr svcbox -n 1 kill
	assert_eq "" "$stderr"
	assert_status 0
	assert_output "killed: yes, exit 137, signal 9, stdout started
sleeps left after the kill: 0
background: exit 0, bg
sleeps left after it: 0
SIGTERM (0): exit 3, ready
got TERM
signal after the end: ESRCH
SIGINT to the group (0): exit 130, signal 2
sandbox stopped under it: exit 137, signal 9, killed no
svcbox: kill done, nothing left"
}

@test "service: processes run side by side in one sandbox and in several" {
	run --separate-stderr svcbox -n 2 many
	assert_eq "" "$stderr"
	assert_status 0
	assert_output "16 of 16 concurrent processes exact, side by side
svcbox: many done, nothing left"
}

@test "service: file operations see the sandbox as its processes do, writes sync" {
	run --separate-stderr svcbox -n 1 files
	assert_eq "" "$stderr"
	assert_status 0
	assert_output "read secret.txt: exit 0, secret-0
read .env: exit 1, cannot read '/workspace/.env': No such file or directory
read src: exit 1, cannot read '/workspace/src': Is a directory
write ro/locked.txt: exit 1, cannot write '/workspace/ro/locked.txt': Permission denied
write .env: exit 1, cannot write '/workspace/.env': Permission denied
write src/new.txt: exit 0
read it back: new content
list /workspace: d755:ro d755:src f644:secret.txt
list -r /workspace: d755:ro d755:src f444:ro/locked.txt f600:src/new.txt f644:secret.txt f644:src/lib.c
list secret.txt: cannot list '/workspace/secret.txt': Not a directory
stat src/new.txt: f600:/workspace/src/new.txt
stat .env: cannot stat '/workspace/.env': No such file or directory
relative path: -22 cannot use 'workspace/x' as path in the sandbox: not absolute
project src/new.txt: shorter
project ro/locked.txt: locked
project .env: TOKEN=hidden
project first.txt: (none)
project rounds: (none)
svcbox: files done, nothing left"
	# the synced file, with the mode it was written with
	assert_eq "600" "$(stat -c %a "$T/boxes/p0/src/new.txt")"
}

@test "service: a stopped sandbox resumes on its delta, every round syncs once" {
	run --separate-stderr svcbox -n 1 resume
	assert_eq "" "$stderr"
	assert_status 0
	assert_output "spawn while stopped: ESRCH
round 0: exit 0, one
round 1: exit 0, one
round 2: exit 0, one
rounds: 0 1 2 
start while running: EBUSY
start after finish: EINVAL, cannot start the sandbox again: its changes are synced, kept or discarded already
project src/new.txt: (none)
project ro/locked.txt: locked
project .env: TOKEN=hidden
project first.txt: one
project rounds: 0
1
2
svcbox: resume done, nothing left"
	# synced: no delta left behind
	assert_eq "0" "$(ls "$RUNS" 2>/dev/null | wc -l)"
}

@test "service: a process cannot reach PID 1, its exec init, the control socket or the other sandbox" {
	run --separate-stderr svcbox -n 2 attack
	assert_eq "" "$stderr"
	assert_status 0
	# no /proc file of PID 1 or the exec init was readable (each would
	# print a line), ptrace is refused, the only fds are stdio (3 is
	# ls's own directory), no socket is open anywhere in its reach
	assert_output "against PID 1 and its init: exit 0, exec init: svcbox
ptrace of its init: Operation not permitted
fds: 0 1 2 3
alive
sockets reachable: 0
1
the other sandbox: sleeps seen: 0
alive
the other one's process was killed by us only: yes
svcbox: attack done, nothing left"
}

@test "service: a fork bomb under a pids limit does not keep the next process from running" {
	run --separate-stderr svcbox -n 1 --pids 32 bomb
	assert_eq "" "$stderr"
	assert_status 0
	# a process started while the bomb holds every pid either runs or
	# is refused with EAGAIN and a clear message (cgroup pids limit);
	# after the kill the next one runs in every case
	[[ "${lines[0]}" == "meanwhile: ran" || "${lines[0]}" == "meanwhile: refused clearly" ]]
	assert_eq "bomb: killed, forked until refused
sleeps left after it: 0
svcbox: bomb done, nothing left" "$(printf '%s\n' "${lines[@]:1}")"
}

@test "service: PID 1 is a small process executed anew, however big its caller" {
	run --separate-stderr svcbox -n 1 --ballast 64 pid1
	assert_eq "" "$stderr"
	assert_status 0
	assert_output "PID 1: agentfense --agentfense-service-init
its resident memory: small
svcbox: pid1 done, nothing left"
}

@test "service: with a mount in a system directory or LD_LIBRARY_PATH PID 1 stays a clone, as safe" {
	# the program's libraries could come from such a mount: not
	# executed there by a process that keeps capabilities
	run --separate-stderr svcbox -n 1 --opt-tmpfs --ballast 64 pid1
	assert_eq "" "$stderr"
	assert_status 0
	assert_output "PID 1: agentfense
its resident memory: as big as ours
svcbox: pid1 done, nothing left"
	# nor when the program's libraries came through the environment,
	# which the sandbox may not show
	rm -rf "$T/boxes" && mkdir "$T/boxes"
	LD_LIBRARY_PATH=/nonexistent run --separate-stderr svcbox -n 1 --ballast 64 pid1
	assert_eq "" "$stderr"
	assert_status 0
	assert_output "PID 1: agentfense
its resident memory: as big as ours
svcbox: pid1 done, nothing left"
	rm -rf "$T/boxes" && mkdir "$T/boxes"
	run --separate-stderr svcbox -n 2 --opt-tmpfs attack
	assert_eq "" "$stderr"
	assert_status 0
	assert_output "against PID 1 and its init: exit 0, exec init: svcbox
ptrace of its init: Operation not permitted
fds: 0 1 2 3
alive
sockets reachable: 0
1
the other sandbox: sleeps seen: 0
alive
the other one's process was killed by us only: yes
svcbox: attack done, nothing left"
}
