#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ briefly on its committed corpus: FUZZ_SECONDS each
# (default 15). Needs `cargo +nightly` and cargo-fuzz (`cargo install cargo-fuzz --locked`);
# without them it says so in one line and exits 0. Exits non-zero if any target crashes,
# fails a property or times out; the failing input is left in fuzz/artifacts/<target>/.
#
# New inputs go to a temporary directory, so the committed corpora stay as they are. Build
# artefacts go to FUZZ_TARGET_DIR (default fuzz/target, ignored by git).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-15}"
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo 'fuzz-smoke: skipped, cargo +nightly is not available (rustup toolchain install nightly)'
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: skipped, cargo-fuzz is not installed (cargo install cargo-fuzz --locked)"
    exit 0
fi

target_dir="${FUZZ_TARGET_DIR:-$PWD/fuzz/target}"
# ASan adds little to a crate that forbids `unsafe` and halves the speed.
flags=(--sanitizer none --target-dir "$target_dir")
cd fuzz
cargo +nightly fuzz build "${flags[@]}"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
failed=()
for target in $(cargo +nightly fuzz list); do
    mkdir -p "$scratch/$target" "corpus/$target"
    echo "fuzz-smoke: $target for ${seconds}s"
    if ! cargo +nightly fuzz run "${flags[@]}" "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$scratch/$target.log" 2>&1; then
        failed+=("$target")
        tail -n 40 "$scratch/$target.log"
    else
        grep -E "stat::number_of_executed_units|cov:.*ft:" "$scratch/$target.log" | tail -n 2
    fi
done

if ((${#failed[@]})); then
    echo "fuzz-smoke: FAILED: ${failed[*]} (inputs in fuzz/artifacts/)"
    exit 1
fi
echo "fuzz-smoke: all targets ran ${seconds}s without a failure"
