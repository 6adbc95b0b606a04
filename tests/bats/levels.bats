#!/usr/bin/env bats
# Every level against every filesystem operation.
#
# lv/view, lv/read, lv/write are directory trees at that level (rules
# below); lv/dst is a writable directory to move things in and out of;
# lv/none does not exist for the sandbox; lv/write/hidden is a none file in
# a writable directory and lv/write/ghost a none name that does not exist
# on the host either.

load helper

LV_RULES=(-p read-only -r '/lv/view=view@50' -r '/lv/read=read@50' -r '/lv/write=write@50'
	-r '/lv/dst=write@50' -r '/lv/none=none@50' -r '/lv/write/hidden=none@60'
	-r '/lv/write/ghost=none@60')

setup() {
	af_setup
	local l f
	for l in view read write; do
		mkdir -p "$P/lv/$l/e" "$P/lv/$l/d"
		for f in f g h t m u x y z k; do
			printf 'data-%s\n' "$l" >"$P/lv/$l/$f"
		done
		printf 'inner\n' >"$P/lv/$l/d/inner"
		ln -s f "$P/lv/$l/l"
		for f in f g h t m u x y z k; do
			chmod 644 "$P/lv/$l/$f"
		done
		python3 -c 'import os, sys; os.setxattr(sys.argv[1], "user.af", b"val-" + sys.argv[2].encode())' \
			"$P/lv/$l/f" "$l"
	done
	mkdir -p "$P/lv/dst" "$P/lv/none"
	printf 'in\n' >"$P/lv/dst/in"
	printf '%s_none\n' "$SECRET_MARK" >"$P/lv/none/f"
	printf '%s_hidden\n' "$SECRET_MARK" >"$P/lv/write/hidden"
}

# same_mode: the two "mode" lines of $output (before and after a chmod
# that must fail) agree; replace the value by M.  (How a view or read file
# shows its mode bits is up to the view; that it cannot change is not.)
same_mode() {
	local m
	m=$(grep -E '^mode ' <<<"$output" | sed 's/.*: //' | sort -u)
	[ "$(wc -l <<<"$m")" = 1 ] || { echo "mode changed: $m" >&2; return 1; }
	output=$(sed -E 's/^(mode [^:]*): .*/\1: M/' <<<"$output")
}

# The operations every level is put through, for directory D.
level_ops() {
	local D=$1
	ops "${LV_RULES[@]}" -- \
		stat "$D/f" ls "$D" cat "$D/f" cat "$D/l" readlink "$D/l" xattr "$D/f" \
		write "$D/g" append "$D/h" trunc "$D/t" mode "$D/m" chmod "$D/m" mode "$D/m" utime "$D/u" \
		create "$D/new" mkdir "$D/newdir" mkfifo "$D/fifo" symlink f "$D/sl" \
		link "$D/k" "$D/k2" link lv/dst/in "$D/k3" rmdir "$D/e" rm "$D/x" \
		mv "$D/y" "$D/y2" mv "$D/z" lv/dst/z mv lv/dst/in "$D/in" mv "$D/d" lv/dst/d \
		ls "$D" ls lv/dst cat "$D/h" size "$D/t"
}

@test "view: names and metadata only, content and changes EACCES" {
	run level_ops lv/view
	assert_status 0
	same_mode
	assert_output "stat lv/view/f: OK
ls lv/view: d,e,f,g,h,k,l,m,t,u,x,y,z
cat lv/view/f: EACCES
cat lv/view/l: EACCES
readlink lv/view/l: EACCES
xattr lv/view/f: EACCES
write lv/view/g: EACCES
append lv/view/h: EACCES
trunc lv/view/t: EACCES
mode lv/view/m: M
chmod lv/view/m: EACCES
mode lv/view/m: M
utime lv/view/u: EACCES
create lv/view/new: EACCES
mkdir lv/view/newdir: EACCES
mkfifo lv/view/fifo: EACCES
symlink f lv/view/sl: EACCES
link lv/view/k lv/view/k2: EACCES
link lv/dst/in lv/view/k3: EACCES
rmdir lv/view/e: EACCES
rm lv/view/x: EACCES
mv lv/view/y lv/view/y2: EACCES
mv lv/view/z lv/dst/z: EACCES
mv lv/dst/in lv/view/in: EACCES
mv lv/view/d lv/dst/d: EACCES
ls lv/view: d,e,f,g,h,k,l,m,t,u,x,y,z
ls lv/dst: in
cat lv/view/h: EACCES
size lv/view/t: 10"
}

@test "read: content readable, every change EACCES" {
	run level_ops lv/read
	assert_status 0
	same_mode
	assert_output "stat lv/read/f: OK
ls lv/read: d,e,f,g,h,k,l,m,t,u,x,y,z
cat lv/read/f: 'data-read\n'
cat lv/read/l: 'data-read\n'
readlink lv/read/l: f
xattr lv/read/f: val-read
write lv/read/g: EACCES
append lv/read/h: EACCES
trunc lv/read/t: EACCES
mode lv/read/m: M
chmod lv/read/m: EACCES
mode lv/read/m: M
utime lv/read/u: EACCES
create lv/read/new: EACCES
mkdir lv/read/newdir: EACCES
mkfifo lv/read/fifo: EACCES
symlink f lv/read/sl: EACCES
link lv/read/k lv/read/k2: EACCES
link lv/dst/in lv/read/k3: EACCES
rmdir lv/read/e: EACCES
rm lv/read/x: EACCES
mv lv/read/y lv/read/y2: EACCES
mv lv/read/z lv/dst/z: EACCES
mv lv/dst/in lv/read/in: EACCES
mv lv/read/d lv/dst/d: EACCES
ls lv/read: d,e,f,g,h,k,l,m,t,u,x,y,z
ls lv/dst: in
cat lv/read/h: 'data-read\n'
size lv/read/t: 10"
}

@test "write: every operation works" {
	run level_ops lv/write
	assert_status 0
	assert_output "stat lv/write/f: OK
ls lv/write: d,e,f,g,h,k,l,m,t,u,x,y,z
cat lv/write/f: 'data-write\n'
cat lv/write/l: 'data-write\n'
readlink lv/write/l: f
xattr lv/write/f: val-write
write lv/write/g: OK
append lv/write/h: OK
trunc lv/write/t: OK
mode lv/write/m: 0o644
chmod lv/write/m: OK
mode lv/write/m: 0o640
utime lv/write/u: OK
create lv/write/new: OK
mkdir lv/write/newdir: OK
mkfifo lv/write/fifo: OK
symlink f lv/write/sl: OK
link lv/write/k lv/write/k2: OK
link lv/dst/in lv/write/k3: OK
rmdir lv/write/e: OK
rm lv/write/x: OK
mv lv/write/y lv/write/y2: OK
mv lv/write/z lv/dst/z: OK
mv lv/dst/in lv/write/in: OK
mv lv/write/d lv/dst/d: OK
ls lv/write: f,fifo,g,h,in,k,k2,k3,l,m,new,newdir,sl,t,u,y2
ls lv/dst: d,z
cat lv/write/h: 'data-write\nW\n'
size lv/write/t: 0"
}

@test "write: the changes are really there inside the sandbox" {
	run ops "${LV_RULES[@]}" -- \
		write lv/write/g cat lv/write/g create lv/write/new cat lv/write/new \
		link lv/write/k lv/write/k2 append lv/write/k2 cat lv/write/k \
		symlink f lv/write/sl readlink lv/write/sl cat lv/write/sl \
		mv lv/write/d lv/dst/d cat lv/dst/d/inner ls lv/dst/d \
		utime lv/write/u mkfifo lv/write/fifo level lv/write/fifo
	assert_status 0
	assert_output "write lv/write/g: OK
cat lv/write/g: 'W\nta-write\n'
create lv/write/new: OK
cat lv/write/new: 'W\n'
link lv/write/k lv/write/k2: OK
append lv/write/k2: OK
cat lv/write/k: 'data-write\nW\n'
symlink f lv/write/sl: OK
readlink lv/write/sl: f
cat lv/write/sl: 'data-write\n'
mv lv/write/d lv/dst/d: OK
cat lv/dst/d/inner: 'inner\n'
ls lv/dst/d: inner
utime lv/write/u: OK
mkfifo lv/write/fifo: OK
level lv/write/fifo: write"
}

@test "none: a hidden directory does not exist, nothing in it can be reached or created" {
	local before
	before=$(tree_sig "$P")
	run af run --changes sync "${LV_RULES[@]}" "$P" -- python3 -c "$OPS_PY" \
		stat lv/none ls lv cat lv/none/f stat lv/none/f create lv/none/new \
		rmdir lv/none rm lv/none/f mv lv/none lv/dst/none mv lv/none/f lv/dst/f \
		mkdir lv/none mv lv/dst/in lv/none symlink f lv/none link lv/dst/in lv/none \
		mkfifo lv/none chmod lv/none utime lv/none readlink lv/none xattr lv/none
	assert_status 0
	output=${output//EPERM/EACCES}
	assert_output "stat lv/none: ENOENT
ls lv: dst,read,view,write
cat lv/none/f: ENOENT
stat lv/none/f: ENOENT
create lv/none/new: ENOENT
rmdir lv/none: ENOENT
rm lv/none/f: ENOENT
mv lv/none lv/dst/none: ENOENT
mv lv/none/f lv/dst/f: ENOENT
mkdir lv/none: EACCES
mv lv/dst/in lv/none: EACCES
symlink f lv/none: EACCES
link lv/dst/in lv/none: EACCES
mkfifo lv/none: EACCES
chmod lv/none: ENOENT
utime lv/none: ENOENT
readlink lv/none: ENOENT
xattr lv/none: ENOENT"
	assert_eq "$before" "$(tree_sig "$P")"
}

@test "none: a hidden file cannot be read, changed, replaced or deleted, and an absent hidden name behaves the same" {
	local before n
	before=$(tree_sig "$P")
	for n in hidden ghost; do
		run af run --changes sync "${LV_RULES[@]}" "$P" -- python3 -c "$OPS_PY" \
			stat lv/write/$n cat lv/write/$n readlink lv/write/$n xattr lv/write/$n \
			write lv/write/$n trunc lv/write/$n chmod lv/write/$n utime lv/write/$n \
			rm lv/write/$n mv lv/write/$n lv/write/moved link lv/write/$n lv/write/ln \
			append lv/write/$n create lv/write/$n mkdir lv/write/$n mkfifo lv/write/$n \
			symlink f lv/write/$n link lv/write/f lv/write/$n mv lv/write/g lv/write/$n \
			stat lv/write/$n ls lv/write
		assert_status 0
		output=${output//EPERM/EACCES}
		assert_output "stat lv/write/$n: ENOENT
cat lv/write/$n: ENOENT
readlink lv/write/$n: ENOENT
xattr lv/write/$n: ENOENT
write lv/write/$n: ENOENT
trunc lv/write/$n: ENOENT
chmod lv/write/$n: ENOENT
utime lv/write/$n: ENOENT
rm lv/write/$n: ENOENT
mv lv/write/$n lv/write/moved: ENOENT
link lv/write/$n lv/write/ln: ENOENT
append lv/write/$n: EACCES
create lv/write/$n: EACCES
mkdir lv/write/$n: EACCES
mkfifo lv/write/$n: EACCES
symlink f lv/write/$n: EACCES
link lv/write/f lv/write/$n: EACCES
mv lv/write/g lv/write/$n: EACCES
stat lv/write/$n: ENOENT
ls lv/write: d,e,f,g,h,k,l,m,t,u,x,y,z"
	done
	assert_eq "$before" "$(tree_sig "$P")"
}

@test "none: shell tools see a hidden file as missing" {
	run inside "${LV_RULES[@]}" -- 'cat /workspace/lv/write/hidden; ls /workspace/lv/write/hidden; ls /workspace/lv/none; stat -c %n /workspace/lv/none/f'
	assert_status 1
	assert_output "cat: /workspace/lv/write/hidden: No such file or directory
ls: cannot access '/workspace/lv/write/hidden': No such file or directory
ls: cannot access '/workspace/lv/none': No such file or directory
stat: cannot statx '/workspace/lv/none/f': No such file or directory"
}

@test "view and read: shell tools get Permission denied" {
	run inside "${LV_RULES[@]}" -- 'cd /workspace/lv; cat view/f; echo x >> read/f; rm read/x; touch view/u; mkdir read/n; ls -1 view | wc -l; stat -c %s view/f'
	assert_status 0
	assert_output "cat: view/f: Permission denied
sh: 1: cannot create read/f: Permission denied
rm: cannot remove 'read/x': Permission denied
touch: cannot touch 'view/u': Permission denied
mkdir: cannot create directory 'read/n': Permission denied
13
10"
}

@test "levels as observed by behaviour match the rules" {
	run levels "${LV_RULES[@]}" -- lv lv/none lv/view lv/view/f lv/read lv/read/f lv/write \
		lv/write/f lv/write/hidden lv/dst README.md
	assert_status 0
	assert_output "level lv: ro
level lv/none: none
level lv/view: ro
level lv/view/f: view
level lv/read: ro
level lv/read/f: read
level lv/write: write
level lv/write/f: write
level lv/write/hidden: none
level lv/dst: write
level README.md: read"
}

@test "discard leaves the project as it was after every kind of change" {
	local before
	before=$(tree_sig "$P")
	run level_ops lv/write
	assert_status 0
	assert_eq "$before" "$(tree_sig "$P")"
	[ "$(runs_count)" = 0 ]
}

@test "write: the project root can be changed by the very first operation" {
	local op
	for op in "create new" "mkdir newdir" "symlink README.md sl" "mv README.md r2" "rm README.md" "mkfifo fifo"; do
		run ops -p full-access -- $op
		assert_status 0
		assert_output "$op: OK"
	done
	run af run --changes discard -p full-access "$P" -- touch /workspace/new
	assert_status 0
	assert_output ""
}

@test "directories show the project's mode, before and after a change inside them" {
	chmod 750 "$P"
	chmod 751 "$P/docs"
	run inside -p full-access -- 'stat -c %a /workspace /workspace/docs; echo x > /workspace/new; echo x > /workspace/docs/new; stat -c %a /workspace /workspace/docs'
	assert_status 0
	assert_output "750
751
750
751"
}
