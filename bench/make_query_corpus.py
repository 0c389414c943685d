#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Generate the query benchmark corpus for bench/query.sh (deterministic for a given --seed).

    /usr/bin/python3 bench/make_query_corpus.py DEST --studies N [--per-study K] [--pixels P]
                                                [--retrieve R] [--seed S] [--jobs J]

A veterinary practice's archive: animals (patients) with their owners, most with one study,
some with many; Patient Name `OWNER^Pet` (the pet alone for ~20 %), CP-643 attributes from
bench/make_corpus.py (species and breed with code sequences, neuter status, responsible
person, microchip), species CANINE, FELINE, EQUINE and a few exotics, several clinics (the
Issuer of Patient ID), study dates spread over 2019-2023, modalities DX, CR, US and CT.

    --per-study 0 (default)  a few series and instances per study, varying with the modality
                             (DX/CR 1-2 series x 1-4 views, US 1-2 x 2-8, CT 1-2 x 4-12)
    --per-study K            exactly K instances per study (split into 1, 2 or 4 series)
    --pixels P               P x P pixels (16-bit grey; US 8-bit RGB), default 128
    --retrieve R             one more CT study of R instances (4 series, 512x512x16 bit,
                             ~0.5 MB each) for the C-MOVE / C-GET test; it counts in --studies

DEST is replaced as a whole and holds
    files/gNNN/SSSSSS/SE_IIII.dcm   the studies, Explicit VR Little Endian, defined lengths
    files/retrieve/SE_IIII.dcm      the retrieve study (when --retrieve)
    queries.json   the query targets and the number of matches each must give, computed from
                   the plan (not by querying anything): bench/query.py checks every system
                   against them
    STAMP          "sha256-of-this-script-and-make_corpus studies per-study pixels retrieve seed"

Each study's data set is built once with pydicom (make_corpus.base_dataset and friends), then
every instance is the same bytes with its series and instance attributes spliced in, so a
million files take minutes, not hours. Use Debian's /usr/bin/python3 (python3-pydicom 2.3,
python3-numpy).
"""
import argparse
import datetime
import hashlib
import json
import multiprocessing
import os
import shutil
import struct
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
import make_corpus as mc  # noqa: E402

GENERATOR_VERSION = "1"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
SOP = {"DX": "1.2.840.10008.5.1.4.1.1.1.1", "CR": "1.2.840.10008.5.1.4.1.1.1",
       "US": "1.2.840.10008.5.1.4.1.1.6.1", "CT": "1.2.840.10008.5.1.4.1.1.2"}
MANUFACTURER = {"DX": "Fujifilm", "CR": "Carestream", "US": "Mindray", "CT": "Siemens"}
BODY = {"DX": ["THORAX", "ABDOMEN", "PELVIS", "STIFLE", "ELBOW", "HOOF", "SPINE"],
        "CR": ["THORAX", "ABDOMEN", "PELVIS", "STIFLE", "SKULL"],
        "US": ["ABDOMEN", "HEART", "BLADDER", "TENDON"],
        "CT": ["HEAD", "THORAX", "ABDOMEN", "SPINE", "NASAL CAVITY"]}
MODALITY_WEIGHTS = [("DX", 0.45), ("CR", 0.15), ("US", 0.28), ("CT", 0.12)]

# (description, SNOMED CT code, code meaning, breeds, weight kg, share)
SPECIES = [
    ("CANINE", "448771007", "Canis lupus familiaris",
     ["Labrador Retriever", "German Shepherd Dog", "Border Collie", "Dachshund",
      "French Bulldog", "Jack Russell Terrier", "Golden Retriever", "Beagle", "Cocker Spaniel",
      "Staffordshire Bull Terrier", "Mixed breed dog"], (3, 45), 0.52),
    ("FELINE", "448169003", "Felis catus",
     ["Domestic Shorthair", "Domestic Longhair", "Maine Coon", "Siamese", "British Shorthair",
      "Persian", "Bengal"], (2, 8), 0.30),
    ("EQUINE", "388445009", "Equus caballus",
     ["Thoroughbred", "Quarter Horse", "Haflinger", "Welsh Pony", "Friesian", "Warmblood"],
     (200, 650), 0.09),
    ("LAGOMORPH", "447482001", "Oryctolagus cuniculus",
     ["Netherland Dwarf", "Lionhead", "Mixed breed rabbit"], (1, 4), 0.04),
    ("AVIAN", "125097000", "Psittaciformes", ["African Grey Parrot", "Budgerigar", "Cockatiel"],
     (0.03, 0.6), 0.02),
    ("REPTILE", "116733001", "Testudines", ["Hermann's Tortoise", "Red-eared Slider"],
     (0.2, 3), 0.015),
    ("CAVIID", "40210001", "Cavia porcellus", ["Abyssinian", "American Guinea Pig"], (0.7, 1.2),
     0.015),
]
# Owner surnames, upper case as practice systems export them; SMITHERS makes "SMITH*" a real
# prefix match, not an equality. Weights are rough frequencies.
SURNAMES = (["SMITH"] * 6 + ["JONES"] * 4 + ["BROWN"] * 4 + ["MÜLLER"] * 3 + ["GARCÍA"] * 3 +
            ["SMITHERS", "WILLIAMS", "TAYLOR", "DAVIES", "EVANS", "WILSON", "THOMAS", "JOHNSON",
             "ROBERTS", "WALKER", "WRIGHT", "THOMPSON", "WHITE", "HUGHES", "EDWARDS", "GREEN",
             "HALL", "WOOD", "HARRIS", "MARTIN", "JACKSON", "CLARKE", "LEWIS", "O'BRIEN",
             "MURPHY", "KELLY", "DUBOIS", "LEFÈVRE", "MOREAU", "ROSSI", "RUSSO", "FERRARI",
             "NOWAK", "KOWALSKI", "JENSEN", "NIELSEN", "JANSSEN", "DE VRIES", "SCHMIDT",
             "SCHNEIDER", "FISCHER", "WEBER", "ANDERSSON", "JOHANSSON", "COSTA", "SILVA",
             "NAGY", "HORVÁTH", "NOVÁK", "POPESCU", "BAKER", "CARTER", "MITCHELL", "PARKER",
             "COLLINS", "STEWART", "MORRIS", "COOK", "BELL", "WARD", "FOX", "REED", "PRICE"])
GIVEN = ["Anna", "Jörg", "Marie", "Pedro", "Lucy", "Henrik", "Sofia", "Tom", "Inès", "Karl",
         "Emma", "James", "Olivia", "Noah", "Chloé", "Luca", "Hannah", "Sean", "Maja", "Ben"]
PETS = ["Rex", "Bella", "Milo", "Luna", "Oscar", "Nala", "Max", "Coco", "Felix", "Daisy",
        "Thunder", "Storm", "Biscuit", "Pepper", "Ziggy", "Moose", "Hazel", "Tigger", "Charlie",
        "Poppy", "Buddy", "Molly", "Simba", "Ruby", "Bailey", "Lola", "Jasper", "Willow",
        "Shadow", "Maggie", "Bruno", "Kiwi", "Sheldon", "Dotty", "Flash", "Nutmeg"]
CLINICS = ["Riverside Veterinary Hospital", "Tierklinik Am See", "Clinique Vétérinaire du Parc",
           "Northfield Equine Centre", "Harbour Road Animal Clinic", "Ospedale Veterinario Sud"]
DATE0 = datetime.date(2019, 1, 1)
DAYS = (datetime.date(2023, 12, 31) - DATE0).days + 1

# The queries bench/query.py runs (study level unless said); targets and expected counts are
# filled in by plan().
Q_DATE_RANGE = "20220101-20221231"
Q_NAME = "SMITH*"
Q_SPECIES = "CAN*"
Q_MONTH = "20220601-20220630"


def pick(r, weighted):
    x = r.random() * sum(w for _, w in weighted)
    for v, w in weighted:
        x -= w
        if x < 0:
            return v
    return weighted[-1][0]


def plan(studies, per_study, retrieve, seed):
    """-> (patients, studies, queries): plain data, deterministic."""
    r = np.random.default_rng(seed * 7919 + 17)
    n_regular = studies - (1 if retrieve else 0)
    n_pat = max(1, int(n_regular * 0.45))
    ids = r.permutation(9000000)[:n_pat] + 1000000
    patients = []
    for p in range(n_pat):
        sp = SPECIES[pick(r, [(i, s[5]) for i, s in enumerate(SPECIES)])]
        owner = SURNAMES[int(r.integers(len(SURNAMES)))]
        pet = PETS[int(r.integers(len(PETS)))]
        patients.append({
            "patient_id": "P%07d" % ids[p],
            "owner": owner,
            "given": GIVEN[int(r.integers(len(GIVEN)))],
            "pet": pet,
            # CP-643: "OWNER^Pet" at most sites, the pet alone at some
            "patient_name": ("%s^%s" % (owner, pet)) if r.random() < 0.8 else pet,
            "species": list(sp[:3]),
            "weight_range": list(sp[4]),
            "breed": sp[3][int(r.integers(len(sp[3])))],
            "sex": "MF"[int(r.integers(2))],
            "birth_year": 2006 + int(r.integers(17)),
            "birth": "%02d%02d" % (int(r.integers(1, 13)), int(r.integers(1, 29))),
            "clinic": CLINICS[int(r.integers(len(CLINICS)))],
            "chip": "%015d" % int(r.integers(10**15)),
            "charset": "ISO_IR 192" if r.random() < 0.5 else "ISO_IR 100",
        })
    # a few animals come back often (follow-ups), most once or twice
    weights = r.lognormal(0.0, 0.7, n_pat)
    weights /= weights.sum()
    owner_of = r.choice(n_pat, size=n_regular, p=weights)
    out = []
    for s in range(n_regular):
        mod = pick(r, MODALITY_WEIGHTS)
        if per_study:
            n_series = {"CT": 2, "US": 4, "DX": 4, "CR": 4}[mod] if per_study >= 4 else 1
            n_series = min(n_series, per_study)
            series = [per_study // n_series + (1 if i < per_study % n_series else 0)
                      for i in range(n_series)]
        else:
            n_series = 1 + int(r.random() < {"DX": 0.3, "CR": 0.2, "US": 0.3, "CT": 0.5}[mod])
            lo, hi = {"DX": (1, 4), "CR": (1, 4), "US": (2, 8), "CT": (4, 12)}[mod]
            series = [int(r.integers(lo, hi + 1)) for _ in range(n_series)]
        day = DATE0 + datetime.timedelta(days=int(r.integers(DAYS)))
        out.append({"study": s, "patient": int(owner_of[s]), "modality": mod, "series": series,
                    "date": day.strftime("%Y%m%d"),
                    "time": "%02d%02d%02d" % (8 + int(r.integers(10)), int(r.integers(60)),
                                              int(r.integers(60))),
                    "accession": "A%08d" % (10000000 + s)})
    if retrieve:
        k = retrieve // 4
        out.append({"study": n_regular, "patient": 0, "modality": "CT", "retrieve": True,
                    "series": [k + (1 if i < retrieve % 4 else 0) for i in range(4)],
                    "date": "20230615", "time": "101500", "accession": "A%08d" % 99999999})
    for st in out:
        st["study_uid"] = mc.uid(seed, "qstudy", st["study"])

    return patients, out, expected(patients, out, seed)


def expected(patients, studies, seed):
    """The query targets, chosen from the plan, and the number of matches each must give."""
    per_patient = {}
    for st in studies:
        per_patient[st["patient"]] = per_patient.get(st["patient"], 0) + 1
    busiest = max(sorted(per_patient), key=lambda p: per_patient[p])
    # a study with several series, an eighth into the archive (inside dcmqrscp's subset)
    some = [st for st in studies[len(studies) // 8:] if len(st["series"]) > 1
            and not st.get("retrieve")]
    target = some[0] if some else studies[len(studies) // 8]
    queries = {
        "patient_id": {"value": patients[busiest]["patient_id"]},
        "name_prefix": {"value": Q_NAME},
        "date_range": {"value": Q_DATE_RANGE},
        "species": {"value": Q_SPECIES},
        "universal": {"value": ""},
        "series_of_study": {"study_uid": target["study_uid"]},
        "images_of_series": {"study_uid": target["study_uid"],
                             "series_uid": mc.uid(seed, "qseries", target["study"], 1)},
        "us_series_in_month": {"value": Q_MONTH, "modality": "US"},
    }
    rs = [st for st in studies if st.get("retrieve")]
    if rs:
        queries["retrieve"] = {"study_uid": rs[0]["study_uid"], "folder": "files/retrieve"}
    for k, v in counts(patients, studies, queries, seed).items():
        if isinstance(queries.get(k), dict):
            queries[k]["count"] = v
        else:
            queries[k] = v
    return queries


def counts(patients, studies, q, seed):
    """Number of matches of each query of q over studies (the whole plan or a subset)."""
    def studies_where(f):
        return sum(1 for st in studies if f(st, patients[st["patient"]]))

    lo, hi = q["date_range"]["value"].split("-")
    mlo, mhi = q["us_series_in_month"]["value"].split("-")
    name = q["name_prefix"]["value"].rstrip("*").upper()
    species = q["species"]["value"].rstrip("*")
    by_uid = {st["study_uid"]: st for st in studies}
    target = by_uid.get(q["series_of_study"]["study_uid"])
    series1 = (target and mc.uid(seed, "qseries", target["study"], 1)
               == q["images_of_series"]["series_uid"])
    out = {
        "patient_id": studies_where(lambda st, p: p["patient_id"] == q["patient_id"]["value"]),
        "name_prefix": studies_where(lambda st, p: p["patient_name"].upper().startswith(name)),
        "date_range": studies_where(lambda st, p: lo <= st["date"] <= hi),
        "species": studies_where(lambda st, p: p["species"][0].startswith(species)),
        "universal": len(studies),
        "series_of_study": len(target["series"]) if target else 0,
        "images_of_series": target["series"][0] if target and series1 else 0,
        "us_series_in_month": sum(len(st["series"]) for st in studies
                                  if st["modality"] == "US" and mlo <= st["date"] <= mhi),
        "instances": sum(sum(st["series"]) for st in studies),
        "studies": len(studies),
        "patients": len(set(st["patient"] for st in studies)),
    }
    if "retrieve" in q:
        rs = by_uid.get(q["retrieve"]["study_uid"])
        out["retrieve"] = sum(rs["series"]) if rs else 0
    return out


def study_folder(st):
    """Folder of a study's files, relative to the corpus."""
    if st.get("retrieve"):
        return os.path.join("files", "retrieve")
    return os.path.join("files", "g%03d" % (st["study"] // 1000), "%06d" % st["study"])


# ---- encoding -----------------------------------------------------------------------------

LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV",
            b"UV"}


def split_top(data):
    """Top-level elements of an Explicit VR Little Endian data set with defined lengths:
    {tag: bytes of the whole element}, in order."""
    parts = {}
    i, n = 0, len(data)
    while i < n:
        g, e = struct.unpack_from("<HH", data, i)
        vr = data[i + 4:i + 6]
        if vr in LONG_VRS:
            length, hdr = struct.unpack_from("<I", data, i + 8)[0], 12
        else:
            length, hdr = struct.unpack_from("<H", data, i + 6)[0], 8
        if length == 0xFFFFFFFF:
            raise ValueError("undefined length at (%04X,%04X)" % (g, e))
        parts[(g << 16) | e] = data[i:i + hdr + length]
        i += hdr + length
    return parts


def elem(tag, vr, text):
    """One short-form Explicit VR LE element with a text value (UI padded with NUL)."""
    v = text.encode("ascii")
    if len(v) % 2:
        v += b"\0" if vr == "UI" else b" "
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), len(v)) + v


def meta_header(sop_class, sop_uid):
    body = (struct.pack("<HH2sHI", 2, 1, b"OB", 0, 2) + b"\0\1" +
            elem(0x00020002, "UI", sop_class) + elem(0x00020003, "UI", sop_uid) +
            elem(0x00020010, "UI", EXPLICIT_LE) + elem(0x00020012, "UI", mc.IMPL_UID) +
            elem(0x00020013, "SH", "VPBENCH_1"))
    return (b"\0" * 128 + b"DICM" + struct.pack("<HH2sHI", 2, 0, b"UL", 4, len(body)) + body)


def encode(ds):
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset

    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    write_dataset(fp, ds)
    return fp.getvalue()


def modality_attrs(ds, mod, r):
    if mod == "CT":
        ds.ScanOptions = "HELICAL MODE"
        ds.SliceThickness = "1.0"
        ds.KVP = "120"
        ds.XRayTubeCurrent = str(int(r.integers(80, 300)))
        ds.ConvolutionKernel = "B30f"
        ds.PatientPosition = "FFS"
        ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
        ds.PixelSpacing = ["0.48828125", "0.48828125"]
        ds.WindowCenter = ["40", "400"]
        ds.WindowWidth = ["400", "1500"]
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.RescaleType = "HU"
    elif mod == "US":
        ds.SequenceOfUltrasoundRegions = mc.us_regions(r, False)
        ds.TransducerData = ["L7-3", "", ""]
        ds.ProcessingFunction = "ABD"
    else:
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.KVP = str(int(r.integers(50, 90)))
        ds.ExposureTime = str(int(r.integers(10, 100)))
        ds.XRayTubeCurrent = str(int(r.integers(100, 400)))
        ds.ImagerPixelSpacing = ["0.15", "0.15"]
        ds.ViewPosition = ["LL", "VD", "DV", "LAT"][int(r.integers(4))]
        ds.ViewCodeSequence = mc.seq([mc.code_item("R-10206", "SRT", "lateral", False)], False)
        ds.WindowCenter = "2048"
        ds.WindowWidth = "4096"
    ds.LossyImageCompression = "00"


def study_parts(seed, pat, st, pixels):
    """The study's data set, encoded, split into top-level elements."""
    r = mc.rng_for(seed, "qstudy", st["study"])
    mod = st["modality"]
    sp = pat["species"]
    year = int(st["date"][:4])
    age = max(0, year - pat["birth_year"])
    ctx = {
        "study": st["study"], "species": (sp[0], sp[1]), "breed": pat["breed"],
        "pet": pat["pet"], "owner": pat["owner"], "given": pat["given"],
        "patient_name": pat["patient_name"], "patient_id": pat["patient_id"],
        "birth": "%04d%s" % (pat["birth_year"], pat["birth"]), "age": "%03dY" % age,
        "sex": pat["sex"], "neutered": ["ALTERED", "UNALTERED"][int(r.integers(2))],
        "weight": round(float(r.uniform(*pat["weight_range"])), 1),
        "date": st["date"], "time": st["time"], "clinic": pat["clinic"],
        "accession": st["accession"], "study_uid": st["study_uid"], "charset": pat["charset"],
        "chip": pat["chip"],
    }
    ds = mc.base_dataset(ctx, "DX", 1, "1.2.3", 0, False, r)
    ds.SOPClassUID = SOP[mod]
    ds.Modality = mod
    ds.Manufacturer = MANUFACTURER[mod]
    ds.StationName = "%s%02d" % (mod, int(r.integers(1, 20)))
    body = BODY[mod][int(r.integers(len(BODY[mod])))]
    ds.BodyPartExamined = body
    ds.StudyDescription = "%s %s" % (mod, body.lower())
    ds.ProtocolName = "%s %s vet" % (mod, body.lower())
    ds.PerformedProcedureStepDescription = ds.StudyDescription
    ds.PatientSpeciesCodeSequence = mc.seq([mc.code_item(sp[1], "SCT", sp[2], False)], False)
    ds.ProcedureCodeSequence[0].CodeMeaning = "%s examination" % mod
    ds.AnatomicRegionSequence[0].CodeMeaning = body.title()
    ds.ResponsiblePerson = "%s^%s" % (pat["owner"], pat["given"])
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL" if mod == "CT" else ""]
    modality_attrs(ds, mod, r)
    if mod == "CT":
        ds.FrameOfReferenceUID = mc.uid(seed, "qfor", st["study"])
    n = 512 if st.get("retrieve") else pixels
    mc.image_pixel(ds, n, n, 1, mod == "US", r)
    ds.SpecificCharacterSet = pat["charset"]
    return split_top(encode(ds)), ds.SOPClassUID


def write_study(job):
    seed, folder, pat, st, pixels = job
    parts, sop_class = study_parts(seed, pat, st, pixels)
    os.makedirs(folder, exist_ok=True)
    tags = list(parts)
    n = 0
    for se, count in enumerate(st["series"], 1):
        series_uid = mc.uid(seed, "qseries", st["study"], se)
        parts[0x0020000E] = elem(0x0020000E, "UI", series_uid)
        parts[0x00200011] = elem(0x00200011, "IS", str(se))
        parts[0x0008103E] = elem(0x0008103E, "LO", "%s series %d" % (st["modality"], se))
        for i in range(count):
            sop_uid = mc.uid("qinst", series_uid, i)
            parts[0x00080018] = elem(0x00080018, "UI", sop_uid)
            parts[0x00200013] = elem(0x00200013, "IS", str(i + 1))
            if st["modality"] == "CT":
                pos = "%.1f" % (-i * 1.0)
                parts[0x00201041] = elem(0x00201041, "DS", pos)
            data = meta_header(sop_class, sop_uid) + b"".join(
                parts[t] for t in sorted(set(tags) | set(parts)))
            fd = os.open(os.path.join(folder, "%02d_%04d.dcm" % (se, i + 1)),
                         os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            n += 1
    return n


def stamp_text(studies, per_study, pixels, retrieve, seed):
    h = hashlib.sha256()
    for f in (os.path.abspath(__file__), os.path.join(HERE, "make_corpus.py")):
        with open(f, "rb") as fh:
            h.update(fh.read())
    return "%s %s studies %d per-study %d pixels %d retrieve %d seed %d" % (
        GENERATOR_VERSION, h.hexdigest()[:16], studies, per_study, pixels, retrieve, seed)


def generate(dest, studies, per_study=0, pixels=128, retrieve=0, seed=1, jobs=None,
             progress=None):
    dest = os.path.abspath(dest)
    if os.path.isdir(dest) and os.listdir(dest) and not os.path.exists(
            os.path.join(dest, "STAMP")):
        raise SystemExit("%s exists and is not a corpus made by this script" % dest)
    patients, plan_studies, queries = plan(studies, per_study, retrieve, seed)
    tmp = dest + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "files"))
    work = []
    for st in plan_studies:
        folder = os.path.join(tmp, study_folder(st))
        work.append((seed, folder, patients[st["patient"]], st, pixels))
    done = 0
    with multiprocessing.Pool(jobs or os.cpu_count() or 1) as pool:
        for n in pool.imap_unordered(write_study, work, chunksize=16):
            done += n
            if progress and done % 50000 < n:
                progress(done, queries["instances"])
    assert done == queries["instances"], (done, queries["instances"])
    with open(os.path.join(tmp, "queries.json"), "w") as f:
        json.dump(queries, f, indent=1)
    with open(os.path.join(tmp, "STAMP"), "w") as f:
        f.write(stamp_text(studies, per_study, pixels, retrieve, seed) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    os.rename(tmp, dest)
    return queries


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dest")
    ap.add_argument("--studies", type=int, default=2000)
    ap.add_argument("--per-study", type=int, default=0)
    ap.add_argument("--pixels", type=int, default=128)
    ap.add_argument("--retrieve", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--print-stamp", action="store_true")
    a = ap.parse_args()
    if a.print_stamp:
        print(stamp_text(a.studies, a.per_study, a.pixels, a.retrieve, a.seed))
        return 0
    if a.studies < 10:
        ap.error("--studies must be at least 10")
    q = generate(a.dest, a.studies, a.per_study, a.pixels, a.retrieve, a.seed, a.jobs,
                 lambda d, t: print("  %d / %d files" % (d, t), flush=True))
    print("make_query_corpus: %d studies, %d instances in %s/files"
          % (q["studies"], q["instances"], a.dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
