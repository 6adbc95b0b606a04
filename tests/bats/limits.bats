#!/usr/bin/env bats
# Resource limits: --memory, --cpus, --pids.  The cgroup tests need a
# cgroup the test user can write to (.ci/run delegates one; a systemd
# user session with 'systemd-run --user --scope -p Delegate=yes' gives
# one); when .ci/run delegated one (AF_CI_CGROUPS set) they fail without
# it, elsewhere they are skipped with the reason.  The fallback tests make agentfense's own cgroup
# unwritable (a read-only child of the delegated one) to get the rlimit
# path; without any writable cgroup they run as they are.

load helper

# no_cgroup runs inside `run` (a subshell): the cgroups it and the
# stale-leaf test made are listed in a file for teardown to remove.
teardown() {
	local d bad=
	if [ -f "$T/ro-cgroups" ]; then
		while read -r d; do
			chmod u+w "$d" "$d/cgroup.procs" 2>/dev/null
			for _ in $(seq 100); do
				rmdir "$d" 2>/dev/null && break
				sleep 0.02
			done
			[ ! -e "$d" ] || bad+=" $d"
		done <"$T/ro-cgroups"
	fi
	af_teardown
	[ -z "$bad" ] || { echo "teardown: cannot remove cgroups:$bad" >&2; return 1; }
}

# cg_dir CONTROLLER [PATH]: the host directory of cgroup PATH (default:
# ours) in the cgroup v1 hierarchy of CONTROLLER, or in the cgroup v2
# hierarchy if CONTROLLER is "".
cg_dir() {
	local path=${2:-}
	if [ -z "$path" ] && [ -n "$1" ]; then
		path=$(awk -F: -v c="$1" '{ n = split($2, a, ",")
			for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' /proc/self/cgroup)
	elif [ -z "$path" ]; then
		path=$(awk -F: '$1 == "0" && $2 == "" { print $3 }' /proc/self/cgroup)
	fi
	[ -n "$path" ] || return 0
	awk -v c="$1" -v p="$path" '{
		for (i = 7; i < NF && $i != "-"; i++) ;
		fs = $(i + 1); so = "," $(i + 3) ","
		if (c == "" ? fs != "cgroup2" : (fs != "cgroup" || index(so, "," c ",") == 0)) next
		root = $4 == "/" ? "" : $4
		if (substr(p, 1, length(root)) != root) next
		d = $5 substr(p, length(root) + 1); sub("/$", "", d); print d; exit
	}' /proc/self/mountinfo
}

# cg_version CONTROLLER: 1 or 2 if our cgroup for CONTROLLER is one we
# can write to (so agentfense can make the sandbox's there), else empty.
cg_version() {
	local d
	d=$(cg_dir "$1")
	if [ -n "$d" ] && [ -w "$d" ] && [ -w "$d/cgroup.procs" ]; then
		echo 1
		return
	fi
	d=$(cg_dir "")
	if [ -n "$d" ] && [ -w "$d" ] && [ -w "$d/cgroup.procs" ] &&
	   grep -qw "$1" "$d/cgroup.controllers" 2>/dev/null; then
		echo 2
	fi
}

# need_cgroup CONTROLLER...: a writable cgroup for each, or fail where
# CI delegated cgroups (agentfense must then find them) and skip
# elsewhere.
need_cgroup() {
	local c missing=
	for c in "$@"; do
		[ -n "$(cg_version "$c")" ] || missing+=" $c"
	done
	[ -z "$missing" ] && return 0
	if [ -n "${AF_CI_CGROUPS:-}" ]; then
		echo "no writable cgroup for:$missing although .ci/run delegated:$AF_CI_CGROUPS" >&2
		return 1
	fi
	skip "no writable cgroup for:$missing (run in a delegated cgroup, e.g. systemd-run --user --scope -p Delegate=yes)"
}

# sandbox_cg_dir CONTROLLER FILE: the host directory of the sandbox's
# cgroup for CONTROLLER, from a copy of its /proc/self/cgroup in FILE.
sandbox_cg_dir() {
	local v path
	v=$(cg_version "$1")
	if [ "$v" = 1 ]; then
		path=$(awk -F: -v c="$1" '{ n = split($2, a, ",")
			for (i = 1; i <= n; i++) if (a[i] == c) print $3 }' "$2")
		cg_dir "$1" "$path"
	else
		path=$(awk -F: '$1 == "0" && $2 == "" { print $3 }' "$2")
		cg_dir "" "$path"
	fi
}

# no_cgroup CMD...: run CMD where agentfense finds no writable cgroup:
# in a read-only child of each cgroup of ours that is writable.
no_cgroup() {
	local c d v dirs=()
	for c in memory pids cpu; do
		v=$(cg_version "$c")
		if [ "$v" = 1 ]; then
			dirs+=("$(cg_dir "$c")")
		elif [ "$v" = 2 ]; then
			# a sibling of our leaf: only leaves may hold processes
			d=$(cg_dir "")
			dirs+=("${d%/*}")
		fi
	done
	local ro=() u
	for d in $(printf '%s\n' "${dirs[@]}" | sort -u); do
		u=$(mktemp -d "$d/af-test-ro-XXXXXX") || return 125
		echo "$u" >>"$T/ro-cgroups"
		ro+=("$u")
	done
	(
		for d in "${ro[@]}"; do
			echo "$BASHPID" >"$d/cgroup.procs" || exit 125
			chmod a-w "$d" "$d/cgroup.procs" || exit 125
		done
		exec "$@"
	)
}

# FORK_PY forks children that wait, until a fork fails; prints how many.
FORK_PY='
import os, time
n = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
except BlockingIOError:
    print("forked", n)
    raise SystemExit(1)
'

@test "limits: bad values exit 125 with one clear line" {
	run --separate-stderr af run --memory abc "$P" -- true
	assert_error 125 "invalid value 'abc' for --memory" "512M"
	run --separate-stderr af run --memory 1GX "$P" -- true
	assert_error 125 "invalid value '1GX' for --memory"
	run --separate-stderr af run --memory 1M "$P" -- true
	assert_error 125 "invalid value '1M' for --memory" "at least 4M"
	run --separate-stderr af run --pids 0 "$P" -- true
	assert_error 125 "invalid value '0' for --pids" "2 to"
	run --separate-stderr af run --pids 1 "$P" -- true
	assert_error 125 "invalid value '1' for --pids"
	run --separate-stderr af run --cpus -1 "$P" -- true
	assert_error 125 "invalid value '-1' for --cpus"
	run --separate-stderr af run --cpus 0 "$P" -- true
	assert_error 125 "invalid value '0' for --cpus" "0.01"
	run --separate-stderr af run --cpus nan "$P" -- true
	assert_error 125 "invalid value 'nan' for --cpus"
	run --separate-stderr af run --cpus "$P" -- true
	assert_error 125 "invalid value '$P' for --cpus"
	run --separate-stderr af run --pids
	assert_error 125 "option '--pids' requires a value"
}

@test "limits: --help names them" {
	run af run --help
	assert_status 0
	assert_contains "$output" "--memory SIZE"
	assert_contains "$output" "--cpus N"
	assert_contains "$output" "--pids N"
}

@test "cgroup: the sandbox runs in a cgroup of its own, with the limits written" {
	need_cgroup memory pids cpu
	local out=$T/out c d
	bg_af "$out" run --changes discard --memory 64M --pids 50 --cpus 0.5 "$P" -- \
		sh -c 'cat /proc/self/cgroup; echo READY; sleep 60'
	wait_for_line "$out" READY 20
	for c in memory pids cpu; do
		d=$(sandbox_cg_dir "$c" "$out")
		[ -d "$d" ]
		# a new cgroup: below ours (v1), in the "agentfense" subtree (v2)
		if [ "$(cg_version "$c")" = 1 ]; then
			case $d in "$(cg_dir "$c")"/agentfense-*) ;; *) echo "$c: $d" >&2; false ;; esac
		else
			case $d in */agentfense/agentfense-*) ;; *) echo "$c: $d" >&2; false ;; esac
		fi
		eval "dir_$c=\$d"
	done
	if [ "$(cg_version memory)" = 1 ]; then
		assert_eq 67108864 "$(cat "$dir_memory/memory.limit_in_bytes")"
	else
		assert_eq 67108864 "$(cat "$dir_memory/memory.max")"
	fi
	assert_eq 50 "$(cat "$dir_pids/pids.max")"
	if [ "$(cg_version cpu)" = 1 ]; then
		assert_eq "50000 100000" "$(cat "$dir_cpu/cpu.cfs_quota_us") $(cat "$dir_cpu/cpu.cfs_period_us")"
	else
		assert_eq "50000 100000" "$(cat "$dir_cpu/cpu.max")"
	fi
	kill -TERM "$BG_PID"
	wait "$BG_PID" || true
	refute_contains "$(cat "$out")" "warning"
	# removed with the sandbox
	for c in memory pids cpu; do
		eval "d=\$dir_$c"
		[ ! -e "$d" ] || { echo "left behind: $d" >&2; false; }
	done
}

@test "cgroup: a cgroup left by an agentfense that was killed is removed by the next" {
	need_cgroup pids
	local d
	af run --changes discard --pids 10 "$P" -- cat /proc/self/cgroup >"$T/cg"
	d=$(sandbox_cg_dir pids "$T/cg")
	d=${d%/*}
	[ -d "$d" ]
	# no process has this pid (beyond pid_max); this shell does exist
	printf '%s\n' "$d/agentfense-2147483646-0badf00d" "$d/agentfense-$$-0badf00d" >>"$T/ro-cgroups"
	mkdir "$d/agentfense-2147483646-0badf00d" "$d/agentfense-$$-0badf00d"
	run af run --changes discard --pids 10 "$P" -- true
	assert_status 0
	[ ! -e "$d/agentfense-2147483646-0badf00d" ]
	[ -d "$d/agentfense-$$-0badf00d" ]
}

@test "cgroup: a 1 GiB allocation under --memory 128M is killed and reported (137)" {
	need_cgroup memory
	local t0=$SECONDS
	run --separate-stderr af run --changes discard -t 60 --memory 128M "$P" -- \
		python3 -c 'b = bytearray(1 << 30); print("allocated")'
	assert_status 137
	assert_eq "" "$output"
	assert_contains "$stderr" "agentfense: command was killed: out of memory (limit 128 MiB)"
	[ $((SECONDS - t0)) -lt 30 ]
	# a process the command started dies of it, the command reports it
	run --separate-stderr af run --changes discard --memory 128M "$P" -- \
		sh -c 'python3 -c "b = bytearray(1 << 30)"; echo "status $?"'
	assert_status 0
	assert_output "status 137"
	assert_contains "$stderr" "agentfense: out of memory: 1 process in the sandbox killed (limit 128 MiB)"
	# what fits is left alone
	run --separate-stderr af run --changes discard --memory 128M "$P" -- \
		python3 -c 'b = bytearray(32 << 20); print("allocated")'
	assert_status 0
	assert_output "allocated"
	assert_eq "" "$stderr"
}

@test "cgroup: a fork bomb under --pids 64 is contained and reported" {
	need_cgroup pids
	local out=$T/out d t0=$SECONDS i
	bg_af "$out" run --changes discard --pids 64 -t 5 "$P" -- \
		bash -c 'cat /proc/self/cgroup; echo READY; :(){ :|:& };:; sleep 60'
	wait_for_line "$out" READY 20
	sleep 1
	d=$(sandbox_cg_dir pids "$out")
	[ "$(cat "$d/pids.current")" -le 64 ]
	# the machine stays usable: 20 processes start at once
	local t1=$SECONDS
	for i in $(seq 20); do /bin/true; done
	[ $((SECONDS - t1)) -lt 3 ]
	wait "$BG_PID" && st=0 || st=$?
	assert_eq 124 "$st"
	assert_contains "$(cat "$out")" "agentfense: command timed out after 5s"
	assert_contains "$(cat "$out")" "agentfense: command hit the pids limit (64)"
	[ $((SECONDS - t0)) -lt 30 ]
	[ ! -e "$d" ]
}

@test "cgroup: --pids 64 refuses the 63rd process (init counts) and says so" {
	need_cgroup pids
	run --separate-stderr af run --changes discard --pids 64 "$P" -- python3 -c "$FORK_PY"
	assert_status 1
	assert_output "forked 62"
	assert_eq "agentfense: command hit the pids limit (64)" "$stderr"
}

@test "cgroup: --cpus 0.1 holds a busy loop to a tenth of a CPU" {
	need_cgroup cpu
	run --separate-stderr af run --changes discard --cpus 0.1 "$P" -- python3 -c '
import os, time
end = time.monotonic() + 2
while time.monotonic() < end:
    pass
t = os.times()
print("%.2f" % (t.user + t.system))'
	assert_status 0
	# 0.2 s of CPU in 2 s, with room for accounting granularity
	python3 -c "import sys; sys.exit(0 if float('$output') < 0.45 else 1)" ||
		{ echo "used $output s of CPU in 2 s" >&2; false; }
}

@test "fallback: without a writable cgroup the warnings say what is not enforced" {
	[ "$(id -u)" -ne 0 ] || skip "root can write to any cgroup"
	run --separate-stderr no_cgroup "$AGENTFENSE" run --changes discard \
		--memory 128M --cpus 0.5 --pids 64 "$P" -- true
	assert_status 0
	assert_eq "" "$output"
	assert_eq 4 "${#stderr_lines[@]}"
	assert_contains "${stderr_lines[0]}" "agentfense: warning: --pids is applied with RLIMIT_NPROC, not a pids cgroup: cgroup '"
	assert_contains "${stderr_lines[1]}" "agentfense: warning: --memory is applied per process (RLIMIT_AS), not to the sandbox as a whole: cgroup '"
	assert_contains "${stderr_lines[1]}" "is not writable"
	assert_contains "${stderr_lines[2]}" "agentfense: warning: --cpus is not enforced: cgroup '"
	assert_contains "${stderr_lines[3]}" "hint: to limit the sandbox as a whole, run agentfense in a cgroup you can write to"
	# --pids alone falls back too, and says so as --memory does
	run --separate-stderr no_cgroup "$AGENTFENSE" run --changes discard --pids 64 "$P" -- true
	assert_status 0
	assert_eq 2 "${#stderr_lines[@]}"
	assert_contains "${stderr_lines[0]}" "agentfense: warning: --pids is applied with RLIMIT_NPROC"
	assert_contains "${stderr_lines[1]}" "hint: to limit the sandbox as a whole"
}

@test "fallback: --memory is RLIMIT_AS in the command" {
	[ "$(id -u)" -ne 0 ] || skip "root can write to any cgroup"
	run --separate-stderr no_cgroup "$AGENTFENSE" run --changes discard --memory 128M "$P" -- \
		python3 -c '
import resource
print(resource.getrlimit(resource.RLIMIT_AS))
try:
    b = bytearray(1 << 30)
except MemoryError:
    print("MemoryError")'
	assert_status 0
	assert_output "(134217728, 134217728)
MemoryError"
}

@test "fallback: --pids is RLIMIT_NPROC, counted in the sandbox only" {
	[ "$(id -u)" -ne 0 ] || skip "RLIMIT_NPROC does not apply to root"
	# more of our processes outside than the limit: if they counted,
	# the sandbox could not fork at all
	local i pids=()
	for i in $(seq 70); do
		sleep 60 &
		pids+=($!)
	done
	run --separate-stderr no_cgroup "$AGENTFENSE" run --changes discard --pids 64 "$P" -- \
		python3 -c "import resource; print(resource.getrlimit(resource.RLIMIT_NPROC))
$FORK_PY"
	kill "${pids[@]}"
	wait "${pids[@]}" 2>/dev/null || true
	assert_status 1
	assert_output "(64, 64)
forked 62"
	# the warning up front, and the limit reached at the end: the
	# command ended with all 62 children (and itself, and PID 1) there
	assert_eq 3 "${#stderr_lines[@]}"
	assert_contains "${stderr_lines[0]}" "--pids is applied with RLIMIT_NPROC"
	assert_eq "agentfense: command hit the pids limit (64)" "${stderr_lines[2]}"
}

@test "fallback: threads count against --pids, and reaching it is reported" {
	[ "$(id -u)" -ne 0 ] || skip "RLIMIT_NPROC does not apply to root"
	run --separate-stderr no_cgroup "$AGENTFENSE" run --changes discard --pids 32 -t 30 "$P" -- \
		python3 -c '
import threading, time
ev = threading.Event()
n = 0
try:
    while True:
        threading.Thread(target=ev.wait, daemon=True).start()
        n += 1
except RuntimeError:
    print("threads", n)
time.sleep(0.6)
ev.set()
raise SystemExit(2)'
	assert_status 2
	# PID 1 and the main thread count: 30 more
	assert_output "threads 30"
	assert_eq 3 "${#stderr_lines[@]}"
	assert_eq "agentfense: command hit the pids limit (32)" "${stderr_lines[2]}"
}

@test "fallback: a fork refused at --pids is reported however brief the peak" {
	[ "$(id -u)" -ne 0 ] || skip "RLIMIT_NPROC does not apply to root"
	# the children live only until the first refused fork: a peak of
	# a few milliseconds, which a sampled count would miss; five runs,
	# each must report it
	local i
	for i in 1 2 3 4 5; do
		run --separate-stderr no_cgroup "$AGENTFENSE" run --changes discard --pids 24 "$P" -- \
			python3 -c '
import os, signal
kids = []
try:
    while True:
        pid = os.fork()
        if pid == 0:
            signal.pause()
            os._exit(0)
        kids.append(pid)
except BlockingIOError:
    pass
for pid in kids:
    os.kill(pid, signal.SIGKILL)
for pid in kids:
    os.waitpid(pid, 0)
print("forked", len(kids))'
		assert_status 0
		assert_output "forked 22"
		assert_eq 3 "${#stderr_lines[@]}"
		assert_eq "agentfense: command hit the pids limit (24)" "${stderr_lines[2]}"
	done
}

@test "fallback: the fork bomb of a short-lived shell is reported" {
	[ "$(id -u)" -ne 0 ] || skip "RLIMIT_NPROC does not apply to root"
	local i
	for i in 1 2 3; do
		run --separate-stderr no_cgroup "$AGENTFENSE" run --changes discard --pids 64 -t 30 "$P" -- \
			sh -c 'b(){ b|b& };b 2>/dev/null; sleep 0.2'
		assert_status 0
		assert_eq "agentfense: command hit the pids limit (64)" "${stderr_lines[-1]}"
	done
}

@test "fallback: a shell's jobs and waits go on unchanged with the counting" {
	[ "$(id -u)" -ne 0 ] || skip "RLIMIT_NPROC does not apply to root"
	# every wait passes through PID 1 first: 500 jobs, 8 at a time, while
	# their ends signal dash (whose SIGCHLD handler is not SA_RESTART);
	# every fork and wait succeeds and nothing is reported below the limit
	run --separate-stderr no_cgroup "$AGENTFENSE" run --changes discard --pids 64 "$P" -- \
		sh -c 'i=0; while [ $i -lt 500 ]; do /bin/true & /bin/true & /bin/true & /bin/true &
/bin/true & /bin/true & /bin/true & /bin/true; wait || exit 9; i=$((i+8)); done; echo $i'
	assert_status 0
	assert_output 504
	assert_eq 2 "${#stderr_lines[@]}"
}

@test "fallback: a run that stays below --pids reports no limit reached" {
	[ "$(id -u)" -ne 0 ] || skip "RLIMIT_NPROC does not apply to root"
	# 20 processes for a second, sampled several times; 63 of 64 at
	# once: the limit is not reached, and no fork was refused
	run --separate-stderr no_cgroup "$AGENTFENSE" run --changes discard --pids 64 "$P" -- \
		sh -c 'i=0; while [ $i -lt 20 ]; do sleep 1 & i=$((i+1)); done; wait
python3 -c "
import os, time
for i in range(60):
    if os.fork() == 0:
        time.sleep(0.5)
        os._exit(0)
for i in range(60):
    os.wait()
print(\"forked 60\")"
echo done'
	assert_status 0
	assert_output "forked 60
done"
	assert_eq 2 "${#stderr_lines[@]}"
	assert_contains "${stderr_lines[0]}" "agentfense: warning: --pids is applied with RLIMIT_NPROC"
	assert_contains "${stderr_lines[1]}" "hint: to limit the sandbox as a whole"
}
