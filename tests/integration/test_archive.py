"""`vetpacs import` and `vetpacs check`: files go through the ingest pipeline into a real
data folder (object files + SQLite index) and are verified against their checksums.

Expected counts are computed here with pydicom from the files that were sent, never taken
from vetpacs itself.
"""
import os
import shutil
import sqlite3

import pydicom
import pytest

from conftest import run


def expected(paths):
    """Patients (Patient ID + Issuer), studies, series and instances that vetpacs must index
    for these files, as pydicom reads them."""
    patients, studies, series, instances = set(), set(), set(), set()
    for p in paths:
        ds = pydicom.dcmread(p, stop_before_pixels=True)
        patients.add((str(ds.get("PatientID", "")).strip(),
                      str(ds.get("IssuerOfPatientID", "")).strip()))
        studies.add(ds.StudyInstanceUID)
        series.add(ds.SeriesInstanceUID)
        instances.add(ds.SOPInstanceUID)
    return len(patients), len(studies), len(series), len(instances)


def check_line(data):
    r = run(["check", "--data", data])
    return r, r.stdout.decode().strip()


@pytest.fixture
def archive(tmp_path, corpus):
    """A data folder holding the generated corpus, one file per SOP Instance (the corpus
    writes each animal in several transfer syntaxes with the same UIDs)."""
    data = str(tmp_path / "data")
    chosen, seen = [], set()
    for name, path in sorted(corpus.items()):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if ("StudyInstanceUID" not in ds or "SeriesInstanceUID" not in ds or
                ds.SOPInstanceUID in seen):
            continue
        seen.add(ds.SOPInstanceUID)
        chosen.append(path)
    src = tmp_path / "in"
    src.mkdir()
    for p in chosen:
        shutil.copy(p, src / os.path.basename(p))
    r = run(["import", "--data", data, str(src)])
    assert r.returncode == 0, r.describe()
    return data, chosen


def test_import_counts_match_what_was_sent(archive):
    data, chosen = archive
    p, st, se, i = expected(chosen)
    r, line = check_line(data)
    assert r.returncode == 0, r.describe()
    assert line == "%d patients, %d studies, %d series, %d instances, 0 errors" % (p, st, se, i)


def test_veterinary_attributes_indexed(archive):
    data, chosen = archive
    db = sqlite3.connect(os.path.join(data, "index.db"))
    rows = {r[0]: r[1:] for r in db.execute(
        "SELECT patient_id, species, species_code, breed, owner_name, clinic, pet_name "
        "FROM patient")}
    checked = 0
    for path in chosen:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        if "PatientSpeciesDescription" not in ds:
            continue
        checked += 1
        row = rows[str(ds.PatientID)]
        assert row[0] == str(ds.PatientSpeciesDescription)
        if ds.get("PatientSpeciesCodeSequence"):
            assert row[1] == ds.PatientSpeciesCodeSequence[0].CodeValue
        if "PatientBreedDescription" in ds:
            assert row[2] == str(ds.PatientBreedDescription)
        if "ResponsibleOrganization" in ds:
            assert row[4] == str(ds.ResponsibleOrganization)
        name = str(ds.PatientName)
        pet = name.split("^")[1] if "^" in name and name.split("^")[1] else name.split("^")[0]
        assert row[5] == pet.split("=")[0]
    assert checked >= 4  # the dog, cat, horse and bearded dragon at least
    # Modalities in Study is computed from the series actually stored
    for uid, mods in db.execute("SELECT study_uid, modalities FROM study"):
        sent = sorted({str(pydicom.dcmread(p, stop_before_pixels=True).Modality)
                       for p in chosen
                       if pydicom.dcmread(p, stop_before_pixels=True).StudyInstanceUID == uid})
        assert mods == "\\".join(sent)


def test_reimport_is_identical_and_replacement_counted(archive, tmp_path):
    data, chosen = archive
    r = run(["import", "--data", data] + chosen[:3])
    assert r.returncode == 0, r.describe()
    assert r.stdout.decode().strip() == "0 stored, 3 identical, 0 replaced, 0 failed"
    # same SOP Instance, other bytes: replaced, counts unchanged
    ds = pydicom.dcmread(chosen[0])
    ds.StudyDescription = "changed"
    changed = str(tmp_path / "changed.dcm")
    ds.save_as(changed)
    r = run(["import", "--data", data, changed])
    assert r.stdout.decode().strip() == "0 stored, 0 identical, 1 replaced, 0 failed"
    p, st, se, i = expected(chosen)
    assert check_line(data)[1].endswith("%d instances, 0 errors" % i)


def test_check_finds_damaged_and_missing_objects(archive):
    data, chosen = archive
    db = sqlite3.connect(os.path.join(data, "index.db"))
    paths = [r[0] for r in db.execute("SELECT path FROM instance ORDER BY id LIMIT 2")]
    with open(os.path.join(data, paths[0]), "r+b") as f:
        f.seek(200)
        b = f.read(1)
        f.seek(200)
        f.write(bytes([b[0] ^ 0xFF]))
    os.unlink(os.path.join(data, paths[1]))
    r, line = check_line(data)
    assert r.returncode == 1
    assert line.endswith(", 2 errors"), line
    errs = [l for l in r.stderr.splitlines() if l.startswith("vetpacs check: ")]
    assert len(errs) == 2
    assert any("checksum" in l for l in errs)


def test_bad_files_are_refused_with_a_reason(tmp_path, corpus):
    data = str(tmp_path / "data")
    bad = tmp_path / "bad.dcm"
    with open(next(iter(corpus.values())), "rb") as f:
        bad.write_bytes(f.read()[:300])
    ds = pydicom.dcmread(next(iter(corpus.values())))
    del ds.StudyInstanceUID
    nostudy = str(tmp_path / "nostudy.dcm")
    ds.save_as(nostudy)
    r = run(["import", "--data", data, str(bad), nostudy])
    assert r.returncode == 1
    lines = [l for l in r.stderr.splitlines() if l.startswith("vetpacs import: ")]
    assert len(lines) == 2, r.stderr
    # files are imported by several threads: the lines come in any order, each naming its file
    by_file = {l.split(": ")[1]: l for l in lines}
    assert "offset" in by_file[str(bad)]
    assert "Study Instance UID (0020,000D) is missing" in by_file[nostudy]
    assert r.stdout.decode().strip() == "0 stored, 0 identical, 0 replaced, 2 failed"
    # nothing half-written remains
    assert os.listdir(os.path.join(data, "tmp")) == []
    assert check_line(data)[1] == "0 patients, 0 studies, 0 series, 0 instances, 0 errors"


def test_check_without_archive_fails_cleanly(tmp_path):
    r = run(["check", "--data", str(tmp_path / "nothing")])
    assert r.returncode == 1
    assert "no archive" in r.stderr
