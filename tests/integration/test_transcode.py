# SPDX-License-Identifier: MIT
"""Transcoding through `vetpacs convert --ts ...` (img_transcode), checked by dcmtk.

* test_rle_encode: objects this test writes (8, 16 and 32 bits, signed, 12 of 16 bits stored,
  RGB, several frames, odd sizes, noise, flat areas and gradients, so both PackBits run kinds
  and the 128-byte limits occur) are encoded to RLE Lossless; dcmdrle must decode every frame
  to the original bytes, pydicom too, and the Basic Offset Table must point at each frame.
* test_rle_smaller_than_native: a smooth image compresses (the encoder does replicate runs).
* test_jpeg_ls_encode: the same objects to JPEG-LS Lossless, decoded by dcmdjpls: identical;
  Near-Lossless with --near 3 stays within 3 and is flagged lossy (ISO_14495_1).
* test_decode_to_native: every RLE / JPEG / JPEG-LS / JPEG 2000 file pydicom ships that
  vetpacs decodes is written as Explicit VR Little Endian; its frames equal what `vetpacs
  pixels` gives for the source, Photometric Interpretation is the decoded one, and lossy
  sources keep Lossy Image Compression 01 with their method.
* test_errors: a syntax without an encoder, Near-Lossless without a bound, a damaged
  compressed frame: exit 1 with the reason, no output file.
"""
import os
import subprocess

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_pixel_data_frame
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from conftest import PYDICOM_DATA, TIMEOUT, run

FILES = os.path.join(PYDICOM_DATA, "test_files")
RLE, JLS, JLS_NEAR = "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"


def image(rows, cols, bits=8, stored=None, signed=False, spp=1, frames=1, kind="mix", seed=1):
    """Pixel array of the given geometry: noise, flat runs longer than 128, gradients."""
    rng = np.random.default_rng(seed)
    stored = stored or bits
    shape = (frames, rows, cols, spp)
    lo, hi = (-(1 << (stored - 1)), (1 << (stored - 1)) - 1) if signed else (0, (1 << stored) - 1)
    noise = rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.int64)
    y, x = np.mgrid[0:rows, 0:cols]
    grad = (lo + (x * 3 + y * 5) % (hi - lo + 1))[None, :, :, None].repeat(frames, 0).repeat(spp, 3)
    if kind == "noise":
        a = noise
    elif kind == "smooth":
        a = grad
    else:
        a = np.where((y // 3 % 3 == 0)[None, :, :, None], lo + 7, noise)
        a = np.where((x > cols // 2)[None, :, :, None], grad, a)
    dtype = {8: np.uint8, 16: np.uint16, 32: np.uint32}[bits]
    if signed:
        dtype = {8: np.int8, 16: np.int16, 32: np.int32}[bits]
    return a.astype(dtype)


def write(path, px, bits, stored=None, signed=False, photometric=None):
    frames, rows, cols, spp = px.shape
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName, ds.PatientID = "Owner^Rex", "P1"
    ds.Rows, ds.Columns, ds.SamplesPerPixel = rows, cols, spp
    ds.BitsAllocated, ds.BitsStored = bits, stored or bits
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    ds.PhotometricInterpretation = photometric or ("RGB" if spp == 3 else "MONOCHROME2")
    if spp > 1:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = px.astype(px.dtype.newbyteorder("<")).tobytes()
    if len(ds.PixelData) % 2:
        ds.PixelData += b"\0"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)
    return ds


CASES = {
    "u8": dict(rows=64, cols=300, bits=8),
    "u8_odd": dict(rows=7, cols=5, bits=8),
    "one_pixel": dict(rows=1, cols=1, bits=16),
    "u16_12": dict(rows=40, cols=260, bits=16, stored=12),
    "s16": dict(rows=33, cols=129, bits=16, signed=True),
    "u16_noise": dict(rows=16, cols=400, bits=16, kind="noise"),
    "rgb8_3f": dict(rows=20, cols=30, bits=8, spp=3, frames=3),
    "rgb16": dict(rows=9, cols=11, bits=16, spp=3),
    "u32": dict(rows=5, cols=140, bits=32, kind="noise"),
}


def frames_bytes(path):
    """Native frames of a Part 10 file as bytes (little endian)."""
    ds = pydicom.dcmread(path)
    size = ds.Rows * ds.Columns * ds.SamplesPerPixel * ds.BitsAllocated // 8
    n = int(getattr(ds, "NumberOfFrames", 1) or 1)
    return [ds.PixelData[i * size:(i + 1) * size] for i in range(n)]


def convert(src, dst, ts, *extra):
    return run(["convert", "--ts", ts, *extra, str(src), str(dst)])


def native_frames(px):
    return [f.astype(f.dtype.newbyteorder("<")).tobytes() for f in px]


@pytest.mark.parametrize("case", sorted(CASES))
def test_rle_encode(tmp_path, case):
    kw = dict(CASES[case])
    bits, stored, signed = kw["bits"], kw.get("stored"), kw.get("signed", False)
    px = image(**kw)
    write(tmp_path / "in.dcm", px, bits, stored, signed)
    r = convert(tmp_path / "in.dcm", tmp_path / "rle.dcm", "rle")
    assert r.returncode == 0, r.describe()
    enc = pydicom.dcmread(tmp_path / "rle.dcm")
    assert enc.file_meta.TransferSyntaxUID == RLE
    subprocess.run(["dcmdrle", str(tmp_path / "rle.dcm"), str(tmp_path / "back.dcm")], check=True,
                   timeout=TIMEOUT)
    assert frames_bytes(tmp_path / "back.dcm") == native_frames(px)
    # every frame found through the Basic Offset Table (pydicom follows it)
    n = px.shape[0]
    got = list(generate_pixel_data_frame(enc.PixelData, n))
    assert len(got) == n
    if n > 1:
        import struct
        bot_len = struct.unpack("<I", enc.PixelData[4:8])[0]
        assert bot_len == 4 * n
    assert np.array_equal(enc.pixel_array.reshape(px.shape), px)


def test_rle_smaller_than_native(tmp_path):
    """Flat areas become replicate runs: a blocky 12-bit image shrinks to a fraction, no
    larger than dcmcrle makes it."""
    y, x = np.mgrid[0:256, 0:256]
    px = ((x // 20) * 100 + (y // 20) * 7).astype(np.uint16)[None, :, :, None]
    write(tmp_path / "in.dcm", px, 16, 12)
    r = convert(tmp_path / "in.dcm", tmp_path / "rle.dcm", "rle")
    assert r.returncode == 0, r.describe()
    subprocess.run(["dcmcrle", str(tmp_path / "in.dcm"), str(tmp_path / "dcmtk.dcm")],
                   check=True, timeout=TIMEOUT)
    ours = len(pydicom.dcmread(tmp_path / "rle.dcm").PixelData)
    theirs = len(pydicom.dcmread(tmp_path / "dcmtk.dcm").PixelData)
    assert ours < 256 * 256 * 2 / 10 and ours <= theirs


@pytest.mark.parametrize("case", ["u8", "u8_odd", "u16_12", "s16", "rgb8_3f", "rgb16"])
def test_jpeg_ls_encode(tmp_path, case):
    kw = dict(CASES[case])
    bits, stored, signed = kw["bits"], kw.get("stored"), kw.get("signed", False)
    px = image(**kw)
    write(tmp_path / "in.dcm", px, bits, stored, signed)
    r = convert(tmp_path / "in.dcm", tmp_path / "jls.dcm", "jpeg-ls")
    assert r.returncode == 0, r.describe()
    assert pydicom.dcmread(tmp_path / "jls.dcm").file_meta.TransferSyntaxUID == JLS
    subprocess.run(["dcmdjpls", str(tmp_path / "jls.dcm"), str(tmp_path / "back.dcm")],
                   check=True, timeout=TIMEOUT)
    mask = (1 << (stored or bits)) - 1
    want = [np.frombuffer(f, dtype=px.dtype.newbyteorder("<")).astype(np.int64) & mask
            for f in native_frames(px)]
    got = [np.frombuffer(f, dtype=px.dtype.newbyteorder("<")).astype(np.int64) & mask
           for f in frames_bytes(tmp_path / "back.dcm")]
    assert all(np.array_equal(a, b) for a, b in zip(want, got)) and len(got) == len(want)
    assert "LossyImageCompression" not in pydicom.dcmread(tmp_path / "jls.dcm")

    # near-lossless: every sample within the bound, and flagged
    r = convert(tmp_path / "in.dcm", tmp_path / "near.dcm", "jpeg-ls-near", "--near", "3")
    assert r.returncode == 0, r.describe()
    near = pydicom.dcmread(tmp_path / "near.dcm")
    assert near.file_meta.TransferSyntaxUID == JLS_NEAR
    assert near.LossyImageCompression == "01"
    assert "ISO_14495_1" in list(np.atleast_1d(near.LossyImageCompressionMethod))
    subprocess.run(["dcmdjpls", str(tmp_path / "near.dcm"), str(tmp_path / "nb.dcm")],
                   check=True, timeout=TIMEOUT)
    got = [np.frombuffer(f, dtype=px.dtype.newbyteorder("<")).astype(np.int64) & mask
           for f in frames_bytes(tmp_path / "nb.dcm")]
    for a, b in zip(want, got):
        if signed:
            half = 1 << ((stored or bits) - 1)
            a, b = (a + half) & mask, (b + half) & mask
        assert np.abs(a - b).max() <= 3


def decodable_files():
    out = []
    for name in sorted(os.listdir(FILES)):
        if not name.endswith(".dcm"):
            continue
        try:
            ds = pydicom.dcmread(os.path.join(FILES, name), stop_before_pixels=True)
            ts = str(ds.file_meta.TransferSyntaxUID)
        except Exception:
            continue
        if "Rows" not in ds:
            continue
        if ts == RLE or ts.startswith("1.2.840.10008.1.2.4.") and ts.split(".")[-1] in (
                "50", "51", "57", "70", "80", "81", "90", "91"):
            out.append(name)
    return out


@pytest.mark.parametrize("name", decodable_files())
def test_decode_to_native(tmp_path, name):
    src = os.path.join(FILES, name)
    r = convert(src, tmp_path / "out.dcm", "explicit")
    if r.returncode != 0:
        # what the decoder refuses (12-bit JPEG, a damaged stream; test_codecs says which)
        # fails the same way here, with its reason, and writes nothing
        p = run(["pixels", src, "-o", str(tmp_path / "x.raw")])
        assert r.returncode == 1 and p.returncode == 1, r.describe()
        assert r.stderr.split(": ")[-1] == p.stderr.split(": ")[-1]
        assert not os.path.exists(tmp_path / "out.dcm")
        return
    out = pydicom.dcmread(tmp_path / "out.dcm")
    inp = pydicom.dcmread(src, stop_before_pixels=True)
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    n = int(getattr(out, "NumberOfFrames", 1) or 1)
    frames = frames_bytes(tmp_path / "out.dcm")
    mask = (1 << out.BitsStored) - 1
    for i in range(n):
        p = run(["pixels", src, "--frame", str(i), "-o", str(tmp_path / "f.raw")])
        assert p.returncode == 0, p.describe()
        assert "photometric=%s " % out.PhotometricInterpretation in p.text
        dt = {8: np.uint8, 16: np.uint16, 32: np.uint32}[out.BitsAllocated]
        a = np.fromfile(tmp_path / "f.raw", dtype=dt).astype(np.int64) & mask
        b = np.frombuffer(frames[i], dtype=dt).astype(np.int64) & mask
        assert np.array_equal(a, b)
    if out.SamplesPerPixel > 1:
        assert out.PlanarConfiguration == 0
    ts = str(inp.file_meta.TransferSyntaxUID)
    if ts.split(".")[-1] in ("50", "51", "81", "91"):
        assert out.LossyImageCompression == "01"
    assert "ExtendedOffsetTable" not in out


def test_errors(tmp_path):
    px = image(8, 8)
    write(tmp_path / "in.dcm", px, 8)
    r = convert(tmp_path / "in.dcm", tmp_path / "o.dcm", "1.2.840.10008.1.2.4.50")
    assert r.returncode == 1 and "cannot encode in JPEG Baseline" in r.stderr, r.describe()
    r = convert(tmp_path / "in.dcm", tmp_path / "o.dcm", "jpeg-ls-near")
    assert r.returncode == 1 and "error bound" in r.stderr, r.describe()
    r = run(["convert", "--ts", "jpeg-ls-near", "--near", "0", str(tmp_path / "in.dcm"),
             str(tmp_path / "o.dcm")])
    assert r.returncode == 2
    assert not os.path.exists(tmp_path / "o.dcm")
    # a damaged RLE frame: the segment count no longer matches the geometry
    r = convert(tmp_path / "in.dcm", tmp_path / "rle.dcm", "rle")
    assert r.returncode == 0, r.describe()
    ds = pydicom.dcmread(tmp_path / "rle.dcm")
    data = bytearray(ds.PixelData)
    data[16] = 9  # after the empty table item and the fragment item: the segment count
    ds.PixelData = bytes(data)
    ds.save_as(tmp_path / "bad.dcm")
    r = convert(tmp_path / "bad.dcm", tmp_path / "o.dcm", "explicit")
    assert r.returncode == 1 and "RLE" in r.stderr, r.describe()
    assert not os.path.exists(tmp_path / "o.dcm")
