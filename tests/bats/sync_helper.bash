# sync_helper.bash - the lines sync prints for what it holds back, and
# git on the host, in the tests of held entries (synchold.bats,
# escape3.bats).  Loaded after helper.bash; $RUNS is the directory of
# kept runs, $P the project.

R_DOTGIT="is a name git takes for '.git' (a repository or a 'gitdir:' link), whose configuration git on the host would run"
r_gitdir() { printf "would make '%s' a git repository, whose configuration git on the host would run" "$1"; }
r_gitconf() { printf "is configuration or hooks of the git repository '%s', which git on the host would run" "$1"; }

# The one run directory a sync left behind.
run_dir() {
	local d=("$RUNS"/*)
	[ "${#d[@]}" = 1 ] && [ -d "${d[0]}" ] || { echo "expected one run directory: ${d[*]}" >&2; return 1; }
	printf '%s' "${d[0]}"
}

# held PATH WHAT: the line sync prints for a held PATH.
held() {
	printf "agentfense: held: '%s' %s; the sandbox's version is kept in '%s/upper/%s'" \
		"$1" "$2" "$(run_dir)" "$1"
}

# summary N: the last line of a sync that left N entries in the delta.
summary() {
	if [ "$1" = 1 ]; then
		printf "agentfense: 1 change not synced (conflicting or held): the sandbox's version is kept in '%s'" "$(run_dir)"
	else
		printf "agentfense: %s changes not synced (conflicting or held): the sandbox's versions are kept in '%s'" "$1" "$(run_dir)"
	fi
}

# host_git DIR ARG...: git on the host in DIR, never looking above the
# project for a repository.
host_git() {
	local d=$1
	shift
	(cd "$d" && GIT_CEILING_DIRECTORIES=$P git "$@")
}
