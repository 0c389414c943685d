#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Helpers for bench/parse.sh (Debian's /usr/bin/python3 with python3-pydicom).

    benchlib.py roundtrip LIST INDIR OUTDIR   pydicom: dcmread + save_as for every name in LIST
    benchlib.py header-inprocess N FILE       pydicom: median seconds of N dcmread(...,
                                              stop_before_pixels=True) calls in one process
    benchlib.py hyperfine-median JSON         "median-wall mean-cpu" seconds from hyperfine's JSON
    benchlib.py median X...                   median of numbers
    benchlib.py report RESULTS                print the tables and ratios from parse.sh's results
"""
import json
import statistics
import sys
import time


def roundtrip(listfile, indir, outdir):
    from pydicom import dcmread

    with open(listfile) as f:
        names = [x for x in f.read().split("\n") if x]
    for n in names:
        ds = dcmread("%s/%s" % (indir, n))
        ds.save_as("%s/%s" % (outdir, n))


def header_inprocess(n, path):
    from pydicom import dcmread

    dcmread(path, stop_before_pixels=True)  # import and first-use costs out of the timing
    times = []
    for _ in range(n):
        t = time.perf_counter()
        dcmread(path, stop_before_pixels=True)
        times.append(time.perf_counter() - t)
    print("%.9f" % statistics.median(times))


def fmt_s(x):
    return "%.3f" % x if x >= 0.1 else "%.4f" % x


def report(path):
    rows = []
    info = {}
    with open(path) as f:
        for line in f:
            p = line.rstrip("\n").split("\t")
            if p[0] == "info":
                info[p[1]] = p[2]
            else:
                rows.append(p)
    out = []
    w = out.append

    # ---- round trip -------------------------------------------------------------------
    rt = {(r[1], r[2]): float(r[4]) for r in rows if r[0] == "roundtrip"}
    cpu = {(r[1], r[2]): float(r[5]) for r in rows if r[0] == "roundtrip"}
    files = int(info["files"])
    mb = int(info["bytes"]) / 1e6
    w("")
    w("== Round trip: read %d files (%.0f MB) into data sets and write them back ==" % (files, mb))
    w("median of %s runs, page cache warm, outputs on %s" % (info["runs"], info["outfs"]))
    w("%-9s %-13s %9s %9s %8s %8s  %s" % ("tool", "mode", "seconds", "files/s", "MB/s",
                                           "CPU s", "vs vetpacs (same mode, wall)"))
    ref = {"per process": rt.get(("vetpacs", "per process")), "batch": rt.get(("vetpacs", "batch"))}
    order = [("vetpacs", "per process"), ("dcmconv", "per process"), ("vetpacs", "batch"),
             ("pydicom", "batch")]
    for tool, mode in order:
        if (tool, mode) not in rt:
            continue
        s = rt[(tool, mode)]
        r = ref[mode]
        rel = "1.00x" if tool == "vetpacs" else ("%.2fx slower" % (s / r) if s >= r
                                                 else "%.2fx faster" % (r / s))
        w("%-9s %-13s %9s %9.0f %8.1f %8s  %s" % (tool, mode, fmt_s(s), files / s, mb / s,
                                                  fmt_s(cpu[(tool, mode)]), rel))
    w("%-9s %-13s %9s" % ("dcmconv", "batch", "n/a  (dcmconv converts one file per process)"))
    floor = rt.get(("/bin/true", "per process"))
    if floor is not None:
        w("%-9s %-13s %9s %9.0f %8s %8s  %s" % ("/bin/true", "per process", fmt_s(floor),
                                                 files / floor, "-",
                                                 fmt_s(cpu[("/bin/true", "per process")]),
                                                 "loop floor: fork+exec of a no-op, same harness"))
    w("")
    v_pp, d_pp = rt.get(("vetpacs", "per process")), rt.get(("dcmconv", "per process"))
    if v_pp and d_pp:
        ratio = d_pp / v_pp
        w("round trip, per process: vetpacs %.1fx faster than dcmconv   [goal >= 5x: %s]"
          % (ratio, "MET" if ratio >= 5 else "NOT MET"))
        w("  (CPU time: vetpacs %.1fx less than dcmconv)"
          % (cpu[("dcmconv", "per process")] / cpu[("vetpacs", "per process")]))
        if floor is not None and v_pp > floor:
            w("  (net of the loop floor: vetpacs %.2f ms/file, dcmconv %.2f ms/file, %.1fx)"
              % ((v_pp - floor) * 1e3 / files, (d_pp - floor) * 1e3 / files,
                 (d_pp - floor) / (v_pp - floor)))
    v_b, p_b = rt.get(("vetpacs", "batch")), rt.get(("pydicom", "batch"))
    if v_b and p_b:
        w("round trip, batch (one process): vetpacs %.1fx faster than pydicom"
          "   (CPU time: %.1fx less)" % (p_b / v_b, cpu[("pydicom", "batch")] /
                                         cpu[("vetpacs", "batch")]))
    if v_b and d_pp:
        w("round trip, vetpacs batch vs dcmconv per process: %.1fx faster" % (d_pp / v_b))
    if v_b and v_pp:
        w("vetpacs, one process per file instead of one for all: +%.2f ms/file%s"
          % ((v_pp - v_b) * 1e3 / files,
             ", of which %.2f ms is the loop floor (bash fork+exec)" % (floor * 1e3 / files)
             if floor is not None else ""))

    # ---- header only ------------------------------------------------------------------
    hd = [r for r in rows if r[0] == "header"]
    if hd or "header_skip" in info:
        names = info["header_files"].split(",")
        labels = info["header_labels"].split(",")
        w("")
        w("== Header-only read: one data set up to Pixel Data, ms per file ==")
        w("median of %s runs per cell (per process: includes process start-up)"
          % info.get("header_runs", "?"))
        if "header_skip" in info:
            w(info["header_skip"])
        w("%-50s" % "tool / mode" + "".join("%11s" % l for l in labels) + "  %s" %
          ("%s/%s" % (labels[-1], labels[0])))
        seen = []
        for r in hd:
            if (r[1], r[2]) not in seen:
                seen.append((r[1], r[2]))
        for tool, mode in seen:
            vals = {r[3]: float(r[4]) for r in hd if r[1] == tool and r[2] == mode}
            cells = "".join("%11.2f" % (vals[n] * 1e3) if n in vals else "%11s" % "-"
                            for n in names)
            ratio = ("%.2f" % (vals[names[-1]] / vals[names[0]])
                     if names[-1] in vals and names[0] in vals else "-")
            w("%-50s%s  %s" % ("%s %s" % (tool, mode), cells, ratio))
        hb = [r for r in rows if r[0] in ("hbytes", "hrss")]
        if hb:
            w("")
            w("%-50s" % "bytes read by read/pread syscalls (strace)" +
              "".join("%11s" % l for l in labels))
            kinds = []
            for r in hb:
                if (r[0], r[1], r[2]) not in kinds:
                    kinds.append((r[0], r[1], r[2]))
            for kind, tool, mode in kinds:
                vals = {r[3]: int(r[4]) for r in hb if r[0] == kind and r[1] == tool
                        and r[2] == mode}
                unit = "KB read" if kind == "hbytes" else "max RSS KB"
                cells = "".join("%11d" % (vals[n] / 1024 if kind == "hbytes" else vals[n])
                                if n in vals else "%11s" % "-" for n in names)
                w("%-50s%s" % ("%s %s (%s)" % (tool, mode, unit), cells))
        def cells(tool, mode):
            return {r[3]: float(r[4]) for r in hd if r[1] == tool and r[2] == mode}

        vp = cells("vetpacs", "dump --header-only")
        vi = cells("vetpacs", "dump --header-only, in process")
        if len(vp) == len(names) and len(vi) == len(names):
            w("")
            worst = max(vi[n] for n in names) / min(vi[n] for n in names)
            w("header-only, vetpacs: the %s file's header in %.2f ms per process, %.3f ms per read"
              " in process" % (labels[1], vp[names[1]] * 1e3, vi[names[1]] * 1e3))
            rb = {r[3]: int(r[4]) for r in rows if r[0] == "hbytes" and r[1] == "vetpacs"
                  and r[2] == "dump --header-only"}
            same_bytes = len(rb) == len(names) and len(set(rb.values())) == 1
            if rb and not same_bytes:
                verdict = "NOT MET: bytes read grow with the pixel data"
            elif worst <= 1.25:
                verdict = "MET" + (": same %d KB read from every file" % (rb[names[0]] / 1024)
                                   if same_bytes else "")
            elif same_bytes:
                verdict = ("MET by bytes (same %d KB read from every file), timing spread %.2fx"
                           " is noise" % (rb[names[0]] / 1024, worst))
            else:
                verdict = "NOT MET"
            w("  slowest/fastest over %s: %.2fx in process, %.2fx per process" %
              ("/".join(labels), worst, max(vp.values()) / min(vp.values())))
            w("  [goal: header-only time independent of pixel data size (<= 1.25x): %s]" % verdict)
            for tool, mode in seen:
                if tool == "vetpacs":
                    continue
                vals = cells(tool, mode)
                ref = vi if "in process" in mode else vp
                if names[1] in vals:
                    r = vals[names[1]] / ref[names[1]]
                    w("header-only, %s, %s: vetpacs %.1fx %s than %s %s"
                      % (labels[1], "in process" if "in process" in mode else "per process",
                         r if r >= 1 else 1 / r, "faster" if r >= 1 else "slower", tool,
                         mode.replace(", in process", "")))
    busy = int(info.get("maxbusy") or "0")
    if busy > 20:
        w("")
        w("WARNING: other work kept the CPUs up to %d %% busy between measurements: wall times"
          " are noisy, CPU times less so." % busy)
    print("\n".join(out))


def main(argv):
    if len(argv) >= 2 and argv[1] == "roundtrip" and len(argv) == 5:
        roundtrip(argv[2], argv[3], argv[4])
    elif len(argv) == 4 and argv[1] == "header-inprocess":
        header_inprocess(int(argv[2]), argv[3])
    elif len(argv) == 3 and argv[1] == "hyperfine-median":
        with open(argv[2]) as f:
            r = json.load(f)["results"][0]
            print("%.9f %.9f" % (r["median"], r["user"] + r["system"]))
    elif len(argv) >= 3 and argv[1] == "median":
        print("%.9f" % statistics.median(float(x) for x in argv[2:]))  # nan sorts anywhere
    elif len(argv) == 3 and argv[1] == "report":
        report(argv[2])
    else:
        sys.stderr.write(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
