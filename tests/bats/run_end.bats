#!/usr/bin/env bats
# run_end.bats - how a run ends and what it says about it: the timeout's
# SIGTERM and grace, changes kept for review when the command did not
# end by itself, the summary of what was synced, -q, -v and --dry-run.

load helper
load term_helper

# The one run directory, as the review line names it.
review_path() {
	sed -n "s/^agentfense: .*: changes kept in '\\(.*\\)' for review, not synced .*\$/\\1/p" \
		<<<"$stderr"
}

# ms_since T0: milliseconds since now_ms printed T0.
now_ms() {
	date +%s%3N
}

@test "--timeout: SIGTERM to the command's group first; what it leaves is kept for review" {
	local t0 t1 d
	t0=$(now_ms)
	run --separate-stderr af run --timeout 0.5 "$P" -- sh -c \
		'trap "rm output/half; echo cleaned >output/clean; exit 0" TERM
		 echo partial >output/half; sleep 30 & wait'
	t1=$(now_ms)
	assert_status 124
	assert_output ""
	[ $((t1 - t0)) -lt 5000 ]
	d=$(review_path)
	assert_eq "agentfense: command timed out after 0.5s
agentfense: the command timed out: changes kept in '$d' for review, not synced ('--changes sync' syncs them even then)" "$stderr"
	[ "$(runs_count)" = 1 ]
	assert_eq "$RUNS/$(ls "$RUNS")" "$d"
	# the trap ran: its cleanup is in the delta, the project untouched
	assert_eq cleaned "$(cat "$d/upper/output/clean")"
	[ ! -e "$d/upper/output/half" ]
	[ ! -e "$P/output/half" ] && [ ! -e "$P/output/clean" ]
}

@test "--timeout: background jobs of the command's group get SIGTERM too" {
	run --separate-stderr af run --changes sync --timeout 0.5 "$P" -- sh -c \
		'sh -c "trap \"echo bg >output/bg; exit 0\" TERM; sleep 30 & wait" &
		 trap "wait; exit 0" TERM; sleep 30 & wait'
	assert_status 124
	assert_eq bg "$(cat "$P/output/bg")"
}

@test "--timeout: a command that ignores SIGTERM is killed --kill-after later" {
	local t0 t1
	t0=$(now_ms)
	run --separate-stderr af run --changes discard -t 0.3 --kill-after 1.5 "$P" -- \
		sh -c 'trap "" TERM INT HUP; echo started; sleep 30'
	t1=$(now_ms)
	assert_status 124
	assert_output started
	assert_eq "agentfense: command timed out after 0.3s" "$stderr"
	# 0.3 s, then 1.5 s of grace, not less and not much more
	[ $((t1 - t0)) -ge 1800 ] && [ $((t1 - t0)) -lt 5000 ]
	assert_eq 0 "$(runs_count)"
}

@test "--timeout: the default grace is 10 s; --kill-after 0 kills at once" {
	local t0 t1
	t0=$(now_ms)
	run --separate-stderr af run --changes discard -t 0.3 "$P" -- \
		sh -c 'trap "" TERM; sleep 30'
	t1=$(now_ms)
	assert_status 124
	[ $((t1 - t0)) -ge 10300 ] && [ $((t1 - t0)) -lt 15000 ]
	# no grace: not even a trap that would run at once gets its turn
	t0=$(now_ms)
	run --separate-stderr af run -t 0.3 --kill-after 0 "$P" -- \
		sh -c 'trap "echo t >output/t; exit 0" TERM; echo x >output/x; sleep 30 & wait'
	t1=$(now_ms)
	assert_status 124
	[ $((t1 - t0)) -lt 3000 ]
	local d
	d=$(review_path)
	assert_eq x "$(cat "$d/upper/output/x")"
	[ ! -e "$d/upper/output/t" ]
}

@test "--timeout with --changes sync given: the partial result is synced, as asked" {
	run --separate-stderr af run --changes sync --timeout 0.5 "$P" -- sh -c \
		'echo partial >output/half; sleep 30'
	assert_status 124
	assert_eq "agentfense: command timed out after 0.5s
agentfense: synced changes to '$P': 1 written, 0 deleted, 0 conflicts" "$stderr"
	assert_eq partial "$(cat "$P/output/half")"
	assert_eq 0 "$(runs_count)"
}

@test "a command killed by a signal: its changes are kept for review, not synced" {
	run --separate-stderr af run "$P" -- sh -c 'echo x >output/x; kill -USR1 $$'
	assert_status 138
	local d
	d=$(review_path)
	assert_eq "agentfense: the command was killed by a signal: changes kept in '$d' for review, not synced ('--changes sync' syncs them even then)" "$stderr"
	assert_eq x "$(cat "$d/upper/output/x")"
	[ ! -e "$P/output/x" ]
	# --changes keep and discard are as asked, and say nothing new
	run --separate-stderr af run --changes discard "$P" -- sh -c 'echo x >output/x; kill -USR1 $$'
	assert_status 138
	assert_eq "" "$stderr"
	assert_eq 1 "$(runs_count)"
}

@test "--kill-after: a duration, 0 allowed, and only with --timeout" {
	run --separate-stderr af run --kill-after 5 "$P" -- true
	assert_error 125 "--kill-after without --timeout"
	local v
	for v in x -1 '' 5mm; do
		run --separate-stderr af run -t 1 --kill-after "$v" "$P" -- true
		assert_error 125 "invalid --kill-after value '$v'"
	done
	for v in 0 0s 2 1.5s 1m; do
		run --separate-stderr af run --changes discard -t 5 --kill-after "$v" "$P" -- true
		assert_status 0
		assert_eq "" "$stderr"
	done
}

@test "the summary of what was synced: always on stderr when something changed, -q silences it" {
	run --separate-stderr af run "$P" -- sh -c 'echo a >output/a; echo b >output/b; echo out'
	assert_status 0
	assert_output out
	assert_eq "agentfense: synced changes to '$P': 2 written, 0 deleted, 0 conflicts" "$stderr"
	run --separate-stderr af run "$P" -- rm output/a
	assert_status 0
	assert_eq "agentfense: synced changes to '$P': 0 written, 1 deleted, 0 conflicts" "$stderr"
	# nothing changed: nothing said
	run --separate-stderr af run "$P" -- cat output/b
	assert_status 0
	assert_eq "" "$stderr"
	run --separate-stderr af run -q "$P" -- sh -c 'echo c >output/c'
	assert_status 0
	assert_eq "" "$stderr"
	assert_eq c "$(cat "$P/output/c")"
	run --separate-stderr af run --quiet "$P" -- rm output/c
	assert_status 0
	assert_eq "" "$stderr"
	[ ! -e "$P/output/c" ]
}

@test "--dry-run: the rules, mounts, limits, timeout and delta, exit 0, nothing started" {
	printf '[rules]\n/docs/** = write\n' >"$T/p.ini"
	run --separate-stderr af run --dry-run --policy "$T/p.ini" -r '/src/**=write@5' \
		--ro-bind /etc/hostname:/host-name --tmpfs /scratch -t 30 --kill-after 2 \
		--pids 64 -w src "$P" -- make -j2
	assert_status 0
	assert_eq "" "$stderr"
	local real
	real=$(cd "$P" && pwd -P)
	assert_eq "preset agent-safe (built-in)" "${lines[0]}"
	assert_eq "rules, in precedence order:" "${lines[1]}"
	assert_contains "$output" "
  /src/**                      write @5   --rule
"
	assert_contains "$output" "
  /docs/**                     write @0   $T/p.ini:2
"
	assert_contains "$output" "
  .env*                        none  @100 preset agent-safe
"
	assert_contains "$output" "
mounts:
"
	assert_contains "$output" "
  /usr           the host's, read-only
"
	assert_contains "$output" "
  /workspace     '$real' through the permissioned, copy-on-write view
  /host-name     '/etc/hostname', read-only (--ro-bind)
  /scratch       a private tmpfs (--tmpfs)
delta: a new run directory in '$RUNS'
network: none (loopback only, a network namespace of its own)
seccomp: on
limits:
  memory: none
  cpus: none
  pids 64: "
	assert_contains "$output" "
  disk: half the free space of the state directory, counted by the view
timeout: 30s, then SIGTERM to the command's process group, SIGKILL of the sandbox 2s later
changes: sync (kept instead after a timeout or a signal)
workdir: /workspace/src
command: make -j2"
	# how --pids is enforced is what this machine allows, said as such
	[[ "$output" == *"pids 64: cgroup v2, the sandbox as a whole"* ||
		"$output" == *"pids 64: cgroup v1, the sandbox as a whole"* ||
		"$output" == *"pids 64: RLIMIT_NPROC, per sandbox (its user namespace)"* ]]
	# nothing ran, nothing was made
	[ ! -e "$RUNS" ] || assert_eq 0 "$(runs_count)"
	run --separate-stderr af run --dry-run --net host --changes discard "$P" -- sh -c 'touch output/x'
	assert_status 0
	assert_contains "$output" "
network: host (the host's network namespace)
"
	assert_contains "$output" "
changes: discard
"
	[ ! -e "$P/output/x" ]
}

@test "--dry-run: bad input is refused as the run would refuse it" {
	run --separate-stderr af run --dry-run -p no-such "$P" -- true
	assert_status 125
	assert_contains "${stderr_lines[0]}" "no-such"
	run --separate-stderr af run --dry-run "$T/nosuch" -- true
	assert_status 125
	assert_eq "" "$output"
}

@test "-v: the rules' sources, the mounts and the delta path before the command, on stderr" {
	run --separate-stderr af run -v -r '/docs/**=write' "$P" -- sh -c 'echo x >output/v; echo out'
	assert_status 0
	assert_output out
	local d
	d=$(sed -n "s/^agentfense: delta: '\\(.*\\)'\$/\\1/p" <<<"$stderr")
	[[ "$d" == "$RUNS/run-"* ]]
	assert_eq "agentfense: preset agent-safe (built-in)" "${stderr_lines[0]}"
	assert_contains "$stderr" "
agentfense:   /docs/**                     write @0   --rule
"
	assert_contains "$stderr" "
agentfense: mounts:
"
	assert_contains "$stderr" "
agentfense: delta: '$d'
agentfense: synced changes to '$P': 1 written, 0 deleted, 0 conflicts"
	# the run's own details (network, limits...) are --dry-run's
	refute_contains "$stderr" "network:"
	# synced: the delta is gone
	[ ! -e "$d" ]
}

@test "--timeout at a terminal: the relay gives the same SIGTERM and grace" {
	term -- '
		$AF run --timeout 0.5 --kill-after 5 "$P" -- sh -c "trap \"echo cleaned >output/clean; exit 0\" TERM; echo x >output/x; sleep 30 & wait"
		echo "run:$?"
		$AF run --changes discard --timeout 0.5 --kill-after 1 "$P" -- sh -c "trap \"\" TERM; sleep 30"
		echo "run:$?"'
	assert_status 0
	local d=("$RUNS"/*)
	assert_eq 1 "${#d[@]}"
	assert_eq "agentfense: command timed out after 0.5s
agentfense: the command timed out: changes kept in '${d[0]}' for review, not synced ('--changes sync' syncs them even then)
run:124
agentfense: command timed out after 0.5s
run:124
@@ exit 0
@@ termios same" "$output"
	assert_eq cleaned "$(cat "${d[0]}/upper/output/clean")"
	assert_eq x "$(cat "${d[0]}/upper/output/x")"
	[ ! -e "$P/output/x" ]
}
