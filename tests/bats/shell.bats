#!/usr/bin/env bats
# agentfense shell: an interactive shell on a pseudo-terminal of the
# sandbox's own, driven through a pty by tests/tools/ptydrive.py as a
# person at a terminal would: job control, Ctrl-C and Ctrl-Z, window
# size, the user's terminal restored however the session ends, and the
# same view, changes and exit status as `run`.

load helper

DRIVE="$BATS_TEST_DIRNAME/../tools/ptydrive.py"
PROMPT='\[agentfense\] /workspace\$ $'

# drive [DRIVER-OPTION...] STEP... -- SHELL-ARG...: `agentfense shell
# SHELL-ARG...` on a fresh pty, driven by STEPs (see ptydrive.py).  Sets
# $output to the session's output and the "@@" lines.
drive() {
	local steps=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		steps+=("$1")
		shift
	done
	shift
	run timeout -k 5 60 env AF_TEST_MARK="$T" TERM=xterm \
		python3 "$DRIVE" "${steps[@]}" -- "$AGENTFENSE" shell "$@"
}

# assert_session EXIT: the session ended with EXIT and the terminal's
# settings are as they were before.
assert_session() {
	assert_status 0
	assert_contains "$output" "@@ exit $1"$'\n'"@@ termios same"
}

@test "shell: typed commands run and their output comes back" {
	drive expect "$PROMPT" raw send 'echo ab$((1+2))cd\r' expect '^ab3cd$' \
		send 'exit\r' -- "$P"
	assert_session 0
	# the line discipline inside echoed the typing
	assert_contains "$output" 'echo ab$((1+2))cd'
}

@test "shell: the terminal is a pty of the sandbox's own devpts" {
	drive expect "$PROMPT" \
		send 'tty; test -t 0 && test -t 1 && test -t 2 && echo ALL-TTY\r' expect ALL-TTY \
		send 'test -c "$(tty)" && echo pts: $(ls /dev/pts)\r' expect '^pts: ' \
		send 'exit\r' -- "$P"
	assert_session 0
	assert_contains "$output" $'\n/dev/pts/0\n'
	# only the sandbox's own pty: nothing of the host's devpts
	assert_contains "$output" $'\npts: 0 ptmx\n'
}

@test "shell: exit status of the shell is agentfense's" {
	drive expect "$PROMPT" send 'exit 7\r' -- "$P"
	assert_session 7
}

@test "shell: job control: background jobs, jobs, kill %1" {
	drive expect "$PROMPT" send 'sleep 100 &\r' expect '\[1\] [0-9]+' \
		send 'jobs\r' expect 'Running +sleep 100 &' \
		send 'kill %1; wait\r' expect 'Terminated +sleep 100' \
		send 'jobs; echo NO-JOBS\r' expect '^NO-JOBS$' \
		send 'exit\r' -- "$P"
	assert_session 0
	refute_contains "$output" "no job control"
}

@test "shell: Ctrl-Z stops the sandboxed job, not agentfense; fg and Ctrl-C" {
	drive expect "$PROMPT" send 'sleep 100\r' waitproc sleep \
		send '\x1a' expect 'Stopped +sleep 100' running \
		send 'jobs\r' expect 'Stopped +sleep 100' running \
		send 'fg\r' expect 'sleep 100' sleep 0.5 \
		send '\x03' expect "$PROMPT" running \
		send 'jobs; echo AFTER-$((6*7))\r' expect '^AFTER-42$' \
		send 'exit\r' -- "$P"
	assert_session 0
	# Ctrl-C ended sleep (the shell reported nothing left to do)
	refute_contains "$output" "There are stopped jobs"
}

@test "shell: Ctrl-C at the prompt interrupts only the line" {
	drive expect "$PROMPT" send 'echo never' send '\x03' expect "$PROMPT" \
		send 'echo STILL-HERE\r' expect '^STILL-HERE$' send 'exit 3\r' -- "$P"
	assert_session 3
	refute_contains "$output" $'\nnever\n'
}

@test "shell: window size at start and after a resize" {
	drive --rows 30 --cols 100 expect "$PROMPT" send 'stty size\r' expect '^30 100$' \
		resize 40x120 sleep 0.3 send 'stty size\r' expect '^40 120$' \
		send 'exit\r' -- "$P"
	assert_session 0
}

@test "shell: terminal restored after the shell is killed from outside" {
	drive expect "$PROMPT" raw kill bash KILL -- "$P"
	assert_session 137
}

@test "shell: agentfense getting SIGTERM or SIGHUP hangs the shell up and restores the terminal" {
	drive expect "$PROMPT" raw signal TERM -- "$P"
	assert_session 129
	drive expect "$PROMPT" raw signal HUP -- "$P"
	assert_session 129
}

@test "shell: a command that ignores the hang-up is killed soon after" {
	local t0 t1
	t0=$(date +%s%N)
	drive expect READY raw signal TERM -- "$P" -- sh -c 'trap "" HUP TERM; echo READY; sleep 100'
	t1=$(date +%s%N)
	assert_session 137
	[ $(( (t1 - t0) / 1000000 )) -lt 8000 ]
}

@test "shell: timeout ends the session and restores the terminal" {
	drive expect "$PROMPT" raw -- --timeout 1 "$P"
	assert_session 124
	assert_contains "$output" $'\nagentfense: command timed out after 1s\n'
}

@test "shell: a write in a writable area is synced, as with run" {
	drive expect "$PROMPT" send 'echo from-shell > output/s.txt; echo W-$?\r' expect 'W-0' \
		send 'exit\r' -- "$P"
	assert_session 0
	assert_eq "from-shell" "$(cat "$P"/output/s.txt)"
	# messages come after the terminal is back, at the start of a line
	assert_contains "$output" $'\nagentfense: synced changes to \''"$P"$'\': 1 written, 0 deleted, 0 conflicts'
}

@test "shell: --changes discard leaves the project alone" {
	drive expect "$PROMPT" send 'echo x > output/d.txt; echo W-$?\r' expect 'W-0' \
		send 'exit\r' -- --changes discard "$P"
	assert_session 0
	[ ! -e "$P"/output/d.txt ]
}

@test "shell: hidden files stay hidden" {
	drive expect "$PROMPT" send 'cat .env secrets/key.txt; ls -a; echo LISTED\r' expect '^LISTED$' \
		send 'exit\r' -- "$P"
	assert_session 0
	assert_contains "$output" "cat: .env: No such file or directory"
	refute_contains "$output" "$SECRET_MARK"
	refute_contains "$output" "secrets"$'\n'
}

@test "shell: TERM comes from the host, PS1 says where the shell runs, --env overrides it" {
	drive expect "$PROMPT" send 'echo "term=$TERM"\r' expect '^term=xterm$' \
		send 'exit\r' -- "$P"
	assert_session 0
	drive expect '^inside> $' send 'exit\r' -- -e 'PS1=inside> ' "$P"
	assert_session 0
}

@test "shell -- COMMAND runs another program on the terminal" {
	drive --rows 33 --cols 77 expect '^33 77$' -- "$P" -- sh -c 'stty size; test -t 0 && exit 4'
	assert_session 4
}

@test "shell: piped input is typed into the shell, its end ends the shell" {
	run --separate-stderr af shell --changes discard "$P" <<<'echo hi-$((2+3))'
	assert_status 0
	assert_contains "$output" $'hi-5\r\n'
	run af shell --changes discard "$P" <<<'exit 5'
	assert_status 5
	# input ending while commands still run
	run af shell --changes discard "$P" <<<$'sleep 0.3\nsleep 0.2; echo LAST'
	assert_status 0
	assert_contains "$output" $'LAST\r\n'
}

@test "shell: without a terminal, the command still gets one (24x80)" {
	run af shell --changes discard "$P" -- sh -c 'tty; stty size' </dev/null
	assert_status 0
	assert_output $'/dev/pts/0\r\n24 80\r'
	# an empty input ends the shell at once
	run timeout 20 env AF_TEST_MARK="$T" "$AGENTFENSE" shell --changes discard "$P" </dev/null
	assert_status 0
}

@test "shell: bad usage is refused like run's" {
	run --separate-stderr af shell
	assert_error 125 "shell: missing project directory"
	assert_contains "$stderr" "agentfense shell --help"
	run --separate-stderr af shell --changes maybe "$P"
	assert_error 125 "invalid value 'maybe' for --changes"
	run af shell --help
	assert_status 0
	assert_contains "$output" "usage: agentfense shell [OPTIONS] DIR [-- COMMAND [ARG...]]"
	run af help shell
	assert_status 0
	assert_contains "$output" "usage: agentfense shell"
	run af help
	assert_contains "$output" "  shell "
	run -127 af shell --changes discard "$P" -- /nonexistent </dev/null
	assert_status 127
}
