#!/usr/bin/env bash
# Runs one cargo-fuzz target for SECONDS and shows whether its coverage plateaued:
#   bash scripts/fuzz-plateau.sh TARGET SECONDS [LOG]
# Every libFuzzer status line is stamped with the seconds since the start (in LOG, default
# fuzz/TARGET-plateau.log, not committed); at the end the script prints runs, `cov` and `ft` at
# each tenth of the run and the run at which `cov` last grew. "Plateaued" here means: `cov` grew
# by less than 1 % over the second half of the executions (executions, not seconds, so that a
# run slowed by other work on a shared machine is judged by the work it did). A crash stops the
# run with its input in fuzz/artifacts/TARGET.
#   bash scripts/fuzz-plateau.sh --report TARGET SECONDS LOG   prints the summary of a past run.
# FUZZ_ARGS adds libFuzzer flags; FUZZ_ARGS=-print_pcs=1 logs where each new edge is (NEW_PC).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
report_only=false
if [[ ${1:-} == --report ]]; then
	report_only=true
	shift
fi
t=${1:?usage: fuzz-plateau.sh TARGET SECONDS [LOG]}
secs=${2:?usage: fuzz-plateau.sh TARGET SECONDS [LOG]}
log=${3:-fuzz/$t-plateau.log}
report() {
	awk -v secs="$secs" -v t="$t" '
	/ cov: / {
		for (i = 1; i <= NF; i++) { if ($i == "cov:") c = $(i+1); if ($i == "ft:") f = $(i+1); if ($i ~ /^#[0-9]+$/) r = substr($i, 2) }
		n++; R[n] = r + 0; C[n] = c + 0
		if (c + 0 > last_cov + 0) { last_cov = c; last_t = $1; last_r = r }
		b = int($1 * 10 / secs); if (b > 10) b = 10
		cov[b] = c; ft[b] = f; runs[b] = r; seen[b] = 1
	}
	END {
		printf "%s: %d s\n", t, secs
		printf "%8s %12s %8s %8s\n", "elapsed", "runs", "cov", "ft"
		for (b = 0; b <= 10; b++) if (seen[b]) printf "%7ds %12s %8s %8s\n", (b == 10 ? secs : (b + 1) * secs / 10), runs[b], cov[b], ft[b]
		total = R[n]; half = 0
		for (k = 1; k <= n; k++) if (R[k] <= total / 2) half = C[k]
		growth = half ? 100 * (C[n] - half) / half : 100
		printf "cov %d at half of the %d runs, %d at the end: +%.2f %% in the second half; last new cov at run %s (%d s): %s\n", half, total, C[n], growth, last_r, last_t, (growth < 1 ? "plateaued" : "still rising")
	}' "$log"
	grep -a -E 'stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb' "$log" | sed 's/^[0-9]* //' || true
}
if $report_only; then
	report
	exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
	cargo install cargo-fuzz --locked
fi
mkdir -p "fuzz/corpus/$t"
(cd fuzz && cargo +nightly fuzz build "$t" >/dev/null 2>&1)
start=$(date +%s)
set +e
cargo +nightly fuzz run "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -rss_limit_mb=4096 \
	-print_final_stats=1 ${FUZZ_ARGS:-} 2>&1 |
	while IFS= read -r line; do printf '%s %s\n' "$(($(date +%s) - start))" "$line"; done >"$log"
rc=${PIPESTATUS[0]}
set -e
if [[ $rc -ge 128 ]]; then
	echo "fuzz target $t was stopped by signal $((rc - 128)); its log is $log"
	exit 1
elif [[ $rc -ne 0 ]]; then
	tail -n 40 "$log"
	echo "fuzz target $t failed (exit $rc): the crashing input is in fuzz/artifacts/$t"
	exit 1
fi
report
