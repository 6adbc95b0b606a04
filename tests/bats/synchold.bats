#!/usr/bin/env bats
# What sync holds back although nothing conflicts: a repository, or its
# configuration, that git or Mercurial on the host would obey, and
# symlinks that lead out of the project or to what the policy hides.
# Held entries stay in the kept delta, one line each says why.

load helper
load sync_helper

R_HG="is a name Mercurial takes for '.hg' (a repository), whose configuration hg on the host would run"
R_HINT="hint: a symlink out of the project is never synced, the host's files being other than the sandbox's; make it on the host if it is wanted"

r_hgconf() { printf "is configuration of the Mercurial repository '%s', which hg on the host would run" "$1"; }

# ---- git -------------------------------------------------------------------

@test "git: a repository planted in output/ is held; git status on the host runs nothing" {
	run --separate-stderr af run "$P" -- sh -c 'cd /workspace/output
mkdir -p objects refs/heads
echo "ref: refs/heads/main" > HEAD
printf "[core]\n\tfsmonitor = \"touch '"$T"'/pwned; echo x\"\n" > config
echo data > result.txt'
	assert_status 0
	assert_output ""
	assert_eq "$(held output/HEAD "$(r_gitdir output)")
$(held output/config "$(r_gitconf output)")
$(held output/objects "$(r_gitdir output)")
$(held output/refs "$(r_gitdir output)")
$(summary 4)" "$(without_synced 4)"
	# the rest synced; the planted repository did not
	assert_eq "result.txt" "$(ls -A "$P/output")"
	run host_git "$P/output" status
	assert_status 128
	assert_contains "$output" "fatal: not a git repository"
	[ ! -e "$T/pwned" ]
	# the held entries stay in the delta for review
	run_d=$(run_dir)
	assert_eq "ref: refs/heads/main" "$(cat "$run_d/upper/output/HEAD")"
	assert_contains "$(cat "$run_d/upper/output/config")" "fsmonitor"
	[ -d "$run_d/upper/output/refs/heads" ]
}

@test "git: development preset, a repository planted in src/ is held" {
	run --separate-stderr af run -p development "$P" -- sh -c 'cd /workspace/src
mkdir -p objects refs
echo "ref: refs/heads/main" > HEAD
mkdir hooks && printf "#!/bin/sh\ntouch '"$T"'/pwned\n" > hooks/post-checkout'
	assert_status 0
	assert_eq "$(held src/HEAD "$(r_gitdir src)")
$(held src/hooks "$(r_gitconf src)")
$(held src/objects "$(r_gitdir src)")
$(held src/refs "$(r_gitdir src)")
$(summary 4)" "$(without_synced 4)"
	assert_eq "lib
main.c" "$(ls -A "$P/src")"
	run host_git "$P/src" status
	assert_status 128
}

@test "git: the merged tree decides: HEAD added beside a project's objects/ and refs/ is held" {
	mkdir -p "$P/output/objects" "$P/output/refs"
	run --separate-stderr af run "$P" -- sh -c 'cd /workspace/output
echo "ref: refs/heads/main" > HEAD
printf "[core]\n\tfsmonitor = \"touch '"$T"'/pwned\"\n" > config'
	assert_status 0
	assert_eq "$(held output/HEAD "$(r_gitdir output)")
$(held output/config "$(r_gitconf output)")
$(summary 2)" "$(without_synced 2)"
	assert_eq "objects
refs" "$(ls -A "$P/output")"
	run host_git "$P/output" status
	assert_status 128
	[ ! -e "$T/pwned" ]
}

@test "git: the merged tree decides: objects/ and refs/ added beside a project's HEAD are held" {
	echo "ref: refs/heads/main" >"$P/output/HEAD"
	run --separate-stderr af run "$P" -- sh -c 'cd /workspace/output && mkdir objects refs'
	assert_status 0
	assert_eq "$(held output/objects "$(r_gitdir output)")
$(held output/refs "$(r_gitdir output)")
$(summary 2)" "$(without_synced 2)"
	assert_eq "HEAD" "$(ls -A "$P/output")"
}

@test "git: HEAD and commondir (a linked worktree's repository) are held" {
	run --separate-stderr af run "$P" -- sh -c 'cd /workspace/output
echo "ref: refs/heads/main" > HEAD
echo ../../.git > commondir'
	assert_status 0
	assert_eq "$(held output/HEAD "$(r_gitdir output)")
$(held output/commondir "$(r_gitdir output)")
$(summary 2)" "$(without_synced 2)"
	assert_eq "" "$(ls -A "$P/output")"
}

@test "git: configuration and hooks written into a bare repository of the project are held" {
	git init -q --bare "$P/fixtures.git"
	cp "$P/fixtures.git/config" "$T/config.before"
	run --separate-stderr af run -p development "$P" -- sh -c 'cd /workspace/fixtures.git
printf "[core]\n\tfsmonitor = \"touch '"$T"'/pwned\"\n" >> config
printf "#!/bin/sh\ntouch '"$T"'/pwned\n" > hooks/post-checkout
echo "a description" > description'
	assert_status 0
	assert_eq "$(held fixtures.git/config "$(r_gitconf fixtures.git)")
$(held fixtures.git/hooks "$(r_gitconf fixtures.git)")
$(summary 2)" "$(without_synced 2)"
	# what git does not run synced
	assert_eq "a description" "$(cat "$P/fixtures.git/description")"
	cmp "$T/config.before" "$P/fixtures.git/config"
	[ ! -e "$P/fixtures.git/hooks/post-checkout" ]
}

@test "git: '.git' under other spellings (case, trailing dots and spaces, 8.3, HFS+) is held" {
	run --separate-stderr af run -p full-access "$P" -- python3 -c '
import os
os.chdir("/workspace/output")
os.mkdir(".GIT")
open(".GIT/HEAD", "w").write("ref: refs/heads/main\n")
for n in [".git.", ".Git ", "GIT~1", ".g\u200cit", "\ufeff.git", ".git::$INDEX_ALLOCATION"]:
    open(n, "w").write("gitdir: /tmp/elsewhere\n")
for n in [".gitignore", ".github", ".gitkeep", "git", "digit", ".git2", "git~2"]:
    open(n, "w").write("plain\n")
'
	assert_status 0
	run_d=$(run_dir)
	expect=
	for n in .GIT .Git\  .git. .git::\$INDEX_ALLOCATION .g$'\xe2\x80\x8c'it GIT~1 $'\xef\xbb\xbf'.git; do
		expect+="$(held "output/$n" "$R_DOTGIT")"$'\n'
	done
	expect+="$(summary 7)"
	assert_eq "$expect" "$(without_synced 7)"
	assert_eq ".git2
.github
.gitignore
.gitkeep
digit
git
git~2" "$(cd "$P/output" && LC_ALL=C ls -A)"
}

@test "git: a '.git' file saying gitdir: is held (full-access, where the view allows it)" {
	mkdir -p "$T/evil" && git init -q --bare "$T/evil"
	printf '[core]\n\tfsmonitor = "touch %s/pwned"\n' "$T" >>"$T/evil/config"
	run --separate-stderr af run -p full-access "$P" -- sh -c "echo 'gitdir: $T/evil' > /workspace/output/.git"
	assert_status 0
	assert_eq "$(held output/.git "$R_DOTGIT")
$(summary 1)" "$(without_synced 1)"
	[ ! -e "$P/output/.git" ]
	run host_git "$P/output" status
	assert_status 128
	[ ! -e "$T/pwned" ]
}

@test "git: files named HEAD, objects or refs that make no repository still sync" {
	run --separate-stderr af run "$P" -- sh -c 'cd /workspace/output
mkdir a b c
echo "ref: refs/heads/main" > a/HEAD
mkdir b/objects b/refs
echo x > c/config && mkdir c/refs c/hooks'
	assert_status 0
	assert_eq "$(synced_line 9 0 0)" "$stderr"
	assert_eq "./a
./a/HEAD
./b
./b/objects
./b/refs
./c
./c/config
./c/hooks
./c/refs" "$(cd "$P/output" && find . -mindepth 1 | LC_ALL=C sort)"
	[ "$(runs_count)" = 0 ]
}

@test "git: a commit in the project's own repository still syncs (development)" {
	printf '.env\n*.key\n' >"$P/.gitignore"
	git -C "$P" init -q -b main
	git -C "$P" add .gitignore README.md
	git -C "$P" -c user.name=t -c user.email=t@example.com commit -qm first
	run --separate-stderr af run -p development "$P" -- sh -c 'echo changed > README.md && git -c user.name=t -c user.email=t@example.com commit -qam second'
	assert_status 0
	assert_eq "" "$(without_synced 0)"
	assert_eq "second
first" "$(git -C "$P" log --format=%s)"
	[ "$(runs_count)" = 0 ]
}

# ---- Mercurial ---------------------------------------------------------------

@test "hg: a planted .hg and the hgrc of the project's .hg are held, the store syncs" {
	mkdir -p "$P/a/.hg/store"
	echo requires >"$P/a/.hg/requires"
	run --separate-stderr af run -p development "$P" -- sh -c 'mkdir -p /workspace/output/.hg /workspace/output/.HG.
printf "[hooks]\npre-status = touch '"$T"'/pwned\n" > /workspace/output/.hg/hgrc
cp /workspace/output/.hg/hgrc /workspace/a/.hg/hgrc
echo x > /workspace/a/.hg/sharedpath
echo data > /workspace/a/.hg/store/data'
	assert_status 0
	assert_eq "$(held a/.hg/hgrc "$(r_hgconf a/.hg)")
$(held a/.hg/sharedpath "$(r_hgconf a/.hg)")
$(held output/.HG. "$R_HG")
$(held output/.hg "$R_HG")
$(summary 4)" "$(without_synced 4)"
	assert_eq "data" "$(cat "$P/a/.hg/store/data")"
	assert_eq "requires
store" "$(ls -A "$P/a/.hg")"
	assert_eq "" "$(ls -A "$P/output")"
}

# ---- symbolic links ----------------------------------------------------------

@test "links: a link to a hidden file is held, the host never reads the secret through it" {
	run --separate-stderr af run "$P" -- sh -c 'cd /workspace/output
ln -s ../.env report.txt
cat report.txt; echo "cat=$?"'
	assert_status 0
	assert_output "cat=1"
	assert_eq "cat: report.txt: No such file or directory
$(held output/report.txt "is a symlink to '../.env': it leads to '.env', which the policy hides")
$(summary 1)" "$(without_synced 1)"
	[ ! -e "$P/output/report.txt" ] && [ ! -L "$P/output/report.txt" ]
	run tar -C "$P" -ch output
	refute_contains "$output" "$SECRET_MARK"
	assert_eq "../.env" "$(readlink "$(run_dir)/upper/output/report.txt")"
}

@test "links: chains through the sandbox's links and the project's own are held" {
	ln -s ../.env "$P/docs/env-link"
	run --separate-stderr af run "$P" -- sh -c 'cd /workspace/output
ln -s ../.env a
ln -s a b
ln -s ../docs/env-link c
ln -s ./sub/../b d'
	assert_status 0
	assert_eq "$(held output/a "is a symlink to '../.env': it leads to '.env', which the policy hides")
$(held output/b "is a symlink to 'a': it leads to '.env', which the policy hides")
$(held output/c "is a symlink to '../docs/env-link': it leads to '.env', which the policy hides")
$(held output/d "is a symlink to './sub/../b': it leads to '.env', which the policy hides")
$(summary 4)" "$(without_synced 4)"
	assert_eq "" "$(ls -A "$P/output")"
}

@test "links: a link to a directory holding hidden files is held, to a clean one synced" {
	run --separate-stderr af run "$P" -- sh -c 'cd /workspace/output
ln -s .. up
ln -s ../secrets s
ln -s ../a/b ab
ln -s ../src code
ln -s ../README.md readme
mkdir d && ln -s ../../docs d/docs'
	assert_status 0
	assert_eq "$(held output/ab "is a symlink to '../a/b': it leads to 'a/b/c/.env', which the policy hides")
$(held output/s "is a symlink to '../secrets': it leads to 'secrets', which the policy hides")
$(held output/up "is a symlink to '..': it leads to '.env', which the policy hides")
$(summary 3)" "$(without_synced 3)"
	assert_eq "../src" "$(readlink "$P/output/code")"
	assert_eq "../README.md" "$(readlink "$P/output/readme")"
	assert_eq "../../docs" "$(readlink "$P/output/d/docs")"
	run tar -C "$P" -ch output
	refute_contains "$output" "$SECRET_MARK"
}

@test "links: absolute links and links out of the project are held, with a hint" {
	run --separate-stderr af run "$P" -- sh -c 'cd /workspace/output
mkdir -p venv/bin
echo "home = /usr/bin" > venv/pyvenv.cfg
ln -s /usr/bin/python3 venv/bin/python
ln -s python venv/bin/python3
ln -s ../../etc/passwd up2'
	assert_status 0
	assert_eq "$(held output/up2 "is a symlink to '../../etc/passwd': it leads outside the project")
$R_HINT
$(held output/venv/bin/python "is a symlink to '/usr/bin/python3': an absolute path, outside the project")
$(held output/venv/bin/python3 "is a symlink to 'python': it leads to '/usr/bin/python3', outside the project")
$(summary 3)" "$(without_synced 3)"
	assert_eq "home = /usr/bin" "$(cat "$P/output/venv/pyvenv.cfg")"
	assert_eq "" "$(ls -A "$P/output/venv/bin")"
}

@test "links: a dangling link to a hidden name is held, to a plain one synced" {
	run --separate-stderr af run "$P" -- sh -c 'cd /workspace/output
ln -s ../secrets/later.txt s
ln -s ../.env.production e
ln -s ../later.txt plain'
	assert_status 0
	assert_eq "$(held output/e "is a symlink to '../.env.production': it leads to '.env.production', which the policy hides")
$(held output/s "is a symlink to '../secrets/later.txt': it leads to 'secrets', which the policy hides")
$(summary 2)" "$(without_synced 2)"
	assert_eq "../later.txt" "$(readlink "$P/output/plain")"
	# created later on the host, the plain one is what the user expects
	echo later >"$P/later.txt"
	assert_eq "later" "$(cat "$P/output/plain")"
}

@test "links: a link to a path at view is held (its content would be readable on the host)" {
	run --separate-stderr af run -r 'docs/**=view' "$P" -- sh -c 'cd /workspace/output
ln -s ../docs/guide.txt g
cat g; echo "cat=$?"'
	assert_status 0
	assert_output "cat=1"
	assert_eq "cat: g: Permission denied
$(held output/g "is a symlink to '../docs/guide.txt': it leads to 'docs/guide.txt', which the policy hides")
$(summary 1)" "$(without_synced 1)"
}

@test "links: a directory shown only for a visible path in it does not hold a link through it" {
	user_preset src-only '[preset]
description = src only

[rules]
/src/** = write
/src/lib/ = none'
	run --separate-stderr af run -p src-only "$P" -- sh -c 'cd /workspace/src
ln -s main.c m
ln -s ../src/main.c m2
ln -s lib l
ln -s ../README.md r
ln -s . self'
	assert_status 0
	assert_eq "$(held src/l "is a symlink to 'lib': it leads to 'src/lib', which the policy hides")
$(held src/r "is a symlink to '../README.md': it leads to 'README.md', which the policy hides")
$(held src/self "is a symlink to '.': it leads to 'src/lib', which the policy hides")
$(summary 3)" "$(without_synced 3)"
	assert_eq "main.c" "$(readlink "$P/src/m")"
	assert_eq "../src/main.c" "$(readlink "$P/src/m2")"
}

@test "held links, their hint once and a skipped socket print in the order sync met them" {
	run --separate-stderr af run "$P" -- python3 -c '
import os
os.symlink("/etc/passwd", "/workspace/output/l")
os.symlink("../../x", "/workspace/output/m")
os.mknod("/workspace/output/sock", 0o140000 | 0o600)
open("/workspace/output/z", "w").write("z")'
	assert_status 0
	assert_output ""
	assert_eq "$(held output/l "is a symlink to '/etc/passwd': an absolute path, outside the project")
$R_HINT
$(held output/m "is a symlink to '../../x': it leads outside the project")
agentfense: warning: not syncing 'output/sock': devices and sockets are not copied to the project
$(summary 2)" "$(without_synced 2)"
	assert_eq "z" "$(cat "$P/output/z")"
	[ ! -L "$P/output/l" ]
	[ ! -L "$P/output/m" ]
	[ ! -e "$P/output/sock" ]
}
