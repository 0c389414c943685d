#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/render.sh: the pixel pipeline's speed against dcmtk and GDCM, in one run.

1. Decode throughput per transfer syntax: the same 2,500 x 3,000 16-bit radiograph (14 bits
   stored) in RLE, JPEG Lossless SV1, JPEG-LS, JPEG 2000 lossless, HTJ2K lossless and Deflated,
   plus an 8-bit version in JPEG Baseline and a 12-bit one in JPEG Extended. One process per decode, file in, raw frame out:
   `vetpacs pixels F -o OUT` vs the dcmtk decompressor of that syntax (dcmdrle, dcmdjpeg,
   dcmdjpls, dcmconv for deflated) and `gdcmconv --raw` (GDCM has no HTJ2K: the HTJ2K row
   compares with `ojph_expand` on the bare codestream instead). MB/s are decoded megabytes
   (10^6 bytes, the 15 MB frame) per second of wall time.
2. Rendering the native radiograph with its window (Window Center/Width from the file):
   a full-size 8-bit PNG (`vetpacs render -o F.png` vs `dcmj2pnm +on +Ww C W`) and a 256-px
   JPEG thumbnail (`vetpacs render --size 256 -o F.jpg` vs `dcmj2pnm +oj +Sxv 256 +Ww C W`).
   Goals: both at least 3x faster than dcmj2pnm, the thumbnail under 40 ms.

Every figure is the median of N runs (hyperfine -N, or a timing loop without it), the files
cached in memory by a warm-up run; outputs go to /dev/shm. Results are printed and written to
bench/out/render-<timestamp>.txt.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import ExplicitVRLittleEndian

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.environ.get("VP_BENCH_OUT", os.path.join(HERE, "out"))
DATA = os.path.join(OUT, "render")
VETPACS = os.environ.get("VETPACS", os.path.join(ROOT, "build", "vetpacs"))
ROWS, COLS = 2500, 3000
CENTER, WIDTH = 7000, 9000
LINES = []


def say(s=""):
    print(s, flush=True)
    LINES.append(s)


def radiograph(bits=16):
    """A synthetic thorax-like DX: soft-tissue body, brighter bone bands, air outside, detector
    noise (so it compresses like a real one: ~2-3x lossless, not 50x)."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:ROWS, 0:COLS].astype(np.float32)
    cx, cy = COLS / 2, ROWS / 2
    body = np.exp(-(((x - cx) / (COLS * 0.32)) ** 4 + ((y - cy) / (ROWS * 0.42)) ** 4))
    ribs = 0.5 + 0.5 * np.sin(y / 38.0 + 0.3 * np.sin(x / 200.0))
    spine = np.exp(-((x - cx) / 90.0) ** 2)
    img = 1500 + 9000 * body + 2500 * body * ribs * (np.abs(x - cx) < COLS * 0.28) + 3000 * spine * body
    img += rng.normal(0, 60, size=img.shape)
    img = np.clip(img, 0, (1 << 14) - 1)
    if bits == 8:
        img = img / 64.0
    return img.astype(np.uint16 if bits == 16 else np.uint8)


def write(path, px, bits, stored=None):
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"  # Digital X-Ray Image - For Presentation
    ds.SOPInstanceUID = "2.25.%d" % (1000 + bits)
    ds.StudyInstanceUID, ds.SeriesInstanceUID = "2.25.1", "2.25.2"
    ds.PatientName, ds.PatientID, ds.Modality = "Owner^Rex", "BENCH", "DX"
    ds.PatientSpeciesDescription = "Canine"
    ds.Rows, ds.Columns, ds.SamplesPerPixel = ROWS, COLS, 1
    ds.BitsAllocated = bits
    ds.BitsStored = stored or (14 if bits == 16 else 8)
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.WindowCenter, ds.WindowWidth = (CENTER, WIDTH) if bits == 16 else (CENTER // 64, WIDTH // 64)
    ds.PixelData = px.tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)
    return ds


def save_as_ts(ds, path, uid):
    """Writes ds as Explicit VR LE under transfer syntax uid, which pydicom 2.3 may not know
    (HTJ2K): its dcmwrite refuses unknown syntaxes, so meta and body are written here."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info
    ds.file_meta.TransferSyntaxUID = uid
    meta = DicomBytesIO()
    meta.is_little_endian, meta.is_implicit_VR = True, False
    write_file_meta_info(meta, ds.file_meta, enforce_standard=True)
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    ds.is_little_endian, ds.is_implicit_VR = True, False
    write_dataset(body, ds)
    with open(path, "wb") as f:
        f.write(b"\0" * 128 + b"DICM" + meta.getvalue() + body.getvalue())


def sh(*args, **kw):
    subprocess.run([str(a) for a in args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, **kw)


def make_corpus():
    os.makedirs(DATA, exist_ok=True)
    native = os.path.join(DATA, "dx16.dcm")
    stamp = os.path.join(DATA, "ready-v2")
    if os.path.exists(stamp):
        return
    say("making the radiographs (cached in %s)" % DATA)
    write(native, radiograph(16), 16)
    write(os.path.join(DATA, "dx8.dcm"), radiograph(8), 8)
    j = lambda n: os.path.join(DATA, n)  # noqa: E731
    sh("dcmcrle", native, j("rle.dcm"))
    sh("dcmcjpeg", "+e1", native, j("jpeg_ll_sv1.dcm"))
    sh("dcmcjpls", native, j("jpeg_ls.dcm"))
    sh("gdcmconv", "--j2k", native, j("j2k.dcm"))
    sh("dcmconv", "+td", native, j("deflated.dcm"))
    sh("dcmcjpeg", "+eb", j("dx8.dcm"), j("jpeg_baseline.dcm"))
    write(j("dx12.dcm"), radiograph(16) >> 2, 16, 12)
    sh("dcmcjpeg", "+ee", "+q", "95", j("dx12.dcm"), j("jpeg_extended12.dcm"))
    # HTJ2K: ojph_compress on a 16-bit PGM, the codestream wrapped by pydicom
    px = radiograph(16)
    pgm = j("dx16.pgm")
    with open(pgm, "wb") as f:
        f.write(b"P5\n%d %d\n%d\n" % (COLS, ROWS, 16383))
        f.write(px.astype(">u2").tobytes())
    sh("ojph_compress", "-i", pgm, "-o", j("htj2k.j2c"), "-reversible", "true",
       "-num_decomps", "5")
    ds = pydicom.dcmread(native)
    with open(j("htj2k.j2c"), "rb") as f:
        ds.PixelData = encapsulate([f.read()])
    ds["PixelData"].is_undefined_length = True
    ds["PixelData"].VR = "OB"
    save_as_ts(ds, j("htj2k.dcm"), "1.2.840.10008.1.2.4.201")
    open(stamp, "w").close()


def timed(cmd, runs):
    """Median wall seconds and mean CPU seconds of cmd over runs (after one warm-up)."""
    if shutil.which("hyperfine"):
        with tempfile.NamedTemporaryFile(suffix=".json") as t:
            subprocess.run(["hyperfine", "-N", "--warmup", "1", "--runs", str(runs),
                            "--export-json", t.name, "--", " ".join(cmd)],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            r = json.load(open(t.name))["results"][0]
            return r["median"], r["user"] + r["system"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    walls, cpus = [], []
    for _ in range(runs):
        c0 = os.times()
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - t0)
        c1 = os.times()
        cpus.append(c1.children_user + c1.children_system - c0.children_user - c0.children_system)
    return statistics.median(walls), statistics.mean(cpus)


def works(cmd):
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode == 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=10)
    a = ap.parse_args()
    if not os.access(VETPACS, os.X_OK):
        sys.exit("render.py: %s is not built (make build)" % VETPACS)
    make_corpus()
    tmp = tempfile.mkdtemp(dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    j = lambda n: os.path.join(DATA, n)  # noqa: E731
    o = lambda n: os.path.join(tmp, n)  # noqa: E731
    mb16 = ROWS * COLS * 2 / 1e6
    say("vetpacs render benchmark, %s" % time.strftime("%Y-%m-%d %H:%M"))
    say("machine: %d CPUs; %d runs per figure, median wall time; outputs in %s" %
        (os.cpu_count(), a.runs, tmp))
    say()
    say("1. Decode, one process per file (%dx%d, %.0f MB decoded; MB/s = decoded MB per second)" %
        (COLS, ROWS, mb16))
    rows = [
        ("RLE Lossless", "rle.dcm", ["dcmdrle"], mb16),
        ("JPEG Lossless SV1", "jpeg_ll_sv1.dcm", ["dcmdjpeg"], mb16),
        ("JPEG-LS Lossless", "jpeg_ls.dcm", ["dcmdjpls"], mb16),
        ("JPEG 2000 Lossless", "j2k.dcm", None, mb16),
        ("HTJ2K Lossless", "htj2k.dcm", None, mb16),
        ("Deflated Explicit LE", "deflated.dcm", ["dcmconv", "+te"], mb16),
        ("Explicit VR LE (native)", "dx16.dcm", ["dcmconv", "+te"], mb16),
        ("JPEG Baseline 8-bit", "jpeg_baseline.dcm", ["dcmdjpeg"], mb16 / 2),
        ("JPEG Extended 12-bit", "jpeg_extended12.dcm", ["dcmdjpeg"], mb16),
    ]
    say("%-24s %9s %9s %9s %8s %9s %8s %9s" % ("transfer syntax", "file MB", "vetpacs", "MB/s",
                                              "dcmtk", "ratio", "gdcm", "ratio"))
    for name, f, dcmtk, mb in rows:
        src = j(f)
        vp = [VETPACS, "pixels", src, "-o", o("vp.raw")]
        if not works(vp):
            say("%-24s vetpacs cannot decode it yet: %s" % (name, subprocess.run(
                vp, capture_output=True, text=True).stderr.strip()))
            continue
        tv, _ = timed(vp, a.runs)
        cells = ["%-24s %9.1f %8.0fms %9.0f" % (name, os.path.getsize(src) / 1e6, tv * 1e3, mb / tv)]
        if dcmtk:
            td, _ = timed(dcmtk + [src, o("dcmtk.dcm")], a.runs)
            cells.append("%6.0fms %8.1fx" % (td * 1e3, td / tv))
        elif f == "htj2k.dcm" and shutil.which("ojph_expand"):
            td, _ = timed(["ojph_expand", "-i", j("htj2k.j2c"), "-o", o("o.pgm")], a.runs)
            cells.append("%6.0fms %8.1fx" % (td * 1e3, td / tv) + "  (ojph_expand)")
        else:
            cells.append("%8s %9s" % ("-", "-"))
        g = ["gdcmconv", "--raw", src, o("gdcm.dcm")]
        if f != "htj2k.dcm" and works(g):
            tg, _ = timed(g, a.runs)
            cells.append("%6.0fms %8.1fx" % (tg * 1e3, tg / tv))
        say(" ".join(cells))
    say()
    say("2. Render the native radiograph with its window (C %d, W %d)" % (CENTER, WIDTH))
    native = j("dx16.dcm")
    targets = [
        ("full-size PNG", [VETPACS, "render", native, "--window", "%d,%d" % (CENTER, WIDTH), "-o",
                           o("vp.png")],
         ["dcmj2pnm", "+on", "+Ww", str(CENTER), str(WIDTH), native, o("dcmtk.png")], 3.0, None),
        ("256 px JPEG thumbnail", [VETPACS, "render", native, "--window",
                                   "%d,%d" % (CENTER, WIDTH), "--size", "256", "-o", o("vp.jpg")],
         ["dcmj2pnm", "+oj", "+Sxv", "256", "+Ww", str(CENTER), str(WIDTH), native,
          o("dcmtk.jpg")], 3.0, 0.040),
    ]
    for name, vp, dc, goal, limit in targets:
        if not works(vp):
            say("%-22s vetpacs cannot render it yet: %s" % (name, subprocess.run(
                vp, capture_output=True, text=True).stderr.strip()))
            continue
        tv, cv = timed(vp, a.runs)
        td, cd = timed(dc, a.runs)
        verdict = "MET" if td / tv >= goal else "MISSED"
        line = ("%-22s vetpacs %6.1f ms (cpu %5.1f)  dcmj2pnm %7.1f ms (cpu %6.1f)  %5.1fx"
                "  [goal >= %.0fx: %s]" % (name, tv * 1e3, cv * 1e3, td * 1e3, cd * 1e3, td / tv,
                                           goal, verdict))
        if limit:
            line += "  [goal < %.0f ms: %s]" % (limit * 1e3, "MET" if tv < limit else "MISSED")
        say(line)
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "render-%s.txt" % time.strftime("%Y%m%d-%H%M%S"))
    with open(path, "w") as f:
        f.write("\n".join(LINES) + "\n")
    print("written to %s" % path)


if __name__ == "__main__":
    main()
