#!/usr/bin/env bats
# sandbox_cli.bats - `agentfense sandbox` against a real serve: create,
# ls, info, start, stop, rm with their outputs and --json shapes; exec
# streaming the command's output live with its exit status; stdin with
# -i; ids by prefix; exit codes and one-line errors for every bad input;
# serve started in the background; use from a Makefile.

load helper
load serve_helper

# sb ARG...: agentfense sandbox ARG...
sb() {
	af sandbox "$@"
}

# new_cb: a codebase "demo" from the test project; CB is its id.
new_cb() {
	CB=$(af codebase create --from "$P" demo)
}

# new_sb [OPTION...]: a sandbox on CB; SB is its id.
new_sb() {
	SB=$(sb create "$@" "$CB")
}

ID_RE='^sb_[0-9a-f]{32}$'

# stop_autostarted: stop the serve the CLI started on $SOCK.
stop_autostarted() {
	[ -S "$SOCK" ] || return 0
	local pid
	pid=$(python3 "$HTTPRAW" pid "$SOCK") || return 0
	kill -TERM "$pid"
	wait_gone "$pid"
}

@test "sandbox create prints the id alone; ls and info show it; --json gives serve's objects" {
	start_serve
	new_cb
	run --separate-stderr sb create --label team=x --label env=dev -r 'output/**=write@5' \
		--expires 1h --changes discard --pids 64 --memory 256m --cpus 0.5 "$CB"
	assert_status 0
	[[ "$output" =~ $ID_RE ]]
	assert_eq "" "$stderr"
	local id=$output
	# a codebase by its name works as well as by its id
	run --separate-stderr sb create demo
	assert_status 0
	[[ "$output" =~ $ID_RE ]]
	local id2=$output

	run --separate-stderr sb ls
	assert_status 0
	assert_eq 'ID                                   CODEBASE                             STATUS    PRESET        CREATED' "${lines[0]}"
	assert_eq 3 "${#lines[@]}"
	[[ "${lines[1]}" =~ ^$id\ \ $CB\ \ (pending|stopped)\ +agent-safe\ +20[0-9-]+T[0-9:.]+Z$ ]]
	run sb ls --label team=x
	assert_eq 2 "${#lines[@]}"
	assert_eq "$id" "${lines[1]%% *}"
	# several labels must all match; a key alone matches any value
	run sb ls --json --label env=dev --label team=x
	assert_eq "$id" "$(jget "$output" '" ".join(x["id"] for x in j)')"
	run sb ls --json --label env=dev --label team=y
	assert_eq "" "$(jget "$output" '" ".join(x["id"] for x in j)')"
	run sb ls --json --label team
	assert_eq "$id" "$(jget "$output" '" ".join(x["id"] for x in j)')"
	run sb ls --status running
	assert_eq 1 "${#lines[@]}"
	run sb ls --codebase "$CB" --json
	assert_eq "$id $id2" "$(jget "$output" '" ".join(x["id"] for x in j)')"

	run sb info --json "$id"
	assert_status 0
	assert_eq "$id $CB discard {'env': 'dev', 'team': 'x'} 64 268435456" \
		"$(jget "$output" '" ".join(map(str, [j["id"], j["codebase_id"], j["on_destroy"], dict(sorted(j["labels"].items())), j["resources"]["pids_limit"], j["resources"]["memory_bytes"]]))')"
	assert_eq "output/**=write@5" \
		"$(jget "$output" '" ".join("%s=%s@%d" % (r["pattern"], r["permission"], r["priority"]) for r in j["permissions"])')"
	[ "$(jget "$output" 'j["expires_at"] is not None')" = True ]
	run sb info "$id"
	assert_status 0
	assert_eq "id           $id" "${lines[0]}"
	assert_eq "codebase_id  $CB" "${lines[1]}"
	assert_contains "$output" $'\nlabel        env=dev\nlabel        team=x\n'
	assert_contains "$output" $'\nmemory       256 MiB\n'
	assert_contains "$output" $'\ncpus         0.5\n'
	assert_contains "$output" $'\nrule         output/**=write@5'
	# a unique prefix names the sandbox, as docker's ids do
	run sb info --json "${id:0:8}"
	assert_eq "$id" "$(jget "$output" 'j["id"]')"
}

@test "sandbox exec: the command's output, exit status, environment and workdir" {
	start_serve
	new_cb
	new_sb --start
	run --separate-stderr sb exec "$SB" -- sh -c 'echo out; echo err >&2; exit 3'
	assert_status 3
	assert_eq "out" "$output"
	assert_eq "err" "$stderr"
	run sb exec "$SB" false
	assert_status 1
	# --json: one ExecResult once the command ended, its status still ours
	run --separate-stderr sb exec --json "$SB" -- sh -c 'echo hi; echo oh >&2; exit 3'
	assert_status 3
	assert_eq "['hi\\n', 'oh\\n', 3, False]" "$(jget "$output" '[j["stdout"], j["stderr"], j["exit_code"], j["timed_out"]]')"
	assert_eq "" "$stderr"
	# the command's own options stay the command's
	run sb exec "$SB" ls -a /workspace/docs
	assert_status 0
	assert_eq ". .. guide.txt notes.md" "$(echo $output)"
	run sb exec "$SB" -- sh -c 'kill -9 $$'
	assert_status 137
	run -127 --separate-stderr sb exec "$SB" -- no-such-command
	assert_eq "" "$output"
	assert_eq "agentfense: 'no-such-command': command not found" "$stderr"
	# the policy holds: a secret stays hidden
	run sb exec "$SB" -- cat /workspace/.env
	assert_status 1
	refute_contains "$output" "$SECRET_MARK"

	printf 'FROM_FILE=f1\n# comment\nPASSED\n' >"$T/env"
	PASSED=ours run --separate-stderr sb exec -e A=1 -e 'B=two words' --env-file "$T/env" \
		-w src "$SB" -- sh -c 'echo "$A|$B|$FROM_FILE|$PASSED|$(pwd)"'
	assert_status 0
	assert_eq "1|two words|f1|ours|/workspace/src" "$output"
	run sb exec -w /workspace/docs "$SB" -- pwd
	assert_eq /workspace/docs "$output"
	run --separate-stderr sb exec -w /workspace/nope "$SB" -- true
	assert_error 125 "cannot change to working directory '/workspace/nope'"
	# bytes that are not UTF-8 come back as they are
	sb exec "$SB" -- printf '\377\000a\351' >"$T/bin"
	assert_eq "ff 00 61 e9" "$(od -An -tx1 "$T/bin" | xargs)"
}

@test "sandbox exec streams the output as it comes, in order, and --timeout exits 124" {
	start_serve
	new_cb
	new_sb --start
	# a line is shown while the command still runs
	bg_af "$T/live" sandbox exec "$SB" -- sh -c 'echo ready; sleep 3; echo done'
	local pid=$BG_PID
	wait_for_line "$T/live" ready 2
	refute_contains "$(cat "$T/live")" done
	wait "$pid"
	assert_eq $'ready\ndone' "$(cat "$T/live")"
	# stdout and stderr in the order they were written
	run sb exec "$SB" -- sh -c 'echo 1; sleep 0.2; echo 2 >&2; sleep 0.2; echo 3; sleep 0.2; echo 4 >&2'
	assert_eq "1 2 3 4" "$(echo $output)"
	local t0=$SECONDS
	run --separate-stderr sb exec --timeout 0.5 "$SB" -- sh -c 'echo before; sleep 10'
	assert_status 124
	assert_eq before "$output"
	[ $((SECONDS - t0)) -lt 5 ]
}

@test "sandbox exec -i sends standard input; without -i the command reads nothing" {
	start_serve
	new_cb
	new_sb --start
	run sb exec -i "$SB" -- wc -l <<<$'a\nb\nc'
	assert_status 0
	assert_eq 3 "$(echo $output)"
	printf '\000\377bin' >"$T/in"
	sb exec -i "$SB" -- od -An -tx1 <"$T/in" >"$T/od"
	assert_eq "00 ff 62 69 6e" "$(xargs <"$T/od")"
	# not waiting for a terminal or a pipe: stdin is /dev/null
	run timeout 10 sh -c "echo nope | '$AGENTFENSE' sandbox exec '$SB' -- cat"
	assert_status 0
	assert_eq "" "$output"
}

@test "sandbox start, stop and rm: state, exit codes, and the changes synced to the codebase" {
	start_serve
	new_cb
	new_sb
	run --separate-stderr sb exec "$SB" -- true
	assert_error 125 "not running"
	assert_contains "$stderr" "hint: start it with 'agentfense sandbox start $SB'"
	run --separate-stderr sb start "$SB"
	assert_status 0
	assert_eq "" "$output$stderr"
	assert_eq running "$(jget "$(sb info --json "$SB")" 'j["status"]')"
	# start of a running one is no error (idempotent)
	sb start "$SB"
	sb exec "$SB" -- sh -c 'echo made >/workspace/output/new.txt'
	run --separate-stderr sb rm "$SB"
	assert_error 3 "sandbox '$SB' is running"
	assert_contains "$stderr" "hint: stop it first"
	run --separate-stderr sb stop "$SB"
	assert_status 0
	assert_eq "" "$output$stderr"
	assert_eq stopped "$(jget "$(sb info --json "$SB")" 'j["status"]')"
	# started again on the same changes
	sb start "$SB"
	run sb exec "$SB" -- cat /workspace/output/new.txt
	assert_eq made "$output"
	sb stop "$SB"
	run --separate-stderr sb rm "$SB"
	assert_status 0
	assert_eq "" "$output$stderr"
	run af codebase get "$CB" output/new.txt
	assert_eq made "$output"
	run --separate-stderr sb info "$SB"
	assert_error 1 "$SB"

	# rm -f removes a running one; --changes keep says where they are
	new_sb --start --changes keep
	sb exec "$SB" -- sh -c 'echo kept >/workspace/output/k.txt'
	run --separate-stderr sb rm -f --json "$SB"
	assert_status 0
	assert_eq kept "$(jget "$output" 'j["delta"]["fate"]')"
	local path
	path=$(jget "$output" 'j["delta"]["path"]')
	assert_eq kept "$(find "$path" -name k.txt -exec cat {} +)"
	rm -rf "$path"
	new_sb --start --changes keep
	run --separate-stderr sb rm -f "$SB"
	assert_status 0
	assert_eq "" "$output"
	assert_contains "$stderr" "agentfense: changes kept in '"
	rm -rf "$(sed -n "s/.*changes kept in '\(.*\)'.*/\1/p" <<<"$stderr")"
	# a change the codebase made meanwhile wins; rm says where the
	# sandbox's version is, as run does
	new_sb --start -r 'README.md=write'
	sb exec "$SB" -- sh -c 'echo mine >/workspace/README.md'
	echo theirs | af codebase put "$CB" - README.md
	run --separate-stderr sb rm -f "$SB"
	assert_status 0
	assert_eq "" "$output"
	assert_eq 2 "${#stderr_lines[@]}"
	assert_contains "${stderr_lines[0]}" "agentfense: conflict: 'README.md' changed in the project while the sandbox ran"
	assert_contains "${stderr_lines[1]}" "agentfense: 1 change not synced (conflicting or held): the sandbox's version is kept in '"
	path=$(sed -n "s/.*version is kept in '\(.*\)'$/\1/p" <<<"${stderr_lines[1]}")
	assert_eq mine "$(cat "$path/upper/README.md")"
	rm -rf "$path"
	run af codebase get "$CB" README.md
	assert_eq theirs "$output"
	# several ids in one go
	local a b
	a=$(sb create "$CB")
	b=$(sb create "$CB")
	sb start "$a" "$b"
	assert_eq "running running" "$(jget "$(sb ls --json)" '" ".join(x["status"] for x in j)')"
	sb stop "$a" "$b"
	sb rm "$a" "$b"
	run sb ls
	assert_eq 1 "${#lines[@]}"
}

@test "sandbox: bad ids, not found and conflicts: one line, a hint, stable exit codes" {
	start_serve
	new_cb
	new_sb
	# a typo of an existing id: did you mean
	run --separate-stderr sb info "${SB:0:34}$([ "${SB:34}" = 0 ] && echo 1 || echo 0)"
	assert_error 1 "no sandbox '${SB:0:34}"
	assert_eq "hint: did you mean '$SB'?" "${stderr_lines[1]}"
	run --separate-stderr sb stop sb_00000000000000000000000000000000
	assert_error 1 "sb_00000000000000000000000000000000"
	# exec: the command's status is the exit status, so a missing
	# sandbox is agentfense's failure, 125
	run --separate-stderr sb exec sb_00000000000000000000000000000000 -- true
	assert_error 125 "sb_00000000000000000000000000000000"
	run --separate-stderr sb info sb_nothere
	assert_error 1 "no sandbox 'sb_nothere'"
	run --separate-stderr sb info nonsense
	assert_error 125 "invalid sandbox id 'nonsense'"
	run --separate-stderr sb info ss_00000000000000000000000000000000
	assert_error 125 "is a session id, not a sandbox id"
	run --separate-stderr sb start "$CB"
	assert_error 125 "is a codebase id, not a sandbox id"
	assert_contains "$stderr" "agentfense sandbox create $CB"
	local other
	other=$(sb create "$CB")
	if [ "${other:3:1}" = "${SB:3:1}" ]; then
		run --separate-stderr sb info "${SB:0:4}"
		assert_error 125 "ambiguous"
	fi
	run --separate-stderr sb create cb_00000000000000000000000000000000
	assert_status 1
	run --separate-stderr sb create no-such-name
	assert_error 1 "no codebase 'no-such-name'"
	af codebase create demo >/dev/null
	run --separate-stderr sb create demo
	assert_error 125 "2 codebases are named 'demo'"
}

@test "sandbox: each bad option is one clear line and 125, before serve is asked" {
	# no serve: a usage error must not start one
	bad() {
		local want=$1
		shift
		run --separate-stderr sb "$@"
		assert_error 125 "$want"
	}
	bad "missing subcommand"
	bad "unknown subcommand 'sandbox lss'" lss
	assert_contains "$stderr" "did you mean 'ls'?"
	bad "unknown option '--jsn'" ls --jsn
	assert_contains "$stderr" "did you mean '--json'?"
	bad "invalid value 'hots' for --net: expected none or host" create --net hots cb_x
	assert_contains "$stderr" "did you mean 'host'?"
	bad "invalid value 'all' for --changes: expected sync, keep or discard" create --changes all cb_x
	bad "invalid value '1k' for --memory" create --memory 1k cb_x
	bad "--cpus" create --cpus lots cb_x
	bad "--pids" create --pids -1 cb_x
	bad "invalid value 'soon' for --expires" create --expires soon cb_x
	bad "invalid rule 'x=bad': unknown level 'bad'" create -r x=bad cb_x
	bad "invalid rule 'nolevel'" create --rule nolevel cb_x
	bad "invalid label 'novalue': expected KEY=VALUE" create --label novalue cb_x
	bad "invalid value 'done' for --status" ls --status done
	bad "invalid value '0' for --timeout" exec --timeout 0 sb_x -- true
	bad "invalid environment variable name '1A'" exec -e 1A=b sb_x -- true
	bad "cannot read env file '$T/none'" exec --env-file "$T/none" sb_x -- true
	bad "option '--start' does not apply to 'sandbox ls'" ls --start
	bad "option '-f' does not apply to 'sandbox info'" info -f sb_x
	bad "option '--memory' does not apply to 'sandbox ls'" ls --memory 1g
	bad "option '--label' does not apply to 'sandbox start'" start --label=a=b sb_x
	bad "option '--timeout' needs a value" exec --timeout
	bad "missing command for 'sandbox exec sb_x'" exec sb_x --
	bad "wrong number of arguments for 'sandbox info'" info
	bad "wrong number of arguments for 'sandbox create'" create a b
	bad "wrong number of arguments for 'sandbox ls'" ls x
	[ ! -e "$SOCK" ]
	run sb --help
	assert_status 0
	assert_contains "${lines[0]}" "usage: agentfense sandbox create"
}

@test "sandbox: starts serve in the background when nothing answers" {
	[ ! -e "$SOCK" ]
	run --separate-stderr sb ls
	assert_status 0
	assert_eq 'ID                                   CODEBASE                             STATUS    PRESET        CREATED' "$output"
	[ -S "$SOCK" ]
	local pid
	pid=$(python3 "$HTTPRAW" pid "$SOCK")
	assert_eq "agentfense serve --socket $SOCK --idle-exit 300" "$(tr '\0' ' ' </proc/"$pid"/cmdline | sed 's/ $//')"
	stop_autostarted
}

@test "sandbox exec from a Makefile: output, and a failing command fails the target" {
	start_serve
	new_cb
	new_sb --start
	cat >"$T/Makefile" <<EOF
AF = $AGENTFENSE sandbox exec $SB --
build:
	\$(AF) sh -c 'cat /workspace/README.md > /workspace/output/built'
	\$(AF) cat /workspace/output/built
broken:
	\$(AF) sh -c 'exit 3'
	echo not reached
EOF
	run make -s -C "$T" build
	assert_status 0
	assert_eq "hello agentfense" "$output"
	run make -s -C "$T" broken
	assert_status 2
	refute_contains "$output" "not reached"
	assert_contains "$output" "Error 3"
}

@test "sandbox exec: a client that is killed takes its command down with it" {
	start_serve
	new_cb
	new_sb --start
	bg_af "$T/tick.out" sandbox exec "$SB" -- sh -c \
		'echo started; while :; do date +%s%N >/workspace/output/tick; sleep 0.05; done'
	local pid=$BG_PID
	wait_for_line "$T/tick.out" started 3
	# (SIGTERM: a background job of a script ignores SIGINT)
	kill -TERM "$pid"
	wait "$pid" || true
	sleep 0.3
	local a b
	a=$(sb exec "$SB" -- cat /workspace/output/tick)
	sleep 0.5
	b=$(sb exec "$SB" -- cat /workspace/output/tick)
	[ -n "$a" ]
	assert_eq "$a" "$b"
}

@test "sandbox create --expires: the sandbox is gone after its time" {
	start_serve
	new_cb
	new_sb --start --expires 1s
	local i
	for ((i = 0; i < 100; i++)); do
		sb info "$SB" >/dev/null 2>&1 || break
		sleep 0.1
	done
	run --separate-stderr sb info "$SB"
	assert_error 1 "$SB"
}

@test "sandbox cp: one file out of and into a running sandbox, through its view" {
	start_serve
	new_cb
	new_sb --start
	# out: to a file, into a directory, to stdout
	sb cp "$SB:README.md" "$T/readme"
	assert_eq "hello agentfense" "$(cat "$T/readme")"
	mkdir "$T/d"
	sb cp "$SB:/workspace/docs/guide.txt" "$T/d"
	assert_eq guide "$(cat "$T/d/guide.txt")"
	run sb cp "${SB:0:10}:src/main.c" -
	assert_eq "int main(void) { return 0; }" "$output"
	# in: bytes and mode as they are, from stdin with a name
	printf '\000\377bin' >"$T/b.bin"
	chmod 640 "$T/b.bin"
	run --separate-stderr sb cp "$T/b.bin" "$SB:output/"
	assert_status 0
	assert_eq "" "$output$stderr"
	assert_eq "00 ff 62 69 6e 640" "$(sb exec "$SB" -- sh -c 'od -An -tx1 /workspace/output/b.bin; stat -c %a /workspace/output/b.bin' | xargs)"
	echo piped | sb cp - "$SB:output/p.txt"
	run sb exec "$SB" -- cat /workspace/output/p.txt
	assert_eq piped "$output"
	# the policy holds: hidden is not found, read-only refused
	run --separate-stderr sb cp "$SB:.env" "$T/env"
	assert_error 1 "no file '.env' in the sandbox"
	refute_contains "$stderr" "$SECRET_MARK"
	[ ! -e "$T/env" ]
	assert_eq "" "$(ls "$T" | grep agentfense- || true)"
	run --separate-stderr sb cp "$T/b.bin" "$SB:src/b.bin"
	assert_error 125 "'src/b.bin': Permission denied"
	run sb exec "$SB" -- test -e /workspace/src/b.bin
	assert_status 1
	run --separate-stderr sb cp "$SB:../../etc/passwd" "$T/x"
	assert_error 125 "has a '..' component"
	# bad arguments
	run --separate-stderr sb cp "$T/a" "$T/b"
	assert_error 125 "must be ID:PATH in a sandbox"
	run --separate-stderr sb cp "$SB:a" "$SB:b"
	assert_error 125 "cannot copy from one sandbox to another"
	run --separate-stderr sb cp "$SB:/etc/passwd" "$T/x"
	assert_error 125 "only files under /workspace"
	run --separate-stderr sb cp "$P" "$SB:x"
	assert_error 125 "is a directory"
	run --separate-stderr sb cp - "$SB:output/"
	assert_error 125 "needs a file name"
	sb stop "$SB"
	run --separate-stderr sb cp "$SB:README.md" -
	assert_error 3 "is not running"
	assert_contains "$stderr" "hint: start it with 'agentfense sandbox start $SB'"
}

@test "sandbox exec: a serve that dies mid-command is agentfense's failure, 125, not the command's" {
	start_serve
	new_cb
	new_sb --start
	bg_af "$T/cut" sandbox exec "$SB" -- sh -c 'echo started; sleep 30'
	local pid=$BG_PID st=0
	wait_for_line "$T/cut" started 3
	kill -KILL "$SERVE_PID"
	wait "$SERVE_PID" 2>/dev/null || true
	SERVE_PID=
	wait "$pid" || st=$?
	assert_eq 125 "$st"
	assert_eq "started" "$(head -n 1 "$T/cut")"
	assert_eq "agentfense: no valid reply from agentfense serve: Protocol error" "$(sed -n 2p "$T/cut")"
	: >"$T/serve.log"
}
