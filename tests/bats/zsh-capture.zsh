# zsh-capture.zsh COMPDIR OUT LINE: type LINE and TAB in an interactive zsh
# (through zpty) with COMPDIR first on fpath; every match completion
# offers is appended to OUT, one a line.  Used by completions.bats.
zmodload zsh/zpty || exit 1
compdir=$1 out=$2 line=$3
zpty z zsh -f -i
zpty -w z "PS1= ; PROMPT= ; RPROMPT= ; unsetopt zle_bracketed_paste 2>/dev/null"
zpty -w z "fpath=($compdir \$fpath); autoload -Uz compinit; compinit -u -D"
zpty -w z 'zstyle ":completion:*" list-grouped false; zstyle ":completion:*" menu no'
zpty -w z "compadd() { if [[ \${@[1,(i)(-|--)]} == *-(O|A|D)\\ * ]]; then builtin compadd \"\$@\"; return \$?; fi; typeset -a __h; builtin compadd -A __h \"\$@\"; local r=\$?; (( \$#__h )) && print -rl -- \$__h >> $out; return r; }"
zpty -w z "bindkey '^I' complete-word; print -r -- READY >> $out.ready"
local i
for i in {1..100}; do [[ -e $out.ready ]] && break; sleep 0.05; done
zpty -w -n z "$line"$'\t'
for i in {1..40}; do [[ -s $out ]] && break; sleep 0.05; done
sleep 0.3
zpty -d z
