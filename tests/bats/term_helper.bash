# term_helper.bash - a shell script at a terminal, in the tests of the
# relayed terminal (tty.bats, escape3.bats).  Loaded after helper.bash.

DRIVE="$BATS_TEST_DIRNAME/../tools/ptydrive.py"

# term STEP... -- SCRIPT: run SCRIPT with `bash -c` on a fresh pty as
# the controlling terminal, job control on (set -m), $AF naming the
# binary under test and $P the project; STEPs drive it (see ptydrive.py).
term() {
	local steps=()
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		steps+=("$1")
		shift
	done
	shift
	run timeout -k 5 60 env AF_TEST_MARK="$T" AF="$AGENTFENSE" P="$P" TERM=xterm \
		python3 "$DRIVE" "${steps[@]}" -- bash -c "set -m; $1"
}
