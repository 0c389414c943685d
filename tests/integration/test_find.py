# SPDX-License-Identifier: MIT
"""C-FIND SCP (Patient Root and Study Root) against dcmtk findscu: the answers are compared
with what the test computes from the objects it archived (the corpus's veterinary files)."""
import glob
import os
import warnings

import pydicom
import pytest

from conftest import run
from server_util import dcmtk, server  # noqa: F401  (fixture)

VET = ["vet_dog_expl", "vet_cat_expl", "vet_horse_expl", "vet_exotic_expl", "enc_rle_dog",
       "enc_rle_cat"]


def read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


@pytest.fixture
def archive(server, corpus, tmp_path):  # noqa: F811
    files = [corpus[n] if n in corpus else corpus[n + ".dcm"] for n in VET
             if n in corpus or n + ".dcm" in corpus]
    assert len(files) >= 4
    data = str(tmp_path / "data")
    r = run(["import", "--data", data] + files)
    assert r.returncode == 0, r.describe()
    studies = {}
    for f in files:
        ds = read(f)
        studies.setdefault(str(ds.StudyInstanceUID), ds)
    return server(data=data), studies


def find(srv, tmp_path, root, keys, verbose=False):
    out = tmp_path / ("rsp%d" % len(os.listdir(tmp_path)))
    out.mkdir()
    args = ["-aec", "VETPACS", "-S" if root == "study" else "-P", "-X", "-od", str(out)]
    if verbose:
        args.append("-v")
    for k in keys:
        args += ["-k", k]
    r = dcmtk("findscu", *(args + ["127.0.0.1", srv.port]))
    assert r.returncode is not None, "findscu hung"
    answers = [read(p) for p in sorted(glob.glob(str(out / "rsp*.dcm")))]
    return r, answers


def test_study_level_all_studies(archive, tmp_path):
    srv, studies = archive
    r, answers = find(srv, tmp_path, "study",
                      ["QueryRetrieveLevel=STUDY", "StudyInstanceUID", "PatientName",
                       "PatientSpeciesDescription", "ModalitiesInStudy",
                       "NumberOfStudyRelatedInstances"])
    assert r.returncode == 0, r.stderr
    assert {str(a.StudyInstanceUID) for a in answers} == set(studies)
    for a in answers:
        sent = studies[str(a.StudyInstanceUID)]
        assert str(a.PatientName) == str(sent.PatientName)
        assert a.PatientSpeciesDescription == sent.get("PatientSpeciesDescription", "")
        assert a.SpecificCharacterSet == "ISO_IR 192"
        assert a.QueryRetrieveLevel == "STUDY"
        assert sent.Modality in list(a.ModalitiesInStudy) or a.ModalitiesInStudy == sent.Modality
        assert int(a.NumberOfStudyRelatedInstances) >= 1
    assert srv.wait_log(r"FINDSCU -> VETPACS: 0 stored, 0 failed, 0 echo, 1 find"), srv.log


def test_species_wildcard_and_patient_root(archive, tmp_path):
    srv, studies = archive
    cats = {u for u, ds in studies.items()
            if str(ds.get("PatientSpeciesDescription", "")).startswith("Felis")}
    assert cats
    r, answers = find(srv, tmp_path, "study", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID",
                                               "PatientSpeciesDescription=Felis*"])
    assert r.returncode == 0, r.stderr
    assert {str(a.StudyInstanceUID) for a in answers} == cats
    some = next(iter(studies.values()))
    r, answers = find(srv, tmp_path, "patient", ["QueryRetrieveLevel=PATIENT",
                                                 "PatientID=%s" % some.PatientID, "PatientName"])
    assert r.returncode == 0, r.stderr
    assert len(answers) == 1 and answers[0].PatientID == some.PatientID


def test_bad_identifiers_fail_cleanly(archive, tmp_path):
    srv, _ = archive
    # A900 (Identifier does not match SOP Class, PS3.4 C.4.1.1.4): unknown level, reversed
    # range, PATIENT level in the Study Root model.
    for keys in (["QueryRetrieveLevel=NOSUCH", "PatientName"],
                 ["QueryRetrieveLevel=STUDY", "StudyDate=20240131-20240101"],
                 ["QueryRetrieveLevel=PATIENT", "PatientName"]):
        r, answers = find(srv, tmp_path, "study", keys, verbose=True)
        assert answers == [], keys
        assert "DataSetDoesNotMatchSOPClass" in r.stdout + r.stderr, (keys, r.stdout, r.stderr)
    # the server still answers
    r, answers = find(srv, tmp_path, "study", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID"])
    assert r.returncode == 0 and answers


def test_vetpacs_find_scu(archive):
    """vetpacs find (the C-FIND SCU) against vetpacs serve: one line per match with the keys
    asked for, the final status on stderr, exit 1 on a refused identifier."""
    srv, studies = archive
    r = run(["find", "--call", "VETPACS", "127.0.0.1", str(srv.port), "StudyInstanceUID",
             "PatientName", "PatientSpeciesDescription=Felis*"])
    assert r.returncode == 0, r.describe()
    lines = r.stdout.decode().splitlines()
    cats = {u: ds for u, ds in studies.items()
            if str(ds.get("PatientSpeciesDescription", "")).startswith("Felis")}
    assert len(lines) == len(cats)
    for line in lines:
        fields = dict(f.split("=", 1) for f in line.split("  "))
        sent = cats[fields["StudyInstanceUID"]]
        assert fields["PatientName"] == str(sent.PatientName)
        assert fields["PatientSpeciesDescription"] == sent.PatientSpeciesDescription
    assert "%d matches; 0000" % len(cats) in r.stderr
    r = run(["find", "--call", "VETPACS", "127.0.0.1", str(srv.port),
             "QueryRetrieveLevel=PATIENT", "PatientID", "PatientName"])
    assert r.returncode == 0, r.describe()
    assert len(r.stdout.decode().splitlines()) == len({ds.PatientID for ds in studies.values()})
    r = run(["find", "--call", "VETPACS", "127.0.0.1", str(srv.port),
             "StudyDate=20240131-20240101"])
    assert r.returncode == 1 and "A900" in r.stderr, r.describe()
    r = run(["find", "--call", "VETPACS", "127.0.0.1", str(srv.port), "NoSuchKeyword"])
    assert r.returncode == 2 and "not a DICOM keyword" in r.stderr, r.describe()
