#!/bin/bash
# armv7 instruction counts of one inference (1 thread) of an armv7 styleframe binary, under
# qemu-arm 7.2 with the arm-cost kit's counting plugin (shared/lab/arm-cost; run its
# `run.sh --prepare-only` first). The plugin's instruction classes decode A64 encodings and
# mean nothing here: only the totals, the mnemonics and the per-symbol counts are read.
#
#   bench/armv7_cost.sh BIN OUTDIR [predict|quantized|f16]...   (default: all three)
#
# Env: QCPU (qemu -cpu, default cortex-a7: Pi 2; qemu-arm has no 32-bit A53/A72 model, the
# ISA is the same ARMv7-A + NEON + VFPv4), SIZE (transfer size, default 256x448),
# SF_ENV (extra guest env, e.g. "TRACT_CPU_ARM32_NEON=false").
# Per inference = (count with 5 inferences - count with 3) / 2, as the kit does.
set -euo pipefail
bin=$1 out=$2; shift 2
nets=("${@:-predict quantized f16}")
K=${ARMKIT:-/tmp/armkit}
M=${MODELS:-/work/shared/models}
KIT=${KIT:-/work/shared/lab/arm-cost}
QCPU=${QCPU:-cortex-a7} SIZE=${SIZE:-256x448}
export LD_LIBRARY_PATH=$K/qemu72/usr/lib/x86_64-linux-gnu
QEMU=$K/qemu72/usr/bin/qemu-arm PLUGIN=$K/plugin/libarmcost.so
# tract reads /proc/cpuinfo for NEON ("Features ... neon") and the core; qemu 7.2 would show
# the x86 host's, so -L serves this view's (a Cortex-A72 in 32-bit mode, as on a Pi 4).
VIEW=$K/view-armv7
if [ ! -f "$VIEW/proc/cpuinfo" ]; then
    mkdir -p "$VIEW/proc"
    for e in /usr/arm-linux-gnueabihf/*; do ln -sfn "$e" "$VIEW/$(basename "$e")"; done
    for i in 0 1; do
        printf 'processor\t: %d\nmodel name\t: ARMv7 Processor rev 3 (v7l)\nBogoMIPS\t: 108.00\nFeatures\t: half thumb fastmult vfp edsp neon vfpv3 tls vfpv4 idiva idivt vfpd32 lpae evtstrm crc32\nCPU implementer\t: 0x41\nCPU architecture: 7\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$i"
    done >"$VIEW/proc/cpuinfo"
fi
mkdir -p "$out"
envs=()
for e in ${SF_ENV:-}; do envs+=(-E "$e"); done
for net in ${nets[*]}; do
    for n in 1 3; do
        case $net in
            predict) args="bench --models $M --skip-transfer --thread-counts 1 --predict-runs $n" ;;
            quantized) args="bench --models $M --skip-predict --transfer style_transfer_quantized_384 --sizes $SIZE --thread-counts 1 --runs $n" ;;
            f16) args="bench --models $M --skip-predict --transfer style_transfer_f16_384 --sizes $SIZE --thread-counts 1 --runs $n" ;;
        esac
        "$QEMU" -cpu "$QCPU" -L "$VIEW" "${envs[@]}" -plugin "$PLUGIN,out=$out/$net.$n" $bin $args >"$out/$net.$n.log" 2>&1 &
    done
    wait
    NM=arm-linux-gnueabihf-nm READELF=arm-linux-gnueabihf-readelf \
        python3 "$KIT/armcost_report.py" "$out/$net.1" 3 "$out/$net.3" 5 --json "$out/$net.json" >"$out/$net.txt"
    python3 -c "import json,sys; print(f'{sys.argv[1]:<10} {json.load(open(sys.argv[2]))[\"per_inference\"]:15,.0f}')" "$net" "$out/$net.json"
done | tee "$out/summary.txt"
