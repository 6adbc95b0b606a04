#!/usr/bin/env bats
# serve_exec.bats - exec and exec stream in a running sandbox through
# serve: exact results, stdin, env, workdir, timeouts that kill a whole
# process tree, output caps, binary output, stream events, clients that
# leave or read too slowly, a bounded load, and the host's git identity.

load helper
load serve_helper

# sandbox_up: serve, a codebase of $T/proj and a running sandbox over
# it; SB is its id.
sandbox_up() {
	mkdir -p "$T/proj/sub/deeper"
	echo hello >"$T/proj/a.txt"
	start_sandbox
}

# ex JSON: POST it to the sandbox's exec; CODE is the status, BODY the reply.
ex() {
	run api POST "/v1/sandboxes/$SB/exec" -d "$1"
	CODE=${output%% *}
	BODY=${output#* }
}

# f EXPR: an expression over BODY (j).
f() {
	jget "$BODY" "$1"
}

# mark: a number no other test uses, for `sleep MARK` to be found by.
mark() {
	echo "7$(date +%N | cut -c1-6)"
}

# running PATTERN: the processes whose command line matches.
running() {
	pgrep -f -- "$1" || true
}

# gone PATTERN [SECONDS]: wait up to 5 s (or SECONDS) for no process to match.
gone() {
	local i
	for ((i = 0; i < ${2:-5} * 50; i++)); do
		[ -z "$(running "$1")" ] && return 0
		sleep 0.02
	done
	echo "still running: $(pgrep -af -- "$1")" >&2
	return 1
}

@test "exec: stdout, stderr and the exit code, exactly" {
	sandbox_up
	ex '{"command": "echo out; echo err >&2; cat a.txt; pwd; exit 3"}'
	assert_eq 200 "$CODE"
	assert_eq "out|hello|/workspace|" "$(f 'j["stdout"].replace("\n", "|")')"
	assert_eq "err|" "$(f 'j["stderr"].replace("\n", "|")')"
	assert_eq 3 "$(f 'j["exit_code"]')"
	assert_eq "False 0 False False" \
		"$(f 'j["timed_out"], j["signal"], j["stdout_truncated"], j["stderr_truncated"]' | tr -d '(),')"
	assert_eq "echo out; echo err >&2; cat a.txt; pwd; exit 3" "$(f 'j["command"]')"
	assert_eq True "$(f 'j["duration"].endswith("s") and 0 < j["duration_ms"] < 10000')"
	assert_eq False "$(f '"stdout_base64" in j or "stderr_base64" in j')"
}

@test "exec: argv as given; not found is 127 and says so; not executable 126" {
	sandbox_up
	ex '{"argv": ["printf", "%s|", "a b", "$HOME", "*"]}'
	assert_eq 200 "$CODE"
	assert_eq 'a b|$HOME|*|' "$(f 'j["stdout"]')"
	assert_eq 'printf %s| a b $HOME *' "$(f 'j["command"]')"
	ex '{"argv": ["no-such-command-x"]}'
	assert_eq 127 "$(f 'j["exit_code"]')"
	assert_eq "agentfense: 'no-such-command-x': command not found" "$(f 'j["stderr"].strip()')"
	ex '{"command": "no-such-command-x"}'
	assert_eq 127 "$(f 'j["exit_code"]')"
	assert_contains "$(f 'j["stderr"]')" "no-such-command-x"
	ex '{"argv": ["/workspace/a.txt"]}'
	assert_eq 126 "$(f 'j["exit_code"]')"
	assert_contains "$(f 'j["stderr"]')" "cannot run '/workspace/a.txt'"
	# a working directory that does not exist: 125, and why
	ex '{"command": "pwd", "workdir": "no/such/dir"}'
	assert_eq 125 "$(f 'j["exit_code"]')"
	assert_contains "$(f 'j["stderr"]')" "no/such/dir"
}

@test "exec: stdin, stdin_base64, env merged over the sandbox's, workdir" {
	sandbox_up
	ex '{"command": "cat; echo; wc -c", "stdin": "line1\nline2"}'
	assert_eq "line1|line2|0|" "$(f 'j["stdout"].replace("\n", "|")')"
	# binary stdin comes through byte for byte
	ex '{"command": "od -An -tx1 | tr -d \" \\n\"", "stdin_base64": "/wABAgM="}'
	assert_eq ff00010203 "$(f 'j["stdout"]')"
	# without stdin the command reads EOF at once
	ex '{"command": "cat; echo rc=$?", "timeout": 5}'
	assert_eq "rc=0" "$(f 'j["stdout"].strip()')"
	ex '{"command": "echo $FOO:$BAR; command -v sh", "env": {"FOO": "x y", "BAR": "2"}}'
	assert_eq "x y:2|/usr/bin/sh|" "$(f 'j["stdout"].replace("\n", "|").replace("|/bin/sh|", "|/usr/bin/sh|")')"
	ex '{"command": "pwd", "workdir": "sub/deeper"}'
	assert_eq /workspace/sub/deeper "$(f 'j["stdout"].strip()')"
	ex '{"command": "pwd", "workdir": "/tmp"}'
	assert_eq /tmp "$(f 'j["stdout"].strip()')"
	ex '{"command": "pwd", "workdir": "/workspace/sub"}'
	assert_eq /workspace/sub "$(f 'j["stdout"].strip()')"
}

@test "exec: a workdir out of /workspace, a symlink out, bad bodies are refused" {
	mkdir -p "$T/proj"
	ln -s / "$T/proj/out"
	sandbox_up
	ex '{"command": "pwd", "workdir": "../.."}'
	assert_eq 400 "$CODE"
	assert_eq invalid_argument "$(f 'j["code"]')"
	assert_contains "$(f 'j["message"]')" "workdir '../..'"
	ex '{"command": "pwd", "workdir": "sub/../../etc"}'
	assert_eq 400 "$CODE"
	# a symbolic link leading out of /workspace is not followed: the
	# command is not started (125) and says why
	ex '{"command": "pwd", "workdir": "out/etc"}'
	assert_eq "200 125 " "$CODE $(f 'j["exit_code"], j["stdout"]' | tr -d "(),'")"
	assert_contains "$(f 'j["stderr"]')" "cannot change to working directory '/workspace/out/etc'"
	ex '{"command": "x", "argv": ["y"]}'
	assert_eq "400 invalid_argument" "$CODE $(f 'j["code"]')"
	ex '{}'
	assert_eq "400 invalid_argument" "$CODE $(f 'j["code"]')"
	ex '{"argv": []}'
	assert_eq 400 "$CODE"
	ex '{"command": "x", "timeout": "soon"}'
	assert_eq 400 "$CODE"
	ex '{"command": "x", "env": {"A=B": "c"}}'
	assert_eq 400 "$CODE"
	ex '{"command": "x", "stdin_base64": "!!"}'
	assert_eq 400 "$CODE"
	ex '[1]'
	assert_eq 400 "$CODE"
	# argv and environment over 256 KiB
	python3 -c 'import json; print(json.dumps({"argv": ["echo", "x" * 300000]}))' >"$T/big"
	run api POST "/v1/sandboxes/$SB/exec" --data-binary "@$T/big"
	assert_eq "413 payload_too_large" "${output%% *} $(jget "${output#* }" 'j["code"]')"
	run api GET "/v1/sandboxes/$SB/exec"
	assert_eq 405 "${output%% *}"
	run api POST /v1/sandboxes/sb_nosuch/exec -d '{"command": "true"}'
	assert_eq 404 "${output%% *}"
	assert_eq not_found "$(jget "${output#* }" 'j["code"]')"
}

@test "exec: a sandbox that is not running is 409 not_running" {
	sandbox_up
	run api POST "/v1/sandboxes/$SB/stop"
	assert_eq 200 "${output%% *}"
	ex '{"command": "true"}'
	assert_eq "409 not_running" "$CODE $(f 'j["code"]')"
	run api POST "/v1/sandboxes/$SB/exec/stream" -d '{"command": "true"}'
	assert_eq 409 "${output%% *}"
}

@test "exec: a timeout kills the whole tree (background, setsid), 124, the sandbox lives on" {
	sandbox_up
	local m1 m2 m3
	m1=$(mark) m2=$((m1 + 1)) m3=$((m1 + 2))
	ex "{\"command\": \"sleep $m1 & setsid sh -c 'sleep $m2' & (sleep $m3 &) ; echo started; sleep 100\", \"timeout\": \"0.5s\"}"
	assert_eq 200 "$CODE"
	assert_eq "124 True started" "$(f 'j["exit_code"], j["timed_out"], j["stdout"].strip()' | tr -d "(),'")"
	gone "sleep $m1"
	gone "sleep $m2"
	gone "sleep $m3"
	ex '{"command": "echo still here"}'
	assert_eq "still here" "$(f 'j["stdout"].strip()')"
	assert_eq False "$(f 'j["timed_out"]')"
}

@test "exec: output past max_output is cut and flagged, the command still finishes" {
	sandbox_up
	ex '{"command": "head -c 300000 /dev/zero | tr \"\\0\" a; echo e >&2; echo done >&2", "max_output": 1000}'
	assert_eq 200 "$CODE"
	assert_eq "1000 True False 0" \
		"$(f 'len(j["stdout"]), j["stdout_truncated"], j["stderr_truncated"], j["exit_code"]' | tr -d '(),')"
	assert_eq "e|done|" "$(f 'j["stderr"].replace("\n", "|")')"
	ex '{"command": "echo x", "max_output": "1k"}'
	assert_eq "x False" "$(f 'j["stdout"].strip(), j["stdout_truncated"]' | tr -d "(),'")"
}

@test "exec: binary output is given exactly in base64, with U+FFFD in the text" {
	sandbox_up
	ex '{"command": "printf \"\\377\\000\\001abc\"; printf \"\\342\\202\\254\" >&2"}'
	assert_eq 200 "$CODE"
	assert_eq /wABYWJj "$(f 'j["stdout_base64"]')"
	assert_eq "'\\ufffd\\x00\\x01abc'" "$(f 'ascii(j["stdout"])')"
	# valid UTF-8 (the euro sign) needs no base64
	assert_eq "€ False" "$(f 'j["stderr"], "stderr_base64" in j' | tr -d "(),'")"
}

# stream JSON [CURL-ARG...]: exec/stream; EVENTS is one line per event
# (type, then data or the exit fields).
stream() {
	local body=$1
	shift
	curl -sS -N --unix-socket "$SOCK" -X POST -d "$body" "$@" \
		"http://agentfense/v1/sandboxes/$SB/exec/stream" >"$T/stream" || true
	EVENTS=$(python3 -c '
import json, sys
for line in open(sys.argv[1], "rb"):
    e = json.loads(line)
    t = e["type"]
    if t in ("stdout", "stderr"):
        print(t, repr(e.get("data", "")), repr(e.get("data_base64", "")))
    elif t == "exit":
        print(t, e["exit_code"], e["timed_out"], e["signal"], e["duration"].endswith("s"))
    else:
        print(t, e["code"], e["message"])
' "$T/stream")
}

# stdout_len: the length of all stdout data of the last stream.
stdout_len() {
	python3 -c '
import json, sys
print(sum(len(e.get("data", "")) for e in map(json.loads, open(sys.argv[1])) if e["type"] == "stdout"))
' "$T/stream"
}

@test "exec stream: events in order, then one exit event" {
	sandbox_up
	stream '{"command": "echo one; sleep 0.2; echo two >&2; sleep 0.2; echo three; exit 4"}'
	assert_eq "stdout 'one\\n' ''
stderr 'two\\n' ''
stdout 'three\\n' ''
exit 4 False 0 True" "$EVENTS"
	run curl -sS -o /dev/null -w '%{content_type}' --unix-socket "$SOCK" -X POST \
		-d '{"command": "true"}' "http://agentfense/v1/sandboxes/$SB/exec/stream"
	assert_output application/x-ndjson
}

@test "exec stream: a UTF-8 sequence is never split; bytes that are not UTF-8 come as base64" {
	sandbox_up
	stream '{"command": "printf \"\\342\\202\"; sleep 0.3; printf \"\\254!\\n\"; sleep 0.3; printf \"\\377\""}'
	assert_eq "stdout '€!\\n' ''
stdout '' '/w=='
exit 0 False 0 True" "$EVENTS"
	stream '{"command": "sleep 5", "timeout": 0.3}'
	assert_eq "exit 124 True 9 True" "$EVENTS"
	# a stream is capped only when asked
	stream '{"command": "head -c 300000 /dev/zero | tr \"\\0\" a", "max_output": 100}'
	assert_eq 100 "$(stdout_len)"
	grep -q '"type":"exit","exit_code":0,.*"stdout_truncated":true' "$T/stream"
	stream '{"command": "head -c 300000 /dev/zero | tr \"\\0\" a"}'
	assert_eq 300000 "$(stdout_len)"
}

@test "exec stream: a client that disconnects kills the command" {
	sandbox_up
	local m
	m=$(mark)
	run curl -sS -N --max-time 1 --unix-socket "$SOCK" -X POST \
		-d "{\"command\": \"echo started; sleep $m & sleep $((m + 1))\"}" \
		"http://agentfense/v1/sandboxes/$SB/exec/stream"
	assert_contains "$output" '{"type":"stdout","data":"started\n"}'
	gone "sleep $m"
	gone "sleep $((m + 1))"
	# the same for a plain exec whose client leaves
	run curl -sS --max-time 0.5 --unix-socket "$SOCK" -X POST \
		-d "{\"command\": \"sleep $((m + 2))\"}" "http://agentfense/v1/sandboxes/$SB/exec"
	gone "sleep $((m + 2))"
	ex '{"command": "echo ok"}'
	assert_eq ok "$(f 'j["stdout"].strip()')"
}

@test "exec stream: a reader too slow is cut off and its command killed" {
	sandbox_up
	local m
	m=$(mark)
	# a client that asks for endless output (some 6 MB/s, so the cap of
	# 16 MiB is reached in seconds) and never reads it
	python3 - "$SOCK" "$SB" "$m" <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(sys.argv[1])
body = ('{"command": ": marker-%s; while :; do head -c 65536 /dev/zero | tr \\"\\\\0\\" y; '
        'sleep 0.01; done"}' % sys.argv[3])
s.sendall(('POST /v1/sandboxes/%s/exec/stream HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s'
           % (sys.argv[2], len(body), body)).encode())
time.sleep(30)
EOF
	local py=$!
	local i
	for ((i = 0; i < 100; i++)); do
		[ -n "$(running "marker-$m")" ] && break
		sleep 0.05
	done
	[ -n "$(running "marker-$m")" ]
	gone "marker-$m" 20
	kill "$py"
	wait "$py" || true
	run api GET /v1/version
	assert_eq 200 "${output%% *}"
}

@test "exec: 10 clients x 50 execs at once, every result exact (bounded load)" {
	sandbox_up
	run timeout 90 python3 - "$SOCK" "$SB" <<'EOF'
import json, socket, sys, threading, time
sock, sb = sys.argv[1], sys.argv[2]
errors = []
def client(n):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    f = s.makefile('rb')
    for i in range(50):
        body = json.dumps({"command": "echo %d-%d; echo e%d >&2; exit %d" % (n, i, i, i % 7),
                           "stdin": "x" * i})
        s.sendall(('POST /v1/sandboxes/%s/exec HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s'
                   % (sb, len(body), body)).encode())
        status = f.readline()
        length = 0
        while True:
            h = f.readline()
            if h in (b'\r\n', b''):
                break
            if h.lower().startswith(b'content-length:'):
                length = int(h.split(b':')[1])
        r = json.loads(f.read(length))
        want = ("%d-%d\n" % (n, i), "e%d\n" % i, i % 7)
        if b' 200 ' not in status or (r["stdout"], r["stderr"], r["exit_code"]) != want:
            errors.append((n, i, status, r))
    s.close()
t0 = time.time()
ts = [threading.Thread(target=client, args=(n,)) for n in range(10)]
for t in ts: t.start()
for t in ts: t.join()
print("errors", len(errors), errors[:3])
print("execs/s %.0f" % (500 / (time.time() - t0)))
EOF
	assert_status 0
	assert_contains "$output" "errors 0 []"
	echo "# 500 execs from 10 clients: ${output##*execs/s } execs/s" >&3
}

# git_codebase: $T/proj a git repository with one commit, and the host's
# git identity (user.name and user.email, and things that must not
# cross: a credential helper, an alias) in the configuration git reads
# for the user.
git_codebase() {
	mkdir -p "$T/proj" "$XDG_CONFIG_HOME/git"
	echo hello >"$T/proj/a.txt"
	git -C "$T/proj" init -q -b main
	git -C "$T/proj" add -A
	git -C "$T/proj" -c user.name=t -c user.email=t@example.com commit -qm first
	local c=$XDG_CONFIG_HOME/git/config
	git config --file "$c" user.name "Ann Host"
	git config --file "$c" user.email ann@host.example
	git config --file "$c" credential.helper "store $SECRET_MARK"
	git config --file "$c" alias.pwn "!echo $SECRET_MARK"
}

@test "exec and sessions get the host's git identity; the exec's env wins; git_identity false" {
	git_codebase
	start_sandbox ', "preset": "development"'
	local show='git log -1 --format="%an <%ae> / %cn <%ce>"; env | grep ^GIT_ | sort; git config --get credential.helper; echo "helper=$?"'
	ex "$(python3 -c 'import json, sys; print(json.dumps({"command": sys.argv[1]}))' \
		"echo x >> a.txt && git commit -qam ident && $show")"
	assert_eq 200 "$CODE"
	assert_eq "0|Ann Host <ann@host.example> / Ann Host <ann@host.example>
GIT_AUTHOR_EMAIL=ann@host.example
GIT_AUTHOR_NAME=Ann Host
GIT_COMMITTER_EMAIL=ann@host.example
GIT_COMMITTER_NAME=Ann Host
helper=1
|" "$(f 'str(j["exit_code"]) + "|" + j["stdout"] + "|" + j["stderr"]')"
	run api GET "/v1/sandboxes/$SB"
	assert_eq "200 True" "${output%% *} $(jget "${output#* }" 'j["git_identity"]')"
	# an exec's env and a session's env win
	ex '{"command": "env | grep ^GIT_ | sort", "env": {"GIT_AUTHOR_NAME": "Other"}}'
	assert_eq "GIT_AUTHOR_EMAIL=ann@host.example|GIT_AUTHOR_NAME=Other|GIT_COMMITTER_EMAIL=ann@host.example|GIT_COMMITTER_NAME=Ann Host|" \
		"$(f 'j["stdout"].replace("\n", "|")')"
	run api POST "/v1/sandboxes/$SB/sessions" -d '{}'
	local ss
	ss=$(jget "${output#* }" 'j["id"]')
	run api POST "/v1/sessions/$ss/exec" -d '{"command": "git log -1 --format=%an; env | grep -c ^GIT_"}'
	assert_eq "Ann Host|4|" "$(jget "${output#* }" 'j["stdout"].replace("\n", "|")')"
	run api POST "/v1/sandboxes/$SB/sessions" -d '{"env": {"GIT_COMMITTER_EMAIL": "o@example.com"}}'
	ss=$(jget "${output#* }" 'j["id"]')
	run api POST "/v1/sessions/$ss/exec" -d '{"command": "echo $GIT_COMMITTER_EMAIL $GIT_AUTHOR_EMAIL"}'
	assert_eq "o@example.com ann@host.example" "$(jget "${output#* }" 'j["stdout"].strip()')"
	# stopped and started again, the sandbox still has it
	run api POST "/v1/sandboxes/$SB/stop"
	run api POST "/v1/sandboxes/$SB/start"
	assert_eq 200 "${output%% *}"
	ex '{"command": "echo $GIT_AUTHOR_NAME"}'
	assert_eq "Ann Host" "$(f 'j["stdout"].strip()')"
	# git_identity false: none of the variables; a commit needs its own
	run api POST /v1/sandboxes -d "{\"codebase_id\": \"$CB\", \"start\": true, \"git_identity\": false}"
	assert_eq "201 False" "${output%% *} $(jget "${output#* }" 'j["git_identity"]')"
	local off on=$SB
	off=$(jget "${output#* }" 'j["id"]')
	SB=$off
	ex '{"command": "echo \"[$GIT_AUTHOR_NAME]\"; env | grep -c ^GIT_"}'
	assert_eq "[]|0|" "$(f 'j["stdout"].replace("\n", "|")')"
	run api POST /v1/sandboxes -d "{\"codebase_id\": \"$CB\", \"git_identity\": \"no\"}"
	assert_eq "400 invalid_argument field 'git_identity' must be true or false" \
		"${output%% *} $(jget "${output#* }" 'j["code"] + " " + j["message"]')"
	# as git resolves them: the repository's own configuration wins
	git -C "$T/proj" config user.email "ann@project.example"
	new_codebase "{\"name\": \"q\", \"source_path\": \"$T/proj\"}"
	run api POST /v1/sandboxes -d "{\"codebase_id\": \"$CB\", \"start\": true}"
	SB=$(jget "${output#* }" 'j["id"]')
	ex '{"command": "echo \"$GIT_AUTHOR_NAME <$GIT_AUTHOR_EMAIL> <$GIT_COMMITTER_EMAIL>\""}'
	assert_eq "Ann Host <ann@project.example> <ann@project.example>" "$(f 'j["stdout"].strip()')"
	# the choice is in the record: a later serve keeps to it
	stop_serve
	start_serve
	for SB in "$on" "$off"; do
		run api POST "/v1/sandboxes/$SB/start"
		assert_eq 200 "${output%% *}"
	done
	SB=$on
	ex '{"command": "echo \"[$GIT_AUTHOR_NAME]\""}'
	assert_eq "[Ann Host]" "$(f 'j["stdout"].strip()')"
	SB=$off
	ex '{"command": "echo \"[$GIT_AUTHOR_NAME]\""}'
	assert_eq "[]" "$(f 'j["stdout"].strip()')"
}

@test "a git configuration that makes git on the host hang does not hang serve" {
	git_codebase
	# git reads its own stdout pipe as an included file: it waits forever
	printf '[include]\n\tpath = /proc/self/fd/1\n' >>"$T/proj/.git/config"
	start_serve
	new_codebase "{\"name\": \"p\", \"source_path\": \"$T/proj\"}"
	local t0=$SECONDS
	run api POST /v1/sandboxes -d "{\"codebase_id\": \"$CB\", \"start\": true}"
	assert_eq 201 "${output%% *}"
	SB=$(jget "${output#* }" 'j["id"]')
	(( SECONDS - t0 < 10 ))
	ex '{"command": "env | grep -c ^GIT_"}'
	assert_eq "0" "$(f 'j["stdout"].strip()')"
	! pgrep -f "git -C $XDG_DATA_HOME" >/dev/null
}
