# SPDX-License-Identifier: MIT
"""`vetpacs worklist add|list|remove`: Scheduled Procedure Steps of the Modality Worklist
(PS3.4 K.6.1) kept in the real index of a data folder, values checked by VR, and steps
completed when their study arrives (by `vetpacs import`, and by C-STORE to a running server
that shares the data folder with the command).

Exit statuses: 0 success, 1 a failure (no such step, no archive), 2 bad use or a bad value.
"""
import os
import sqlite3

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from conftest import SLOW, run
from server_util import server  # noqa: F401  (fixture)

HEADER = ["ScheduledProcedureStepID", "ScheduledProcedureStepStatus",
          "ScheduledProcedureStepStartDate", "ScheduledProcedureStepStartTime", "Modality",
          "ScheduledStationAETitle", "PatientID", "PatientName", "PatientSpeciesDescription",
          "PatientBreedDescription", "ResponsiblePerson", "AccessionNumber",
          "RequestedProcedureID", "ScheduledProcedureStepDescription", "StudyInstanceUID",
          "Created"]
REX = ["PatientName=Smith^Rex", "PatientID=123", "PatientSpeciesDescription=Canine",
       "PatientBreedDescription=Beagle", "ResponsiblePerson=Smith^John", "Modality=DX",
       "ScheduledProcedureStepStartDate=20261128", "AccessionNumber=A1"]


def rows(r):
    """The tab-separated output as a list of dicts (header checked)."""
    lines = r.stdout.decode("utf-8").splitlines()
    assert lines and lines[0].split("\t") == HEADER, r.describe()
    out = []
    for ln in lines[1:]:
        cells = ln.split("\t")
        assert len(cells) == len(HEADER), ln
        out.append(dict(zip(HEADER, cells)))
    return out


def add(data, *keys):
    r = run(["worklist", "add", "--data", data] + list(keys))
    assert r.returncode == 0, r.describe()
    (item,) = rows(r)
    return item


def listed(data, *extra):
    r = run(["worklist", "list", "--data", data] + list(extra))
    assert r.returncode == 0, r.describe()
    return rows(r)


def write_object(path, study_uid, accession):
    """A small Secondary Capture object of Rex for the study."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "Smith^Rex"
    ds.PatientID = "123"
    ds.AccessionNumber = accession
    ds.Modality = "OT"
    ds.is_little_endian, ds.is_implicit_VR = True, False
    pydicom.dcmwrite(path, ds, write_like_original=False)
    return path


def test_add_list_remove(tmp_path):
    data = str(tmp_path / "data")
    rex = add(data, *REX)
    assert rex["ScheduledProcedureStepID"] == "1"
    assert rex["ScheduledProcedureStepStatus"] == "SCHEDULED"
    assert rex["ScheduledProcedureStepStartDate"] == "20261128"
    assert rex["ScheduledProcedureStepStartTime"] == "000000"  # a date alone: start of day
    assert rex["PatientName"] == "Smith^Rex" and rex["ResponsiblePerson"] == "Smith^John"
    assert rex["PatientSpeciesDescription"] == "Canine"
    assert rex["RequestedProcedureID"] == "1"
    assert rex["StudyInstanceUID"].startswith("2.25.")
    assert rex["ScheduledStationAETitle"] == ""
    bella = add(data, "PatientName=M\u00fcller^Bella", "PatientID=124", "Modality=US",
                "ScheduledStationAETitle=US_ROOM", "ScheduledProcedureStepStartTime=0815",
                "ScheduledProcedureStepSequence.ScheduledProcedureStepDescription=Abdomen",
                "StudyInstanceUID=1.2.826.0.1.3680043.2.1125.77", "ScheduledProcedureStepID=S-7")
    assert bella["ScheduledProcedureStepID"] == "S-7"
    assert bella["PatientName"] == "M\u00fcller^Bella"
    assert bella["ScheduledProcedureStepDescription"] == "Abdomen"
    assert bella["StudyInstanceUID"] == "1.2.826.0.1.3680043.2.1125.77"
    assert len(bella["ScheduledProcedureStepStartDate"]) == 8  # today
    items = listed(data)
    assert {i["ScheduledProcedureStepID"] for i in items} == {"1", "S-7"}
    # the same SPS ID twice is refused
    r = run(["worklist", "add", "--data", data, "PatientName=X", "PatientID=9", "Modality=CT",
             "ScheduledProcedureStepID=S-7"])
    assert r.returncode == 1 and "exists" in r.stderr, r.describe()
    r = run(["worklist", "remove", "--data", data, "S-7"])
    assert r.returncode == 0 and r.text.strip() == "removed 1", r.describe()
    r = run(["worklist", "remove", "--data", data, "S-7"])
    assert r.returncode == 1 and "S-7" in r.stderr, r.describe()
    add(data, "PatientName=Smith^Rex", "PatientID=123", "Modality=CR", "AccessionNumber=A1")
    r = run(["worklist", "remove", "--data", data, "--accession", "A1"])
    assert r.returncode == 0 and r.text.strip() == "removed 2", r.describe()
    assert listed(data) == []


def test_every_attribute_is_stored(tmp_path):
    data = str(tmp_path / "data")
    add(data, *REX, "IssuerOfPatientID=CLINIC", "PatientBirthDate=20200229", "PatientSex=M",
        "PatientWeight=12.5", "PatientSexNeutered=ALTERED",
        "PatientSpeciesCodeSequence.CodeValue=448771007",
        "PatientSpeciesCodeSequence.CodingSchemeDesignator=SCT",
        "PatientSpeciesCodeSequence.CodeMeaning=Canis lupus familiaris",
        "PatientBreedCodeSequence.CodeValue=132595002",
        "PatientBreedCodeSequence.CodingSchemeDesignator=SCT",
        "PatientBreedCodeSequence.CodeMeaning=Beagle dog breed",
        "BreedRegistrationSequence.BreedRegistrationNumber=KC-1",
        "BreedRegistrationSequence.BreedRegistryCodeSequence.CodeValue=109224",
        "BreedRegistrationSequence.BreedRegistryCodeSequence.CodingSchemeDesignator=DCM",
        "BreedRegistrationSequence.BreedRegistryCodeSequence.CodeMeaning=The Kennel Club",
        "ResponsiblePersonRole=OWNER", "ResponsibleOrganization=Tierklinik",
        "RequestedProcedureID=RP1", "RequestedProcedureDescription=Thorax",
        "ReferringPhysicianName=Vet^Anna", "ScheduledPerformingPhysicianName=Tech^Tom",
        "ScheduledStationName=XRAY1", "ScheduledProcedureStepLocation=Room 2",
        "ScheduledProcedureStepStartTime=101500.5")
    db = sqlite3.connect(os.path.join(data, "index.db"))
    db.row_factory = sqlite3.Row
    (row,) = db.execute("SELECT * FROM worklist").fetchall()
    db.close()
    expect = {"issuer": "CLINIC", "birth_date": "20200229", "sex": "M", "weight": "12.5",
              "sex_neutered": "ALTERED", "species_code": "448771007", "species_scheme": "SCT",
              "species_meaning": "Canis lupus familiaris", "breed_code": "132595002",
              "breed_meaning": "Beagle dog breed", "breed_registration": "KC-1",
              "registry_code": "109224", "registry_scheme": "DCM",
              "registry_meaning": "The Kennel Club", "owner_name": "Smith^John",
              "owner_role": "OWNER", "clinic": "Tierklinik", "requested_id": "RP1",
              "requested_description": "Thorax", "referring": "Vet^Anna",
              "performing": "Tech^Tom", "station_name": "XRAY1", "location": "Room 2",
              "start_time": "101500.5", "accession": "A1", "modality": "DX",
              "status": "SCHEDULED", "ended_at": ""}
    assert {k: row[k] for k in expect} == expect


@pytest.mark.parametrize("keys, why", [
    (["Modality=dx"], "CS"),
    (["Modality=DIGITALRADIOGRAPHY"], "CS"),
    (["ScheduledProcedureStepStartDate=20261301"], "DA"),
    (["ScheduledProcedureStepStartDate=2026-11-28"], "DA"),
    (["ScheduledProcedureStepStartDate=20250229"], "DA"),
    (["ScheduledProcedureStepStartTime=25"], "TM"),
    (["ScheduledProcedureStepStartTime=10:15"], "TM"),
    (["StudyInstanceUID=1.2.03"], "UI"),
    (["ScheduledStationAETitle=ABCDEFGHIJKLMNOPQ"], "AE"),
    (["AccessionNumber=12345678901234567"], "SH"),
    (["PatientWeight=heavy"], "DS"),
    (["PatientSex=X"], "one of M F O"),
    (["PatientSexNeutered=YES"], "ALTERED"),
    (["ScheduledProcedureStepStatus=DONE"], "SCHEDULED"),
    (["PatientName=A^B^C^D^E^F"], "PN"),
    (["PatientSpeciesDescription=a\\b"], "backslash"),
    (["Frobnicate=1"], "not a worklist attribute"),
    (["Modality"], "KEYWORD=VALUE"),
    (["Modality=CT"], "given twice"),
])
def test_bad_values_exit_2(tmp_path, keys, why):
    data = str(tmp_path / "data")
    base = ["PatientName=Rex", "PatientID=1", "Modality=DX"]
    if why != "given twice":  # the bad value alone, not the default of the same key
        base = [b for b in base if b.split("=")[0] != keys[0].split("=")[0]]
    r = run(["worklist", "add", "--data", data] + base + keys)
    assert r.returncode == 2, r.describe()
    lines = r.stderr_lines
    assert len(lines) == 1 and lines[0].startswith("vetpacs worklist add: "), r.describe()
    assert why in lines[0], lines[0]
    assert r.stdout == b""


@pytest.mark.parametrize("missing", ["PatientName", "PatientID", "Modality"])
def test_required_keys(tmp_path, missing):
    keys = [k for k in ["PatientName=Rex", "PatientID=1", "Modality=DX"]
            if not k.startswith(missing + "=")]
    r = run(["worklist", "add", "--data", str(tmp_path / "d")] + keys)
    assert r.returncode == 2 and "%s is required" % missing in r.stderr, r.describe()


@pytest.mark.parametrize("args", [["worklist"], ["worklist", "frob"],
                                  ["worklist", "list", "--bogus"],
                                  ["worklist", "remove"],
                                  ["worklist", "remove", "1", "--accession", "A"],
                                  ["worklist", "remove", "1", "2"]])
def test_bad_use_exits_2(tmp_path, args):
    r = run(args, cwd=str(tmp_path))
    assert r.returncode == 2, r.describe()
    assert "usage: vetpacs worklist" in r.stderr


def test_default_data_folder(tmp_path):
    r = run(["worklist", "add"] + REX, cwd=str(tmp_path))
    assert r.returncode == 0, r.describe()
    assert os.path.exists(tmp_path / "vetpacs-data" / "index.db")
    r = run(["worklist", "list"], cwd=str(tmp_path))
    assert [i["AccessionNumber"] for i in rows(r)] == ["A1"]


def test_list_without_archive_fails(tmp_path):
    r = run(["worklist", "list", "--data", str(tmp_path / "none")])
    assert r.returncode == 1 and "no archive there" in r.stderr, r.describe()


def test_import_completes_steps(tmp_path):
    data = str(tmp_path / "data")
    by_accession = add(data, *REX)
    by_uid = add(data, "PatientName=Smith^Rex", "PatientID=123", "Modality=DX",
                 "StudyInstanceUID=1.2.826.0.1.3680043.2.1125.99")
    other = add(data, "PatientName=Bella", "PatientID=124", "Modality=US",
                "AccessionNumber=A2")
    f1 = write_object(str(tmp_path / "a.dcm"), generate_uid(), "A1")
    f2 = write_object(str(tmp_path / "b.dcm"), "1.2.826.0.1.3680043.2.1125.99", "")
    r = run(["import", "--data", data, f1, f2])
    assert r.returncode == 0, r.describe()
    assert [i["ScheduledProcedureStepID"] for i in listed(data)] == [
        other["ScheduledProcedureStepID"]]
    status = {i["ScheduledProcedureStepID"]: i["ScheduledProcedureStepStatus"]
              for i in listed(data, "--all")}
    assert status == {by_accession["ScheduledProcedureStepID"]: "COMPLETED",
                      by_uid["ScheduledProcedureStepID"]: "COMPLETED",
                      other["ScheduledProcedureStepID"]: "SCHEDULED"}


def test_while_the_server_runs(server, tmp_path):  # noqa: F811
    """The command and `vetpacs serve` share the data folder: steps added while it runs are
    completed by objects it receives."""
    data = str(tmp_path / "data")
    srv = server(data=data)
    item = add(data, *REX)
    assert [i["ScheduledProcedureStepID"] for i in listed(data)] == ["1"]
    f = write_object(str(tmp_path / "c.dcm"), generate_uid(), "A1")
    r = run(["send", "--call", srv.aet, "127.0.0.1", str(srv.port), f], timeout=30 * SLOW)
    assert r.returncode == 0, r.describe()
    assert listed(data) == []
    (done,) = listed(data, "--all")
    assert done["ScheduledProcedureStepID"] == item["ScheduledProcedureStepID"]
    assert done["ScheduledProcedureStepStatus"] == "COMPLETED"
    # and the server goes on storing after the command wrote the index
    add(data, "PatientName=Bella", "PatientID=124", "Modality=US", "AccessionNumber=A2")
    f = write_object(str(tmp_path / "d.dcm"), generate_uid(), "A2")
    r = run(["send", "--call", srv.aet, "127.0.0.1", str(srv.port), f], timeout=30 * SLOW)
    assert r.returncode == 0, r.describe()
    assert listed(data) == []
