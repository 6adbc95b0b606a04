#!/usr/bin/env bats
# escape_serve.bats - attacks on the long-lived sandboxes of serve from
# inside (a process started by an exec or a session) and from a client:
# forging a session's result, hanging the file routes with what the
# sandbox planted, leaving /workspace through them, and bodies that must
# not hurt serve.

load helper
load serve_helper

# sandbox_up: serve, a codebase of $T/proj and a running sandbox over it
# (preset $PRESET, agent-safe by default; on_destroy $ON_DESTROY, discard
# by default); SB is its id.
sandbox_up() {
	mkdir -p "$T/proj/sub"
	echo hello >"$T/proj/a.txt"
	start_sandbox ", \"preset\": \"${PRESET:-agent-safe}\", \"on_destroy\": \"${ON_DESTROY:-discard}\""
}

# cmd_json TEXT: {"command": TEXT} as JSON.
cmd_json() {
	python3 -c 'import json, sys; print(json.dumps({"command": sys.argv[1]}))' "$1"
}

# ex TEXT: exec TEXT in the sandbox; CODE, BODY.
ex() {
	run api POST "/v1/sandboxes/$SB/exec" -d "$(cmd_json "$1")"
	CODE=${output%% *}
	BODY=${output#* }
}

# sx TEXT: exec TEXT in the session SS; CODE, BODY.
sx() {
	run api POST "/v1/sessions/$SS/exec" -d "$(cmd_json "$1")"
	CODE=${output%% *}
	BODY=${output#* }
}

f() {
	jget "$BODY" "$1"
}

# fb EXPR: f over the last answer's body as api left it in $T/body (one
# too big for an argument)
fb() {
	python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$T/body" "$1"
}

@test "escape serve: a process of a session cannot take the shell's status socket and forge a later exec's result" {
	# The program copies every fd of its parent (the session's shell)
	# with pidfd_getfd(2), keeps the socket, leaves a daemon behind and
	# exits; the daemon answers "status 0" for the next exec.
	cat >"$T/proj/steal.py" <<'PY'
import ctypes, os, stat, sys, time
libc = ctypes.CDLL(None, use_errno=True)
pidfd = os.pidfd_open(os.getppid())
sock = -1
for n in range(64):
    fd = libc.syscall(438, pidfd, n, 0)  # pidfd_getfd
    if fd >= 0 and stat.S_ISSOCK(os.fstat(fd).st_mode):
        sock = fd
        break
print("socket" if sock >= 0 else "none", flush=True)
if sock < 0 or os.fork():
    sys.exit(0)
os.setsid()
if os.fork():
    os._exit(0)
null = os.open("/dev/null", os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
for _ in range(1000):
    os.write(sock, b"0 2\n")
    time.sleep(0.01)
PY
	sandbox_up
	run api POST "/v1/sandboxes/$SB/sessions" -d '{}'
	assert_eq 201 "${output%% *}"
	SS=$(jget "${output#* }" 'j["id"]')
	sx 'python3 steal.py'
	assert_eq 200 "$CODE"
	# exec 2 is the client's: its own output and status, whatever runs
	sx 'sleep 0.5; echo real; false'
	assert_eq 200 "$CODE"
	assert_eq "1 'real\n'" "$(f 'j["exit_code"], j["stdout"]' | tr -d '(),')"
}

@test "escape serve: a session's shell cannot be traced, read or robbed of its fds by its commands" {
	# the shell is the parent of a command it starts; every way in
	# without CAP_SYS_PTRACE, tried while the status socket is at fd 10
	cat >"$T/proj/reach.py" <<'PY'
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
sh = os.getppid()
# the shell's pid as /proc shows it (the sandbox's PID namespace)
proc_sh = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[1])
def err(r):
    return "OK" if r >= 0 else errno.errorcode[ctypes.get_errno()]
print("pid", sh, open("/proc/%d/cmdline" % proc_sh).read().strip("\0"))
# SEIZE first: where it works it does not stop the shell
print("seize", err(libc.ptrace(0x4206, sh, 0, 0)))  # PTRACE_SEIZE
print("ptrace", err(libc.ptrace(16, sh, 0, 0)))  # PTRACE_ATTACH
for f in ("mem", "fd/10", "fd/0", "environ", "fd"):
    try:
        os.close(os.open("/proc/%d/%s" % (proc_sh, f), os.O_RDONLY))
        print(f, "OK")
    except OSError as e:
        print(f, errno.errorcode[e.errno])
pidfd = os.pidfd_open(sh)
print("getfd", err(libc.pidfd_getfd(pidfd, 10, 0)))
class iovec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
buf = ctypes.create_string_buffer(8)
io = iovec(ctypes.cast(buf, ctypes.c_void_p), 8)
print("vm_read", err(libc.process_vm_readv(sh, ctypes.byref(io), 1, ctypes.byref(io), 1, 0)))
PY
	sandbox_up
	run api POST "/v1/sandboxes/$SB/sessions" -d '{}'
	assert_eq 201 "${output%% *}"
	SS=$(jget "${output#* }" 'j["id"]')
	sx 'x=kept; echo $$; python3 reach.py'
	assert_eq 200 "$CODE"
	local pid
	pid=$(f 'j["stdout"].split()[0]')
	assert_eq "$pid
pid $pid /bin/sh
seize EPERM
ptrace EPERM
mem EACCES
fd/10 EACCES
fd/0 EACCES
environ EACCES
fd EACCES
getfd EPERM
vm_read EPERM" "$(f 'j["stdout"].strip()')"
	assert_eq "0 ''" "$(f 'j["exit_code"], j["stderr"]' | tr -d '(),')"
	# the shell itself is untouched and works as before; its commands
	# are ordinary processes; the execute-only copy it runs from is not
	# among its fds (close-on-exec), only the framing's are
	sx 'echo $x; sleep 0.1 & wait $!; echo bg $?; cat /proc/self/status | grep -c "^Name:"
	read -r st </proc/self/stat; for f in /proc/${st%% *}/fd/*; do [ -e "$f" ] && printf "%s " "${f##*/}"; done'
	assert_eq "'kept\nbg 0\n1\n0 1 10 2 '" "$(f 'repr(j["stdout"])')"
}

@test "escape serve: a session's shell must be an ELF binary: a #! script is refused" {
	printf '#!/bin/sh\nexec /bin/sh "$@"\n' >"$T/proj/myshell"
	chmod +x "$T/proj/myshell"
	PRESET=full-access
	sandbox_up
	run api POST "/v1/sandboxes/$SB/sessions" -d '{"shell": "/workspace/myshell"}'
	assert_eq 500 "${output%% *}"
	assert_eq "cannot start the shell: cannot run '/workspace/myshell': not an ELF binary (a sealed program cannot be a #! script)" \
		"$(jget "${output#* }" 'j["message"]')"
	# an ELF shell copied into the project runs sealed as well
	ex 'cp /bin/sh ./mysh2 && chmod 755 mysh2 && echo ok'
	assert_eq "200 ok" "$CODE $(f 'j["stdout"].strip()')"
	run api POST "/v1/sandboxes/$SB/sessions" -d '{"shell": "/workspace/mysh2"}'
	assert_eq 201 "${output%% *}"
	SS=$(jget "${output#* }" 'j["id"]')
	sx 'echo $0; python3 -c "import ctypes, os; l = ctypes.CDLL(None, use_errno=True); print(l.ptrace(16, os.getppid(), 0, 0), ctypes.get_errno())"'
	assert_eq "'/workspace/mysh2\\n-1 1\\n'" "$(f 'repr(j["stdout"])')"
	# one the sandbox cannot read is executed as it is: the kernel seals
	# it (in /tmp: the view runs no execute-only file)
	ex 'cp /bin/sh /tmp/mysh3 && chmod 111 /tmp/mysh3 && { cat /tmp/mysh3 >/dev/null 2>&1 || echo unreadable; }'
	assert_eq "200 unreadable" "$CODE $(f 'j["stdout"].strip()')"
	run api POST "/v1/sandboxes/$SB/sessions" -d '{"shell": "/tmp/mysh3"}'
	assert_eq 201 "${output%% *}"
	SS=$(jget "${output#* }" 'j["id"]')
	sx 'echo $0; python3 -c "import ctypes, os; l = ctypes.CDLL(None, use_errno=True); print(l.ptrace(16, os.getppid(), 0, 0), ctypes.get_errno())"'
	assert_eq "'/tmp/mysh3\\n-1 1\\n'" "$(f 'repr(j["stdout"])')"
}

@test "escape serve: a PUT onto a FIFO the sandbox planted is refused at once, nothing reaches a reader" {
	PRESET=full-access
	sandbox_up
	ex 'mkfifo fifo && mkfifo fifo2 && ls -l fifo | cut -c1'
	assert_eq "200 p" "$CODE $(f 'j["stdout"].strip()')"
	# nobody reads the first: the request must not wait for a reader
	run timeout 10 curl -sS --unix-socket "$SOCK" -X PUT --data-binary secret \
		-o "$T/body" -w '%{http_code}' "http://agentfense/v1/sandboxes/$SB/files/fifo"
	assert_status 0
	assert_eq "400 'fifo' is not a regular file" "$output $(jget "$(cat "$T/body")" 'j["message"]')"
	# a reader waits on the second: it must not get the client's bytes
	curl -sS --unix-socket "$SOCK" -o "$T/reader" -d '{"command": "timeout 3 cat fifo2", "timeout": 10}' \
		"http://agentfense/v1/sandboxes/$SB/exec" &
	local reader=$!
	sleep 0.5
	run timeout 10 curl -sS --unix-socket "$SOCK" -X PUT --data-binary secret \
		-o "$T/body" -w '%{http_code}' "http://agentfense/v1/sandboxes/$SB/files/fifo2"
	assert_status 0
	assert_eq "400 'fifo2' is not a regular file" "$output $(jget "$(cat "$T/body")" 'j["message"]')"
	wait "$reader"
	assert_eq "''" "$(jget "$(cat "$T/reader")" 'repr(j["stdout"])')"
	# a regular file is still written, exactly
	run api PUT "/v1/sandboxes/$SB/files/sub/new.txt" --data-binary $'one\ntwo'
	assert_eq '200 {"path":"sub/new.txt","size":7}' "$output"
	ex 'cat sub/new.txt'
	assert_eq "'one\ntwo'" "$(f 'repr(j["stdout"])')"
}

@test "escape serve: files routes do not follow what the sandbox planted out of /workspace" {
	PRESET=full-access
	sandbox_up
	ex 'echo s >/tmp/secret; ln -s /tmp abs; ln -s ../../../../tmp rel; ln -s /proc/self/root/tmp magic; mkfifo fifo'
	assert_eq "200 0" "$CODE $(f 'j["exit_code"]')"
	local p
	for p in abs/secret rel/secret magic/secret; do
		run api GET "/v1/sandboxes/$SB/files/$p"
		assert_eq "400 '$p' leads out of /workspace through a symbolic link" \
			"${output%% *} $(jget "${output#* }" 'j["message"]')"
		run api PUT "/v1/sandboxes/$SB/files/$p" --data-binary x
		assert_eq 400 "${output%% *}"
	done
	run api GET "/v1/sandboxes/$SB/files?path=abs&recursive=true"
	assert_eq 400 "${output%% *}"
	ex 'cat /tmp/secret'
	assert_eq "s" "$(f 'j["stdout"].strip()')"
	# a FIFO is not read (nothing would ever come)
	run timeout 10 curl -sS --unix-socket "$SOCK" -o "$T/body" -w '%{http_code}' \
		"http://agentfense/v1/sandboxes/$SB/files/fifo"
	assert_eq "0 400" "$status $output"
	# paths out of /workspace in the URL or the query
	run api GET "/v1/sandboxes/$SB/files/..%2F..%2Fproc%2F1%2Fenviron"
	assert_eq 400 "${output%% *}"
	run api GET "/v1/sandboxes/$SB/files?path=/proc"
	assert_eq 400 "${output%% *}"
}

@test "escape serve: a bash session reads no startup file the sandbox planted in its HOME" {
	sandbox_up
	# bash sources ~/.bashrc when its stdin is a socket (as under sshd):
	# a planted one would redefine printf and answer for every exec
	ex 'cat >"$HOME/.bashrc" <<RC
echo RC-RAN >&2
printf() { builtin printf "0 2\n"; }
RC
cp "$HOME/.bashrc" "$HOME/.profile"; cp "$HOME/.bashrc" "$HOME/.bash_profile"; echo $HOME'
	assert_eq "200 /tmp" "$CODE $(f 'j["stdout"].strip()')"
	run api POST "/v1/sandboxes/$SB/sessions" -d '{"shell": "/bin/bash"}'
	assert_eq 201 "${output%% *}"
	SS=$(jget "${output#* }" 'j["id"]')
	sx 'echo hi; false'
	assert_eq "200 1 'hi\n' ''" "$CODE $(f 'j["exit_code"], j["stdout"], j["stderr"]' | tr -d '(),')"
}

@test "escape serve: a destroyed sandbox's planted .git and links out are held, not synced into the codebase" {
	PRESET=full-access ON_DESTROY=sync
	sandbox_up
	ex 'mkdir -p .git/hooks && printf "#!/bin/sh\necho pwned\n" >.git/hooks/pre-commit &&
chmod +x .git/hooks/pre-commit && ln -s /etc/passwd lnk && ln -s ../../../.. up && echo ok >b.txt'
	assert_eq "200 0" "$CODE $(f 'j["exit_code"]')"
	run api DELETE "/v1/sandboxes/$SB"
	assert_eq 200 "${output%% *}"
	BODY=${output#* }
	assert_eq "conflicts 1 3 .git:held lnk:held up:held" \
		"$(f '" ".join([j["delta"]["fate"], str(j["delta"]["written"]), str(j["delta"]["conflicts"])] + sorted(n["path"] + ":" + n["kind"] for n in j["delta"]["notes"]))')"
	local files
	files=$(echo "$XDG_DATA_HOME"/agentfense/codebases/"$CB"/files)
	assert_eq "no no no" "$(for p in .git lnk up; do [ -e "$files/$p" ] || [ -L "$files/$p" ] && echo yes || echo no; done | xargs)"
	assert_eq ok "$(cat "$files/b.txt")"
}

@test "escape serve: one sandbox reaches nothing of another's: /tmp, /dev/shm, abstract sockets" {
	sandbox_up
	local a=$SB
	run api POST /v1/sandboxes -d "{\"codebase_id\": \"$CB\", \"start\": true}"
	assert_eq 201 "${output%% *}"
	local b
	b=$(jget "${output#* }" 'j["id"]')
	# a session of the first keeps a listener on an abstract socket
	run api POST "/v1/sandboxes/$a/sessions" -d '{}'
	assert_eq 201 "${output%% *}"
	SS=$(jget "${output#* }" 'j["id"]')
	sx 'echo a >/tmp/mine; echo a >/dev/shm/mine
python3 -c "
import socket, time
s = socket.socket(socket.AF_UNIX)
s.bind(b\"\\0agentfense-probe\")
s.listen(1)
print(\"listening\", flush=True)
time.sleep(60)
" >/tmp/listener.log 2>&1 &
for i in 1 2 3 4 5 6 7 8 9 10; do grep -q listening /tmp/listener.log && break; sleep 0.2; done
python3 -c "
import socket
socket.socket(socket.AF_UNIX).connect(b\"\\0agentfense-probe\")
print(\"reached\")
"'
	assert_eq "200 reached" "$CODE $(f 'j["stdout"].strip()')"
	SB=$b
	ex 'cat /tmp/mine /dev/shm/mine 2>&1 | sed "s/^.*: //"
python3 -c "
import socket
try:
    socket.socket(socket.AF_UNIX).connect(b\"\\0agentfense-probe\")
    print(\"reached\")
except OSError as e:
    print(e.strerror)
"'
	assert_eq "No such file or directory|No such file or directory|Connection refused" \
		"$(f '"|".join(j["stdout"].split("\n")[:3])')"
}

@test "escape serve: a huge sparse file is refused by its size, nothing of it staged on the host" {
	PRESET=full-access
	sandbox_up
	ex 'truncate -s 1T /workspace/big && echo ok'
	[ "$CODE" = 200 ] && [ "$(f 'j["stdout"]')" = ok ] || { echo "$CODE $BODY" >&2; false; }
	before=$(du -sk "$XDG_DATA_HOME" | cut -f1)
	run api GET "/v1/sandboxes/$SB/files/big" --max-time 20
	[ "${output%% *}" = 413 ] || { echo "$output" >&2; false; }
	BODY=${output#* }
	[ "$(f 'j["code"]')" = payload_too_large ]
	[ "$(f 'j["message"]')" = "'big' is 1099511627776 bytes, over the 1073741824 bytes one read may return" ]
	after=$(du -sk "$XDG_DATA_HOME" | cut -f1)
	[ $((after - before)) -lt 1024 ]
	# a file under the cap still reads whole
	run api GET "/v1/sandboxes/$SB/files/a.txt"
	[ "$output" = "200 hello" ]
}

@test "escape serve: a file growing while it is read is cut off at the read cap" {
	mkdir -p "$T/proj"
	start_serve --max-upload 1M
	new_codebase "{\"name\": \"p\", \"source_path\": \"$T/proj\"}"
	run api POST /v1/sandboxes -d "{\"codebase_id\": \"$CB\", \"start\": true, \"preset\": \"full-access\", \"on_destroy\": \"discard\"}"
	SB=$(jget "${output#* }" 'j["id"]')
	run api POST "/v1/sandboxes/$SB/sessions" -d '{}'
	[ "${output%% *}" = 201 ]
	SS=$(jget "${output#* }" 'j["id"]')
	sx 'head -c 900000 /dev/zero >/workspace/grow; (for i in $(seq 200); do head -c 65536 /dev/zero; sleep 0.01; done) >>/workspace/grow & echo started'
	[ "$CODE" = 200 ]
	sleep 0.3
	run api GET "/v1/sandboxes/$SB/files/grow" --max-time 20
	[ "${output%% *}" = 413 ] || { echo "$output" >&2; false; }
	BODY=${output#* }
	[ "$(f 'j["code"]')" = payload_too_large ]
	# refused by its size, or cut off if it grew past the cap after that
	[[ "$(f 'j["message"]')" == "'grow' "*" the 1048576 bytes one read may return"* ]]
	run api DELETE "/v1/sessions/$SS"
	[ "${output%% *}" = 200 ]
}

@test "escape serve: a listing of a sandbox full of files is cut off at 100000 entries" {
	mkdir -p "$T/proj/many"
	(cd "$T/proj/many" && seq -f 'f%06.0f' 100050 | xargs touch)
	PRESET=full-access
	sandbox_up
	run api GET "/v1/sandboxes/$SB/files?path=many&recursive=true" --max-time 120
	[ "${output%% *}" = 200 ]
	[ "$(fb 'len(j["files"])')" = 100000 ]
	[ "$(fb 'j["truncated"]')" = True ]
	[ "$(fb 'j["files"][0]["path"]')" = many/f000001 ]
	# a listing that fits says nothing of it
	run api GET "/v1/sandboxes/$SB/files?path=sub"
	[ "$output" = '200 {"files":[]}' ]
}

@test "escape serve: a listing of very long paths is cut off before its reply passes the output limit" {
	# 16,500 files under a 3,800-byte directory path: far fewer entries
	# than the cap, a reply larger than the 16 MiB output limit
	d=$T/proj
	for i in $(seq 15); do d=$d/$(printf 'd%.0s' $(seq 250)); done
	mkdir -p "$d"
	(cd "$d" && seq -f 'f%05.0f' 18000 | xargs touch)
	PRESET=full-access
	sandbox_up
	run api GET "/v1/sandboxes/$SB/files?recursive=true" --max-time 120
	[ "${output%% *}" = 200 ] || { echo "${output:0:300}" >&2; false; }
	[ "$(fb 'j["truncated"]')" = True ]
	n=$(fb 'len(j["files"])')
	[ "$n" -gt 1000 ] && [ "$n" -lt 18000 ]
	[ "$(stat -c %s "$T/body")" -le $((16 << 20)) ]
}

@test "escape serve: a NUL escaped in any string of a body is refused, not cut short" {
	PRESET=full-access
	sandbox_up
	run api POST "/v1/sandboxes/$SB/exec" -d '{"argv": ["touch", "/workspace/zz\u0000b"]}'
	[ "${output%% *}" = 400 ] || { echo "$output" >&2; false; }
	BODY=${output#* }
	[ "$(f 'j["code"]')" = invalid_argument ]
	[ "$(f 'j["message"]')" = 'the body holds a NUL character (\u0000), which no field may contain' ]
	ex 'ls /workspace/zz* || echo none'
	[ "$(f 'j["stdout"]')" = none ]
	# an escaped backslash before u0000 is no NUL
	run api POST "/v1/sandboxes/$SB/exec" -d '{"argv": ["printf", "%s", "x\\u0000"]}'
	[ "${output%% *}" = 200 ]
	BODY=${output#* }
	[ "$(f 'j["stdout"]')" = 'x\u0000' ]
	run api POST /v1/sandboxes -d "{\"codebase_id\": \"$CB\", \"labels\": {\"k\": \"v\\u0000w\"}}"
	[ "${output%% *}" = 400 ]
	run api POST "/v1/sandboxes/$SB/sessions" -d '{"shell": "/bin/sh\u0000x"}'
	[ "${output%% *}" = 400 ]
}

@test "escape serve: bytes after a body's JSON value are refused" {
	sandbox_up
	run api POST "/v1/sandboxes/$SB/exec" -d '{"command": "echo one"}{"command": "echo two"}'
	[ "${output%% *}" = 400 ]
	BODY=${output#* }
	[ "$(f 'j["message"]')" = 'the body has bytes after its JSON value' ]
	run api POST "/v1/sandboxes/$SB/exec" -d '{"command": "echo one"} x'
	[ "${output%% *}" = 400 ]
	run api POST /v1/sandboxes -d "{\"codebase_id\": \"$CB\"}]"
	[ "${output%% *}" = 400 ]
	# whitespace after it is fine
	run api POST "/v1/sandboxes/$SB/exec" -d $'{"command": "echo one"} \n\t '
	[ "${output%% *}" = 200 ]
}

@test "escape serve: an error quoting bytes that are not UTF-8 is still valid JSON" {
	start_serve
	run curl -sS --unix-socket "$SOCK" -o "$T/body" -w '%{http_code}' "http://agentfense/v1/sandboxes/sb_%ff%c3"
	[ "$output" = 404 ]
	run python3 -c 'import json, sys; print(json.loads(open(sys.argv[1], "rb").read().decode("utf-8"))["message"])' "$T/body"
	[ "$status" = 0 ]
	[ "$output" = "no sandbox 'sb_"$'\xef\xbf\xbd\xef\xbf\xbd'"'" ]
}

@test "escape serve: numbers out of range are refused before any conversion" {
	sandbox_up
	for body in '{"command": "true", "max_output": 1e30}' '{"command": "true", "max_output": -1e30}' \
		    '{"command": "true", "timeout": 1e300}' '{"command": "true", "max_output": 1.5}'; do
		run api POST "/v1/sandboxes/$SB/exec" -d "$body"
		[ "${output%% *}" = 400 ] || { echo "$body: $output" >&2; false; }
	done
	for p in 1e300 -1e300 1e10 0.5; do
		run api POST /v1/sandboxes -d "{\"codebase_id\": \"$CB\", \"permissions\": [{\"pattern\": \"**\", \"permission\": \"read\", \"priority\": $p}]}"
		[ "${output%% *}" = 400 ] || { echo "$p: $output" >&2; false; }
	done
	for r in '"memory_bytes": 1e30' '"pids_limit": -1e30' '"cpu_quota": 1e300'; do
		run api POST /v1/sandboxes -d "{\"codebase_id\": \"$CB\", \"resources\": {$r}}"
		[ "${output%% *}" = 400 ] || { echo "$r: $output" >&2; false; }
	done
	run api POST /v1/sandboxes -d "{\"codebase_id\": \"$CB\", \"expires_in\": 1e300}"
	[ "${output%% *}" = 400 ]
	run api POST /v1/codebases -d "{\"name\": \"q\", \"source_path\": \"$T/proj\", \"max_file_size\": 1e300}"
	[ "${output%% *}" = 400 ]
}

@test "escape serve: a session's background job writing forever costs serve no CPU between execs" {
	sandbox_up
	run api POST "/v1/sandboxes/$SB/sessions" -d '{}'
	[ "${output%% *}" = 201 ]
	SS=$(jget "${output#* }" 'j["id"]')
	sx 'yes & echo $! >/tmp/yes.pid'
	[ "$CODE" = 200 ]
	sleep 0.3
	t0=$(awk '{print $14 + $15}' "/proc/$SERVE_PID/stat")
	sleep 2
	t1=$(awk '{print $14 + $15}' "/proc/$SERVE_PID/stat")
	# clock ticks (1/100 s): reading and dropping yes took most of a core
	[ $((t1 - t0)) -lt 20 ] || { echo "serve used $((t1 - t0)) ticks in 2 s" >&2; false; }
	# the next exec still runs and gets its output (after the job's: it
	# waits for the job to die, which may still write once after the kill)
	run api POST "/v1/sessions/$SS/exec" --max-time 20 -d '{"command": "kill $(cat /tmp/yes.pid); wait $(cat /tmp/yes.pid); echo done"}'
	CODE=${output%% *} BODY=${output#* }
	[ "$CODE" = 200 ] || { echo "${BODY:0:300}" >&2; false; }
	[ "$(fb 'j["exit_code"]')" = 0 ]
	[ "$(fb 'j["stdout"].splitlines()[-1]')" = done ]
	sx 'echo alone'
	[ "$(f 'j["stdout"]')" = alone ]
	run api DELETE "/v1/sessions/$SS"
	[ "${output%% *}" = 200 ]
}

@test "escape serve: a job a session left behind cannot see, write into or read another exec's processes" {
	# The daemon watches /proc for the next exec's shell and, once it
	# sees it, writes into its stdout and opens its memory and environ.
	cat >"$T/proj/watch.py" <<'PY'
import os, sys, time
if os.fork():
    print("started", flush=True)
    sys.exit(0)
os.setsid()
null = os.open("/dev/null", os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(null, fd)
log = open("/tmp/watch.log", "w", buffering=1)
end = time.time() + 4
while time.time() < end:
    for p in os.listdir("/proc"):
        try:
            cmd = open("/proc/%s/cmdline" % p, "rb").read() if p.isdigit() else b""
        except OSError:
            continue
        if b"victim-marker" not in cmd:
            continue
        log.write("seen\n")
        for f, mode in (("fd/1", os.O_WRONLY), ("mem", os.O_RDWR), ("environ", os.O_RDONLY)):
            try:
                fd = os.open("/proc/%s/%s" % (p, f), mode)
                if f == "fd/1":
                    os.write(fd, b"FORGED\n")
                os.close(fd)
                log.write("%s OK\n" % f)
            except OSError as e:
                log.write("%s %s\n" % (f, e.strerror))
        log.write("done\n")
        sys.exit(0)
    time.sleep(0.005)
log.write("not seen\ndone\n")
PY
	sandbox_up
	run api POST "/v1/sandboxes/$SB/sessions" -d '{}'
	assert_eq 201 "${output%% *}"
	SS=$(jget "${output#* }" 'j["id"]')
	sx 'python3 watch.py'
	assert_eq 200 "$CODE"
	assert_eq "started" "$(f 'j["stdout"].strip()')"
	# the exec: its output is its own, and it sees only its own processes
	# (its init, the shell, ls and grep)
	ex 'sleep 1; echo real; ls /proc | grep -c "^[0-9]" # victim-marker'
	assert_eq 200 "$CODE"
	assert_eq "0 'real\n4\n'" "$(f 'j["exit_code"], j["stdout"]' | tr -d '(),')"
	sx 'while ! grep -q done /tmp/watch.log; do sleep 0.1; done; cat /tmp/watch.log'
	assert_eq 200 "$CODE"
	assert_eq "not seen
done" "$(f 'j["stdout"].strip()')"
}
