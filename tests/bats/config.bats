#!/usr/bin/env bats
# config.bats - the configuration file and AGENTFENSE_* variables: the
# defaults of run and shell, the command line over the environment over
# the file, and `agentfense config` saying where each value came from.

load helper

CFG_DIR() { echo "$XDG_CONFIG_HOME/agentfense"; }

# config TEXT: write the configuration file.
config() {
	mkdir -p "$(CFG_DIR)"
	printf '%s\n' "$1" >"$(CFG_DIR)/config.ini"
}

@test "config: the file's preset, rules, limits and binds are the run's defaults" {
	config '# my defaults
[run]
preset = read-only
rule = /docs/**=write
pids = 64
ro-bind = /etc/hostname:/host-name
timeout = 20
kill-after = 3s'
	local c="$(CFG_DIR)/config.ini"
	run --separate-stderr af run --dry-run "$P" -- true
	assert_status 0
	assert_eq "" "$stderr"
	assert_eq "preset read-only (built-in)" "${lines[0]}"
	assert_contains "$output" "
  /docs/**                     write @0   $c:4
"
	assert_contains "$output" "
  /host-name     '/etc/hostname', read-only (--ro-bind)
"
	assert_contains "$output" "
  pids 64: "
	assert_contains "$output" "
timeout: 20s, then SIGTERM to the command's process group, SIGKILL of the sandbox 3s later
"
	# and the run does as said: docs writable, output not (read-only)
	run --separate-stderr af run -e LC_ALL=C "$P" -- sh -c \
		'echo d >docs/new.txt; echo "docs=$?"; echo o 2>/dev/null >output/o; echo "output=$?"; cat /host-name >/dev/null; echo "bind=$?"'
	assert_status 0
	assert_output "docs=0
output=2
bind=0"
	# after the machine's word on how --pids is enforced
	assert_eq "$(synced_line 1 0 0)" "${stderr_lines[-1]}"
	assert_eq d "$(cat "$P/docs/new.txt")"
}

@test "config: AGENTFENSE_* over the file, the command line over both" {
	config '[run]
net = host
memory = 256m
changes = keep'
	run --separate-stderr af run --dry-run "$P" -- true
	assert_contains "$output" $'\nnetwork: host '
	assert_contains "$output" $'\n  memory 256 MiB: '
	assert_contains "$output" $'\nchanges: keep\n'
	AGENTFENSE_NET=none AGENTFENSE_MEMORY=512M AGENTFENSE_CHANGES=discard \
		run --separate-stderr af run --dry-run "$P" -- true
	assert_contains "$output" $'\nnetwork: none '
	assert_contains "$output" $'\n  memory 512 MiB: '
	assert_contains "$output" $'\nchanges: discard\n'
	AGENTFENSE_NET=none AGENTFENSE_CHANGES=discard \
		run --separate-stderr af run --dry-run --net host --memory 1G --changes sync "$P" -- true
	assert_contains "$output" $'\nnetwork: host '
	assert_contains "$output" $'\n  memory 1 GiB: '
	assert_contains "$output" $'\nchanges: sync\n'
	# the environment's discard is done
	AGENTFENSE_CHANGES=discard run --separate-stderr af run "$P" -- sh -c 'echo x >output/x'
	assert_status 0
	refute_contains "$stderr" "synced"
	[ ! -e "$P/output/x" ] && [ "$(runs_count)" = 0 ]
}

@test "config: a configured changes = sync syncs after a timeout too; a --policy preset beats the configured one" {
	config '[run]
changes = sync
preset = read-only'
	run --separate-stderr af run -p agent-safe -t 0.5 "$P" -- sh -c 'echo half >output/h; sleep 30'
	assert_status 124
	assert_eq "agentfense: command timed out after 0.5s
$(synced_line 1 0 0)" "$stderr"
	printf '[policy]\npreset = development\n' >"$T/p.ini"
	run --separate-stderr af run --dry-run --policy "$T/p.ini" "$P" -- true
	assert_status 0
	assert_eq "preset development (built-in)" "${lines[0]}"
}

@test "agentfense config: each value and where it came from" {
	config '[run]
preset = development
rule = /docs/**=write
rule = /src/**=write@5
pids = 64'
	local c="$(CFG_DIR)/config.ini"
	AGENTFENSE_TIMEOUT=5m run --separate-stderr af config
	assert_status 0
	assert_eq "" "$stderr"
	assert_output "# configuration file: '$c'
preset     = development                  ($c:2)
net        = none                         (default)
changes    = sync                         (default)
timeout    = 5m                           (AGENTFENSE_TIMEOUT)
kill-after = 10s                          (default)
memory     = none                         (default)
cpus       = none                         (default)
pids       = 64                           ($c:5)
disk-limit = half the free space          (default)
rule       = /docs/**=write               ($c:3)
rule       = /src/**=write@5              ($c:4)
bind       = none                         (default)
ro-bind    = none                         (default)
tmpfs      = none                         (default)"
	rm "$c"
	run --separate-stderr af config
	assert_status 0
	assert_eq "# no configuration file: '$c'" "${lines[0]}"
	assert_eq "preset     = agent-safe                   (default)" "${lines[1]}"
	run --separate-stderr af config extra
	assert_error 125 "config: unexpected argument 'extra'"
}

@test "config: a bad key, value, section or variable is a usage error naming its source" {
	local c="$(CFG_DIR)/config.ini"
	config '[run]
netz = host'
	run --separate-stderr af run "$P" -- true
	assert_error 125 "invalid config '$c' line 2: unknown key 'netz'"
	config '[run]
pids = 1'
	run --separate-stderr af config
	assert_error 125 "invalid config '$c' line 2: invalid value '1' for pids: expected 2 to"
	config '[run]

timeout = soon'
	run --separate-stderr af run "$P" -- true
	assert_error 125 "invalid config '$c' line 3: invalid value 'soon' for timeout: expected a duration"
	config '[serve]
net = host'
	run --separate-stderr af run "$P" -- true
	assert_error 125 "invalid config '$c' line 2: unknown section '[serve]'"
	config 'net = host'
	run --separate-stderr af run "$P" -- true
	assert_error 125 "invalid config '$c' line 1: unknown section '[]'"
	config '[run]
this is not ini'
	run --separate-stderr af run "$P" -- true
	assert_error 125 "invalid config '$c' line 2: expected '[run]' or 'KEY = VALUE'"
	rm "$c"
	AGENTFENSE_NET=both run --separate-stderr af run "$P" -- true
	assert_error 125 "invalid value 'both' for AGENTFENSE_NET: expected none or host"
	# a preset or a bind is checked where it is used, and named
	config '[run]
preset = no-such-preset'
	run --separate-stderr af run "$P" -- true
	assert_status 125
	assert_contains "$stderr" "no-such-preset"
	assert_eq "hint: the value comes from $c:2" "${stderr_lines[-1]}"
	config '[run]
ro-bind = /no/such/path'
	run --separate-stderr af run "$P" -- true
	assert_status 125
	assert_contains "${stderr_lines[0]}" "/no/such/path"
	assert_eq "hint: the value comes from $c:2" "${stderr_lines[-1]}"
	# the command line's --help works whatever the file says
	run --separate-stderr af run --help
	assert_status 0
	assert_eq 0 "$(runs_count)"
}

@test "config: explain decides with the configured preset and rules, as the run does" {
	config '[run]
preset = read-only
rule = /docs/**=write'
	local c="$(CFG_DIR)/config.ini"
	run --separate-stderr af explain "$P" docs/guide.txt output/x
	assert_status 0
	assert_contains "$output" "docs/guide.txt"
	assert_contains "${lines[0]}" "write"
	assert_contains "${lines[0]}" "$c:3"
	refute_contains "${lines[1]}" "write"
	# -p on the command line replaces the configured preset
	run --separate-stderr af explain -p agent-safe "$P" output/x
	assert_status 0
	assert_contains "$output" "write"
}
