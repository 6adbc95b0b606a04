#!/usr/bin/env bats
# layers.bats - src/ is split into folders by layer, and no #include
# points from a lower layer to a higher one (see the Makefile).

load helper

# allowed LAYER: the layers whose headers LAYER's files may include
allowed() {
	case $1 in
	common) echo "common" ;;
	policy) echo "common policy" ;;
	delta) echo "common policy delta" ;;
	view) echo "common policy delta view" ;;
	sandbox) echo "common sandbox" ;;
	image) echo "common image" ;;
	lifecycle) echo "common policy delta view sandbox image lifecycle" ;;
	store) echo "common policy image store" ;;
	serve) echo "common policy delta view sandbox image lifecycle store serve" ;;
	cli) echo "common policy delta view sandbox image lifecycle store serve cli" ;;
	*) echo "" ;;
	esac
}

@test "every source file lives in a known layer's folder" {
	local top f layer bad=""
	top=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	for f in "$top"/src/*; do
		[ -d "$f" ] || { bad+="not in a folder: ${f#"$top"/}"$'\n'; continue; }
		layer=${f##*/}
		[ -n "$(allowed "$layer")" ] || bad+="unknown layer: $layer"$'\n'
	done
	[ -z "$bad" ] || { printf '%s' "$bad" >&2; return 1; }
}

@test "no include points to a higher layer or outside the folders" {
	local top f layer inc dep bad=""
	top=$(cd "$BATS_TEST_DIRNAME/../.." && pwd)
	for f in "$top"/src/*/*.[ch]; do
		layer=$(basename "$(dirname "$f")")
		while read -r inc; do
			case $inc in
			*/*) dep=${inc%%/*} ;;
			*) bad+="${f#"$top"/}: \"$inc\" names no folder"$'\n'; continue ;;
			esac
			case " $(allowed "$layer") " in
			*" $dep "*) ;;
			*) bad+="${f#"$top"/}: $layer includes \"$inc\""$'\n' ;;
			esac
		done < <(sed -n 's/^#include "\([^"]*\)".*/\1/p' "$f")
	done
	[ -z "$bad" ] || { printf '%s' "$bad" >&2; return 1; }
}
