#!/usr/bin/env bats
# Real tools on the view: git on a real repository, cp -a, tar, find,
# and stable inode numbers.

load helper

# A real repository: tracked sources, an ignored untracked .env.
make_repo() {
	printf '.env\n*.key\n' >"$P/.gitignore"
	git -C "$P" init -q -b main
	git -C "$P" add .gitignore README.md src docs a/readme.txt
	git -C "$P" -c user.name=t -c user.email=t@example.com commit -qm 'first commit'
	printf '[core]\n\tfsmonitor = echo %s\n' "$SECRET_MARK" >>"$P/.git/config"
	mkdir -p "$P/.git/hooks"
	printf '#!/bin/sh\necho %s\n' "$SECRET_MARK" >"$P/.git/hooks/post-checkout"
	chmod +x "$P/.git/hooks/post-checkout"
}

@test "git status and git log work with the development preset" {
	make_repo
	run inside -p development -- 'git status --porcelain --untracked-files=no; git log --format=%s; echo x >> README.md; git status --porcelain --untracked-files=no'
	assert_status 0
	assert_output "first commit
 M README.md"
}

@test "git status works with agent-safe (.git read-only, config cleaned, hooks hidden)" {
	make_repo
	run inside -- 'git status --porcelain --untracked-files=no; echo "status=$?"; git log --format=%s; git diff --stat; ls -A .git | grep -e ^config -e ^hooks'
	assert_status 0
	assert_output "status=0
first commit
config"
}

@test "git commit inside the view syncs back a valid repository" {
	make_repo
	run af run -q -p development "$P" -- sh -c 'echo changed > README.md && git -c user.name=t -c user.email=t@example.com commit -qam "second commit" && git log --format=%s'
	assert_status 0
	assert_contains "$output" "second commit
first commit"
	run git -C "$P" log --format=%s
	assert_output "second commit
first commit"
	run git -C "$P" fsck --no-progress
	assert_status 0
	# the fixture's fsmonitor would tell git on the host nothing changed
	run git -C "$P" -c core.fsmonitor=false status --porcelain --untracked-files=no
	assert_output ""
	# the hidden config survived untouched
	assert_contains "$(cat "$P/.git/config")" "fsmonitor = echo $SECRET_MARK"
}

@test "cp -a and tar round trip the visible tree exactly" {
	run inside -p read-only -- 'meta() { cd "$1" && find . \( -type d -printf "%p %y %m\n" \) -o -printf "%p %y %m %s %l $2\n" | sort; }
cp -a /workspace /tmp/c && diff -r /workspace /tmp/c && echo cp-ok
meta /workspace %T@ > /tmp/a && meta /tmp/c %T@ > /tmp/b && diff /tmp/a /tmp/b && echo cp-meta-ok
mkdir /tmp/t && tar -C /workspace -cf /tmp/x.tar . && tar -C /tmp/t -xf /tmp/x.tar && diff -r /workspace /tmp/t && echo tar-ok
meta /workspace %TY%Tm%Td%TH%TM > /tmp/a && meta /tmp/t %TY%Tm%Td%TH%TM > /tmp/b && diff /tmp/a /tmp/b && echo tar-meta-ok'
	assert_status 0
	assert_output "cp-ok
cp-meta-ok
tar-ok
tar-meta-ok"
}

@test "inode numbers are stable and match readdir; find sees no loops" {
	local py='
import os, sys
def walk(d, out):
    for e in os.scandir(d):
        st = os.lstat(e.path)
        if e.inode() != st.st_ino:
            print("readdir/stat mismatch", e.path, e.inode(), st.st_ino)
        out[e.path] = st.st_ino
        if e.is_dir(follow_symlinks=False):
            walk(e.path, out)
a, b = {}, {}
walk("/workspace", a)
walk("/workspace", b)
print("same" if a == b else "changed")
dirs = [p for p in a if os.path.isdir(p) and not os.path.islink(p)]
print("unique dirs" if len({a[p] for p in dirs}) == len(dirs) else "duplicate dir inodes")
'
	run af run --changes discard -p read-only "$P" -- sh -c 'python3 -c "$1"; find /workspace >/dev/null && echo find-ok' sh "$py"
	assert_status 0
	assert_output "same
unique dirs
find-ok"
}

@test "hard links in the project show as one inode" {
	ln "$P/docs/guide.txt" "$P/docs/guide-hardlink.txt"
	run af run --changes discard -p read-only "$P" -- stat -c '%i %h' /workspace/docs/guide.txt /workspace/docs/guide-hardlink.txt
	assert_status 0
	[ "${lines[0]}" = "${lines[1]}" ]
	[ "${lines[0]##* }" = 2 ]
}

@test "inode numbers stay the same across a copy-up" {
	run af run --changes discard -p development "$P" -- sh -c 'cd /workspace; a=$(stat -c %i README.md); echo x >> README.md; b=$(stat -c %i README.md); [ "$a" = "$b" ] && echo same-file; c=$(stat -c %i docs); echo x > docs/new; d=$(stat -c %i docs); [ "$c" = "$d" ] && echo same-dir'
	assert_status 0
	assert_output "same-file
same-dir"
}

# ---- git in the sandbox: real repositories, hidden tracked files --------

load sync_helper

# Fixed dates and identity, so that the same steps make the same commits
# natively and in the sandbox.
GIT_FIXED='export GIT_AUTHOR_DATE=2020-01-01T00:00:00Z GIT_COMMITTER_DATE=2020-01-01T00:00:00Z GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com'

# The tracked paths the presets hide: every secret pattern of agent-safe
# and development (.env*, secrets/, *.key, *.pem, credentials*).
HIDDEN_TRACKED='.env
.env.example
a/.env.local
a/b/c/.env
a/b/secrets/deep.txt
certs/server.pem
config/credentials.json
credentials_test.go
secrets/key.txt
server.key
tests/fixtures/client.pem'

# git_repo [sha1|sha256]: make $P a repository tracking everything in it,
# the secrets included, with a token in its remote's URL.  (No program in
# its configuration: a core.fsmonitor would fool git on the host.)
git_repo() {
	mkdir -p "$P/tests/fixtures"
	printf 'EXAMPLE=%s_example\n' "$SECRET_MARK" >"$P/.env.example"
	printf 'package x // %s_go\n' "$SECRET_MARK" >"$P/credentials_test.go"
	printf '%s_fixture\n' "$SECRET_MARK" >"$P/tests/fixtures/client.pem"
	git -C "$P" init -q -b main --object-format="${1:-sha1}"
	git -C "$P" add -A
	(cd "$P" && eval "$GIT_FIXED" && git commit -qm 'first commit')
	git -C "$P" remote add origin "https://user:${SECRET_MARK}_token@example.com/r.git?access_token=${SECRET_MARK}_q"
}

# The repository's refs and what they point at, its HEAD, and the state
# of its worktree, to compare two repositories.
repo_state() {
	git -C "$1" for-each-ref --format='%(refname) %(objectname)'
	git -C "$1" rev-parse HEAD 'HEAD^{tree}'
	git -C "$1" symbolic-ref -q HEAD || true
	git -C "$1" status --porcelain
	git -C "$1" stash list --format=%H
}

@test "git: status is clean after a no-op run and the host's index is untouched (SHA-1, SHA-256)" {
	local fmt preset
	for fmt in sha1 sha256; do
		rm -rf "$P" && make_project "$P" && git_repo $fmt
		local before
		before=$(sha256sum <"$P/.git/index")
		for preset in agent-safe development; do
			run af run -q -p $preset "$P" -- sh -c 'git status --porcelain; echo "status=$?"; git ls-files -v | grep "^S" | cut -c3-; git rev-parse --show-object-format'
			assert_status 0
			assert_output "status=0
$HIDDEN_TRACKED
$fmt"
			[ ! -e "$RUNS" ] || [ -z "$(ls -A "$RUNS")" ]
			assert_eq "$before" "$(sha256sum <"$P/.git/index")"
			run git -C "$P" status --porcelain
			assert_output ""
		done
	done
}

@test "git: add -A and commit -a never stage the deletion of hidden tracked files (SHA-1, SHA-256)" {
	local fmt
	for fmt in sha1 sha256; do
		rm -rf "$P" "$RUNS" && make_project "$P" && git_repo $fmt
		run af run -q -p development "$P" -- sh -c "$GIT_FIXED"'
echo more >> README.md && git add -A && git commit -qm add-all &&
echo again >> src/main.c && git commit -qam commit-all &&
git show --name-status --format=%s HEAD~1 HEAD && git status --porcelain'
		assert_status 0
		assert_output "add-all

M	README.md
commit-all

M	src/main.c"
		run git -C "$P" log --format=%s
		assert_output "commit-all
add-all
first commit"
		run git -C "$P" status --porcelain
		assert_output ""
		# every hidden file is still tracked, none marked skip-worktree
		run git -C "$P" ls-files -v
		refute_contains "$output" "S "
		assert_contains "$output" "H server.key"
		run git -C "$P" fsck --no-progress --no-dangling
		assert_status 0
		assert_output ""
		assert_eq "sha256" "$(git -C "$P" rev-parse --show-object-format | sed s/sha1/sha256/)"
	done
}

# The steps both runs make: commit, add -A, checkout -b, merge, rebase,
# stash, log -p, diff, blame and gc.
GIT_STEPS='set -e
echo change >> README.md; git add -A; git commit -qm c1
echo more >> src/main.c; git commit -qam c2
git checkout -qb feature; echo feat > docs/feature.txt; git add docs/feature.txt; git commit -qm feat
git checkout -q main; echo m >> docs/guide.txt; git commit -qam c3
git merge -q --no-edit feature
git checkout -qb topic HEAD~1; echo t > docs/topic.txt; git add docs/topic.txt; git commit -qm topic
git rebase -q main
echo wip >> README.md; git stash -q; git stash list | wc -l; git stash pop -q
git commit -qam after-stash
git log -p | grep -c "^diff --git"; git diff --stat HEAD~1; git blame -s README.md | wc -l
git gc -q
git status --porcelain'

@test "git: commit, merge, rebase, stash, checkout -b and gc give the host what they give natively" {
	local fmt
	for fmt in sha1 sha256; do
		rm -rf "$P" "$T/native" "$RUNS" && make_project "$P" && git_repo $fmt
		cp -a "$P" "$T/native"
		local native
		native=$(cd "$T/native" && eval "$GIT_FIXED" && sh -c "$GIT_STEPS" 2>&1) ||
			{ printf 'native run failed:\n%s\n' "$native" >&2; return 1; }
		run af run -q -p development "$P" -- sh -c "$GIT_FIXED; $GIT_STEPS"
		assert_status 0
		assert_output "$native"
		assert_eq "$(repo_state "$T/native")" "$(repo_state "$P")"
		run git -C "$P" fsck --no-progress --no-dangling
		assert_status 0
		assert_output ""
		run git -C "$P" ls-files -v
		refute_contains "$output" "S "
	done
}

@test "git: the configuration keeps format and remotes, drops programs and credentials, stays read-only" {
	git_repo sha256
	cat >>"$P/.git/config" <<EOF2
[core]
	fsmonitor = echo $SECRET_MARK
	hooksPath = /tmp/$SECRET_MARK-hooks
	sshCommand = ssh -i $SECRET_MARK
	editor = $SECRET_MARK-editor
	pager = $SECRET_MARK-pager
	worktree = /tmp/$SECRET_MARK-worktree
[diff "x"]
	textconv = $SECRET_MARK-textconv
[filter "lfs"]
	clean = $SECRET_MARK-clean
[credential]
	helper = store --file /tmp/$SECRET_MARK
[url "https://${SECRET_MARK}@example.com/"]
	insteadOf = https://example.com/
[http]
	extraHeader = Authorization: Bearer $SECRET_MARK
[include]
	path = /tmp/$SECRET_MARK.inc
[includeIf "gitdir:/"]
	path = /tmp/$SECRET_MARK.inc
[alias]
	st = !$SECRET_MARK
[remote "fork"]
	url = ext::sh -c $SECRET_MARK
	pushurl = git@example.com:me/fork.git
[branch "main"]
	remote = origin
	merge = refs/heads/main
EOF2
	local host_config
	host_config=$(sha256sum <"$P/.git/config")
	run af run -q -p development "$P" -- sh -c 'cat .git/config; git remote -v | tr "\t" " " | sed "s/ *$//"; git config core.fsmonitor; echo "fsmonitor=$?"
echo x >> .git/config; git config user.name x; echo "config=$?"; rm .git/config; mv .git/config .git/c2'
	assert_output "# the repository's configuration as agentfense shows it in the sandbox
[core]
	repositoryformatversion = \"1\"
	filemode = \"true\"
	bare = \"false\"
	logallrefupdates = \"true\"
[extensions]
	objectformat = \"sha256\"
[remote \"origin\"]
	url = \"https://example.com/r.git\"
	fetch = \"+refs/heads/*:refs/remotes/origin/*\"
[remote \"fork\"]
	pushurl = \"git@example.com:me/fork.git\"
[branch \"main\"]
	remote = \"origin\"
	merge = \"refs/heads/main\"
fork
fork git@example.com:me/fork.git (push)
origin https://example.com/r.git (fetch)
origin https://example.com/r.git (push)
fsmonitor=1
sh: 2: cannot create .git/config: Permission denied
error: could not lock config file .git/config: Permission denied
config=255
rm: cannot remove '.git/config': Permission denied
mv: cannot move '.git/config' to '.git/c2': Permission denied"
	assert_status 1
	assert_eq "$host_config" "$(sha256sum <"$P/.git/config")"
	[ ! -e "$RUNS" ] || [ -z "$(ls -A "$RUNS")" ]
}

@test "git: a configuration git cannot parse is not shown" {
	git_repo
	printf '[core\n\tbroken\n' >>"$P/.git/config"
	run inside -- 'ls .git/config; git ls-files -v | grep -c "^S"'
	assert_output "ls: cannot access '.git/config': No such file or directory
11"
}

@test "git: a commit in the sandbox has the host's identity; --git-identity off and --env" {
	git_repo
	mkdir -p "$T/home"
	HOME=$T/home git config --global user.name "Ann Host"
	HOME=$T/home git config --global user.email ann@host.example
	HOME=$T/home git config --global credential.helper "store $SECRET_MARK"
	HOME=$T/home git config --global alias.pwn "!echo $SECRET_MARK"
	local show='git log -1 --format="%an <%ae> / %cn <%ce>"; env | grep ^GIT_ | sort; git config --get credential.helper; echo "helper=$?"'
	HOME=$T/home run af run -q -p development "$P" -- sh -c "echo x >> README.md; git commit -qam ident; $show"
	assert_status 0
	assert_output "Ann Host <ann@host.example> / Ann Host <ann@host.example>
GIT_AUTHOR_EMAIL=ann@host.example
GIT_AUTHOR_NAME=Ann Host
GIT_COMMITTER_EMAIL=ann@host.example
GIT_COMMITTER_NAME=Ann Host
helper=1"
	run git -C "$P" log -1 --format="%an <%ae>"
	assert_output "Ann Host <ann@host.example>"
	HOME=$T/home run inside --git-identity off -- 'env | grep -c ^GIT_'
	assert_output "0"
	HOME=$T/home run inside -e GIT_AUTHOR_NAME=Other -- 'env | grep ^GIT_AUTHOR_NAME'
	assert_output "GIT_AUTHOR_NAME=Other"
	run --separate-stderr af run --git-identity maybe "$P" -- true
	assert_error 125 "--git-identity" "maybe"
}

@test "git: the identity is what git resolves: the repository's wins; one git would refuse is left out" {
	git_repo
	mkdir -p "$T/home"
	HOME=$T/home git config --global user.name "Ann Host"
	HOME=$T/home git config --global user.email ann@host.example
	git -C "$P" config user.name "Ann Project"
	HOME=$T/home run inside -- 'env | grep ^GIT_ | sort'
	assert_output "GIT_AUTHOR_EMAIL=ann@host.example
GIT_AUTHOR_NAME=Ann Project
GIT_COMMITTER_EMAIL=ann@host.example
GIT_COMMITTER_NAME=Ann Project"
	# several values: the last, as git config --get has it
	git -C "$P" config --add user.name "Ann Last"
	git -C "$P" config user.email "$(printf 'ann\n@x')"
	HOME=$T/home run inside -- 'env | grep ^GIT_ | sort'
	assert_output "GIT_AUTHOR_NAME=Ann Last
GIT_COMMITTER_NAME=Ann Last"
}

@test "git: a configuration that makes git on the host hang does not hang run" {
	git_repo
	mkdir -p "$T/home"
	HOME=$T/home git config --global user.name "Ann Host"
	# git reads its own stdout pipe as an included file: it waits forever
	printf '[include]\n\tpath = /proc/self/fd/1\n' >>"$P/.git/config"
	local t0=$SECONDS
	HOME=$T/home AF_TEST_MARK=$T run timeout 20 "$AGENTFENSE" run -q --changes discard "$P" -- \
		sh -c 'echo "git variables: $(env | grep -c ^GIT_)"'
	assert_status 0
	assert_output "git variables: 0"
	# git is given 2 s, then killed and the identity left out
	(( SECONDS - t0 < 10 ))
	! pgrep -f "git -C $P config" >/dev/null
}

@test "git: history is readable where .git is; a rule hiding .git hides it from every git command" {
	git_repo
	git -C "$P" gc -q
	# the presets hide the working tree's secrets, not what was committed
	run inside -p development -- 'cat .env; git cat-file -p HEAD:server.key'
	assert_output "cat: .env: No such file or directory
${SECRET_MARK}_server_key"
	run inside -p development -r '.git/ = none @ 200' -- 'git rev-parse HEAD 2>&1; echo "rev-parse=$?"
ls .git 2>&1; cat .git/objects/pack/*.pack 2>&1 | grep -c '"$SECRET_MARK"'
git --git-dir=/workspace/.git cat-file -p HEAD:server.key 2>&1; git archive HEAD 2>&1 | grep -c '"$SECRET_MARK"''
	assert_output "fatal: not a git repository (or any parent up to mount point /)
Stopping at filesystem boundary (GIT_DISCOVERY_ACROSS_FILESYSTEM not set).
rev-parse=128
ls: cannot access '.git': No such file or directory
0
fatal: not a git repository: '/workspace/.git'
0"
}

@test "git: hidden tracked files stay hidden from git's worktree commands" {
	git_repo
	run inside -p development -- 'git diff HEAD --stat; git checkout -q HEAD -- . ; git restore . ; git stash -q; echo "stash=$?"; ls .env server.key secrets 2>&1; git status --porcelain'
	assert_output "stash=0
ls: cannot access '.env': No such file or directory
ls: cannot access 'server.key': No such file or directory
ls: cannot access 'secrets': No such file or directory"
}

@test "git: an unfinished rebase in the sandbox is held, its todo never reaches the host" {
	git_repo
	(cd "$P" && eval "$GIT_FIXED" && echo 2 >>README.md && git commit -qam second)
	run af run -q -p development "$P" -- sh -c "$GIT_FIXED"'
GIT_SEQUENCE_EDITOR="sed -i 1ibreak" git rebase -q -i HEAD~1 2>/dev/null
echo "exec echo planted_exec" > .git/rebase-merge/git-rebase-todo; ls .git/rebase-merge/git-rebase-todo'
	assert_output ".git/rebase-merge/git-rebase-todo
$(held .git/rebase-merge "is an unfinished rebase, cherry-pick or revert of the git repository '.git', whose todo list git on the host would run on --continue")
$(summary 1)"
	[ ! -e "$P/.git/rebase-merge" ]
	assert_eq "exec echo planted_exec" "$(cat "$(run_dir)/upper/.git/rebase-merge/git-rebase-todo")"
	run git -C "$P" rebase --continue
	refute_contains "$output" planted_exec
}

@test "git: a linked worktree in the project works in the sandbox, its '.git' file untouched on the host" {
	git_repo sha256
	git -C "$P" worktree add -q "$P/wt" -b side
	git -C "$P" config extensions.worktreeConfig true
	git -C "$P" config --worktree core.sshCommand "ssh -i $SECRET_MARK"
	(cd "$P/wt" && git config --worktree core.sshCommand "ssh -i $SECRET_MARK")
	local gitfile
	gitfile=$(cat "$P/wt/.git")
	run af run -q -p development "$P" -- sh -c "$GIT_FIXED"'
cd wt && cat .git && git status --porcelain && git ls-files -v | grep -c "^S" && grep -c '"$SECRET_MARK"' ../.git/worktrees/wt/config.worktree
echo w >> README.md && git commit -qam in-worktree && git log --format=%s -2'
	assert_status 0
	assert_output "gitdir: ../.git/worktrees/wt
11
0
in-worktree
first commit"
	assert_eq "$gitfile" "$(cat "$P/wt/.git")"
	run git -C "$P/wt" status --porcelain
	assert_output ""
	run git -C "$P" log --format=%s -1 side
	assert_output "in-worktree"
	run git -C "$P/wt" ls-files -v
	refute_contains "$output" "S "
	run git -C "$P" fsck --no-progress --no-dangling
	assert_status 0
}

@test "git: a worktree reached through a symbolic link is left alone, the run goes on" {
	git_repo
	git -C "$P" worktree add -q "$T/elsewhere" -b side
	ln -s "$T/elsewhere" "$P/linked"
	printf '%s\n' "$P/linked/.git" >"$P/.git/worktrees/elsewhere/gitdir"
	run inside -- 'readlink linked; git status --porcelain; echo "status=$?"'
	assert_status 0
	assert_output "$T/elsewhere
?? linked
status=0"
	[ "$(cat "$T/elsewhere/.git")" = "gitdir: $P/.git/worktrees/elsewhere" ]
}

@test "git: a branch switch that changes a hidden tracked file updates the index, not the file" {
	git_repo
	(cd "$P" && eval "$GIT_FIXED" && git checkout -qb other && printf 'SECRET=%s_other\n' "$SECRET_MARK" >.env &&
		git commit -qam other-env && git checkout -q main)
	run af run -q -p development "$P" -- sh -c 'git checkout -q other && git status --porcelain && git ls-files -v .env && cat .env'
	assert_status 1
	assert_output "error: unable to create file .env: Permission denied
S .env
cat: .env: No such file or directory"
	run git -C "$P" status --porcelain
	assert_output " M .env"
	assert_eq "SECRET=${SECRET_MARK}_env" "$(cat "$P/.env")"
}

@test "git: a submodule's hidden tracked files are not deleted either; a commit in it syncs" {
	git_repo
	local src=$T/subsrc
	mkdir -p "$src/secrets"
	printf 'lib\n' >"$src/lib.c"
	printf 'K=%s_sub\n' "$SECRET_MARK" >"$src/.env.example"
	printf '%s_subsecret\n' "$SECRET_MARK" >"$src/secrets/k"
	git -C "$src" init -q -b main
	git -C "$src" add -A
	(cd "$src" && eval "$GIT_FIXED" && git commit -qm sub)
	git -C "$P" -c protocol.file.allow=always submodule add -q "$src" vendor/lib
	(cd "$P" && eval "$GIT_FIXED" && git commit -qm add-submodule)
	run af run -q -p development "$P" -- sh -c "$GIT_FIXED"'
git status --porcelain; cd vendor/lib && git status --porcelain && git ls-files -v | grep "^S" &&
grep -c '"$SECRET_MARK"' ../../.git/modules/vendor/lib/config
echo more >> lib.c && git commit -qam in-submodule && git log --format=%s -1 && cd ../.. && git status --porcelain'
	assert_status 0
	assert_output "S .env.example
S secrets/k
0
in-submodule
 M vendor/lib"
	run git -C "$P/vendor/lib" log --format=%s -1
	assert_output "in-submodule"
	run git -C "$P/vendor/lib" status --porcelain
	assert_output ""
	run git -C "$P/vendor/lib" ls-files -v
	refute_contains "$output" "S "
	run git -C "$P/vendor/lib" fsck --no-progress --no-dangling
	assert_status 0
}
