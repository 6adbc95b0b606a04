# fish completion for agentfense

# Preset names: from the binary when it runs (user presets included),
# else the built-ins.
function __agentfense_presets
    set -l names (agentfense preset list 2>/dev/null |
        awk '$1 ~ /^[A-Za-z0-9][A-Za-z0-9._-]*$/ && $1 != "NAME" { print $1 }')
    test -n "$names"; or set names agent-safe development full-access read-only view-only
    printf '%s\n' $names
end

set -l commands codebase config explain help preset run sandbox serve session shell version

complete -c agentfense -f
complete -c agentfense -n "not __fish_seen_subcommand_from $commands" -s h -l help -d 'show help'
complete -c agentfense -n "not __fish_seen_subcommand_from $commands" -s V -l version -d 'show the version'
complete -c agentfense -n "not __fish_seen_subcommand_from $commands" -a codebase -d 'create, list, fill and remove codebases through serve'
complete -c agentfense -n "not __fish_seen_subcommand_from $commands" -a config -d 'show the defaults of run and shell and where each comes from'
complete -c agentfense -n "not __fish_seen_subcommand_from $commands" -a explain -d 'show the level of paths and the rule that decided it'
complete -c agentfense -n "not __fish_seen_subcommand_from $commands" -a help -d 'show help'
complete -c agentfense -n "not __fish_seen_subcommand_from $commands" -a preset -d 'list presets or show one'
complete -c agentfense -n "not __fish_seen_subcommand_from $commands" -a run -d 'run a command in a sandbox over a permissioned view of DIR'
complete -c agentfense -n "not __fish_seen_subcommand_from $commands" -a sandbox -d 'create, start, exec in and remove sandboxes through serve'
complete -c agentfense -n "not __fish_seen_subcommand_from $commands" -a serve -d 'serve the API (codebases, sandboxes, sessions) on a Unix socket'
complete -c agentfense -n "not __fish_seen_subcommand_from $commands" -a session -d 'persistent shells in a sandbox of serve'
complete -c agentfense -n "not __fish_seen_subcommand_from $commands" -a shell -d 'start an interactive shell in a sandbox over DIR'
complete -c agentfense -n "not __fish_seen_subcommand_from $commands" -a version -d 'show the version'

# run and shell (options sorted)
set -l runlike '__fish_seen_subcommand_from run shell'
complete -c agentfense -n $runlike -l bind -r -F -d 'show a host path in the sandbox, writable'
complete -c agentfense -n $runlike -l changes -x -a 'discard keep sync' -d 'what happens to the delta at exit'
complete -c agentfense -n $runlike -l cpus -x -d 'CPU time limit, in CPUs'
complete -c agentfense -n $runlike -l disk-limit -x -d 'bytes the changes may take on disk, e.g. 10G'
complete -c agentfense -n $runlike -l dry-run -d 'say what would run and start nothing'
complete -c agentfense -n $runlike -s e -l env -x -d 'KEY=VALUE, or KEY to pass its value'
complete -c agentfense -n $runlike -l env-file -r -F -d 'read environment variables from a file'
complete -c agentfense -n $runlike -l git-identity -x -a 'off on' -d 'the host\'s git user.name and user.email for commits'
complete -c agentfense -n $runlike -s h -l help -d 'show help'
complete -c agentfense -n $runlike -l host-path -d 'show the project at its own host path'
complete -c agentfense -n $runlike -l image -x -a '(__fish_complete_directories)' -d 'OCI image layout as the root filesystem'
complete -c agentfense -n $runlike -l kill-after -x -d "grace between the timeout's SIGTERM and SIGKILL"
complete -c agentfense -n $runlike -l memory -x -d 'memory limit, e.g. 512m, 1.5G'
complete -c agentfense -n $runlike -l net -x -a 'host none' -d 'network'
complete -c agentfense -n $runlike -l pids -x -d 'at most this many processes and threads'
complete -c agentfense -n $runlike -l policy -r -F -d 'rules and presets from an INI file'
complete -c agentfense -n $runlike -s p -l preset -x -a '(__agentfense_presets)' -d 'permission preset'
complete -c agentfense -n $runlike -s q -l quiet -d 'no summary line of the changes synced'
complete -c agentfense -n $runlike -l ro-bind -r -F -d 'show a host path in the sandbox, read-only'
complete -c agentfense -n $runlike -l rootfs -x -a '(__fish_complete_directories)' -d 'directory to use as the root filesystem'
complete -c agentfense -n $runlike -s r -l rule -x -d 'extra rule PATTERN=LEVEL[@PRIORITY]'
complete -c agentfense -n $runlike -l seccomp -x -a 'off on' -d 'system call filter'
complete -c agentfense -n $runlike -s t -l timeout -x -d 'SIGTERM, then SIGKILL, after this long, e.g. 30, 5m'
complete -c agentfense -n $runlike -l tmpfs -x -d 'fresh private tmpfs at DST'
complete -c agentfense -n $runlike -s v -l verbose -d "say the rules' sources, the mounts and the delta"
complete -c agentfense -n $runlike -s w -l workdir -x -d 'working directory inside the sandbox'
complete -c agentfense -n $runlike -l workspace -x -d 'show the project at this path instead of /workspace'
complete -c agentfense -n $runlike -a '(__fish_complete_directories)'

# explain
set -l explain '__fish_seen_subcommand_from explain'
complete -c agentfense -n $explain -s h -l help -d 'show help'
complete -c agentfense -n $explain -l json -d 'output JSON'
complete -c agentfense -n $explain -l policy -r -F -d 'rules and presets from an INI file'
complete -c agentfense -n $explain -s p -l preset -x -a '(__agentfense_presets)' -d 'permission preset'
complete -c agentfense -n $explain -s r -l rule -x -d 'extra rule PATTERN=LEVEL[@PRIORITY]'
complete -c agentfense -n $explain -F

# preset
set -l preset '__fish_seen_subcommand_from preset'
complete -c agentfense -n "$preset; and not __fish_seen_subcommand_from list show" -a 'list show'
complete -c agentfense -n $preset -s h -l help -d 'show help'
complete -c agentfense -n $preset -l json -d 'output JSON'
complete -c agentfense -n "$preset; and __fish_seen_subcommand_from show" -a '(__agentfense_presets)'

# serve
set -l serve '__fish_seen_subcommand_from serve'
complete -c agentfense -n $serve -l client-timeout -x -d 'close a client silent this long'
complete -c agentfense -n $serve -s h -l help -d 'show help'
complete -c agentfense -n $serve -l idle-exit -x -d 'exit after this long without clients'
complete -c agentfense -n $serve -l max-connections -x -d 'clients at once'
complete -c agentfense -n $serve -l max-upload -x -d 'largest upload, e.g. 1G'
complete -c agentfense -n $serve -l socket -r -F -d 'listen on this socket'

# codebase
set -l codebase '__fish_seen_subcommand_from codebase'
set -l cbcmds create files get info ls put rm
complete -c agentfense -n "$codebase; and not __fish_seen_subcommand_from $cbcmds" -a create -d 'create a codebase'
complete -c agentfense -n "$codebase; and not __fish_seen_subcommand_from $cbcmds" -a files -d 'list files'
complete -c agentfense -n "$codebase; and not __fish_seen_subcommand_from $cbcmds" -a get -d 'download a file'
complete -c agentfense -n "$codebase; and not __fish_seen_subcommand_from $cbcmds" -a info -d 'show a codebase'
complete -c agentfense -n "$codebase; and not __fish_seen_subcommand_from $cbcmds" -a ls -d 'list codebases'
complete -c agentfense -n "$codebase; and not __fish_seen_subcommand_from $cbcmds" -a put -d 'upload a file or tar archive'
complete -c agentfense -n "$codebase; and not __fish_seen_subcommand_from $cbcmds" -a rm -d 'delete codebases'
complete -c agentfense -n $codebase -l force -d 'rm: remove even a codebase in use'
complete -c agentfense -n $codebase -l from -x -a '(__fish_complete_directories)' -d 'create: import this directory'
complete -c agentfense -n $codebase -s h -l help -d 'show help'
complete -c agentfense -n $codebase -l ignore -x -d 'create: also leave out what PATTERN matches'
complete -c agentfense -n $codebase -l json -d 'print JSON'
complete -c agentfense -n $codebase -l label -x -d 'create: add a label; ls: only with this label'
complete -c agentfense -n $codebase -l max-file-size -x -d 'create: skip larger files'
complete -c agentfense -n $codebase -l owner -x -d 'create: owner id; ls: only this owner'
complete -c agentfense -n $codebase -s r -l recursive -d 'files: the whole tree'
complete -c agentfense -n $codebase -l socket -r -F -d 'the socket of serve'
complete -c agentfense -n $codebase -l tar -d 'put: LOCAL is a tar archive'
complete -c agentfense -n "$codebase; and __fish_seen_subcommand_from get put" -F

# sandbox (options sorted)
set -l sandbox '__fish_seen_subcommand_from sandbox'
set -l sbcmds cp create exec info ls rm start stop
complete -c agentfense -n "$sandbox; and not __fish_seen_subcommand_from $sbcmds" -a cp -d 'copy a file out of or into a sandbox'
complete -c agentfense -n "$sandbox; and not __fish_seen_subcommand_from $sbcmds" -a create -d 'create a sandbox on a codebase'
complete -c agentfense -n "$sandbox; and not __fish_seen_subcommand_from $sbcmds" -a exec -d 'run a command in a sandbox'
complete -c agentfense -n "$sandbox; and not __fish_seen_subcommand_from $sbcmds" -a info -d 'show a sandbox'
complete -c agentfense -n "$sandbox; and not __fish_seen_subcommand_from $sbcmds" -a ls -d 'list sandboxes'
complete -c agentfense -n "$sandbox; and not __fish_seen_subcommand_from $sbcmds" -a rm -d 'remove sandboxes'
complete -c agentfense -n "$sandbox; and not __fish_seen_subcommand_from $sbcmds" -a start -d 'start sandboxes'
complete -c agentfense -n "$sandbox; and not __fish_seen_subcommand_from $sbcmds" -a stop -d 'stop sandboxes'
complete -c agentfense -n $sandbox -l changes -x -a 'discard keep sync' -d 'create: what rm does with the changes'
complete -c agentfense -n $sandbox -l codebase -x -d 'ls: only the sandboxes of this codebase'
complete -c agentfense -n $sandbox -l cpus -x -d 'create: CPU time limit, in CPUs'
complete -c agentfense -n $sandbox -s e -l env -x -d 'exec: environment variable, or KEY to pass its value'
complete -c agentfense -n $sandbox -l env-file -r -F -d 'exec: read environment variables from a file'
complete -c agentfense -n $sandbox -l expires -x -d 'create: remove the sandbox after this long'
complete -c agentfense -n $sandbox -s f -l force -d 'rm: remove a running sandbox too'
complete -c agentfense -n $sandbox -s h -l help -d 'show help'
complete -c agentfense -n $sandbox -l image -x -a '(__fish_complete_directories)' -d 'create: OCI layout or root file system'
complete -c agentfense -n $sandbox -s i -l interactive -d 'exec: send standard input to the command'
complete -c agentfense -n $sandbox -l json -d 'print JSON'
complete -c agentfense -n $sandbox -l label -x -d 'create: add a label; ls: only with this label'
complete -c agentfense -n $sandbox -l memory -x -d 'create: memory limit, e.g. 512m'
complete -c agentfense -n $sandbox -l net -x -a 'host none' -d 'create: network'
complete -c agentfense -n $sandbox -l pids -x -d 'create: at most this many processes and threads'
complete -c agentfense -n $sandbox -s p -l preset -x -a '(__agentfense_presets)' -d 'create: the preset'
complete -c agentfense -n $sandbox -s r -l rule -x -d 'create: extra rule PATTERN=LEVEL[@PRIORITY]'
complete -c agentfense -n $sandbox -l socket -r -F -d 'the socket of serve'
complete -c agentfense -n $sandbox -l start -d 'create: start it at once'
complete -c agentfense -n $sandbox -l status -x -a 'error pending running stopped' -d 'ls: only sandboxes in this state'
complete -c agentfense -n $sandbox -l timeout -x -d 'exec: kill the command after this long'
complete -c agentfense -n $sandbox -s w -l workdir -x -d 'exec: working directory'
complete -c agentfense -n "$sandbox; and __fish_seen_subcommand_from cp" -F

# session (options sorted)
set -l session '__fish_seen_subcommand_from session'
set -l sscmds close exec info ls open
complete -c agentfense -n "$session; and not __fish_seen_subcommand_from $sscmds" -a close -d 'close sessions'
complete -c agentfense -n "$session; and not __fish_seen_subcommand_from $sscmds" -a exec -d 'run command text in a session'
complete -c agentfense -n "$session; and not __fish_seen_subcommand_from $sscmds" -a info -d 'show a session'
complete -c agentfense -n "$session; and not __fish_seen_subcommand_from $sscmds" -a ls -d 'list the sessions of a sandbox'
complete -c agentfense -n "$session; and not __fish_seen_subcommand_from $sscmds" -a open -d 'open a session in a sandbox'
complete -c agentfense -n $session -s e -l env -x -d 'open: environment variable, or KEY to pass its value'
complete -c agentfense -n $session -l env-file -r -F -d 'open: read environment variables from a file'
complete -c agentfense -n $session -s h -l help -d 'show help'
complete -c agentfense -n $session -l json -d 'print JSON'
complete -c agentfense -n $session -l shell -r -F -d 'open: the shell'
complete -c agentfense -n $session -l socket -r -F -d 'the socket of serve'
complete -c agentfense -n $session -l timeout -x -d 'exec: kill the command after this long'
complete -c agentfense -n $session -s w -l workdir -x -d 'open: working directory'

# help COMMAND
complete -c agentfense -n '__fish_seen_subcommand_from help' -a "$commands"
