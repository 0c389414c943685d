# SPDX-License-Identifier: MIT
"""Lossless compression at rest (`[server] compression = rle | jpeg-ls`).

* test_stored_compressed: native images sent by storescu are stored in the configured
  syntax (the archived file says so, and dcmtk decodes it to the pixels that were sent); a
  non-image object (no Pixel Data) and an already compressed one are stored as received;
  noise that would not shrink is kept native.
* test_retrieved_as_sent: getscu asking only for uncompressed syntaxes gets the images
  decoded, pixel for pixel and attribute for attribute what storescu sent.
* test_same_object_again: the same object sent again is recognised as identical (the
  compressed bytes are the same), not as a duplicate with other content.
* test_bad_value: an unknown value is refused at start with the key named.
"""
import glob
import os
import subprocess

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from conftest import PYDICOM_DATA, TIMEOUT, run
from server_util import dcmtk, server  # noqa: F401  (fixture)

DX = "1.2.840.10008.5.1.4.1.1.1.1"
SR = "1.2.840.10008.5.1.4.1.1.88.11"


def write(path, kind="smooth", study="2.25.7", uid=None):
    ds = Dataset()
    ds.SOPClassUID = DX if kind != "sr" else SR
    ds.SOPInstanceUID = uid or generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, study + ".1"
    ds.PatientName, ds.PatientID, ds.Modality = "Owner^Rex", "C1", "DX"
    ds.StudyDate = "20261128"
    if kind != "sr":
        y, x = np.mgrid[0:200, 0:300]
        if kind == "smooth":
            px = (1000 + 10 * (x // 7) + 3 * (y // 5)).astype(np.uint16)
        else:
            px = np.random.default_rng(3).integers(0, 65535, size=(200, 300), dtype=np.uint16)
        ds.Rows, ds.Columns, ds.SamplesPerPixel = 200, 300, 1
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
        ds.PixelRepresentation = 0
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelData = px.tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)
    return ds


def stored(srv):
    """SOP Instance UID -> (transfer syntax, path) of every archived file."""
    out = {}
    for f in glob.glob(os.path.join(srv.data, "**", "*.dcm"), recursive=True):
        ds = pydicom.dcmread(f)
        out[str(ds.SOPInstanceUID)] = (str(ds.file_meta.TransferSyntaxUID), f)
    return out


def send(srv, *files):
    r = dcmtk("storescu", "-aec", srv.aet, "127.0.0.1", str(srv.port), *files)
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("method,uid,tool", [("jpeg-ls", "1.2.840.10008.1.2.4.80", "dcmdjpls"),
                                             ("rle", "1.2.840.10008.1.2.5", "dcmdrle")])
def test_stored_compressed(server, tmp_path, method, uid, tool):  # noqa: F811
    srv = server(config="[server]\ncompression = %s\n" % method)
    img = write(tmp_path / "img.dcm")
    noise = write(tmp_path / "noise.dcm", kind="noise")
    sr = write(tmp_path / "sr.dcm", kind="sr")
    rle_in = os.path.join(PYDICOM_DATA, "test_files", "MR_small_RLE.dcm")
    send(srv, str(tmp_path / "img.dcm"), str(tmp_path / "noise.dcm"), str(tmp_path / "sr.dcm"))
    r = run(["send", "--call", srv.aet, "127.0.0.1", str(srv.port), rle_in])
    assert r.returncode == 0, r.describe()
    got = stored(srv)
    assert got[str(img.SOPInstanceUID)][0] == uid
    assert got[str(noise.SOPInstanceUID)][0] == ExplicitVRLittleEndian  # would not shrink
    assert got[str(sr.SOPInstanceUID)][0] == ExplicitVRLittleEndian
    mr = pydicom.dcmread(rle_in)
    assert got[str(mr.SOPInstanceUID)][0] == "1.2.840.10008.1.2.5"
    path = got[str(img.SOPInstanceUID)][1]
    assert os.path.getsize(path) < os.path.getsize(tmp_path / "img.dcm") / 2
    subprocess.run([tool, path, str(tmp_path / "back.dcm")], check=True, timeout=TIMEOUT)
    back = pydicom.dcmread(tmp_path / "back.dcm")
    assert back.PixelData == img.PixelData
    assert "LossyImageCompression" not in back
    assert srv.wait_log(r"compression %s" % method)


def test_retrieved_as_sent(server, tmp_path):  # noqa: F811
    srv = server(config="[server]\ncompression = jpeg-ls\n")
    imgs = [write(tmp_path / ("i%d.dcm" % i)) for i in range(3)]
    send(srv, *[str(tmp_path / ("i%d.dcm" % i)) for i in range(3)])
    assert all(v[0] == "1.2.840.10008.1.2.4.80" for v in stored(srv).values())
    out = tmp_path / "get"
    out.mkdir()
    # getscu proposes only the uncompressed syntaxes by default
    r = dcmtk("getscu", "-aec", srv.aet, "-S", "-od", str(out), "-k",
              "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID=2.25.7", "127.0.0.1",
              str(srv.port), timeout=60)
    assert r.returncode == 0, r.stderr
    got = {str(d.SOPInstanceUID): d for d in map(pydicom.dcmread, glob.glob(str(out / "*")))}
    assert set(got) == {str(i.SOPInstanceUID) for i in imgs}
    for i in imgs:
        g = got[str(i.SOPInstanceUID)]
        assert g.file_meta.TransferSyntaxUID in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")
        assert g.PixelData == i.PixelData
        for kw in ("PatientName", "PatientID", "StudyDate", "Rows", "Columns", "BitsStored",
                   "PhotometricInterpretation"):
            assert g.get(kw) == i.get(kw)


def test_same_object_again(server, tmp_path):  # noqa: F811
    srv = server(config="[server]\ncompression = jpeg-ls\n[dicom]\nduplicates = reject\n")
    write(tmp_path / "img.dcm")
    send(srv, str(tmp_path / "img.dcm"))
    r = dcmtk("storescu", "-aec", srv.aet, "127.0.0.1", str(srv.port), str(tmp_path / "img.dcm"))
    assert r.returncode == 0 and "0x0111" not in r.stderr, r.stderr
    assert len(stored(srv)) == 1
    assert srv.wait_log(r"STORESCU -> VETPACS: 1 stored", count=2), srv.log
    assert "duplicate SOP Instance" not in srv.log


def test_bad_value(tmp_path):
    conf = tmp_path / "v.conf"
    conf.write_text("[server]\ncompression = zip\n")
    r = run(["serve", "--config", str(conf), "--data", str(tmp_path / "d"), "--dicom-port", "0"])
    assert r.returncode == 2, r.describe()
    assert "compression" in r.stderr and "not none, rle or jpeg-ls" in r.stderr
