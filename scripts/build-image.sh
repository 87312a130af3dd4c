#!/usr/bin/env bash
# Builds dbuild's own image (Dockerfile at the repository root: FROM scratch + the static
# binary), with dbuild itself.
#
#   bash scripts/build-image.sh [IMAGE]          default IMAGE: dbuild:latest
#   DBUILD_IMAGE_FROM_GIT=1 bash scripts/build-image.sh [IMAGE]
#
# 1. Builds the fully static release binary: x86_64-unknown-linux-musl when that target is
#    installed (`rustup target add x86_64-unknown-linux-musl`), otherwise static glibc
#    (`-C target-feature=+crt-static`), and checks that it really is static.
# 2. Stages a two-file context (Dockerfile + ./dbuild) in a temp dir and runs
#    `dbuild build DIR -t IMAGE` with the freshly built binary.
#    With DBUILD_IMAGE_FROM_GIT=1 the staged context is committed instead into the bare
#    repository $STATE/git/dbuild-image.git (the test bed's git daemon serves it) and dbuild
#    builds git://127.0.0.1:9418/dbuild-image.git: the binary building its own image from git.
#
# Prints the static binary's path on the last line of stdout (scripts and tests read it).
# Environment: DBUILD_TESTBED_STATE (default /var/lib/dbuild-testbed), CARGO_TARGET_DIR.
set -euo pipefail

IMAGE=${1:-dbuild:latest}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${DBUILD_TESTBED_STATE:-/var/lib/dbuild-testbed}
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
log() { printf 'build-image: %s\n' "$*" >&2; }

cd "$ROOT"
if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
	TRIPLE=x86_64-unknown-linux-musl
	log "building the static musl binary (fat LTO: a few minutes)"
	# ring compiles C and assembly: musl-gcc (Debian: musl-tools) when present.
	if command -v musl-gcc >/dev/null; then export CC_x86_64_unknown_linux_musl=musl-gcc; fi
	cargo build --release --features cli --target "$TRIPLE" >&2
else
	TRIPLE=x86_64-unknown-linux-gnu
	log "musl target not installed: building a static glibc binary"
	RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
		cargo build --release --features cli --target "$TRIPLE" >&2
fi
BIN=$TARGET_DIR/$TRIPLE/release/dbuild
desc=$(file -b "$BIN")
case $desc in
*"statically linked"* | *"static-pie linked"*) ;;
*)
	log "ERROR: $BIN is not static: $desc"
	exit 1
	;;
esac
log "$BIN: $(stat -c %s "$BIN") bytes; $desc"

STAGE=$(mktemp -d)
trap 'rm -rf "$STAGE"' EXIT
cp Dockerfile "$STAGE/Dockerfile"
cp "$BIN" "$STAGE/dbuild"

if [[ ${DBUILD_IMAGE_FROM_GIT:-0} == 1 ]]; then
	REPO=$STATE/git/dbuild-image.git
	log "committing the context into $REPO"
	git -C "$STAGE" init -q -b main
	git -C "$STAGE" add Dockerfile dbuild
	GIT_AUTHOR_DATE=2000-01-01T00:00:00Z GIT_COMMITTER_DATE=2000-01-01T00:00:00Z \
		git -C "$STAGE" -c user.name=build-image -c user.email=build-image@localhost \
		commit -q -m "dbuild image context"
	rm -rf "$REPO.tmp"
	git clone -q --bare "$STAGE" "$REPO.tmp"
	rm -rf "$REPO"
	mv "$REPO.tmp" "$REPO"
	SOURCE=git://127.0.0.1:9418/dbuild-image.git
else
	SOURCE=$STAGE
fi
log "dbuild build $SOURCE -t $IMAGE"
"$BIN" build "$SOURCE" -t "$IMAGE" >&2
log "image $IMAGE: $(docker image inspect -f '{{.Size}}' "$IMAGE") bytes"
echo "$BIN"
