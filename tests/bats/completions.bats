#!/usr/bin/env bats
# completions.bats - the bash, zsh and fish completions, each under its
# real shell: every subcommand and every option --help lists is offered,
# and `make install` puts each file where its shell looks.

load helper

TOP=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)

# The long options a subcommand's --help lists, sorted.
help_opts() {
	"$AGENTFENSE" "$@" --help | grep -oE -- '(^|[ ,])--[a-z][a-z-]+' | grep -oE -- '--[a-z-]+' | sort -u
}

COMMANDS="codebase
config
explain
help
preset
run
sandbox
serve
session
shell
version"

# zsh_complete LINE: the matches zsh's completion offers at the end of
# LINE, sorted, from an interactive zsh driven through zpty.
zsh_complete() {
	local out=$T/zsh.out
	rm -f "$out" "$out.ready"
	PATH=$(dirname "$AGENTFENSE"):$PATH zsh -f "$BATS_TEST_DIRNAME/zsh-capture.zsh" \
		"${ZSH_COMPDIR:-$TOP/completions}" "$out" "$1" >/dev/null 2>&1
	[ -e "$out" ] && sort -u "$out"
	return 0
}

# fish_complete LINE: the candidates fish offers, sorted.
fish_complete() {
	PATH=$(dirname "$AGENTFENSE"):$PATH fish --no-config -c \
		"source '${FISH_COMPFILE:-$TOP/completions/agentfense.fish}'; complete -C '$1'" |
		cut -f1 | sort -u
}

# bash_complete WORD...: COMPREPLY for the words, the last one being
# completed, sorted.
bash_complete() {
	PATH=$(dirname "$AGENTFENSE"):$PATH bash --norc -c '
		source "$1"; shift
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		_agentfense agentfense "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
		printf "%s\n" "${COMPREPLY[@]}"' _ "$TOP/completions/agentfense.bash" "$@" | sort -u
}

# contains_all WANT GOT: every line of WANT is a line of GOT.
contains_all() {
	local missing
	missing=$(comm -23 <(sort -u <<<"$1") <(sort -u <<<"$2"))
	if [ -n "$missing" ]; then
		printf 'missing:\n%s\ngot:\n%s\n' "$missing" "$2" >&2
		return 1
	fi
}

@test "zsh: every subcommand and every option of run, serve, codebase, explain, sandbox, session" {
	command -v zsh >/dev/null || skip "zsh is not installed (.ci/run installs it)"
	contains_all "$COMMANDS" "$(zsh_complete 'agentfense ')"
	assert_eq "run" "$(zsh_complete 'agentfense ru')"
	contains_all "$(help_opts run)" "$(zsh_complete 'agentfense run --')"
	contains_all "--env-file
--disk-limit" "$(zsh_complete 'agentfense run --')"
	contains_all "$(help_opts serve)" "$(zsh_complete 'agentfense serve --')"
	contains_all "$(help_opts codebase)" "$(zsh_complete 'agentfense codebase --')"
	contains_all "$(help_opts explain)" "$(zsh_complete 'agentfense explain --')"
	contains_all "$(help_opts sandbox)" "$(zsh_complete 'agentfense sandbox --')"
	contains_all "$(help_opts session)" "$(zsh_complete 'agentfense session --')"
	contains_all "cp
create
exec
info
ls
rm
start
stop" "$(zsh_complete 'agentfense sandbox ')"
	contains_all "create
files
get
info
ls
put
rm" "$(zsh_complete 'agentfense codebase ')"
	assert_eq "discard
keep
sync" "$(zsh_complete 'agentfense run --changes ')"
	contains_all "read-only" "$(zsh_complete 'agentfense run -p read')"
}

@test "fish: every subcommand and every option of run, serve, codebase, explain, sandbox, session" {
	command -v fish >/dev/null || skip "fish is not installed (.ci/run installs it)"
	contains_all "$COMMANDS" "$(fish_complete 'agentfense ')"
	assert_eq "run" "$(fish_complete 'agentfense ru')"
	contains_all "$(help_opts run)" "$(fish_complete 'agentfense run --')"
	contains_all "$(help_opts run)" "$(fish_complete 'agentfense shell --')"
	contains_all "$(help_opts serve)" "$(fish_complete 'agentfense serve --')"
	contains_all "$(help_opts codebase)" "$(fish_complete 'agentfense codebase --')"
	contains_all "$(help_opts explain)" "$(fish_complete 'agentfense explain --')"
	contains_all "$(help_opts sandbox)" "$(fish_complete 'agentfense sandbox --')"
	contains_all "$(help_opts session)" "$(fish_complete 'agentfense session --')"
	contains_all "close
exec
info
ls
open" "$(fish_complete 'agentfense session ')"
	contains_all "create
files
get
info
ls
put
rm" "$(fish_complete 'agentfense codebase ')"
	assert_eq "discard
keep
sync" "$(fish_complete 'agentfense run --changes ')"
	# presets come from the binary, user presets included
	user_preset my-team '[rules]'
	contains_all "my-team
read-only" "$(fish_complete 'agentfense run -p ')"
}

@test "bash: every subcommand and every option of run, serve, codebase, explain, sandbox, session" {
	contains_all "$COMMANDS" "$(bash_complete agentfense '')"
	contains_all "$(help_opts run)" "$(bash_complete agentfense run --)"
	contains_all "$(help_opts serve)" "$(bash_complete agentfense serve --)"
	contains_all "$(help_opts codebase)" "$(bash_complete agentfense codebase --)"
	contains_all "$(help_opts explain)" "$(bash_complete agentfense explain --)"
	contains_all "$(help_opts sandbox)" "$(bash_complete agentfense sandbox --)"
	contains_all "$(help_opts session)" "$(bash_complete agentfense session --)"
	contains_all "$(help_opts sandbox)" "$(bash_complete agentfense sandbox exec --)"
	assert_eq "cp
create
exec
info
ls
rm
start
stop" "$(bash_complete agentfense sandbox '')"
	assert_eq "running" "$(bash_complete agentfense sandbox ls --status ru)"
	# after an exec's ID comes the command, completed as a command
	assert_eq "true" "$(bash_complete agentfense sandbox exec sb_1 -- tru | grep -x true)"
}

@test "make install: zsh's file in site-functions, fish's in vendor_completions.d" {
	command -v zsh >/dev/null || skip "zsh is not installed (.ci/run installs it)"
	command -v fish >/dev/null || skip "fish is not installed (.ci/run installs it)"
	local build root=$T/root
	build=$(dirname "$AGENTFENSE")
	make -s -C "$TOP" -o "$build/agentfense" BUILD="$build" PREFIX=/usr/local DESTDIR="$root" install >/dev/null
	[ -f "$root/usr/local/share/zsh/site-functions/_agentfense" ]
	[ -f "$root/usr/local/share/fish/vendor_completions.d/agentfense.fish" ]
	[ -f "$root/usr/local/share/bash-completion/completions/agentfense" ]
	[ ! -e "$root/usr/local/share/zsh/vendor-completions" ]
	# /usr/local/share/zsh/site-functions is on Debian zsh's own fpath
	zsh -f -c 'print -l $fpath' | grep -qx /usr/local/share/zsh/site-functions
	# and the installed files work there
	ZSH_COMPDIR=$root/usr/local/share/zsh/site-functions
	assert_eq "run" "$(zsh_complete 'agentfense ru')"
	FISH_COMPFILE=$root/usr/local/share/fish/vendor_completions.d/agentfense.fish
	assert_eq "run" "$(fish_complete 'agentfense ru')"
	make -s -C "$TOP" -o "$build/agentfense" BUILD="$build" PREFIX=/usr/local DESTDIR="$root" uninstall >/dev/null
	[ ! -e "$root/usr/local/share/zsh/site-functions/_agentfense" ]
	[ ! -e "$root/usr/local/share/fish/vendor_completions.d/agentfense.fish" ]
}
