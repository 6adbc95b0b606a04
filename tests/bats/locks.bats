#!/usr/bin/env bats
# The view's locks under concurrent requests: listings, lookups, renames,
# unlinks and copy-ups of one tree from several threads must never
# deadlock the view (the lock order is in src/view_int.h).  A run whose
# view does hang must still end on --timeout or a signal.  The races are
# in tests/tools/viewrace.py; every run is bounded by timeout(1), so a
# hang fails the test instead of the suite.

load helper

VIEWRACE_PY=$(cat "$BATS_TEST_DIRNAME/../tools/viewrace.py")

# many DIR N: N small files in DIR.
many() {
	mkdir -p "$1"
	(cd "$1" && for ((i = 0; i < $2; i++)); do echo "$i" >"f$i"; done)
}

# race [RUN-OPTION...] -- ARG...: viewrace.py ARG... inside a sandbox over
# $P, bounded to 60 s in all.
race() {
	split_opts "$@"
	AF_TEST_MARK="$T" timeout -k 5 60 "$AGENTFENSE" run "${OPTS[@]}" "$P" -- \
		python3 -c "$VIEWRACE_PY" "${ARGS[@]}"
}

# The ops lines every listmove race prints when each thread got through.
LISTMOVE_OK='ops list1: ok
ops list2: ok
ops stat: ok
ops move: ok
every op answered within 10 s'

@test "listing a 3000-file directory while it is renamed does not hang the view" {
	many "$P/output/d1" 3000
	run race --changes discard --timeout 40 -- listmove 5 output/d1 output/d2
	assert_status 0
	assert_output "$LISTMOVE_OK"
}

@test "listing a directory while its parent is renamed does not hang the view" {
	many "$P/output/p/d1" 2000
	run race --changes discard --timeout 40 -- listmove 5 output/p/d1 output/p.moved/d1 output/p
	assert_status 0
	assert_output "$LISTMOVE_OK"
}

@test "listing directories while each is renamed for the first time does not hang the view" {
	# full-access, in src/: each first rename copies a project
	# directory up, and its files, while other threads list and stat it
	local i
	for ((i = 0; i < 6; i++)); do
		many "$P/src/d$i" 1500
	done
	run race --changes discard --preset full-access --timeout 40 -- listmany src/d 6
	assert_status 0
	assert_output 'ops list: ok
ops stat: ok
ops move: ok
every op answered within 10 s'
}

@test "random races of listings, lookups, renames, unlinks and copy-ups leave a consistent delta" {
	mkdir -p "$P/stress/a" "$P/stress/b" "$P/stress/churn"
	many "$P/stress/m" 50
	many "$P/stress/a/sub" 50
	many "$P/stress/w" 20
	local i
	for ((i = 0; i < 10; i++)); do
		many "$P/stress/fresh/d$i" 600
	done
	run race -q --preset full-access --timeout 50 -- stress 10
	assert_status 0
	local inside=$output
	# every worker got through, nothing failed but name races, and the
	# view answered throughout
	assert_eq 'ops list: ok
ops stat: ok
ops move: ok
ops cross: ok
ops churn: ok
ops write: ok
ops write2: ok
ops fresh-list: ok
ops fresh-move: ok
every op answered within 10 s' "$(head -n 10 <<<"$inside")"
	# the synced project is exactly what the sandbox saw last
	[ -n "$(tail -n +11 <<<"$inside")" ]
	assert_eq "$(tail -n +11 <<<"$inside")" "$(cd "$P" && python3 -c "$VIEWRACE_PY" sig)"
	assert_eq 0 "$(runs_count)"
}

# wedged [RUN-OPTION...] -- SCRIPT: run SCRIPT in a sandbox over $P
# through wedge.py, which stops the view in the request that names
# wedge-me; SIGTERM after $SIGTERM_AFTER seconds if set.  Bounded to 60 s.
wedged() {
	split_opts "$@"
	AF_TEST_MARK="$T" timeout -k 5 60 python3 "$BATS_TEST_DIRNAME/../tools/wedge.py" \
		wedge-me "$T/af.out" "${SIGTERM_AFTER:-0}" -- \
		"$AGENTFENSE" run "${OPTS[@]}" "$P" -- sh -c "${ARGS[0]}"
}

# wedge_setup: the project file wedged() stops the view on; the tree
# signature of the project, after it, in $BEFORE.
wedge_setup() {
	printf 'x\n' >"$P/wedge-me"
	BEFORE=$(tree_sig "$P")
}

# The run's delta, kept: its one directory under $RUNS.
kept_delta() {
	[ "$(runs_count)" = 1 ]
	echo "$RUNS"/*
}

@test "--timeout ends a run whose view stopped answering; the delta is kept, not synced" {
	wedge_setup
	run wedged --timeout 3 -- 'echo w >output/new.txt; echo ready; sleep 1; cat wedge-me; echo never'
	assert_status 0
	assert_eq 'wedged
exit 124' "$(head -n 2 <<<"$output")"
	# the timeout, plus a grace for the sandbox to die of SIGKILL
	[[ "${lines[2]}" =~ ^after\ [1-5]\ s$ ]]
	local d
	d=$(kept_delta)
	assert_eq "ready
agentfense: command timed out after 3s
agentfense: the view stopped answering: changes kept in '$d', not synced" "$(cat "$T/af.out")"
	assert_eq w "$(cat "$d/upper/output/new.txt")"
	assert_eq "$BEFORE" "$(tree_sig "$P")"
}

@test "SIGTERM ends a run whose command hangs on a view that stopped answering" {
	wedge_setup
	SIGTERM_AFTER=1 run wedged -- 'mkdir output/made; echo ready; sleep 1; exec cat wedge-me'
	assert_status 0
	# 128+15, once the view answered nothing for 5 s after the signal
	# and the sandbox was cut off from it
	assert_eq 'wedged
exit 143' "$(head -n 2 <<<"$output")"
	[[ "${lines[2]}" =~ ^after\ [6-9]\ s$ ]]
	local d
	d=$(kept_delta)
	assert_eq "ready
agentfense: the view stopped answering: changes kept in '$d', not synced" "$(cat "$T/af.out")"
	[ -d "$d/upper/output/made" ]
	assert_eq "$BEFORE" "$(tree_sig "$P")"
}

@test "a background process left hanging on the view does not keep a finished run alive" {
	wedge_setup
	run wedged --changes discard -- 'echo w >output/new.txt; echo ready; sleep 1; cat wedge-me & sleep 2; exit 3'
	assert_status 0
	assert_eq 'wedged
exit 3' "$(head -n 2 <<<"$output")"
	[[ "${lines[2]}" =~ ^after\ [1-5]\ s$ ]]
	# kept even with --changes discard: the view may still write to it
	local d
	d=$(kept_delta)
	assert_eq "ready
agentfense: the view stopped answering: changes kept in '$d', not synced" "$(cat "$T/af.out")"
	assert_eq w "$(cat "$d/upper/output/new.txt")"
	assert_eq "$BEFORE" "$(tree_sig "$P")"
}

@test "SIGTERM to a run whose view answers is passed on and nothing more" {
	# a command that ignores SIGTERM and keeps using the view is not
	# cut off: the run ends when the command does
	bg_af "$T/out" run --changes discard "$P" -- sh -c \
		'trap "echo got-term" TERM; echo ready; i=0; while [ $i -lt 40 ]; do ls >/dev/null; sleep 0.2; i=$((i+1)); done; echo done'
	wait_for_line "$T/out" ready
	kill -TERM "$BG_PID"
	wait_for_line "$T/out" got-term
	local st=0
	wait "$BG_PID" || st=$?
	assert_eq 0 "$st"
	assert_eq 'ready
got-term
done' "$(cat "$T/out")"
}
