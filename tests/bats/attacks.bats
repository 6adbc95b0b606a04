#!/usr/bin/env bats
# An agent trying to get around its levels: renames, rmdir, links,
# symlinks, the host's paths, /proc.  No attempt may reveal, change or
# delete anything beyond its level, in the sandbox or (after sync) on the
# host.

load helper

@test "rename of a hidden file fails as if it did not exist" {
	run af run -e LC_ALL=C "$P" -- sh -c 'mv /workspace/.env /workspace/output/x; mv /workspace/secrets /workspace/output/s'
	assert_status 1
	assert_output "mv: cannot stat '/workspace/.env': No such file or directory
mv: cannot stat '/workspace/secrets': No such file or directory"
	[ "$(cat "$P/.env")" = "SECRET=${SECRET_MARK}_env" ]
	[ ! -e "$P/output/x" ]
	[ ! -e "$P/output/s" ]
}

@test "rename onto a hidden file fails and the hidden file survives" {
	printf '%s_out_env\n' "$SECRET_MARK" >"$P/output/.env"
	run --separate-stderr af run "$P" -- python3 -c "$OPS_PY" \
		create output/a mv output/a output/.env link output/a output/.env \
		symlink a output/.env stat output/.env ls output
	assert_status 0
	output=${output//EPERM/EACCES}
	assert_output "create output/a: OK
mv output/a output/.env: EACCES
link output/a output/.env: EACCES
symlink a output/.env: EACCES
stat output/.env: ENOENT
ls output: a"
	[ "$(cat "$P/output/.env")" = "${SECRET_MARK}_out_env" ]
	[ -f "$P/output/a" ]
}

@test "rename of a directory onto a directory holding hidden entries fails" {
	mkdir -p "$P/output/victim" "$P/output/empty"
	printf '%s\n' "$SECRET_MARK" >"$P/output/victim/.env"
	run --separate-stderr af run "$P" -- python3 -c "$OPS_PY" \
		ls output/victim rmdir output/victim mv output/empty output/victim ls output
	assert_status 0
	[ "${lines[0]}" = "ls output/victim: " ]
	[ "${lines[1]}" = "rmdir output/victim: ENOTEMPTY" ]
	[[ "${lines[2]}" =~ ^"mv output/empty output/victim: "(ENOTEMPTY|EACCES|EPERM|EXDEV)$ ]] || { echo "$output" >&2; false; }
	[ "${lines[3]}" = "ls output: empty,victim" ]
	[ "$(cat "$P/output/victim/.env")" = "$SECRET_MARK" ]
}

@test "a read-only directory cannot be moved" {
	run af run -e LC_ALL=C "$P" -- sh -c 'mv /workspace/src /workspace/output/src; mv /workspace/docs /workspace/docs2'
	assert_status 1
	assert_output "mv: cannot move '/workspace/src' to '/workspace/output/src': Permission denied
mv: cannot move '/workspace/docs' to '/workspace/docs2': Permission denied"
	[ -f "$P/src/main.c" ]
	[ -f "$P/docs/guide.txt" ]
}

@test "a writable directory holding a hidden or read-only entry cannot be moved" {
	run --separate-stderr af run -p development -r '/docs/guide.txt=read@5' "$P" -- python3 -c "$OPS_PY" \
		stat . mv a a2 mv docs docs2 mv src src2 ls .
	assert_status 0
	output=$(sed -E 's/: (EPERM|EXDEV)$/: EACCES/' <<<"$output")
	assert_output "stat .: OK
mv a a2: EACCES
mv docs docs2: EACCES
mv src src2: OK
ls .: README.md,a,certs,config,docs,link-readme,output,src2,tmp"
	[ "$(cat "$P/a/.env.local")" = "SECRET=${SECRET_MARK}_env_local" ]
	[ -f "$P/a/readme.txt" ]
	[ -f "$P/docs/guide.txt" ]
	[ -f "$P/src2/main.c" ]
	[ ! -e "$P/src" ]
}

@test "rm -rf of a directory with hidden entries fails ENOTEMPTY and the hidden files survive" {
	run af run -e LC_ALL=C -p development "$P" -- sh -c 'rm -rf /workspace/config /workspace/a 2>&1; echo "rm=$?"; ls -A /workspace/config /workspace/a /workspace/a/b /workspace/a/b/c 2>&1; rmdir /workspace/a/b 2>&1'
	assert_status 1
	output=$(grep -v '^agentfense: synced' <<<"$output")
	assert_output "rm: cannot remove '/workspace/config': Directory not empty
rm: cannot remove '/workspace/a/b/c': Directory not empty
rm=1
/workspace/a:
b

/workspace/a/b:
c

/workspace/a/b/c:

/workspace/config:
rmdir: failed to remove '/workspace/a/b': Directory not empty"
	[ ! -e "$P/config/app.json" ]
	[ "$(cat "$P/config/credentials.json")" = "{\"token\": \"${SECRET_MARK}_credentials\"}" ]
	[ "$(cat "$P/a/.env.local")" = "SECRET=${SECRET_MARK}_env_local" ]
	[ "$(cat "$P/a/b/c/.env")" = "SECRET=${SECRET_MARK}_deep_env" ]
	[ "$(cat "$P/a/b/secrets/deep.txt")" = "${SECRET_MARK}_deep_secrets" ]
}

@test "rmdir of a directory whose only entries are hidden fails ENOTEMPTY" {
	mkdir -p "$P/output/conf"
	printf '%s\n' "$SECRET_MARK" >"$P/output/conf/db.pem"
	run af run -e LC_ALL=C "$P" -- sh -c 'ls -A /workspace/output/conf; rmdir /workspace/output/conf'
	assert_status 1
	assert_output "rmdir: failed to remove '/workspace/output/conf': Directory not empty"
	[ "$(cat "$P/output/conf/db.pem")" = "$SECRET_MARK" ]
}

@test "a hard link to a read-only file cannot be used to change it" {
	run af run "$P" -- sh -c 'ln /workspace/README.md /workspace/output/rl; echo pwned >> /workspace/output/rl; echo pwned > /workspace/output/rl; cat /workspace/README.md'
	assert_contains "$output" "hello agentfense"
	refute_contains "$output" "pwned"
	[ "$(cat "$P/README.md")" = "hello agentfense" ]
}

@test "a hard link to a view-only file does not make it readable" {
	run --separate-stderr af run -r '/docs/guide.txt=view@5' -r '/docs/notes.md=view@5' -p development "$P" -- python3 -c "$OPS_PY" \
		link docs/guide.txt output/g cat output/g mv docs/notes.md output/n cat output/n cat docs/guide.txt
	output=${output//EPERM/EACCES}
	assert_output "link docs/guide.txt output/g: EACCES
cat output/g: ENOENT
mv docs/notes.md output/n: EACCES
cat output/n: ENOENT
cat docs/guide.txt: EACCES"
	[ ! -e "$P/output/g" ]
	[ ! -e "$P/output/n" ]
}

@test "symlinks to hidden files read nothing" {
	ln -s .env "$P/innocent"
	ln -s ../secrets/key.txt "$P/docs/key"
	ln -s "$P/.env" "$P/abs"
	run af run --changes discard -e LC_ALL=C "$P" -- sh -c 'cd /workspace; ln -s /workspace/.env output/s1; ln -s ../.env output/s2; cat output/s1 output/s2 innocent docs/key abs; readlink innocent abs'
	assert_status 0
	assert_output "cat: output/s1: No such file or directory
cat: output/s2: No such file or directory
cat: innocent: No such file or directory
cat: docs/key: No such file or directory
cat: abs: No such file or directory
.env
$P/.env"
}

@test "a symlink pointing outside the project resolves inside the sandbox" {
	printf '%s_outside\n' "$SECRET_MARK" >"$T/outside.txt"
	ln -s "$T/outside.txt" "$P/out"
	ln -s ../../outside.txt "$P/docs/rel-out"
	ln -s /etc/hostname "$P/host-etc"
	run af run -e LC_ALL=C "$P" -- sh -c 'cat /workspace/out /workspace/docs/rel-out; readlink /workspace/docs/rel-out; cat /workspace/host-etc'
	refute_contains "$output" "$SECRET_MARK"
	assert_contains "$output" "cat: /workspace/out: No such file or directory
cat: /workspace/docs/rel-out: No such file or directory
../../outside.txt"
}

@test "the project's host path is not reachable from inside" {
	run af run -e LC_ALL=C "$P" -- sh -c "cat '$P/.env' '$P/README.md'; ls '$T'; ls '$XDG_STATE_HOME'"
	assert_status 2
	assert_output "cat: $P/.env: No such file or directory
cat: $P/README.md: No such file or directory
ls: cannot access '$T': No such file or directory
ls: cannot access '$XDG_STATE_HOME': No such file or directory"
}

@test "/proc gives no route out: /proc/1/root, /proc/1/fd, /proc/1/cwd" {
	run af run -e LC_ALL=C "$P" -- sh -c 'cat /proc/1/root/workspace/.env /proc/self/root/workspace/.env /proc/1/root'"$P"'/.env /proc/1/cwd'"$P"'/.env; for f in /proc/1/fd/*; do cat "$f/.env" "$f/secrets/key.txt" "$f/$(basename '"$P"')/.env"; done; ls /proc/1/root/ /proc/1/cwd/; timeout 5 grep -rs '"$SECRET_MARK"' /proc/1/root/tmp /proc/1/cwd /proc/1/fd/ </dev/null'
	refute_contains "$output" "$SECRET_MARK"
	assert_contains "$output" "cat: /proc/self/root/workspace/.env: No such file or directory"
}

@test "no host path or host environment shows inside: mountinfo, environ, cmdline, fd links" {
	run af run -e LC_ALL=C "$P" -- sh -c 'cat /proc/self/mountinfo /proc/1/mountinfo; cat /proc/self/environ /proc/1/environ /proc/1/cmdline; for f in /proc/self/fd/* /proc/1/fd/* /proc/self/cwd /proc/1/cwd /proc/1/root /proc/1/exe; do readlink "$f"; done; true' </dev/null
	refute_contains "$output" "$T"
	refute_contains "$output" "AF_TEST_MARK"
	refute_contains "$output" "$SECRET_MARK"
}

@test "the command inherits no file descriptor besides stdio" {
	run af run "$P" -- python3 -c 'import os; print(sorted(int(f) for f in os.listdir("/proc/self/fd")))' 3</dev/null 4<"$P/README.md" 5<"$P"
	assert_status 0
	assert_output "[0, 1, 2, 3]"
}

@test "find and grep -r over the view never print secret content" {
	run inside -- 'grep -r '"$SECRET_MARK"' /workspace; echo "grep=$?"; find /workspace'
	assert_status 0
	[ "${lines[0]}" = "grep=1" ]
	assert_eq "$AGENT_SAFE_VISIBLE" "$(printf '%s\n' "${lines[@]:1}" | LC_ALL=C sort)"
}

@test "cp -a and tar of the tree exclude hidden files" {
	run inside -- 'cp -a /workspace /tmp/copy && cd /tmp/copy && find . && tar -C /workspace -cf - . | tar -tf - | grep -c . && grep -r '"$SECRET_MARK"' /tmp/copy; echo "end=$?"'
	assert_status 0
	refute_contains "$output" "$SECRET_MARK"
	[ "${lines[-1]}" = "end=1" ]
	assert_eq "$(sed 's,^/workspace,.,' <<<"$AGENT_SAFE_VISIBLE")" "$(printf '%s\n' "${lines[@]:0:21}" | LC_ALL=C sort)"
	[ "${lines[21]}" = 21 ]
}

@test "an absent hidden name and a present one look the same" {
	run --separate-stderr af run -p development "$P" -- python3 -c "$OPS_PY" \
		stat .env stat .env.nothere create .env create .env.nothere mkdir .env mkdir .env.nothere \
		rm .env rm .env.nothere rmdir secrets rmdir secrets.nothere
	assert_status 0
	local c=${lines[2]##*: } m=${lines[4]##*: }
	assert_output "stat .env: ENOENT
stat .env.nothere: ENOENT
create .env: $c
create .env.nothere: $c
mkdir .env: $m
mkdir .env.nothere: $m
rm .env: ENOENT
rm .env.nothere: ENOENT
rmdir secrets: ENOENT
rmdir secrets.nothere: ENOENT"
	[[ "$c" =~ ^(EACCES|EPERM)$ ]]
	[[ "$m" =~ ^(EACCES|EPERM)$ ]]
}

@test "the sandbox cannot signal or see agentfense" {
	run inside -- 'ls /proc | grep -c "^[0-9]"; kill -KILL 1; echo "kill=$?"; cat /proc/1/status | grep -E "^(Uid|PPid):"'
	assert_status 0
	[ "${lines[0]}" -le 4 ]
	[ "${lines[2]}" = "PPid:	0" ]
}

@test "odd names, long names and deep trees work and sync back" {
	run --separate-stderr af run "$P" -- python3 -c '
import errno, os
os.chdir("/workspace/output")
names = ["sp ace", "new\nline", "tab\there", "uni-\u00e9\u4e2d", "-dash", "x" * 255, "..x", "a=b@c"]
for n in names:
    with open(n, "w") as f:
        f.write(n)
try:
    open("y" * 256, "w")
except OSError as e:
    print(errno.errorcode[e.errno])
d = "deep"
for i in range(60):
    d = os.path.join(d, "d%d" % i)
os.makedirs(d)
open(os.path.join(d, "leaf"), "w").write("leaf")
print(sorted(os.listdir(".")) == sorted(names + ["deep"]))
'
	assert_status 0
	assert_output "ENAMETOOLONG
True"
	[ "$(cat "$P/output/new
line")" = "new
line" ]
	[ "$(cat "$P/output/$(printf 'x%.0s' $(seq 255))")" = "$(printf 'x%.0s' $(seq 255))" ]
	[ "$(find "$P/output/deep" -name leaf -printf '%d ' -exec cat {} \;)" = "61 leaf" ]
}

@test "concurrent operations from many threads never break the view" {
	run af run --changes discard -p development "$P" -- python3 -c '
import os, threading
os.chdir("/workspace")
errors = []
def worker(k):
    try:
        for i in range(150):
            p = "output/t%d-%d" % (k, i % 7)
            with open(p, "w") as f:
                f.write("x" * i)
            os.rename(p, p + ".r")
            os.listdir("output")
            try:
                os.stat(".env")
            except FileNotFoundError:
                pass
            with open("README.md") as f:
                f.read()
            os.unlink(p + ".r")
    except Exception as e:
        errors.append(repr(e))
ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
[t.start() for t in ts]
[t.join() for t in ts]
print(errors or "ok", sorted(os.listdir("output")))
'
	assert_status 0
	assert_output "ok []"
}
