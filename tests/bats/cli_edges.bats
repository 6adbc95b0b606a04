#!/usr/bin/env bats
# cli_edges.bats - the command line as scripts and new users meet it:
# exit statuses that cannot be mistaken for the command's, values in the
# units people type, hints for what was mistyped or misplaced.

load helper

@test "exit status: a usage error of agentfense is 125, the command's 2 stays its own" {
	run --separate-stderr af run --changes discard "$P" -- sh -c 'exit 2'
	assert_status 2
	run --separate-stderr af run --bogus "$P" -- sh -c 'exit 2'
	assert_error 125 "unknown option '--bogus'"
	run --separate-stderr af run --changes discard -w nosuch "$P" -- true
	assert_error 125 "cannot change to working directory '/workspace/nosuch'"
	[ "$(runs_count)" = 0 ]
}

@test "exit status: every subcommand's usage errors are 125" {
	run --separate-stderr af
	assert_status 125
	run --separate-stderr af help frobnicate
	assert_error 125 "unknown command 'frobnicate'"
	run --separate-stderr af run -r 'x=bogus' "$P" -- true
	assert_error 125 "bogus"
	run --separate-stderr af explain --bogus "$P"
	assert_error 125 "--bogus"
	run --separate-stderr af preset show no-such-preset
	assert_error 125 "no-such-preset"
	run --separate-stderr af serve --idle-exit 0
	assert_error 125 "invalid value '0' for --idle-exit"
	run --separate-stderr af codebase frobnicate
	assert_error 125 "unknown subcommand 'codebase frobnicate'"
}
