#!/usr/bin/env bats
# serve.bats - agentfense serve: the socket, HTTP handling, limits,
# signals and the idle exit, against a real serve run as this user.

load helper
load serve_helper

@test "GET /v1/version gives the version and the protocol's features" {
	start_serve
	run api GET /v1/version
	assert_output '200 {"version":"0.1.0","api_version":"v1","features":["codebases","codebase_files","file_upload","file_download","tar_upload","ndjson_streams","sandboxes","sandbox_files","presets","exec","exec_stream","sessions","session_stream"]}'
	run curl -sS --unix-socket "$SOCK" -o /dev/null -w '%{content_type}' http://x/v1/version
	assert_output 'application/json'
}

@test "the socket is 0600 in a 0700 directory of the user's" {
	start_serve
	assert_eq "srw------- $(id -u)" "$(stat -c '%A %u' "$SOCK")"
	assert_eq "drwx------ $(id -u)" "$(stat -c '%A %u' "${SOCK%/*}")"
}

@test "without XDG_RUNTIME_DIR the socket is in a private /tmp/agentfense-UID" {
	local d=/tmp/agentfense-$(id -u)
	# (shared with other runs of this user: only test it when unused)
	if [ -S "$d/agentfense.sock" ]; then
		skip "another serve of this user runs on '$d/agentfense.sock'"
	fi
	unset XDG_RUNTIME_DIR
	SOCK=$d/agentfense.sock
	start_serve --idle-exit 30
	assert_eq "drwx------ $(id -u)" "$(stat -c '%A %u' "$d")"
	run api GET /v1/version
	assert_eq 200 "${output%% *}"
	stop_serve
	[ ! -e "$SOCK" ]
	rm -f "$SOCK.lock"
	rmdir "$d" 2>/dev/null || true
}

@test "a socket directory others may enter is refused" {
	mkdir -m 755 "$XDG_RUNTIME_DIR/agentfense"
	run --separate-stderr af serve
	assert_error 125 "refusing socket directory '$XDG_RUNTIME_DIR/agentfense': mode 0755 lets others in"
	[ ! -e "$SOCK" ]
	# a symbolic link to a private directory is not taken either
	rmdir "$XDG_RUNTIME_DIR/agentfense"
	mkdir -m 700 "$T/elsewhere"
	ln -s "$T/elsewhere" "$XDG_RUNTIME_DIR/agentfense"
	run --separate-stderr af serve
	assert_error 125 "refusing socket directory '$XDG_RUNTIME_DIR/agentfense': not a directory"
	[ -z "$(ls -A "$T/elsewhere")" ]
}

@test "a peer of another uid is refused; the owner gets in" {
	command -v newuidmap >/dev/null ||
		skip "newuidmap (Debian package uidmap) is needed to act as another uid"
	grep -q "^$(id -un):" /etc/subuid ||
		skip "user $(id -un) has no subordinate uids in /etc/subuid"
	# a socket in a directory everyone may enter, so that only the
	# SO_PEERCRED check stands between the other uid and serve
	local d
	d=$(mktemp -d /tmp/agentfense-peer.XXXXXX)
	chmod 755 "$d"
	SOCK=$d/s.sock
	start_serve --socket "$SOCK"
	chmod 666 "$SOCK"
	run unshare --user --map-users=auto --map-groups=auto --setuid 1 --setgid 1 \
		sh -c 'id -u; curl -sS --unix-socket "$1" -w " %{http_code}" http://x/v1/version' sh "$SOCK"
	local out=$output st=$status
	run api GET /v1/version
	stop_serve
	rm -rf "$d"
	assert_eq 200 "${output%% *}"
	output=$out status=$st
	assert_status 0
	assert_output '1
{"code":"permission_denied","message":"this agentfense serve belongs to another user"}
 403'
}

@test "unknown routes, wrong methods, bad JSON and wrong types get 4xx with a code" {
	start_serve
	run api GET /v1/nope
	assert_output "404 {\"code\":\"not_found\",\"message\":\"no route '/v1/nope'\"}"
	run api GET /
	assert_output "404 {\"code\":\"not_found\",\"message\":\"no route '/'\"}"
	run api DELETE /v1/version
	assert_output "405 {\"code\":\"method_not_allowed\",\"message\":\"DELETE is not allowed on '/v1/version' (allowed: GET)\"}"
	run api PUT /v1/codebases
	assert_output "405 {\"code\":\"method_not_allowed\",\"message\":\"PUT is not allowed on '/v1/codebases' (allowed: GET, POST)\"}"
	run api POST /v1/codebases -d '{"name": '
	assert_output '400 {"code":"invalid_argument","message":"the body is not valid JSON"}'
	run api POST /v1/codebases -d '["name"]'
	assert_output '400 {"code":"invalid_argument","message":"the body must be a JSON object"}'
	run api POST /v1/codebases -d '{"name": 5}'
	assert_output "400 {\"code\":\"invalid_argument\",\"message\":\"field 'name' must be a string\"}"
	run api POST /v1/codebases -d '{"name": "x", "labels": {"a": 1}}'
	assert_output "400 {\"code\":\"invalid_argument\",\"message\":\"field 'labels' must be an object of strings\"}"
	run api POST /v1/codebases -d '{"name": "x", "ignore_patterns": "*.o"}'
	assert_output "400 {\"code\":\"invalid_argument\",\"message\":\"field 'ignore_patterns' must be an array of strings\"}"
	run api POST /v1/codebases -d '{"name": "x", "max_file_size": -1}'
	assert_output "400 {\"code\":\"invalid_argument\",\"message\":\"field 'max_file_size' must be a positive whole number of bytes\"}"
	run api POST /v1/codebases -d '{"owner_id": "u"}'
	assert_output "400 {\"code\":\"invalid_argument\",\"message\":\"field 'name' is required\"}"
	run api GET '/v1/codebases?owner_id=%zz'
	assert_output '400 {"code":"invalid_argument","message":"malformed query string"}'
	# the server is still there for everyone
	run api GET /v1/version
	assert_eq 200 "${output%% *}"
}

@test "malformed HTTP gets 400 and a close; other clients are not affected" {
	start_serve
	run python3 "$HTTPRAW" send "$SOCK" 'GARBAGE\r\n\r\n'
	assert_output 'HTTP/1.1 400 Bad Request
Content-Type: application/json
Content-Length: 60
Connection: close

{"code":"invalid_argument","message":"invalid HTTP method"}
<closed>'
	run python3 "$HTTPRAW" send "$SOCK" 'GET /v1/version HTTP/1.1\r\nContent-Length: x\r\n\r\n'
	assert_contains "$output" 'HTTP/1.1 400 Bad Request'
	assert_contains "$output" '"code":"invalid_argument"'
	assert_contains "$output" '<closed>'
	# a NUL in the request line
	run python3 "$HTTPRAW" send "$SOCK" 'GET /v1/ver\x00sion HTTP/1.1\r\n\r\n'
	assert_contains "$output" 'HTTP/1.1 400 Bad Request'
	assert_contains "$output" '<closed>'
	# half a request, then the client stops sending
	run python3 "$HTTPRAW" send "$SOCK" 'GET /v1/version HTTP/1.1\r\nHost: x\r\n' --shut
	assert_contains "$output" '{"code":"invalid_argument","message":"incomplete request"}'
	assert_contains "$output" '<closed>'
	run api GET /v1/version
	assert_eq 200 "${output%% *}"
}

@test "keep-alive: a reply given before the request's body is read says close" {
	start_serve
	# refused from the headers alone (no such sandbox, no such codebase):
	# the body stays unread and the connection ends, so the reply must
	# not invite the client to send its next request on it
	local path
	for path in /v1/sandboxes/sb_nobody/files/x /v1/codebases/cb_nobody/files/x; do
		run python3 "$HTTPRAW" send "$SOCK" "PUT $path HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\ny"
		assert_contains "$output" 'HTTP/1.1 404 Not Found'
		assert_contains "$output" 'Connection: close'
		assert_contains "$output" '<closed>'
	done
	# a bodyless request answered the same way keeps its connection
	run python3 "$HTTPRAW" send "$SOCK" 'GET /v1/sandboxes/sb_nobody/files/x HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/version HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
	assert_contains "$output" 'HTTP/1.1 404 Not Found'
	assert_contains "$output" 'Connection: keep-alive'
	assert_contains "$output" 'HTTP/1.1 200 OK'
}

@test "keep-alive: pipelined requests on one connection are answered in order" {
	start_serve
	run python3 "$HTTPRAW" send "$SOCK" 'GET /v1/nope HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/version HTTP/1.1\r\nHost: x\r\n\r\nGET /v1/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
	assert_status 0
	run grep -a '^HTTP/1.1\|^{' <<<"$output"
	assert_output "HTTP/1.1 404 Not Found
{\"code\":\"not_found\",\"message\":\"no route '/v1/nope'\"}
HTTP/1.1 200 OK
{\"version\":\"0.1.0\",\"api_version\":\"v1\",\"features\":[\"codebases\",\"codebase_files\",\"file_upload\",\"file_download\",\"tar_upload\",\"ndjson_streams\",\"sandboxes\",\"sandbox_files\",\"presets\",\"exec\",\"exec_stream\",\"sessions\",\"session_stream\"]}
HTTP/1.1 404 Not Found
{\"code\":\"not_found\",\"message\":\"no route '/v1/x'\"}"
}

@test "an oversize header gets 431, an oversize body 413" {
	start_serve
	local big
	big=$(head -c 20000 /dev/zero | tr '\0' a)
	run api GET /v1/version -H "X-Big: $big"
	assert_output '431 {"code":"resource_exhausted","message":"request header too large"}'
	# a long URL counts too
	run api GET "/v1/$big"
	assert_output '431 {"code":"resource_exhausted","message":"request header too large"}'
	# a JSON body over 1 MiB, declared
	head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' ' ' >"$T/big.json"
	run api POST /v1/codebases --data-binary @"$T/big.json"
	assert_output '413 {"code":"resource_exhausted","message":"request body too large"}'
	# the same, chunked (no length given in advance)
	run api POST /v1/codebases -H 'Transfer-Encoding: chunked' --data-binary @"$T/big.json"
	assert_output '413 {"code":"resource_exhausted","message":"request body too large"}'
	run api GET /v1/version
	assert_eq 200 "${output%% *}"
}

@test "an upload over --max-upload gets 413 and leaves nothing behind" {
	start_serve --max-upload 1000
	new_codebase '{"name": "up"}'
	head -c 1000 /dev/urandom >"$T/ok.bin"
	head -c 1001 /dev/urandom >"$T/big.bin"
	run api PUT "/v1/codebases/$CB/files/ok.bin" --data-binary @"$T/ok.bin"
	assert_eq 200 "${output%% *}"
	run api PUT "/v1/codebases/$CB/files/big.bin" --data-binary @"$T/big.bin"
	assert_output '413 {"code":"resource_exhausted","message":"request body too large"}'
	run api PUT "/v1/codebases/$CB/files/big2.bin" -H 'Transfer-Encoding: chunked' --data-binary @"$T/big.bin"
	assert_output '413 {"code":"resource_exhausted","message":"upload too large"}'
	run ls -A "$XDG_DATA_HOME/agentfense/codebases/$CB/files"
	assert_output 'ok.bin'
}

@test "connections over --max-connections get 503" {
	start_serve --max-connections 2
	python3 "$HTTPRAW" hold "$SOCK" 2 3 >"$T/hold.out" &
	local holder=$!
	wait_for_line "$T/hold.out" 'held 2'
	run api GET /v1/version
	assert_output '503 {"code":"resource_exhausted","message":"too many connections"}'
	wait "$holder"
	# the held ones were served normally (nothing sent, nothing received)
	assert_eq '<none> open
<none> open' "$(tail -n 2 "$T/hold.out")"
	run api GET /v1/version
	assert_eq 200 "${output%% *}"
}

@test "a slow client does not block others and is closed after --client-timeout" {
	start_serve --client-timeout 1
	python3 "$HTTPRAW" slow "$SOCK" 5 >"$T/slow.out" &
	local slow=$!
	wait_for_line "$T/slow.out" sent
	local i
	for i in 1 2 3; do
		run api GET /v1/version
		assert_eq 200 "${output%% *}"
	done
	wait "$slow"
	assert_eq 'sent
closed after 1' "$(cat "$T/slow.out")"
}

@test "a client that does not read a large download does not block others" {
	start_serve --client-timeout 2
	new_codebase '{"name": "dl"}'
	head -c $((32 * 1024 * 1024)) /dev/urandom >"$T/big.bin"
	run api PUT "/v1/codebases/$CB/files/big.bin" --data-binary @"$T/big.bin"
	assert_eq 200 "${output%% *}"
	# asks for 32 MiB and reads nothing
	python3 - "$SOCK" "$CB" >"$T/stall.out" <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(sys.argv[1])
s.sendall(b"GET /v1/codebases/%s/files/big.bin HTTP/1.1\r\nHost: x\r\n\r\n" % sys.argv[2].encode())
print("asked", flush=True)
time.sleep(4)
n = 0
s.settimeout(2)
try:
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        n += len(b)
except (socket.timeout, ConnectionResetError):
    pass
print("cut" if n < 32 * 1024 * 1024 else "complete")
EOF
	local stall=$!
	wait_for_line "$T/stall.out" asked
	run api GET /v1/version
	assert_eq 200 "${output%% *}"
	# a reader that keeps up gets the whole file
	curl -sS --unix-socket "$SOCK" -o "$T/got.bin" "http://x/v1/codebases/$CB/files/big.bin"
	cmp "$T/big.bin" "$T/got.bin"
	wait "$stall"
	assert_eq 'asked
cut' "$(cat "$T/stall.out")"
}

@test "SIGTERM and SIGINT remove the socket and exit 0" {
	local sig
	for sig in TERM INT; do
		start_serve
		kill -"$sig" "$SERVE_PID"
		status=0
		wait "$SERVE_PID" || status=$?
		assert_status 0
		SERVE_PID=
		[ ! -e "$SOCK" ]
		assert_eq '' "$(cat "$T/serve.log")"
	done
}

@test "a second serve on a live socket is refused with the first one's pid" {
	start_serve
	run --separate-stderr af serve
	assert_error 125 "another agentfense serve (pid $SERVE_PID) is listening on '$SOCK'"
	# the first one still serves
	run api GET /v1/version
	assert_eq 200 "${output%% *}"
	# also through --socket naming the same path
	run --separate-stderr af serve --socket "$SOCK"
	assert_error 125 "pid $SERVE_PID"
}

@test "a stale socket left by a killed serve is replaced" {
	start_serve
	kill -KILL "$SERVE_PID"
	wait "$SERVE_PID" || true
	SERVE_PID=
	[ -S "$SOCK" ]
	run curl -sS --unix-socket "$SOCK" http://x/v1/version
	assert_status 7
	start_serve
	# the stale socket is there before the new one: give serve (slow
	# under a sanitizer) a moment to replace it
	local i
	for ((i = 0; i < 100; i++)); do
		run api GET /v1/version
		[ "${output%% *}" = 200 ] && break
		sleep 0.05
	done
	assert_eq 200 "${output%% *}"
	# something that is not a socket is never removed
	stop_serve
	echo data >"$SOCK"
	run --separate-stderr af serve
	assert_error 125 "'$SOCK' exists and is not a socket"
	assert_eq data "$(cat "$SOCK")"
}

@test "--socket PATH serves there; bad values are usage errors" {
	start_serve --socket "$T/my.sock"
	assert_eq "srw-------" "$(stat -c '%A' "$T/my.sock")"
	SOCK=$T/my.sock run api GET /v1/version
	assert_eq 200 "${output%% *}"
	run --separate-stderr af serve --socket "$T/$(head -c 120 /dev/zero | tr '\0' s)"
	assert_error 125 "is longer than 107 bytes"
	run --separate-stderr af serve --idle-exit 0
	assert_error 125 "invalid value '0' for --idle-exit"
	run --separate-stderr af serve --max-connections x
	assert_error 125 "invalid value 'x' for --max-connections"
	run --separate-stderr af serve extra
	assert_error 125 "unexpected argument 'extra'"
}

@test "--idle-exit ends serve after that long without clients, not while one is connected" {
	start_serve --idle-exit 1
	python3 "$HTTPRAW" hold "$SOCK" 1 2.5 >"$T/hold.out" &
	local holder=$!
	wait_for_line "$T/hold.out" 'held 1'
	sleep 1.5
	kill -0 "$SERVE_PID"
	wait "$holder"
	local t0=$SECONDS
	status=0
	wait "$SERVE_PID" || status=$?
	assert_status 0
	[ $((SECONDS - t0)) -le 3 ]
	SERVE_PID=
	[ ! -e "$SOCK" ]
}

@test "load: 16 clients x 100 keep-alive requests, all answered, time-capped" {
	start_serve
	run --separate-stderr python3 "$HTTPRAW" load "$SOCK" 16 100 30
	assert_status 0
	assert_output 'ok 1600'
	run api GET /v1/version
	assert_eq 200 "${output%% *}"
}
