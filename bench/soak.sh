#!/usr/bin/env bash
# Soak test (not in CI): `styleframe run` headless on the synthetic scene for
# N minutes while SIGUSR1 (next style) arrives every few seconds and SIGHUP
# (reload) every 30 s; prints RSS and open fds at start and end, and the
# stylized frame rate from the daemon's own summary line.
#
#   bench/soak.sh [MINUTES=10]          (SOAK_SECONDS=40 for a smoke run)
#   STYLEFRAME=path/to/styleframe MODELS=dir MAX_PIXELS=28672 bench/soak.sh 60
#
# A leak shows as RSS or fd count growing between the samples (printed every
# minute too), not as one number: compare "start" with "end".
set -euo pipefail

minutes=${1:-10}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${STYLEFRAME:-$here/target/release/styleframe}
models=${MODELS:-$here/../shared/models}
max_pixels=${MAX_PIXELS:-28672}   # 128x224: keeps a shared machine usable
usr1_every=${USR1_EVERY:-5}
hup_every=${HUP_EVERY:-30}

[ -x "$bin" ] || { echo "soak: no binary at $bin (cargo build --release, or set STYLEFRAME)" >&2; exit 2; }
[ -f "$models/style_transfer_f16_384.tflite" ] || { echo "soak: no model files in $models (set MODELS)" >&2; exit 2; }

work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cfg=$work/styleframe.toml
cat >"$cfg" <<TOML
[models]
dir = "$models"
[styles]
morph_seconds = 1.0
[camera]
source = "synthetic"
width = 320
height = 180
fps = 10
[inference]
max_pixels = $max_pixels
min_pixels = 4096
degrade_after_ms = 0
threads = 2
[display]
backend = "headless"
width = 448
height = 256
TOML

log=$work/soak.log
secs=${SOAK_SECONDS:-$((minutes * 60))}
RUST_LOG=info nice -n 10 "$bin" run --config "$cfg" --seconds "$secs" 2>"$log" &
pid=$!

sample() { # label
    local rss fds thr
    rss=$(awk '/^VmRSS/ {print $2 " " $3}' "/proc/$pid/status" 2>/dev/null || echo "?")
    fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l)
    thr=$(awk '/^Threads/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo "?")
    printf '%-8s t=%5ds  VmRSS %-10s fds %-4s threads %s\n' "$1" "$(( $(date +%s) - t0 ))" "$rss" "$fds" "$thr"
}

t0=$(date +%s)
# Let the first frame arrive (model load, first inference) before the first sample.
for _ in $(seq 1 120); do
    grep -q "first stylized frame" "$log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
done
sample start
start_rss=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
start_fds=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l || echo 0)

last_usr1=$(date +%s); last_hup=$last_usr1; last_sample=$last_usr1
usr1=0; hup=0
end_rss=$start_rss; end_fds=$start_fds
while kill -0 "$pid" 2>/dev/null; do
    now=$(date +%s)
    # Stop signalling a few seconds before the end so the last sample is of a quiet daemon.
    if (( now - t0 < secs - 5 )); then
        if (( now - last_usr1 >= usr1_every )); then kill -USR1 "$pid" 2>/dev/null && usr1=$((usr1 + 1)); last_usr1=$now; fi
        if (( now - last_hup >= hup_every )); then kill -HUP "$pid" 2>/dev/null && hup=$((hup + 1)); last_hup=$now; fi
    fi
    if (( now - last_sample >= 60 )); then sample "minute"; last_sample=$now; fi
    if [ -r "/proc/$pid/status" ]; then
        r=$(awk '/^VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        f=$(ls "/proc/$pid/fd" 2>/dev/null | wc -l || true)
        [ -n "$r" ] && end_rss=$r
        [ "${f:-0}" -gt 0 ] && end_fds=$f
    fi
    sleep 1
done
wait "$pid" && rc=0 || rc=$?

echo "end      (last sample before exit)  VmRSS $end_rss kB  fds $end_fds"
echo "signals sent: SIGUSR1 x$usr1, SIGHUP x$hup; exit code $rc"
echo "RSS growth: $((end_rss - start_rss)) kB; fd growth: $((end_fds - start_fds))"
echo "reloads ok: $(grep -c 'configuration reloaded' "$log" || true); failed: $(grep -c 'keeping the running configuration' "$log" || true)"
echo "warnings: $(grep -c ' WARN ' "$log" || true); errors: $(grep -c ' ERROR ' "$log" || true); panics: $(grep -c 'panicked' "$log" || true)"
summary=$(grep 'stopped after' "$log" | tail -1 || true)
echo "daemon: ${summary#*] }"
# "stopped after 600.1 s: 6000 frames captured, 1234 stylized, 1234 shown"
awk '/stopped after/ { for (i = 1; i <= NF; i++) { if ($i == "after") s = $(i + 1); if ($i == "stylized,") n = $(i - 1) } }
     END { if (s > 0) printf "stylized fps: %.2f\n", n / s }' "$log"
grep -E ' (WARN|ERROR) ' "$log" | sed 's/^/  | /' | sort | uniq -c | sort -rn | head -10 || true
exit "$rc"
