# SPDX-License-Identifier: MIT
"""JPEG Lossless (ISO 10918-1 process 14 / 14 SV1, PS3.5 A.4.1) through `vetpacs pixels`,
bit-exact against dcmtk's dcmdjpeg.

The reference of every file is dcmdjpeg's decompression to Explicit VR Little Endian, read with
pydicom; each frame of vetpacs' output must equal it in the low Bits Stored bits of every sample
(signed data: the low bits, whatever the sign extension above them).

* test_gdcm_example: gdcm's 00191113.dcm (XA, 4 frames, SV1). Its Basic Offset Table has a
  fifth entry and offsets off by one; img_frames_open then takes the frames from the four
  fragments, as dcmtk does. test_gdcm_example_fragments decodes the same four streams
  re-encapsulated with a four-entry table.
* test_pydicom_files: pydicom's JPEG lossless files with pixel data (SC_rgb_jpeg_gdcm.dcm).
* test_dcmcjpeg: images made here with numpy (smooth gradients plus noise: 16-bit, 12 bits in
  16 with 2 frames, 10 bits in 16, 8-bit, signed 16-bit, RGB 8-bit, RGB 16-bit, 1x1, 7x5)
  compressed by dcmcjpeg with +e1 (SV1), +el with selection values 1-7, and point
  transforms (+pt).
* test_gdcmconv: the same images compressed by gdcmconv -J (lossless; gdcm writes precision
  16 for 12-bit data).
* test_fragments: dcmcjpeg's 2-frame file re-encapsulated with three fragments per frame.
* test_own_encoder: streams written by the small encoder below for what neither tool writes:
  restart intervals (DRI + RSTn, one or several lines, interleaved or not), one scan per
  component, Huffman codes longer than the decoder's lookup table, two tables, fill bytes and
  an APP segment. Checked against dcmdjpeg and against the source pixels.
* test_hostile: truncated and damaged streams (entropy data cut short, header cut short,
  columns that disagree with the data set, predictor 0, a Huffman table that overflows, codes
  not in the table, a wrong restart marker) give exit 1 and a message saying what is wrong,
  never a crash (sanitizer reports fail the test).
"""
import os
import subprocess

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_pixel_data_fragment
from pydicom.filebase import DicomBytesIO
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from conftest import PYDICOM_DATA, TIMEOUT, run

GDCM_XA = "/usr/share/doc/libgdcm3.0/examples/00191113.dcm"
PYDICOM_FILES = os.path.join(PYDICOM_DATA, "test_files")
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.57"
JPEG_LOSSLESS_SV1 = "1.2.840.10008.1.2.4.70"


# ---------------------------------------------------------------------------------------------
# Helpers


def frames_of(ds):
    return int(getattr(ds, "NumberOfFrames", 1) or 1)


def write_native(path, arr, bits_stored, signed=False):
    """arr: (frames, rows, cols[, 3]) of uint8/uint16/int16 -> Explicit VR LE file."""
    frames, rows, cols = arr.shape[:3]
    spp = arr.shape[3] if arr.ndim == 4 else 1
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientName, ds.PatientID = "OT", "Lossless^Test", "JPLL"
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, cols, spp
    ds.PhotometricInterpretation = "RGB" if spp == 3 else "MONOCHROME2"
    if spp == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = arr.dtype.itemsize * 8
    ds.BitsStored, ds.HighBit = bits_stored, bits_stored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(str(path), write_like_original=False)


def smooth(seed, shape, lo, hi, noise):
    """Frames of a smooth pattern plus Gaussian noise, clipped to lo..hi."""
    rng = np.random.default_rng(seed)
    frames, rows, cols = shape
    y, x = np.mgrid[0:rows, 0:cols]
    out = []
    for i in range(frames):
        base = np.sin(x / (5.0 + i) + rng.random() * 6) * np.cos(y / 9.0) + (x + y) / (rows + cols)
        base = (base - base.min()) / (np.ptp(base) + 1e-9)
        v = lo + base * (hi - lo) + rng.normal(0, noise, (rows, cols))
        out.append(np.clip(np.rint(v), lo, hi))
    return np.array(out)


def rgb(seed, shape, hi, noise, dtype):
    return np.stack([smooth(seed + c, shape, 0, hi, noise) for c in range(3)], -1).astype(dtype)


# name: (array maker, bits stored, signed)
IMAGES = {
    "u16": (lambda: smooth(1, (1, 37, 53), 0, 65535, 400).astype(np.uint16), 16, False),
    "u12x2": (lambda: smooth(2, (2, 40, 31), 0, 4095, 20).astype(np.uint16), 12, False),
    "u10": (lambda: smooth(3, (1, 33, 29), 0, 1023, 5).astype(np.uint16), 10, False),
    "u8": (lambda: smooth(4, (1, 37, 53), 0, 255, 3).astype(np.uint8), 8, False),
    "s16": (lambda: smooth(5, (1, 37, 53), -32768, 32767, 400).astype(np.int16), 16, True),
    "rgb8": (lambda: rgb(6, (1, 29, 41), 255, 4, np.uint8), 8, False),
    "rgb16": (lambda: rgb(7, (1, 19, 23), 65535, 300, np.uint16), 16, False),
    "one": (lambda: np.array([[[40000]]], dtype=np.uint16), 16, False),
    "odd": (lambda: smooth(8, (1, 5, 7), 0, 255, 30).astype(np.uint8), 8, False),
}


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("jpll")
    out = {}
    for name, (make, bits, signed) in IMAGES.items():
        p = d / f"{name}.dcm"
        write_native(p, make(), bits, signed)
        out[name] = p
    return out


def reference(path, tmp_path):
    """(dataset, frames as bytes) of dcmdjpeg's decompression of path."""
    ref = tmp_path / "ref.dcm"
    if ref.exists():
        ref.unlink()
    subprocess.run(["dcmdjpeg", str(path), str(ref)], check=True, timeout=TIMEOUT,
                   stderr=subprocess.DEVNULL)
    ds = pydicom.dcmread(str(ref))
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert int(getattr(ds, "PlanarConfiguration", 0)) == 0
    size = ds.Rows * ds.Columns * ds.SamplesPerPixel * ds.BitsAllocated // 8
    return ds, [ds.PixelData[i * size:(i + 1) * size] for i in range(frames_of(ds))]


def masked(data, ds):
    a = np.frombuffer(data, dtype=np.uint16 if ds.BitsAllocated == 16 else np.uint8)
    return a & ((1 << ds.BitsStored) - 1)


def assert_matches_dcmdjpeg(path, tmp_path):
    ds, want = reference(path, tmp_path)
    for i, w in enumerate(want):
        raw = tmp_path / f"f{i}.raw"
        r = run(["pixels", str(path), "--frame", str(i), "-o", str(raw)])
        assert r.returncode == 0, r.describe()
        got = raw.read_bytes()
        assert len(got) == len(w), f"frame {i}: {len(got)} bytes, dcmdjpeg {len(w)}"
        bad = np.flatnonzero(masked(got, ds) != masked(w, ds))
        assert bad.size == 0, f"frame {i}: {bad.size} samples differ, first at {bad[0]}"
    return ds, want


def stream_fragments(path):
    ds = pydicom.dcmread(str(path))
    fp = DicomBytesIO(ds.PixelData)
    fp.is_little_endian = True
    return ds, list(generate_pixel_data_fragment(fp))


def with_streams(src, streams, out, ts=None):
    """A copy of the data set src with its frames replaced by streams (one fragment each)."""
    ds = pydicom.dcmread(str(src))
    if ts:
        ds.file_meta.TransferSyntaxUID = ts
    if "NumberOfFrames" in ds or len(streams) > 1:
        ds.NumberOfFrames = len(streams)
    ds.PixelData = encapsulate([bytes(s) for s in streams], has_bot=True)
    ds["PixelData"].VR = "OB"
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(str(out), write_like_original=False)
    return out


# ---------------------------------------------------------------------------------------------
# A small lossless JPEG encoder (ISO 10918-1 Annex H), for streams the tools do not write.

LENGTHS_SHORT = [2, 3, 3, 3, 4, 5, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]
LENGTHS_LONG = [16] * 17  # every code past any first-level lookup


def canonical(lengths):
    """(BITS[1..16], HUFFVAL, {symbol: (code, length)}) for code lengths per symbol 0..16."""
    order = sorted(range(len(lengths)), key=lambda s: (lengths[s], s))
    bits, codes, code, prev = [0] * 17, {}, 0, 0
    for s in order:
        ln = lengths[s]
        code <<= ln - prev
        prev = ln
        codes[s] = (code, ln)
        bits[ln] += 1
        code += 1
    return bits[1:], order, codes


class BitWriter:
    def __init__(self):
        self.out, self.acc, self.n = bytearray(), 0, 0

    def put(self, value, n):
        self.acc = (self.acc << n) | (value & ((1 << n) - 1))
        self.n += n
        while self.n >= 8:
            self.n -= 8
            b = (self.acc >> self.n) & 0xFF
            self.out.append(b)
            if b == 0xFF:
                self.out.append(0)  # F.1.2.3 byte stuffing

    def flush(self):
        if self.n:
            self.put((1 << (8 - self.n)) - 1, 8 - self.n)  # pad with 1-bits


def predictions(line, k, above, init):
    """Table H.1 predictions for one line (shape (1, cols)) given the line above (None on the
    first line of a scan or restart interval)."""
    ra = np.concatenate([[init], line[0][:-1]]).astype(np.int64)
    if above is None:
        return ra
    above = above.astype(np.int64)
    rb, rc = above, np.concatenate([[0], above[:-1]])
    p = {1: ra, 2: rb, 3: rc, 4: ra + rb - rc, 5: ra + ((rb - rc) >> 1),
         6: rb + ((ra - rc) >> 1), 7: (ra + rb) >> 1}[k]
    p = p.copy()
    p[0] = above[0]
    return p


def encode_lossless(img, precision, k=1, pt=0, restart_lines=0, interleave=True,
                    lengths=(LENGTHS_SHORT,), extras=b""):
    """img: (rows, cols, comps) unsigned samples -> one JPEG lossless stream. restart_lines:
    restart interval in whole lines (0: none). lengths: code lengths per table; component c
    uses table c % len(lengths)."""
    rows, cols, nc = img.shape
    samples = img.astype(np.int64) >> pt
    init = 1 << (precision - pt - 1)
    tables = [canonical(list(ln)) for ln in lengths]
    # Differences per component, prediction restarting with each interval (H.1.2.1).
    diffs = np.zeros((rows, cols, nc), dtype=np.int64)
    for c in range(nc):
        for y in range(rows):
            first = y == 0 or (restart_lines and y % restart_lines == 0)
            line = samples[y:y + 1, :, c]
            p = predictions(line, k, None if first else samples[y - 1, :, c], init)
            diffs[y, :, c] = (line[0] - p) & 0xFFFF

    out = bytearray(b"\xff\xd8") + extras
    for t, (bits, vals, _) in enumerate(tables):
        body = bytes([t]) + bytes(bits) + bytes(vals)
        out += b"\xff\xc4" + (len(body) + 2).to_bytes(2, "big") + body
    comps = b"".join(bytes([c + 1, 0x11, 0]) for c in range(nc))
    out += (b"\xff\xc3" + (8 + 3 * nc).to_bytes(2, "big") + bytes([precision]) +
            rows.to_bytes(2, "big") + cols.to_bytes(2, "big") + bytes([nc]) + comps)
    scan_comps = [list(range(nc))] if interleave else [[c] for c in range(nc)]
    if restart_lines:
        mcus = restart_lines * cols
        out += b"\xff\xdd\x00\x04" + mcus.to_bytes(2, "big")
    for sc in scan_comps:
        hdr = bytes([len(sc)]) + b"".join(bytes([c + 1, (c % len(tables)) << 4]) for c in sc)
        hdr += bytes([k, 0, pt])
        out += b"\xff\xda" + (len(hdr) + 2).to_bytes(2, "big") + hdr
        w, rst = BitWriter(), 0
        for y in range(rows):
            if restart_lines and y and y % restart_lines == 0:
                w.flush()
                out += w.out + bytes([0xFF, 0xD0 + rst])
                rst = (rst + 1) % 8
                w = BitWriter()
            for x in range(cols):
                for c in sc:
                    d = int(diffs[y, x, c])
                    if d == 32768:
                        ssss, extra = 16, None
                    else:
                        if d > 32768:
                            d -= 65536
                        ssss = abs(d).bit_length()
                        extra = d if d >= 0 else d + (1 << ssss) - 1
                    code, ln = tables[c % len(tables)][2][ssss]
                    w.put(code, ln)
                    if ssss and extra is not None:
                        w.put(extra, ssss)
        w.flush()
        out += w.out
    return bytes(out) + b"\xff\xd9"


# ---------------------------------------------------------------------------------------------
# Tests


def test_gdcm_example(tmp_path):
    assert_matches_dcmdjpeg(GDCM_XA, tmp_path)


def test_gdcm_example_fragments(tmp_path):
    ds, frags = stream_fragments(GDCM_XA)
    assert ds.file_meta.TransferSyntaxUID == JPEG_LOSSLESS_SV1 and len(frags) == 5
    path = with_streams(GDCM_XA, frags[1:], tmp_path / "xa.dcm")
    _, want = assert_matches_dcmdjpeg(path, tmp_path)
    assert len(want) == 4


def test_pydicom_files(tmp_path):
    found = []
    for name in sorted(os.listdir(PYDICOM_FILES)):
        path = os.path.join(PYDICOM_FILES, name)
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception:
            continue
        ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        if ts not in (JPEG_LOSSLESS, JPEG_LOSSLESS_SV1) or "Rows" not in ds:
            continue  # UN_sequence.dcm is labelled lossless but has no pixel data
        found.append(name)
        assert_matches_dcmdjpeg(path, tmp_path)
    assert "SC_rgb_jpeg_gdcm.dcm" in found


DCMCJPEG_OPTIONS = ["+e1"] + [f"+el +sv {k}" for k in range(1, 8)] + ["+e1 +pt 2",
                                                                       "+el +sv 6 +pt 1"]


@pytest.mark.parametrize("opts", DCMCJPEG_OPTIONS)
@pytest.mark.parametrize("name", list(IMAGES))
def test_dcmcjpeg(images, name, opts, tmp_path):
    out = tmp_path / "c.dcm"
    subprocess.run(["dcmcjpeg"] + opts.split() + [str(images[name]), str(out)], check=True,
                   timeout=TIMEOUT)
    ds, want = assert_matches_dcmdjpeg(out, tmp_path)
    # Lossless: without a point transform the reference is the source itself.
    if "+pt" not in opts:
        src = pydicom.dcmread(str(images[name]))
        assert b"".join(want) == src.PixelData[:len(b"".join(want))]


@pytest.mark.parametrize("name", list(IMAGES))
def test_gdcmconv(images, name, tmp_path):
    out = tmp_path / "g.dcm"
    subprocess.run(["gdcmconv", "-J", str(images[name]), str(out)], check=True, timeout=TIMEOUT)
    assert pydicom.dcmread(str(out)).file_meta.TransferSyntaxUID in (JPEG_LOSSLESS,
                                                                      JPEG_LOSSLESS_SV1)
    assert_matches_dcmdjpeg(out, tmp_path)


def test_fragments(images, tmp_path):
    """Frames split over several fragments (PS3.5 A.4) decode as their concatenation."""
    src = tmp_path / "c.dcm"
    subprocess.run(["dcmcjpeg", "+e1", str(images["u12x2"]), str(src)], check=True,
                   timeout=TIMEOUT)
    ds, frags = stream_fragments(src)
    ds.PixelData = encapsulate(frags[1:], fragments_per_frame=3, has_bot=True)
    out = tmp_path / "frag.dcm"
    ds.save_as(str(out))
    assert len(stream_fragments(out)[1]) == 7  # table + 2 frames x 3 fragments
    assert_matches_dcmdjpeg(out, tmp_path)


OWN = {
    # name: (image, precision, encoder options)
    "restart_1_line": ("u16", 16, dict(k=4, restart_lines=1)),
    "restart_3_lines": ("u12x2", 12, dict(k=7, restart_lines=3)),
    "restart_rgb": ("rgb8", 8, dict(k=6, restart_lines=2)),
    "restart_rgb_planes": ("rgb8", 8, dict(k=5, restart_lines=4, interleave=False)),
    "scan_per_component": ("rgb16", 16, dict(k=2, interleave=False, lengths=(LENGTHS_SHORT,
                                                                           LENGTHS_LONG))),
    "long_codes": ("u16", 16, dict(k=3, lengths=(LENGTHS_LONG,))),
    "point_transform_restart": ("u10", 10, dict(k=1, pt=3, restart_lines=5)),
    "fill_and_app": ("u8", 8, dict(k=2, extras=b"\xff\xff\xff\xe1\x00\x06abcd\xff\xfe\x00\x02")),
}


@pytest.mark.parametrize("case", list(OWN))
def test_own_encoder(images, case, tmp_path):
    name, precision, opts = OWN[case]
    ds = pydicom.dcmread(str(images[name]))
    nf, spp = frames_of(ds), ds.SamplesPerPixel
    dtype = np.uint16 if ds.BitsAllocated == 16 else np.uint8
    count = nf * ds.Rows * ds.Columns * spp  # 8-bit data may carry a pad byte
    px = np.frombuffer(ds.PixelData, dtype=dtype)[:count].reshape(nf, ds.Rows, ds.Columns, spp)
    streams = [encode_lossless(px[f], precision, **opts) for f in range(nf)]
    path = with_streams(images[name], streams, tmp_path / "own.dcm", JPEG_LOSSLESS)
    _, want = assert_matches_dcmdjpeg(path, tmp_path)
    pt = opts.get("pt", 0)
    expect = ((px.astype(np.int64) >> pt) << pt).astype(dtype)
    assert b"".join(want) == expect.tobytes()


def test_hostile(images, tmp_path):
    src = tmp_path / "c.dcm"
    subprocess.run(["dcmcjpeg", "+e1", str(images["u16"]), str(src)], check=True,
                   timeout=TIMEOUT)
    _, frags = stream_fragments(src)
    good = frags[1]
    sos = good.index(b"\xff\xda")
    sof = good.index(b"\xff\xc3")
    dht = good.index(b"\xff\xc4")
    px = np.frombuffer(pydicom.dcmread(str(images["u16"])).PixelData,
                       dtype=np.uint16).reshape(37, 53, 1)

    bits = list(good[dht + 5:dht + 21])
    donor = next(i for i, n in enumerate(bits) if n >= 3)
    bits[donor] -= 3
    bits[0] += 3  # three codes of one bit: more than fit (C.2)

    def patched(at, new):
        b = bytearray(good)
        b[at:at + len(new)] = new
        return bytes(b)

    long_table = encode_lossless(px, 16, lengths=(LENGTHS_LONG,))
    ent = long_table.index(b"\xff\xda") + 10
    with_rst = encode_lossless(px, 16, restart_lines=2)
    rst1 = with_rst.index(b"\xff\xd1")
    cases = {
        "truncated_half": (good[:len(good) // 2], "entropy-coded data ends early"),
        "truncated_header": (good[:sof + 6], "FFC3 at offset"),
        "no_scan": (good[:sos] + b"\xff\xd9", "has no scan"),
        "columns": (patched(sof + 7, b"\x00\x36"), "SOF3 has 54 columns, data set 53"),
        "rows": (patched(sof + 5, b"\x01\x00"), "SOF3 has 256 rows, data set 37"),
        "precision": (patched(sof + 4, b"\x11"), "sample precision 17"),
        "predictor0": (patched(sos + 7, b"\x00"), "predictor 0"),
        "huffman_overflow": (patched(dht + 5, bytes(bits)), "more codes of 1 bits than fit"),
        "segment_past_end": (patched(dht + 2, b"\xff\xf0"), "length 65520"),
        "bad_code": (long_table[:ent] + b"\x7f" * 200 + b"\xff\xd9", "Huffman code not in"),
        "wrong_rst": (with_rst[:rst1 + 1] + b"\xd5" + with_rst[rst1 + 2:],
                      "FFD5 at offset"),
        "not_jpeg": (b"\x00" * 64, "no JPEG start of frame"),
    }
    for case, (stream, msg) in cases.items():
        path = with_streams(src, [stream], tmp_path / f"{case}.dcm", JPEG_LOSSLESS)
        r = run(["pixels", str(path), "-o", str(tmp_path / "x.raw")])
        assert r.returncode == 1, f"{case}: {r.describe()}"
        assert msg in r.stderr, f"{case}: {r.stderr!r}"
