#!/usr/bin/env bats
# session_cli.bats - `agentfense session` against a real serve: open,
# exec keeping the shell's state, the command text from arguments or
# standard input, exit statuses, --timeout, close, ls, info, and the
# errors of each.

load helper
load serve_helper

ss() {
	af session "$@"
}

# running_sb: a codebase of the test project and a running sandbox on
# it; SB is its id.
running_sb() {
	local cb
	cb=$(af codebase create --from "$P" demo)
	SB=$(af sandbox create --start "$cb")
}

SS_RE='^ss_[0-9a-f]{32}$'

@test "session open prints the id alone; ls and info show it; --json gives serve's objects" {
	start_serve
	running_sb
	run --separate-stderr ss open "$SB"
	assert_status 0
	[[ "$output" =~ $SS_RE ]]
	assert_eq "" "$stderr"
	local id=$output
	run --separate-stderr ss open --json --shell /bin/sh -e A=1 -w src "${SB:0:8}"
	assert_status 0
	local id2
	id2=$(jget "$output" 'j["id"]')
	assert_eq "$SB active /bin/sh" "$(jget "$output" '" ".join([j["sandbox_id"], j["status"], j["shell"]])')"
	run ss ls "$SB"
	assert_status 0
	assert_eq 3 "${#lines[@]}"
	assert_eq 'ID                                   STATUS   SHELL         CREATED' "${lines[0]}"
	local row
	row=$(grep "^$id " <<<"$output")
	[[ "$row" =~ ^$id\ \ active\ \ \ /bin/sh\ +20[0-9-]+T[0-9:.]+Z$ ]]
	run ss ls --json "$SB"
	assert_eq "$(printf '%s\n' "$id" "$id2" | sort | xargs)" "$(jget "$output" '" ".join(sorted(x["id"] for x in j))')"
	run ss info "$id"
	assert_eq "id          $id" "${lines[0]}"
	assert_eq "sandbox_id  $SB" "${lines[1]}"
	assert_eq "status      active" "${lines[2]}"
	# the environment and directory given at open
	run ss exec "$id2" -- 'echo "$A $(pwd)"'
	assert_eq "1 /workspace/src" "$output"
}

@test "session exec keeps the shell's state; the exit status is the command's" {
	start_serve
	running_sb
	local id
	id=$(ss open "$SB")
	ss exec "$id" -- cd src
	ss exec "$id" -- export GREETING=hello
	run --separate-stderr ss exec "$id" -- 'echo "$GREETING from $(pwd)"; echo to-err >&2'
	assert_status 0
	assert_eq "hello from /workspace/src" "$output"
	assert_eq "to-err" "$stderr"
	# words are joined as ssh joins them, for the shell to parse
	run ss exec "$id" echo a   b '"c  d"'
	assert_eq "a b c  d" "$output"
	run ss exec "$id" -- false
	assert_status 1
	run ss exec "$id" -- '(exit 7)'
	assert_status 7
	run --separate-stderr ss exec --json "$id" -- 'echo "$GREETING"; (exit 5)'
	assert_status 5
	assert_eq "['hello\\n', 5]" "$(jget "$output" '[j["stdout"], j["exit_code"]]')"
	# the text on standard input with '-': quotes and newlines as they are
	run ss exec "$id" - <<'EOF'
x='it'"'"'s'
printf '%s\n' "$x" "two lines"
EOF
	assert_status 0
	assert_eq $'it\'s\ntwo lines' "$output"
	# output as it comes
	bg_af "$T/live" session exec "$id" -- 'echo ready; sleep 2; echo done'
	wait_for_line "$T/live" ready 2
	refute_contains "$(cat "$T/live")" done
	wait "$BG_PID"
	# --timeout: 124, and the session lives on
	local t0=$SECONDS
	run --separate-stderr ss exec --timeout 0.5 "$id" -- 'echo before; sleep 10'
	assert_status 124
	assert_eq before "$output"
	[ $((SECONDS - t0)) -lt 5 ]
	run ss exec "$id" -- 'echo still $GREETING'
	assert_status 0
	assert_eq "still hello" "$output"
}

@test "session close ends it; a closed or busy session and bad ids are errors with stable codes" {
	start_serve
	running_sb
	local id other
	id=$(ss open "$SB")
	other=$(ss open "$SB")
	# one exec at a time per session
	bg_af "$T/slow" session exec "$id" -- 'echo started; sleep 2'
	wait_for_line "$T/slow" started 2
	run --separate-stderr ss exec "$id" -- true
	assert_error 125 "busy"
	wait "$BG_PID"
	run --separate-stderr ss close "$id" "$other"
	assert_status 0
	assert_eq "" "$output$stderr"
	run --separate-stderr ss exec "$id" -- true
	assert_error 125 "session '$id' is closed: deleted by request"
	# a shell that exits ends its session, which says why
	id=$(ss open "$SB")
	run ss exec "$id" -- 'exit 4'
	assert_status 4
	run --separate-stderr ss exec "$id" -- true
	assert_error 125 "session '$id' is closed: its shell exited 4"
	run ss info "$id"
	assert_contains "$output" $'\nstatus      closed\n'
	assert_contains "$output" $'\nerror       its shell exited 4\n'
	ss close "$id"
	run --separate-stderr ss info ss_00000000000000000000000000000000
	assert_error 1 "ss_00000000000000000000000000000000"
	assert_contains "$stderr" "hint: 'agentfense session ls SANDBOX' lists the sessions"
	run --separate-stderr ss exec ss_00000000000000000000000000000000 -- true
	assert_error 125 "ss_00000000000000000000000000000000"
	run --separate-stderr ss exec "$SB" -- true
	assert_error 125 "'$SB' is a sandbox id, not a session id"
	assert_contains "$stderr" "hint: open a session in it with 'agentfense session open $SB'"
	run --separate-stderr ss close nonsense
	assert_error 125 "invalid session id 'nonsense'"
	run --separate-stderr ss open sb_00000000000000000000000000000000
	assert_error 1 "sb_00000000000000000000000000000000"
	run --separate-stderr ss ls "$id"
	assert_error 125 "is a session id, not a sandbox id"
	# a stopped sandbox has no sessions to open
	af sandbox stop "$SB"
	run --separate-stderr ss open "$SB"
	assert_error 3 ""
	assert_contains "$stderr" "hint: start it with 'agentfense sandbox start $SB'"
}

@test "session: each bad option is one clear line and 125, before serve is asked" {
	bad() {
		local want=$1
		shift
		run --separate-stderr ss "$@"
		assert_error 125 "$want"
	}
	bad "missing subcommand"
	bad "unknown subcommand 'session opne'" opne
	assert_contains "$stderr" "did you mean 'open'?"
	bad "unknown option '--shelll'" open --shelll sh sb_x
	assert_contains "$stderr" "did you mean '--shell'?"
	bad "option '--timeout' does not apply to 'session open'" open --timeout 5 sb_x
	bad "option '--shell' does not apply to 'session exec'" exec --shell sh ss_x -- true
	bad "invalid value 'never' for --timeout" exec --timeout never ss_x -- true
	bad "invalid environment variable 'x-y'" open -e x-y sb_x
	bad "empty value for --shell" open --shell '' sb_x
	bad "missing command for 'session exec ss_x'" exec ss_x --
	bad "wrong number of arguments for 'session ls'" ls
	bad "wrong number of arguments for 'session close'" close
	bad "wrong number of arguments for 'session open'" open a b
	[ ! -e "$SOCK" ]
	run ss --help
	assert_status 0
	assert_contains "${lines[0]}" "usage: agentfense session open"
}
