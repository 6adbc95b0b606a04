#!/usr/bin/env bats
# lifecycle.bats - many sandboxes, views and deltas in one process at
# once, driven step by step from one event loop through lifecycle.h
# (tests/tools/multibox.c): each sees only its own project, keeps its
# own changes, ends on its own, and nothing is left once they are freed.

load helper

setup() {
	af_setup
	mkdir -p "$T/boxes"
}

# multibox [OPTION...]: run the tool on fresh projects below $T/boxes.
multibox() {
	AF_TEST_MARK="$T" "${AF_BUILD:-$(dirname "$AGENTFENSE")}/multibox" "$@" "$T/boxes"
}

@test "two sandboxes in one process: each its own project and delta, nothing left" {
	run --separate-stderr multibox -n 2
	assert_status 0
	assert_eq "" "$stderr"
	assert_output "multibox: 2 boxes isolated, nothing left"
	# box 0 synced its two files and nothing else; box 1 kept its delta
	assert_eq "secret-0" "$(cat "$T/boxes/p0/seen")"
	assert_eq "0" "$(cat "$T/boxes/p0/out")"
	[ ! -e "$T/boxes/p0/leak" ]
	[ ! -e "$T/boxes/p1/out" ]
	assert_eq "1" "$(ls "$RUNS" | wc -l)"
	assert_eq "1" "$(cat "$RUNS"/*/upper/out)"
	assert_eq "secret-1" "$(cat "$RUNS"/*/upper/seen)"
}

@test "twenty sandboxes at once in one process stay isolated" {
	run --separate-stderr multibox
	assert_status 0
	assert_eq "" "$stderr"
	assert_output "multibox: 20 boxes isolated, nothing left"
	# the ten odd boxes kept their deltas, each with its own number
	assert_eq "10" "$(ls "$RUNS" | wc -l)"
	assert_eq "1 11 13 15 17 19 3 5 7 9" "$(cat "$RUNS"/*/upper/out | LC_ALL=C sort | xargs)"
}

@test "one sandbox's timeout ends it alone, the others finish" {
	run --separate-stderr multibox -n 4 --hang
	assert_status 0
	assert_eq "" "$stderr"
	assert_output "multibox: 4 boxes isolated, nothing left"
	assert_eq "2" "$(cat "$T/boxes/p2/out")"
	[ ! -e "$T/boxes/p0/out" ]
}

@test "the leak check of the many-sandbox test sees an fd left open" {
	run --separate-stderr multibox -n 2 --leak-fd
	assert_status 1
	assert_eq "" "$output"
	assert_contains "$stderr" "fds open before,"
}

@test "views and sandboxes leave the process's RLIMIT_NOFILE as it was" {
	# a soft limit below the hard one, which a view used to raise
	run --separate-stderr bash -c 'ulimit -S -n 200 && "$0" -n 3 "$1" && ulimit -S -n' \
		"${AF_BUILD:-$(dirname "$AGENTFENSE")}/multibox" "$T/boxes"
	assert_status 0
	assert_eq "" "$stderr"
	assert_output "multibox: 3 boxes isolated, nothing left
200"
}
