# bash completion for agentfense                           -*- shell-script -*-

# Preset names: from the binary when it runs (user presets included),
# else the built-ins.
_agentfense_presets()
{
    local names
    names=$("$1" preset list 2>/dev/null |
        awk '$1 ~ /^[A-Za-z0-9][A-Za-z0-9._-]*$/ && $1 != "NAME" { print $1 }')
    [[ -n $names ]] || names="agent-safe development full-access read-only view-only"
    printf '%s\n' $names
}

_agentfense()
{
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion -s || return
    else
        cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
        words=("${COMP_WORDS[@]}") cword=$COMP_CWORD
        if [[ $cur == --*=* ]]; then
            prev=${cur%%=*} cur=${cur#*=}
        fi
    fi

    local commands="codebase config explain help preset run sandbox serve session shell version"
    local run_opts="--bind --changes --cpus --disk-limit --dry-run --env --env-file --git-identity --help --host-path --image --kill-after --memory --net --pids --policy --preset --quiet --ro-bind --rootfs --rule --seccomp --timeout --tmpfs --verbose --workdir --workspace -e -p -q -r -t -v -w"
    local explain_opts="--help --json --policy --preset --rule -p -r"
    local serve_opts="--client-timeout --help --idle-exit --max-connections --max-upload --socket"
    local codebase_cmds="create files get info ls put rm"
    local codebase_opts="--force --from --help --ignore --json --label --max-file-size --owner --recursive --socket --tar -r"
    local sandbox_cmds="cp create exec info ls rm start stop"
    local sandbox_opts="--changes --codebase --cpus --env --env-file --expires --force --help --image --interactive --json --label --memory --net --pids --preset --rule --socket --start --status --timeout --workdir -e -f -i -p -r -w"
    local session_cmds="close exec info ls open"
    local session_opts="--env --env-file --help --json --shell --socket --timeout --workdir -e -w"

    # The subcommand: the first word after the program name.
    if ((cword == 1)); then
        COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur"))
        return
    fi
    local cmd=${words[1]}

    case $prev in
    -p | --preset)
        COMPREPLY=($(compgen -W "$(_agentfense_presets "${words[0]}")" -- "$cur"))
        return
        ;;
    --policy | --bind | --ro-bind | --socket | --env-file)
        COMPREPLY=($(compgen -f -- "$cur"))
        compopt -o filenames 2>/dev/null
        return
        ;;
    --image | --rootfs | --from)
        COMPREPLY=($(compgen -d -- "$cur"))
        compopt -o filenames 2>/dev/null
        return
        ;;
    --changes)
        COMPREPLY=($(compgen -W "discard keep sync" -- "$cur"))
        return
        ;;
    --net)
        COMPREPLY=($(compgen -W "host none" -- "$cur"))
        return
        ;;
    --seccomp | --git-identity)
        COMPREPLY=($(compgen -W "off on" -- "$cur"))
        return
        ;;
    --status)
        COMPREPLY=($(compgen -W "error pending running stopped" -- "$cur"))
        return
        ;;
    -r | --rule | -e | --env | -t | --timeout | -w | --workdir | --workspace | --tmpfs | --cpus | --disk-limit | --kill-after | --memory | --pids)
        [[ $cmd == codebase && $prev == -r ]] || return
        ;;
    --client-timeout | --idle-exit | --max-connections | --max-upload | --ignore | --label | \
        --max-file-size | --owner | --codebase | --expires | --shell)
        return
        ;;
    esac

    case $cmd in
    run | shell)
        # run [OPTIONS] DIR [--] COMMAND [ARG...] (shell: the command is
        # optional): after DIR the rest is the command to run.
        local i dir_at=0 cmd_at=0
        for ((i = 2; i < cword; i++)); do
            if ((dir_at)); then
                if [[ ${words[i]} == -- ]]; then cmd_at=$((i + 1)); else cmd_at=$i; fi
                break
            fi
            case ${words[i]} in
            -p | --preset | -r | --rule | --policy | -w | --workdir | -e | --env | --env-file | \
                --git-identity | -t | --timeout | --changes | --net | --seccomp | --bind | --ro-bind | \
                --tmpfs | --rootfs | --image | --memory | --cpus | --pids | \
                --disk-limit | --kill-after | --workspace) ((i++)) ;;
            -*) ;;
            *) dir_at=$i ;;
            esac
        done
        if ((cmd_at)); then
            if declare -F _command_offset >/dev/null; then
                _command_offset $cmd_at
            elif ((cmd_at == cword)); then
                COMPREPLY=($(compgen -c -- "$cur"))
            else
                COMPREPLY=($(compgen -f -- "$cur"))
            fi
        elif ((dir_at)); then
            COMPREPLY=($(compgen -c -W "--" -- "$cur"))
        elif [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$run_opts" -- "$cur"))
        else
            COMPREPLY=($(compgen -d -- "$cur"))
            compopt -o filenames 2>/dev/null
        fi
        ;;
    explain)
        # explain [OPTIONS] DIR PATH...: the PATHs are relative to DIR.
        local i dir=
        for ((i = 2; i < cword; i++)); do
            case ${words[i]} in
            -p | --preset | -r | --rule | --policy) ((i++)) ;;
            -*) ;;
            *) dir=${words[i]}; break ;;
            esac
        done
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$explain_opts" -- "$cur"))
        elif [[ -n $dir && -d $dir ]]; then
            local f
            COMPREPLY=()
            while IFS= read -r f; do
                [[ -d $f ]] && f+=/
                COMPREPLY+=("${f#"$dir"/}")
            done < <(compgen -f -- "$dir/$cur")
            compopt -o nospace 2>/dev/null
        else
            COMPREPLY=($(compgen -d -- "$cur"))
            compopt -o filenames 2>/dev/null
        fi
        ;;
    preset)
        if ((cword == 2)); then
            COMPREPLY=($(compgen -W "--help list show" -- "$cur"))
        elif [[ ${words[2]} == list ]]; then
            COMPREPLY=($(compgen -W "--help --json" -- "$cur"))
        elif [[ ${words[2]} == show ]]; then
            if [[ $cur == -* ]]; then
                COMPREPLY=($(compgen -W "--help --json" -- "$cur"))
            else
                COMPREPLY=($(compgen -W "$(_agentfense_presets "${words[0]}")" -- "$cur"))
            fi
        fi
        ;;
    serve)
        COMPREPLY=($(compgen -W "$serve_opts" -- "$cur"))
        ;;
    codebase)
        # codebase [OPTIONS] SUBCOMMAND ARG...: the first word that is not
        # an option (or an option's value) is the subcommand.
        local i sub=
        for ((i = 2; i < cword; i++)); do
            case ${words[i]} in
            --socket | --from | --owner | --label | --ignore | --max-file-size) ((i++)) ;;
            -*) ;;
            *) sub=${words[i]}; break ;;
            esac
        done
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$codebase_opts" -- "$cur"))
        elif [[ -z $sub ]]; then
            COMPREPLY=($(compgen -W "$codebase_cmds" -- "$cur"))
        elif [[ $sub == put || $sub == get ]]; then
            COMPREPLY=($(compgen -f -- "$cur"))
            compopt -o filenames 2>/dev/null
        fi
        ;;
    sandbox | session)
        # sandbox|session [OPTIONS] SUBCOMMAND [OPTIONS] ARG...; after an
        # exec's ID (and "--") comes the command.
        local i sub= id_at=0 cmd_at=0
        for ((i = 2; i < cword; i++)); do
            case ${words[i]} in
            --socket | -p | --preset | -r | --rule | --label | --expires | --net | --memory | \
                --cpus | --pids | --image | --changes | --codebase | --status | -e | --env | \
                --env-file | -w | --workdir | --timeout | --shell) ((i++)) ;;
            --) [[ $sub == exec && $id_at -gt 0 ]] && { cmd_at=$((i + 1)); break; } ;;
            -*) ;;
            *)
                if [[ -z $sub ]]; then
                    sub=${words[i]}
                elif [[ $sub == exec && $id_at -eq 0 ]]; then
                    id_at=$i
                elif [[ $sub == exec ]]; then
                    cmd_at=$i
                    break
                fi
                ;;
            esac
        done
        local opts=$sandbox_opts subs=$sandbox_cmds
        [[ $cmd == session ]] && opts=$session_opts subs=$session_cmds
        if ((cmd_at)) && [[ $cmd == sandbox ]]; then
            if declare -F _command_offset >/dev/null; then
                _command_offset $cmd_at
            else
                COMPREPLY=($(compgen -c -- "$cur"))
            fi
        elif [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        elif [[ -z $sub ]]; then
            COMPREPLY=($(compgen -W "$subs" -- "$cur"))
        elif [[ $cmd == sandbox && $sub == cp ]]; then
            COMPREPLY=($(compgen -f -- "$cur"))
            compopt -o filenames 2>/dev/null
        fi
        ;;
    help)
        ((cword == 2)) && COMPREPLY=($(compgen -W "$commands" -- "$cur"))
        ;;
    esac
} &&
    complete -F _agentfense agentfense

# ex: filetype=sh
