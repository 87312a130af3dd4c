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
	cargo +nightly fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=4096 2>&1 | grep -E '^(#[0-9]+ +DONE|Done|==|INFO: -max_total_time)|SUMMARY|panicked|ERROR' || true
	# grep hides libFuzzer's chatter; the fuzzer's own exit status is what counts.
	[[ ${PIPESTATUS[0]} -eq 0 ]] || { echo "fuzz target $t failed"; exit 1; }
done
