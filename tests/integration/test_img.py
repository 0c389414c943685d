# SPDX-License-Identifier: MIT
"""Pixel decoding through `vetpacs pixels`, bit-exact against dcmtk and pydicom.

* test_rle_matches_dcmdrle: every RLE Lossless file pydicom ships, each frame: dcmdrle
  decompresses the file to Explicit VR Little Endian, pydicom reads that reference's Pixel
  Data bytes (made colour-by-pixel when dcmdrle wrote Planar Configuration 1), and vetpacs'
  frame must be the same bytes (PS3.5 Annex G).
* test_native_matches_dcmconv: native files in each native syntax (implicit, explicit, big
  endian, deflated): dcmconv +te rewrites them as Explicit VR Little Endian and pydicom reads
  that reference's Pixel Data bytes; the frame must be the same. For big endian, dcmtk (like
  the vetpacs codec) swaps OW by 16-bit words, so a 32-bit sample keeps its words in little
  endian order; pydicom would reverse all four bytes of rtdose_expb.dcm instead.
* test_native_variants: the dcmdrle references of the colour and 32-bit RLE files rewritten by
  dcmconv in Implicit VR LE, Explicit VR Big Endian and Deflated, and by pydicom as Planar
  Configuration 1 (colour-by-plane): every frame decodes to the reference's bytes.
* test_offset_table_variants: the multi-frame RLE files re-encapsulated by pydicom with a
  Basic Offset Table and several fragments per frame, with an Extended Offset Table, and with
  neither (one fragment per frame): each frame equals dcmdrle's (PS3.5 A.4).
* test_unsupported_syntax: a JPEG file gives exit 1 and "unsupported transfer syntax".
"""
import glob
import os
import subprocess

import numpy as np
import pydicom
import pytest

from conftest import PYDICOM_DATA, TIMEOUT, run

FILES = os.path.join(PYDICOM_DATA, "test_files")
RLE = sorted(set(glob.glob(os.path.join(FILES, "*rle*.dcm")) +
                 glob.glob(os.path.join(FILES, "*RLE*.dcm"))))
NATIVE = ["MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm",
          "CT_small.dcm", "image_dfl.dcm", "rtdose_expb.dcm",
          "SC_rgb.dcm", "SC_rgb_16bit.dcm", "SC_rgb_32bit.dcm", "SC_rgb_expb.dcm",
          "SC_rgb_expb_16bit.dcm", "SC_rgb_expb_32bit.dcm", "SC_rgb_2frame.dcm",
          "SC_rgb_expb_2frame.dcm", "SC_rgb_small_odd.dcm"]


def frames_of(ds):
    return int(getattr(ds, "NumberOfFrames", 1) or 1)


def reference_frames(ds):
    """Frames of a native little-endian data set as colour-by-pixel bytes."""
    assert ds.is_little_endian
    rows, cols, spp = ds.Rows, ds.Columns, ds.SamplesPerPixel
    nbytes = ds.BitsAllocated // 8
    size = rows * cols * spp * nbytes
    data = ds.PixelData
    out = []
    for i in range(frames_of(ds)):
        fr = np.frombuffer(data[i * size:(i + 1) * size], dtype=np.uint8)
        a = fr.reshape(-1, nbytes)
        if spp > 1 and int(getattr(ds, "PlanarConfiguration", 0)) == 1:
            a = a.reshape(spp, rows * cols, nbytes).transpose(1, 0, 2)
        out.append(np.ascontiguousarray(a).tobytes())
    return out


def decode(path, frame, tmp_path):
    raw = tmp_path / f"f{frame}.raw"
    r = run(["pixels", str(path), "--frame", str(frame), "-o", str(raw)])
    assert r.returncode == 0, r.describe()
    return raw.read_bytes()


@pytest.mark.parametrize("path", RLE, ids=os.path.basename)
def test_rle_matches_dcmdrle(path, tmp_path):
    ref = tmp_path / "ref.dcm"
    subprocess.run(["dcmdrle", path, str(ref)], check=True, timeout=TIMEOUT)
    ds = pydicom.dcmread(str(ref))
    want = reference_frames(ds)
    assert len(want) == frames_of(pydicom.dcmread(path, stop_before_pixels=True))
    for i, w in enumerate(want):
        assert decode(path, i, tmp_path) == w, f"frame {i}"


@pytest.mark.parametrize("name", [n for n in NATIVE if os.path.exists(os.path.join(FILES, n))])
def test_native_matches_dcmconv(name, tmp_path):
    path = os.path.join(FILES, name)
    ref = tmp_path / "ref.dcm"
    subprocess.run(["dcmconv", "+te", path, str(ref)], check=True, timeout=TIMEOUT)
    for i, w in enumerate(reference_frames(pydicom.dcmread(str(ref)))):
        assert decode(path, i, tmp_path) == w, f"frame {i}"


VARIANT_SOURCES = [p for p in RLE if "SC_rgb" in p or "rtdose" in p]


@pytest.mark.parametrize("path", VARIANT_SOURCES, ids=os.path.basename)
def test_native_variants(path, tmp_path):
    ref = tmp_path / "ref.dcm"
    subprocess.run(["dcmdrle", path, str(ref)], check=True, timeout=TIMEOUT)
    ds = pydicom.dcmread(str(ref))
    want = reference_frames(ds)
    variants = []
    for opt in ["+ti", "+tb", "+td"]:
        out = tmp_path / f"v{opt[1:]}.dcm"
        subprocess.run(["dcmconv", opt, str(ref), str(out)], check=True, timeout=TIMEOUT)
        variants.append(out)
    if ds.SamplesPerPixel == 3:
        rows, cols, nbytes = ds.Rows, ds.Columns, ds.BitsAllocated // 8
        planar = b"".join(
            np.frombuffer(w, dtype=np.uint8).reshape(rows * cols, 3, nbytes)
            .transpose(1, 0, 2).tobytes() for w in want)
        ds.PlanarConfiguration = 1
        ds.PixelData = planar
        out = tmp_path / "planar.dcm"
        ds.save_as(str(out))
        variants.append(out)
    for v in variants:
        for i, w in enumerate(want):
            assert decode(v, i, tmp_path) == w, f"{v.name} frame {i}"


@pytest.mark.parametrize("path", [p for p in RLE if "2frame" in p or "rtdose_rle.dcm" in p],
                         ids=os.path.basename)
def test_offset_table_variants(path, tmp_path):
    from pydicom.encaps import encapsulate, encapsulate_extended, generate_pixel_data_frame
    ref = tmp_path / "ref.dcm"
    subprocess.run(["dcmdrle", path, str(ref)], check=True, timeout=TIMEOUT)
    want = reference_frames(pydicom.dcmread(str(ref)))
    ds = pydicom.dcmread(path)
    frames = list(generate_pixel_data_frame(ds.PixelData, len(want)))
    variants = {"bot3": encapsulate(frames, fragments_per_frame=3, has_bot=True),
                "nobot": encapsulate(frames, has_bot=False),
                "eot": encapsulate_extended(frames)}
    for name, value in variants.items():
        ds = pydicom.dcmread(path)
        if name == "eot":
            ds.PixelData, ds.ExtendedOffsetTable, ds.ExtendedOffsetTableLengths = value
        else:
            ds.PixelData = value
        out = tmp_path / f"{name}.dcm"
        ds.save_as(str(out))
        for i, w in enumerate(want):
            assert decode(out, i, tmp_path) == w, f"{name} frame {i}"


def test_frame_out_of_range(tmp_path):
    r = run(["pixels", os.path.join(FILES, "SC_rgb_rle_2frame.dcm"), "--frame", "2", "-o",
             str(tmp_path / "x.raw")])
    assert r.returncode == 1 and "out of range" in r.stderr


def test_unsupported_syntax(tmp_path):
    ds = pydicom.dcmread(os.path.join(FILES, "SC_rgb_jpeg_dcmtk.dcm"))
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # video: not an image codec
    ds.save_as(tmp_path / "mpeg2.dcm")
    r = run(["pixels", str(tmp_path / "mpeg2.dcm"), "-o", str(tmp_path / "x")])
    assert r.returncode == 1
    assert "unsupported transfer syntax: MPEG2 Main Profile / Main Level" in r.stderr


@pytest.mark.parametrize("name", ["liver_1frame.dcm", "liver_expb_1frame.dcm"])
def test_bits_allocated_1(tmp_path, name):
    """Bit-packed frames come out one byte per pixel, as pydicom unpacks them."""
    r = run(["pixels", os.path.join(FILES, name), "-o", str(tmp_path / "x")])
    assert r.returncode == 0, r.describe()
    assert "bits_allocated=8 bits_stored=1" in r.text
    want = pydicom.dcmread(os.path.join(FILES, name)).pixel_array.astype(np.uint8)
    got = np.fromfile(tmp_path / "x", dtype=np.uint8)
    assert want.sum() > 1000 and np.array_equal(want.ravel(), got)


def test_ybr_full_422_native(tmp_path):
    """Native YBR_FULL_422 is expanded to YBR_FULL, as pydicom does."""
    name = os.path.join(FILES, "SC_ybr_full_422_uncompressed.dcm")
    r = run(["pixels", name, "-o", str(tmp_path / "x")])
    assert r.returncode == 0, r.describe()
    assert "photometric=YBR_FULL " in r.text
    want = pydicom.dcmread(name).pixel_array
    assert np.array_equal(want.ravel(), np.fromfile(tmp_path / "x", dtype=np.uint8))
