#!/usr/bin/env bats
# agentfense preset list | show NAME [--json], and user presets.

load helper

@test "preset list shows the five built-ins" {
	run --separate-stderr af preset list
	assert_status 0
	for n in agent-safe development full-access read-only view-only; do
		grep -qE "^$n +built-in " <<<"$output"
	done
}

@test "preset list --json is valid JSON naming the built-ins" {
	run --separate-stderr af preset list --json
	assert_status 0
	python3 -c 'import json, sys
j = json.loads(sys.argv[1])
names = sorted(e["name"] for e in j)
assert names == ["agent-safe", "development", "full-access", "read-only", "view-only"], names
assert all(e["description"] for e in j), j' "$output"
}

@test "preset show agent-safe lists its rules in precedence order" {
	run --separate-stderr af preset show agent-safe
	assert_status 0
	assert_contains "$output" "agent-safe"
	grep -qE '^/output/\*\* +write +0$' <<<"$output"
	grep -qE '^\.env\* +none +100$' <<<"$output"
	# Precedence order: every priority-100 rule before the priority-0 ones.
	local prios
	prios=$(grep -E ' (none|view|read|write) +-?[0-9]+$' <<<"$output" | awk '{print $NF}' | tr '\n' ' ')
	[ "$prios" = "$(tr ' ' '\n' <<<"$prios" | grep . | sort -rn | tr '\n' ' ')" ]
}

@test "preset show --json: rules with pattern, level and priority" {
	run --separate-stderr af preset show --json agent-safe
	assert_status 0
	python3 -c 'import json, sys
j = json.loads(sys.argv[1])
assert j["name"] == "agent-safe", j
rules = {(r["pattern"], r["level"], r["priority"]) for r in j["rules"]}
for want in [("**", "read", 0), ("/output/**", "write", 0), ("/tmp/**", "write", 0),
             (".env*", "none", 100), ("secrets/", "none", 100), ("*.key", "none", 100),
             ("*.pem", "none", 100), ("credentials*", "none", 100), (".git", "read", 90),
             ("**/.git/config", "none", 100), ("**/.git/hooks/", "none", 100)]:
    assert want in rules, (want, rules)' "$output"
}

@test "preset show of every built-in works" {
	for n in agent-safe development full-access read-only view-only; do
		run --separate-stderr af preset show "$n"
		assert_status 0
		run --separate-stderr af preset show --json "$n"
		assert_status 0
		python3 -c 'import json, sys; json.loads(sys.argv[1])' "$output"
	done
}

@test "a user preset is listed, shown and usable" {
	user_preset mine '[preset]
description = my own preset

[rules]
** = read
/docs/** = none @ 5'
	run --separate-stderr af preset list
	assert_status 0
	grep -qE "^mine +$XDG_CONFIG_HOME/agentfense/presets/mine.ini +my own preset$" <<<"$output"
	run --separate-stderr af preset show mine
	assert_status 0
	grep -qE '^/docs/\*\* +none +5$' <<<"$output"
	run --separate-stderr af run --changes discard -p mine "$P" -- sh -c 'ls -A /workspace/docs; cat /workspace/README.md /workspace/.env'
	assert_status 0
	assert_output "hello agentfense
SECRET=${SECRET_MARK}_env"
}

@test "a user preset shadows a built-in of the same name" {
	user_preset agent-safe '[preset]
description = shadowed

[rules]
** = view'
	run --separate-stderr af preset list
	assert_status 0
	grep -qE "^agent-safe +$XDG_CONFIG_HOME/agentfense/presets/agent-safe.ini +shadowed$" <<<"$output"
	run inside -- 'cat /workspace/README.md'
	assert_status 1
	assert_output "agentfense: using the user preset 'agent-safe' from '$XDG_CONFIG_HOME/agentfense/presets/agent-safe.ini' in place of the built-in one
cat: /workspace/README.md: Permission denied"
}

@test "a malformed user preset is an error naming the file and line" {
	user_preset broken '[preset]
description = broken

[rules]
** = sometimes'
	run --separate-stderr af preset show broken
	assert_error 125 "$XDG_CONFIG_HOME/agentfense/presets/broken.ini" "5"
	run --separate-stderr af run -p broken "$P" -- true
	assert_error 125 "$XDG_CONFIG_HOME/agentfense/presets/broken.ini" "5"
}
