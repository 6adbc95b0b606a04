#!/usr/bin/env bats
# cli_edges.bats - the command line as scripts and new users meet it:
# exit statuses that cannot be mistaken for the command's, values in the
# units people type, hints for what was mistyped or misplaced.

load helper

@test "exit status: a usage error of agentfense is 125, the command's 2 stays its own" {
	run --separate-stderr af run --changes discard "$P" -- sh -c 'exit 2'
	assert_status 2
	run --separate-stderr af run --bogus "$P" -- sh -c 'exit 2'
	assert_error 125 "unknown option '--bogus'"
	run --separate-stderr af run --changes discard -w nosuch "$P" -- true
	assert_error 125 "cannot change to working directory '/workspace/nosuch'"
	[ "$(runs_count)" = 0 ]
}

@test "exit status: every subcommand's usage errors are 125" {
	run --separate-stderr af
	assert_status 125
	run --separate-stderr af help frobnicate
	assert_error 125 "unknown command 'frobnicate'"
	run --separate-stderr af run -r 'x=bogus' "$P" -- true
	assert_error 125 "bogus"
	run --separate-stderr af explain --bogus "$P"
	assert_error 125 "--bogus"
	run --separate-stderr af preset show no-such-preset
	assert_error 125 "no-such-preset"
	run --separate-stderr af serve --idle-exit 0
	assert_error 125 "invalid value '0' for --idle-exit"
	run --separate-stderr af codebase frobnicate
	assert_error 125 "unknown subcommand 'codebase frobnicate'"
}

@test "durations: 30, 30s, 1.5s, 5m, 1h for --timeout; anything else is refused" {
	run --separate-stderr af run --changes discard --timeout 0.3s "$P" -- sleep 5
	assert_status 124
	assert_eq "agentfense: command timed out after 0.3s" "${stderr_lines[0]}"
	local t
	for t in 30 30s 1.5s 5m 1h 2d; do
		run --separate-stderr af run --changes discard --timeout "$t" "$P" -- true
		assert_status 0
	done
	for t in 5x 1e3 -1 0 0s '' . 1.5.2 5mm 0x10 inf; do
		run --separate-stderr af run --changes discard --timeout "$t" "$P" -- true
		assert_error 125 "invalid timeout '$t'"
	done
}

@test "sizes: 512m, 512M, 512MB, 1.5G, 1GiB, binary units as in docker" {
	# the limit is read back in the message the run prints at a refused write
	local s want
	while read -r s want; do
		run --separate-stderr af run --changes discard --disk-limit "$s" "$P" -- \
			sh -c 'head -c 8388608 /dev/zero > /workspace/output/big 2>/dev/null; exit 0'
		assert_status 0
		assert_contains "$stderr" "disk limit ($want)"
	done <<'LIST'
2m 2 MiB
2M 2 MiB
2MB 2 MiB
2MiB 2 MiB
1.5m 1536 KiB
2097152 2 MiB
2048K 2 MiB
LIST
	for s in 1.5x 2MBB '2 GB' -1m 1e6 '' M 0x100000; do
		run --separate-stderr af run --changes discard --memory "$s" "$P" -- true
		assert_error 125 "invalid value '$s' for --memory"
	done
	run --separate-stderr af run --changes discard --memory 1.5G "$P" -- true
	[ "$status" -eq 0 ]
	run --separate-stderr af run --changes discard --memory 3m "$P" -- true
	assert_error 125 "needs at least 4M"
}

@test "durations and sizes: serve and codebase read them the same way" {
	run --separate-stderr af serve --idle-exit 1.5x
	assert_error 125 "invalid value '1.5x' for --idle-exit"
	run --separate-stderr af serve --client-timeout 2d
	assert_error 125 "invalid value '2d' for --client-timeout"
	run --separate-stderr af serve --max-upload 2PiB
	assert_error 125 "invalid value '2PiB' for --max-upload"
	run --separate-stderr af codebase create --max-file-size 1.5q x
	assert_error 125 "invalid value '1.5q' for --max-file-size"
	# a serve with a duration in minutes and a size in MiB starts and
	# answers, then ends at SIGTERM
	local sock=$T/s.sock
	bg_af "$T/serve.out" serve --socket "$sock" --idle-exit 5m --client-timeout 1m --max-upload 1.5M
	local i
	for i in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done
	[ -S "$sock" ]
	run curl -s --unix-socket "$sock" http://x/v1/codebases
	assert_status 0
	kill -TERM "$BG_PID"
	wait "$BG_PID"
}

@test "did you mean: a mistyped subcommand, option or preset gets git's hint" {
	run --separate-stderr af rnu "$P" -- true
	assert_error 125 "unknown command 'rnu'"
	assert_eq "hint: did you mean 'run'?" "${stderr_lines[1]}"
	run --separate-stderr af run --presett read-only "$P" -- true
	assert_error 125 "unknown option '--presett'"
	assert_eq "hint: did you mean '--preset'?" "${stderr_lines[1]}"
	run --separate-stderr af run --disk-limt=1G "$P" -- true
	assert_error 125 "unknown option '--disk-limt=1G'"
	assert_eq "hint: did you mean '--disk-limit'?" "${stderr_lines[1]}"
	run --separate-stderr af run -p read-onyl "$P" -- true
	assert_error 125 "unknown preset 'read-onyl'"
	assert_eq "hint: did you mean 'read-only'?" "${stderr_lines[1]}"
	run --separate-stderr af explain -p agnet-safe "$P" /README.md
	assert_error 125 "unknown preset 'agnet-safe'"
	assert_eq "hint: did you mean 'agent-safe'?" "${stderr_lines[1]}"
	# a user preset is a candidate too
	user_preset my-team '[rules]'
	run --separate-stderr af run -p my-taem "$P" -- true
	assert_eq "hint: did you mean 'my-team'?" "${stderr_lines[1]}"
	[ "$(runs_count)" = 0 ]
}

@test "did you mean: the other subcommands' options and subcommands" {
	run --separate-stderr af codebase lss
	assert_error 125 "unknown subcommand 'codebase lss'"
	assert_eq "hint: did you mean 'ls'?" "${stderr_lines[1]}"
	run --separate-stderr af codebase --jsno ls
	assert_error 125 "unknown option '--jsno'"
	assert_eq "hint: did you mean '--json'?" "${stderr_lines[1]}"
	run --separate-stderr af serve --idle-exti 3
	assert_error 125 "unknown option '--idle-exti'"
	assert_eq "hint: did you mean '--idle-exit'?" "${stderr_lines[1]}"
	run --separate-stderr af preset lsit
	assert_error 125 "unknown command 'lsit'"
	assert_eq "hint: did you mean 'list'?" "${stderr_lines[1]}"
	run --separate-stderr af explain --jsn "$P" /README.md
	assert_error 125 "unknown option '--jsn'"
	assert_eq "hint: did you mean '--json'?" "${stderr_lines[1]}"
	# nothing close: no guess
	run --separate-stderr af zzzzzzzz
	assert_error 125 "unknown command 'zzzzzzzz'"
	refute_contains "$stderr" "did you mean"
}

@test "agentfense --bogus is an unknown option, and --version takes no arguments" {
	run --separate-stderr af --bogus
	assert_error 125 "unknown option '--bogus'"
	run --separate-stderr af --verison
	assert_error 125 "unknown option '--verison'"
	assert_eq "hint: did you mean '--version'?" "${stderr_lines[1]}"
	run --separate-stderr af --version extra
	assert_error 125 "--version takes no arguments: unexpected 'extra'"
	run --separate-stderr af version extra
	assert_error 125 "version takes no arguments: unexpected 'extra'"
	run --separate-stderr af -V
	assert_status 0
	[[ "$output" =~ ^agentfense\ [0-9.]+$ ]]
	run --separate-stderr af help version
	assert_status 0
	assert_contains "$output" "usage: agentfense version"
}

@test "options after DIR: a hint to move them, never run as the command" {
	run --separate-stderr af run "$P" -p read-only -- true
	assert_error 125 "option '-p' after the project directory '$P'"
	assert_eq "hint: options go before DIR: 'agentfense run [OPTIONS] DIR [--] COMMAND [ARG...]'" "${stderr_lines[1]}"
	run --separate-stderr af run "$P" --timeout=5 true
	assert_error 125 "option '--timeout=5' after the project directory"
	run --separate-stderr af shell "$P" -e X=1
	assert_error 125 "option '-e' after the project directory"
	[ "$(runs_count)" = 0 ]
	# after "--" an argument is the command's, as always
	run --separate-stderr af run --changes discard "$P" -- sh -c 'echo "$0"' -p
	assert_status 0
	assert_eq "-p" "$output"
}

@test "-e KEY passes agentfense's own value, off the command line" {
	SECRET_TOKEN=s3cr3t-$$ run --separate-stderr af run --changes discard -e SECRET_TOKEN "$P" -- \
		sh -c 'echo "token=$SECRET_TOKEN"'
	assert_status 0
	assert_eq "token=s3cr3t-$$" "$output"
	# unset in agentfense's environment: not set at all (docker's rule)
	run --separate-stderr env -u NOT_SET_ANYWHERE "$AGENTFENSE" run --changes discard -e NOT_SET_ANYWHERE "$P" -- \
		sh -c 'echo "${NOT_SET_ANYWHERE-unset}"'
	assert_status 0
	assert_eq "unset" "$output"
	run --separate-stderr af run --changes discard -e 1BAD "$P" -- true
	assert_error 125 "invalid environment variable '1BAD'"
}

@test "--env-file: docker's format, many variables, errors name file and line" {
	cat >"$T/vars.env" <<'ENV'
# a comment
A=1

  B=two words
C="quoted stays"
PASSED_IN
EMPTY=
D=x=y
ENV
	PASSED_IN=from-host run --separate-stderr af run --changes discard --env-file "$T/vars.env" -e A=override "$P" -- \
		sh -c 'printf "%s|" "$A" "$B" "$C" "$PASSED_IN" "${EMPTY-unset}" "$D"'
	assert_status 0
	assert_eq '' "$stderr"
	assert_eq 'override|two words|"quoted stays"|from-host||x=y|' "$output"
	# the secret in a bad line is not echoed back
	printf 'OK=1\nBAD KEY=hunter2\n' >"$T/bad.env"
	run --separate-stderr af run --env-file "$T/bad.env" "$P" -- true
	assert_error 125 "$T/bad.env:2: invalid environment variable name 'BAD KEY'"
	refute_contains "$stderr" hunter2
	run --separate-stderr af run --env-file "$T/nope.env" "$P" -- true
	assert_error 125 "cannot read env file '$T/nope.env': No such file or directory"
	run --separate-stderr af run --env-file "$T" "$P" -- true
	assert_error 125 "cannot read env file '$T': Is a directory"
	[ "$(runs_count)" = 0 ]
}

@test "view-only: ls -l lists every entry without 'Permission denied'" {
	run --separate-stderr inside -p view-only -- 'cd /workspace && ls -l README.md src/main.c docs | wc -l; ls -l >/dev/null; echo "ls=$?"'
	assert_status 0
	# a symlink's target is content, which view refuses: that one line only
	assert_eq "ls: cannot read symbolic link 'link-readme': Permission denied" "$stderr"
	assert_eq "7
ls=1" "$output"
	run --separate-stderr inside -p view-only -- 'cd /workspace && ls -la src docs a >/dev/null; echo "ls=$?"'
	assert_eq "" "$stderr"
	assert_eq "ls=0" "$output"
}

@test "traversable directories: ls -l of a none parent's visible child is clean" {
	run --separate-stderr inside -p read-only -r '/a/=none@10' -r '/a/b/c/code.py=read@10' -r '/docs/guide.txt=view@10' -- \
		'ls -l /workspace/a /workspace/a/b >/dev/null; echo "a=$?"; ls -l /workspace/docs | grep -c guide.txt; getfattr -d /workspace/docs/guide.txt; echo "getfattr=$?"'
	assert_status 0
	assert_eq "" "$stderr"
	assert_eq "a=0
1
getfattr=0" "$output"
}

@test "view files list no attribute names and refuse values; readable files keep both" {
	python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.owner.alice-payroll", b"v")' "$P/README.md" 2>/dev/null ||
		skip "no user xattrs on the test filesystem"
	local probe='import os
for p in ["README.md", "a"]:
    try:
        print(p, "list", os.listxattr(p))
    except OSError as e:
        print(p, "list", os.strerror(e.errno))
    for n in ["user.owner.alice-payroll", "security.selinux", "system.posix_acl_access"]:
        try:
            print(p, "get", n, os.getxattr(p, n))
        except OSError as e:
            print(p, "get", n, os.strerror(e.errno))'
	run --separate-stderr af run --changes discard -p view-only -w /workspace "$P" -- python3 -c "$probe"
	assert_status 0
	assert_eq "README.md list []
README.md get user.owner.alice-payroll Permission denied
README.md get security.selinux No data available
README.md get system.posix_acl_access Operation not supported
a list []
a get user.owner.alice-payroll Permission denied
a get security.selinux No data available
a get system.posix_acl_access Operation not supported" "$output"
	run --separate-stderr af run --changes discard -p read-only -w /workspace "$P" -- python3 -c "$probe"
	assert_status 0
	assert_eq "README.md list ['user.owner.alice-payroll']
README.md get user.owner.alice-payroll b'v'
README.md get security.selinux No data available
README.md get system.posix_acl_access Operation not supported
a list []
a get user.owner.alice-payroll No data available
a get security.selinux No data available
a get system.posix_acl_access Operation not supported" "$output"
}

@test "explain: columns line up for non-ASCII paths (display width, not bytes)" {
	run --separate-stderr af explain "$P" /README.md /日本語.txt /café.md /emoji🙂.md
	assert_status 0
	assert_eq "/README.md   read  ** = read @0 (preset agent-safe)
/日本語.txt  read  ** = read @0 (preset agent-safe)
/café.md     read  ** = read @0 (preset agent-safe)
/emoji🙂.md  read  ** = read @0 (preset agent-safe)" "$output"
	# a combining accent takes no column; a byte that is not UTF-8 one
	run --separate-stderr af explain "$P" "/cafe$(printf '\xcc\x81').md" "/x$(printf '\xff').md" /abcdefgh.md
	assert_status 0
	assert_eq "/cafe$(printf '\xcc\x81').md      read  ** = read @0 (preset agent-safe)
/x$(printf '\xff').md        read  ** = read @0 (preset agent-safe)
/abcdefgh.md  read  ** = read @0 (preset agent-safe)" "$output"
	# the same under any locale the user has
	run --separate-stderr env LC_ALL=C.UTF-8 "$AGENTFENSE" explain "$P" /README.md /日本語.txt
	assert_eq "/README.md   read  ** = read @0 (preset agent-safe)
/日本語.txt  read  ** = read @0 (preset agent-safe)" "$output"
}

@test "policy file: preset = read-only replaces the default preset" {
	printf '[policy]\npreset = read-only\n' >"$T/ro.ini"
	run --separate-stderr af explain --policy "$T/ro.ini" "$P" /output/x
	assert_status 0
	assert_eq "/output/x  read  ** = read @0 (preset read-only)" "$output"
	run --separate-stderr af run --changes discard -e LC_ALL=C --policy "$T/ro.ini" "$P" -- sh -c 'echo x > /workspace/output/x'
	assert_status 2
	assert_contains "$stderr" "Permission denied"
	# a file naming no preset keeps the default
	printf '[rules]\n/docs/** = write\n' >"$T/rules.ini"
	run --separate-stderr af explain --policy "$T/rules.ini" "$P" /output/x
	assert_contains "$output" "(preset agent-safe)"
	# two files: the one naming a preset decides for both
	run --separate-stderr af explain --policy "$T/rules.ini" --policy "$T/ro.ini" "$P" /output/x /docs/a
	assert_eq "/output/x  read   ** = read @0 (preset read-only)
/docs/a    write  /docs/** = write @0 ($T/rules.ini:2)" "$output"
}

@test "a user preset that overrides a built-in one is announced once at run time" {
	user_preset read-only '[rules]
** = read'
	printf '[policy]\npreset = read-only\n' >"$T/ro.ini"
	run --separate-stderr af run --changes discard -p read-only --policy "$T/ro.ini" "$P" -- true
	assert_status 0
	assert_eq "agentfense: using the user preset 'read-only' from '$XDG_CONFIG_HOME/agentfense/presets/read-only.ini' in place of the built-in one" "$stderr"
	# a user preset of a new name overrides nothing: silence
	user_preset team '[rules]
** = read'
	run --separate-stderr af run --changes discard -p team "$P" -- true
	assert_status 0
	assert_eq "" "$stderr"
	# explain shows the origin in its output instead
	run --separate-stderr af explain -p read-only "$P" /README.md
	assert_eq "" "$stderr"
	assert_contains "$output" "read-only.ini"
}

@test "--pids: a fork bomb is contained, and the fallback or the limit is said" {
	run --separate-stderr af run --changes discard --pids 64 -t 30 "$P" -- \
		sh -c 'b(){ b|b& };b 2>/dev/null; sleep 1; echo survived'
	assert_status 0
	assert_eq "survived" "$output"
	if [[ "$stderr" == *"RLIMIT_NPROC"* ]]; then
		# no writable pids cgroup here: the fallback says so up front
		assert_contains "${stderr_lines[0]}" "agentfense: warning: --pids is applied with RLIMIT_NPROC, not a pids cgroup"
		assert_contains "${stderr_lines[1]}" "hint: to limit the sandbox as a whole"
	fi
	# either way the bomb's refused forks are reported at the end
	assert_eq "agentfense: command hit the pids limit (64)" "${stderr_lines[-1]}"
}

@test "-w ../.. does not land at /: a relative workdir stays under /workspace" {
	run --separate-stderr af run --changes discard -w ../.. "$P" -- pwd
	assert_error 125 "invalid working directory '../..': it is outside /workspace"
	run --separate-stderr af run --changes discard -w 'src/../../etc' "$P" -- pwd
	assert_error 125 "invalid working directory 'src/../../etc': it is outside /workspace"
	run --separate-stderr af run --changes discard -w './a/b/../..' "$P" -- pwd
	assert_status 0
	assert_eq "/workspace" "$output"
	run --separate-stderr af run --changes discard -w src/lib "$P" -- pwd
	assert_eq "/workspace/src/lib" "$output"
	# an absolute path is the user's explicit choice
	run --separate-stderr af run --changes discard -w /tmp "$P" -- pwd
	assert_status 0
	assert_eq "/tmp" "$output"
	[ "$(runs_count)" = 0 ]
}

@test "-w through a symbolic link in the project cannot leave /workspace" {
	ln -s / "$P/up"
	ln -s ../.. "$P/src/dotdot"
	ln -s src/lib "$P/lib-link"
	run --separate-stderr af run --changes discard -p development -w up "$P" -- sh -c 'echo ran; pwd'
	assert_error 125 "cannot change to working directory '/workspace/up'"
	assert_eq "hint: a symbolic link on the way leads outside /workspace; give an absolute path to work there" "${stderr_lines[1]}"
	run --separate-stderr af run --changes discard -p development -w src/dotdot "$P" -- sh -c 'echo ran; pwd'
	assert_error 125 "cannot change to working directory '/workspace/src/dotdot'"
	# a link that stays inside is followed
	run --separate-stderr af run --changes discard -p development -w lib-link "$P" -- sh -c 'ls'
	assert_status 0
	assert_eq "util.c" "$output"
}

@test "--rootfs: an empty directory says what is missing, not 127" {
	mkdir "$T/empty"
	run --separate-stderr af run --changes discard --rootfs "$T/empty" "$P" -- true
	assert_error 125 "cannot use '$T/empty' as --rootfs: it is empty: a root filesystem needs the command to run, its interpreter and libraries"
	assert_eq "hint: unpack an image into it (e.g. 'tar -xf rootfs.tar -C $T/empty'), or use --image OCI-DIR" "${stderr_lines[1]}"
	[ "$(runs_count)" = 0 ]
	# one entry is enough to be tried: then the command's own status
	mkdir "$T/empty/bin"
	run -127 --separate-stderr af run --changes discard --rootfs "$T/empty" "$P" -- true
	assert_status 127
}

@test "a script whose interpreter the sandbox lacks: the interpreter is named" {
	# a venv made on the host names the host's path of the project
	mkdir -p "$P/venv/bin"
	ln -s /usr/bin/python3 "$P/venv/bin/python3"
	printf '#!%s/venv/bin/python3\nprint("ran")\n' "$P" >"$P/venv/bin/pip"
	printf '#!/opt/no-such/bash -e\necho ran\n' >"$P/src/tool"
	chmod +x "$P/venv/bin/pip" "$P/src/tool"
	run -127 --separate-stderr af run --changes discard "$P" -- venv/bin/pip
	assert_error 127 "cannot run 'venv/bin/pip': its interpreter '$P/venv/bin/python3' does not exist in the sandbox"
	assert_eq "hint: the project is at /workspace in the sandbox, not at '$P': a script made on the host names the host's paths; make it again inside the sandbox, or show the project at its own path with --host-path" "${stderr_lines[1]}"
	# which --host-path does
	run --separate-stderr af run --changes discard --host-path "$P" -- venv/bin/pip
	assert_status 0
	assert_output ran
	# found in PATH too
	run -127 --separate-stderr af run --changes discard -e PATH=/workspace/src:/usr/bin:/bin "$P" -- tool
	assert_error 127 "cannot run 'tool': its interpreter '/opt/no-such/bash' does not exist in the sandbox"
	assert_eq 1 "${#stderr_lines[@]}"
	# the interpreter of a file the policy hides is not told
	printf '#!/opt/secret-interpreter\n' >"$P/secrets/run"
	chmod +x "$P/secrets/run"
	run -127 --separate-stderr af run --changes discard "$P" -- ./secrets/run
	assert_error 127 "cannot run './secrets/run': No such file or directory"
	refute_contains "$stderr" "secret-interpreter"
}

@test "a command on the host but not in the sandbox: said, with the --ro-bind that shows it" {
	mkdir -p "$T/home/.local/bin"
	printf '#!/bin/sh\necho agent ran\n' >"$T/home/.local/bin/myagent"
	chmod +x "$T/home/.local/bin/myagent"
	run -127 --separate-stderr af run --changes discard "$P" -- "$T/home/.local/bin/myagent"
	assert_error 127 "cannot run '$T/home/.local/bin/myagent': No such file or directory"
	assert_eq "hint: '$T/home/.local/bin/myagent' exists on the host, but the sandbox shows only the system directories, the project and what is bound" "${stderr_lines[1]}"
	assert_eq "hint: '--ro-bind $T/home/.local/bin' shows its directory in the sandbox" "${stderr_lines[2]}"
	run --separate-stderr af run --changes discard --ro-bind "$T/home/.local/bin" "$P" -- "$T/home/.local/bin/myagent"
	assert_status 0
	assert_output "agent ran"
	# nothing on the host either: no hint
	run -127 --separate-stderr af run --changes discard "$P" -- "$T/home/nothing"
	assert_error 127 "cannot run '$T/home/nothing': No such file or directory"
	assert_eq 1 "${#stderr_lines[@]}"
}

@test "the state directory overlapping the project or a bind: the hint names XDG_STATE_HOME" {
	XDG_STATE_HOME=$P/.state run --separate-stderr af run --changes discard "$P" -- true
	assert_error 125 "it overlaps agentfense's state directory '$P/.state/agentfense/runs'"
	assert_eq "hint: the state directory is \$XDG_STATE_HOME/agentfense/runs (~/.local/state/agentfense/runs when unset): point XDG_STATE_HOME outside the project" "${stderr_lines[1]}"
	mkdir -p "$RUNS"
	run --separate-stderr af run --changes discard --ro-bind "$XDG_STATE_HOME:/st" "$P" -- true
	assert_error 125 "it overlaps agentfense's state directory"
	assert_contains "${stderr_lines[1]}" "or point XDG_STATE_HOME elsewhere"
}

@test "--net host: an /etc/resolv.conf linking into /run is followed, that file alone shown read-only" {
	# systemd-resolved's layout, made in a mount namespace of our own:
	# a copy of /etc whose resolv.conf links into a /run of our own
	mkdir "$T/etc"
	cp -a /etc/. "$T/etc/" 2>/dev/null || true
	rm -f "$T/etc/resolv.conf"
	ln -s ../run/systemd/resolve/stub-resolv.conf "$T/etc/resolv.conf"
	run --separate-stderr env AF_TEST_MARK="$T" unshare -Urm sh -c '
		mount --bind "$1/etc" /etc && mount -t tmpfs tmpfs /run &&
		mkdir -p /run/systemd/resolve /run/secret &&
		echo "nameserver 127.0.0.53" >/run/systemd/resolve/stub-resolv.conf &&
		echo private >/run/secret/x || exit 99
		"$2" run --changes discard --net host "$3" -- sh -c "cat /etc/resolv.conf; ls /run/systemd/resolve; cat /run/secret/x"
		echo "host:$?"
		"$2" run --changes discard "$3" -- cat /etc/resolv.conf
		echo "none:$?"
		"$2" run --dry-run --net host "$3" -- true | grep resolv' \
		sh "$T" "$AGENTFENSE" "$P"
	assert_status 0
	assert_eq "nameserver 127.0.0.53
stub-resolv.conf
host:1
none:1
  /run/systemd/resolve/stub-resolv.conf '/run/systemd/resolve/stub-resolv.conf', read-only: /etc/resolv.conf leads there (--net host)" "$output"
	assert_eq "cat: /run/secret/x: No such file or directory
cat: /etc/resolv.conf: No such file or directory" "$stderr"
}

@test "--ro-bind: a symbolic link says what it is, as source or destination" {
	ln -s "$T/nowhere" "$T/dangling"
	run --separate-stderr af run --changes discard --ro-bind "$T/dangling:/x" "$P" -- true
	assert_error 125 "invalid --ro-bind '$T/dangling:/x': source '$T/dangling' is a symbolic link to '$T/nowhere': No such file or directory"
	# a link as the source is followed: the file it leads to is shown
	printf 'linked\n' >"$T/real.txt"
	ln -s real.txt "$T/link.txt"
	run --separate-stderr af run --changes discard --ro-bind "$T/link.txt:/l.txt" "$P" -- cat /l.txt
	assert_status 0
	assert_output linked
	# a destination the host's /etc shows as a link is no directory
	if [ -L /etc/localtime ]; then
		run --separate-stderr af run --changes discard --ro-bind /etc/localtime "$P" -- true
		assert_error 125 "cannot bind a file on '/etc/localtime': it is a symbolic link in the sandbox, to '$(readlink /etc/localtime)'"
		assert_eq "hint: give the path it points to as the destination, or another path" "${stderr_lines[1]}"
	fi
}

@test "--workspace PATH and --host-path: the project elsewhere than /workspace, what is above it hidden" {
	local real
	real=$(cd "$P" && pwd -P)
	run --separate-stderr af run --workspace /src/app -w output "$P" -- sh -c \
		'pwd; echo "$PWD"; echo x >new; ls -A /src; ls -d /workspace 2>&1; cat ../README.md'
	assert_status 0
	assert_output "/src/app/output
/src/app/output
app
ls: cannot access '/workspace': No such file or directory
hello agentfense"
	assert_eq x "$(cat "$P/output/new")"
	# at its own host path: a path made on the host holds inside, the
	# directories above show nothing else, the policy is the same
	run --separate-stderr af run --changes discard --host-path "$P" -- sh -c \
		"pwd; ls -A '$real/..'; cat '$real/.env' 2>&1; ls -A '$T' | grep -c . || true"
	assert_status 0
	assert_eq "$real
$(basename "$real")
cat: $real/.env: No such file or directory
1" "$output"
	# a relative -w stays beneath it
	ln -s / "$P/up"
	run --separate-stderr af run --changes discard -p development --workspace /w -w up "$P" -- pwd
	assert_error 125 "cannot change to working directory '/w/up'"
	run --separate-stderr af run --dry-run --workspace /w "$P" -- true
	assert_contains "$output" "
  /w             '$real' through the permissioned, copy-on-write view
"
}

@test "--workspace: a relative, unclean or taken path is refused" {
	run --separate-stderr af run --workspace rel "$P" -- true
	assert_error 125 "invalid --workspace 'rel': expected an absolute path"
	run --separate-stderr af run --workspace / "$P" -- true
	assert_error 125 "invalid --workspace '/': expected an absolute path below '/', without '.' or '..'"
	run --separate-stderr af run --workspace /a/../b "$P" -- true
	assert_error 125 "invalid --workspace '/a/../b'"
	local d top
	for d in /usr/x /etc /proc/w /dev/w; do
		top=${d#/}
		top=${top%%/*}
		run --separate-stderr af run --workspace "$d" "$P" -- true
		assert_error 125 "cannot show the project at '$d' (--workspace)"
		assert_eq "hint: the sandbox shows '/$top' as it is, read-only; choose a path outside it" "${stderr_lines[1]}"
	done
	run --separate-stderr af run --tmpfs /w --workspace /w/p "$P" -- true
	assert_error 125 "cannot show the project at '/w/p' (--workspace): it overlaps the --tmpfs at '/w'"
	run --separate-stderr af run --workspace /a --host-path "$P" -- true
	assert_error 125 "only one of --workspace and --host-path, once"
	assert_eq 0 "$(runs_count)"
}
