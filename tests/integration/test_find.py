# SPDX-License-Identifier: MIT
"""C-FIND SCP (PS3.4 C.4.1) against dcmtk findscu, Patient Root and Study Root (PS3.4 C.6.1,
C.6.2), every level, with expectations the test computes from data it writes itself.

PATIENTS and STUDIES describe a small veterinary archive (10 animals of several species,
owners, clinics and Specific Character Sets; 15 studies, 19 series, 35 instances; empty values
on purpose) written with pydicom and imported with `vetpacs import`. (Text in ISO 2022 IR 87
avoids the JIS X 0208 characters with a 05/12 byte, which the repertoire of PN, LO and SH
excludes, PS3.5 Table 6.2-1.) Each row of QUERIES is run with findscu; the
matches expected are computed by `Model`, an independent Python reading of the matching rules
as vetpacs applies them (docs/conformance-statement.md 2.5a, PS3.4 C.2.2.2):

  - universal (zero length, "*"), single value, wild card "*" "?", list of UID, DA/TM ranges
    "A-B" "-B" "A-" (a bound of reduced precision covers its whole hour/minute/fraction, a stored
    time of reduced precision is its first instant), Empty Value Matching "" (C.2.2.2.7),
    sequence matching on the keys of the single item (C.2.2.2.6), whose answer item holds the
    item keys asked for (all of the stored code for an empty item);
  - an entity whose value is unknown (empty) matches any key value (C.2.2.1.1), except UIDs,
    Modalities in Study and SOP Classes in Study (computed from the series and instances);
  - person names ignore ASCII case (C.2.2.2.1 leaves PN case to the implementation); the pet's
    name alone is findable: "*^Rex*" or "^Rex" also match the pet-name component of names
    written "Owner^Pet" and names that are the pet's name alone (conformance statement);
  - a multi-valued key matches when any value does;
  - keys of the levels above the query level match too (relational queries, the unique keys
    above may be missing); Patient's Sex Neutered, kept per study, is at PATIENT level the
    animal's latest known value.

Each answer is decoded by pydicom and compared, key by key, with the entity's values (the set
of matched UIDs AND the returned values). A row's optional `want` is the hand-derived list of
matches, a check on the Python model itself.

Hostile identifiers follow (undecodable data sets, bad levels and values, a list of 20,000
UIDs, wild-card-only keys on an archive of a few thousand instances); the server keeps
answering afterwards.
"""
import glob
import os
import re
import shutil
import struct
import time
import warnings

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from conftest import SLOW, run
from server_util import (IMPLICIT_LE, RawAssoc, Server, assert_echo, command_set, dcmtk,
                         server)  # noqa: F401  (server is a fixture)

pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning")]

PATIENT_ROOT = "1.2.840.10008.5.1.4.1.2.1.1"
STUDY_ROOT = "1.2.840.10008.5.1.4.1.2.2.1"
UID_ROOT = "1.2.826.0.1.3680043.9.7433.42"
SOP = {  # Storage SOP classes by modality
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",
    "US": "1.2.840.10008.5.1.4.1.1.6.1",
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
    "OT": "1.2.840.10008.5.1.4.1.1.7",
}
IR87 = ["", "ISO 2022 IR 87"]
DOG = ("Canis lupus familiaris", "448771007")
CAT = ("Felis catus", "448169003")

# ---------------------------------------------------------------------------------------------
# The archive. Patients: key -> attributes. Studies: (patient, date, time, accession,
# description, referring physician, neutered, weight, series); series: (modality, number,
# description, body part, instances).

PATIENTS = {
    "rex": dict(cs="ISO_IR 100", PatientID="VP-0001", PatientName="Smith^Rex",
                PatientBirthDate="20160314", PatientSex="M", species=DOG,
                breed=("Labrador Retriever", "VP-B-LAB"), ResponsiblePerson="Smith^John",
                ResponsibleOrganization="Happy Paws Veterinary Clinic"),
    "bello": dict(cs="ISO_IR 100", PatientID="VP-0002", PatientName="Müller^Bello",
                  PatientBirthDate="20190601", PatientSex="M", species=DOG,
                  breed=("Großer Münsterländer", "VP-B-GM"), ResponsiblePerson="Müller^Hans",
                  ResponsibleOrganization="Tierklinik Zürich"),
    "michi": dict(cs="ISO_IR 192", PatientID="VP-0003", PatientName="García^Michi",
                  PatientBirthDate="20200101", PatientSex="F", species=CAT,
                  breed=("Maine Coon", "VP-B-MC"), ResponsiblePerson="García^María",
                  ResponsibleOrganization="Clínica Veterinaria Sevilla"),
    "tama": dict(cs=IR87, PatientID="VP-0004", PatientName="Yamada^Tama=山田^タマ=やまだ^たま",
                 PatientBirthDate="20180808", PatientSex="F", species=CAT,
                 breed=("三毛猫", "VP-B-JB"), ResponsiblePerson="Yamada^Taro=山田^太郎=やまだ^たろう",
                 ResponsibleOrganization="東京動物病院"),
    "sharik": dict(cs="ISO_IR 144", PatientID="VP-0005", PatientName="Иванов^Шарик",
                   PatientBirthDate="20150505", PatientSex="M", species=DOG,
                   breed=("Русская псовая борзая", "VP-B-RB"), ResponsiblePerson="Иванов^Иван",
                   ResponsibleOrganization="Ветклиника Москва"),
    "wangcai": dict(cs="GB18030", PatientID="VP-0006", PatientName="王^旺财",
                    PatientBirthDate="20210909", PatientSex="M", species=DOG,
                    breed=("中华田园犬", ""), ResponsiblePerson="王^伟",
                    ResponsibleOrganization="北京宠物医院"),
    "thunder": dict(cs=None, PatientID="VP-0007", PatientName="Johnson^Thunder",
                    PatientBirthDate="20120505", PatientSex="M",
                    species=("Equus caballus", "35354009"), breed=("Thoroughbred", "VP-B-TB"),
                    ResponsiblePerson="Johnson^Emily",
                    ResponsibleOrganization="Equine Hospital of the Valley"),
    # unknown values on purpose: no birth date, sex, code, breed, owner or clinic
    "spike": dict(cs=None, PatientID="VP-0008", PatientName="Spike", PatientBirthDate="",
                  PatientSex="", species=("Pogona vitticeps", ""), breed=("", ""),
                  ResponsiblePerson="", ResponsibleOrganization=""),
    # the pet's name alone, and an owner whose family name starts like it
    "rexalone": dict(cs=None, PatientID="VP-0009", PatientName="Rex", PatientBirthDate="20220202",
                     PatientSex="M", species=DOG, breed=("Beagle", "VP-B-BG"),
                     ResponsiblePerson="Brown^Ann",
                     ResponsibleOrganization="happy paws veterinary clinic"),
    "max": dict(cs=None, PatientID="VP-0010", PatientName="Rexford^Max",
                PatientBirthDate="20170707", PatientSex="O", species=CAT, breed=("", ""),
                ResponsiblePerson="Rexford^Paul", ResponsibleOrganization="Cat Care Center"),
}

STUDIES = [
    ("rex", "20230115", "083000", "A1001", "Thorax", "Doolittle^John", "ALTERED", "31.5",
     [("DX", "1", "Thorax LL", "THORAX", 2), ("DX", "2", "Thorax VD", "THORAX", 1)]),
    ("rex", "20240229", "101530.123", "A1002", "Abdomen US", "doolittle^john", "ALTERED", "32",
     [("US", "1", "Abdomen", "ABDOMEN", 3)]),
    ("rex", "20240612", "141500", "A2001", "Stifle CT", "Herriot^James", "ALTERED", "",
     [("CT", "1", "Stifle", "KNEE", 3), ("OT", "99", "Report", "", 1)]),
    ("bello", "20230301", "0930", "A1003", "Hips", "Herriot^James", "UNALTERED", "28",
     [("DX", "1", "Hips VD", "PELVIS", 2)]),
    ("bello", "20240105", "1600", "B-77", "", "", "ALTERED", "",
     [("MR", "1", "Spine T2", "SPINE", 3)]),
    ("michi", "20240220", "083000", "A11", "Dental", "Herriot^James", "", "4.1",
     [("DX", "1", "Dental", "HEAD", 2)]),
    ("michi", "", "", "", "Follow-up", "", "", "",
     [("US", "1", "", "ABDOMEN", 1)]),
    ("tama", "20221111", "235959", "JP-001", "胸部X線", "Sato^Ken=佐藤^健=さとう^けん", "UNALTERED",
     "3.9", [("DX", "1", "胸部", "THORAX", 1)]),
    ("sharik", "20231231", "120000", "RU-1", "Рентген грудной клетки", "Петров^Пётр", "ALTERED",
     "30", [("DX", "1", "Грудь", "THORAX", 2)]),
    ("wangcai", "20240301", "091500", "CN-1", "胸部", "李^医生", "UNALTERED", "12",
     [("CT", "1", "胸部CT", "THORAX", 2), ("DX", "2", "胸部", "THORAX", 1)]),
    ("thunder", "20220815", "070000", "EQ-1", "Fetlock", "Herriot^James", "ALTERED", "520",
     [("DX", "1", "Fetlock LF", "LEG", 3)]),
    ("thunder", "20240701", "1930", "EQ-2", "Hoof CT", "Herriot^James", "ALTERED", "515",
     [("CT", "1", "Hoof", "FOOT", 2), ("MR", "2", "Hoof MR", "FOOT", 2)]),
    ("spike", "20240410", "", "", "", "", "", "",
     [("DX", "1", "", "", 1)]),
    ("rexalone", "20240115", "110000", "A1004", "Thorax", "Doolittle^John", "UNALTERED", "12.5",
     [("DX", "1", "Thorax", "THORAX", 1)]),
    ("max", "20231120", "153000", "A1005", "Abdomen", "", "ALTERED", "5",
     [("US", "1", "Abdomen", "ABDOMEN", 2)]),
]

LEVELS = ["PATIENT", "STUDY", "SERIES", "IMAGE"]

# keyword -> (level of the attribute in the models, how it matches)
KEYS = {
    "PatientID": ("PATIENT", "text"),
    "PatientName": ("PATIENT", "pn"),
    "IssuerOfPatientID": ("PATIENT", "text"),
    "PatientBirthDate": ("PATIENT", "da"),
    "PatientSex": ("PATIENT", "text"),
    "PatientSpeciesDescription": ("PATIENT", "text"),
    "PatientSpeciesCodeSequence": ("PATIENT", "code"),
    "PatientBreedDescription": ("PATIENT", "text"),
    "PatientBreedCodeSequence": ("PATIENT", "code"),
    "ResponsiblePerson": ("PATIENT", "pn"),
    "ResponsiblePersonRole": ("PATIENT", "text"),
    "ResponsibleOrganization": ("PATIENT", "text"),
    "PatientSexNeutered": ("PATIENT", "text"),
    "NumberOfPatientRelatedStudies": ("PATIENT", "count"),
    "NumberOfPatientRelatedSeries": ("PATIENT", "count"),
    "NumberOfPatientRelatedInstances": ("PATIENT", "count"),
    "StudyInstanceUID": ("STUDY", "uid"),
    "StudyDate": ("STUDY", "da"),
    "StudyTime": ("STUDY", "tm"),
    "AccessionNumber": ("STUDY", "text"),
    "StudyID": ("STUDY", "text"),
    "StudyDescription": ("STUDY", "text"),
    "ReferringPhysicianName": ("STUDY", "pn"),
    "PatientWeight": ("STUDY", "ds"),
    "ModalitiesInStudy": ("STUDY", "mods"),
    "SOPClassesInStudy": ("STUDY", "sopclasses"),
    "NumberOfStudyRelatedSeries": ("STUDY", "count"),
    "NumberOfStudyRelatedInstances": ("STUDY", "count"),
    "SeriesInstanceUID": ("SERIES", "uid"),
    "Modality": ("SERIES", "text"),
    "SeriesNumber": ("SERIES", "is"),
    "SeriesDescription": ("SERIES", "text"),
    "BodyPartExamined": ("SERIES", "text"),
    "NumberOfSeriesRelatedInstances": ("SERIES", "count"),
    "SOPInstanceUID": ("IMAGE", "uid"),
    "SOPClassUID": ("IMAGE", "uid"),
    "InstanceNumber": ("IMAGE", "is"),
}
UNIQUE = {"PATIENT": "PatientID", "STUDY": "StudyInstanceUID", "SERIES": "SeriesInstanceUID",
          "IMAGE": "SOPInstanceUID"}


def study_uid(s):
    return "%s.%d" % (UID_ROOT, s + 1)


def series_uid(s, r):
    return "%s.%d.%d" % (UID_ROOT, s + 1, r + 1)


def sop_uid(s, r, i):
    return "%s.%d.%d.%d" % (UID_ROOT, s + 1, r + 1, i + 1)


def code_item(value, meaning):
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "SCT" if value[0].isdigit() else "99VP"
    item.CodeMeaning = meaning
    return item


def write_part10(ds, path, sop_class, sop_instance, ts=ExplicitVRLittleEndian):
    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = sop_class
    fm.MediaStorageSOPInstanceUID = sop_instance
    fm.TransferSyntaxUID = ts
    ds.file_meta = fm
    ds.is_little_endian = True
    ds.is_implicit_VR = ts == ImplicitVRLittleEndian
    ds.save_as(path, write_like_original=False)


def write_archive(folder):
    """Writes ARCHIVE, one file per instance named in import order."""
    os.makedirs(folder, exist_ok=True)
    n = 0
    for s, (pk, date, tm, acc, desc, ref, neut, weight, series) in enumerate(STUDIES):
        p = PATIENTS[pk]
        for r, (mod, num, sdesc, body, count) in enumerate(series):
            for i in range(count):
                ds = Dataset()
                if p["cs"]:
                    ds.SpecificCharacterSet = p["cs"]
                ds.SOPClassUID = SOP[mod]
                ds.SOPInstanceUID = sop_uid(s, r, i)
                ds.StudyDate, ds.StudyTime, ds.AccessionNumber = date, tm, acc
                ds.Modality = mod
                ds.ReferringPhysicianName = ref
                ds.StudyDescription, ds.SeriesDescription = desc, sdesc
                for k in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex",
                          "ResponsiblePerson", "ResponsibleOrganization"):
                    setattr(ds, k, p[k])
                if p["ResponsiblePerson"]:
                    ds.ResponsiblePersonRole = "OWNER"
                ds.PatientWeight = weight or None
                ds.PatientSpeciesDescription = p["species"][0]
                ds.PatientSpeciesCodeSequence = Sequence(
                    [code_item(p["species"][1], p["species"][0])] if p["species"][1] else [])
                ds.PatientBreedDescription = p["breed"][0]
                ds.PatientBreedCodeSequence = Sequence(
                    [code_item(p["breed"][1], p["breed"][0])] if p["breed"][1] else [])
                ds.PatientSexNeutered = neut
                ds.BodyPartExamined = body
                ds.StudyInstanceUID = study_uid(s)
                ds.SeriesInstanceUID = series_uid(s, r)
                ds.StudyID = "S%d" % (s + 1)
                ds.SeriesNumber = num
                ds.InstanceNumber = str(i + 1)
                write_part10(ds, os.path.join(folder, "%03d.dcm" % n), SOP[mod], ds.SOPInstanceUID)
                n += 1
    return n


# ---------------------------------------------------------------------------------------------
# The model: entities per level with every attribute the index holds, and the matching rules.

FOLD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def pet_name(name):
    """The pet's name in Patient's Name, as src/idx/record.c reads it: the given-name
    component of "Owner^Pet", else the whole (first group of the) name."""
    alpha = name.split("=")[0]
    if "^" not in alpha:
        return alpha
    family, given = alpha.split("^")[:2]
    return given or family


class Model:
    def __init__(self):
        self.entities = {lv: [] for lv in LEVELS}
        self.names = {}  # unique key value -> short name, for messages
        patients = {}
        for pk, p in PATIENTS.items():
            e = {k: v for k, v in p.items() if k[0].isupper()}
            e.update(_level="PATIENT", _name=pk, IssuerOfPatientID="",
                     ResponsiblePersonRole="OWNER" if p["ResponsiblePerson"] else "",
                     PatientSpeciesDescription=p["species"][0],
                     PatientSpeciesCodeSequence=p["species"][1],
                     PatientBreedDescription=p["breed"][0],
                     PatientBreedCodeSequence=p["breed"][1], _studies=[])
            patients[pk] = e
            self.entities["PATIENT"].append(e)
        for s, (pk, date, tm, acc, desc, ref, neut, weight, series) in enumerate(STUDIES):
            pe = patients[pk]
            st = dict(pe, _level="STUDY", _name="%s/%d" % (pk, len(pe["_studies"]) + 1),
                      StudyInstanceUID=study_uid(s), StudyDate=date, StudyTime=tm,
                      AccessionNumber=acc, StudyID="S%d" % (s + 1), StudyDescription=desc,
                      ReferringPhysicianName=ref, PatientSexNeutered=neut, PatientWeight=weight,
                      ModalitiesInStudy=sorted({r[0] for r in series}),
                      SOPClassesInStudy=sorted({SOP[r[0]] for r in series}),
                      NumberOfStudyRelatedSeries=len(series),
                      NumberOfStudyRelatedInstances=sum(r[4] for r in series), _order=s)
            pe["_studies"].append(st)
            self.entities["STUDY"].append(st)
            for r, (mod, num, sdesc, body, count) in enumerate(series):
                se = dict(st, _level="SERIES", _name="%s/%d" % (st["_name"], r + 1),
                          SeriesInstanceUID=series_uid(s, r), Modality=mod, SeriesNumber=num,
                          SeriesDescription=sdesc, BodyPartExamined=body,
                          NumberOfSeriesRelatedInstances=count)
                self.entities["SERIES"].append(se)
                for i in range(count):
                    self.entities["IMAGE"].append(dict(
                        se, _level="IMAGE", _name="%s/%d" % (se["_name"], i + 1),
                        SOPInstanceUID=sop_uid(s, r, i), SOPClassUID=SOP[mod],
                        InstanceNumber=str(i + 1)))
        for pe in patients.values():
            sts = pe["_studies"]
            pe["NumberOfPatientRelatedStudies"] = len(sts)
            pe["NumberOfPatientRelatedSeries"] = sum(s["NumberOfStudyRelatedSeries"] for s in sts)
            pe["NumberOfPatientRelatedInstances"] = sum(s["NumberOfStudyRelatedInstances"]
                                                        for s in sts)
            # Patient's Sex Neutered is stored per study; the animal's is the latest known.
            known = [s for s in sts if s["PatientSexNeutered"]]
            latest = max(known, key=lambda s: (s["StudyDate"], s["StudyTime"], s["_order"]),
                         default=None)
            pe["PatientSexNeutered"] = latest["PatientSexNeutered"] if latest else ""
        for st in self.entities["STUDY"] + self.entities["SERIES"] + self.entities["IMAGE"]:
            for k in ("NumberOfPatientRelatedStudies", "NumberOfPatientRelatedSeries",
                      "NumberOfPatientRelatedInstances"):
                st[k] = patients[st["_name"].split("/")[0]][k]
        for lv in LEVELS:
            for e in self.entities[lv]:
                self.names[e[UNIQUE[lv]]] = e["_name"]

    def matches(self, level, keys):
        return [e for e in self.entities[level] if all(key_matches(e, k, v) for k, v in keys)]


def wild(pattern, value, fold=False):
    if fold:
        pattern, value = pattern.translate(FOLD), value.translate(FOLD)
    rx = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(rx, value, re.S) is not None


def tm_instant(t, upper):
    """A TM value as (seconds, microseconds); missing parts are the first instant of the value,
    or with upper its last (PS3.4 C.2.2.2.5.2: a time of reduced precision is a range)."""
    whole, _, frac = t.partition(".")
    hh = int(whole[:2])
    mm = int(whole[2:4]) if len(whole) >= 4 else (59 if upper else 0)
    ss = int(whole[4:6]) if len(whole) >= 6 else (59 if upper else 0)
    us = int((frac + ("9" if upper else "0") * 6)[:6])
    return (hh * 3600 + mm * 60 + ss, us)


def in_range(kind, stored, key):
    """Range matching (C.2.2.2.5) of DA or TM; a single value is the range [v, v]."""
    lo, _, hi = key.partition("-") if "-" in key else (key, "", key)
    lo, hi = lo.strip(), hi.strip()
    if kind == "da":
        return (not lo or stored >= lo) and (not hi or stored <= hi)
    v = tm_instant(stored, False)
    return (not lo or v >= tm_instant(lo, False)) and (not hi or v <= tm_instant(hi, True))


def value_matches(kind, stored, v):
    if kind in ("text", "code"):
        return wild(v, stored) if ("*" in v or "?" in v) else stored == v
    if kind == "pn":
        return wild(v, stored, True) if ("*" in v or "?" in v) else \
            stored.translate(FOLD) == v.translate(FOLD)
    if kind in ("da", "tm"):
        return in_range(kind, stored, v)
    if kind == "is":
        return int(stored) == int(v)
    if kind == "ds":
        return float(stored) == float(v)
    raise AssertionError(kind)


def pet_pattern(key):
    """The pet-name component a PatientName key asks for alone: "F^G..." with F empty or "*",
    G given, nothing else constrained. None otherwise."""
    groups = key.split("=")
    comps = groups[0].split("^")
    if len(comps) < 2 or comps[0] not in ("", "*") or comps[1] in ("", "*"):
        return None
    if any(c not in ("", "*") for c in comps[2:] + groups[1:]):
        return None
    return comps[1]


def key_matches(e, kw, key):
    """Whether entity e matches key value `key` of keyword kw (PS3.4 C.2.2.2)."""
    if key is None or key == "" or key == "*":
        return True  # universal (C.2.2.2.3, and "*" per C.2.2.2.4)
    kind = KEYS[kw][1]
    if kind == "count":
        return True  # return keys only
    stored = e[kw]
    if key == '""':
        return not stored  # Empty Value Matching (C.2.2.2.7)
    values = [v.strip() for v in key.split("\\") if v.strip()]
    if kind == "uid":
        return stored in values
    if kind == "mods":
        return any(value_matches("text", m, v) for m in stored for v in values)
    if kind == "sopclasses":
        return any(c in values for c in stored)
    if stored == "":
        return True  # unknown values match (C.2.2.1.1)
    if any(value_matches(kind, stored, v) for v in values):
        return True
    if kw == "PatientName":
        pet = pet_pattern(key)
        return pet is not None and value_matches("pn", pet_name(stored), pet)
    return False


# ---------------------------------------------------------------------------------------------
# Running findscu

class Answer:
    def __init__(self, returncode, status, comment, datasets, out):
        self.returncode, self.status, self.comment = returncode, status, comment
        self.datasets, self.out = datasets, out


def read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


def findscu(srv, workdir, root, keys=(), files=(), debug=True, timeout=30):
    """Runs findscu with -k keys (and query files); returns an Answer with the final status
    (int, None when there was none), its Error Comment and the decoded answers."""
    out = os.path.join(workdir, "rsp%d" % len(os.listdir(workdir)))
    os.mkdir(out)
    args = ["-aec", srv.aet, "-P" if root == "patient" else "-S", "-X", "-od", out,
            "-d" if debug else "-v", "-to", 10 * SLOW, "-ta", 10 * SLOW, "-td", 30 * SLOW]
    for k in keys:
        args += ["-k", k]
    r = dcmtk("findscu", *(args + ["127.0.0.1", srv.port] + list(files)), timeout=timeout)
    assert r.returncode is not None, "findscu hung\n" + r.stdout[-3000:] + r.stderr[-3000:]
    text = r.stdout + r.stderr
    status = comment = None
    if debug:
        st = re.findall(r"DIMSE Status\s*: 0x([0-9a-fA-F]{4})", text)
        status = int(st[-1], 16) if st else None
        m = re.findall(r"\(0000,0902\) LO \[(.*?)\]", text)
        comment = m[-1] if m else None
    elif "Received Final Find Response (Success)" in text:
        status = 0
    answers = [read(p) for p in sorted(glob.glob(os.path.join(out, "rsp*.dcm")))]
    return Answer(r.returncode, status, comment, answers, text)


def norm(kind, v):
    """A returned value as the model holds it."""
    if kind == "code":
        return str(v[0].CodeValue) if v else ""
    if isinstance(v, MultiValue):
        return sorted(str(x) for x in v)
    if kind in ("mods", "sopclasses"):
        return [str(v)] if v else []
    if v is None:
        return None if kind == "count" else ""
    if kind == "count":
        return int(v)
    return str(v)


def identifier_file(path, level, keys, charset):
    """An identifier written by pydicom in `charset` (text encoded by pydicom), as findscu
    reads query files."""
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.QueryRetrieveLevel = level
    for kw, v in keys:
        setattr(ds, kw, v or "")
    write_part10(ds, path, STUDY_ROOT, "1.2.3.4")
    return path


# ---------------------------------------------------------------------------------------------
# The queries: (id, roots, level, keys, hand-derived matches or None). roots: "P" Patient Root,
# "S" Study Root, "PS" both. Keys "Keyword", "Keyword=value" or
# "Sequence[0].CodeValue=value"; a key value with non-ASCII characters is sent with Specific
# Character Set ISO_IR 192 unless a row names another (CHARSET_ROWS: identifier files).

QUERIES = [
    # PATIENT (Patient Root only, PS3.4 C.6.2)
    ("p-all", "P", "PATIENT",
     ["PatientID", "PatientName", "PatientBirthDate", "PatientSex", "PatientSpeciesDescription",
      "PatientBreedDescription", "ResponsiblePerson", "ResponsiblePersonRole",
      "ResponsibleOrganization", "PatientSexNeutered", "NumberOfPatientRelatedStudies",
      "NumberOfPatientRelatedSeries", "NumberOfPatientRelatedInstances",
      "PatientSpeciesCodeSequence", "PatientBreedCodeSequence", "IssuerOfPatientID"], "*"),
    ("p-id", "P", "PATIENT", ["PatientID=VP-0003", "PatientName"], ["michi"]),
    ("p-id-list", "P", "PATIENT", ["PatientID=VP-0003\\VP-0099\\VP-0007", "PatientName"],
     ["michi", "thunder"]),
    ("p-id-q", "P", "PATIENT", ["PatientID=VP-000?", "PatientName"],
     ["rex", "bello", "michi", "tama", "sharik", "wangcai", "thunder", "spike", "rexalone"]),
    ("p-name-ci", "P", "PATIENT", ["PatientName=smith*", "PatientID"], ["rex"]),
    ("p-name-exact-ci", "P", "PATIENT", ["PatientName=JOHNSON^THUNDER", "PatientID"],
     ["thunder"]),
    ("p-pet-wild", "P", "PATIENT", ["PatientName=*^Rex*", "PatientID"], ["rex", "rexalone"]),
    ("p-pet-exact", "P", "PATIENT", ["PatientName=^rex", "PatientID"], ["rex", "rexalone"]),
    ("p-pet-star-exact", "P", "PATIENT", ["PatientName=*^Tama", "PatientID"], ["tama"]),
    ("p-family-prefix", "P", "PATIENT", ["PatientName=Rex*", "PatientID"], ["rexalone", "max"]),
    ("p-name-q", "P", "PATIENT", ["PatientName=M?ller^*", "PatientID"], ["bello"]),
    ("p-name-kanji", "P", "PATIENT", ["PatientName=*山田*", "PatientID"], ["tama"]),
    ("p-species", "P", "PATIENT", ["PatientSpeciesDescription=Felis*", "PatientID"],
     ["michi", "tama", "max"]),
    ("p-species-code", "P", "PATIENT",
     ["PatientSpeciesCodeSequence[0].CodeValue=448771007", "PatientID",
      "PatientSpeciesDescription"],
     ["rex", "bello", "sharik", "wangcai", "spike", "rexalone"]),  # spike: unknown code
    ("p-breed-code-wild", "P", "PATIENT",
     ["PatientBreedCodeSequence[0].CodeValue=VP-B-?B", "PatientID"],
     ["tama", "sharik", "wangcai", "thunder", "spike", "max"]),
    ("p-breed", "P", "PATIENT", ["PatientBreedDescription=*Münster*", "PatientID"],
     ["bello", "spike", "max"]),
    ("p-owner-ci", "P", "PATIENT", ["ResponsiblePerson=garcía*", "PatientID"],
     ["michi", "spike"]),
    ("p-clinic-case", "P", "PATIENT", ["ResponsibleOrganization=*klinik*", "PatientID"],
     ["bello", "spike"]),  # LO is case-sensitive; sharik's "клиника" is Cyrillic
    ("p-clinic-empty", "P", "PATIENT", ['ResponsibleOrganization=""', "PatientID"], ["spike"]),
    ("p-clinic-return", "P", "PATIENT", ["ResponsibleOrganization", "PatientID"], "*"),
    ("p-neutered", "P", "PATIENT", ["PatientSexNeutered=UNALTERED", "PatientID"],
     ["michi", "tama", "wangcai", "spike", "rexalone"]),  # bello: ALTERED since 2024
    ("p-birth-range", "P", "PATIENT", ["PatientBirthDate=20150101-20191231", "PatientID"],
     ["rex", "bello", "tama", "sharik", "spike", "max"]),
    ("p-birth-before", "P", "PATIENT", ["PatientBirthDate=-20151231", "PatientID"],
     ["thunder", "sharik", "spike"]),
    ("p-sex-multi", "P", "PATIENT", ["PatientSex=F\\O", "PatientID"],
     ["michi", "tama", "spike", "max"]),
    ("p-counts", "P", "PATIENT", ["PatientID=VP-0001", "NumberOfPatientRelatedStudies",
                                  "NumberOfPatientRelatedSeries",
                                  "NumberOfPatientRelatedInstances"], ["rex"]),
    ("p-species-item-return", "P", "PATIENT", ["PatientID=VP-0007",
                                               "PatientSpeciesCodeSequence[0].CodeValue"],
     ["thunder"]),
    # STUDY
    ("s-all", "PS", "STUDY",
     ["StudyInstanceUID", "StudyDate", "StudyTime", "AccessionNumber", "StudyID",
      "StudyDescription", "ReferringPhysicianName", "ModalitiesInStudy", "SOPClassesInStudy",
      "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances", "PatientName", "PatientID",
      "PatientSexNeutered", "PatientWeight"], "*"),
    ("s-patient-counts", "S", "STUDY",
     ["StudyInstanceUID", "NumberOfPatientRelatedStudies", "NumberOfPatientRelatedSeries",
      "NumberOfPatientRelatedInstances", "ResponsiblePerson", "PatientSpeciesDescription"], "*"),
    ("s-uid-list", "PS", "STUDY",
     ["StudyInstanceUID=%s\\%s\\%s.999" % (study_uid(0), study_uid(11), UID_ROOT),
      "StudyDate"], ["rex/1", "thunder/2"]),
    ("s-date", "PS", "STUDY", ["StudyDate=20240105", "StudyInstanceUID"],
     ["bello/2", "michi/2"]),
    ("s-date-range", "PS", "STUDY", ["StudyDate=20240101-20240229", "StudyInstanceUID"],
     ["rex/2", "bello/2", "michi/1", "michi/2", "rexalone/1"]),
    ("s-date-before", "PS", "STUDY", ["StudyDate=-20221231", "StudyInstanceUID"],
     ["michi/2", "tama/1", "thunder/1"]),
    ("s-date-after", "PS", "STUDY", ["StudyDate=20240612-", "StudyInstanceUID"],
     ["rex/3", "michi/2", "thunder/2"]),
    ("s-time-range", "PS", "STUDY", ["StudyTime=0800-0930", "StudyInstanceUID"],
     ["rex/1", "bello/1", "michi/1", "michi/2", "spike/1", "wangcai/1"]),
    ("s-time-reduced-stored", "PS", "STUDY", ["StudyTime=093000-100000", "StudyInstanceUID"],
     ["bello/1", "michi/2", "spike/1"]),  # stored "0930" is 09:30:00
    ("s-time-before", "PS", "STUDY", ["StudyTime=-0830", "StudyInstanceUID"],
     ["rex/1", "michi/1", "michi/2", "thunder/1", "spike/1"]),
    ("s-time-after", "PS", "STUDY", ["StudyTime=1600-", "StudyInstanceUID"],
     ["bello/2", "michi/2", "tama/1", "thunder/2", "spike/1"]),
    ("s-time-single", "PS", "STUDY", ["StudyTime=101530", "StudyInstanceUID"],
     ["rex/2", "michi/2", "spike/1"]),
    ("s-date-and-time", "PS", "STUDY",
     ["StudyDate=20240101-20241231", "StudyTime=1400-2000", "StudyInstanceUID"],
     ["rex/3", "bello/2", "michi/2", "thunder/2", "spike/1"]),
    ("s-accession-q", "PS", "STUDY", ["AccessionNumber=A1??", "StudyInstanceUID"],
     ["michi/2", "spike/1"]),
    ("s-accession-wild", "PS", "STUDY", ["AccessionNumber=A1*", "StudyInstanceUID"],
     ["rex/1", "rex/2", "bello/1", "michi/1", "michi/2", "spike/1", "rexalone/1", "max/1"]),
    ("s-accession-empty", "PS", "STUDY", ['AccessionNumber=""', "StudyInstanceUID"],
     ["michi/2", "spike/1"]),
    ("s-description-empty", "PS", "STUDY", ['StudyDescription=""', "StudyInstanceUID"],
     ["bello/2", "spike/1"]),
    ("s-modalities", "PS", "STUDY", ["ModalitiesInStudy=CT", "StudyInstanceUID"],
     ["rex/3", "wangcai/1", "thunder/2"]),
    ("s-modalities-list", "PS", "STUDY", ["ModalitiesInStudy=MR\\US", "StudyInstanceUID"],
     ["rex/2", "bello/2", "michi/2", "thunder/2", "max/1"]),
    ("s-modalities-wild", "PS", "STUDY", ["ModalitiesInStudy=?T", "StudyInstanceUID"],
     ["rex/3", "wangcai/1", "thunder/2"]),
    ("s-sop-classes", "PS", "STUDY", ["SOPClassesInStudy=" + SOP["OT"], "StudyInstanceUID"],
     ["rex/3"]),
    ("s-sop-classes-list", "PS", "STUDY",
     ["SOPClassesInStudy=%s\\%s" % (SOP["MR"], SOP["CT"]), "StudyInstanceUID"],
     ["rex/3", "bello/2", "wangcai/1", "thunder/2"]),
    ("s-referring-ci", "PS", "STUDY", ["ReferringPhysicianName=DOOLITTLE^JOHN",
                                       "StudyInstanceUID"],
     ["rex/1", "rex/2", "bello/2", "michi/2", "spike/1", "max/1", "rexalone/1"]),
    ("s-neutered-per-study", "PS", "STUDY", ["PatientSexNeutered=UNALTERED", "StudyInstanceUID"],
     ["bello/1", "michi/1", "michi/2", "tama/1", "wangcai/1", "spike/1", "rexalone/1"]),
    ("s-weight", "PS", "STUDY", ["PatientWeight=32.0", "StudyInstanceUID"],
     ["rex/2", "rex/3", "bello/2", "michi/2", "spike/1"]),
    ("s-patient-id", "PS", "STUDY", ["PatientID=VP-0007", "StudyInstanceUID", "StudyDate"],
     ["thunder/1", "thunder/2"]),
    ("s-species-and-date", "PS", "STUDY",
     ["PatientSpeciesDescription=Canis*", "StudyDate=20240101-", "StudyInstanceUID"],
     ["rex/2", "rex/3", "bello/2", "wangcai/1", "rexalone/1"]),
    ("s-cyrillic", "PS", "STUDY", ["StudyDescription=Рентген*", "StudyInstanceUID",
                                   "PatientName"],
     ["sharik/1", "bello/2", "spike/1"]),
    # SERIES
    ("r-hierarchical", "PS", "SERIES",
     ["StudyInstanceUID=" + study_uid(2), "SeriesInstanceUID", "Modality", "SeriesNumber",
      "SeriesDescription", "BodyPartExamined", "NumberOfSeriesRelatedInstances"],
     ["rex/3/1", "rex/3/2"]),
    ("r-patient-root-hier", "P", "SERIES",
     ["PatientID=VP-0007", "StudyInstanceUID=" + study_uid(11), "SeriesInstanceUID",
      "Modality"], ["thunder/2/1", "thunder/2/2"]),
    ("r-modality", "PS", "SERIES", ["Modality=MR", "SeriesInstanceUID", "StudyInstanceUID"],
     ["bello/2/1", "thunder/2/2"]),
    ("r-number", "PS", "SERIES", ["SeriesNumber=2", "SeriesInstanceUID"],
     ["rex/1/2", "wangcai/1/2", "thunder/2/2"]),
    ("r-body-wild", "PS", "SERIES", ["BodyPartExamined=*O*", "SeriesInstanceUID"],
     ["rex/1/1", "rex/1/2", "rex/2/1", "rex/3/2", "michi/2/1", "tama/1/1", "sharik/1/1",
      "wangcai/1/1", "wangcai/1/2", "thunder/2/1", "thunder/2/2", "spike/1/1", "rexalone/1/1",
      "max/1/1"]),
    ("r-uid-list", "PS", "SERIES",
     ["SeriesInstanceUID=%s\\%s" % (series_uid(0, 1), series_uid(9, 0)), "Modality"],
     ["rex/1/2", "wangcai/1/1"]),
    ("r-description-empty", "PS", "SERIES", ['SeriesDescription=""', "SeriesInstanceUID"],
     ["michi/2/1", "spike/1/1"]),
    ("r-study-keys", "PS", "SERIES",
     ["StudyDate=20240701", "SeriesInstanceUID", "ModalitiesInStudy",
      "NumberOfStudyRelatedInstances"], ["michi/2/1", "thunder/2/1", "thunder/2/2"]),
    # IMAGE
    ("i-hierarchical", "PS", "IMAGE",
     ["StudyInstanceUID=" + study_uid(1), "SeriesInstanceUID=" + series_uid(1, 0),
      "SOPInstanceUID", "SOPClassUID", "InstanceNumber"],
     ["rex/2/1/1", "rex/2/1/2", "rex/2/1/3"]),
    ("i-patient-root-hier", "P", "IMAGE",
     ["PatientID=VP-0005", "StudyInstanceUID=" + study_uid(8),
      "SeriesInstanceUID=" + series_uid(8, 0), "SOPInstanceUID", "InstanceNumber"],
     ["sharik/1/1/1", "sharik/1/1/2"]),
    ("i-uid-list", "PS", "IMAGE",
     ["SOPInstanceUID=%s\\%s" % (sop_uid(4, 0, 2), sop_uid(14, 0, 0)), "SOPClassUID"],
     ["bello/2/1/3", "max/1/1/1"]),
    ("i-class", "PS", "IMAGE", ["SOPClassUID=" + SOP["MR"], "SOPInstanceUID"],
     ["bello/2/1/1", "bello/2/1/2", "bello/2/1/3", "thunder/2/2/1", "thunder/2/2/2"]),
    ("i-number", "PS", "IMAGE", ["InstanceNumber=3", "SOPInstanceUID",
                                 "SeriesInstanceUID"],
     ["rex/2/1/3", "rex/3/1/3", "bello/2/1/3", "thunder/1/1/3"]),
    ("i-relational", "PS", "IMAGE",
     ["PatientSpeciesDescription=Equus*", "Modality=CT", "SOPInstanceUID",
      "NumberOfSeriesRelatedInstances", "PatientName"],
     ["thunder/2/1/1", "thunder/2/1/2"]),
]

# Identifiers written by pydicom in a Specific Character Set other than UTF-8 and sent as
# query files: (id, charset, level, keys, hand-derived matches).
CHARSET_ROWS = [
    ("latin1", "ISO_IR 100", "STUDY", [("PatientName", "müller*"), ("StudyInstanceUID", None),
                                        ("ResponsibleOrganization", None)],
     ["bello/1", "bello/2"]),
    ("cyrillic", "ISO_IR 144", "STUDY", [("PatientName", "Иванов^*"), ("StudyInstanceUID", None),
                                          ("PatientBreedDescription", None)], ["sharik/1"]),
    ("jis", IR87, "STUDY", [("PatientName", "*=山田^タマ=*"), ("StudyInstanceUID", None),
                            ("StudyDescription", None)], ["tama/1"]),
    ("jis-breed", IR87, "STUDY", [("PatientBreedDescription", "三毛猫"),
                                  ("StudyInstanceUID", None)],
     ["tama/1", "spike/1", "max/1"]),  # spike and max: unknown breed
    ("gb18030", "GB18030", "STUDY", [("ResponsiblePerson", "王^*"), ("StudyInstanceUID", None),
                                      ("ResponsibleOrganization", None)],
     ["wangcai/1", "spike/1"]),
    ("utf8", "ISO_IR 192", "STUDY", [("ResponsibleOrganization", "Clínica*"),
                                      ("StudyInstanceUID", None)],
     ["michi/1", "michi/2", "spike/1"]),
]


# ---------------------------------------------------------------------------------------------
# Fixtures

@pytest.fixture(scope="module")
def model():
    return Model()


@pytest.fixture(scope="module")
def vet_data(tmp_path_factory):
    """The archive imported once per module; returns (data folder, a copy of it for the
    hostile tests, which run their own servers)."""
    root = str(tmp_path_factory.mktemp("find"))
    objects = os.path.join(root, "objects")
    n = write_archive(objects)
    data = os.path.join(root, "data")
    r = run(["import", "--data", data, objects], timeout=60 * SLOW)
    assert r.returncode == 0, r.describe()
    assert r.stdout.decode().startswith("%d stored, 0 identical" % n), r.stdout
    spare = os.path.join(root, "data-spare")
    shutil.copytree(data, spare)
    return data, spare


@pytest.fixture(scope="module")
def vet(vet_data, tmp_path_factory):
    """One `vetpacs serve` for the whole query table (about 100 queries: one server, not one
    each), checked at the end as the server fixture checks its own: exit 0 on SIGTERM and no
    sanitizer report."""
    srv = Server(str(tmp_path_factory.mktemp("srv")), vet_data[0], None, None, "VETPACS")
    srv.start()
    yield srv
    srv.stop(check=True)


# ---------------------------------------------------------------------------------------------
# Checking answers

def parse_keys(keys):
    """[(keyword, value or None)] of -k keys; "Seq[0].CodeValue=v" is the sequence's key."""
    out = []
    for k in keys:
        name, eq, value = k.partition("=")
        m = re.match(r"(\w+)\[0\]\.CodeValue$", name)
        out.append((m.group(1) if m else name, value if eq else None))
    return out


EXTRA_TAGS = {0x00080005, 0x00080052, 0x00080054}  # charset, level, Retrieve AE Title


def check_answers(model, level, parsed, expected, a):
    """The answers are exactly the expected entities, each with the values the model holds
    for every key asked for, and nothing else (PS3.4 C.4.1.1.3.2)."""
    assert a.returncode == 0 and a.status == 0, \
        "status %r (%s)\n%s" % (a.status, a.comment, a.out[-3000:])
    uk = UNIQUE[level]
    got = {}
    asked = {pydicom.datadict.tag_for_keyword(kw) for kw, _ in parsed}
    for ds in a.datasets:
        assert ds.SpecificCharacterSet == "ISO_IR 192"
        assert ds.QueryRetrieveLevel == level
        extra = {int(t) for t in ds.keys()} - asked - EXTRA_TAGS
        assert not extra, "keys not asked for: %s" % sorted("%08X" % t for t in extra)
        u = str(ds.get(uk, ""))
        assert u not in got, "%s answered twice" % model.names.get(u, u)
        got[u] = ds
    assert sorted(model.names.get(u, "?" + u) for u in got) == \
        sorted(e["_name"] for e in expected)
    bad = []
    for e in expected:
        ds = got[e[uk]]
        for kw, _ in parsed:
            kind = KEYS[kw][1]
            if kw not in ds:
                bad.append("%s: %s missing" % (e["_name"], kw))
                continue
            have, want = norm(kind, ds[kw].value), e[kw]
            if kind in ("mods", "sopclasses"):
                want = sorted(want)
            if have != want:
                bad.append("%s: %s = %r, expected %r" % (e["_name"], kw, have, want))
    assert not bad, "\n".join(bad)


def run_rows(srv, workdir, root, level, keys):
    keys = list(keys)
    kws = [k for k, _ in parse_keys(keys)]
    assert len(set(kws)) == len(kws), "a key twice: findscu keeps the last -k only"
    if UNIQUE[level] not in [k for k, _ in parse_keys(keys)]:
        keys.append(UNIQUE[level])
    ks = ["QueryRetrieveLevel=" + level] + keys
    if any(ord(c) > 127 for k in keys for c in k):
        ks.insert(0, "SpecificCharacterSet=ISO_IR 192")
    return parse_keys(keys), findscu(srv, workdir, root, ks)


def model_check(model, level, parsed, want):
    expected = model.matches(level, parsed)
    names = sorted(e["_name"] for e in expected)
    if want == "*":
        assert len(names) == len(model.entities[level])
    elif want is not None:
        assert names == sorted(want), "the model disagrees with the hand-derived matches"
    return expected


# ---------------------------------------------------------------------------------------------
# The query table

ROWS = [pytest.param("patient" if r == "P" else "study", level, keys, want,
                     id="%s-%s" % (qid, "P" if r == "P" else "S"))
        for qid, roots, level, keys, want in QUERIES for r in roots]


@pytest.mark.parametrize("root,level,keys,want", ROWS)
def test_query(vet, model, tmp_path, root, level, keys, want):
    parsed, a = run_rows(vet, str(tmp_path), root, level, keys)
    check_answers(model, level, parsed, model_check(model, level, parsed, want), a)


@pytest.mark.parametrize("charset,level,keys,want",
                         [pytest.param(*r[1:], id=r[0]) for r in CHARSET_ROWS])
def test_query_in_other_character_sets(vet, model, tmp_path, charset, level, keys, want):
    """Keys encoded by pydicom in the Identifier's Specific Character Set are matched as
    the text they stand for (PS3.4 C.2.2.2: the character set is not matched but says how the
    other keys are encoded); answers come back in UTF-8."""
    expected = model_check(model, level, keys, want)
    path = identifier_file(str(tmp_path / "q.dcm"), level, keys, charset)
    a = findscu(vet, str(tmp_path), "study", files=[path])
    check_answers(model, level, keys, expected, a)


def test_latin1_key_on_the_command_line(vet, model, tmp_path):
    """findscu -k with ISO_IR 100 and the key's bytes in Latin-1, as a Latin-1 terminal
    sends them."""
    key = os.fsdecode("PatientName=M\xfcller^*".encode("latin-1"))
    a = findscu(vet, str(tmp_path), "patient", ["SpecificCharacterSet=ISO_IR 100",
                                                "QueryRetrieveLevel=PATIENT", key, "PatientID"])
    parsed = [("PatientName", "Müller^*"), ("PatientID", None)]
    check_answers(model, "PATIENT", parsed, model_check(model, "PATIENT", parsed, ["bello"]), a)


def test_code_sequence_item_keys_returned(vet, tmp_path):
    a = findscu(vet, str(tmp_path), "patient",
                ["QueryRetrieveLevel=PATIENT", "PatientID=VP-0007",
                 "PatientSpeciesCodeSequence[0].CodeValue",
                 "PatientSpeciesCodeSequence[0].CodingSchemeDesignator",
                 "PatientSpeciesCodeSequence[0].CodeMeaning"])
    assert a.status == 0 and len(a.datasets) == 1
    item = a.datasets[0].PatientSpeciesCodeSequence[0]
    assert (item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning) == \
        ("35354009", "SCT", "Equus caballus")


def code_of(p, which):
    """The code item written for patient p (write_archive): None when it has no code."""
    meaning, value = p[which]
    if not value:
        return None
    return {"CodeValue": value, "CodingSchemeDesignator": "SCT" if value[0].isdigit() else "99VP",
            "CodeMeaning": meaning}


def test_code_sequence_whole_item(vet, tmp_path):
    """An empty item asks for the whole stored item (C.2.2.2.6): the Code Value, Coding Scheme
    Designator and Code Meaning as written, in UTF-8 whatever the object's character set, and
    no Coding Scheme Version, which the objects do not have; no item without a code."""
    a = findscu(vet, str(tmp_path), "patient",
                ["QueryRetrieveLevel=PATIENT", "PatientID", "PatientBreedCodeSequence"])
    assert a.status == 0 and len(a.datasets) == len(PATIENTS)
    got = {str(ds.PatientID): ds.PatientBreedCodeSequence for ds in a.datasets}
    for pk, p in PATIENTS.items():
        want, seq = code_of(p, "breed"), got[p["PatientID"]]
        assert len(seq) == (1 if want else 0), pk
        if want:
            assert {e.keyword: str(e.value) for e in seq[0]} == want, pk


# (key of the breed code item, matching patients): every item key matches (C.2.2.2.6), an
# animal without a code matches as unknown (C.2.2.1.1)
CODE_ITEM_ROWS = [
    ("scheme", "CodingSchemeDesignator=99VP",
     ["rex", "bello", "michi", "tama", "sharik", "wangcai", "thunder", "spike", "rexalone", "max"]),
    ("scheme-other", "CodingSchemeDesignator=SCT", ["wangcai", "spike", "max"]),
    ("meaning", "CodeMeaning=*Münster*", ["bello", "wangcai", "spike", "max"]),
    ("meaning-kanji", "CodeMeaning=三毛猫", ["tama", "wangcai", "spike", "max"]),
]


@pytest.mark.parametrize("key,want", [pytest.param(*r[1:], id=r[0]) for r in CODE_ITEM_ROWS])
def test_code_sequence_item_key_matching(vet, tmp_path, key, want):
    """Matching on an item key other than the Code Value; the answer's item holds only the
    item key asked for."""
    name = key.partition("=")[0]
    a = findscu(vet, str(tmp_path), "patient",
                ["SpecificCharacterSet=ISO_IR 192", "QueryRetrieveLevel=PATIENT", "PatientID",
                 "PatientBreedCodeSequence[0]." + key])
    assert a.status == 0, (a.status, a.comment)
    names = {p["PatientID"]: pk for pk, p in PATIENTS.items()}
    assert sorted(names[str(ds.PatientID)] for ds in a.datasets) == sorted(want)
    for ds in a.datasets:
        want_item = code_of(PATIENTS[names[str(ds.PatientID)]], "breed")
        seq = ds.PatientBreedCodeSequence
        assert len(seq) == (1 if want_item else 0)
        if want_item:
            assert {e.keyword: str(e.value) for e in seq[0]} == {name: want_item[name]}


# ---------------------------------------------------------------------------------------------
# Refused identifiers: A900 with an Error Comment saying why (PS3.4 C.4.1.1.4; the DIMSE edge
# maps VP_EINVAL to A900, src/dimse/status.c)

REFUSED = [
    ("unknown-level", "study", ["QueryRetrieveLevel=NOSUCH", "PatientName"], "unknown"),
    ("missing-level", "study", ["PatientName", "StudyInstanceUID"], "missing"),
    ("lowercase-level", "study", ["QueryRetrieveLevel=study"], "unknown"),
    ("two-levels", "study", ["QueryRetrieveLevel=STUDY\\SERIES"], "unknown"),
    ("patient-in-study-root", "study", ["QueryRetrieveLevel=PATIENT", "PatientName"],
     "Study Root"),
    ("study-key-at-patient", "patient", ["QueryRetrieveLevel=PATIENT", "StudyDate"], "below"),
    ("series-key-at-study", "study", ["QueryRetrieveLevel=STUDY", "Modality=CT"], "below"),
    ("image-key-at-series", "study", ["QueryRetrieveLevel=SERIES", "SOPInstanceUID"], "below"),
    ("reversed-date", "study", ["QueryRetrieveLevel=STUDY", "StudyDate=20240131-20240101"],
     "ends before"),
    ("reversed-time", "study", ["QueryRetrieveLevel=STUDY", "StudyTime=1200-1100"],
     "ends before"),
    ("bad-date", "study", ["QueryRetrieveLevel=STUDY", "StudyDate=2024-01-01"], "range"),
    ("bad-time", "study", ["QueryRetrieveLevel=STUDY", "StudyTime=2500"], "not valid"),
    ("date-wildcard", "study", ["QueryRetrieveLevel=STUDY", "StudyDate=2024*"], "wild"),
    ("uid-wildcard", "study", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID=1.2.*"],
     "not a UID"),
    ("uid-letters", "study", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID=1.2.abc\\1.3"],
     "not a UID"),
    ("is-not-number", "study", ["QueryRetrieveLevel=SERIES", "SeriesNumber=one"],
     "not a number"),
    ("two-code-items", "patient", ["QueryRetrieveLevel=PATIENT",
                                   "PatientSpeciesCodeSequence[0].CodeValue=1",
                                   "PatientSpeciesCodeSequence[1].CodeValue=2"], "items"),
]


@pytest.mark.parametrize("root,keys,why", [pytest.param(*r[1:], id=r[0]) for r in REFUSED])
def test_refused_identifiers(vet, tmp_path, root, keys, why):
    a = findscu(vet, str(tmp_path), root, keys)
    assert a.datasets == [], keys
    assert a.status == 0xA900, (a.status, a.comment, a.out[-2000:])
    assert a.comment and why.lower() in a.comment.lower(), a.comment


# ---------------------------------------------------------------------------------------------
# Hostile identifiers

def _implicit(group, element, value):
    return struct.pack("<HHI", group, element, len(value)) + value


def c_find_rq(sop_class, message_id):
    ui = sop_class.encode() + (b"\0" if len(sop_class) % 2 else b"")
    return command_set([(0x0002, ui), (0x0100, struct.pack("<H", 0x0020)),
                        (0x0110, struct.pack("<H", message_id)), (0x0700, b"\0\0"),
                        (0x0800, b"\0\0")])


def raw_find(assoc, dataset):
    """Sends a C-FIND-RQ with the raw Implicit VR LE data set; returns (final status, Error
    Comment). A hostile identifier never matches: a pending answer fails the test."""
    assoc.message_id += 1
    assoc.send_message(1, c_find_rq(STUDY_ROOT, assoc.message_id), dataset)
    rsp = assoc.read_response()
    status = struct.unpack("<H", rsp[0x0900])[0]
    assert status not in (0xFF00, 0xFF01), "a hostile identifier matched"
    return status, rsp.get(0x0902, b"").rstrip(b"\0 ").decode("ascii", "replace")


LEVEL_STUDY = _implicit(0x0008, 0x0052, b"STUDY ")
DEEP = b""
for _ in range(200):  # 200 nested sequences of undefined length
    DEEP = (struct.pack("<HHI", 0x0040, 0xA730, 0xFFFFFFFF) +
            struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF) + DEEP +
            struct.pack("<HHI", 0xFFFE, 0xE00D, 0) + struct.pack("<HHI", 0xFFFE, 0xE0DD, 0))

HOSTILE = [
    # undecodable data sets: C000-class "unable to process" (VP_EPARSE/ETRUNC)
    ("length-past-end", struct.pack("<HHI", 0x0008, 0x0052, 200) + b"STUDY ", 0xC000),
    ("three-bytes", b"\x01\x02\x03", 0xC000),
    ("item-outside-sequence", LEVEL_STUDY + struct.pack("<HHI", 0xFFFE, 0xE000, 4) + b"abcd",
     0xC000),
    ("unterminated-sequence", LEVEL_STUDY + struct.pack("<HHI", 0x0010, 0x2202, 0xFFFFFFFF) +
     struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF), 0xC000),
    # the decoder's nesting limit: a limit, A700 (VP_ELIMIT)
    ("nesting-200-deep", LEVEL_STUDY + DEEP, 0xA700),
    # decodable but not a valid identifier: A900
    ("empty", b"", 0xA900),
    ("level-binary", _implicit(0x0008, 0x0052, b"\xff\xfe\x00\x01"), 0xA900),
    ("level-sequence", struct.pack("<HHI", 0x0008, 0x0052, 0xFFFFFFFF) +
     struct.pack("<HHI", 0xFFFE, 0xE0DD, 0), 0xA900),
    ("date-as-sequence", LEVEL_STUDY + struct.pack("<HHI", 0x0008, 0x0020, 0xFFFFFFFF) +
     struct.pack("<HHI", 0xFFFE, 0xE0DD, 0), 0xA900),
    # limits of the query compiler (PS3.4 C.2.2.2 lets keys exceed the VR's length): A700
    ("name-70k-pattern", LEVEL_STUDY + _implicit(0x0010, 0x0010, b"*?" * 35000), 0xA700),
    ("name-5000-values", LEVEL_STUDY + _implicit(0x0010, 0x0010, b"\\".join(
        b"N%04d*" % i for i in range(5000)) + b" "), 0xA700),
]


@pytest.mark.parametrize("dataset,status", [pytest.param(*h[1:], id=h[0]) for h in HOSTILE])
def test_hostile_identifiers(server, vet_data, dataset, status):  # noqa: F811
    srv = server(data=vet_data[1])
    assoc = RawAssoc(srv, contexts=((1, STUDY_ROOT, (IMPLICIT_LE,)),))
    assert assoc.ok and 1 in assoc.accepted
    t0 = time.monotonic()
    got, comment = raw_find(assoc, dataset)
    assert time.monotonic() - t0 < 5 * SLOW
    assert got != 0x0000, "a hostile identifier was answered Success"
    if status == 0xC000:
        assert got & 0xF000 == 0xC000, (hex(got), comment)
    else:
        assert got == status, (hex(got), comment)
    assert comment, "a failure says why in its Error Comment"
    assert assoc.echo() == 0  # the association goes on
    assoc.release()
    assert_echo(srv)


def uid_list_file(path, n, width):
    base = "1.2.826.0.1.3680043.9.7433.43."
    uids = [(base + str(i) + ".").ljust(width, "1")[:width] for i in range(n)]
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = uids
    write_part10(ds, path, STUDY_ROOT, "1.2.3.4", ImplicitVRLittleEndian)


def test_uid_list_of_20000_short_uids(vet, tmp_path):
    """List of UID Matching (C.2.2.2.2) with 20,000 UIDs: more than the 10,000 accepted, so
    A700 Refused: Out of Resources with a comment naming the limit, refused before anything
    is allocated for them."""
    path = str(tmp_path / "q.dcm")
    uid_list_file(path, 20000, 34)
    t0 = time.monotonic()
    a = findscu(vet, str(tmp_path), "study", files=[path])
    assert time.monotonic() - t0 < 5 * SLOW
    assert a.status == 0xA700 and a.datasets == [], (a.status, a.comment)
    assert "20000 values" in a.comment and "10000" in a.comment, a.comment
    assert_echo(vet)


def test_uid_list_of_20000_long_uids(server, vet_data, tmp_path):  # noqa: F811
    srv = server(data=vet_data[1])
    path = str(tmp_path / "q.dcm")
    uid_list_file(path, 20000, 64)
    a = findscu(srv, str(tmp_path), "study", files=[path])
    assert_echo(srv)
    assert a.status == 0xA700 and a.comment, (a.status, a.out[-1000:])


# ---------------------------------------------------------------------------------------------
# A larger archive: wild-card-only keys take bounded time

BULK_ROOT = "1.2.826.0.1.3680043.9.7433.44"


def write_bulk(folder, n):
    """n small instances, 5 per series and study, 50 per animal: one pydicom template whose
    fixed-width markers are replaced byte for byte (fast)."""
    os.makedirs(folder)
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = SOP["OT"]
    ds.SOPInstanceUID = BULK_ROOT + ".3.999991"  # markers: 6 digits, no leading zero
    ds.StudyInstanceUID = BULK_ROOT + ".1.999992"
    ds.SeriesInstanceUID = BULK_ROOT + ".2.999992"
    ds.PatientID = "BULK999993"
    ds.PatientName = "Bulk^Pet999993"
    ds.Modality = "OT"
    ds.StudyDate = "20240101"
    path = os.path.join(folder, "template.dcm")
    write_part10(ds, path, SOP["OT"], ds.SOPInstanceUID)
    with open(path, "rb") as f:
        template = f.read()
    os.unlink(path)
    for i in range(n):
        b = template.replace(b"999991", b"1%05d" % i).replace(b"999992", b"1%05d" % (i // 5))
        b = b.replace(b"999993", b"1%05d" % (i // 50))
        with open(os.path.join(folder, "%05d.dcm" % i), "wb") as f:
            f.write(b)
    return ["Bulk^Pet1%05d" % p for p in range((n + 49) // 50)]


def test_wildcard_only_keys_on_a_large_archive(server, tmp_path):  # noqa: F811
    n = 2000
    names = write_bulk(str(tmp_path / "bulk"), n)
    data = str(tmp_path / "data")
    r = run(["import", "--data", data, str(tmp_path / "bulk")], timeout=120 * SLOW)
    assert r.returncode == 0 and r.stdout.decode().startswith("%d stored" % n), r.describe()
    srv = server(data=data)
    t0 = time.monotonic()
    a = findscu(srv, str(tmp_path), "study", ["QueryRetrieveLevel=IMAGE", "PatientName=*",
                                              "SOPInstanceUID"],
                debug=False, timeout=120)
    took = time.monotonic() - t0
    assert a.status == 0 and len(a.datasets) == n, a.out[-2000:]
    assert len({str(d.SOPInstanceUID) for d in a.datasets}) == n
    assert took < 20 * SLOW, took
    for pattern in ("**", "*?*?*?*?*?*?*?*?*?*?*?*", "?*" * 30, "*" + "a*" * 40,
                    "*".join("Bulk^Pet100001") + "*", "*t10001?"):
        t0 = time.monotonic()
        a = findscu(srv, str(tmp_path), "study", ["QueryRetrieveLevel=STUDY",
                                                  "PatientName=" + pattern,
                                                  "StudyInstanceUID"], debug=False)
        assert a.status == 0, (pattern, a.out[-1000:])
        want = sum(5 * 2 for nm in names if wild(pattern, nm, True))  # 10 studies per animal
        assert len(a.datasets) == want, pattern
        assert time.monotonic() - t0 < 10 * SLOW, pattern
    assert_echo(srv)


# ---------------------------------------------------------------------------------------------
# `vetpacs find` (the C-FIND SCU) against `vetpacs serve`

def test_vetpacs_find_scu(vet, model):
    """One line per match with the keys asked for, the final status on stderr, exit 1 on a
    refused identifier, 2 on a bad keyword."""
    r = run(["find", "--call", "VETPACS", "127.0.0.1", str(vet.port), "StudyInstanceUID",
             "PatientName", "PatientSpeciesDescription=Felis*"])
    assert r.returncode == 0, r.describe()
    lines = r.stdout.decode().splitlines()
    cats = {e["StudyInstanceUID"]: e for e in model.matches(
        "STUDY", [("PatientSpeciesDescription", "Felis*")])}
    assert len(lines) == len(cats) == 4
    for line in lines:
        fields = dict(f.split("=", 1) for f in line.split("  "))
        e = cats[fields["StudyInstanceUID"]]
        assert fields["PatientName"] == e["PatientName"]
        assert fields["PatientSpeciesDescription"] == e["PatientSpeciesDescription"]
    assert "%d matches; 0000" % len(cats) in r.stderr
    r = run(["find", "--call", "VETPACS", "127.0.0.1", str(vet.port),
             "QueryRetrieveLevel=PATIENT", "PatientID", "PatientName"])
    assert r.returncode == 0, r.describe()
    assert len(r.stdout.decode().splitlines()) == len(PATIENTS)
    r = run(["find", "--call", "VETPACS", "127.0.0.1", str(vet.port),
             "StudyDate=20240131-20240101"])
    assert r.returncode == 1 and "A900" in r.stderr, r.describe()
    r = run(["find", "--call", "VETPACS", "127.0.0.1", str(vet.port), "NoSuchKeyword"])
    assert r.returncode == 2 and "not a DICOM keyword" in r.stderr, r.describe()
