#!/usr/bin/env bats
# A project on a case-insensitive file system: rules decide on the entry
# the host resolves, whatever spelling the sandbox uses.
#
# The kernel here has neither vfat nor casefold support, so the project
# is put on casefs (tests/tools/casefs.c), a passthrough FUSE file system
# that resolves names without regard to case, mounted as the test user.

load helper

setup() {
	af_setup
	CASEFS=${AF_BUILD:-$(cd "$BATS_TEST_DIRNAME/../.." && pwd)/build}/casefs
	if [ ! -x "$CASEFS" ]; then
		echo "casefs is not built: run 'make tools' (make check builds it)" >&2
		return 1
	fi
	# the standard project, moved behind a case-insensitive mount
	B=$T/backing
	M=$T/ci
	mv "$P" "$B"
	printf '%s_token\n' "$SECRET_MARK" >"$B"/secrets/token.txt
	printf '{"token": "%s_root_credentials"}\n' "$SECRET_MARK" >"$B"/credentials.json
	mkdir -p "$B"/.git/hooks "$B"/.git/objects
	printf 'ref: refs/heads/main\n' >"$B"/.git/HEAD
	printf '[core]\n' >"$B"/.git/config
	printf 'notes\n' >"$B"/output/Notes.txt
	mkdir "$M"
	"$CASEFS" "$B" "$M"
	P=$M
	# the mount folds case, or nothing below tests anything
	assert_eq "hello agentfense" "$(cat "$M"/readme.MD)"
}

teardown() {
	# af_teardown reports a mount this leaves behind
	if [ -n "${M:-}" ] && grep -qF " $M " /proc/self/mountinfo; then
		fusermount3 -u "$M" || true
	fi
	af_teardown
}

@test "casefold: other spellings of hidden files are absent" {
	run --separate-stderr ops -- cat .ENV cat Secrets/token.txt cat server.KEY \
		cat Credentials.json cat SECRETS/KEY.TXT stat .Env stat SECRETS \
		cat CONFIG/CREDENTIALS.JSON cat README.md
	assert_status 0
	assert_output "cat .ENV: ENOENT
cat Secrets/token.txt: ENOENT
cat server.KEY: ENOENT
cat Credentials.json: ENOENT
cat SECRETS/KEY.TXT: ENOENT
stat .Env: ENOENT
stat SECRETS: ENOENT
cat CONFIG/CREDENTIALS.JSON: ENOENT
cat README.md: 'hello agentfense\n'"
	refute_contains "$stderr" "$SECRET_MARK"
}

@test "casefold: a hook written as .GIT/hooks never reaches .git (development preset)" {
	local before
	before=$(tree_sig "$B"/.git)
	run --separate-stderr af run --preset development "$P" -- python3 -c "$OPS_PY" \
		mkdir .GIT create .GIT/hooks/pre-commit mkdir .Git/HOOKS \
		create .git/HOOKS/pre-commit mkdir .git/Hooks level .git/hooks
	assert_status 0
	assert_output "mkdir .GIT: EACCES
create .GIT/hooks/pre-commit: ENOENT
mkdir .Git/HOOKS: ENOENT
create .git/HOOKS/pre-commit: ENOENT
mkdir .git/Hooks: EACCES
level .git/hooks: none"
	assert_eq "$before" "$(tree_sig "$B"/.git)"
	[ ! -e "$B"/.git/hooks/pre-commit ]
	assert_eq 0 "$(runs_count)"
}

@test "casefold: Unicode spellings that fold to ASCII (LONG S, KELVIN SIGN) are absent" {
	# U+017F folds to s and U+212A to k, as in ext4's casefolding
	local S K
	S=$(printf '\xc5\xbf')
	K=$(printf '\xe2\x84\xaa')
	run --separate-stderr ops -- cat "${S}ecrets/key.txt" cat "SECRET$S/token.txt" \
		cat "server.${K}ey" cat "config/credential$S.json" cat "a/b/${S}ecrets/deep.txt" \
		create "output/${S}ecrets" create "output/x.${K}EY"
	assert_status 0
	assert_output "cat ${S}ecrets/key.txt: ENOENT
cat SECRET$S/token.txt: ENOENT
cat server.${K}ey: ENOENT
cat config/credential$S.json: ENOENT
cat a/b/${S}ecrets/deep.txt: ENOENT
create output/${S}ecrets: EACCES
create output/x.${K}EY: EACCES"
	refute_contains "$stderr" "$SECRET_MARK"
}

@test "casefold: entries whose real names differ only in case from a rule are hidden and never listed" {
	mkdir "$B"/a/Secrets
	printf '%s_a_secrets\n' "$SECRET_MARK" >"$B"/a/Secrets/hidden.txt
	printf '%s_server_key2\n' "$SECRET_MARK" >"$B"/a/Server.Key
	printf '%s_env2\n' "$SECRET_MARK" >"$B"/docs/.ENV.local
	printf '%s_cred2\n' "$SECRET_MARK" >"$B"/docs/CREDENTIALS.txt
	run --separate-stderr inside -- 'ls -a a docs; cat a/Secrets/hidden.txt a/Server.Key docs/.ENV.local docs/CREDENTIALS.txt; find . -iname "*secret*" -o -iname "*.key" -o -iname ".env*"; grep -r '"$SECRET_MARK"' .; echo rc=$?'
	assert_status 0
	assert_output "a:
.
..
b
readme.txt

docs:
.
..
guide.txt
notes.md
rc=1"
	refute_contains "$stderr" "$SECRET_MARK"
}

@test "casefold: new names in a folding directory get the level of their folded rule" {
	run --separate-stderr ops -- create output/SERVER.KEY mkdir output/Secrets \
		create output/.ENV create output/Credentials.yml create output/ok.txt \
		symlink x output/Id.PEM mkfifo output/.Env.fifo mv output/ok.txt output/OK.KEY \
		link output/Notes.txt output/n.KEY mkdir output/d mv output/d output/Secrets \
		mv output/d output/a.Pem ls output
	assert_status 0
	assert_output "create output/SERVER.KEY: EACCES
mkdir output/Secrets: EACCES
create output/.ENV: EACCES
create output/Credentials.yml: EACCES
create output/ok.txt: OK
symlink x output/Id.PEM: EACCES
mkfifo output/.Env.fifo: EACCES
mv output/ok.txt output/OK.KEY: EACCES
link output/Notes.txt output/n.KEY: EACCES
mkdir output/d: OK
mv output/d output/Secrets: EACCES
mv output/d output/a.Pem: EACCES
ls output: Notes.txt,d,ok.txt"
}

@test "casefold: another spelling of a visible entry cannot be created, renamed to, or opened" {
	run --separate-stderr ops -- cat output/notes.txt create output/NOTES.TXT \
		mkdir output/notes.TXT mv output/Notes.txt output/notes.txt link output/Notes.txt output/NOTES.txt \
		append output/Notes.txt create output/new.txt create output/NEW.txt mkdir output/New.Txt \
		ls output cat output/Notes.txt
	assert_status 0
	assert_output "cat output/notes.txt: ENOENT
create output/NOTES.TXT: EACCES
mkdir output/notes.TXT: EACCES
mv output/Notes.txt output/notes.txt: EACCES
link output/Notes.txt output/NOTES.txt: EACCES
append output/Notes.txt: OK
create output/new.txt: OK
create output/NEW.txt: EACCES
mkdir output/New.Txt: EACCES
ls output: Notes.txt,new.txt
cat output/Notes.txt: 'notes\nW\n'"
}

@test "casefold: sync writes no entry of the delta into another spelling in the project" {
	# É folds to é on casefs, as on ext4, but the view folds ASCII only:
	# both directories are new to the sandbox, and one to the project,
	# where the second must not be entered as the first
	run --separate-stderr af run "$P" -- sh -c \
		'mkdir output/CAFÉ output/café && printf one >output/CAFÉ/x && printf two >output/café/y && ls output'
	assert_status 0
	assert_output "CAFÉ
Notes.txt
café"
	assert_contains "$stderr" "conflict: the project has 'output/café' under another spelling"
	assert_contains "$stderr" "1 change not synced"
	assert_eq "one" "$(cat "$B"/output/CAFÉ/x)"
	assert_eq "x" "$(ls "$B"/output/CAFÉ)"
	assert_eq "CAFÉ
Notes.txt" "$(ls "$B"/output)"
	assert_eq 1 "$(runs_count)"
	assert_eq "two" "$(cat "$RUNS"/*/upper/output/café/y)"
}

@test "casefold: files of the real spelling are read, written and synced as usual" {
	run --separate-stderr af run "$P" -- sh -c \
		'cat README.md docs/guide.txt && printf new >output/Report.txt && printf more >>output/Notes.txt && mkdir output/Sub && printf s >output/Sub/x && ls output'
	assert_status 0
	assert_output "hello agentfense
guide
Notes.txt
Report.txt
Sub"
	assert_eq "new" "$(cat "$B"/output/Report.txt)"
	assert_eq "notes
more" "$(cat "$B"/output/Notes.txt)"
	assert_eq "s" "$(cat "$B"/output/Sub/x)"
	assert_eq 0 "$(runs_count)"
}

@test "casefold: where the file system tells case apart, rules stay byte for byte" {
	# the backing directory itself (ext4 or tmpfs): Secrets/ is not secrets/
	mkdir "$B"/Secrets
	printf 'not a secret\n' >"$B"/Secrets/readme.txt
	run --separate-stderr af run --changes discard "$B" -- sh -c \
		'cat Secrets/readme.txt; cat secrets/readme.txt SECRETS/key.txt .ENV 2>&1; true'
	assert_status 0
	assert_output "not a secret
cat: secrets/readme.txt: No such file or directory
cat: SECRETS/key.txt: No such file or directory
cat: .ENV: No such file or directory"
}

@test "casefold: explain decides as the view does on a case-insensitive project" {
	run --separate-stderr af explain "$P" .ENV Secrets/token.txt output/x.KEY README.md
	assert_status 0
	assert_output "/.ENV               none  .env* = none @100 (preset agent-safe)
/Secrets/token.txt  none  secrets/ = none @100 (preset agent-safe)
/output/x.KEY       none  *.key = none @100 (preset agent-safe)
/README.md          read  ** = read @0 (preset agent-safe)"
}

@test "casefold: --ro-bind and --bind of a project directory under another spelling are refused" {
	# the project is a directory of the case-insensitive mount, so
	# another spelling of its path is not below it as a string
	local proj=$M/a/b
	run --separate-stderr af run --ro-bind "$M/A/B/SECRETS:/s" "$proj" -- cat /s/deep.txt
	assert_error 125 "cannot bind '$M/A/B/SECRETS' (--ro-bind): it is inside the project '$proj'"
	run --separate-stderr af run --bind "$M/a/B/secrets:/s" "$proj" -- cat /s/deep.txt
	assert_error 125 "cannot bind '$M/a/B/secrets' (--bind): it is inside the project '$proj'"
	run --separate-stderr af run --ro-bind "$M/A:/s" "$proj" -- cat /s/b/secrets/deep.txt
	assert_error 125 "cannot bind '$M/A' (--ro-bind): it holds the project '$proj'"
	run --separate-stderr af run --ro-bind "$M/A/b:/s" "$proj" -- cat /s/secrets/deep.txt
	assert_error 125 "cannot bind '$M/A/b' (--ro-bind): it is the project '$proj'"
	assert_eq 0 "$(runs_count)"
}

@test "casefold: --rootfs inside the project under another spelling is refused" {
	local proj=$M/a
	run --separate-stderr af run --rootfs "$M/A/B" "$proj" -- true
	assert_error 125 "cannot use '$M/A/B' as --rootfs: it is inside the project '$proj'"
}

@test "casefold: a state directory that ignores case is refused before the command runs" {
	# two project names that differ in case only would be one object in
	# such a delta
	export XDG_STATE_HOME=$M/output/state
	mkdir "$T"/cs
	printf 'public\n' >"$T"/cs/a
	printf 'hidden\n' >"$T"/cs/A
	run --separate-stderr af run --rule 'a=write' --rule 'A=none' "$T"/cs -- sh -c 'cat a; echo x >a; echo ran'
	assert_error 125 "cannot use the delta '$M/output/state/agentfense/runs/" "': its file system ignores case"
	assert_contains "${stderr_lines[1]}" "hint: set XDG_STATE_HOME to a directory on a file system that tells case apart"
	assert_eq "public" "$(cat "$T"/cs/a)"
	assert_eq "hidden" "$(cat "$T"/cs/A)"
	assert_eq "" "$(ls -A "$B"/output/state/agentfense/runs)"
}
