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

@test "listings with and without opendir race renames under full-access" {
	# full-access: the rename copies up project files the listing
	# threads are looking up at the same time
	many "$P/src/big" 2000
	run race --changes discard --preset full-access --timeout 40 -- listmove 5 src/big src/big2
	assert_status 0
	assert_output "$LISTMOVE_OK"
}

@test "random races of listings, lookups, renames, unlinks and copy-ups leave a consistent delta" {
	mkdir -p "$P/stress/a" "$P/stress/b" "$P/stress/churn"
	many "$P/stress/m" 50
	many "$P/stress/a/sub" 50
	many "$P/stress/w" 20
	run race --preset full-access --timeout 50 -- stress 10
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
every op answered within 10 s' "$(head -n 8 <<<"$inside")"
	# the synced project is exactly what the sandbox saw last
	[ -n "$(tail -n +9 <<<"$inside")" ]
	assert_eq "$(tail -n +9 <<<"$inside")" "$(cd "$P" && python3 -c "$VIEWRACE_PY" sig)"
	assert_eq 0 "$(runs_count)"
}
