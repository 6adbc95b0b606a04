#!/usr/bin/env bats
# The command-line surface: help, version, usage errors and bad input.
# Every bad input gives one "agentfense: ..." line (plus hints), exit 125
# for input errors and for failures of agentfense itself alike, and leaves
# neither the project nor the state directory touched.

load helper

@test "--version prints the version" {
	run --separate-stderr af --version
	assert_status 0
	[[ "$output" =~ ^agentfense\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
	run af version
	assert_status 0
	[[ "$output" =~ ^agentfense\ [0-9]+\.[0-9]+\.[0-9]+$ ]]
}

@test "help lists every subcommand" {
	run --separate-stderr af help
	assert_status 0
	assert_contains "$output" "usage: agentfense"
	for c in run preset explain help version; do
		grep -qE "^  $c " <<<"$output"
	done
	run --separate-stderr af --help
	assert_status 0
	assert_contains "$output" "usage: agentfense"
}

@test "no arguments is a usage error" {
	run --separate-stderr af
	assert_status 125
	assert_eq "" "$output"
	assert_contains "$stderr" "usage: agentfense"
}

@test "an unknown command is a usage error" {
	run --separate-stderr af frobnicate
	assert_error 125 "'frobnicate'"
}

@test "--help on every subcommand goes to stdout and exits 0" {
	for c in run preset explain; do
		run --separate-stderr af "$c" --help
		assert_status 0
		assert_contains "$output" "usage: agentfense $c"
		assert_eq "" "$stderr"
		run --separate-stderr af help "$c"
		assert_status 0
		assert_contains "$output" "usage: agentfense $c"
	done
	run --separate-stderr af run -h
	assert_status 0
	assert_contains "$output" "usage: agentfense run"
}

@test "run --help documents every option" {
	run --separate-stderr af run --help
	assert_status 0
	for o in --preset --rule --policy --workdir --env --timeout --changes --net; do
		assert_contains "$output" "$o"
	done
}

@test "run: missing DIR or COMMAND is a usage error" {
	run --separate-stderr af run
	assert_error 125
	run --separate-stderr af run "$P"
	assert_error 125
	run --separate-stderr af run "$P" --
	assert_error 125
}

@test "run: a missing DIR is a usage error naming it" {
	run --separate-stderr af run "$T/nope" -- true
	assert_error 125 "'$T/nope'" "No such file or directory"
	[ "$(runs_count)" = 0 ]
}

@test "run: a DIR that is a file is a usage error naming it" {
	run --separate-stderr af run "$P/README.md" -- true
	assert_error 125 "'$P/README.md'" "Not a directory"
}

@test "run: unknown option is a usage error" {
	run --separate-stderr af run --frobnicate "$P" -- true
	assert_error 125 "--frobnicate"
}

@test "run: an unknown preset is a usage error naming it" {
	run --separate-stderr af run -p nosuchpreset "$P" -- true
	assert_error 125 "'nosuchpreset'"
	run --separate-stderr af explain -p nosuchpreset "$P" /README.md
	assert_error 125 "'nosuchpreset'"
}

@test "run: an unknown level is a usage error naming it" {
	run --separate-stderr af run -r '/src/**=superuser' "$P" -- true
	assert_error 125 "'superuser'"
}

@test "run: malformed rules are usage errors" {
	local spec
	for spec in 'noequals' '=read' '/src=' '/src=read@' '/src=read@abc' '/src=read@1x' \
		'/src=read@99999999999999999999'; do
		run --separate-stderr af run -r "$spec" "$P" -- true
		assert_error 125
		run --separate-stderr af explain -r "$spec" "$P" /README.md
		assert_error 125
	done
}

@test "run: a rule with a negative priority is accepted" {
	run --separate-stderr af run --changes discard -r '/docs/**=none@-5' "$P" -- cat /workspace/docs/guide.txt
	assert_status 0
	assert_output "guide"
}

@test "run: bad --changes, --net, --timeout, --env values are usage errors" {
	run --separate-stderr af run --changes bogus "$P" -- true
	assert_error 125 "'bogus'"
	run --separate-stderr af run --net bogus "$P" -- true
	assert_error 125 "'bogus'"
	for t in abc -1 1x ''; do
		run --separate-stderr af run --timeout "$t" "$P" -- true
		assert_error 125
	done
	# -e KEY passes agentfense's own value: a name is needed
	run --separate-stderr af run -e NO-EQUALS "$P" -- true
	assert_error 125 "NO-EQUALS"
	run --separate-stderr af run -e =value "$P" -- true
	assert_error 125
}

@test "run: a missing --policy file is a usage error naming it" {
	run --separate-stderr af run --policy "$T/nope.ini" "$P" -- true
	assert_error 125 "$T/nope.ini"
}

@test "run: a malformed policy file is a usage error naming file and line" {
	printf '[rules]\n/src/** = read\n/docs/** = sometimes\n' >"$T/bad.ini"
	run --separate-stderr af run --policy "$T/bad.ini" "$P" -- true
	assert_error 125 "$T/bad.ini" "3"
	printf '[rules]\n/src/** read\n' >"$T/bad2.ini"
	run --separate-stderr af run --policy "$T/bad2.ini" "$P" -- true
	assert_error 125 "$T/bad2.ini" "2"
	printf '[nosuchsection]\nx = y\n' >"$T/bad3.ini"
	run --separate-stderr af run --policy "$T/bad3.ini" "$P" -- true
	assert_error 125 "$T/bad3.ini"
	printf '[policy]\npreset = nosuchpreset\n' >"$T/bad4.ini"
	run --separate-stderr af run --policy "$T/bad4.ini" "$P" -- true
	assert_error 125 "nosuchpreset"
	head -c 3000 /dev/zero | tr '\0' 'x' >"$T/bad5.ini"
	run --separate-stderr af run --policy "$T/bad5.ini" "$P" -- true
	assert_error 125 "$T/bad5.ini"
	printf '[rules]\n/a\0b = read\n' >"$T/bad6.ini"
	run --separate-stderr af run --policy "$T/bad6.ini" "$P" -- true
	assert_error 125 "$T/bad6.ini"
	[ "$(runs_count)" = 0 ]
}

@test "run: a policy file that is a directory is an error naming it" {
	mkdir "$T/dir.ini"
	run --separate-stderr af run --policy "$T/dir.ini" "$P" -- true
	assert_error 125 "$T/dir.ini"
}

@test "run: a policy file works" {
	printf '[policy]\npreset = read-only\n\n[rules]\n/docs/** = none @ 5\n' >"$T/p.ini"
	run --separate-stderr af run --changes discard --policy "$T/p.ini" "$P" -- sh -c 'ls /workspace/docs; cat /workspace/README.md'
	assert_status 0
	assert_output "hello agentfense"
}

@test "run: a DIR overlapping agentfense's state is refused" {
	run --separate-stderr af run "$T" -- true
	assert_error 125 "'$T'"
	mkdir -p "$RUNS"
	run --separate-stderr af run "$RUNS" -- true
	assert_error 125 "'$RUNS'"
	run --separate-stderr af run "$XDG_STATE_HOME" -- true
	assert_error 125 "'$XDG_STATE_HOME'"
}

@test "run: an unusable state directory is an agentfense failure (125)" {
	printf 'not a directory\n' >"$T/statefile"
	XDG_STATE_HOME=$T/statefile run --separate-stderr af run "$P" -- true
	assert_error 125 "$T/statefile"
	[ "$(cat "$T/statefile")" = "not a directory" ]
}

@test "run: bad input leaves the project untouched" {
	local before
	before=$(tree_sig "$P")
	run af run -r 'x=bogus' "$P" -- sh -c 'echo x > /workspace/output/new'
	assert_status 125
	run af run --changes bogus "$P" -- sh -c 'echo x > /workspace/output/new'
	assert_status 125
	assert_eq "$before" "$(tree_sig "$P")"
	[ "$(runs_count)" = 0 ]
}

@test "refuses to run when installed set-user-ID" {
	cp "$AGENTFENSE" "$T/af-suid"
	chmod u+s "$T/af-suid"
	run --separate-stderr "$T/af-suid" --version
	assert_error 125 "set-user-ID"
	chmod u-s,g+s "$T/af-suid"
	run --separate-stderr "$T/af-suid" run --changes discard "$P" -- true
	assert_error 125
}

@test "explain: usage errors" {
	run --separate-stderr af explain
	assert_error 125
	run --separate-stderr af explain "$P"
	assert_error 125
	run --separate-stderr af explain "$T/nope" /README.md
	assert_error 125 "'$T/nope'"
	run --separate-stderr af explain --frobnicate "$P" /README.md
	assert_error 125
}

@test "preset: usage errors" {
	run --separate-stderr af preset
	assert_status 125
	assert_eq "" "$output"
	assert_contains "$stderr" "usage: agentfense preset"
	run --separate-stderr af preset frobnicate
	assert_error 125 "frobnicate"
	run --separate-stderr af preset show
	assert_error 125
	run --separate-stderr af preset show nosuchpreset
	assert_error 125 "'nosuchpreset'"
}

# The environment problems below are simulated in a user and mount
# namespace of the test's own (unshare -r), where /dev/fuse or the user
# namespace limit can be changed without privileges.
need_unshare() {
	unshare -rm true 2>/dev/null || skip "unshare -rm is not available here to simulate the environment"
}

@test "user namespaces disabled: exit 125 and a hint naming the sysctl" {
	need_unshare
	run --separate-stderr unshare -r sh -c 'echo 0 > /proc/sys/user/max_user_namespaces && exec env AF_TEST_MARK="$1" "$AGENTFENSE" run --changes discard "$2" -- true' sh "$T" "$P"
	assert_error 125
	assert_contains "$stderr" "user.max_user_namespaces"
	[ "$(runs_count)" = 0 ]
}

@test "/dev/fuse missing: exit 125 naming it" {
	need_unshare
	mkdir "$T/emptydev"
	run --separate-stderr unshare -rm sh -c 'mount --bind "$3" /dev && exec env AF_TEST_MARK="$1" "$AGENTFENSE" run --changes discard "$2" -- true' sh "$T" "$P" "$T/emptydev"
	assert_error 125 "'/dev/fuse'" "No such file or directory"
	[ "$(runs_count)" = 0 ]
}

@test "/dev/fuse not accessible: exit 125 naming it, with a hint" {
	need_unshare
	command -v setpriv >/dev/null || skip "setpriv (util-linux) is needed to drop capabilities"
	: >"$T/fuse"
	chmod 000 "$T/fuse"
	run --separate-stderr unshare -rm sh -c 'mount --bind "$3" /dev/fuse && exec setpriv --bounding-set=-all --inh-caps=-all --securebits=+noroot,+noroot_locked env AF_TEST_MARK="$1" "$AGENTFENSE" run --changes discard "$2" -- true' sh "$T" "$P" "$T/fuse"
	assert_error 125 "'/dev/fuse'" "Permission denied"
	assert_contains "$stderr" "hint: "
	[ "$(runs_count)" = 0 ]
}
