#!/usr/bin/env bash
# Runs every fuzz target for FUZZ_SECONDS seconds (default 20) and exits non-zero if any
# of them crashes, aborts, runs out of memory or times out. Crash inputs are kept in
# fuzz/artifacts/<target>/; the corpus grows in fuzz/corpus/<target>/ (both git-ignored).
#
#   FUZZ_SECONDS=60 fuzz/smoke.sh            # CI
#   FUZZ_SECONDS=3600 fuzz/smoke.sh          # long mode: an hour per target
#   FUZZ_TARGETS="recon_diff" fuzz/smoke.sh  # a subset
#   FUZZ_BUILD_ARGS="--codegen-units 16"     # faster build, slower runs
#
# Needs cargo-fuzz (installed here if missing, about 3 minutes) and works on stable Rust
# through RUSTC_BOOTSTRAP=1 (cargo-fuzz passes nightly-only sanitizer flags).
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-20}"
read -r -a targets <<< "${FUZZ_TARGETS:-frame_decoder protocol_session recon_diff}"
read -r -a build_args <<< "${FUZZ_BUILD_ARGS:-}"
export RUSTC_BOOTSTRAP="${RUSTC_BOOTSTRAP:-1}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "smoke: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

failed=()
summary=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target" "artifacts/$target"
    log="$(mktemp)"
    echo "smoke: $target for ${seconds}s" >&2
    if cargo fuzz run "${build_args[@]}" "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=30 \
        -print_final_stats=1 >"$log" 2>&1; then
        runs="$(grep -m1 -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo '?')"
        summary+=("$target: ok, $runs runs in ${seconds}s")
    else
        tail -n 60 "$log" >&2
        failed+=("$target")
        summary+=("$target: FAILED (inputs in fuzz/artifacts/$target/)")
    fi
    rm -f "$log"
done

printf 'smoke: %s\n' "${summary[@]}"
if ((${#failed[@]})); then
    echo "smoke: crashes in: ${failed[*]}" >&2
    exit 1
fi
