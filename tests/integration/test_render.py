# SPDX-License-Identifier: MIT
"""`vetpacs render` (src/img/render.c): frames to PNG / JPEG through the PS3.3 C.11 grayscale
pipeline and the C.7.6.3.1.2 colour conversions, compared with dcmtk's dcmj2pnm.

Every comparison decodes our PNG with the small pure-Python reader below (zlib + the five
PNG filters) and reads dcmj2pnm's binary PGM/PPM; pixels must agree within +-1.

* test_pydicom_files: pydicom's native and RLE files (and the JPEG ones whose decoder is
  present) with dcmj2pnm's min-max window (+Wm) against --minmax, colour files as they are.
* test_default_window: without options the file's first window (MR_small: dcmj2pnm +Wi 1),
  or min-max when it has none (CT_small: +Wm).
* test_generated: objects made here with pydicom: Rescale Slope/Intercept, multi-valued
  windows (--voi N = +Wi N+1), an explicit window (+Ww), VOI LUT Sequence (--voi-lut N =
  +Wl N+1), Modality LUT Sequence, VOI LUT Function LINEAR_EXACT (checked against the PS3.3
  C.11.2.1.3.2 formula) and SIGMOID (+Wfs), Presentation LUT Shape INVERSE, MONOCHROME1,
  signed 16-bit, Bits Stored 12 with junk in the upper bits (unsigned and signed), 8-bit,
  the no-VOI range (--no-voi = dcmj2pnm's default), Enhanced-style functional groups.
* test_palette: PALETTE COLOR with 8- and 16-bit LUT entries and a non-zero first value
  mapped, and a Segmented Palette Color LUT built here (discrete, linear and indirect
  segments) against the same palette written out in full (dcmj2pnm does not expand
  segmented LUTs).
* test_depth16: --depth 16 writes the window's output over 0..65535 (compared with the 8-bit
  rendering scaled, and with dcmj2pnm +on2 within 2 of 65535).
* test_scaled: --size / --width / --height give the expected dimensions; a gradient and a
  uniform image scaled down equal the exact area average within +-1; upscaling is bilinear.
* test_jpeg: JPEG output is a baseline JFIF with SOF0 of the right size and components, which
  dcmtk decodes (img2dcm + dcmj2pnm).
* test_hostile: bad palette descriptors, missing LUT data, hostile segments, window width 0
  or negative, a VOI index out of range, a huge --size, a frame out of range, a bad output
  extension: a clear error and exit 1 (file) or 2 (usage), never a crash.
"""
import os
import struct
import subprocess
import zlib

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from conftest import PYDICOM_DATA, TIMEOUT, run

FILES = os.path.join(PYDICOM_DATA, "test_files")


# ---------------------------------------------------------------------------------------------
# Image readers

def read_png(path):
    """A non-interlaced 8/16-bit gray or RGB PNG as a numpy array (16-bit as uint16)."""
    d = open(path, "rb").read()
    assert d[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    i, idat, ihdr = 8, b"", None
    while i < len(d):
        n, = struct.unpack(">I", d[i:i + 4])
        t, body = d[i + 4:i + 8], d[i + 8:i + 8 + n]
        assert zlib.crc32(t + body) == struct.unpack(">I", d[i + 8 + n:i + 12 + n])[0]
        if t == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif t == b"IDAT":
            idat += body
        i += 12 + n
    w, h, bd, ct, _, _, interlace = ihdr
    assert interlace == 0 and ct in (0, 2) and bd in (8, 16)
    ch = 3 if ct == 2 else 1
    bpp = ch * bd // 8
    stride = w * bpp
    raw = np.frombuffer(zlib.decompress(idat), dtype=np.uint8).reshape(h, stride + 1)
    out = np.zeros((h, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(h):
        f, line = raw[y, 0], raw[y, 1:].astype(np.int32)
        if f == 0:
            cur = line
        elif f == 2:
            cur = (line + prev) & 255
        else:
            cur = line.copy()
            for x in range(stride):
                a = int(cur[x - bpp]) if x >= bpp else 0
                b = int(prev[x])
                c = int(prev[x - bpp]) if x >= bpp else 0
                if f == 1:
                    p = a
                elif f == 3:
                    p = (a + b) // 2
                else:
                    pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                cur[x] = (cur[x] + p) & 255
        out[y] = cur
        prev = cur
    arr = out.view(">u2").astype(np.uint16) if bd == 16 else out
    return arr.reshape(h, w, ch) if ch == 3 else arr.reshape(h, w)


def read_pnm(path):
    """A binary PGM (P5) or PPM (P6) as a numpy array."""
    d = open(path, "rb").read()
    toks, i = [], 0
    while len(toks) < 4:
        while d[i:i + 1].isspace():
            i += 1
        if d[i:i + 1] == b"#":
            while d[i:i + 1] != b"\n":
                i += 1
            continue
        j = i
        while not d[j:j + 1].isspace():
            j += 1
        toks.append(d[i:j])
        i = j
    i += 1
    w, h, mx = int(toks[1]), int(toks[2]), int(toks[3])
    ch = 3 if toks[0] == b"P6" else 1
    dt = np.dtype(">u2") if mx > 255 else np.dtype(np.uint8)
    arr = np.frombuffer(d[i:i + w * h * ch * dt.itemsize], dtype=dt).astype(
        np.uint16 if mx > 255 else np.uint8)
    return arr.reshape(h, w, ch) if ch == 3 else arr.reshape(h, w)


# ---------------------------------------------------------------------------------------------
# Helpers

def render(path, tmp_path, *opts, out="out.png"):
    o = tmp_path / out
    r = run(["render", str(path)] + [str(x) for x in opts] + ["-o", str(o)])
    assert r.returncode == 0, r.describe()
    return read_png(o) if out.endswith(".png") else o.read_bytes()


def dcmj2pnm(path, tmp_path, *opts):
    o = tmp_path / "ref.pnm"
    subprocess.run(["dcmj2pnm", "-q"] + [str(x) for x in opts] + [str(path), str(o)],
                   check=True, timeout=TIMEOUT)
    return read_pnm(o)


def assert_close(got, want, tol=1):
    assert got.shape == want.shape, (got.shape, want.shape)
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    assert diff.max() <= tol, "max diff %d at %s (got %s, want %s)" % (
        diff.max(), np.unravel_index(diff.argmax(), diff.shape), got.flat[diff.argmax()],
        want.flat[diff.argmax()])


def mono_ds(pixels, bits_stored=None, signed=False, photometric="MONOCHROME2", **attrs):
    """A Secondary Capture data set around a 2-D array of stored values (uint8/16, int16)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.Modality = "OT"
    rows, cols = pixels.shape[:2]
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1 if pixels.ndim == 2 else 3
    ds.PhotometricInterpretation = photometric
    ba = pixels.dtype.itemsize * 8
    ds.BitsAllocated = ba
    ds.BitsStored = bits_stored or ba
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0
    if pixels.ndim == 3:
        ds.PlanarConfiguration = 0
    for k, v in attrs.items():
        setattr(ds, k, v)
    ds.PixelData = np.ascontiguousarray(pixels).astype(pixels.dtype.newbyteorder("<")).tobytes()
    ds["PixelData"].VR = "OB" if ba == 8 else "OW"
    return ds


def save(ds, tmp_path, name="in.dcm"):
    p = tmp_path / name
    ds.save_as(str(p), write_like_original=False)
    return p


def gradient(rows, cols, lo, hi, dtype):
    y, x = np.mgrid[0:rows, 0:cols]
    v = lo + (hi - lo) * (x * rows + y) / float(rows * cols - 1)
    return np.round(v).astype(dtype)


def lut_item(descriptor, data, vr="US"):
    it = Dataset()
    it.LUTDescriptor = list(descriptor)
    it["LUTDescriptor"].VR = "US"
    it.add_new(0x00283006, vr, list(data) if vr == "US" else
               np.asarray(data, dtype="<u2").tobytes())
    return it


def pal_ds(px, entries, first, bits, segmented=None):
    """PALETTE COLOR around px with red rising, green falling and blue striped LUTs of
    `entries` (0 = 65536) entries of `bits` bits; or the given segmented data for all three."""
    ds = mono_ds(px, photometric="PALETTE COLOR")
    n = entries or 65536
    i = np.arange(n)
    mx = (1 << bits) - 1
    chans = (i * mx // max(n - 1, 1), mx - i * mx // max(n - 1, 1), (i * 7) % (mx + 1))
    for k in range(3):
        ds.add_new(0x00281101 + k, "US", [entries, first, bits])
        if segmented is not None:
            ds.add_new(0x00281221 + k, "OW", np.asarray(segmented, "<u2").tobytes())
            continue
        data = (np.asarray(chans[k], np.uint8).tobytes() if bits == 8
                else np.asarray(chans[k], "<u2").tobytes())
        ds.add_new(0x00281201 + k, "OW", data + (b"\0" if len(data) % 2 else b""))
    return ds


# ---------------------------------------------------------------------------------------------
# Against dcmj2pnm

PYDICOM_CASES = ["MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "CT_small.dcm",
                 "image_dfl.dcm", "rtdose_1frame.dcm", "SC_rgb_rle.dcm", "SC_rgb_rle_16bit.dcm",
                 "SC_rgb_rle_32bit.dcm", "SC_rgb_small_odd.dcm",
                 "SC_ybr_full_422_uncompressed.dcm", "SC_rgb_dcmtk_+eb+cy+np.dcm",
                 "SC_rgb_dcmtk_+eb+cy+n1.dcm", "SC_rgb_jpeg_dcmtk.dcm", "JPEG-lossy.dcm",
                 "MR_small_jpeg_ls_lossless.dcm", "emri_small_jpeg_2k_lossless.dcm"]


@pytest.mark.parametrize("name", [n for n in PYDICOM_CASES if os.path.exists(os.path.join(FILES, n))])
def test_pydicom_files(name, tmp_path):
    path = os.path.join(FILES, name)
    probe = run(["pixels", path, "-o", str(tmp_path / "probe.raw")])
    if probe.returncode != 0 and "unsupported" in probe.stderr:
        pytest.skip("no decoder yet: " + probe.stderr.strip())
    got = render(path, tmp_path, "--minmax")
    # dcmj2pnm reads neither JPEG-LS nor JPEG 2000: decompress those first.
    ts = str(pydicom.dcmread(path, stop_before_pixels=True).file_meta.TransferSyntaxUID)
    ref = path
    if ts.startswith("1.2.840.10008.1.2.4.8"):
        ref = str(tmp_path / "ref.dcm")
        subprocess.run(["dcmdjpls", path, ref], check=True, timeout=TIMEOUT)
    elif ts.startswith("1.2.840.10008.1.2.4.9") or ts.startswith("1.2.840.10008.1.2.4.20"):
        ref = str(tmp_path / "ref.dcm")
        subprocess.run(["gdcmconv", "--raw", path, ref], check=True, timeout=TIMEOUT)
    want = dcmj2pnm(ref, tmp_path, "+Wm")
    # Lossy JPEG: two IDCTs may differ by a level or two.
    assert_close(got, want, tol=2 if "JPEG" in name or "jpeg" in name else 1)


@pytest.mark.parametrize("name,theirs", [("MR_small.dcm", ["+Wi", 1]),
                                         ("CT_small.dcm", ["+Wm"])])
def test_default_window(name, theirs, tmp_path):
    """No options: the file's first window, or min-max when it has none (CT_small)."""
    path = os.path.join(FILES, name)
    assert_close(render(path, tmp_path), dcmj2pnm(path, tmp_path, *theirs))


PX12 = gradient(48, 64, 0, 4095, np.uint16)
SIGNED = gradient(48, 64, -2000, 2000, np.int16)


def _voi_lut_ds():
    ds = mono_ds(PX12, 12)
    sq = (np.sqrt(np.arange(4096) / 4095.0) * 65535).astype(int)
    ds.VOILUTSequence = Sequence([lut_item([4096, 0, 16], sq),
                                  lut_item([4096, 0, 8], np.arange(4096) // 16)])
    return ds


def _modality_lut_ds(**attrs):
    ds = mono_ds(PX12, 12, **attrs)
    ds.ModalityLUTSequence = Sequence([lut_item([4096, 0, 12], 4095 - np.arange(4096))])
    ds.ModalityLUTSequence[0].ModalityLUTType = "US"
    return ds


GENERATED = {
    "rescale_window2": (lambda: mono_ds(PX12, 12, RescaleSlope=2, RescaleIntercept=-1024,
                                        WindowCenter=[40, 1000], WindowWidth=[400, 3000]),
                        ["--voi", 1], ["+Wi", 2]),
    "rescale_window1": (lambda: mono_ds(PX12, 12, RescaleSlope=2, RescaleIntercept=-1024,
                                        WindowCenter=[40, 1000], WindowWidth=[400, 3000]),
                        [], ["+Wi", 1]),
    "explicit_window": (lambda: mono_ds(PX12, 12, RescaleSlope=2, RescaleIntercept=-1024),
                        ["--window", "500,2000"], ["+Ww", 500, 2000]),
    "voi_lut_16": (_voi_lut_ds, ["--voi-lut", 0], ["+Wl", 1]),
    "voi_lut_8": (_voi_lut_ds, ["--voi-lut", 1], ["+Wl", 2]),
    "voi_lut_default": (_voi_lut_ds, [], ["+Wl", 1]),
    "modality_lut_minmax": (_modality_lut_ds, ["--minmax"], ["+Wm"]),
    "modality_lut_window": (lambda: _modality_lut_ds(WindowCenter=1000, WindowWidth=1000), [],
                            ["+Wi", 1]),
    "sigmoid_file": (lambda: mono_ds(PX12, 12, WindowCenter=2000, WindowWidth=1000,
                                     VOILUTFunction="SIGMOID"), [], ["+Wi", 1]),
    "sigmoid_option": (lambda: mono_ds(PX12, 12, WindowCenter=2000, WindowWidth=1000),
                       ["--function", "sigmoid"], ["+Wi", 1, "+Wfs"]),
    "inverse": (lambda: mono_ds(PX12, 12, PresentationLUTShape="INVERSE"), ["--minmax"],
                ["+Wm"]),
    "monochrome1": (lambda: mono_ds(PX12, 12, photometric="MONOCHROME1"), ["--minmax"], ["+Wm"]),
    "monochrome1_inverse": (lambda: mono_ds(PX12, 12, photometric="MONOCHROME1",
                                            PresentationLUTShape="INVERSE"), ["--minmax"],
                            ["+Wm"]),
    "monochrome1_window": (lambda: mono_ds(PX12, 12, photometric="MONOCHROME1",
                                           WindowCenter=1500, WindowWidth=2000), [], ["+Wi", 1]),
    "signed16": (lambda: mono_ds(SIGNED, 16, signed=True), ["--minmax"], ["+Wm"]),
    "signed16_window": (lambda: mono_ds(SIGNED, 16, signed=True, WindowCenter=0,
                                        WindowWidth=1000), [], ["+Wi", 1]),
    "bits12_junk": (lambda: mono_ds(PX12 | 0xF000, 12), ["--minmax"], ["+Wm"]),
    "bits12_signed_junk": (lambda: mono_ds(((SIGNED.astype(np.int32) & 0xFFF) | 0x5000)
                                           .astype(np.uint16), 12, signed=True),
                           ["--minmax"], ["+Wm"]),
    "mono8": (lambda: mono_ds(gradient(48, 64, 0, 255, np.uint8), WindowCenter=100,
                              WindowWidth=50), [], ["+Wi", 1]),
    "no_voi": (lambda: mono_ds(PX12, 12), ["--no-voi"], []),
    "palette8": (lambda: pal_ds(gradient(48, 64, 0, 255, np.uint8), 256, 0, 8), [], []),
    "palette16_first": (lambda: pal_ds(gradient(48, 64, 0, 255, np.uint8), 200, 30, 16), [],
                        []),
    "palette_65536": (lambda: pal_ds(gradient(48, 64, 0, 65535, np.uint16), 0, 0, 16), [], []),
}


@pytest.mark.parametrize("case", sorted(GENERATED))
def test_generated(case, tmp_path):
    make, ours, theirs = GENERATED[case]
    path = save(make(), tmp_path)
    assert_close(render(path, tmp_path, *ours), dcmj2pnm(path, tmp_path, *theirs))


def test_linear_exact(tmp_path):
    """dcmtk 3.6.7 has no LINEAR_EXACT: check the PS3.3 C.11.2.1.3.2 formula directly."""
    c, w = 2000.0, 1000.0
    path = save(mono_ds(PX12, 12, WindowCenter=c, WindowWidth=w,
                        VOILUTFunction="LINEAR_EXACT"), tmp_path)
    x = PX12.astype(np.float64)
    want = np.clip(((x - c) / w + 0.5) * 255, 0, 255)
    assert_close(render(path, tmp_path), np.round(want))


def test_functional_groups(tmp_path):
    """Rescale and window from the Shared / Per-frame Functional Groups (PS3.3 C.7.6.16.2)
    when the top level has none: the same image as with the attributes at the top level."""
    flat = save(mono_ds(PX12, 12, RescaleSlope=2, RescaleIntercept=-1000, WindowCenter=500,
                        WindowWidth=3000), tmp_path, "flat.dcm")
    ds = mono_ds(np.concatenate([PX12, PX12]).reshape(2, 48, 64).reshape(96, 64)[:48], 12)
    ds.NumberOfFrames = 1
    pv = Dataset()
    pv.RescaleSlope, pv.RescaleIntercept = 2, -1000
    fv = Dataset()
    fv.WindowCenter, fv.WindowWidth = 500, 3000
    shared, frame = Dataset(), Dataset()
    shared.PixelValueTransformationSequence = Sequence([pv])
    frame.FrameVOILUTSequence = Sequence([fv])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence([frame])
    fg = save(ds, tmp_path, "fg.dcm")
    assert_close(render(fg, tmp_path), render(flat, tmp_path, out="flat.png"), tol=0)


def segmented_lut():
    """256 entries: discrete 0..3, linear to 200 over 100, indirect copy of segments 0-1,
    linear to 65535 over the rest."""
    seg = [0, 4, 0, 1, 2, 3, 1, 100, 200, 2, 2, 0, 0]
    full = [0, 1, 2, 3] + [int(3 + (200 - 3) * i / 100.0 + 0.5) for i in range(1, 101)]
    full += full[:104]
    rest = 256 - len(full)
    y0 = full[-1]
    full += [int((y0 * (rest - i) + 65535 * i) / rest + 0.5) for i in range(1, rest + 1)]
    seg += [1, rest, 65535]
    return seg, full


def test_palette_segmented(tmp_path):
    seg, full = segmented_lut()
    px = gradient(48, 64, 0, 255, np.uint8)
    ds = mono_ds(px, photometric="PALETTE COLOR")
    for k in range(3):
        ds.add_new(0x00281101 + k, "US", [256, 0, 16])
        ds.add_new(0x00281221 + k, "OW", np.asarray(seg, "<u2").tobytes())
    got = render(save(ds, tmp_path), tmp_path)
    ref = mono_ds(px, photometric="PALETTE COLOR")
    for k in range(3):
        ref.add_new(0x00281101 + k, "US", [256, 0, 16])
        ref.add_new(0x00281201 + k, "OW", np.asarray(full, "<u2").tobytes())
    refp = save(ref, tmp_path, "ref.dcm")
    assert_close(got, dcmj2pnm(refp, tmp_path))
    assert_close(got, render(refp, tmp_path, out="ref.png"), tol=0)


def test_depth16(tmp_path):
    path = save(mono_ds(PX12, 12, WindowCenter=2000, WindowWidth=3000), tmp_path)
    d16 = render(path, tmp_path, "--depth", 16)
    assert d16.dtype == np.uint16 and d16.shape == PX12.shape
    assert d16.max() == 65535 and d16.min() == 0
    d8 = render(path, tmp_path, out="d8.png")
    assert_close(np.round(d16 / 257.0), d8)
    ref = tmp_path / "ref16.png"
    subprocess.run(["dcmj2pnm", "-q", "+Wi", "1", "+on2", "-il", str(path), str(ref)],
                   check=True, timeout=TIMEOUT)
    assert_close(d16, read_png(ref), tol=2)


# ---------------------------------------------------------------------------------------------
# Scaling and JPEG

def test_scaled_dimensions(tmp_path):
    path = save(mono_ds(gradient(50, 80, 0, 4095, np.uint16), 12), tmp_path)
    assert render(path, tmp_path, "--size", 40).shape == (25, 40)
    assert render(path, tmp_path, "--size", 160).shape == (100, 160)
    assert render(path, tmp_path, "--width", 20).shape == (13, 20)
    assert render(path, tmp_path, "--height", 10).shape == (10, 16)
    assert render(path, tmp_path, "--width", 33, "--height", 7).shape == (7, 33)


def area_average(img, dh, dw):
    """Exact box average of img (float) over each output pixel's footprint."""
    sh, sw = img.shape

    def weights(sn, dn):
        m = np.zeros((dn, sn))
        s = sn / dn
        for i in range(dn):
            lo, hi = i * s, (i + 1) * s
            for k in range(int(np.floor(lo)), min(int(np.ceil(hi)), sn)):
                m[i, k] = max(0.0, min(k + 1, hi) - max(k, lo))
            m[i] /= m[i].sum()
        return m
    return weights(sh, dh) @ img @ weights(sw, dw).T


@pytest.mark.parametrize("size", [(7, 10), (20, 31), (3, 2)])
def test_scaled_values(size, tmp_path):
    """8-bit data under an identity window (center 128, width 256): scaled output equals the
    exact area average of the source within +-1, for a gradient and for a uniform image."""
    dh, dw = size
    src = gradient(60, 90, 0, 255, np.uint8)
    path = save(mono_ds(src, WindowCenter=128, WindowWidth=256), tmp_path)
    got = render(path, tmp_path, "--width", dw, "--height", dh)
    assert_close(got, np.round(area_average(src.astype(float), dh, dw)))
    flat = save(mono_ds(np.full((60, 90), 77, np.uint8), WindowCenter=128, WindowWidth=256),
                tmp_path, "flat.dcm")
    assert (render(flat, tmp_path, "--width", dw, "--height", dh, out="f.png") == 77).all()


def test_scaled_16bit_thumbnail(tmp_path):
    """A 12-bit gradient reduced eightfold (averaged before the LUT): within +-1 of the
    area average of the full-size rendering, since the window is linear over it."""
    src = gradient(240, 320, 0, 4095, np.uint16)
    path = save(mono_ds(src, 12, WindowCenter=2048, WindowWidth=4096), tmp_path)
    full = render(path, tmp_path, out="full.png").astype(float)
    got = render(path, tmp_path, "--size", 40)
    assert got.shape == (30, 40)
    assert_close(got, np.round(area_average(full, 30, 40)))


def test_upscaled_bilinear(tmp_path):
    src = np.array([[0, 100], [200, 250]], np.uint8)
    path = save(mono_ds(src, WindowCenter=128, WindowWidth=256), tmp_path)
    got = render(path, tmp_path, "--width", 4, "--height", 4).astype(int)
    # Centres of output pixels 1 and 2 sit a quarter of the way in from the source centres.
    assert got[0, 0] == 0 and got[0, 3] == 100 and got[3, 0] == 200 and got[3, 3] == 250
    assert abs(got[0, 1] - 25) <= 1 and abs(got[1, 1] - (0.75 * 25 + 0.25 * 212.5)) <= 1


def jpeg_sof(data):
    """(marker, height, width, components) of the first SOF, walking the marker segments."""
    assert data[:2] == b"\xff\xd8"
    i = 2
    while i + 4 <= len(data):
        assert data[i] == 0xFF
        m = data[i + 1]
        n = struct.unpack(">H", data[i + 2:i + 4])[0]
        if 0xC0 <= m <= 0xCF and m not in (0xC4, 0xC8, 0xCC):
            p, h, w, c = struct.unpack(">BHHB", data[i + 4:i + 10])
            return m, h, w, c
        i += 2 + n
    raise AssertionError("no SOF")


@pytest.mark.parametrize("name,opts,want", [
    ("CT_small.dcm", ["--size", 100], (100, 100, 1)),
    ("MR_small.dcm", ["--quality", 50, "--fast"], (64, 64, 1)),
    ("SC_rgb_rle.dcm", ["--width", 50], (50, 50, 3)),
])
def test_jpeg(name, opts, want, tmp_path):
    data = render(os.path.join(FILES, name), tmp_path, *opts, out="out.jpg")
    m, h, w, c = jpeg_sof(data)
    assert m == 0xC0 and (h, w, c) == want
    assert data[-2:] == b"\xff\xd9"
    # dcmtk decodes it: wrapped by img2dcm, rendered by dcmj2pnm to the size we wrote.
    (tmp_path / "o.jpg").write_bytes(data)
    subprocess.run(["img2dcm", "-q", str(tmp_path / "o.jpg"), str(tmp_path / "o.dcm")],
                   check=True, timeout=TIMEOUT)
    back = dcmj2pnm(tmp_path / "o.dcm", tmp_path)
    assert back.shape[:2] == (h, w)


# ---------------------------------------------------------------------------------------------
# Hostile input and bad use

def hostile_cases():
    px8 = gradient(8, 8, 0, 255, np.uint8)
    cases = {}
    ds = pal_ds(px8, 256, 0, 16)
    del ds[0x00281202]
    cases["palette_missing_green_data"] = (ds, "LUT Data")
    ds = pal_ds(px8, 256, 0, 16)
    ds[0x00281201].value = ds[0x00281201].value[:100]
    cases["palette_short_data"] = (ds, "(0028,1201)")
    ds = pal_ds(px8, 256, 0, 16)
    ds[0x00281102].value = [255, 0, 16]
    cases["palette_descriptors_differ"] = (ds, "differ")
    ds = pal_ds(px8, 256, 0, 16)
    del ds[0x00281103]
    cases["palette_no_blue_descriptor"] = (ds, "(0028,1103)")
    for name, seg, msg in (("linear_first", [1, 10, 5], "linear"),
                           ("indirect_first", [2, 1, 0, 0], "indirect"),
                           ("indirect_self", [0, 1, 7, 2, 1, 3, 0], "nested"),
                           ("offset_past_end", [0, 1, 7, 2, 1, 900, 0], "past the end"),
                           ("too_many", [0, 2, 1, 2, 1, 400, 9], "more than 256"),
                           ("bad_opcode", [0, 1, 7, 5, 1, 1], "unknown")):
        cases["segment_" + name] = (pal_ds(px8, 256, 0, 16, seg), msg)
    ds = mono_ds(PX12[:8, :8], 12)
    ds.VOILUTSequence = Sequence([lut_item([4096, 0, 16], [1, 2, 3])])
    cases["voi_lut_short"] = (ds, "(0028,3006)")
    ds = mono_ds(PX12[:8, :8], 12)
    ds.ModalityLUTSequence = Sequence([Dataset()])
    ds.ModalityLUTSequence[0].LUTDescriptor = [4096, 0]
    cases["modality_lut_descriptor_2_values"] = (ds, "(0028,3002)")
    return cases


HOSTILE = hostile_cases()


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile(case, tmp_path):
    ds, msg = HOSTILE[case]
    path = save(ds, tmp_path)
    opts = ["--voi-lut", "0"] if "voi_lut" in case else []
    r = run(["render", str(path), *opts, "-o", str(tmp_path / "o.png")])
    assert r.returncode == 1, r.describe()
    assert msg in r.stderr, r.stderr
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("opts,code,msg", [
    (["--window", "40,0"], 2, "positive"),
    (["--window", "40,-5"], 2, "positive"),
    (["--window", "40"], 2, "bad value"),
    (["--size", "100000"], 2, "bad value"),
    (["--width", "30000", "--height", "30000"], 1, "over the limit"),
    (["--frame", "1"], 1, "out of range"),
    (["--voi", "3"], 1, "no window 3"),
    (["--voi-lut", "0"], 1, "no VOI LUT 0"),
    (["--depth", "12"], 2, "bad value"),
    (["--quality", "0"], 2, "bad value"),
    (["--bogus"], 2, "unknown option"),
])
def test_bad_options(opts, code, msg, tmp_path):
    r = run(["render", os.path.join(FILES, "MR_small.dcm"), *opts, "-o",
             str(tmp_path / "o.png")])
    assert r.returncode == code, r.describe()
    assert msg in r.stderr, r.stderr


def test_bad_use(tmp_path):
    mr = os.path.join(FILES, "MR_small.dcm")
    r = run(["render", mr, "-o", str(tmp_path / "o.gif")])
    assert r.returncode == 2 and "must end in" in r.stderr
    r = run(["render", mr, "--depth", "16", "-o", str(tmp_path / "o.jpg")])
    assert r.returncode == 2
    r = run(["render", "-o", str(tmp_path / "o.png")])
    assert r.returncode == 2 and "usage" in r.stderr
    r = run(["render", str(tmp_path / "missing.dcm"), "-o", str(tmp_path / "o.png")])
    assert r.returncode == 1
    notimg = tmp_path / "notimg.dcm"
    ds = mono_ds(PX12[:4, :4], 12)
    del ds.PixelData
    ds.save_as(str(notimg), write_like_original=False)
    r = run(["render", str(notimg), "-o", str(tmp_path / "o.png")])
    assert r.returncode == 1 and "Pixel Data" in r.stderr, r.stderr
    # A window from the file with width 0 is skipped by default (min-max instead)...
    zero = save(mono_ds(PX12, 12, WindowCenter=100, WindowWidth=0), tmp_path, "zero.dcm")
    assert_close(render(zero, tmp_path), dcmj2pnm(zero, tmp_path, "+Wm"))
    # ...and an error when asked for.
    r = run(["render", str(zero), "--voi", "0", "-o", str(tmp_path / "o.png")])
    assert r.returncode == 1 and "width 0" in r.stderr, r.stderr
