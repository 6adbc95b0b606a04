#!/usr/bin/env bats
# agentfense explain: the level of paths and the rule that decided it.

load helper

# xl [EXPLAIN-OPTION...] -- PATH...: "PATH LEVEL PATTERN@PRIORITY" per
# path from `explain --json` ("-" when no rule matched, "+t" after the
# level of a traversable directory).
xl() {
	split_opts "$@"
	af explain --json "${OPTS[@]}" "$P" "${ARGS[@]}" | python3 -c '
import json, sys
for e in json.load(sys.stdin):
    r = e["rule"]
    print(e["path"], e["level"] + ("+t" if e["traversable"] else ""),
          "%s@%d" % (r["pattern"], r["priority"]) if r else "-")
'
}

@test "explain: agent-safe levels and deciding rules" {
	run xl -- /README.md /src/main.c /output/x /tmp/y /.env /a/b/c/.env /secrets/key.txt \
		/a/b/secrets/deep.txt /server.key /certs/server.pem /config/credentials.json \
		/.git/config /.git/HEAD /output
	assert_status 0
	assert_output "/README.md read **@0
/src/main.c read **@0
/output/x write /output/**@0
/tmp/y write /tmp/**@0
/.env none .env*@100
/a/b/c/.env none .env*@100
/secrets/key.txt none secrets/@100
/a/b/secrets/deep.txt none secrets/@100
/server.key none *.key@100
/certs/server.pem none *.pem@100
/config/credentials.json none credentials*@100
/.git/config none **/.git/config@100
/.git/HEAD read .git@90
/output read **@0"
	run xl -- /.git/hooks/pre-commit /a/.git/hooks/x /a/.git/config
	assert_status 0
	[[ "${lines[0]}" =~ ^/\.git/hooks/pre-commit\ none\ (\*\*/)?\.git/hooks/@100$ ]]
	[[ "${lines[1]}" =~ ^/a/\.git/hooks/x\ none\ \*\*/\.git/hooks/@100$ ]]
	[[ "${lines[2]}" =~ ^/a/\.git/config\ none\ \*\*/\.git/config@100$ ]]
}

@test "explain: text output names path, level and rule" {
	run --separate-stderr af explain "$P" /.env /README.md
	assert_status 0
	[ "${#lines[@]}" = 2 ]
	[[ "${lines[0]}" =~ ^/\.env\ +none\ +.*\.env\*.*100 ]]
	[[ "${lines[1]}" =~ ^/README\.md\ +read\ +.*\*\* ]]
}

@test "explain: --json is valid JSON with one entry per path" {
	run --separate-stderr af explain --json "$P" /README.md /.env src/main.c
	assert_status 0
	python3 -c 'import json, sys
j = json.loads(sys.argv[1])
assert [e["path"] for e in j] == ["/README.md", "/.env", "/src/main.c"], j
assert [e["level"] for e in j] == ["read", "none", "read"], j
assert j[1]["rule"]["origin"], j' "$output"
}

@test "explain: --rule, --preset and --policy are applied" {
	run xl -p read-only -r '/docs/**=none@3' -- /docs/guide.txt /README.md
	assert_output "/docs/guide.txt none /docs/**@3
/README.md read **@0"
	printf '[policy]\npreset = development\n\n[rules]\n/docs/guide.txt = view @ 7\n' >"$T/p.ini"
	run xl --policy "$T/p.ini" -- /docs/guide.txt /README.md /.env
	assert_output "/docs/guide.txt view /docs/guide.txt@7
/README.md write **@0
/.env none .env*@100"
}

@test "explain: a path no rule matches is none" {
	user_preset empty '[preset]
description = nothing at all

[rules]
/src/** = read'
	run xl -p empty -- /README.md /src/main.c
	assert_status 0
	assert_output "/README.md none -
/src/main.c read /src/**@0"
}

@test "explain: a none directory with a visible descendant is traversable" {
	run xl -p read-only -r '/a/=none@10' -r '/a/b/c/code.py=read@10' -- /a/ /a/b/ /a/b/c/code.py /a/readme.txt
	assert_status 0
	assert_output "/a none+t /a/@10
/a/b none+t /a/@10
/a/b/c/code.py read /a/b/c/code.py@10
/a/readme.txt none /a/@10"
}

@test "explain: paths leaving the project are refused" {
	run --separate-stderr af explain "$P" ../etc/passwd
	assert_error 125 "../etc/passwd"
}
