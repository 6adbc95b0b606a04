#!/usr/bin/env bats
# agentfense run at a terminal: the command gets a pty of the sandbox's
# own in place of the user's terminal, relayed by agentfense, so job
# control stops a background run that would read it and nothing the
# command does to its terminal outlives the run.  Driven through a pty
# by tests/tools/ptydrive.py, with bash as the user's shell.

load helper
load term_helper

@test "tty: a background run cannot read the line typed for the foreground" {
	# the attack: the command waits on stdin in the background while
	# the user's shell asks for a password
	term expect '^ASK$' send 'hunter2\r' expect '^fg:hunter2$' -- '
		$AF run "$P" -- sh -c "read x; echo \"\$x\" >output/stolen" &
		sleep 1
		echo ASK; read -r line; echo "fg:$line"
		kill %1; wait %1; echo "bg:$?"'
	assert_status 0
	assert_contains "$output" $'\nfg:hunter2\n'
	assert_contains "$output" $'\nbg:143\n@@ exit 0\n@@ termios same'
	[ ! -e "$P/output/stolen" ]
}

@test "tty: a background run cannot read the terminal through /proc/self/fd/0 or /dev/tty" {
	term expect '^ASK$' send 'hunter2\r' expect '^fg:hunter2$' \
		send 'second\r' expect '^fg:second$' -- '
		$AF run "$P" -- sh -c "(read x </proc/self/fd/0; echo \"\$x\" >>output/stolen) &
			read y </dev/tty; echo \"\$y\" >>output/stolen; wait" &
		sleep 1
		echo ASK; read -r line; echo "fg:$line"; read -r line; echo "fg:$line"
		kill %1; wait %1; echo "bg:$?"'
	assert_status 0
	assert_contains "$output" $'\nfg:hunter2\nsecond\nfg:second\n'
	assert_contains "$output" $'\nbg:143\n@@ exit 0\n@@ termios same'
	# killed, the command's readers get an end of file: empty lines at most
	[ "$(tr -d '\n' <"$P/output/stolen")" = "" ]
}

@test "tty: a background run waits for input until fg, then reads what is typed" {
	term expect '^ASK$' send 'first\r' expect '^fg:first$' expect '^FG$' \
		send 'for-the-sandbox\r' expect '^got:for-the-sandbox$' -- '
		$AF run --changes discard "$P" -- sh -c "read x; echo got:\$x" &
		sleep 1
		echo ASK; read -r line; echo "fg:$line"
		echo FG; fg %1; echo "run:$?"'
	assert_status 0
	assert_contains "$output" $'got:for-the-sandbox\nrun:0\n@@ exit 0'
	assert_contains "$output" "@@ termios same"
}

@test "tty: the command holds a pty of its own, not the user's terminal" {
	term -- '
		$AF run --changes discard "$P" -- sh -c "tty; readlink /proc/self/fd/0 /proc/self/fd/2;
			echo /dev/pts/*; test -t 0 && test -t 1 && test -t 2 && echo ALL-TTY"'
	assert_status 0
	assert_contains "$output" $'/dev/pts/0\n/dev/pts/0\n/dev/pts/0\n/dev/pts/0 /dev/pts/ptmx\nALL-TTY\n@@ exit 0'
}

@test "tty: TIOCEXCL, O_NONBLOCK, line settings and discipline set in the sandbox do not outlive the run" {
	# old behaviour: TIOCEXCL on the user's terminal made every later
	# open of /dev/tty fail (sudo, ssh prompts), O_NONBLOCK on the
	# shared file description broke the shell's reads
	term -- '
		before=$(stty -g)
		$AF run --changes discard "$P" -- python3 -c "
import fcntl, os, termios
fcntl.ioctl(0, termios.TIOCEXCL)
fcntl.fcntl(0, fcntl.F_SETFL, fcntl.fcntl(0, fcntl.F_GETFL) | os.O_NONBLOCK)
a = termios.tcgetattr(0); a[3] &= ~(termios.ECHO | termios.ICANON); termios.tcsetattr(0, termios.TCSANOW, a)
try:
    fcntl.ioctl(0, termios.TIOCSETD, b\"\\x11\\0\\0\\0\")
except OSError as e:
    pass
print(\"changed\")"
		echo "run:$?"
		[ "$(stty -g)" = "$before" ] && echo SETTINGS-SAME
		exec 3</dev/tty && echo TTY-OPENS
		python3 -c "
import fcntl, os, struct, termios
print(\"nonblock:\", bool(fcntl.fcntl(0, fcntl.F_GETFL) & os.O_NONBLOCK))
print(\"ldisc:\", struct.unpack(\"i\", fcntl.ioctl(0, termios.TIOCGETD, b\"\\0\" * 4))[0])"'
	assert_status 0
	assert_contains "$output" $'changed\nrun:0\nSETTINGS-SAME\nTTY-OPENS\nnonblock: False\nldisc: 0\n@@ exit 0\n@@ termios same'
}

@test "tty: TIOCSTI and TIOCSCTTY from the sandbox reach no terminal of the user's" {
	term -- '
		$AF run --changes discard "$P" -- python3 -c "
import fcntl, os, termios
for name, req, arg in ((\"sti\", termios.TIOCSTI, b\"x\"), (\"sctty\", termios.TIOCSCTTY, 1)):
    try:
        fcntl.ioctl(0, req, arg)
        print(name, \"ok\")
    except OSError as e:
        print(name, os.strerror(e.errno))
print(\"own:\", os.ttyname(0), os.readlink(\"/proc/self/fd/0\"))"
		echo "run:$?"; read -t 1 -r typed; echo "typed:[$typed]"'
	assert_status 0
	# TIOCSCTTY: the pty is already the command'"'"'s controlling terminal
	assert_contains "$output" $'sti Operation not permitted\nsctty ok\nown: /dev/pts/0 /dev/pts/0\nrun:0\ntyped:[]'
}

@test "tty: foreground run: exit status, output with and without a final newline, window size" {
	term --rows 33 --cols 77 -- '
		$AF run --changes discard "$P" -- sh -c "stty size; printf no-newline"; echo "|run:$?"
		$AF run --changes discard "$P" -- sh -c "echo line; exit 3"; echo "run:$?"'
	assert_status 0
	assert_contains "$output" $'33 77\nno-newline|run:0\nline\nrun:3\n@@ exit 0\n@@ termios same'
}

@test "tty: foreground run: typed input, Ctrl-D, Ctrl-C and a window size change reach the command" {
	term expect '^READY$' send 'abc\r' expect '^got:abc$' send '\x04' expect '^eof$' \
		resize 40x100 expect '^size:40 100$' send '\x03' -- '
		$AF run --changes discard "$P" -- sh -c "
			trap \"echo size:\\\$(stty size)\" WINCH
			echo READY; read x; echo got:\$x
			cat; echo eof
			while :; do sleep 0.05; done"
		echo "run:$?"'
	assert_status 0
	assert_contains "$output" $'run:130\n@@ exit 0\n@@ termios same'
}

@test "tty: Ctrl-Z gives the terminal back in its mode until fg, which resumes the relay" {
	term expect '^READY$' raw send '\x1a' expect '^COOKED$' \
		send 'typed\r' expect '^got:typed$' -- '
		$AF run --changes discard "$P" -- sh -c "echo READY; read x; echo got:\$x"
		echo "stopped:$?"
		stty -a | grep -q " icanon" && echo COOKED
		fg; echo "run:$?"'
	assert_status 0
	assert_contains "$output" $'stopped:147\n'
	assert_contains "$output" $'got:typed\nrun:0\n@@ exit 0\n@@ termios same'
}

@test "tty: stdin that is no terminal is the command's as before; the output still goes through a pty" {
	term -- '
		echo piped | $AF run --changes discard "$P" -- sh -c "test -t 0 || cat; test -t 1 && echo OUT-TTY"
		$AF run --changes discard "$P" -- sh -c "test -t 0 || echo NULL-IN; wc -c" </dev/null
		$AF run --changes discard "$P" -- sh -c "test -t 1 || echo PIPED-OUT; test -t 2 && echo ERR-TTY >&2" | cat'
	assert_status 0
	assert_contains "$output" $'piped\nOUT-TTY\nNULL-IN\n0\n'
	assert_contains "$output" 'PIPED-OUT'
	assert_contains "$output" 'ERR-TTY'
}

@test "tty: large output through the relay arrives whole" {
	term -- '
		$AF run --changes discard "$P" -- sh -c "head -c 4000000 /dev/zero | tr \"\\0\" x | fold -w 1000; echo; echo END"
		echo "run:$?"'
	assert_status 0
	assert_contains "$output" $'\nEND\nrun:0\n@@ exit 0\n@@ termios same'
	# count with tr: bash's own pattern substitution is quadratic on 4 MB
	output=$(printf '%s' "${output%%END*}" | tr -cd x | wc -c) # not the 4 MB on failure
	assert_output 4000000
}

@test "tty: the pids limit reached mid-run is reported at the end, the relay going on" {
	[ "$(id -u)" -ne 0 ] || skip "RLIMIT_NPROC does not apply to root"
	# without a pids cgroup, PID 1 says mid-run that its count saw the
	# limit reached; the relay takes that note and goes on relaying
	term -- '
		$AF run --changes discard --pids 64 -t 30 "$P" -- python3 -c "
import os, time
try:
    while True:
        if os.fork() == 0:
            time.sleep(5)
            os._exit(0)
except BlockingIOError:
    pass
time.sleep(1)
print(\"survived\")
raise SystemExit(3)"
		echo "rc:$?"'
	assert_status 0
	# (a delegated pids cgroup reports the same line, without the
	# fallback's warning before the command's output)
	assert_contains "$output" $'survived\nagentfense: command hit the pids limit (64)\nrc:3\n@@ exit 0'
}
