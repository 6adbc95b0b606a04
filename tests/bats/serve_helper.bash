# serve_helper.bash - starting and talking to `agentfense serve` in the
# serve and codebase tests.  Loaded after helper.bash.
#
# Each test gets its own runtime directory (the socket) and data
# directory (the store) inside its temporary directory; teardown stops
# the serve the test started and then runs the usual checks (nothing
# left running).

HTTPRAW=$BATS_TEST_DIRNAME/../tools/httpraw.py

setup() {
	af_setup
	export XDG_RUNTIME_DIR=$T/rt XDG_DATA_HOME=$T/data
	mkdir -m 700 "$XDG_RUNTIME_DIR"
	SOCK=$XDG_RUNTIME_DIR/agentfense/agentfense.sock
	SERVE_PID=
}

teardown() {
	local rc=0
	stop_serve || rc=1
	af_teardown || rc=1
	return $rc
}

# start_serve [OPTION...]: start serve in the background and wait for its
# socket; SERVE_PID is its pid, $T/serve.log its output.
start_serve() {
	local i sock=$SOCK a
	for a in "$@"; do
		[ "${prev:-}" = --socket ] && sock=$a
		prev=$a
	done
	bg_af "$T/serve.log" serve "$@"
	SERVE_PID=$BG_PID
	for ((i = 0; i < 250; i++)); do
		[ -S "$sock" ] && return 0
		kill -0 "$SERVE_PID" 2>/dev/null || break
		sleep 0.02
	done
	echo "serve did not start:" >&2
	cat "$T/serve.log" >&2
	return 1
}

# stop_serve: SIGTERM to the serve of this test and wait for it; fails
# unless it exits 0 without a word (a sanitizer report, a leak at exit).
stop_serve() {
	local st=0
	if [ -n "${SERVE_PID:-}" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
		kill -TERM "$SERVE_PID"
		wait "$SERVE_PID" || st=$?
	fi
	SERVE_PID=
	if [ "$st" != 0 ] || grep -q . "$T/serve.log" 2>/dev/null; then
		echo "serve exited with status $st; its output:" >&2
		cat "$T/serve.log" >&2
		return 1
	fi
}

# api METHOD PATH [CURL-ARG...]: one request; prints "STATUS BODY" (the
# body's trailing newline dropped).
api() {
	local m=$1 p=$2
	shift 2
	local body
	body=$(curl -sS --unix-socket "$SOCK" -X "$m" -o "$T/body" -w '%{http_code}' \
		"$@" "http://agentfense$p") || return 1
	printf '%s %s\n' "$body" "$(cat "$T/body")"
}

# jget JSON EXPR: a Python expression over the parsed JSON `j`.
jget() {
	python3 -c 'import json, sys; j = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}

# new_codebase JSON: create one; CB is its id.
new_codebase() {
	run api POST /v1/codebases -d "$1"
	[ "${output%% *}" = 200 ] || { echo "create failed: $output" >&2; return 1; }
	CB=$(jget "${output#* }" 'j["id"]')
}

# start_sandbox [FIELDS]: serve, a codebase of $T/proj and a running
# sandbox over it, FIELDS (such as ', "preset": "x"') added to the body
# that creates it; SB is its id.
start_sandbox() {
	start_serve
	new_codebase "{\"name\": \"p\", \"source_path\": \"$T/proj\"}"
	run api POST /v1/sandboxes -d "{\"codebase_id\": \"$CB\", \"start\": true${1:-}}"
	[ "${output%% *}" = 201 ] || { echo "sandbox failed: $output" >&2; return 1; }
	SB=$(jget "${output#* }" 'j["id"]')
}
