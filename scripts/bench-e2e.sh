#!/usr/bin/env bash
# End-to-end benchmark: repository -> image, dbuild against what users do today, on the same
# engine, same repository, same Dockerfile, same cache state, alternating runs. Prints medians
# and ratios; never a test (timings are not asserted anywhere).
#
#   bash scripts/bench-e2e.sh                 both repositories, steps cached, 5 runs each
#   RUNS=7 MODE=nocache bash scripts/bench-e2e.sh
#   REPOS=demo bash scripts/bench-e2e.sh
#
# Per repository (served by the test bed's git daemon, git://127.0.0.1:9418):
#   dbuild      dbuild build -q --network none -t T URL#main
#   clone+build git clone --depth 1 -b main URL d && DOCKER_BUILDKIT=0 docker build -q --network none -t T d
#   docker-git  DOCKER_BUILDKIT=0 docker build -q --network none -t T URL#main  (the CLI clones)
#   floor       the context tar dbuild sends (made once with `dbuild context`), POSTed to
#               /build by curl from memory: the engine's own time for this context
# then fetch alone (dbuild context URL > /dev/null, i.e. fetch + tar, against
# git clone --depth 1 --bare), and dbuild's peak RSS (/usr/bin/time) against the pack size.
#
# MODE=cached (default): one untimed warm-up run per tool, then every step is a cache hit for
# every tool, so the timings are the context path (fetch, tar, upload, cache lookup, commit);
# MODE=nocache: --no-cache everywhere (nocache=1 for the floor), so the RUN step's container
# dominates. The machine is shared: runs alternate so other load falls on all tools alike.
#
# Repositories: demo.git (the test bed's fixture, 6 files) and bench-medium.git, made here
# once: the first ~4,000 files (alphabetical crate directories) of cargo's unpacked registry
# sources plus a Dockerfile (COPY . /src; RUN), committed on main, plus 8 more commits tagged
# c1..c8 (for benches/concurrent.rs).
#
# Environment: DBUILD (binary; default the static release build), DBUILD_TESTBED_STATE.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE=${DBUILD_TESTBED_STATE:-/var/lib/dbuild-testbed}
DBUILD=${DBUILD:-$ROOT/target/x86_64-unknown-linux-musl/release/dbuild}
RUNS=${RUNS:-5}
MODE=${MODE:-cached}
REPOS=${REPOS:-demo bench-medium}
GIT=git://127.0.0.1:9418
SOCK=${DOCKER_SOCK:-/var/run/docker.sock}
API=v1.41
TAG=dbuild-bench-e2e-$$
WORK=$(mktemp -d /tmp/dbuild-bench-e2e.XXXXXX)

cleanup() {
	for t in d a b f m; do docker rmi -f "$TAG-$t" >/dev/null 2>&1 || true; done
	rm -rf "$WORK"
}
trap cleanup EXIT
log() { printf 'bench-e2e: %s\n' "$*" >&2; }

[[ -x $DBUILD ]] || {
	log "no dbuild binary at $DBUILD (build it: bash scripts/build-image.sh, or set DBUILD)"
	exit 1
}
case $MODE in
cached) NC=() NCQ="" ;;
nocache) NC=(--no-cache) NCQ="&nocache=1" ;;
*)
	log "MODE must be cached or nocache"
	exit 1
	;;
esac

# ------------------------------------------------------------ fixtures --
make_medium() {
	local repo=$STATE/git/bench-medium.git src tmp n=0 d i
	[[ -d $repo ]] && return 0
	local srcs=("$HOME"/.cargo/registry/src/*/)
	src=${srcs[0]}
	tmp=$WORK/medium
	mkdir -p "$tmp"
	for d in "$src"*/; do # LC_ALL=C (set above): byte order, as the figures were taken
		cp -r "$d" "$tmp/"
		n=$((n + $(find "$d" -type f | wc -l)))
		((n >= 4000)) && break
	done
	printf 'FROM localbusybox\nCOPY . /src\nRUN find /src -type f | wc -l > /file-count\n' >"$tmp/Dockerfile"
	export GIT_AUTHOR_DATE=2000-01-01T00:00:00Z GIT_COMMITTER_DATE=2000-01-01T00:00:00Z
	local g=(git -C "$tmp" -c user.name=bench -c user.email=bench@localhost)
	"${g[@]}" init -q -b main
	"${g[@]}" add -A -f .
	"${g[@]}" commit -q -m "medium benchmark tree ($n files)"
	for i in 1 2 3 4 5 6 7 8; do
		echo "$i" >"$tmp/revision.txt"
		"${g[@]}" add revision.txt
		"${g[@]}" commit -q -m "revision $i"
		"${g[@]}" tag "c$i"
	done
	"${g[@]}" reset -q --hard c1 # main stays on the first revision; c1..c8 are the commits
	unset GIT_AUTHOR_DATE GIT_COMMITTER_DATE
	git clone -q --bare --no-local "$tmp" "$repo.tmp"
	git -C "$repo.tmp" gc -q --aggressive --prune=now
	mv "$repo.tmp" "$repo"
	rm -rf "$tmp"
	log "made $repo ($n files)"
}

# ------------------------------------------------------------- helpers --
# ms CMD...: runs CMD (output discarded, stderr kept for errors), prints elapsed milliseconds.
# Dirty pages are flushed first (untimed): otherwise the 79 MiB that one run's engine (or
# checkout) wrote are written back during the next run, whichever tool that is.
ms() {
	local s e
	sync
	s=$(date +%s%N)
	if ! "$@" >"$WORK/out" 2>"$WORK/err"; then
		log "FAILED: $*"
		cat "$WORK/err" "$WORK/out" >&2
		exit 1
	fi
	e=$(date +%s%N)
	echo $(((e - s) / 1000000))
}
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a/b}'; }

run_dbuild() { "$DBUILD" build -q "${NC[@]}" --network none -t "$TAG-d" "$URL#main"; }
run_clone_build() {
	rm -rf "$WORK/clone"
	git clone -q --depth 1 -b main "$URL" "$WORK/clone" &&
		DOCKER_BUILDKIT=0 docker build -q "${NC[@]}" --network none -t "$TAG-a" "$WORK/clone"
}
run_docker_git() { DOCKER_BUILDKIT=0 docker build -q "${NC[@]}" --network none -t "$TAG-b" "$URL#main"; }
run_floor() {
	curl -sS -f --unix-socket "$SOCK" --data-binary @"$WORK/ctx.tar" \
		-H 'Content-Type: application/x-tar' \
		"http://localhost/$API/build?t=$TAG-f&q=1&networkmode=none$NCQ" >"$WORK/floor.json" &&
		! grep -q errorDetail "$WORK/floor.json"
}
fetch_dbuild() { "$DBUILD" context "$URL#main" >/dev/null; }
fetch_git() {
	rm -rf "$WORK/bare"
	git clone -q --depth 1 --bare -b main "$URL" "$WORK/bare"
}

# --------------------------------------------------------------- main --
make_medium
echo "machine: $(nproc) cores, $(free -h | awk '/^Mem:/ {print $2}') RAM, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "dbuild: $DBUILD ($(stat -c %s "$DBUILD") bytes); docker $(docker version -f '{{.Server.Version}}'); git $(git --version | cut -d' ' -f3); mode=$MODE runs=$RUNS"
for name in $REPOS; do
	URL=$GIT/$name.git
	"$DBUILD" context "$URL#main" >"$WORK/ctx.tar"
	fetch_git
	pack=$(cat "$WORK"/bare/objects/pack/*.pack | wc -c)
	largest=$(git -C "$WORK/bare" ls-tree -r -l HEAD | awk '$4 != "-" && $4 > m {m = $4} END {print m + 0}')
	files=$(git -C "$WORK/bare" ls-tree -r HEAD | wc -l)
	echo
	echo "== $name.git: $files files, context tar $(($(stat -c %s "$WORK/ctx.tar") / 1024)) KiB, pack $((pack / 1024)) KiB, largest file $((largest / 1024)) KiB"
	tools=(dbuild clone_build docker_git floor)
	for t in "${tools[@]}"; do ms "run_$t" >/dev/null; done # warm-up: same cache state for all
	declare -A T=()
	for ((i = 0; i < RUNS; i++)); do
		for ((j = 0; j < ${#tools[@]}; j++)); do
			t=${tools[$(((i + j) % ${#tools[@]}))]}
			T[$t]="${T[$t]:-} $(ms "run_$t")"
		done
	done
	F=() G=()
	for ((i = 0; i < RUNS; i++)); do
		if ((i % 2)); then
			G+=("$(ms fetch_git)") F+=("$(ms fetch_dbuild)")
		else
			F+=("$(ms fetch_dbuild)") G+=("$(ms fetch_git)")
		fi
	done
	# shellcheck disable=SC2086
	d=$(median ${T[dbuild]}) a=$(median ${T[clone_build]}) b=$(median ${T[docker_git]}) f=$(median ${T[floor]})
	fd=$(median "${F[@]}") fg=$(median "${G[@]}")
	printf '%-34s %8s  %s\n' "end to end (median ms)" "" "runs (ms)"
	printf '%-34s %8d  %s\n' "dbuild build" "$d" "${T[dbuild]}"
	printf '%-34s %8d  %s\n' "git clone --depth 1 + docker build" "$a" "${T[clone_build]}"
	printf '%-34s %8d  %s\n' "docker build git-url" "$b" "${T[docker_git]}"
	printf '%-34s %8d  %s\n' "floor (curl POST of the tar)" "$f" "${T[floor]}"
	printf '%-34s %8d  %s\n' "fetch: dbuild context >/dev/null" "$fd" "${F[*]}"
	printf '%-34s %8d  %s\n' "fetch: git clone --depth 1 --bare" "$fg" "${G[*]}"
	echo "ratios: dbuild/clone+build $(ratio "$d" "$a") (target <= 0.70); dbuild/docker-git $(ratio "$d" "$b"); dbuild/floor $(ratio "$d" "$f") (target <= 1.15); fetch dbuild/git $(ratio "$fd" "$fg") (target <= 1.00)"
	rss=$( { /usr/bin/time -f '%M' "$DBUILD" build -q "${NC[@]}" --network none -t "$TAG-m" "$URL#main" >/dev/null; } 2>&1 | tail -1)
	budget=$((pack / 1024 + largest / 1024 + 65536))
	echo "peak RSS of dbuild build: ${rss} KiB; budget pack + largest file + 64 MiB = ${budget} KiB ($(ratio "$rss" "$budget") of budget)"
	unset T
done
