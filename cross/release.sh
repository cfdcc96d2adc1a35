#!/usr/bin/env bash
# Everything for the Pi from a clean clone, in one command:
#   cross/release.sh [MODEL_MIRROR_DIR]
# builds dist/styleframe-aarch64 and dist/styleframe-armv7 (cross/build.sh all), then one
# .deb per architecture (cross/deb.sh), each inspected and test-installed (cross/check-deb.sh).
# MODEL_MIRROR_DIR: a folder with the official .tflite files (default: ../shared/models).
set -euo pipefail
cd "$(dirname "$0")/.."
mirror=${1:-${MODEL_MIRROR:-../shared/models}}
bash cross/build.sh all
for arch in aarch64 armv7; do
    bash cross/deb.sh "$arch" "$mirror"
done
for deb in dist/styleframe_*_arm64.deb dist/styleframe_*_armhf.deb; do
    bash cross/check-deb.sh "$deb"
done
ls -la dist/
