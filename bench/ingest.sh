#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/ingest.sh - C-STORE ingest throughput on loopback: vetpacs vs Orthanc vs dcmtk storescp,
# the same storescu sender for all three, next to the disk's durable write speed.
#
#   bench/ingest.sh [--only vetpacs,orthanc,storescp] [--quick] [--runs N]
#
# (a) 2,000 x ~95 KB MR images over one association, (b) the same over 4 parallel
# associations, (c) 200 x ~13 MB DX radiographs over one association (--quick: 200 and 20).
# The logic is in bench/ingest.py; bench/README.md describes the method.
#
# Environment: VETPACS (binary, default build/vetpacs), VP_BENCH_OUT (bench/out),
# VP_BENCH_WAIT_IDLE (seconds to wait for idle CPUs before each send, 60). The only network
# access is `apt-get install orthanc` when Orthanc is missing and wanted.
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec /usr/bin/python3 "$HERE/ingest.py" "$@"
