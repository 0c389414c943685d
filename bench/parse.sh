#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# bench/parse.sh - how fast vetpacs reads DICOM files into data sets and writes them back,
# next to dcmtk's dcmconv and pydicom, and how fast it reads a header without the pixels.
#
#   bench/parse.sh            (or `make bench`, which builds vetpacs first)
#
# 1. Round trip of a 2,000-file corpus (bench/make_corpus.py, cached in bench/out/corpus):
#      per process  one process per file, same shell loop for every tool:
#                   `vetpacs convert --ts keep IN OUT` vs `dcmconv IN OUT`
#      batch        one process for the whole corpus:
#                   `vetpacs convert --ts keep IN... DIR` (via xargs) vs pydicom dcmread+save_as
# 2. Header-only read of the same header in front of 100 KB, 13 MB and 130 MB of pixel data:
#    `vetpacs dump --header-only` vs `dcmdump -M`, `dcmdump +sb 7fe0,0010`, pydicom
#    dcmread(stop_before_pixels=True), with `vetpacs dump` (full read) for contrast.
#
# Environment: VETPACS (binary, default build/vetpacs), VP_BENCH_COUNT (2000),
# VP_BENCH_RUNS (3), VP_BENCH_HEADER_RUNS (30), VP_BENCH_OUT (bench/out),
# VP_BENCH_TMP (scratch for outputs, default a folder in /dev/shm), VP_BENCH_NO_HYPERFINE=1.
# Only local files are used; the only network access is `apt-get install hyperfine` when it
# is missing (skipped, with manual timing, if that fails).
set -euo pipefail
export LC_ALL=C

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$HERE")
PY=/usr/bin/python3
COUNT=${VP_BENCH_COUNT:-2000}
RUNS=${VP_BENCH_RUNS:-3}
HRUNS=${VP_BENCH_HEADER_RUNS:-30}
SEED=1
OUT=${VP_BENCH_OUT:-$HERE/out}
CORPUS=$OUT/corpus
SAMPLE=20

say() { printf '%s\n' "$*"; }
die() { printf 'parse.sh: %s\n' "$*" >&2; exit 1; }
T0=$EPOCHREALTIME

# ---- tools ---------------------------------------------------------------------------------
VP_SRC=${VETPACS:-$ROOT/build/vetpacs}
if [[ ! -x $VP_SRC ]]; then
    [[ -z ${VETPACS:-} ]] || die "VETPACS=$VETPACS is not executable"
    say "building vetpacs (make build)"
    make -C "$ROOT" --no-print-directory build >/dev/null
fi
for t in dcmconv dcmdump; do
    command -v "$t" >/dev/null || die "$t not found (Debian package dcmtk; scripts/deps.sh test)"
done
"$PY" -c 'import pydicom, numpy' 2>/dev/null ||
    die "$PY cannot import pydicom and numpy (Debian: python3-pydicom python3-numpy)"

HYPERFINE=""
if [[ ${VP_BENCH_NO_HYPERFINE:-0} != 1 ]]; then
    if ! command -v hyperfine >/dev/null; then
        SUDO=""
        [[ $(id -u) -eq 0 ]] || SUDO="sudo"
        say "installing hyperfine (apt-get)"
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq hyperfine >/dev/null 2>&1 ||
            say "could not install hyperfine: timing manually"
    fi
    command -v hyperfine >/dev/null && HYPERFINE=$(command -v hyperfine)
fi

# ---- scratch folder: outputs go to tmpfs so disk writeback is not measured -----------------
if [[ -n ${VP_BENCH_TMP:-} ]]; then
    mkdir -p "$VP_BENCH_TMP"
    W=$(mktemp -d "$VP_BENCH_TMP/vetpacs-bench.XXXXXX")
elif [[ -d /dev/shm && -w /dev/shm ]] &&
    (($(df -Pk /dev/shm | awk 'NR==2 {print $4}') > 3 * 1024 * 1024)); then
    W=$(mktemp -d /dev/shm/vetpacs-bench.XXXXXX)
else
    mkdir -p "$OUT"
    W=$(mktemp -d "$OUT/scratch.XXXXXX")
fi
trap 'rm -rf "$W"' EXIT
OUTFS=$(df -PT "$W" | awk 'NR==2 {print $2 " (" $7 ")"}')
RES=$W/results.tsv
: >"$RES"

# A private copy of the binary: others may rebuild build/ while this runs.
VP=$W/vetpacs
cp "$VP_SRC" "$VP"
VP_VERSION=$("$VP" --version 2>&1 | head -1)
GIT_REV=$(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown)

# ---- corpus --------------------------------------------------------------------------------
want=$("$PY" "$HERE/make_corpus.py" "$CORPUS" --count "$COUNT" --seed "$SEED" --print-stamp)
if [[ ! -f $CORPUS/STAMP || $(cat "$CORPUS/STAMP") != "$want" ]]; then
    mkdir -p "$OUT"
    avail=$(df -Pk "$OUT" | awk 'NR==2 {print $4}')
    need=$((COUNT * 450 + 300 * 1024)) # KB: ~0.4 MB per file plus the header-only trio
    ((avail > need)) || die "need ~$((need / 1024)) MB free in $OUT for the corpus"
    say "generating the corpus in $CORPUS (once; about a minute)"
    "$PY" "$HERE/make_corpus.py" "$CORPUS" --count "$COUNT" --seed "$SEED"
fi
IN=$CORPUS/roundtrip
LIST=$W/list
rt_manifest() { # "NAME BYTES explicit|implicit" for the round-trip files
    sed -n 's|^roundtrip/||p' "$CORPUS/MANIFEST"
}
rt_manifest | cut -d' ' -f1 >"$LIST"
[[ $(wc -l <"$LIST") -eq $COUNT ]] || die "corpus manifest does not list $COUNT files"
BYTES=$(rt_manifest | awk '{s += $2} END {print s}')
NIMPL=$(rt_manifest | grep -c ' implicit$' || true)
BIGGEST=$(rt_manifest | sort -k2,2n | tail -1 | cut -d' ' -f2)

{
    printf 'info\tfiles\t%s\n' "$COUNT"
    printf 'info\tbytes\t%s\n' "$BYTES"
    printf 'info\truns\t%s\n' "$RUNS"
    printf 'info\toutfs\t%s\n' "$OUTFS"
} >>"$RES"

# ---- timing --------------------------------------------------------------------------------
# measure RUNS WARMUP PREP_SCRIPT|"" SCRIPT [ARG...] -> prints "WALL CPU": the median wall time
# and the CPU time (user + system of the command and its children; hyperfine gives the mean),
# in seconds. The same command runs under hyperfine (-N: no intermediate shell) or, without it,
# under bash's $EPOCHREALTIME; its output is discarded either way; a failing command aborts.
measure() {
    local runs=$1 warm=$2 prep=$3
    shift 3
    local cmd
    cmd=$(printf '%q ' "$@")
    if [[ -n $HYPERFINE ]]; then
        local args=(-N --style none --runs "$runs" --warmup "$warm" --export-json "$W/hf.json")
        [[ -z $prep ]] || args+=(--prepare "bash $(printf '%q' "$prep")")
        if ! "$HYPERFINE" "${args[@]}" -- "$cmd" >"$W/hf.log" 2>&1; then
            # hyperfine hides the command's messages: run it once more to show them
            [[ -z $prep ]] || bash "$prep"
            "$@" >/dev/null 2>"$W/err" || true
            tail -5 "$W/err" >&2
            die "failed: $cmd"
        fi
        "$PY" "$HERE/benchlib.py" hyperfine-median "$W/hf.json"
    else
        local i t0 t1 walls=() cpus=()
        for ((i = 0; i < warm + runs; i++)); do
            [[ -z $prep ]] || bash "$prep"
            t0=$EPOCHREALTIME
            if [[ -x /usr/bin/time ]]; then
                /usr/bin/time -f '%U %S' -o "$W/time" "$@" >/dev/null 2>"$W/err" ||
                    { cat "$W/err" >&2; die "failed: $cmd"; }
            else
                "$@" >/dev/null 2>"$W/err" || { cat "$W/err" >&2; die "failed: $cmd"; }
                echo "nan 0" >"$W/time"
            fi
            t1=$EPOCHREALTIME
            ((i < warm)) && continue
            walls+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.6f", b - a}')")
            cpus+=("$(awk 'END {printf "%.6f", $1 + $2}' "$W/time")")
        done
        local wall cpu
        wall=$("$PY" "$HERE/benchlib.py" median "${walls[@]}")
        cpu=$("$PY" "$HERE/benchlib.py" median "${cpus[@]}")
        echo "$wall $cpu"
    fi
}

# Percentage of all CPUs busy (not idle) during half a second: other work on the machine.
cpu_busy() {
    local a b
    read -r -a a </proc/stat
    sleep 0.5
    read -r -a b </proc/stat
    awk -v a="${a[*]}" -v b="${b[*]}" 'BEGIN {
        n = split(a, x, " "); split(b, y, " "); t = 0
        for (i = 2; i <= 9 && i <= n; i++) t += y[i] - x[i]
        idle = (y[5] - x[5]) + (y[6] - x[6])
        printf "%d", (t > 0 ? 100 * (t - idle) / t : 0) }'
}
note_busy() { # prints the busy percentage and keeps it (it runs in $(...) subshells)
    local b
    b=$(cpu_busy)
    echo "$b" >>"$W/busy"
    printf '%s' "$b"
}

OD=$W/out # every round trip writes here; the prepare step empties it
PREP=$W/prep.sh
printf 'rm -rf %q && mkdir %q\n' "$OD" "$OD" >"$PREP"

# One process per file, the same loop for every tool.
per_process_script() { # NAME COMMAND...
    local f=$W/loop_$1.sh
    shift
    {
        printf 'set -euo pipefail\ncd %q\n' "$IN"
        # shellcheck disable=SC2016 # $f expands in the generated script
        printf 'while IFS= read -r f; do\n    %s "$f" %q/"$f"\ndone <%q\n' \
            "$(printf '%q ' "$@")" "$OD" "$LIST"
    } >"$f"
    printf '%s' "$f"
}

# All files in one vetpacs process: xargs keeps below ARG_MAX (1 MiB of names per process).
XARGS_OPTS=(-d '\n' -s 1048576 -a "$LIST")
{
    printf 'set -euo pipefail\ncd %q\n' "$IN"
    printf 'xargs %s bash -c %q %q\n' "$(printf '%q ' "${XARGS_OPTS[@]}")" \
        "exec \"\$0\" convert --ts keep \"\$@\" $(printf '%q' "$OD")" "$VP"
} >"$W/batch_vetpacs.sh"
NPROC_BATCH=$(cd "$IN" && xargs "${XARGS_OPTS[@]}" bash -c 'echo "$#"' "$VP" | wc -l)
printf 'set -euo pipefail\nexec %q %q roundtrip %q %q %q\n' "$PY" "$HERE/benchlib.py" \
    "$LIST" "$IN" "$OD" >"$W/batch_pydicom.sh"

# ---- verification: we must not time failures ----------------------------------------------
# Normalised dcmdump text: meta header, element lengths and defined/undefined-length
# wording are allowed to differ; every value (pixel data start included) must not.
norm() {
    dcmdump -q "$1" | sed -e '/^(0002,/d' -e '/^ *(fffe,e0[0d]d)/d' \
        -e 's/(Sequence with [a-z]* length #=\([0-9]*\))/(Sequence, \1 items)/' \
        -e 's/(Item with [a-z]* length #=\([0-9]*\))/(Item, \1 elements)/' \
        -e 's/ *# *[^,#]*, [0-9]* [A-Za-z &]*$//'
}
# SAMPLE files spread over the corpus, the largest and an implicit VR one included.
sample_list() {
    awk -v n="$COUNT" -v k="$SAMPLE" '
        BEGIN {for (i = 0; i < k - 2; i++) want[int(i * n / (k - 2))] = 1}
        (NR - 1) in want' "$LIST"
    rt_manifest | sort -k2,2n | tail -1 | cut -d' ' -f1
    { rt_manifest | grep ' implicit$' || true; } | head -1 | cut -d' ' -f1
}
verify() { # LABEL
    local n bad=0 f
    n=$(find "$OD" -maxdepth 1 -type f -name '*.dcm' | wc -l)
    [[ $n -eq $COUNT ]] || die "$1 wrote $n files, not $COUNT"
    while IFS= read -r f; do
        if ! dcmdump -q "$OD/$f" >/dev/null 2>"$W/dd.err"; then
            cat "$W/dd.err" >&2
            die "$1: dcmdump rejects its output $f"
        fi
        if ! cmp -s <(norm "$IN/$f") <(norm "$OD/$f") ||
            ! cmp -s <(tail -c 65536 "$IN/$f") <(tail -c 65536 "$OD/$f"); then
            bad=$((bad + 1))
            if ((bad == 1)); then
                say "  WARNING: $1 output $f differs from its input:"
                diff <(norm "$IN/$f") <(norm "$OD/$f") | head -8 | sed 's/^/    /' || true
            fi
        fi
    done < <(sample_list | sort -u)
    local k
    k=$(sample_list | sort -u | wc -l)
    say "  verified $1: $n/$COUNT files written; $k sampled outputs parse with dcmdump," \
        "$((k - bad))/$k hold the same data set as their input"
}

# ---- run: round trip -----------------------------------------------------------------------
say "vetpacs parse benchmark: $VP_VERSION (git $GIT_REV), $(nproc) CPUs, $(uname -sr)"
if [[ -n $HYPERFINE ]]; then
    say "timer: hyperfine $("$HYPERFINE" --version | awk '{print $2}') -N (no intermediate shell)"
else
    say "timer: bash \$EPOCHREALTIME (hyperfine not available)"
fi
say "corpus: $COUNT files, $((BYTES / 1000000)) MB, $NIMPL Implicit VR LE (rest Explicit VR LE)," \
    "largest $((BIGGEST / 1000000)) MB: $IN"
say "outputs: $OD on $OUTFS"
say ""
say "Method:"
say "  - page cache warmed (corpus read once) before timing; outputs written to $OUTFS and"
say "    deleted before every run (untimed); each figure is the median of $RUNS runs."
say "  - per process: one process per file for every tool, in the same bash while-read loop"
say "    (vetpacs convert --ts keep IN OUT / dcmconv IN OUT, both keep the transfer syntax);"
say "    the loop's floor (/bin/true per file) is shown so the fork+exec share is visible."
say "  - batch: one process for all $COUNT files: vetpacs convert --ts keep FILES... DIR via xargs"
say "    ($NPROC_BATCH vetpacs process(es)) vs pydicom dcmread + save_as in one python3,"
say "    interpreter start-up and imports included. dcmconv has no batch mode (one file per"
say "    process only)."
say "  - every tool's outputs are counted and up to $SAMPLE sampled ones are checked with dcmdump"
say "    and compared with their inputs (values, not encodings), so failures are not timed."
say "  - CPU = user + system time of the measured processes: less sensitive than wall time to"
say "    other work on the machine."
say ""

# Other work on the machine (builds, fuzzers) skews everything: wait for a quiet machine.
WAIT=${VP_BENCH_WAIT_IDLE:-120}
busy=$(cpu_busy)
if ((busy > 20)); then
    say "CPUs are ${busy} % busy with other work: waiting up to ${WAIT} s for them to be idle"
    end=$((SECONDS + WAIT))
    while ((busy > 20 && SECONDS < end)); do
        sleep 2
        busy=$(cpu_busy)
    done
    ((busy <= 20)) || say "WARNING: still ${busy} % busy: figures below are noisy"
fi

say "warming the page cache"
find "$CORPUS" -type f -name '*.dcm' -exec cat {} + >/dev/null

rt() { # TOOL MODE SCRIPT
    say "round trip: $1, $2 (CPUs busy before: $(note_busy) %) ..."
    local s
    s=$(measure "$RUNS" 0 "$PREP" bash "$3")
    printf 'roundtrip\t%s\t%s\t-\t%s\t%s\n' "$1" "$2" "${s% *}" "${s#* }" >>"$RES"
    say "  median wall ${s% *} s, CPU ${s#* } s"
}
rt "/bin/true" "per process" "$(per_process_script true /bin/true)"
rt vetpacs "per process" "$(per_process_script vetpacs "$VP" convert --ts keep)"
verify "vetpacs per process"
rt dcmconv "per process" "$(per_process_script dcmconv dcmconv)"
verify "dcmconv per process"
rt vetpacs batch "$W/batch_vetpacs.sh"
verify "vetpacs batch"
rt pydicom batch "$W/batch_pydicom.sh"
verify "pydicom batch"
rm -rf "$OD"

# ---- run: header only ----------------------------------------------------------------------
HO=$CORPUS/headeronly
HFILES=(small_100k dx_13m rf_130m)
HLABELS=()
for h in "${HFILES[@]}"; do
    b=$(stat -c %s "$HO/$h.dcm")
    if ((b >= 10000000)); then
        HLABELS+=("$((b / 1000000))MB")
    else
        HLABELS+=("$((b / 1000))KB")
    fi
done
{
    printf 'info\theader_files\t%s\n' "$(
        IFS=,
        echo "${HFILES[*]}"
    )"
    printf 'info\theader_labels\t%s\n' "$(
        IFS=,
        echo "${HLABELS[*]}"
    )"
    printf 'info\theader_runs\t%s\n' "$HRUNS"
} >>"$RES"
say ""
say "header-only: same DX header before ${HLABELS[*]} files ($HO)"
cat "$HO"/*.dcm >/dev/null

HAS_HO=1
rc=0
"$VP" dump --header-only "$HO/small_100k.dcm" >/dev/null 2>"$W/probe.err" || rc=$?
if ((rc != 0)); then
    HAS_HO=0
    if ((rc == 2)) && grep -q "unknown option" "$W/probe.err"; then
        msg="header-only: vetpacs has no --header-only option yet"
    else
        msg="header-only: vetpacs dump --header-only failed (exit $rc): $(head -1 "$W/probe.err")"
    fi
    say "$msg"
    printf 'info\theader_skip\t%s\n' "$msg" >>"$RES"
fi

hcell() { # TOOL MODE RUNS WARMUP COMMAND... (file appended)
    local tool=$1 mode=$2 runs=$3 warm=$4 h s
    shift 4
    say "  $tool $mode (CPUs busy before: $(note_busy) %) ..."
    for h in "${HFILES[@]}"; do
        s=$(measure "$runs" "$warm" "" "$@" "$HO/$h.dcm")
        printf 'header\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$mode" "$h" "${s% *}" "${s#* }" >>"$RES"
    done
}
# In process: the same file NREP times on one command line (vetpacs dump and dcmdump take
# several files), the time divided by NREP: start-up amortised, only the reads remain.
NREP=200
hcell_inproc() { # TOOL MODE COMMAND...
    local tool=$1 mode=$2 h s i files
    shift 2
    say "  $tool $mode (CPUs busy before: $(note_busy) %) ..."
    for h in "${HFILES[@]}"; do
        files=()
        for ((i = 0; i < NREP; i++)); do files+=("$HO/$h.dcm"); done
        s=$(measure 5 1 "" "$@" "${files[@]}")
        printf 'header\t%s\t%s\t%s\t%s\n' "$tool" "$mode" "$h" "$(awk -v s="$s" -v n="$NREP" \
            'BEGIN {split(s, x, " "); printf "%.9f\t%.9f", x[1] / n, x[2] / n}')" >>"$RES"
    done
}
PYRUNS=$(((HRUNS + 2) / 3))
if ((HAS_HO)); then
    hcell vetpacs "dump --header-only" "$HRUNS" 5 "$VP" dump --header-only
fi
hcell vetpacs "dump (full read)" "$HRUNS" 5 "$VP" dump
hcell dcmdump "-M (load short)" "$HRUNS" 5 dcmdump -M
hcell dcmdump "+sb 7fe0,0010 (stop before)" "$HRUNS" 5 dcmdump +sb 7fe0,0010
hcell pydicom "stop_before_pixels" "$PYRUNS" 2 "$PY" -c \
    'import sys; from pydicom import dcmread; dcmread(sys.argv[1], stop_before_pixels=True)'
if ((HAS_HO)); then
    hcell_inproc vetpacs "dump --header-only, in process" "$VP" dump --header-only
fi
hcell_inproc dcmdump "-M (load short), in process" dcmdump -M
hcell_inproc dcmdump "+sb 7fe0,0010 (stop before), in process" dcmdump +sb 7fe0,0010
say "  pydicom stop_before_pixels, in process ..."
for h in "${HFILES[@]}"; do
    s=$("$PY" "$HERE/benchlib.py" header-inprocess "$NREP" "$HO/$h.dcm")
    printf 'header\tpydicom\tstop_before_pixels, in process\t%s\t%s\tnan\n' "$h" "$s" >>"$RES"
done

# Bytes a header-only read pulls from the file, and its peak memory.
if command -v strace >/dev/null; then
    readbytes() { # FILE COMMAND... -> bytes returned by read/pread64/readv/preadv
        strace -f -qq -e trace=read,pread64,readv,preadv -o "$W/strace.log" "${@:2}" "$1" \
            >/dev/null 2>&1 || true
        awk '/= [0-9]+$/ {s += $NF} END {print s + 0}' "$W/strace.log"
    }
    for h in "${HFILES[@]}"; do
        if ((HAS_HO)); then
            printf 'hbytes\tvetpacs\tdump --header-only\t%s\t%s\n' "$h" \
                "$(readbytes "$HO/$h.dcm" "$VP" dump --header-only)" >>"$RES"
        fi
        printf 'hbytes\tvetpacs\tdump (full read)\t%s\t%s\n' "$h" \
            "$(readbytes "$HO/$h.dcm" "$VP" dump)" >>"$RES"
        printf 'hbytes\tdcmdump\t-M (load short)\t%s\t%s\n' "$h" \
            "$(readbytes "$HO/$h.dcm" dcmdump -M)" >>"$RES"
    done
fi
if [[ -x /usr/bin/time ]]; then
    for h in "${HFILES[@]}"; do
        if ((HAS_HO)); then
            /usr/bin/time -f %M -o "$W/rss" "$VP" dump --header-only "$HO/$h.dcm" >/dev/null
            printf 'hrss\tvetpacs\tdump --header-only\t%s\t%s\n' "$h" "$(tail -1 "$W/rss")" >>"$RES"
        fi
        /usr/bin/time -f %M -o "$W/rss" "$VP" dump "$HO/$h.dcm" >/dev/null
        printf 'hrss\tvetpacs\tdump (full read)\t%s\t%s\n' "$h" "$(tail -1 "$W/rss")" >>"$RES"
    done
fi

# ---- report --------------------------------------------------------------------------------
printf 'info\tmaxbusy\t%s\n' "$(sort -n "$W/busy" 2>/dev/null | tail -1)" >>"$RES"
"$PY" "$HERE/benchlib.py" report "$RES"
say ""
say "total bench time $(awk -v a="$T0" -v b="$EPOCHREALTIME" 'BEGIN {printf "%.0f", b - a}') s"
if [[ -n ${VP_BENCH_KEEP_RESULTS:-} ]]; then
    cp "$RES" "$VP_BENCH_KEEP_RESULTS"
fi
