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

@test "git status works with agent-safe (.git read-only, config and hooks hidden)" {
	make_repo
	run inside -- 'git status --porcelain --untracked-files=no; echo "status=$?"; git log --format=%s; git diff --stat; ls -A .git | grep -c -e ^config -e ^hooks'
	assert_status 1
	assert_output "status=0
first commit
0"
}

@test "git commit inside the view syncs back a valid repository" {
	make_repo
	run af run -p development "$P" -- sh -c 'echo changed > README.md && git -c user.name=t -c user.email=t@example.com commit -qam "second commit" && git log --format=%s'
	assert_status 0
	assert_contains "$output" "second commit
first commit"
	run git -C "$P" log --format=%s
	assert_output "second commit
first commit"
	run git -C "$P" fsck --no-progress
	assert_status 0
	run git -C "$P" status --porcelain --untracked-files=no
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
