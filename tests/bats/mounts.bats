#!/usr/bin/env bats
# Extra mounts: --bind, --ro-bind, --tmpfs.  What they show, what they
# let the command change, and the specs and topologies refused.

load helper

setup() {
	af_setup
	D=$T/data
	mkdir -p "$D/sub"
	printf 'host data\n' >"$D/file"
}

@test "--bind: visible and writable; writes reach the host directory" {
	run --separate-stderr inside --bind "$D:/data" -- \
		'cat /data/file && echo from-sandbox >/data/new && mkdir /data/newdir && rm /data/sub -r && ls /data'
	assert_status 0
	assert_output "host data
file
new
newdir"
	assert_eq "from-sandbox" "$(cat "$D/new")"
	[ -d "$D/newdir" ]
	[ ! -e "$D/sub" ]
}

@test "--bind without DST shows SRC at its own absolute path" {
	run --separate-stderr inside --bind "$D" -- "cat '$D/file'"
	assert_status 0
	assert_output "host data"
	# a relative SRC means the same absolute path
	cd "$T"
	run --separate-stderr inside --bind data -- "cat '$D/file'"
	assert_status 0
	assert_output "host data"
	# an absolute SRC with '..' is shown at its canonical path
	run --separate-stderr inside --bind "$D/sub/.." -- "cat '$(realpath "$D")/file'"
	assert_status 0
	assert_output "host data"
}

@test "--ro-bind: readable, not writable even after a remount attempt" {
	run --separate-stderr inside --ro-bind "$D:/ro" -- \
		'cat /ro/file; touch /ro/x; mount -o remount,rw /ro 2>/dev/null; mount -o remount,rw,bind /ro /ro 2>/dev/null; touch /ro/y; echo z >>/ro/file; rm /ro/file'
	assert_output "host data"
	assert_contains "$stderr" "touch: cannot touch '/ro/x': Read-only file system"
	assert_contains "$stderr" "touch: cannot touch '/ro/y': Read-only file system"
	assert_contains "$stderr" "Read-only file system"
	refute_contains "$stderr" "mount:" # silenced; the result is what counts
	assert_eq "host data" "$(cat "$D/file")"
	[ ! -e "$D/x" ] && [ ! -e "$D/y" ]
}

@test "a mount inside a --ro-bind keeps its own mode" {
	run --separate-stderr inside --tmpfs /m --ro-bind "$D:/m/ro" --bind "$D/sub:/m/ro/sub" -- \
		'touch /m/ro/sub/ok && touch /m/ro/no'
	assert_status 1
	assert_contains "$stderr" "'/m/ro/no': Read-only file system"
	[ -e "$D/sub/ok" ]
}

@test "binds are nosuid and nodev; --ro-bind is ro" {
	run --separate-stderr inside --bind "$D:/rw" --ro-bind "$D:/ro" -- \
		'grep -E " /(rw|ro) " /proc/self/mountinfo | cut -d" " -f5,6 | sort'
	assert_status 0
	assert_output "/ro ro,nosuid,nodev,relatime
/rw rw,nosuid,nodev,relatime"
}

@test "--ro-bind of a single file" {
	printf 'conf\n' >"$T/app.conf"
	run --separate-stderr inside --ro-bind "$T/app.conf:/etc-extra/app.conf" -- \
		'cat /etc-extra/app.conf; echo x >/etc-extra/app.conf'
	assert_status 2
	assert_output "conf"
	assert_contains "$stderr" "Read-only file system"
}

@test "--tmpfs: empty, writable, private to the run, not on the host" {
	run --separate-stderr inside --tmpfs /scratch -- \
		'ls -A /scratch; echo x >/scratch/f && cat /scratch/f && stat -f -c %T /scratch'
	assert_status 0
	assert_output "x
tmpfs"
	[ ! -e /scratch ]
	# a second run starts empty again
	run --separate-stderr inside --tmpfs /scratch -- 'ls -A /scratch'
	assert_status 0
	assert_output ""
}

@test "mounts nest in any order on the command line" {
	run --separate-stderr inside --bind "$D:/m/data" --tmpfs /m -- 'ls /m; cat /m/data/file'
	assert_status 0
	assert_output "data
host data"
}

@test "mount specs: one clear error each, exit 125" {
	local cases=(
		"--bind|$T/missing|invalid --bind '$T/missing': cannot use source '$T/missing': No such file or directory"
		"--bind|$D:rel|invalid --bind '$D:rel': destination 'rel': it must be an absolute path"
		"--bind||invalid --bind '': empty value"
		"--bind|:/x|invalid --bind ':/x': empty source"
		"--ro-bind|$D:|invalid --ro-bind '$D:': empty destination"
		"--tmpfs|/|invalid --tmpfs '/': destination '/': it would cover the whole root"
		"--tmpfs|/a/../b|invalid --tmpfs '/a/../b': destination '/a/../b': '.' and '..' are not allowed in it"
		"--bind|$D:/workspace|invalid --bind '$D:/workspace': destination '/workspace' would cover '/workspace', which the sandbox builds itself"
		"--ro-bind|$D:/workspace/sub|invalid --ro-bind '$D:/workspace/sub': destination '/workspace/sub' is inside '/workspace', which the sandbox builds itself"
		"--tmpfs|/proc|invalid --tmpfs '/proc': destination '/proc' would cover '/proc', which the sandbox builds itself"
		"--tmpfs|/dev/shm/x|invalid --tmpfs '/dev/shm/x': destination '/dev/shm/x' is inside '/dev', which the sandbox builds itself"
		"--bind|/dev/null:/n|invalid --bind '/dev/null:/n': source '/dev/null' is neither a directory nor a regular file"
	)
	local c opt val msg
	for c in "${cases[@]}"; do
		IFS='|' read -r opt val msg <<<"$c"
		run --separate-stderr af run --changes discard "$opt" "$val" "$P" -- true
		assert_error 125 "$msg"
		assert_eq "agentfense: $msg" "${stderr_lines[0]}"
	done
	run --separate-stderr af run --changes discard --bind "$D:/workspace" "$P" -- true
	assert_eq "hint: /workspace is the project's view; mount somewhere else, e.g. '/mnt'" "${stderr_lines[1]}"
}

@test "nothing of the host's /proc can be bound: it leads to every host file" {
	run --separate-stderr af run --changes discard --ro-bind /proc:/hostproc "$P" -- true
	assert_error 125 "invalid --ro-bind '/proc:/hostproc': source '/proc' is on the host's /proc"
	run --separate-stderr af run --changes discard --bind "/proc/$$:/c" "$P" -- true
	assert_error 125 "source '/proc/$$' is on the host's /proc"
	# a link out of /proc is what it points to: here, the host's root
	run --separate-stderr af run --changes discard --bind "/proc/$$/root:/r" "$P" -- true
	assert_error 125 "cannot bind '/' (--bind): it holds the project"
	run --separate-stderr af run --changes discard --bind "/proc/self/fd:/fd" "$P" -- true
	assert_error 125 "is on the host's /proc"
	run --separate-stderr af run --changes discard --rootfs /proc "$P" -- true
	assert_error 125 "cannot use '/proc' as --rootfs: it is on the host's /proc"
}

@test "no cgroup file system can be bound writable: the command would lift its own limits" {
	local cg
	cg=$(awk '$0 ~ / - cgroup2? / { print $5; exit }' /proc/self/mountinfo)
	[ -n "$cg" ] || skip "no cgroup file system is mounted here"
	for src in /sys "$cg" "$(dirname "$cg")"; do
		run --separate-stderr af run --changes discard --bind "$src:/x" "$P" -- true
		assert_error 125 "cannot bind '$src' (--bind): it shows a cgroup file system writable"
	done
	run --separate-stderr af run --changes discard --bind "$cg/:/x" "$P" -- true
	assert_error 125 "it shows a cgroup file system writable"
	# read-only is fine: nothing there can be changed
	run af run --changes discard --ro-bind "/sys:/x" "$P" -- sh -c 'test -d /x/fs && ! touch /x/fs/t'
	assert_status 0
}

@test "a directory with a proc file system mounted in it cannot be bound" {
	# a chroot's /proc shows the host's processes; a bind is recursive
	# and would carry it in.  The proc is mounted in a namespace of our
	# own, as an ordinary user can.
	local real
	mkdir -p "$T/chroot/proc"
	real=$(realpath "$T/chroot")
	run --separate-stderr env AF_TEST_MARK="$T" unshare -Urmpf sh -c \
		'mount -t proc proc "$1/proc" && exec "$2" run --changes discard --ro-bind "$1:/c" "$3" -- true' \
		sh "$real" "$AGENTFENSE" "$P"
	assert_error 125 "cannot bind '$real' (--ro-bind): a proc file system is mounted in it"
}

@test "the same destination twice is refused" {
	run --separate-stderr af run --changes discard --tmpfs /x --bind "$D:/x/" "$P" -- true
	assert_error 125 "invalid --bind '$D:/x/': destination '/x' is already used by --tmpfs"
}

@test "the project, a directory in it or one holding it cannot be bound" {
	local real
	real=$(realpath "$P")
	run --separate-stderr af run --changes discard --bind "$P:/p" "$P" -- true
	assert_error 125 "cannot bind '$real' (--bind): it is the project '$real', which the sandbox shows only through the view"
	assert_eq "hint: the project is at /workspace, filtered by the policy; bind a directory outside it" "${stderr_lines[1]}"
	run --separate-stderr af run --changes discard --ro-bind "$P/secrets:/s" "$P" -- true
	assert_error 125 "cannot bind '$real/secrets' (--ro-bind): it is inside the project '$real'"
	run --separate-stderr af run --changes discard --ro-bind "$P/.env:/e" "$P" -- true
	assert_error 125 "cannot bind '$real/.env' (--ro-bind): it is inside the project"
	run --separate-stderr af run --changes discard --ro-bind "$T:/t" "$P" -- true
	assert_error 125 "cannot bind '$(realpath "$T")' (--ro-bind): it holds the project '$real'"
	# through a symbolic link too
	ln -s "$P" "$T/link"
	run --separate-stderr af run --changes discard --ro-bind "$T/link:/l" "$P" -- true
	assert_error 125 "it is the project '$real'"
}

@test "agentfense's state directory cannot be bound" {
	mkdir -p "$RUNS"
	run --separate-stderr af run --changes discard --ro-bind "$XDG_STATE_HOME:/st" "$P" -- true
	assert_error 125 "(--ro-bind): it overlaps agentfense's state directory"
}

@test "the image cache cannot be bound writable: a run would change later runs' root" {
	local digest
	export XDG_CACHE_HOME=$T/cache
	"$BATS_TEST_DIRNAME"/../tools/mkrootfs "$T/rootfs"
	digest=$("$BATS_TEST_DIRNAME"/../tools/mkoci "$T/oci" "$T/rootfs")
	run --separate-stderr inside --image "$T/oci" -- 'cat /etc/af-rootfs-marker'
	assert_output "af-rootfs"
	# the cache, a directory holding it, or one of its images
	run --separate-stderr af run --changes discard --bind "$XDG_CACHE_HOME:/c" "$P" -- \
		sh -c "echo poisoned >/c/agentfense/images/${digest#sha256:}/etc/af-rootfs-marker"
	assert_error 125 "cannot bind '$(realpath "$XDG_CACHE_HOME")' (--bind): it overlaps agentfense's image cache '$(realpath "$XDG_CACHE_HOME")/agentfense/images'"
	assert_eq "hint: runs with --image trust what is there; bind it read-only, or only the part you need" "${stderr_lines[1]}"
	run --separate-stderr af run --changes discard \
		--bind "$XDG_CACHE_HOME/agentfense/images/${digest#sha256:}/etc:/e" "$P" -- true
	assert_error 125 "it overlaps agentfense's image cache"
	run --separate-stderr inside --image "$T/oci" -- 'cat /etc/af-rootfs-marker'
	assert_output "af-rootfs"
	# read-only, or beside it, is fine
	mkdir "$XDG_CACHE_HOME/pip"
	run --separate-stderr inside --ro-bind "$XDG_CACHE_HOME:/c" --bind "$XDG_CACHE_HOME/pip:/pip" -- \
		"cat /c/agentfense/images/${digest#sha256:}/etc/af-rootfs-marker; touch /pip/ok"
	assert_status 0
	assert_output "af-rootfs"
	[ -e "$XDG_CACHE_HOME/pip/ok" ]
}

@test "a mount point in a read-only directory or through a symlink: exit 125" {
	run --separate-stderr af run --changes discard --bind "$D:/usr/af-missing" "$P" -- true
	assert_error 125 "cannot create mount point '/usr/af-missing': Read-only file system"
	assert_eq "hint: inside a directory shown read-only, a mount point must exist already; mount in a new directory, e.g. '/mnt/usr/af-missing'" "${stderr_lines[1]}"
	# /var/tmp is a symbolic link to /tmp in the sandbox
	run --separate-stderr af run --changes discard --tmpfs /var/tmp/x "$P" -- true
	assert_error 125 "cannot use mount point '/var/tmp/x': '/var/tmp' is a symbolic link in the sandbox"
}

@test "an existing directory of the read-only root can be covered" {
	run --separate-stderr inside --tmpfs /opt -- 'ls -A /opt; touch /opt/x && echo ok'
	assert_status 0
	assert_output "ok"
}

@test "--help lists the mount options" {
	run af run --help
	assert_status 0
	assert_contains "$output" "--bind SRC[:DST]"
	assert_contains "$output" "--ro-bind SRC[:DST]"
	assert_contains "$output" "--tmpfs DST"
}
