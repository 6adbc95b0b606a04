#!/usr/bin/env bats
# serve_session.bats - sessions (persistent shells) through serve: state
# kept between execs, any command text, stdin, binary output, output
# that imitates the status framing (it must not end or forge an exec),
# timeouts, a shell that exits, one exec at a time, close, and the
# sandbox stopping under them.

load helper
load serve_helper

sandbox_up() {
	mkdir -p "$T/proj/sub"
	echo hello >"$T/proj/a.txt"
	start_sandbox
}

# open_session [JSON]: SS is its id, BODY its object.
open_session() {
	run api POST "/v1/sandboxes/$SB/sessions" -d "${1:-{\}}"
	[ "${output%% *}" = 201 ] || { echo "session failed: $output" >&2; return 1; }
	BODY=${output#* }
	SS=$(jget "$BODY" 'j["id"]')
}

# sx JSON: exec in the session; CODE, BODY.
sx() {
	run api POST "/v1/sessions/$SS/exec" -d "$1"
	CODE=${output%% *}
	BODY=${output#* }
}

# cmd TEXT [STDIN]: exec TEXT (as a JSON string) in the session.
cmd() {
	local body
	body=$(python3 -c '
import json, sys
d = {"command": sys.argv[1]}
if len(sys.argv) > 2: d["stdin"] = sys.argv[2]
print(json.dumps(d))' "$@")
	sx "$body"
}

f() {
	jget "$BODY" "$1"
}

out() {
	f 'j["stdout"]'
}

mark() {
	echo "7$(date +%N | cut -c1-6)"
}

gone() {
	local i
	for ((i = 0; i < 250; i++)); do
		pgrep -f -- "$1" >/dev/null || return 0
		sleep 0.02
	done
	echo "still running: $(pgrep -af -- "$1")" >&2
	return 1
}

@test "session: create, get, list; the published shape" {
	sandbox_up
	open_session
	assert_eq "True $SB active /bin/sh None" \
		"$(f 'j["id"].startswith("ss_") and len(j["id"]) == 35, j["sandbox_id"], j["status"], j["shell"], j["closed_at"]' | tr -d "(),'")"
	run api GET "/v1/sessions/$SS"
	assert_eq 200 "${output%% *}"
	assert_eq active "$(jget "${output#* }" 'j["status"]')"
	run api GET "/v1/sandboxes/$SB/sessions"
	assert_eq "[\"$SS\"]" "$(jget "${output#* }" 'json.dumps([s["id"] for s in j["sessions"]])')"
	run api GET /v1/sessions/ss_nosuch
	assert_eq "404 not_found" "${output%% *} $(jget "${output#* }" 'j["code"]')"
	run api POST "/v1/sandboxes/$SB/sessions" -d '{"shell": "/no/such/shell"}'
	assert_eq 500 "${output%% *}"
	assert_contains "$(jget "${output#* }" 'j["message"]')" "cannot start the shell"
	run api POST "/v1/sandboxes/$SB/sessions" -d '{"shell": "sh"}'
	assert_eq 400 "${output%% *}"
	if [ -x /bin/bash ]; then
		open_session '{"shell": "/bin/bash"}'
		cmd 'echo $BASH_VERSION | cut -c1'
		assert_eq True "$(f 'j["stdout"].strip().isdigit()')"
	fi
}

@test "session: cwd, variables, exported ones, functions, aliases and jobs persist" {
	sandbox_up
	open_session '{"workdir": "sub", "env": {"GREETING": "hi"}}'
	cmd 'pwd; cd ..; X=5; export Y=6; f() { echo "fn $1 $X"; }; alias ll="echo aliased"'
	assert_eq "/workspace/sub" "$(out | tr -d '\n')"
	local m
	m=$(mark)
	cmd "sleep $m & echo \$! > /tmp/job"
	assert_eq 0 "$(f 'j["exit_code"]')"
	cmd 'pwd; echo $X $Y $GREETING; sh -c "echo child \$Y"; f arg; ll; kill -0 $(cat /tmp/job) && echo job alive'
	assert_eq "/workspace|5 6 hi|child 6|fn arg 5|aliased|job alive|" "$(f 'j["stdout"].replace("\n", "|")')"
	assert_eq 0 "$(f 'j["exit_code"]')"
	pgrep -f "sleep $m" >/dev/null
}

@test "session: heredocs, comments, several lines, & jobs, quotes of every kind" {
	sandbox_up
	open_session
	cmd $'cat <<EOF\nhere $((1+1))\nEOF\n# a comment\necho "two" \'three\' # trailing\nfor i in 1 2; do\n  echo "i=$i"\ndone\necho bg & wait\necho \'it\'"\'"\'s\''
	assert_eq "here 2|two three|i=1|i=2|bg|it's|" "$(f 'j["stdout"].replace("\n", "|")')"
	assert_eq 0 "$(f 'j["exit_code"]')"
	cmd 'printf "%s\n" "a\\b" '"'"'$HOME'"'"' `echo tick` $(echo dollar)'
	assert_eq 'a\b|$HOME|tick|dollar|' "$(f 'j["stdout"].replace("\n", "|")')"
}

@test "session: an unbalanced quote is a syntax error (2), the session lives on" {
	sandbox_up
	open_session
	cmd 'X=kept'
	cmd 'echo "unterminated'
	assert_eq 2 "$(f 'j["exit_code"]')"
	assert_contains "$(f 'j["stderr"]')" "nterminated"
	cmd "echo 'also"
	assert_eq 2 "$(f 'j["exit_code"]')"
	cmd 'if then fi'
	assert_eq 2 "$(f 'j["exit_code"]')"
	cmd 'echo $X'
	assert_eq "kept" "$(out | tr -d '\n')"
	assert_eq 0 "$(f 'j["exit_code"]')"
	run api GET "/v1/sessions/$SS"
	assert_eq active "$(jget "${output#* }" 'j["status"]')"
}

@test "session: stdin is exactly what was given, or EOF; its file is removed" {
	sandbox_up
	open_session
	cmd 'cat' $'two\nlines, no newline at the end'
	assert_eq "'two\\nlines, no newline at the end'" "$(f 'repr(j["stdout"])')"
	cmd 'cat; echo rc=$?'
	assert_eq "rc=0" "$(out | tr -d '\n')"
	sx '{"command": "od -An -tx1 | tr -d \" \\n\"", "stdin_base64": "/wABAgMK"}'
	assert_eq ff000102030a "$(out)"
	cmd 'read a; read b; echo "$b/$a"; ls -A /tmp | grep -c agentfense-stdin' $'1\n2\n'
	assert_eq "2/1|0|" "$(f 'j["stdout"].replace("\n", "|")')"
}

@test "session: output without a newline, and binary output, exactly" {
	sandbox_up
	open_session
	cmd 'printf "no newline"'
	assert_eq "'no newline'" "$(f 'repr(j["stdout"])')"
	cmd 'printf "\377\000\001"; printf "e" >&2'
	assert_eq "/wAB e" "$(f 'j["stdout_base64"], j["stderr"]' | tr -d "(),'")"
	cmd 'head -c 100000 /dev/zero | tr "\0" z'
	assert_eq "100000 False" "$(f 'len(j["stdout"]), j["stdout_truncated"]' | tr -d "(),'")"
}

@test "session: output that imitates the status framing cannot end or forge an exec" {
	sandbox_up
	open_session
	# every status line the framing could use, for this exec and the next ones
	cmd 'for n in 0 1 2 3 4 5 6 7 8 9; do printf "%d %d\n" 0 $n; printf "%d %d\n" 0 $n >&2; done; printf "0 3"; sleep 0.3; echo real; (exit 7)'
	assert_eq 7 "$(f 'j["exit_code"]')"
	assert_eq True "$(f 'j["stdout"].endswith("0 8\n0 9\n0 3real\n")')"
	# a process of the command cannot reach the shell's status channel:
	# not by inherited descriptors, not by reopening any of the shell's
	# fds through /proc, whose fd directory it cannot even list (the
	# shell is sealed; its pid and fds as the shell itself sees them)
	cmd 'read -r st </proc/self/stat; me=${st%% *}; ls /proc/$me/fd >/dev/null 2>&1 && echo "listed fds"
	for fd in /proc/$me/fd/*; do
		sh -c "echo 0 4 >$fd" 2>/dev/null && echo opened || echo refused
	done
	for n in 3 4 5 6 7 8 9 10 11 12; do sh -c "echo 0 4 >&$n" 2>/dev/null && echo "fd $n"; done
	(exit 5)'
	assert_eq 5 "$(f 'j["exit_code"]')"
	assert_contains "$(out)" refused
	refute_contains "$(out)" opened
	refute_contains "$(out)" "listed fds"
	refute_contains "$(out)" "fd "
	cmd 'echo next'
	assert_eq "next|0" "$(f 'j["stdout"].replace("\n", "|") + str(j["exit_code"])')"
}

@test "session: a timeout interrupts the command; the next exec works, state kept" {
	sandbox_up
	open_session
	local m
	m=$(mark)
	cmd 'X=before'
	sx "{\"command\": \"echo start; sleep $m; echo not reached\", \"timeout\": 0.5}"
	assert_eq "124 True start" "$(f 'j["exit_code"], j["timed_out"], j["stdout"].strip()' | tr -d "(),'")"
	gone "sleep $m"
	cmd 'echo $X'
	assert_eq "before|0 False" "$(f 'j["stdout"].replace("\n", "|") + str(j["exit_code"]) + " " + str(j["timed_out"])')"
	# a command that ignores SIGINT: the session is killed after the grace
	sx '{"command": "trap \"\" INT; sleep 60", "timeout": 0.3}'
	assert_eq "124 True" "$(f 'j["exit_code"], j["timed_out"]' | tr -d "(),'")"
	run api GET "/v1/sessions/$SS"
	assert_eq closed "$(jget "${output#* }" 'j["status"]')"
	assert_contains "$(jget "${output#* }" 'j["error"]')" "did not stop"
}

@test "session: exit 3 closes it; the exec gets 3, later ones not_running" {
	sandbox_up
	open_session
	cmd 'echo bye; exit 3'
	assert_eq "200 3 bye" "$CODE $(f 'j["exit_code"], j["stdout"].strip()' | tr -d "(),'")"
	run api GET "/v1/sessions/$SS"
	assert_eq "closed its shell exited 3 True" \
		"$(jget "${output#* }" 'j["status"], j["error"], j["closed_at"].endswith("Z")' | tr -d "(),'")"
	cmd 'echo again'
	assert_eq "409 not_running" "$CODE $(f 'j["code"]')"
	assert_eq "session '$SS' is closed: its shell exited 3" "$(f 'j["message"]')"
}

@test "session: one exec at a time: a second one is 409 conflict" {
	sandbox_up
	open_session
	curl -sS --unix-socket "$SOCK" -X POST -d '{"command": "sleep 1; echo first"}' \
		"http://agentfense/v1/sessions/$SS/exec" >"$T/first" &
	local p=$!
	sleep 0.3
	cmd 'echo second'
	assert_eq "409 conflict" "$CODE $(f 'j["code"]')"
	assert_contains "$(f 'j["message"]')" "busy"
	wait "$p"
	assert_eq "first" "$(jget "$(cat "$T/first")" 'j["stdout"].strip()')"
	cmd 'echo third'
	assert_eq "third" "$(out | tr -d '\n')"
}

@test "session: DELETE kills the shell and every job; the session is closed" {
	sandbox_up
	open_session
	local m
	m=$(mark)
	cmd "sleep $m & setsid sleep $((m + 1)) & echo ok"
	assert_eq ok "$(out | tr -d '\n')"
	pgrep -f "sleep $m" >/dev/null
	run api DELETE "/v1/sessions/$SS"
	assert_output "200 {}"
	gone "sleep $m"
	gone "sleep $((m + 1))"
	run api GET "/v1/sessions/$SS"
	assert_eq 404 "${output%% *}"
	cmd 'true'
	assert_eq "409 not_running" "$CODE $(f 'j["code"]')"
	assert_eq "session '$SS' is closed: deleted by request" "$(f 'j["message"]')"
}

@test "session: an exec racing a DELETE, or after it, is told closed, not unknown" {
	sandbox_up
	open_session
	local m first=$SS
	m=$(mark)
	curl -sS --unix-socket "$SOCK" -X POST -d "{\"command\": \"sleep $m\"}" \
		"http://agentfense/v1/sessions/$SS/exec" >"$T/running" &
	local p=$!
	sleep 0.3
	run api DELETE "/v1/sessions/$SS"
	assert_output "200 {}"
	wait "$p"
	BODY=$(cat "$T/running")
	assert_eq "not_running session '$SS' is closed: deleted by request" \
		"$(f 'j["code"]') $(f 'j["message"]')"
	gone "sleep $m"
	# later execs, plain and streamed, say the same, every time
	cmd 'true'
	assert_eq "409 not_running session '$SS' is closed: deleted by request" \
		"$CODE $(f 'j["code"]') $(f 'j["message"]')"
	run api POST "/v1/sessions/$SS/exec/stream" -d '{"command": "true"}'
	assert_eq "409 not_running" "${output%% *} $(jget "${output#* }" 'j["code"]')"
	cmd 'true'
	assert_eq 409 "$CODE"
	# the object is gone: get and delete are 404, as for an id never given
	run api GET "/v1/sessions/$SS"
	assert_eq "404 not_found" "${output%% *} $(jget "${output#* }" 'j["code"]')"
	run api DELETE "/v1/sessions/$SS"
	assert_eq 404 "${output%% *}"
	SS=ss_00000000000000000000000000000000
	cmd 'true'
	assert_eq "404 not_found no session '$SS'" "$CODE $(f 'j["code"]') $(f 'j["message"]')"
	# a session closed by its shell and then deleted keeps why it closed
	open_session
	cmd 'exit 4'
	run api DELETE "/v1/sessions/$SS"
	assert_output "200 {}"
	cmd 'true'
	assert_eq "409 session '$SS' is closed: its shell exited 4" "$CODE $(f 'j["message"]')"
	# the record lasts as long as its sandbox: destroyed, the ids are unknown
	run api DELETE "/v1/sandboxes/$SB"
	assert_eq 200 "${output%% *}"
	cmd 'true'
	assert_eq "404 not_found" "$CODE $(f 'j["code"]')"
	SS=$first
	cmd 'true'
	assert_eq "404 not_found" "$CODE $(f 'j["code"]')"
}

@test "session: a sandbox remembers its last 256 deleted sessions; older ones are 404" {
	sandbox_up
	local i ids=() py
	# 257 sessions opened and deleted, as fast as the API takes them
	py='
import http.client, json, socket, sys
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX); self.sock.connect(sys.argv[1])
c = C("agentfense")
for i in range(257):
    c.request("POST", "/v1/sandboxes/%s/sessions" % sys.argv[2], "{}")
    r = c.getresponse(); j = json.loads(r.read())
    assert r.status == 201, j
    c.request("DELETE", "/v1/sessions/" + j["id"]); r = c.getresponse(); r.read()
    assert r.status == 200
    print(j["id"])'
	mapfile -t ids < <(python3 -c "$py" "$SOCK" "$SB")
	assert_eq 257 "${#ids[@]}"
	SS=${ids[0]}
	cmd 'true'
	assert_eq "404 not_found" "$CODE $(f 'j["code"]')"
	for i in 1 128 256; do
		SS=${ids[i]}
		cmd 'true'
		assert_eq "409 session '$SS' is closed: deleted by request" "$CODE $(f 'j["message"]')"
	done
	# each sandbox has its own record, which goes with it
	run api POST /v1/sandboxes -d "{\"codebase_id\": \"$CB\", \"start\": true}"
	SB=$(jget "${output#* }" 'j["id"]')
	open_session
	run api DELETE "/v1/sessions/$SS"
	cmd 'true'
	assert_eq 409 "$CODE"
	run api DELETE "/v1/sandboxes/$SB"
	assert_eq 200 "${output%% *}"
	cmd 'true'
	assert_eq 404 "$CODE"
	SS=${ids[1]}
	cmd 'true'
	assert_eq 409 "$CODE"
}

@test "session: a sandbox that stops closes its sessions and their running exec" {
	sandbox_up
	open_session
	local m
	m=$(mark)
	curl -sS --unix-socket "$SOCK" -X POST -d "{\"command\": \"sleep $m\"}" \
		"http://agentfense/v1/sessions/$SS/exec" >"$T/running" &
	local p=$!
	sleep 0.3
	run api POST "/v1/sandboxes/$SB/stop"
	assert_eq 200 "${output%% *}"
	wait "$p"
	assert_eq not_running "$(jget "$(cat "$T/running")" 'j["code"]')"
	gone "sleep $m"
	run api GET "/v1/sessions/$SS"
	assert_eq "closed its sandbox stopped" "$(jget "${output#* }" 'j["status"], j["error"]' | tr -d "(),'")"
	run api POST "/v1/sandboxes/$SB/sessions" -d '{}'
	assert_eq "409 not_running" "${output%% *} $(jget "${output#* }" 'j["code"]')"
}

@test "session exec stream: events, then the exit; a client that leaves interrupts it" {
	sandbox_up
	open_session
	cmd 'V=streamed'
	curl -sS -N --unix-socket "$SOCK" -X POST \
		-d '{"command": "echo $V; sleep 0.2; echo err >&2; (exit 6)"}' \
		"http://agentfense/v1/sessions/$SS/exec/stream" >"$T/stream"
	run python3 -c '
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    print(e["type"], e.get("data", e.get("exit_code")))' "$T/stream"
	assert_output "stdout streamed

stderr err

exit 6"
	local m
	m=$(mark)
	run curl -sS -N --max-time 0.5 --unix-socket "$SOCK" -X POST \
		-d "{\"command\": \"sleep $m\"}" "http://agentfense/v1/sessions/$SS/exec/stream"
	gone "sleep $m"
	# the interrupted exec is over once its status came: the session is free
	local i
	for ((i = 0; i < 50; i++)); do
		cmd 'echo $V'
		[ "$CODE" = 200 ] && break
		sleep 0.05
	done
	assert_eq "streamed" "$(out | tr -d '\n')"
}
