#!/usr/bin/env bash
# Runs the fuzz targets, each for SECONDS (default 60: the bounded mode CI can
# call), keeping the corpus in fuzz/corpus/<target> and crashes in
# fuzz/artifacts/<target>. Exit status non-zero when a target found a crash.
#
#   fuzz/run.sh [SECONDS=60] [TARGET...]
#
# Needs `cargo install cargo-fuzz`. Sanitizer off (`-s none`): the crate is
# safe Rust, so what matters is panics, aborts and memory blow-ups, and
# uninstrumented builds run several times faster.
set -euo pipefail
cd "$(dirname "$0")"
secs=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config styles image tflite)
export RUSTC_BOOTSTRAP=1

# Seeds: the shipped configs, style sets, small pictures, the model files.
seed() { # target files...
    local t=$1; shift
    mkdir -p "corpus/$t"
    for f in "$@"; do [ -f "$f" ] && cp -n "$f" "corpus/$t/" 2>/dev/null || true; done
}
seed config ../config/*.toml ../examples/*.toml
seed styles ../models/styles.json
seed image ../tests/data/*.png ../tests/data/*.jpg
models=${MODELS:-../../shared/models}
seed tflite "$models"/style_transfer_quantized_dynamic.tflite

status=0
for t in "${targets[@]}"; do
    echo "== $t ($secs s)"
    # rss_limit: the decoder may use up to 512 MiB for one picture by design.
    cargo fuzz run -s none "$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -max_len=1048576 -print_final_stats=1 \
        2>&1 | grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::average_exec_per_sec|==[0-9]+==|SUMMARY|thread .* panicked|Done)' \
        || status=1
    if ls "artifacts/$t"/crash-* "artifacts/$t"/oom-* "artifacts/$t"/timeout-* >/dev/null 2>&1; then
        echo "   findings in fuzz/artifacts/$t/"
        status=1
    fi
done
exit $status
