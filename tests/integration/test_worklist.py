# SPDX-License-Identifier: MIT
"""Modality Worklist SCP (PS3.4 Annex K) against dcmtk `findscu -W`: items created with
`vetpacs worklist add`, queried the way an X-ray console does, answers compared with what the
test added. Also the completion of an item when its study arrives, character sets and bad
identifiers."""
import glob
import os
import warnings

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from conftest import run
from server_util import dcmtk, server  # noqa: F401  (fixture)

ITEMS = [
    dict(PatientName="Smith^Rex", PatientID="W1", PatientSpeciesDescription="Canine",
         PatientBreedDescription="Beagle", ResponsiblePerson="Smith^John", Modality="DX",
         ScheduledProcedureStepStartDate="20261128", ScheduledProcedureStepStartTime="0930",
         AccessionNumber="ACC1", ScheduledStationAETitle="XRAY1"),
    dict(PatientName="Jones^Whiskers", PatientID="W2", PatientSpeciesDescription="Feline",
         PatientBreedDescription="Siamese", ResponsiblePerson="Jones^Ann", Modality="US",
         ScheduledProcedureStepStartDate="20261128", ScheduledProcedureStepStartTime="1100",
         AccessionNumber="ACC2"),  # no station: for any
    dict(PatientName="Brown^Thunder", PatientID="W3", PatientSpeciesDescription="Equine",
         ResponsiblePerson="Brown^Bob", ResponsibleOrganization="Hillside Stables",
         Modality="DX", ScheduledProcedureStepStartDate="20261129",
         ScheduledProcedureStepStartTime="0800", AccessionNumber="ACC3",
         ScheduledStationAETitle="XRAY2"),
    dict(PatientName="Müller^Bello", PatientID="W4", PatientSpeciesDescription="Canine",
         ResponsiblePerson="Müller^Jörg", Modality="CR",
         ScheduledProcedureStepStartDate="20261201", AccessionNumber="ACC4"),
]


def read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


@pytest.fixture
def worklist(server, tmp_path):  # noqa: F811
    data = str(tmp_path / "data")
    uids = {}
    for it in ITEMS:
        r = run(["worklist", "add", "--data", data] + ["%s=%s" % kv for kv in it.items()])
        assert r.returncode == 0, r.describe()
        lines = r.text.splitlines()
        row = dict(zip(lines[0].split("\t"), lines[1].split("\t")))
        uids[it["AccessionNumber"]] = row["StudyInstanceUID"]
    return server(data=data), uids


def wl_find(srv, tmp_path, keys, aet="XRAY1", charset=None):
    """findscu -W with keys; returns (CompletedProcess, [answers])."""
    out = tmp_path / ("wl%d" % len(os.listdir(tmp_path)))
    out.mkdir()
    args = ["-v", "-W", "-aet", aet, "-aec", "VETPACS", "-X", "-od", str(out)]
    if charset:
        args += ["-k", "SpecificCharacterSet=%s" % charset]
    for k in keys:
        args += ["-k", k]
    r = dcmtk("findscu", *(args + ["127.0.0.1", srv.port]))
    assert r.returncode is not None, "findscu hung"
    return r, [read(p) for p in sorted(glob.glob(str(out / "rsp*.dcm")))]


SPS = "ScheduledProcedureStepSequence[0]."
RETURN = ["PatientName", "PatientID", "AccessionNumber", "StudyInstanceUID",
          "PatientSpeciesDescription", "ResponsiblePerson", SPS + "Modality",
          SPS + "ScheduledStationAETitle", SPS + "ScheduledProcedureStepStartDate",
          SPS + "ScheduledProcedureStepStartTime"]


def accessions(answers):
    return {str(a.AccessionNumber) for a in answers}


@pytest.mark.parametrize("keys,want", [
    ([], {"ACC1", "ACC2", "ACC3", "ACC4"}),
    ([SPS + "Modality=DX"], {"ACC1", "ACC3"}),
    ([SPS + "ScheduledProcedureStepStartDate=20261128"], {"ACC1", "ACC2"}),
    ([SPS + "ScheduledProcedureStepStartDate=20261129-"], {"ACC3", "ACC4"}),
    ([SPS + "ScheduledProcedureStepStartDate=20261128",
      SPS + "ScheduledProcedureStepStartTime=1000-1200"], {"ACC2"}),
    # a station asks for its own list: items for it and items for any station
    ([SPS + "ScheduledStationAETitle=XRAY1"], {"ACC1", "ACC2", "ACC4"}),
    (["PatientName=smith*"], {"ACC1"}),  # person names ignore case
    (["PatientName=*^Whisk*"], {"ACC2"}),
    (["PatientSpeciesDescription=Canine"], {"ACC1", "ACC4"}),
    (["PatientID=W3"], {"ACC3"}),
    (["AccessionNumber=ACC2"], {"ACC2"}),
    # K.2.2.1.1.1: an item whose value is unknown does not match a value
    (["ResponsibleOrganization=Hillside*"], {"ACC3"}),
])
def test_findscu_worklist_matching(worklist, tmp_path, keys, want):
    srv, uids = worklist
    r, answers = wl_find(srv, tmp_path, RETURN + keys)
    assert r.returncode == 0, r.stderr
    assert accessions(answers) == want
    by_acc = {it["AccessionNumber"]: it for it in ITEMS}
    for a in answers:
        it = by_acc[str(a.AccessionNumber)]
        assert str(a.PatientName) == it["PatientName"]
        assert a.PatientID == it["PatientID"]
        assert a.StudyInstanceUID == uids[it["AccessionNumber"]]
        assert a.PatientSpeciesDescription == it["PatientSpeciesDescription"]
        sps = a.ScheduledProcedureStepSequence
        assert len(sps) == 1
        assert sps[0].Modality == it["Modality"]
        assert sps[0].ScheduledProcedureStepStartDate == it["ScheduledProcedureStepStartDate"]
        assert sps[0].get("ScheduledStationAETitle", "") == it.get("ScheduledStationAETitle", "")
        assert a.SpecificCharacterSet == "ISO_IR 192"
        assert "QueryRetrieveLevel" not in a  # no level in the worklist model


def test_latin1_query_matches_utf8_item(worklist, tmp_path):
    """The key comes in ISO 8859-1; the answer is in UTF-8 with its Specific Character Set."""
    srv, uids = worklist
    q = tmp_path / "q.dcm"
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.PatientName = "Müller*"
    ds.AccessionNumber = ""
    ds.ScheduledProcedureStepSequence = [Dataset()]
    ds.ScheduledProcedureStepSequence[0].Modality = ""
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.31"
    ds.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.9.7433.98.9"
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(str(q), write_like_original=False)
    with open(q, "rb") as f:
        assert "Müller".encode("latin-1") in f.read()
    out = tmp_path / "lat"
    out.mkdir()
    r = dcmtk("findscu", "-W", "-aec", "VETPACS", "-X", "-od", str(out), "127.0.0.1", srv.port,
              str(q))
    assert r.returncode == 0, r.stderr
    answers = [read(p) for p in glob.glob(str(out / "rsp*.dcm"))]
    assert accessions(answers) == {"ACC4"}
    assert str(answers[0].PatientName) == "Müller^Bello"


def make_image(path, study_uid, accession, patient_id):
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = study_uid + ".1.1"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, study_uid + ".1"
    ds.AccessionNumber, ds.PatientID, ds.Modality = accession, patient_id, "DX"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.is_little_endian, ds.is_implicit_VR = True, False
    ds.save_as(path, write_like_original=False)


def test_item_completed_when_its_study_arrives(worklist, tmp_path):
    srv, uids = worklist
    # by Accession Number (the modality made its own Study Instance UID) ...
    a = str(tmp_path / "a.dcm")
    make_image(a, "1.2.826.0.1.3680043.9.7433.98.1", "ACC1", "W1")
    # ... and by Study Instance UID (the accession was not copied)
    b = str(tmp_path / "b.dcm")
    make_image(b, uids["ACC3"], "", "W3")
    r = dcmtk("storescu", "-aec", "VETPACS", "127.0.0.1", srv.port, a, b)
    assert r.returncode == 0, r.stderr
    r, answers = wl_find(srv, tmp_path, RETURN)
    assert accessions(answers) == {"ACC2", "ACC4"}
    # completed items stay queryable by their status
    r, answers = wl_find(srv, tmp_path, RETURN + [SPS + "ScheduledProcedureStepStatus=COMPLETED"])
    assert accessions(answers) == {"ACC1", "ACC3"}
    r = run(["worklist", "list", "--data", srv.data, "--all"])
    assert r.returncode == 0
    status = {ln.split("\t")[11]: ln.split("\t")[1] for ln in r.text.splitlines()[1:]}
    assert status == {"ACC1": "COMPLETED", "ACC2": "SCHEDULED", "ACC3": "COMPLETED",
                      "ACC4": "SCHEDULED"}


def test_bad_worklist_identifiers(worklist, tmp_path):
    srv, uids = worklist
    # two Scheduled Procedure Step items: not a worklist query (A900 with a comment)
    r, _ = wl_find(srv, tmp_path, RETURN + ["ScheduledProcedureStepSequence[1].Modality=CT"])
    assert "Final Find Response (Error: DataSetDoesNotMatchSOPClass)" in r.stderr, r.stderr
    # a date that is not a DA value
    r, _ = wl_find(srv, tmp_path, [SPS + "ScheduledProcedureStepStartDate=2026-11-28"])
    assert "Final Find Response (Error: DataSetDoesNotMatchSOPClass)" in r.stderr, r.stderr
    # the server goes on answering
    r, answers = wl_find(srv, tmp_path, RETURN)
    assert len(answers) == 4
    assert srv.alive()
