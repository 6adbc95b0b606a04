#!/usr/bin/env bats
# Another root filesystem: --rootfs DIR (an unpacked tree) and --image
# (an OCI image layout, unpacked into a cache).  Both trees are built
# here from the host's own programs (tests/tools/mkrootfs, mkoci).

load helper

TOOLS=$BATS_TEST_DIRNAME/../tools

setup_file() {
	"$TOOLS"/mkrootfs "$BATS_FILE_TMPDIR/rootfs"
}

setup() {
	af_setup
	R=$BATS_FILE_TMPDIR/rootfs
	export XDG_CACHE_HOME=$T/cache
	CACHE=$XDG_CACHE_HOME/agentfense/images
}

@test "--rootfs: the command runs on the tree, not on the host's system" {
	run --separate-stderr inside --rootfs "$R" -- \
		'cat /etc/af-rootfs-marker; ls /etc; ls /; test -e /usr/bin/python3 || echo no-python'
	assert_status 0
	assert_output "af-rootfs
af-rootfs-marker
passwd
bin
dev
etc
lib
lib64
proc
tmp
usr
var
workspace
no-python"
	# a top-level symlink of the tree stays a symlink (merged /usr)
	run --separate-stderr inside --rootfs "$R" -- 'ls -l /'
	assert_contains "$output" " bin -> usr/bin"
	assert_contains "$output" " lib64 -> usr/lib64"
}

@test "--rootfs: the view at /workspace hides what the policy hides" {
	run --separate-stderr inside --rootfs "$R" -- \
		'cd /workspace && ls -A; cat .env; cat secrets/key.txt; cat README.md'
	assert_status 0
	assert_contains "$stderr" "cat: .env: No such file or directory"
	assert_output "README.md
a
certs
config
docs
link-readme
output
src
tmp
hello agentfense"
	refute_contains "$output$stderr" "$SECRET_MARK"
	# the default working directory is still /workspace
	run --separate-stderr inside --rootfs "$R" -- 'cat README.md'
	assert_output "hello agentfense"
}

@test "--rootfs: read-only root, fresh /proc, private /tmp, minimal /dev" {
	run --separate-stderr inside --rootfs "$R" -- \
		'touch /x; touch /usr/x; touch /etc/x; echo t >/tmp/t && cat /tmp/t; cat /proc/self/comm; ls /proc/self/fd >/dev/null && echo proc; ls /dev'
	assert_status 0
	assert_contains "$stderr" "touch: cannot touch '/x': Read-only file system"
	assert_contains "$stderr" "touch: cannot touch '/usr/x': Read-only file system"
	assert_contains "$stderr" "touch: cannot touch '/etc/x': Read-only file system"
	assert_output "t
cat
proc
fd
full
null
ptmx
pts
random
shm
stderr
stdin
stdout
tty
urandom
zero"
	[ ! -e "$R/x" ] && [ ! -e "$R/usr/x" ]
}

@test "--rootfs with writes to the view: they sync back" {
	run --separate-stderr af run --rootfs "$R" "$P" -- sh -c 'echo made >output/new'
	assert_status 0
	assert_eq "made" "$(cat "$P/output/new")"
}

@test "--rootfs combines with --bind and --tmpfs" {
	mkdir "$T/data"
	echo d >"$T/data/f"
	run --separate-stderr inside --rootfs "$R" --ro-bind "$T/data:/data" --tmpfs /scratch -- \
		'cat /data/f; touch /scratch/ok && ls /scratch'
	assert_status 0
	assert_output "d
ok"
}

@test "--rootfs: bad directories are refused, exit 125" {
	run --separate-stderr af run --rootfs "$T/missing" "$P" -- true
	assert_error 125 "cannot use '$T/missing' as --rootfs: No such file or directory"
	run --separate-stderr af run --rootfs "$P/README.md" "$P" -- true
	assert_error 125 "cannot use '$P/README.md' as --rootfs: Not a directory"
	run --separate-stderr af run --rootfs "$T" "$P" -- true
	assert_error 125 "cannot use '$T' as --rootfs: it holds the project"
	run --separate-stderr af run --rootfs "$P/src" "$P" -- true
	assert_error 125 "cannot use '$P/src' as --rootfs: it is inside the project"
	run --separate-stderr af run --rootfs "$R" --image "$R" "$P" -- true
	assert_error 125 "only one of --rootfs and --image"
}

@test "--rootfs: not in agentfense's state directory (other runs' changes)" {
	mkdir -p "$RUNS/other-run/upper"
	echo "$SECRET_MARK" >"$RUNS/other-run/upper/kept"
	run --separate-stderr af run --rootfs "$RUNS/other-run" "$P" -- cat /upper/kept
	assert_error 125 "cannot use '$RUNS/other-run' as --rootfs: it is inside agentfense's state directory '$(realpath "$RUNS")'"
	assert_eq "hint: the state directory holds the changes of every run; unpack the root filesystem elsewhere" "${stderr_lines[1]}"
	refute_contains "$output$stderr" "$SECRET_MARK"
	run --separate-stderr af run --rootfs "$XDG_STATE_HOME" "$P" -- true
	assert_error 125 "as --rootfs: it holds agentfense's state directory"
}

# --- OCI image layouts ---------------------------------------------------------

@test "--image: layers in order, whiteouts and opaque directories applied" {
	"$TOOLS"/mkoci "$T/oci" "$R" >/dev/null
	run --separate-stderr inside --image "$T/oci" -- \
		'ls /etc; ls -A /opq; cat /data/l1 /data/l2 /data/link /data/hard; ls /workspace/README.md'
	assert_status 0
	# /etc/l1-only whited out, /opq's lower entries hidden, the device
	# node skipped
	assert_output "af-rootfs-marker
passwd
new-in-l2
one
two
two
one
/workspace/README.md"
	assert_contains "$stderr" "agentfense: unpacked image '$T/oci' (sha256:"
	assert_contains "$stderr" "agentfense: skipped 1 device node of the image: an ordinary user cannot create them"
}

@test "--image: the config's Env is the default; --env wins; workdir stays /workspace" {
	"$TOOLS"/mkoci "$T/oci" "$R" >/dev/null
	run --separate-stderr af run --changes discard --image "$T/oci" "$P" -- \
		sh -c 'echo "$AF_IMAGE_VAR $PATH $HOME"; pwd'
	assert_status 0
	assert_output "from-image /usr/bin:/bin /tmp
/workspace"
	run --separate-stderr af run --changes discard --image "$T/oci" -e AF_IMAGE_VAR=mine "$P" -- \
		sh -c 'echo "$AF_IMAGE_VAR"'
	assert_output "mine"
}

@test "--image: unpacked once into the cache, then reused" {
	local digest dir ino1 ino2
	digest=$("$TOOLS"/mkoci "$T/oci" "$R")
	dir=$CACHE/${digest#sha256:}
	run --separate-stderr inside --image "$T/oci" -- 'cat /etc/af-rootfs-marker'
	assert_status 0
	assert_contains "$stderr" "into '$dir'"
	[ -d "$dir/usr/bin" ]
	ino1=$(stat -c '%i %Y' "$dir")
	run --separate-stderr inside --image "$T/oci" -- 'cat /etc/af-rootfs-marker'
	assert_status 0
	assert_output "af-rootfs"
	refute_contains "$stderr" "unpacked"
	ino2=$(stat -c '%i %Y' "$dir")
	assert_eq "$ino1" "$ino2"
	# nothing but the one image in the cache
	assert_eq "${digest#sha256:}" "$(ls -A "$CACHE")"
}

@test "--image: a corrupt blob is refused before use, exit 125, nothing cached" {
	local digest layer
	digest=$("$TOOLS"/mkoci "$T/oci" "$R")
	# the first layer: the biggest blob
	layer=$(ls -S "$T/oci/blobs/sha256" | head -n 1)
	printf 'X' | dd of="$T/oci/blobs/sha256/$layer" bs=1 seek=100 conv=notrunc status=none
	run --separate-stderr af run --changes discard --image "$T/oci" "$P" -- true
	assert_error 125 "invalid image '$T/oci': layer 'blobs/sha256/$layer' does not match its digest (sha256:"
	assert_eq "hint: the image is corrupt or was changed; fetch it again" "${stderr_lines[1]}"
	assert_eq "" "$(ls -A "$CACHE")"
}

@test "--image: a layer entry with '..' is refused, exit 125" {
	"$TOOLS"/mkoci --evil-dotdot "$T/oci" "$R" >/dev/null
	run --separate-stderr af run --changes discard --image "$T/oci" "$P" -- true
	assert_error 125 "refusing layer 2 (sha256:" "entry '../escape' has '..'"
	[ ! -e "$CACHE/../escape" ] && [ ! -e "$T/escape" ]
	assert_eq "" "$(ls -A "$CACHE")"
}

@test "--image: a later layer cannot write through an earlier layer's symlink" {
	mkdir "$T/host-target"
	"$TOOLS"/mkoci --evil-link "$T/host-target" "$T/oci" "$R" >/dev/null
	run --separate-stderr af run --changes discard --image "$T/oci" "$P" -- true
	assert_error 125 "refusing layer 2 (sha256:" "entry 'esc/pwned' lies below 'esc', which is not a directory"
	assert_eq "" "$(ls -A "$T/host-target")"
	assert_eq "" "$(ls -A "$CACHE")"
}

@test "--image: zstd layers" {
	command -v zstd >/dev/null || skip "zstd is not installed"
	"$TOOLS"/mkoci --zstd "$T/oci" "$R" >/dev/null
	run --separate-stderr inside --image "$T/oci" -- 'cat /data/l2; ls -A /opq'
	assert_status 0
	assert_output "two
new-in-l2"
}

@test "--image: not an OCI layout, or no image for this machine, exit 125" {
	run --separate-stderr af run --image "$R" "$P" -- true
	assert_error 125 "cannot use '$R' as image: no 'oci-layout' file: No such file or directory"
	assert_eq "hint: --image takes an OCI image layout directory (e.g. from 'skopeo copy docker://IMAGE oci:DIR'); an unpacked tree goes to --rootfs" "${stderr_lines[1]}"
	mkdir "$T/empty"
	echo '{"imageLayoutVersion":"1.0.0"}' >"$T/empty/oci-layout"
	echo '{"schemaVersion":2,"manifests":[]}' >"$T/empty/index.json"
	run --separate-stderr af run --image "$T/empty" "$P" -- true
	assert_error 125 "invalid image '$T/empty': no image for linux/"
	echo '{"schemaVersion":2' >"$T/empty/index.json"
	run --separate-stderr af run --image "$T/empty" "$P" -- true
	assert_error 125 "invalid image '$T/empty': index.json is not a JSON object"
}

# --- hostile images (tests/tools/mkevil-oci) ------------------------------------

# evil CASE [STATUS]: build the hostile layout $T/evil for CASE; run it
# with a time limit (a hang is a failure too), changes discarded,
# expecting STATUS if given.
evil() {
	"$TOOLS"/mkevil-oci "$T/evil" "$1" >/dev/null
	run ${2:+-$2} --separate-stderr timeout 20 env AF_TEST_MARK="$T" "$AGENTFENSE" run \
		--changes discard --image "$T/evil" "$P" -- true
}

@test "--image: malformed layers are refused with one line, exit 125, nothing cached" {
	local c
	for c in pax-ws pax-huge-size base256-size truncated wh-dotdot dir-to-symlink; do
		rm -rf "$T/evil"
		evil "$c"
		case $c in
		pax-*) assert_error 125 "cannot read layer 1 (sha256:" "malformed pax record" ;;
		base256-size | truncated) assert_error 125 "cannot read layer 1 (sha256:" "truncated archive" ;;
		wh-dotdot) assert_error 125 "refusing layer 2 (sha256:" "bad whiteout '.wh...'" ;;
		dir-to-symlink) assert_error 125 "refusing layer 2 (sha256:" "entry 'd/x' lies below 'd', which is not a directory" ;;
		esac
		assert_eq "" "$(ls -A "$CACHE")"
	done
}

@test "--image: hostile entries stay inside the image: names, links, modes" {
	local c root
	for c in longname-nul opq-root hardlink-sym setid-fifo; do
		rm -rf "$T/evil" "$XDG_CACHE_HOME"
		# no 'true' in these images: what matters is what was unpacked
		evil "$c" 127
		root=$CACHE/$(ls "$CACHE")
		case $c in
		longname-nul) assert_eq "ok" "$(ls -A "$root")" ;; # cut at the NUL
		opq-root) assert_eq "new" "$(ls -A "$root")" ;;
		hardlink-sym)
			# a hard link to the symlink itself, both inside the image
			assert_eq "/etc/passwd /etc/passwd" "$(readlink "$root/h") $(readlink "$root/s")"
			assert_eq "$(stat -c %i "$root/s")" "$(stat -c %i "$root/h")" ;;
		setid-fifo)
			assert_eq "755 fifo" "$(stat -c %a "$root/suid") $(stat -c %F "$root/fifo")"
			assert_contains "$stderr" "skipped 1 device node" ;;
		esac
	done
	[ ! -e "$T/escape" ] && [ ! -e "$XDG_CACHE_HOME/escape" ]
}

@test "--image: a FIFO in the layout or an index fan-out fails at once, exit 125" {
	evil blob-fifo
	assert_error 125 "invalid image '$T/evil': layer 'blobs/sha256/" "is not a regular file of 5 bytes"
	rm -rf "$T/evil"
	"$TOOLS"/mkoci "$T/evil" "$R" >/dev/null
	rm "$T/evil/index.json"
	mkfifo "$T/evil/index.json"
	run --separate-stderr timeout 20 env AF_TEST_MARK="$T" "$AGENTFENSE" run \
		--changes discard --image "$T/evil" "$P" -- true
	assert_error 125 "invalid image '$T/evil': 'index.json' is not a regular file"
	rm -rf "$T/evil"
	evil index-fanout
	assert_error 125 "invalid image '$T/evil': more than 64 image indexes"
	evil digest-dotdot
	assert_error 125 "invalid image '$T/evil': a layer: unsupported digest 'sha256:../../../etc/passwd'"
}
