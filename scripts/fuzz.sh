#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 30): `bash scripts/fuzz.sh [SECONDS] [TARGET...]`.
# Needs the nightly toolchain (present on these machines) and cargo-fuzz (installed if missing).
# Corpora live in fuzz/corpus/TARGET (not committed); a crash stops the run with its input in
# fuzz/artifacts/TARGET, which belongs in a regression test.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs=${1:-30}
shift || true
if ! cargo fuzz --version >/dev/null 2>&1; then
	cargo install cargo-fuzz --locked
fi
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
	mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi
for t in "${targets[@]}"; do
	echo "== fuzz $t for ${secs}s"
	mkdir -p "fuzz/corpus/$t"
	log=$(mktemp)
	if ! cargo +nightly fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=4096 >"$log" 2>&1; then
		tail -n 40 "$log"
		rm -f "$log"
		echo "fuzz target $t failed: the crashing input is in fuzz/artifacts/$t"
		exit 1
	fi
	# libFuzzer's last line: runs done, and the coverage reached.
	grep -a -E '^Done [0-9]+ runs' "$log" || true
	grep -a -E '^#[0-9]+' "$log" | tail -n 1 || true
	rm -f "$log"
done
