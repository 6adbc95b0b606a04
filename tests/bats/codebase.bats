#!/usr/bin/env bats
# codebase.bats - codebases through serve: create, import with gitignore
# semantics, get, list, delete, files (list, upload, download, tar), and
# every client path kept inside the codebase.

load helper
load serve_helper

# files CB [QUERY]: "path type size" of each entry of a recursive listing.
files() {
	run api GET "/v1/codebases/$1/files?recursive=true${2:+&$2}"
	[ "${output%% *}" = 200 ] || { echo "list failed: $output" >&2; return 1; }
	jget "${output#* }" '"\n".join("%s %s %d" % (f["path"], f["type"], f["size"]) for f in j["files"])'
}

@test "create an empty codebase with owner and labels; get gives it back" {
	start_serve
	run api POST /v1/codebases -d '{"name": "proj", "owner_id": "alice", "labels": {"team": "x"}}'
	assert_eq 200 "${output%% *}"
	local j=${output#* } id
	id=$(jget "$j" 'j["id"]')
	[[ "$id" =~ ^cb_[0-9a-f]{32}$ ]]
	assert_eq "proj alice {'team': 'x'} 0 0" "$(jget "$j" '" ".join(map(str, [j["name"], j["owner_id"], j["labels"], j["file_count"], j["size"]]))')"
	[[ "$(jget "$j" 'j["created_at"]')" =~ ^20[0-9][0-9]-[01][0-9]-[0-3][0-9]T[0-9:]{8}\.[0-9]{6}Z$ ]]
	run api GET "/v1/codebases/$id"
	assert_output "200 $j"
	# the metadata is on disk, and survives a restart of serve
	stop_serve
	start_serve
	run api GET "/v1/codebases/$id"
	assert_output "200 $j"
	[ -f "$XDG_DATA_HOME/agentfense/codebases/$id/meta.json" ]
	[ ! -e "$XDG_DATA_HOME/agentfense/codebases/$id/meta.json.tmp" ]
}

@test "ids are unguessable and distinct" {
	start_serve
	local i ids=()
	for i in 1 2 3 4 5; do
		new_codebase '{"name": "n"}'
		ids+=("$CB")
	done
	assert_eq 5 "$(printf '%s\n' "${ids[@]}" | sort -u | wc -l)"
}

@test "list filters by owner_id and label; the list is oldest first" {
	start_serve
	new_codebase '{"name": "a", "owner_id": "alice", "labels": {"env": "dev"}}'
	local a=$CB
	new_codebase '{"name": "b", "owner_id": "bob", "labels": {"env": "prod"}}'
	local b=$CB
	new_codebase '{"name": "c", "owner_id": "alice"}'
	local c=$CB
	names() { jget "${output#* }" '" ".join(x["name"] for x in j["codebases"])'; }
	run api GET /v1/codebases
	assert_eq "a b c" "$(names)"
	run api GET '/v1/codebases?owner_id=alice'
	assert_eq "a c" "$(names)"
	run api GET '/v1/codebases?label=env'
	assert_eq "a b" "$(names)"
	run api GET '/v1/codebases?label=env%3Dprod'
	assert_eq "b" "$(names)"
	run api GET '/v1/codebases?owner_id=alice&label=env=prod'
	assert_eq "" "$(names)"
	run api GET '/v1/codebases?owner_id=nobody'
	assert_output '200 {"codebases":[],"next_page_token":""}'
}

@test "delete removes the codebase and its files; unknown ids are not_found" {
	start_serve
	new_codebase "{\"name\": \"d\", \"source_path\": \"$P\"}"
	run api DELETE "/v1/codebases/$CB"
	assert_output '200 {}'
	run api GET "/v1/codebases/$CB"
	assert_output "404 {\"code\":\"not_found\",\"message\":\"no codebase '$CB'\"}"
	run api DELETE "/v1/codebases/$CB"
	assert_output "404 {\"code\":\"not_found\",\"message\":\"no codebase '$CB'\"}"
	assert_eq "" "$(ls -A "$XDG_DATA_HOME/agentfense/codebases")"
	# ids that are no ids never reach the file system
	run api GET /v1/codebases/..
	assert_eq 404 "${output%% *}"
	run api GET /v1/codebases/cb_../files
	assert_output "404 {\"code\":\"not_found\",\"message\":\"no codebase 'cb_..'\"}"
	run api DELETE '/v1/codebases/%2e%2e'
	assert_eq 404 "${output%% *}"
	run api DELETE "/v1/codebases/$CB?force=maybe"
	assert_output '400 {"code":"invalid_argument","message":"force must be true or false"}'
}

@test "import copies the tree: content, modes, symlinks as symlinks" {
	start_serve
	chmod 750 "$P/src/main.c"
	ln -s /etc/passwd "$P/abs-link"
	ln -s "$T" "$P/dir-link-out"
	new_codebase "{\"name\": \"p\", \"source_path\": \"$P\"}"
	local root=$XDG_DATA_HOME/agentfense/codebases/$CB/files
	diff -r --no-dereference "$P" "$root"
	assert_eq "$(stat -c %a "$P/src/main.c")" "$(stat -c %a "$root/src/main.c")"
	assert_eq /etc/passwd "$(readlink "$root/abs-link")"
	assert_eq "$T" "$(readlink "$root/dir-link-out")"
	# the link to a directory outside was not followed
	[ -L "$root/dir-link-out" ]
	run api GET "/v1/codebases/$CB"
	assert_eq "$(find "$P" -type f -o -type l | wc -l)" "$(jget "${output#* }" 'j["file_count"]')"
	assert_eq "$(find "$P" -type f -printf '%s\n' | paste -sd+ | bc)" "$(jget "${output#* }" 'j["size"]')"
}

@test "import honours .gitignore and .sandboxignore with gitignore semantics" {
	start_serve
	local s=$T/src
	mkdir -p "$s"/build "$s"/src/build "$s"/docs/build "$s"/logs "$s"/sub/deep "$s"/node_modules/x \
		"$s"/keep "$s"/tmp/cache
	for f in a.log important.log build/out.o src/build/gen.c src/main.c docs/build/index.html \
		logs/app.txt sub/deep/x.tmp sub/deep/y.txt sub/z.tmp node_modules/x/i.js keep/a.bak \
		'#hash' '!bang' 'trail ' README.md tmp/cache/c tmp/t.txt secret.env sub/local.env; do
		echo "$f" >"$s/$f"
	done
	printf '%s\n' '# comment' '*.log' '!important.log' '/build/' 'logs/' '*.tmp' \
		'node_modules' '\#hash' '\!bang' 'trail\ ' 'tmp/**/c' >"$s/.gitignore"
	# nested: relative to its directory, and later (deeper) files win
	printf '%s\n' '!z.tmp' 'deep/y.txt' >"$s/sub/.gitignore"
	printf '%s\n' '*.env' '!sub/local.env' >"$s/.sandboxignore"
	printf '%s\n' '*.bak' >"$s/keep/.sandboxignore"
	new_codebase "{\"name\": \"g\", \"source_path\": \"$s\"}"
	run files "$CB"
	assert_output '.gitignore file 95
.sandboxignore file 21
README.md file 10
docs dir 0
docs/build dir 0
docs/build/index.html file 22
important.log file 14
keep dir 0
keep/.sandboxignore file 6
src dir 0
src/build dir 0
src/build/gen.c file 16
src/main.c file 11
sub dir 0
sub/.gitignore file 18
sub/deep dir 0
sub/local.env file 14
sub/z.tmp file 10
tmp dir 0
tmp/cache dir 0
tmp/t.txt file 10'
}

@test "import keeps exactly the files git would add, for a .gitignore table" {
	command -v git >/dev/null || skip "git is not installed"
	start_serve
	local s=$T/g
	mkdir -p "$s"/{a/b/c,b,c/a,doc/api,lib/gen,x/y/z,deep/x}
	local f
	for f in a/b/c/f.o a/b/c/f.c a/keep.o b/x.log b/y.txt c/a/m.md doc/api/index.html \
		doc/readme.md lib/gen/g.c lib/gen/.keep lib/l.c x/y/z/foo x/foo deep/x/foo \
		foo foo.txt Foo 'sp ace' top.log; do
		echo "$f" >"$s/$f"
	done
	printf '%s\n' '*.o' '!a/keep.o' '/foo' 'doc/*.md' 'lib/gen/' '**/y/z' 'x/**/foo' \
		'*.log' '!b/*.log' '[Ff]oo.txt' 'sp\ ace' >"$s/.gitignore"
	printf '%s\n' '*.md' >"$s/c/.gitignore"
	printf '%s\n' '!foo' >"$s/deep/.gitignore"
	new_codebase "{\"name\": \"g\", \"source_path\": \"$s\"}"
	git -C "$s" init -q
	local want
	want=$(git -C "$s" ls-files --others --exclude-standard | LC_ALL=C sort)
	run files "$CB"
	assert_eq "$want" "$(grep -v ' dir ' <<<"$output" | cut -d' ' -f1 | LC_ALL=C sort)"
	# and the table itself, to see what git decided
	assert_eq '.gitignore
Foo
a/b/c/f.c
a/keep.o
b/x.log
b/y.txt
c/.gitignore
deep/.gitignore
deep/x/foo
doc/api/index.html
lib/l.c' "$want"
}

@test "import: the request's ignore_patterns apply after the ignore files" {
	start_serve
	printf '*.md\n' >"$P/.gitignore"
	new_codebase "{\"name\": \"x\", \"source_path\": \"$P\", \"ignore_patterns\": [\"secrets/\", \"*.key\", \"!README.md\", \"/a\"]}"
	run files "$CB"
	assert_output '.env file 21
.gitignore file 5
README.md file 17
certs dir 0
certs/ca.crt file 12
certs/server.pem file 14
config dir 0
config/app.json file 17
config/credentials.json file 35
docs dir 0
docs/guide.txt file 6
link-readme symlink 0
output dir 0
src dir 0
src/lib dir 0
src/lib/util.c file 10
src/main.c file 29
tmp dir 0'
	assert_eq 11 "$(jget "$(api GET "/v1/codebases/$CB" | cut -d' ' -f2-)" 'j["file_count"]')"
}

@test "import skips files over the size limit and reports them; the limit is per request" {
	start_serve
	truncate -s $((50 * 1024 * 1024 + 1)) "$P/huge.bin"
	truncate -s 2000 "$P/mid.bin"
	mkfifo "$P/fifo"
	run api POST /v1/codebases -d "{\"name\": \"s\", \"source_path\": \"$P\"}"
	assert_eq 200 "${output%% *}"
	assert_eq "[{'path': 'fifo', 'reason': 'special_file'}, {'path': 'huge.bin', 'size': 52428801, 'reason': 'too_large'}]" \
		"$(jget "${output#* }" 'sorted(j["skipped"], key=lambda x: x["path"])')"
	run api POST /v1/codebases -d "{\"name\": \"s\", \"source_path\": \"$P\", \"max_file_size\": 1999}"
	assert_eq "fifo huge.bin mid.bin" "$(jget "${output#* }" '" ".join(sorted(x["path"] for x in j["skipped"]))')"
	local id
	id=$(jget "${output#* }" 'j["id"]')
	[ ! -e "$XDG_DATA_HOME/agentfense/codebases/$id/files/mid.bin" ]
	[ -f "$XDG_DATA_HOME/agentfense/codebases/$id/files/README.md" ]
}

@test "import errors: relative, missing or unreadable sources; nothing is left behind" {
	start_serve
	run api POST /v1/codebases -d '{"name": "x", "source_path": "rel/dir"}'
	assert_output "400 {\"code\":\"invalid_argument\",\"message\":\"field 'source_path' must be an absolute path on the host\"}"
	run api POST /v1/codebases -d "{\"name\": \"x\", \"source_path\": \"$T/nope\"}"
	assert_output "404 {\"code\":\"not_found\",\"message\":\"cannot open '$T/nope': No such file or directory\"}"
	chmod 000 "$P/docs"
	run api POST /v1/codebases -d "{\"name\": \"x\", \"source_path\": \"$P\"}"
	chmod 755 "$P/docs"
	assert_eq 200 "${output%% *}"
	assert_eq "[{'path': 'docs', 'reason': 'unreadable'}]" "$(jget "${output#* }" 'j["skipped"]')"
	run api GET /v1/codebases
	assert_eq 1 "$(jget "${output#* }" 'len(j["codebases"])')"
	assert_eq "" "$(ls -A "$XDG_DATA_HOME/agentfense/codebases" | grep -v '^cb_')"
}

@test "import of a tree that holds the store leaves the store out; metadata is bounded" {
	export XDG_DATA_HOME=$P/.local/share
	start_serve
	new_codebase '{"name": "one"}'
	run api POST /v1/codebases -d "{\"name\": \"self\", \"source_path\": \"$P\"}"
	assert_eq 200 "${output%% *}"
	assert_eq "[{'path': '.local/share/agentfense/codebases', 'reason': 'agentfense_store'}]" \
		"$(jget "${output#* }" 'j["skipped"]')"
	local big
	big=$(head -c 70000 /dev/zero | tr '\0' v)
	run api POST /v1/codebases -d "{\"name\": \"x\", \"labels\": {\"k\": \"$big\"}}"
	assert_eq 400 "${output%% *}"
	assert_contains "$output" "the name and labels take"
	run api GET /v1/codebases
	assert_eq "one self" "$(jget "${output#* }" '" ".join(x["name"] for x in j["codebases"])')"
}

@test "import of 5,000 files / 60 MB takes well under a second" {
	start_serve
	local s=$T/big
	python3 - "$s" <<'EOF'
import os, sys
root = sys.argv[1]
blob = os.urandom(12000)
for d in range(50):
    os.makedirs("%s/d%02d" % (root, d))
    for f in range(100):
        with open("%s/d%02d/f%03d" % (root, d, f), "wb") as fh:
            fh.write(blob[: 12000 - f])
EOF
	local t0 t1
	t0=$(date +%s%N)
	run api POST /v1/codebases -d "{\"name\": \"big\", \"source_path\": \"$s\"}"
	t1=$(date +%s%N)
	assert_eq 200 "${output%% *}"
	assert_eq 5000 "$(jget "${output#* }" 'j["file_count"]')"
	local ms=$(((t1 - t0) / 1000000)) c0 c1
	c0=$(date +%s%N)
	cp -r "$s" "$T/cp-copy"
	c1=$(date +%s%N)
	echo "# import of 5,000 files / $(du -sm "$s" | cut -f1) MB: $ms ms (cp -r: $(((c1 - c0) / 1000000)) ms)" >&3
	# well under a second on a quiet machine (see the printed time); the
	# cap only catches a gross regression on a busy shared one
	[ "$ms" -lt 10000 ]
}

@test "files: list a directory, recursively, or one file; fields" {
	start_serve
	new_codebase "{\"name\": \"f\", \"source_path\": \"$P\"}"
	run api GET "/v1/codebases/$CB/files?path=a"
	assert_eq "a/.env.local file False 0644;a/b dir True 0755;a/readme.txt file False 0644" \
		"$(jget "${output#* }" '";".join("%s %s %s %s" % (f["path"], f["type"], f["is_dir"], f["mode"]) for f in j["files"])')"
	run api GET "/v1/codebases/$CB/files?path=a&recursive=true"
	assert_eq "a/.env.local a/b a/b/c a/b/c/.env a/b/c/code.py a/b/secrets a/b/secrets/deep.txt a/readme.txt" \
		"$(jget "${output#* }" '" ".join(f["path"] for f in j["files"])')"
	run api GET "/v1/codebases/$CB/files?path=a/./b//c/code.py"
	assert_eq "code.py a/b/c/code.py 11 0644 False" \
		"$(jget "${output#* }" '" ".join(str(f[k]) for f in j["files"] for k in ("name", "path", "size", "mode", "is_dir"))')"
	[[ "$(jget "${output#* }" 'j["files"][0]["mtime"]')" =~ ^20[0-9][0-9]-.*Z$ ]]
	run api GET "/v1/codebases/$CB/files?path=nope"
	assert_output "404 {\"code\":\"not_found\",\"message\":\"'nope' does not exist in the codebase\"}"
	run api GET "/v1/codebases/$CB/files?recursive=perhaps"
	assert_output '400 {"code":"invalid_argument","message":"malformed query: path is a string, recursive and stream true or false"}'
	run api GET "/v1/codebases/$CB/files?stream=yes"
	assert_eq 400 "${output%% *}"
	# the same listing streamed as NDJSON, one entry per line
	run curl -sS --unix-socket "$SOCK" -D "$T/head" "http://x/v1/codebases/$CB/files?path=a&recursive=true&stream=true"
	assert_eq 8 "${#lines[@]}"
	assert_eq "a/b/c/code.py" "$(jget "${lines[4]}" 'j["path"]')"
	grep -qi '^transfer-encoding: chunked' "$T/head"
	grep -qi '^content-type: application/x-ndjson' "$T/head"
}

@test "files: upload and download one file, binary, with a mode; metadata follows" {
	start_serve
	new_codebase '{"name": "u"}'
	head -c 100000 /dev/urandom >"$T/blob"
	run api PUT "/v1/codebases/$CB/files/bin/tool?mode=0750" --data-binary @"$T/blob"
	assert_eq 200 "${output%% *}"
	assert_eq "tool bin/tool 100000 0750" "$(jget "${output#* }" '" ".join(str(j[k]) for k in ("name", "path", "size", "mode"))')"
	curl -sS --unix-socket "$SOCK" -o "$T/back" "http://x/v1/codebases/$CB/files/bin/tool"
	cmp "$T/blob" "$T/back"
	# replaced atomically; names with spaces through %20
	printf 'v2' >"$T/v2"
	run api PUT "/v1/codebases/$CB/files/bin/tool" --data-binary @"$T/v2"
	run api PUT "/v1/codebases/$CB/files/my%20notes.txt" --data-binary @"$T/v2"
	assert_eq "my notes.txt" "$(jget "${output#* }" 'j["path"]')"
	run curl -sS --unix-socket "$SOCK" "http://x/v1/codebases/$CB/files/bin/tool"
	assert_output v2
	run api GET "/v1/codebases/$CB"
	assert_eq "2 4" "$(jget "${output#* }" '"%d %d" % (j["file_count"], j["size"])')"
	assert_eq "" "$(find "$XDG_DATA_HOME/agentfense/codebases/$CB/files" -name '.af-upload-*')"
	# errors
	run api GET "/v1/codebases/$CB/files/bin"
	assert_output "400 {\"code\":\"invalid_argument\",\"message\":\"'bin' is a directory\"}"
	run api PUT "/v1/codebases/$CB/files/bin" --data-binary @"$T/v2"
	assert_output "409 {\"code\":\"conflict\",\"message\":\"'bin' is a directory\"}"
	run api PUT "/v1/codebases/$CB/files/bin/tool/x" --data-binary @"$T/v2"
	assert_output "400 {\"code\":\"invalid_argument\",\"message\":\"a component of 'bin/tool/x' is not a directory\"}"
	run api PUT "/v1/codebases/$CB/files/x?mode=999" --data-binary @"$T/v2"
	assert_output '400 {"code":"invalid_argument","message":"mode must be octal permission bits, like 0644"}'
	run api GET "/v1/codebases/$CB/files/none"
	assert_output "404 {\"code\":\"not_found\",\"message\":\"'none' does not exist in the codebase\"}"
	run api PUT "/v1/codebases/cb_00000000000000000000000000000000/files/x" --data-binary @"$T/v2"
	assert_output "404 {\"code\":\"not_found\",\"message\":\"no codebase 'cb_00000000000000000000000000000000'\"}"
}

@test "client paths cannot escape: '..', absolute paths, symbolic links" {
	start_serve
	mkdir "$T/outside"
	echo host-secret >"$T/outside/s.txt"
	ln -s "$T/outside" "$P/out-dir"
	ln -s "$T/outside/s.txt" "$P/out-file"
	new_codebase "{\"name\": \"e\", \"source_path\": \"$P\"}"
	printf 'evil' >"$T/evil"
	local p
	# '..' in every spelling the URL allows
	for p in '../x' '..%2fx' '%2e%2e/x' 'a/../../x' 'a/%2E%2E/%2e%2e/x'; do
		run api PUT "/v1/codebases/$CB/files/$p" --path-as-is --data-binary @"$T/evil"
		assert_eq 400 "${output%% *}"
		assert_contains "$output" "has a '..' component"
		run api GET "/v1/codebases/$CB/files/$p" --path-as-is
		assert_eq 400 "${output%% *}"
	done
	run api GET "/v1/codebases/$CB/files?path=..%2F.."
	assert_eq 400 "${output%% *}"
	# absolute paths in a query
	run api GET "/v1/codebases/$CB/files?path=$T/outside"
	assert_output "400 {\"code\":\"invalid_argument\",\"message\":\"path '$T/outside' is absolute: paths are relative to the codebase\"}"
	# a double slash makes the URL path absolute after 'files/'
	run api GET "/v1/codebases/$CB/files/%2Fetc%2Fpasswd"
	assert_eq 400 "${output%% *}"
	assert_contains "$output" "is absolute"
	# through symbolic links, in each position, for each operation
	for p in out-dir/s.txt out-file out-dir/new.txt; do
		run api GET "/v1/codebases/$CB/files/$p"
		assert_eq 400 "${output%% *}"
		assert_contains "$output" "goes through a symbolic link"
		run api PUT "/v1/codebases/$CB/files/$p" --data-binary @"$T/evil"
		[ "${output%% *}" = 400 ] || [ "$p" = out-file ]
	done
	# uploading to the name of a link replaces the link, never its target
	assert_eq "200 out-file file" "$(api PUT "/v1/codebases/$CB/files/out-file" --data-binary @"$T/evil" | python3 -c 'import json,sys; s,b=sys.stdin.read().split(" ",1); j=json.loads(b); print(s, j["path"], j["type"])')"
	# listing the link gives the link itself, not what it points to
	run api GET "/v1/codebases/$CB/files?path=out-dir&recursive=true"
	assert_eq "200 out-dir symlink" "$(printf '%s' "${output%% *} "; jget "${output#* }" '" ".join("%s %s" % (f["path"], f["type"]) for f in j["files"])')"
	run api GET "/v1/codebases/$CB/files?path=out-dir/s.txt"
	assert_eq 400 "${output%% *}"
	assert_eq host-secret "$(cat "$T/outside/s.txt")"
	assert_eq s.txt "$(ls "$T/outside")"
	# a NUL can be neither sent nor smuggled in an escape
	run api GET "/v1/codebases/$CB/files/a%00b"
	assert_output '400 {"code":"invalid_argument","message":"malformed path in the URL"}'
}

@test "tar upload unpacks into the codebase and refuses escapes" {
	start_serve
	new_codebase '{"name": "t"}'
	mkdir -p "$T/tree/d"
	echo one >"$T/tree/d/one.txt"
	ln -s d/one.txt "$T/tree/l"
	tar -C "$T/tree" -cf "$T/ok.tar" .
	run api POST "/v1/codebases/$CB/archive?path=sub" --data-binary @"$T/ok.tar"
	assert_output '200 {"entries":3}'
	run files "$CB"
	assert_output 'sub dir 0
sub/d dir 0
sub/d/one.txt file 4
sub/l symlink 0'
	# an entry with '..', and a link followed by a file through it
	mkdir "$T/outside"
	python3 - "$T/evil1.tar" "$T/evil2.tar" "$T/outside" <<'EOF'
import io, sys, tarfile
def add(t, name, data=b"x", link=None):
    i = tarfile.TarInfo(name)
    if link:
        i.type, i.linkname = tarfile.SYMTYPE, link
        t.addfile(i)
    else:
        i.size = len(data)
        t.addfile(i, io.BytesIO(data))
with tarfile.open(sys.argv[1], "w") as t:
    add(t, "../../escape.txt")
with tarfile.open(sys.argv[2], "w") as t:
    add(t, "out", link=sys.argv[3])
    add(t, "out/escape.txt")
EOF
	run api POST "/v1/codebases/$CB/archive" --data-binary @"$T/evil1.tar"
	assert_eq 400 "${output%% *}"
	run api POST "/v1/codebases/$CB/archive" --data-binary @"$T/evil2.tar"
	assert_eq 400 "${output%% *}"
	assert_eq "" "$(ls -A "$T/outside")"
	[ ! -e "$XDG_DATA_HOME/agentfense/escape.txt" ] && [ ! -e "$XDG_DATA_HOME/escape.txt" ]
	# garbage is refused, and the codebase must exist
	head -c 1024 /dev/urandom >"$T/junk"
	run api POST "/v1/codebases/$CB/archive" --data-binary @"$T/junk"
	assert_eq 400 "${output%% *}"
	run api POST "/v1/codebases/cb_00000000000000000000000000000000/archive" --data-binary @"$T/ok.tar"
	assert_eq 404 "${output%% *}"
}

@test "request bodies written for the AgentFense API are accepted as they are" {
	start_serve
	run api POST /v1/codebases -H 'Content-Type: application/json' -d '{"name": "my-project", "owner_id": "user_123"}'
	assert_eq 200 "${output%% *}"
	assert_eq "my-project user_123 0 0" "$(jget "${output#* }" '" ".join(str(j[k]) for k in ("name", "owner_id", "size", "file_count"))')"
	run api GET '/v1/codebases?owner_id=user_123&page_size=10'
	assert_eq 1 "$(jget "${output#* }" 'len(j["codebases"])')"
	run api GET "/v1/codebases/$(jget "${output#* }" 'j["codebases"][0]["id"]')/files?path=/&recursive=false"
	assert_output '200 {"files":[]}'
}

# --- the CLI -------------------------------------------------------------------

# cli ARG...: agentfense codebase ARG... on this test's socket.
cli() {
	af codebase "$@"
}

# stop_autostarted: stop the serve the CLI started on $SOCK.
stop_autostarted() {
	[ -S "$SOCK" ] || return 0
	local pid
	pid=$(python3 "$HTTPRAW" pid "$SOCK") || return 0
	kill -TERM "$pid"
	wait_gone "$pid"
}

@test "cli: starts serve in the background when nothing answers, with an idle exit" {
	[ ! -e "$SOCK" ]
	run --separate-stderr cli ls
	assert_status 0
	assert_output 'ID                                   NAME                  OWNER           FILES     SIZE  CREATED'
	[ -S "$SOCK" ]
	local pid
	pid=$(python3 "$HTTPRAW" pid "$SOCK")
	assert_eq "agentfense serve --socket $SOCK --idle-exit 300" "$(tr '\0' ' ' </proc/"$pid"/cmdline | sed 's/ $//')"
	# detached: not a child of this shell, its own session
	assert_eq "$pid" "$(ps -o sid= -p "$pid" | tr -d ' ')"
	# the next command uses the same serve
	run cli ls
	assert_eq "$pid" "$(python3 "$HTTPRAW" pid "$SOCK")"
	stop_autostarted
}

@test "cli: create, ls, info, files, put, get, rm with exact outputs" {
	start_serve
	run --separate-stderr cli create --from "$P" --owner alice --label team=x --label env=dev \
		--ignore 'secrets/' demo
	assert_status 0
	[[ "$output" =~ ^cb_[0-9a-f]{32}$ ]]
	assert_eq "" "$stderr"
	local id=$output
	run cli ls --owner alice
	assert_status 0
	assert_eq 2 "${#lines[@]}"
	local n
	n=$(cd "$P" && find . \( -type f -o -type l \) -not -path './secrets/*' -not -path './*/secrets/*' | wc -l)
	[[ "${lines[1]}" =~ ^$id\ \ demo\ +alice\ +$n\ +[0-9.]+[KMG]?\ \ 20[0-9-]+T[0-9:.]+Z$ ]]
	run cli ls --label env=prod
	assert_eq 1 "${#lines[@]}"
	run cli info "$id"
	assert_eq "id          $id
name        demo
owner_id    alice" "$(printf '%s\n' "${lines[@]:0:3}")"
	assert_eq "file_count  $n" "${lines[5]}"
	assert_eq "label       env=dev
label       team=x" "$(printf '%s\n' "${lines[@]:7}" | sort)"
	run cli files "$id" a
	assert_status 0
	assert_eq "- 0644 a/.env.local;d 0755 a/b/;- 0644 a/readme.txt" \
		"$(printf '%s\n' "${lines[@]}" | awk '{ printf "%s%s %s %s", (NR > 1 ? ";" : ""), $1, $2, $5 }')"
	run cli files -r "$id" a/b
	assert_eq "a/b/c/ a/b/c/.env a/b/c/code.py" "$(printf '%s\n' "${lines[@]}" | awk '{ print $5 }' | xargs)"
	printf 'new\0bin' >"$T/n.bin"
	chmod 600 "$T/n.bin"
	run --separate-stderr cli put "$id" "$T/n.bin" x/n.bin
	assert_status 0
	assert_eq "" "$output$stderr"
	run cli files "$id" x/n.bin
	assert_eq "- 0600 7" "$(awk '{ print $1, $2, $3 }' <<<"$output")"
	cli get "$id" x/n.bin "$T/back.bin"
	cmp "$T/n.bin" "$T/back.bin"
	run cli get "$id" README.md
	assert_output 'hello agentfense'
	echo piped | cli put "$id" - p.txt
	run cli get "$id" p.txt -
	assert_output piped
	run --separate-stderr cli rm "$id"
	assert_status 0
	assert_eq "" "$output$stderr"
	run cli ls
	assert_eq 1 "${#lines[@]}"
}

@test "cli: --json gives serve's JSON; create reports skipped files on stderr" {
	start_serve
	truncate -s 3000 "$P/big.bin"
	run --separate-stderr cli create --json --from "$P" --max-file-size 2000 j
	assert_status 0
	assert_eq "j 1" "$(jget "$output" '"%s %d" % (j["name"], len(j["skipped"]))')"
	assert_eq "agentfense: warning: skipped 'big.bin': too_large (3000 bytes)" \
		"$(cli create --from "$P" --max-file-size 2000 j2 2>&1 >/dev/null)"
	run cli ls --json
	assert_eq "j j2" "$(jget "$output" '" ".join(x["name"] for x in j)')"
	local id
	id=$(jget "$output" 'j[0]["id"]')
	run cli files --json "$id" a
	assert_eq "a/.env.local a/b a/readme.txt" "$(jget "$output" '" ".join(x["path"] for x in j)')"
}

@test "cli: stable exit codes and one-line errors" {
	start_serve
	run --separate-stderr cli info cb_00000000000000000000000000000000
	assert_error 1 "no codebase 'cb_00000000000000000000000000000000'"
	run --separate-stderr cli rm cb_nope
	assert_error 1 "no codebase 'cb_nope'"
	local id
	id=$(cli create e)
	run --separate-stderr cli get "$id" ../../etc/passwd
	assert_error 125 "has a '..' component"
	run --separate-stderr cli get "$id" missing "$T/out"
	assert_error 1 "'missing' does not exist in the codebase"
	[ ! -e "$T/out" ]
	assert_eq "" "$(ls "$T" | grep agentfense- || true)"
	run --separate-stderr cli put "$id" "$T/nope"
	assert_error 1 "cannot open '$T/nope'"
	run --separate-stderr cli put "$id" "$P"
	assert_error 125 "is a directory"
	run --separate-stderr cli create --label novalue x
	assert_error 125 "invalid label 'novalue'"
	run --separate-stderr cli frobnicate
	assert_error 125 "unknown subcommand 'codebase frobnicate'"
	run --separate-stderr cli
	assert_error 125 "missing subcommand"
	run --separate-stderr cli info
	assert_error 125 "wrong number of arguments for 'codebase info'"
	run --separate-stderr cli --bogus ls
	assert_error 125 "unknown option '--bogus'"
	# serve unreachable and impossible to start: agentfense's own failure
	run --separate-stderr cli --socket "$T/no/such/dir/s.sock" ls
	assert_error 125 "cannot start agentfense serve on '$T/no/such/dir/s.sock'"
}
