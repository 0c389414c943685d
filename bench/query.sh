#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/query.sh - query and retrieve on loopback: C-FIND latency and C-MOVE / C-GET
# throughput of vetpacs vs Orthanc vs dcmtk dcmqrscp, the same data loaded into each.
#
#   bench/query.sh [--studies N] [--runs N] [--only vetpacs,orthanc,dcmqrscp]
#                  [--retrieve N] [--big | --instances N | --big-only] [--keep-data]
#
# 1. C-FIND (findscu, Study Root) at 2,000 studies: PatientID, PatientName prefix, a year of
#    StudyDate, species wildcard, universal (+ series of a study, images of a series), net of
#    findscu's own start-up; match counts checked against the generator's.
# 2. --big: vetpacs alone at 1,000,000 instances loaded with `vetpacs import` (long: ~30 min
#    plus ~10 GB of disk; --instances N to scale).
# 3. C-MOVE (movescu -> storescp) and C-GET (getscu) of a 1,000-instance CT study.
# The logic is in bench/query.py; bench/README.md describes the method. Results are printed
# and written to bench/out/query-<timestamp>.txt.
#
# Environment: VETPACS (binary, default build/vetpacs), VP_BENCH_OUT (bench/out),
# VP_BENCH_WAIT_IDLE (seconds to wait for idle CPUs before each stage, 60).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
exec /usr/bin/python3 "$HERE/query.py" "$@"
