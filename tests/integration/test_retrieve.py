# SPDX-License-Identifier: MIT
"""C-MOVE and C-GET (PS3.4 C.4.2, C.4.3) against dcmtk movescu/getscu/storescp and Orthanc,
and the `vetpacs move` / `vetpacs get` clients. The archive holds objects this test writes with
pydicom; what arrives at the destination is compared with them, data set element by element.
Also the C-CANCEL of a C-FIND, C-MOVE and C-GET, failure statuses (unknown destination,
missing unique key, unreachable destination, no storage context) and a request sent while
another is answered."""
import glob
import os
import struct
import subprocess
import time
import warnings

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from conftest import run
from server_util import (A_RELEASE_RQ, RawAssoc, command_set, dcmtk, free_port, p_data_tf, pdv, read_pdu,
                         server, _ui, _us, EXPLICIT_LE)  # noqa: F401  (fixture)
from test_orthanc import ORTHANC, orthanc  # noqa: F401  (fixture)

SC = "1.2.840.10008.5.1.4.1.1.7"
PATIENT_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.1.1"
STUDY_ROOT_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_ROOT_MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
STUDY_ROOT_GET = "1.2.840.10008.5.1.4.1.2.2.3"


def read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


def make(path, patient, study, series, n, modality="DX", rows=16):
    """n Secondary Capture objects of one series; returns their SOP Instance UIDs."""
    uids = []
    for i in range(n):
        ds = Dataset()
        ds.SOPClassUID = SC
        ds.SOPInstanceUID = "%s.%d" % (series, i + 1)
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientID, ds.PatientName = patient, "Owner^Pet%s" % patient
        ds.PatientSpeciesDescription = "Canine"
        ds.StudyDate, ds.Modality, ds.InstanceNumber = "20260101", modality, i + 1
        ds.Rows = ds.Columns = rows
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
        ds.PixelRepresentation, ds.SamplesPerPixel = 0, 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelData = bytes((i + k) & 0xFF for k in range(rows * rows * 2))
        fm = FileMetaDataset()
        fm.TransferSyntaxUID = ExplicitVRLittleEndian
        fm.MediaStorageSOPClassUID, fm.MediaStorageSOPInstanceUID = SC, ds.SOPInstanceUID
        ds.file_meta = fm
        ds.is_little_endian, ds.is_implicit_VR = True, False
        f = os.path.join(path, "%s.dcm" % ds.SOPInstanceUID)
        ds.save_as(f, write_like_original=False)
        uids.append(ds.SOPInstanceUID)
    return uids


ROOT = "1.2.826.0.1.3680043.9.7433.99"
LAYOUT = {  # patient -> study -> series -> count
    "P1": {ROOT + ".1": {ROOT + ".1.1": 3, ROOT + ".1.2": 2}, ROOT + ".2": {ROOT + ".2.1": 2}},
    "P2": {ROOT + ".3": {ROOT + ".3.1": 4}},
}


@pytest.fixture
def archive(server, tmp_path):  # noqa: F811
    """An archive with LAYOUT imported, and a storescp destination known as DEST."""
    src = tmp_path / "src"
    src.mkdir()
    uids = {}
    for p, studies in LAYOUT.items():
        for st, series in studies.items():
            for se, n in series.items():
                uids[(p, st, se)] = make(str(src), p, st, se, n)
    data = str(tmp_path / "data")
    r = run(["import", "--data", data, str(src)])
    assert r.returncode == 0, r.describe()
    dest = StoreSCP(tmp_path / "dest")
    srv = server(data=data, config="[remote dest]\nae_title = DEST\nhost = 127.0.0.1\n"
                                   "port = %d\n" % dest.port)
    yield srv, uids, str(src), dest
    dest.stop()


class StoreSCP:
    """dcmtk storescp writing what it receives into a folder (+xa: every transfer syntax)."""

    def __init__(self, folder, accept_all=True):
        self.folder = str(folder)
        os.makedirs(self.folder, exist_ok=True)
        self.accept_all = accept_all
        self.proc = None
        self.port = free_port()
        self.start()

    def start(self):
        args = ["storescp", "-aet", "DEST", "-od", self.folder]
        if self.accept_all:
            args.append("+xa")
        self.proc = subprocess.Popen(args + [str(self.port)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        for _ in range(100):
            if dcmtk("echoscu", "-aec", "DEST", "127.0.0.1", self.port, timeout=5).returncode == 0:
                return
            time.sleep(0.05)
        pytest.fail("storescp did not start")

    def restart(self, accept_all):
        self.stop()
        self.accept_all = accept_all
        self.start()

    def received(self):
        return {str(read(f).SOPInstanceUID): f for f in glob.glob(self.folder + "/*")}

    def clear(self):
        for f in glob.glob(self.folder + "/*"):
            os.unlink(f)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait()


def same_dataset(a, b):
    """The data sets of two files are equal element by element (group 0002 aside)."""
    da, db = read(a), read(b)
    ka = [e.tag for e in da if e.tag.group != 2]
    kb = [e.tag for e in db if e.tag.group != 2]
    assert ka == kb, (a, b)
    for t in ka:
        assert da[t].value == db[t].value, (t, a, b)


def expected(uids, patient=None, study=None, series=None):
    return {u for (p, st, se), us in uids.items() for u in us
            if (patient is None or p == patient) and (study is None or st == study) and
            (series is None or se == series)}


def movescu(srv, *keys, root="-S", extra=()):
    args = ["-aec", srv.aet, "-aem", "DEST", root] + list(extra)
    for k in keys:
        args += ["-k", k]
    return dcmtk("movescu", *(args + ["127.0.0.1", srv.port]), timeout=60)


@pytest.mark.parametrize("root,keys,select", [
    ("-P", ["QueryRetrieveLevel=PATIENT", "PatientID=P1"], dict(patient="P1")),
    ("-S", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID=%s.1" % ROOT], dict(study=ROOT + ".1")),
    ("-S", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID=%s.1\\%s.3" % (ROOT, ROOT)], None),
    ("-S", ["QueryRetrieveLevel=SERIES", "StudyInstanceUID=%s.1" % ROOT,
            "SeriesInstanceUID=%s.1.2" % ROOT], dict(series=ROOT + ".1.2")),
    ("-P", ["QueryRetrieveLevel=IMAGE", "PatientID=P2", "StudyInstanceUID=%s.3" % ROOT,
            "SeriesInstanceUID=%s.3.1" % ROOT, "SOPInstanceUID=%s.3.1.2\\%s.3.1.4" % (ROOT, ROOT)],
     "images"),
])
def test_movescu_every_level(archive, root, keys, select):
    srv, uids, src, dest = archive
    r = movescu(srv, *keys, root=root)
    assert r.returncode == 0, r.stderr
    if select is None:
        want = expected(uids, study=ROOT + ".1") | expected(uids, study=ROOT + ".3")
    elif select == "images":
        want = {ROOT + ".3.1.2", ROOT + ".3.1.4"}
    else:
        want = expected(uids, **select)
    got = dest.received()
    assert set(got) == want
    for uid, f in got.items():
        same_dataset(f, os.path.join(src, uid + ".dcm"))
    assert srv.wait_log(r"MOVESCU -> VETPACS: .*1 move \(%d sent\)" % len(want))


def test_move_final_response_and_pending_counts(archive):
    srv, uids, src, dest = archive
    r = movescu(srv, "QueryRetrieveLevel=STUDY", "StudyInstanceUID=%s.3" % ROOT, extra=["-d"])
    assert r.returncode == 0, r.stderr
    # four sub-operations: Pending with 3, 2, 1 remaining, then Success without Remaining
    remaining = [l.split(":", 2)[2].strip() for l in r.stderr.splitlines()
                 if "Remaining Suboperations" in l]
    assert remaining == ["3", "2", "1", "none"], r.stderr
    assert "0x0000: Success" in r.stderr


def cli(*args):
    return run(list(args), timeout=60)


def test_move_failures_have_dicom_statuses(archive, tmp_path):
    srv, uids, src, dest = archive
    study = "StudyInstanceUID=%s.1" % ROOT
    # A801: the destination is not in the configuration
    r = cli("move", "--call", "VETPACS", "--dest", "NOWHERE", "127.0.0.1", str(srv.port), study)
    assert r.returncode == 1 and "A801" in r.stderr and "NOWHERE" in r.stderr, r.describe()
    # A900: no unique key of the level (it would select the whole archive)
    r = cli("move", "--call", "VETPACS", "--dest", "DEST", "127.0.0.1", str(srv.port),
            "QueryRetrieveLevel=STUDY", "PatientID=P1")
    assert r.returncode == 1 and "A900" in r.stderr and "0020,000D" in r.stderr, r.describe()
    r = cli("move", "--call", "VETPACS", "--dest", "DEST", "127.0.0.1", str(srv.port),
            "QueryRetrieveLevel=STUDY", "StudyInstanceUID=*")
    assert r.returncode == 1 and "A900" in r.stderr, r.describe()
    # no match: success with no sub-operation
    r = cli("move", "--call", "VETPACS", "--dest", "DEST", "127.0.0.1", str(srv.port),
            "StudyInstanceUID=1.2.3.4")
    assert r.returncode == 0 and "0 completed, 0 failed" in r.stderr, r.describe()
    # A702: the destination does not answer; every sub-operation failed, each listed
    dest.stop()
    r = cli("move", "--call", "VETPACS", "--dest", "DEST", "127.0.0.1", str(srv.port), study)
    assert r.returncode == 1 and "A702" in r.stderr, r.describe()
    assert "cannot reach Move Destination DEST" in srv.log
    want = expected(uids, study=ROOT + ".1")
    assert {l.split(": ")[-1] for l in r.stderr.splitlines() if "not sent" in l} == want
    assert "0 completed, %d failed" % len(want) in r.stderr
    assert srv.alive()


def test_move_compressed_object_in_its_own_syntax(archive, corpus, tmp_path):
    """An RLE object goes in RLE to a destination that takes it; to one that takes only
    uncompressed data it is decoded and sent in Explicit VR Little Endian with the same
    pixels. An object in a syntax without a decoder (MPEG-2 here) cannot go to that
    destination: it is named in the Failed SOP Instance UID List and logged with the reason,
    while the other objects of the same study arrive."""
    srv, uids, src, dest = archive
    rle = read(corpus["enc_rle_dog.dcm"])
    mpeg = read(corpus["enc_rle_dog.dcm"])
    mpeg.SOPInstanceUID = mpeg.file_meta.MediaStorageSOPInstanceUID = rle.SOPInstanceUID + ".9"
    mpeg.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"
    mpeg.save_as(str(tmp_path / "mpeg.dcm"))
    for f in (corpus["enc_rle_dog.dcm"], str(tmp_path / "mpeg.dcm")):
        r = run(["send", "--call", "VETPACS", "127.0.0.1", str(srv.port), f])
        assert r.returncode == 0, r.describe()
    study = "StudyInstanceUID=%s" % rle.StudyInstanceUID
    r = cli("move", "--call", "VETPACS", "--dest", "DEST", "127.0.0.1", str(srv.port), study)
    assert r.returncode == 0, r.describe()
    got = dest.received()
    assert str(rle.SOPInstanceUID) in got
    f = read(got[str(rle.SOPInstanceUID)])
    assert f.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.5"
    assert f.PixelData == rle.PixelData
    dest.restart(accept_all=False)
    dest.clear()
    r = cli("move", "--call", "VETPACS", "--dest", "DEST", "127.0.0.1", str(srv.port), study)
    assert r.returncode == 1 and "B000" in r.stderr, r.describe()
    unsent = {l.split(": ")[-1] for l in r.stderr.splitlines()
              if l.startswith("vetpacs move: not sent: ")}
    assert unsent == {str(mpeg.SOPInstanceUID)}
    assert srv.wait_log(r"C-MOVE of VETPACS-SCU: %s not sent to DEST at .*MPEG2 Main Profile / "
                        r"Main Level: no presentation context accepted" % mpeg.SOPInstanceUID)
    got = dest.received()
    f = read(got[str(rle.SOPInstanceUID)])
    assert f.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert f.PhotometricInterpretation == rle.PhotometricInterpretation
    assert (f.pixel_array == rle.pixel_array).all()
    assert "PixelData" in f and not f["PixelData"].is_undefined_length


def test_getscu_study(archive, tmp_path):
    srv, uids, src, dest = archive
    out = tmp_path / "get"
    out.mkdir()
    r = dcmtk("getscu", "-aec", srv.aet, "-S", "-od", str(out), "-k", "QueryRetrieveLevel=STUDY",
              "-k", "StudyInstanceUID=%s.1" % ROOT, "127.0.0.1", srv.port, timeout=60)
    assert r.returncode == 0, r.stderr
    got = {str(read(f).SOPInstanceUID): f for f in glob.glob(str(out / "*"))}
    assert set(got) == expected(uids, study=ROOT + ".1")
    for uid, f in got.items():
        same_dataset(f, os.path.join(src, uid + ".dcm"))
    assert srv.wait_log(r"GETSCU -> VETPACS: .*1 get \(5 sent\)")


def test_vetpacs_get_and_move_clients(archive, tmp_path):
    srv, uids, src, dest = archive
    out = tmp_path / "got"
    out.mkdir()
    r = cli("get", "--call", "VETPACS", "--out", str(out), "127.0.0.1", str(srv.port),
            "QueryRetrieveLevel=PATIENT", "PatientID=P1")
    assert r.returncode == 0, r.describe()
    want = expected(uids, patient="P1")
    assert "%d received" % len(want) in r.text
    assert {os.path.basename(f)[:-4] for f in glob.glob(str(out / "*.dcm"))} == want
    assert not glob.glob(str(out / ".*"))  # no temporary file left
    for u in want:
        same_dataset(str(out / (u + ".dcm")), os.path.join(src, u + ".dcm"))
    r = cli("move", "--call", "VETPACS", "--dest", "DEST", "127.0.0.1", str(srv.port),
            "QueryRetrieveLevel=SERIES", "SeriesInstanceUID=%s.3.1" % ROOT)
    assert r.returncode == 0, r.describe()
    assert "4 completed, 0 failed" in r.stderr
    assert set(dest.received()) == expected(uids, series=ROOT + ".3.1")


# ---------------------------------------------------------------------------------------------
# C-CANCEL and protocol rules, with a raw association

def find_rq(message_id, sop_class=STUDY_ROOT_FIND, command=0x0020, dest=None):
    el = [(0x0002, _ui(sop_class)), (0x0100, _us(command)), (0x0110, _us(message_id))]
    if dest:
        el.append((0x0600, dest.encode().ljust(len(dest) + len(dest) % 2)))
    el += [(0x0700, _us(0)), (0x0800, _us(0x0000))]
    return command_set(el)


def cancel_rq(message_id):
    return command_set([(0x0100, _us(0x0FFF)), (0x0120, _us(message_id)),
                        (0x0800, _us(0x0101))])


def identifier(**keys):
    ds = Dataset()
    for k, v in keys.items():
        setattr(ds, k, v)
    from pydicom.filebase import DicomBytesIO
    b = DicomBytesIO()
    b.is_little_endian, b.is_implicit_VR = True, False
    pydicom.filewriter.write_dataset(b, ds)
    return b.getvalue()


def responses(a, until_final=True):
    """Reads DIMSE responses: [(status, {element: raw})], up to the first non-Pending."""
    out = []
    cmd = b""
    while True:
        t, body = read_pdu(a.sock)
        assert t == 0x04, "PDU type 0x%02x" % t
        off = 0
        while off + 6 <= len(body):
            n, pcid, ctrl = struct.unpack_from(">IBB", body, off)
            if ctrl & 1:
                cmd += body[off + 6:off + 4 + n]
                if ctrl & 2:
                    from server_util import parse_command
                    c = parse_command(cmd)
                    cmd = b""
                    st = struct.unpack("<H", c[0x0900])[0]
                    out.append((st, c))
                    if st not in (0xFF00, 0xFF01) and until_final:
                        return out
            off += 4 + n


@pytest.fixture
def big(server, tmp_path):  # noqa: F811
    src = tmp_path / "src"
    src.mkdir()
    uids = make(str(src), "P9", ROOT + ".9", ROOT + ".9.1", 300, rows=8)
    data = str(tmp_path / "data")
    assert run(["import", "--data", data, str(src)]).returncode == 0
    dest = StoreSCP(tmp_path / "dest")
    srv = server(data=data, config="[remote dest]\nae_title = DEST\nhost = 127.0.0.1\n"
                                   "port = %d\n" % dest.port)
    yield srv, uids, dest
    dest.stop()


def test_cancel_find_move_get(big, tmp_path):
    srv, uids, dest = big
    # C-FIND of 300 matches with a C-CANCEL-RQ in the same write: FE00 before the 300th
    a = RawAssoc(srv, contexts=((1, STUDY_ROOT_FIND, (EXPLICIT_LE,)),
                                (3, STUDY_ROOT_MOVE, (EXPLICIT_LE,))))
    assert a.ok
    idf = identifier(QueryRetrieveLevel="IMAGE", StudyInstanceUID=ROOT + ".9", SOPInstanceUID="")
    a.send(p_data_tf(pdv(1, find_rq(7), True)) + p_data_tf(pdv(1, idf, False)) +
           p_data_tf(pdv(1, cancel_rq(7), True)))
    rs = responses(a)
    assert rs[-1][0] == 0xFE00 and len(rs) - 1 < 300, len(rs)
    # the association goes on: C-MOVE of the study, cancelled after the first response
    idm = identifier(QueryRetrieveLevel="STUDY", StudyInstanceUID=ROOT + ".9")
    a.send(p_data_tf(pdv(3, find_rq(8, STUDY_ROOT_MOVE, 0x0021, "DEST"), True)) +
           p_data_tf(pdv(3, idm, False)))
    read_pdu(a.sock)  # the first Pending response
    a.send(p_data_tf(pdv(3, cancel_rq(8), True)))
    rs = responses(a)
    st, c = rs[-1]
    assert st == 0xFE00
    done = struct.unpack("<H", c[0x1021])[0]
    left = struct.unpack("<H", c[0x1020])[0]
    assert done + left == 300 and left > 0
    assert len(dest.received()) == done
    a.release()
    # movescu --cancel and getscu end with Cancel too; the server goes on serving
    r = movescu(srv, "QueryRetrieveLevel=STUDY", "StudyInstanceUID=%s.9" % ROOT,
                extra=["-v", "--cancel", "3"])
    assert "Cancel" in r.stderr, r.stderr
    assert srv.wait_log(r"MOVESCU -> VETPACS: .*1 move")


def test_request_while_answering_aborts(big):
    """One operation at a time was negotiated: a C-FIND-RQ during a C-MOVE is a protocol
    violation (A-ABORT), not a second job."""
    srv, uids, dest = big
    a = RawAssoc(srv, contexts=((1, STUDY_ROOT_FIND, (EXPLICIT_LE,)),
                                (3, STUDY_ROOT_MOVE, (EXPLICIT_LE,))))
    idm = identifier(QueryRetrieveLevel="STUDY", StudyInstanceUID=ROOT + ".9")
    idf = identifier(QueryRetrieveLevel="STUDY", StudyInstanceUID="")
    a.send(p_data_tf(pdv(3, find_rq(1, STUDY_ROOT_MOVE, 0x0021, "DEST"), True)) +
           p_data_tf(pdv(3, idm, False)) + p_data_tf(pdv(1, find_rq(2), True)) +
           p_data_tf(pdv(1, idf, False)))
    kinds = set()
    try:
        while True:
            t, _ = read_pdu(a.sock)
            kinds.add(t)
            if t == 0x07:
                break
    except ConnectionError:
        pass
    assert 0x07 in kinds
    assert srv.wait_log(r"aborted: a message arrived while a request was being answered")
    assert dcmtk("echoscu", "-aec", "VETPACS", "127.0.0.1", srv.port).returncode == 0


def test_get_without_storage_context_fails_each(big):
    """A C-GET whose requestor offered no storage context to take the objects: every
    sub-operation fails (A702), nothing is sent, the association stays usable."""
    srv, uids, dest = big
    a = RawAssoc(srv, contexts=((1, STUDY_ROOT_GET, (EXPLICIT_LE,)),))
    idg = identifier(QueryRetrieveLevel="SERIES", SeriesInstanceUID=ROOT + ".9.1")
    a.send(p_data_tf(pdv(1, find_rq(5, STUDY_ROOT_GET, 0x0010), True)) +
           p_data_tf(pdv(1, idg, False)))
    st, c = responses(a)[-1]
    assert st == 0xA702
    assert struct.unpack("<H", c[0x1022])[0] == 300
    assert c[0x0800] != _us(0x0101)  # the Failed SOP Instance UID List follows
    a.send(A_RELEASE_RQ)
    t, body = read_pdu(a.sock)
    while t == 0x04:  # the identifier
        t, body = read_pdu(a.sock)
    assert t == 0x06  # A-RELEASE-RP: the association was still in order


# ---------------------------------------------------------------------------------------------
# Orthanc

needs_orthanc = pytest.mark.skipif(ORTHANC is None, reason="Orthanc not installed")


@needs_orthanc
def test_orthanc_as_move_destination_and_source(archive, orthanc, server, tmp_path):  # noqa: F811
    srv, uids, src, dest = archive
    o = orthanc({"vetpacs": ["VETPACS", "127.0.0.1", srv.port]})
    # vetpacs -> Orthanc: Orthanc is a C-MOVE destination of ours
    srv2 = server(data=srv.data + "2", config="[remote orthanc]\nae_title = ORTHANC\n"
                  "host = 127.0.0.1\nport = %d\n" % o.dicom_port)
    r = cli("send", "--call", "VETPACS", "127.0.0.1", str(srv2.port), src)
    assert r.returncode == 0, r.describe()
    r = cli("move", "--call", "VETPACS", "--dest", "ORTHANC", "127.0.0.1", str(srv2.port),
            "QueryRetrieveLevel=PATIENT", "PatientID=P1")
    assert r.returncode == 0, r.describe() + "\n" + o.log()
    want = expected(uids, patient="P1")
    got = {o.get("/instances/%s/simplified-tags" % i)["SOPInstanceUID"]
           for i in o.get("/instances")}
    assert got == want
    # Orthanc -> vetpacs: pull priors from another archive, by C-GET and by C-MOVE to us
    out = tmp_path / "from-orthanc"
    out.mkdir()
    r = cli("get", "--aet", "VETPACS", "--call", "ORTHANC", "--out", str(out), "127.0.0.1",
            str(o.dicom_port),
            "QueryRetrieveLevel=STUDY", "StudyInstanceUID=%s.1" % ROOT)
    assert r.returncode == 0, r.describe() + "\n" + o.log()
    assert {os.path.basename(f)[:-4] for f in glob.glob(str(out / "*.dcm"))} == \
        expected(uids, study=ROOT + ".1")
    r = cli("move", "--aet", "VETPACS", "--call", "ORTHANC", "--dest", "VETPACS", "127.0.0.1",
            str(o.dicom_port), "QueryRetrieveLevel=STUDY", "StudyInstanceUID=%s.2" % ROOT)
    assert r.returncode == 0, r.describe() + "\n" + o.log()
    assert srv.wait_log(r"ORTHANC -> VETPACS: %d stored" % len(expected(uids, study=ROOT + ".2")))


def test_oversized_identifier_refused_with_a_status(big):
    """An identifier over the 4 MiB the SCP collects is skipped and refused (A700), and the
    association goes on: the next C-FIND is answered."""
    srv, uids, dest = big
    a = RawAssoc(srv, contexts=((1, STUDY_ROOT_FIND, (EXPLICIT_LE,)),), max_pdu=65536)
    huge = identifier(QueryRetrieveLevel="STUDY", StudyDescription="x" * 64,
                      PatientComments="y" * (5 << 20))
    a.send_message(1, find_rq(1), huge)
    st, c = responses(a)[-1]
    assert st == 0xA700 and b"4 MiB" in c[0x0902], (hex(st), c.get(0x0902))
    a.send(p_data_tf(pdv(1, find_rq(2), True)) +
           p_data_tf(pdv(1, identifier(QueryRetrieveLevel="STUDY", StudyInstanceUID=""), False)))
    rs = responses(a)
    assert rs[-1][0] == 0x0000 and len(rs) == 2  # one study, then Success
