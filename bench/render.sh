#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/render.sh - the pixel pipeline against dcmtk and GDCM in one run:
# 1. decode throughput per transfer syntax (RLE, JPEG Lossless, JPEG-LS, JPEG 2000, HTJ2K,
#    Deflated, JPEG Baseline, 12-bit JPEG Extended) of a 2,500 x 3,000 radiograph, vs dcmdrle / dcmdjpeg /
#    dcmdjpls / dcmconv and gdcmconv --raw;
# 2. rendering it to a full-size PNG and a 256 px JPEG thumbnail vs dcmj2pnm (goals: 3x
#    faster for both, the thumbnail under 40 ms).
#
#   bench/render.sh [--runs N]
#
# The logic is in bench/render.py (method in its docstring and bench/README.md). The images
# are generated once into bench/out/render; results go to bench/out/render-<timestamp>.txt.
# Environment: VETPACS (binary, default build/vetpacs), VP_BENCH_OUT (bench/out).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec /usr/bin/python3 "$HERE/render.py" "$@"
