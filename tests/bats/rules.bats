#!/usr/bin/env bats
# Rule matching and precedence, observed from inside the sandbox.
# (levels prints, per path, the level its behaviour shows: none, view,
# read or write for files; none, ro or write for directories.)

load helper

@test "**/secrets/** hides /secrets/key.txt and deep secrets, not /secrets itself" {
	mkdir -p "$P/a/b/secrets/c" "$P/a/b/notsecrets"
	printf '%s\n' "$SECRET_MARK" >"$P/a/b/secrets/c/d"
	printf 'x\n' >"$P/a/b/notsecrets/x"
	run levels -p full-access -r '**/secrets/**=none@10' -- \
		secrets secrets/key.txt a/b/secrets a/b/secrets/deep.txt a/b/secrets/c a/b/secrets/c/d \
		a/b/notsecrets/x
	assert_status 0
	assert_output "level secrets: write
level secrets/key.txt: none
level a/b/secrets: write
level a/b/secrets/deep.txt: none
level a/b/secrets/c: none
level a/b/secrets/c/d: none
level a/b/notsecrets/x: write"
	run inside -p full-access -r '**/secrets/**=none@10' -- 'ls -A /workspace/secrets /workspace/a/b/secrets; grep -r '"$SECRET_MARK"' /workspace/secrets /workspace/a/b/secrets'
	assert_status 1
	assert_output "/workspace/a/b/secrets:

/workspace/secrets:"
}

@test "** matches zero or more whole segments; * stays within one" {
	run levels -p read-only -r '/a/**/readme.txt=none@10' -r '/a/**/code.py=view@10' -r '/src/*.c=none@10' -- \
		a/readme.txt a/b/c/code.py src/main.c src/lib/util.c
	assert_status 0
	assert_output "level a/readme.txt: none
level a/b/c/code.py: view
level src/main.c: none
level src/lib/util.c: read"
}

@test "a pattern without a slash matches at any depth; a leading or middle slash anchors" {
	printf 'deep readme\n' >"$P/docs/README.md"
	mkdir -p "$P/b/c"
	printf 'x\n' >"$P/b/c/f"
	run levels -p read-only -r '/README.md=none@10' -r 'b/c=none@10' -- README.md docs/README.md b/c/f a/b/c/code.py
	assert_status 0
	assert_output "level README.md: none
level docs/README.md: read
level b/c/f: none
level a/b/c/code.py: read"
	run levels -p read-only -r 'README.md=none@10' -- README.md docs/README.md
	assert_output "level README.md: none
level docs/README.md: none"
}

@test "a trailing slash matches only directories, and the whole subtree" {
	mkdir -p "$P/build/x" "$P/src/build"
	printf 'b\n' >"$P/build/x/out.o"
	printf 'b\n' >"$P/src/build/f"
	printf 'not a dir\n' >"$P/docs/build"
	run levels -p read-only -r 'build/=none@10' -- build build/x/out.o src/build src/build/f docs/build
	assert_status 0
	assert_output "level build: none
level build/x/out.o: none
level src/build: none
level src/build/f: none
level docs/build: read"
}

@test "a pattern naming a directory covers everything below it; dir/** does not cover dir" {
	run levels -p read-only -r '/src=none@10' -r '/docs/**=write@10' -- src src/main.c src/lib/util.c docs docs/guide.txt
	assert_status 0
	assert_output "level src: none
level src/main.c: none
level src/lib/util.c: none
level docs: ro
level docs/guide.txt: write"
}

@test "? and [...] match one character, \\ escapes" {
	for f in file1.txt file10.txt a.txt b.txt c.txt '*star' xstar; do
		printf 'x\n' >"$P/docs/$f"
	done
	run levels -p read-only -r '/docs/file?.txt=none@10' -r '/docs/[ab].txt=none@10' -r '/docs/\*star=none@10' -- \
		docs/file1.txt docs/file10.txt docs/a.txt docs/b.txt docs/c.txt 'docs/*star' docs/xstar
	assert_status 0
	assert_output "level docs/file1.txt: none
level docs/file10.txt: read
level docs/a.txt: none
level docs/b.txt: none
level docs/c.txt: read
level docs/*star: none
level docs/xstar: read"
}

@test "higher priority wins over specificity" {
	run levels -p read-only -r '/docs/guide.txt=write@50' -r '*.txt=none@60' -- docs/guide.txt docs/notes.md
	assert_status 0
	assert_output "level docs/guide.txt: none
level docs/notes.md: read"
	run levels -p read-only -r '*.txt=none@60' -r '/docs/guide.txt=write@70' -- docs/guide.txt a/readme.txt
	assert_output "level docs/guide.txt: write
level a/readme.txt: none"
}

@test "equal priority: exact path > directory > glob, whatever the order" {
	printf 'o\n' >"$P/docs/other.txt"
	local expected="level docs/guide.txt: read
level docs/other.txt: write
level a/readme.txt: none
level docs/notes.md: write"
	run levels -p read-only -r '*.txt=none@50' -r '/docs/=write@50' -r '/docs/guide.txt=read@50' -- \
		docs/guide.txt docs/other.txt a/readme.txt docs/notes.md
	assert_status 0
	assert_output "$expected"
	run levels -p read-only -r '/docs/guide.txt=read@50' -r '/docs/=write@50' -r '*.txt=none@50' -- \
		docs/guide.txt docs/other.txt a/readme.txt docs/notes.md
	assert_status 0
	assert_output "$expected"
}

@test "equal priority and kind: more literal characters win, whatever the order" {
	printf 'g\n' >"$P/docs/gx.md"
	local expected="level docs/guide.txt: none
level docs/gx.md: write"
	run levels -p read-only -r '/docs/*.txt=none@50' -r '/docs/g*=write@50' -- docs/guide.txt docs/gx.md
	assert_status 0
	assert_output "$expected"
	run levels -p read-only -r '/docs/g*=write@50' -r '/docs/*.txt=none@50' -- docs/guide.txt docs/gx.md
	assert_status 0
	assert_output "$expected"
}

@test "a complete tie goes to the rule given last" {
	run levels -p read-only -r '/docs/g*.txt=none@50' -r '/docs/*e.txt=write@50' -- docs/guide.txt
	assert_status 0
	assert_output "level docs/guide.txt: write"
	run levels -p read-only -r '/docs/*e.txt=write@50' -r '/docs/g*.txt=none@50' -- docs/guide.txt
	assert_status 0
	assert_output "level docs/guide.txt: none"
}

@test "a none parent with a visible child is traversable and lists only that child" {
	run inside -p read-only -r '/a/=none@10' -r '/a/b/c/code.py=read@10' -- 'cd /workspace; ls -A a a/b a/b/c; cat a/b/c/code.py a/readme.txt; echo x > a/new; ls a/b/secrets'
	assert_status 2
	assert_output "a:
b

a/b:
c

a/b/c:
code.py
print('c')
cat: a/readme.txt: No such file or directory
sh: 1: cannot create a/new: Permission denied
ls: cannot access 'a/b/secrets': No such file or directory"
	run levels -p read-only -r '/a/=none@10' -r '/a/b/c/code.py=read@10' -- a a/b a/b/c a/b/c/code.py a/readme.txt
	assert_output "level a: ro
level a/b: ro
level a/b/c: ro
level a/b/c/code.py: read
level a/readme.txt: none"
}

@test "a traversable directory cannot be removed, renamed or changed" {
	run ops -p full-access -r '/a/=none@10' -r '/a/b/c/code.py=write@10' -- \
		mv a/b a/b2 mv a x chmod a/b utime a create a/b/new mkdir a/b/d \
		write a/b/c/code.py ls a/b
	assert_status 0
	output=${output//EPERM/EACCES}
	assert_output "mv a/b a/b2: EACCES
mv a x: EACCES
chmod a/b: EACCES
utime a: EACCES
create a/b/new: EACCES
mkdir a/b/d: EACCES
write a/b/c/code.py: OK
ls a/b: c"
}

@test "a more specific visible child under a lower-priority none parent stays hidden" {
	run levels -p read-only -r '/a/=none@10' -r '/a/b/c/code.py=read@5' -- a a/b/c/code.py
	assert_status 0
	assert_output "level a: none
level a/b/c/code.py: none"
}

@test "a path no rule matches is none; the root is traversable to a visible path" {
	user_preset only-one '[preset]
description = one file

[rules]
/a/b/c/code.py = read'
	run inside -p only-one -- 'cd /workspace; ls -A . a; cat a/b/c/code.py README.md'
	assert_status 1
	assert_output ".:
a

a:
b
print('c')
cat: README.md: No such file or directory"
}
