#!/usr/bin/env bats
# The sandbox around the command: exit codes, timeout, signals,
# environment, namespaces, the minimal read-only root, the network, and
# nothing left behind.

load helper

now_ms() {
	echo $(( $(date +%s%N) / 1000000 ))
}

@test "exit status is the command's own" {
	run af run --changes discard "$P" -- sh -c 'exit 7'
	assert_status 7
	run af run --changes discard "$P" -- true
	assert_status 0
	assert_output ""
	run af run --changes discard "$P" -- false
	assert_status 1
}

@test "stdin, stdout and stderr are the command's" {
	run --separate-stderr af run --changes discard "$P" -- sh -c 'cat; echo err >&2' <<<"from stdin"
	assert_status 0
	assert_output "from stdin"
	assert_eq "err" "$stderr"
}

@test "arguments reach the command unchanged" {
	run af run --changes discard "$P" -- printf '[%s]\n' 'a b' '' '--' '-e' '$HOME' '*'
	assert_status 0
	assert_output '[a b]
[]
[--]
[-e]
[$HOME]
[*]'
}

@test "timeout: exit 124, promptly after the grace, even if the command ignores SIGTERM" {
	local t0 t1
	t0=$(now_ms)
	run --separate-stderr af run --changes discard -t 0.3 --kill-after 0.5 "$P" -- sh -c 'trap "" TERM INT HUP; sleep 30'
	t1=$(now_ms)
	assert_status 124
	[ $((t1 - t0)) -lt 3000 ]
	assert_contains "$stderr" "timed out"
}

@test "timeout: a command that finishes in time is not affected" {
	run af run --changes discard -t 5 "$P" -- sh -c 'exit 3'
	assert_status 3
}

@test "killed by a signal: 128+N" {
	run af run --changes discard "$P" -- sh -c 'kill -USR1 $$'
	assert_status 138
	run af run --changes discard "$P" -- sh -c 'kill -KILL $$'
	assert_status 137
	run af run --changes discard "$P" -- sh -c 'kill -SEGV $$'
	assert_status 139
}

@test "cannot execute: 126; not found: 127" {
	run --separate-stderr af run --changes discard "$P" -- /workspace/README.md
	assert_status 126
	assert_contains "$stderr" "/workspace/README.md"
	run --separate-stderr af run --changes discard "$P" -- /workspace/src
	assert_status 126
	run --separate-stderr af run --changes discard "$P" -- af-no-such-command
	assert_status 127
	assert_contains "$stderr" "'af-no-such-command'"
	run --separate-stderr af run --changes discard "$P" -- /workspace/nope
	assert_status 127
	run --separate-stderr af run --changes discard "$P" -- /workspace/.env
	assert_status 127
}

@test "the host environment is not inherited; --env is applied" {
	AF_SECRET_TEST=1 run --separate-stderr af run --changes discard -e K=V -e 'WITH=a=b c' "$P" -- env
	assert_status 0
	refute_contains "$output" AF_SECRET_TEST
	refute_contains "$output" AF_TEST_MARK
	refute_contains "$output" XDG_STATE_HOME
	refute_contains "$output" BATS
	grep -qx 'K=V' <<<"$output"
	grep -qx 'WITH=a=b c' <<<"$output"
	grep -qx 'HOME=/tmp' <<<"$output"
	grep -qE '^PATH=(.*:)?/usr/bin(:.*)?$' <<<"$output"
	grep -qE '^PATH=(.*:)?/bin(:.*)?$' <<<"$output"
	[ "${#lines[@]}" -le 12 ]
}

@test "--env can override the defaults" {
	run af run --changes discard -e HOME=/workspace -e PATH=/bin "$P" -- sh -c 'echo $HOME $PATH'
	assert_status 0
	assert_output "/workspace /bin"
}

@test "identity: same uid and gid, own hostname, new pid namespace" {
	run af run --changes discard "$P" -- sh -c 'id -u; id -g; uname -n; echo $$; cat /proc/1/status | grep ^PPid'
	assert_status 0
	assert_output "$(id -u)
$(id -g)
agentfense
$(sed -n 4p <<<"$output")
PPid:	0"
	[ "${lines[3]}" -lt 10 ]
}

@test "no capabilities, no_new_privs" {
	run af run --changes discard "$P" -- sh -c 'grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):" /proc/self/status'
	assert_status 0
	assert_output "CapInh:	0000000000000000
CapPrm:	0000000000000000
CapEff:	0000000000000000
CapBnd:	0000000000000000
CapAmb:	0000000000000000
NoNewPrivs:	1"
}

@test "/workspace is the project and the default working directory" {
	run af run --changes discard "$P" -- sh -c 'pwd; cat README.md; cat /workspace/src/main.c'
	assert_status 0
	assert_output "/workspace
hello agentfense
int main(void) { return 0; }"
}

@test "-w sets the working directory" {
	run af run --changes discard -w /workspace/src "$P" -- sh -c 'pwd; ls'
	assert_status 0
	assert_output "/workspace/src
lib
main.c"
}

@test "-w into a missing or hidden directory fails without running the command" {
	run --separate-stderr af run --changes discard -w /workspace/nope "$P" -- sh -c 'echo ran'
	[ "$status" -ne 0 ]
	refute_contains "$output" ran
	assert_contains "$stderr" "/workspace/nope"
	run --separate-stderr af run --changes discard -w /workspace/secrets "$P" -- sh -c 'echo ran'
	[ "$status" -ne 0 ]
	refute_contains "$output" ran
}

@test "the root is read-only and minimal" {
	run inside -- 'touch /x; mkdir /newdir; touch /usr/x; touch /etc/x; echo x > /bin/x; ls /; echo x > /dev/null && head -c 4 /dev/zero | wc -c; find /dev -type b | wc -l'
	assert_status 0
	assert_contains "$output" "touch: cannot touch '/x': Read-only file system
mkdir: cannot create directory '/newdir': Read-only file system
touch: cannot touch '/usr/x': Read-only file system
touch: cannot touch '/etc/x': Read-only file system
sh: 1: cannot create /bin/x: Read-only file system"
	[ "${lines[-2]}" = 4 ]
	[ "${lines[-1]}" = 0 ]
}

@test "the host's home, /root, /tmp and /run are not visible" {
	printf 'host tmp\n' >"$T/host-tmp-file"
	run inside -- "ls -A /tmp; ls -d '$HOME' '$T' 2>&1; for d in /home /root /run /var/run; do [ -e \$d ] && ls -A \$d; done; true"
	assert_status 0
	assert_output "ls: cannot access '$HOME': No such file or directory
ls: cannot access '$T': No such file or directory"
}

@test "--net none: only loopback, the host's loopback services unreachable" {
	python3 - "$T/port" <<'EOF' &
import http.server, os, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"host-service\n")
    def log_message(self, *a):
        pass
srv = http.server.HTTPServer(("127.0.0.1", 0), H)
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
srv.timeout = 0.1
for _ in range(100):
    srv.handle_request()
EOF
	local srv=$! i port
	for i in $(seq 100); do [ -e "$T/port" ] && break; sleep 0.02; done
	port=$(cat "$T/port")
	local client='
import socket, sys, urllib.request
print(" ".join(n for i, n in socket.if_nameindex()))
try:
    print(urllib.request.urlopen("http://127.0.0.1:%s/" % sys.argv[1], timeout=2).read().decode(), end="")
except OSError as e:
    print(type(getattr(e, "reason", e)).__name__)
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
c = socket.create_connection(s.getsockname(), timeout=2)
print("loopback ok")
'
	run af run --changes discard "$P" -- python3 -c "$client" "$port"
	assert_status 0
	assert_output "lo
ConnectionRefusedError
loopback ok"
	run af run --changes discard --net none "$P" -- python3 -c "$client" "$port"
	assert_status 0
	assert_output "lo
ConnectionRefusedError
loopback ok"
	run af run --changes discard --net host "$P" -- python3 -c "$client" "$port"
	assert_status 0
	[ "${lines[1]}" = host-service ]
	[ "${lines[2]}" = "loopback ok" ]
	kill "$srv" 2>/dev/null || true
	wait "$srv" || true
}

@test "SIGTERM to agentfense reaches the command, and its changes still sync" {
	bg_af "$T/out" run "$P" -- sh -c 'trap "echo got-term > /workspace/output/term; exit 3" TERM; echo ready; while :; do sleep 0.05; done'
	wait_for_line "$T/out" ready
	kill -TERM "$BG_PID"
	local st=0
	wait "$BG_PID" || st=$?
	[ "$st" = 3 ]
	[ "$(cat "$P/output/term")" = got-term ]
}

@test "SIGINT to agentfense reaches the command" {
	AF_TEST_MARK="$T" env --default-signal=INT "$AGENTFENSE" run "$P" -- sh -c 'trap "echo got-int > /workspace/output/int; exit 4" INT; echo ready; while :; do sleep 0.05; done' >"$T/out" 2>&1 &
	BG_PID=$!
	BG_PIDS+=" $BG_PID"
	wait_for_line "$T/out" ready
	kill -INT "$BG_PID"
	local st=0
	wait "$BG_PID" || st=$?
	[ "$st" = 4 ]
	[ "$(cat "$P/output/int")" = got-int ]
}

@test "a command killed by a forwarded SIGTERM gives 143" {
	bg_af "$T/out" run --changes discard "$P" -- sh -c 'echo ready; sleep 30'
	wait_for_line "$T/out" ready
	kill -TERM "$BG_PID"
	local st=0
	wait "$BG_PID" || st=$?
	[ "$st" = 143 ]
}

@test "kill -9 of agentfense leaves no process and no mount" {
	local before kids
	before=$(tree_sig "$P")
	bg_af "$T/out" run -p development "$P" -- sh -c 'echo changed > /workspace/README.md; echo ready; sleep 30'
	wait_for_line "$T/out" ready
	kids=$(descendants "$BG_PID")
	[ -n "$kids" ]
	kill -KILL "$BG_PID"
	wait "$BG_PID" || true
	wait_gone $kids
	[ -z "$(af_leftovers)" ]
	[ "$(grep -c fuse /proc/self/mountinfo || true)" = "$FUSE_MOUNTS_BEFORE" ]
	assert_eq "$before" "$(tree_sig "$P")"
}

@test "background processes die with the command; run returns at once" {
	local t0 t1
	t0=$(now_ms)
	run af run --changes discard "$P" -- sh -c 'sleep 30 & (setsid sleep 31 &) ; nohup sleep 32 >/dev/null 2>&1 & echo started'
	t1=$(now_ms)
	assert_status 0
	assert_output "started"
	[ $((t1 - t0)) -lt 3000 ]
	[ -z "$(af_leftovers)" ]
}

@test "a command that closes its stdout still finishes" {
	run af run --changes discard "$P" -- sh -c 'exec >&- 2>&-; sleep 0.1; exit 5'
	assert_status 5
}

@test "many sandboxes in a row leave nothing behind" {
	local i
	for i in 1 2 3 4 5; do
		run af run --changes discard "$P" -- cat /workspace/README.md
		assert_status 0
		assert_output "hello agentfense"
	done
	[ -z "$(af_leftovers)" ]
}
