#!/usr/bin/env bats
# serve_ops.bats - a sandbox's stop and destroy run off serve's loop:
# other clients are answered while a large delta syncs, requests on the
# sandbox in flight get their documented answers, a client that leaves
# or serve's SIGTERM does not cut the sync short, more destroys than
# run at once are queued.

load helper
load serve_helper

# field JSON-EXPR: the expression over the last reply's body.
field() {
	jget "${output#* }" "$1"
}

# WRITE: fields that let a sandbox write anywhere but the secrets.
WRITE=', "permissions": [{"pattern": "**", "permission": "write"}]'

# new_sandbox [FIELDS]: another running sandbox over $CB that may write
# (WRITE); SB is its id.
new_sandbox() {
	run api POST /v1/sandboxes -d "{\"codebase_id\": \"$CB\", \"start\": true$WRITE${1:-}}"
	[ "${output%% *}" = 201 ] || { echo "create failed: $output" >&2; return 1; }
	SB=$(jget "${output#* }" 'j["id"]')
}

# fill SB MB: an exec in SB writes MB MiB to /workspace/big.
fill() {
	run api POST "/v1/sandboxes/$1/exec" \
		-d "{\"command\": \"dd if=/dev/zero of=/workspace/big bs=1M count=$2 status=none && echo done\"}"
	assert_eq "200 done" "${output%% *} $(field 'j["stdout"].strip()')" || { echo "$output" >&2; return 1; }
}

# codebase_file NAME: the codebase's copy of NAME in the store.
codebase_file() {
	echo "$XDG_DATA_HOME/agentfense/codebases/$CB/files/$1"
}

# destroy_bg SB: DELETE it in the background; its reply goes to
# $T/destroy, its curl is DPID.
destroy_bg() {
	curl -sS --unix-socket "$SOCK" -X DELETE -o "$T/destroy" -w '%{http_code}' \
		"http://agentfense/v1/sandboxes/$1" >"$T/destroy.code" 2>"$T/destroy.err" &
	DPID=$!
}

# wait_operation SB OP: until GET shows the sandbox in operation OP.
wait_operation() {
	local i
	for ((i = 0; i < 500; i++)); do
		run api GET "/v1/sandboxes/$1"
		[ "${output%% *}" = 200 ] && [ "$(field 'j.get("operation")')" = "$2" ] && return 0
		sleep 0.01
	done
	echo "sandbox $1 never showed operation $2: $output" >&2
	return 1
}

@test "destroy syncs off the loop: version, an exec on another sandbox and GET answer first" {
	start_sandbox "$WRITE"
	local a=$SB
	new_sandbox
	local b=$SB
	fill "$a" 1000
	destroy_bg "$a"
	wait_operation "$a" destroying
	assert_eq "stopped" "$(field 'j["status"]')"
	# the rest of serve answers while the sync runs, and requests on the
	# sandbox in flight are refused (their replies checked below, so that
	# nothing slow comes between them and the destroy's)
	local version other start stop again exec file
	version=$(api GET /v1/version)
	other=$(api POST "/v1/sandboxes/$b/exec" -d '{"command": "echo other"}')
	start=$(api POST "/v1/sandboxes/$a/start")
	stop=$(api POST "/v1/sandboxes/$a/stop")
	again=$(api DELETE "/v1/sandboxes/$a")
	exec=$(api POST "/v1/sandboxes/$a/exec" -d '{"command": "true"}')
	file=$(api GET "/v1/sandboxes/$a/files/README.md")
	# all of that came before the destroy's reply
	kill -0 "$DPID"
	[ ! -s "$T/destroy" ]
	assert_eq 200 "${version%% *}"
	output=$other
	assert_eq "200 other" "${output%% *} $(field 'j["stdout"].strip()')"
	output=$start
	assert_eq "409 conflict sandbox '$a' is destroying" \
		"${output%% *} $(field 'j["code"]') $(field 'j["message"]')"
	output=$stop
	assert_eq "409 conflict" "${output%% *} $(field 'j["code"]')"
	output=$again
	assert_eq "409 conflict" "${output%% *} $(field 'j["code"]')"
	output=$exec
	assert_eq "409 not_running" "${output%% *} $(field 'j["code"]')"
	output=$file
	assert_eq "409 not_running" "${output%% *} $(field 'j["code"]')"
	wait "$DPID"
	assert_eq 200 "$(cat "$T/destroy.code")"
	assert_eq "synced 1 0 0 None []" \
		"$(jget "$(cat "$T/destroy")" '" ".join(map(str, [j["delta"]["fate"], j["delta"]["written"], j["delta"]["deleted"], j["delta"]["conflicts"], j["delta"]["path"], j["delta"]["notes"]]))')"
	assert_eq 1048576000 "$(stat -c %s "$(codebase_file big)")"
	run api GET "/v1/sandboxes/$a"
	assert_eq 404 "${output%% *}"
	[ ! -e "$XDG_DATA_HOME/agentfense/sandboxes/$a.json" ]
	run api GET "/v1/sandboxes/$b"
	assert_eq "200 running None" "${output%% *} $(field 'j["status"]') $(field 'j["operation"]')"
}

@test "a client that leaves during a destroy does not cut it short" {
	start_sandbox "$WRITE"
	local a=$SB
	fill "$a" 600
	# the client gives up long before the sync can end
	run curl -sS --max-time 0.2 --unix-socket "$SOCK" -X DELETE "http://agentfense/v1/sandboxes/$a"
	assert_eq 28 "$status"
	wait_operation "$a" destroying
	local i
	for ((i = 0; i < 1000; i++)); do
		run api GET "/v1/sandboxes/$a"
		[ "${output%% *}" = 404 ] && break
		sleep 0.02
	done
	assert_eq 404 "${output%% *}"
	assert_eq 629145600 "$(stat -c %s "$(codebase_file big)")"
	[ ! -e "$XDG_DATA_HOME/agentfense/sandboxes/$a.json" ]
	[ -z "$(ls "$RUNS")" ]
	run api GET /v1/version
	assert_eq 200 "${output%% *}"
}

@test "serve's SIGTERM waits for a destroy under way, then ends" {
	start_sandbox "$WRITE"
	local a=$SB
	new_sandbox ', "on_destroy": "discard"'
	local b=$SB
	fill "$a" 300
	destroy_bg "$a"
	wait_operation "$a" destroying
	stop_serve
	wait "$DPID" || true
	assert_eq 314572800 "$(stat -c %s "$(codebase_file big)")"
	[ ! -e "$XDG_DATA_HOME/agentfense/sandboxes/$a.json" ]
	# the other sandbox got serve's SIGTERM fate as before
	start_serve
	run api GET "/v1/sandboxes/$b"
	assert_eq "200 stopped" "${output%% *} $(field 'j["status"]')"
	run api GET "/v1/sandboxes/$a"
	assert_eq 404 "${output%% *}"
}

@test "more destroys than run at once are queued, each answered with its own report" {
	start_sandbox "$WRITE"
	local ids=() i
	ids+=("$SB")
	for ((i = 1; i < 6; i++)); do
		new_sandbox
		ids+=("$SB")
	done
	for ((i = 0; i < 6; i++)); do
		run api POST "/v1/sandboxes/${ids[i]}/exec" \
			-d "{\"command\": \"dd if=/dev/zero of=/workspace/f$i bs=1M count=100 status=none\"}"
		assert_eq 200 "${output%% *}"
	done
	local pids=()
	for ((i = 0; i < 6; i++)); do
		curl -sS --unix-socket "$SOCK" -X DELETE -o "$T/d$i" \
			"http://agentfense/v1/sandboxes/${ids[i]}" &
		pids+=($!)
	done
	# the last one waits its turn (or syncs) while serve answers
	wait_operation "${ids[5]}" destroying
	run api GET /v1/version
	assert_eq 200 "${output%% *}"
	for ((i = 0; i < 6; i++)); do
		wait "${pids[i]}"
		assert_eq "synced 1" "$(jget "$(cat "$T/d$i")" 'j["delta"]["fate"] + " " + str(j["delta"]["written"])')"
		assert_eq 104857600 "$(stat -c %s "$(codebase_file "f$i")")"
	done
	run api GET /v1/sandboxes
	assert_eq "200 0" "${output%% *} $(field 'len(j["sandboxes"])')"
}

@test "stop: the reply is the stopped sandbox, no operation under way; it starts again" {
	start_sandbox "$WRITE"
	run api POST "/v1/sandboxes/$SB/stop"
	assert_eq "200 stopped None" "${output%% *} $(field 'j["status"]') $(field 'j["operation"]')"
	run api POST "/v1/sandboxes/$SB/stop"
	assert_eq "200 stopped" "${output%% *} $(field 'j["status"]')"
	run api POST "/v1/sandboxes/$SB/start"
	assert_eq "200 running" "${output%% *} $(field 'j["status"]')"
	run api POST "/v1/sandboxes/$SB/exec" -d '{"command": "echo again"}'
	assert_eq "200 again" "${output%% *} $(field 'j["stdout"].strip()')"
}
