#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Generate the benchmark corpus for bench/parse.sh (deterministic for a given --seed).

    /usr/bin/python3 bench/make_corpus.py DEST [--count 2000] [--seed 1] [--jobs N]

DEST (bench/parse.sh uses bench/out/corpus, git-ignored) is replaced as a whole and holds
    roundtrip/NNNN_<kind>.dcm   --count files, realistic veterinary studies:
        ~72 % MR slices 256x256x16 bit        (~130 KB)
         20 % CT slices 512x512x16 bit        (~0.5 MB)
          6 % US single frames 640x480 RGB    (~0.9 MB)
        0.7 % US cine clips 640x480 RGB x 8   (~7.4 MB)
        0.8 % DX radiographs 2048x1536 .. 3000x2500 x16 bit (6-15 MB)
      every file carries ~140-155 elements in 10-12 sequences: CP-643 patient attributes
      (species, breed, neuter status, owner, microchip), procedure and request sequences, a
      private block; whole series are Explicit VR Little Endian (~85 %) or Implicit VR Little
      Endian (~15 %), and use defined or undefined sequence lengths.
    headeronly/{small_100k,dx_13m,rf_130m}.dcm  one identical 11 KB DX header (Explicit VR LE)
        in front of 16-bit pixel data: 212x212 (a 100 KB file), 2560x2560 (13 MB) and
        1024x1024 x 62 frames (130 MB), for the header-only read comparison.
    MANIFEST   one line per file: path, bytes, explicit|implicit
    STAMP      "sha256-of-this-script count seed": bench/parse.sh regenerates when it differs

Use Debian's /usr/bin/python3 (python3-pydicom 2.3, python3-numpy).
"""
import argparse
import hashlib
import multiprocessing
import os
import shutil
import sys
import uuid

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

GENERATOR_VERSION = "1"
UID_NAMESPACE = uuid.UUID("6f1c1d1e-7a39-4f62-9d55-1b2a7e0c0b01")
IMPL_UID = "2.25.220151236014521508913466346624838446126"

SOP = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "MR": "1.2.840.10008.5.1.4.1.1.4",
    "US": "1.2.840.10008.5.1.4.1.1.6.1",
    "USMF": "1.2.840.10008.5.1.4.1.1.3.1",
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",
    "RF": "1.2.840.10008.5.1.4.1.1.12.2",
}

# (species description, SNOMED CT code, breeds, weight range kg)
SPECIES = [
    ("Canis lupus familiaris", "448771007", "dog",
     ["Labrador Retriever", "German Shepherd Dog", "Border Collie", "Dachshund",
      "French Bulldog", "Jack Russell Terrier", "Golden Retriever", "Mixed breed dog"], (3, 45)),
    ("Felis catus", "448169003", "cat",
     ["Domestic Shorthair", "Maine Coon", "Siamese", "British Shorthair", "Persian"], (2, 8)),
    ("Equus caballus", "388445009", "horse",
     ["Thoroughbred", "Quarter Horse", "Haflinger", "Welsh Pony", "Friesian"], (200, 650)),
]
PET_NAMES = ["Rex", "Bella", "Milo", "Luna", "Oscar", "Nala", "Max", "Coco", "Felix", "Daisy",
             "Thunder", "Storm", "Biscuit", "Pepper", "Ziggy", "Moose", "Hazel", "Tigger"]
OWNERS = ["Smith", "Müller", "García", "Dubois", "Rossi", "Nowak", "Jensen", "O'Brien",
          "Kowalski", "Janssen", "Lefèvre", "Schmidt", "Andersson", "Costa"]
GIVEN = ["Anna", "Jörg", "Marie", "Pedro", "Lucy", "Henrik", "Sofia", "Tom", "Inès", "Karl"]
CLINICS = ["Riverside Veterinary Hospital", "Tierklinik Am See", "Clinique Vétérinaire du Parc",
           "Northfield Equine Centre"]
BODY = {"CT": ["THORAX", "ABDOMEN", "HEAD", "SPINE"], "MR": ["HEAD", "LSPINE", "CSPINE", "KNEE"],
        "US": ["ABDOMEN", "HEART", "BLADDER"], "DX": ["THORAX", "PELVIS", "STIFLE", "ELBOW",
                                                      "HOOF", "ABDOMEN"]}


def uid(*parts):
    return "2.25.%d" % uuid.uuid5(UID_NAMESPACE, "/".join(str(p) for p in parts)).int


def rng_for(seed, *parts):
    h = hashlib.sha256(("%s/" % seed + "/".join(str(p) for p in parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(h[:8], "little"))


def code_item(value, scheme, meaning, undef):
    it = Dataset()
    it.CodeValue = value
    it.CodingSchemeDesignator = scheme
    it.CodeMeaning = meaning
    it.is_undefined_length_sequence_item = undef
    return it


def seq(items, undef):
    s = Sequence(items)
    s.is_undefined_length = undef
    return s


def study_context(seed, study):
    """Patient and study attributes shared by every series of one study."""
    r = rng_for(seed, "study", study)
    sp = SPECIES[int(r.integers(len(SPECIES)))]
    pet = PET_NAMES[int(r.integers(len(PET_NAMES)))]
    owner = OWNERS[int(r.integers(len(OWNERS)))]
    given = GIVEN[int(r.integers(len(GIVEN)))]
    year = 2015 + int(r.integers(9))
    age = int(r.integers(1, 15))
    return {
        "study": study,
        "species": sp,
        "breed": sp[3][int(r.integers(len(sp[3])))],
        "pet": pet,
        "owner": owner,
        "given": given,
        # CP-643: Patient Name is "Owner^Pet" at most sites, the pet alone at some
        "patient_name": ("%s^%s" % (owner, pet)) if r.random() < 0.8 else pet,
        "patient_id": "VP%06d" % int(r.integers(1000000)),
        "birth": "%04d%02d%02d" % (year - age, int(r.integers(1, 13)), int(r.integers(1, 28))),
        "age": "%03dY" % age,
        "sex": "MF"[int(r.integers(2))],
        "neutered": ["ALTERED", "UNALTERED"][int(r.integers(2))],
        "weight": round(float(r.uniform(*sp[4])), 1),
        "date": "%04d%02d%02d" % (year, int(r.integers(1, 13)), int(r.integers(1, 28))),
        "time": "%02d%02d%02d.%06d" % (8 + int(r.integers(10)), int(r.integers(60)),
                                       int(r.integers(60)), int(r.integers(1000000))),
        "clinic": CLINICS[int(r.integers(len(CLINICS)))],
        "accession": "A%08d" % int(r.integers(100000000)),
        "study_uid": uid(seed, "study", study),
        "charset": "ISO_IR 192" if r.random() < 0.5 else "ISO_IR 100",
        "chip": "%015d" % int(r.integers(10**15)),
    }


def base_dataset(ctx, modality, series, series_uid, inst, undef, r):
    """~100 elements common to every modality, CP-643 veterinary attributes included."""
    ds = Dataset()
    ds.SpecificCharacterSet = ctx["charset"]
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL" if modality in ("CT", "MR") else ""]
    ds.InstanceCreationDate = ctx["date"]
    ds.InstanceCreationTime = ctx["time"]
    ds.InstanceCreatorUID = IMPL_UID
    ds.SOPClassUID = SOP[modality]
    ds.SOPInstanceUID = uid("inst", series_uid, inst)
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = ctx["date"]
    ds.StudyTime = ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = ctx["time"]
    ds.AccessionNumber = ctx["accession"]
    ds.Modality = modality
    ds.ConversionType = "" if modality != "SC" else "WSD"
    ds.Manufacturer = {"CT": "Siemens", "MR": "Esaote", "US": "Mindray", "DX": "Fujifilm",
                       "RF": "Philips"}[modality]
    ds.InstitutionName = ctx["clinic"]
    ds.InstitutionAddress = "1 Main Street\\Springfield\\%05d" % int(r.integers(100000))
    ds.ReferringPhysicianName = "%s^%s^^Dr." % (OWNERS[int(r.integers(len(OWNERS)))],
                                                GIVEN[int(r.integers(len(GIVEN)))])
    ds.StationName = "%s%02d" % (modality, int(r.integers(1, 20)))
    parts = BODY.get(modality, ["THORAX"])
    body = parts[int(r.integers(len(parts)))]
    ds.StudyDescription = "%s %s" % (modality, body.lower())
    ds.ProcedureCodeSequence = seq([code_item("VP%04d" % int(r.integers(10000)), "99VETPACS",
                                              "%s examination" % modality, undef)], undef)
    ds.SeriesDescription = "Series %d %s" % (series, modality)
    ds.InstitutionalDepartmentName = "Diagnostic Imaging"
    ds.PerformingPhysicianName = "%s^%s" % (OWNERS[int(r.integers(len(OWNERS)))],
                                            GIVEN[int(r.integers(len(GIVEN)))])
    ds.OperatorsName = "Tech^%s" % GIVEN[int(r.integers(len(GIVEN)))]
    ds.ManufacturerModelName = "Model %d" % int(r.integers(100, 999))
    ref = Dataset()
    ref.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.3"
    ref.ReferencedSOPInstanceUID = uid("mpps", ctx["study"])
    ref.is_undefined_length_sequence_item = undef
    ds.ReferencedPerformedProcedureStepSequence = seq([ref], undef)
    ds.AnatomicRegionSequence = seq([code_item("T-D%04d" % int(r.integers(10000)), "SRT",
                                               body.title(),
                                               undef)], undef)
    # Patient module with the CP-643 veterinary attributes
    ds.PatientName = ctx["patient_name"]
    ds.PatientID = ctx["patient_id"]
    ds.IssuerOfPatientID = ctx["clinic"][:64]
    ds.PatientBirthDate = ctx["birth"]
    ds.PatientSex = ctx["sex"]
    other = Dataset()
    other.PatientID = ctx["chip"]
    other.IssuerOfPatientID = "ISO 11784 microchip"
    other.TypeOfPatientID = "RFID"
    other.is_undefined_length_sequence_item = undef
    ds.OtherPatientIDsSequence = seq([other], undef)
    ds.PatientAge = ctx["age"]
    ds.PatientWeight = str(ctx["weight"])
    ds.PatientSpeciesDescription = ctx["species"][0]
    ds.PatientSpeciesCodeSequence = seq([code_item(ctx["species"][1], "SCT", ctx["species"][0],
                                                   undef)], undef)
    ds.PatientSexNeutered = ctx["neutered"]
    ds.PatientBreedDescription = ctx["breed"]
    ds.PatientBreedCodeSequence = seq([code_item("B%05d" % sum(map(ord, ctx["breed"])), "99VETPACS",
                                                 ctx["breed"], undef)], undef)
    reg = Dataset()
    reg.BreedRegistrationNumber = "REG-%07d" % int(r.integers(10**7))
    reg.BreedRegistryCodeSequence = seq([code_item("109200", "DCM", "America Kennel Club",
                                                   undef)], undef)
    reg.is_undefined_length_sequence_item = undef
    ds.BreedRegistrationSequence = seq([reg], undef)
    ds.ResponsiblePerson = "%s^%s" % (ctx["owner"], ctx["given"])
    ds.ResponsiblePersonRole = "OWNER"
    ds.ResponsibleOrganization = ""
    ds.PatientComments = "Presented for %s evaluation; signs for %d days." % (
        body.lower(), int(r.integers(1, 30)))
    ds.BodyPartExamined = body
    ds.DeviceSerialNumber = "SN%08d" % int(r.integers(10**8))
    ds.SoftwareVersions = ["VA%d" % int(r.integers(10, 60)), "VPBENCH 1.0"]
    ds.ProtocolName = "%s %s vet" % (modality, ds.BodyPartExamined.lower())
    ds.DateOfLastCalibration = ctx["date"]
    ds.TimeOfLastCalibration = "070000"
    ds.StudyInstanceUID = ctx["study_uid"]
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = str(ctx["study"])
    ds.SeriesNumber = str(series)
    ds.AcquisitionNumber = "1"
    ds.InstanceNumber = str(inst + 1)
    ds.PatientOrientation = ""
    ds.ImageComments = "vetpacs benchmark corpus, not a real patient"
    req = Dataset()
    req.RequestedProcedureID = "RP%06d" % int(r.integers(10**6))
    req.ScheduledProcedureStepID = "SPS%06d" % int(r.integers(10**6))
    req.ScheduledProcedureStepDescription = ds.StudyDescription
    req.ScheduledProtocolCodeSequence = seq([code_item("P%04d" % int(r.integers(10000)),
                                                       "99VETPACS", ds.ProtocolName, undef)],
                                            undef)
    req.is_undefined_length_sequence_item = undef
    ds.RequestAttributesSequence = seq([req], undef)
    ds.PerformedProcedureStepStartDate = ctx["date"]
    ds.PerformedProcedureStepStartTime = ctx["time"]
    ds.PerformedProcedureStepID = "PPS%06d" % int(r.integers(10**6))
    ds.PerformedProcedureStepDescription = ds.StudyDescription
    # a private block like most modalities write
    blk = ds.private_block(0x0009, "VETPACS BENCH", create=True)
    blk.add_new(0x01, "LO", "bench private text")
    blk.add_new(0x02, "DS", "%.3f" % float(r.uniform(0, 100)))
    blk.add_new(0x03, "OB", bytes(r.integers(0, 256, 64, dtype=np.uint8)))
    blk.add_new(0x04, "UL", int(r.integers(1 << 31)))
    return ds


def image_pixel(ds, rows, cols, frames, rgb, r, bits=16, stored=12):
    ds.SamplesPerPixel = 3 if rgb else 1
    ds.PhotometricInterpretation = "RGB" if rgb else "MONOCHROME2"
    if rgb:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = str(frames)
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = 8 if rgb else bits
    ds.BitsStored = 8 if rgb else stored
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if rgb:
        img = r.integers(0, 256, (frames, rows, cols, 3), dtype=np.uint8)
        # flat black border around the sector like real ultrasound
        img[:, : rows // 10] = 0
        ds.PixelData = img.tobytes()
    else:
        y = np.linspace(-1, 1, rows, dtype=np.float32)[:, None]
        x = np.linspace(-1, 1, cols, dtype=np.float32)[None, :]
        phantom = ((x * x + y * y) < 0.8).astype(np.uint16) * (1 << (stored - 2))
        noise = r.integers(0, 1 << (stored - 3), (frames, rows, cols), dtype=np.uint16)
        ds.PixelData = (noise + phantom).astype("<u2").tobytes()


def make_ct(ds, inst, r, undef):
    ds.ScanOptions = "HELICAL MODE"
    ds.SliceThickness = "1.0"
    ds.KVP = "120"
    ds.DataCollectionDiameter = "500"
    ds.ReconstructionDiameter = "%.1f" % float(r.uniform(150, 450))
    ds.DistanceSourceToDetector = "1085.6"
    ds.DistanceSourceToPatient = "595"
    ds.GantryDetectorTilt = "0"
    ds.TableHeight = "%.1f" % float(r.uniform(100, 200))
    ds.RotationDirection = "CW"
    ds.ExposureTime = "500"
    ds.XRayTubeCurrent = str(int(r.integers(80, 300)))
    ds.Exposure = str(int(r.integers(40, 150)))
    ds.FilterType = "0"
    ds.GeneratorPower = "24"
    ds.FocalSpots = "0.7"
    ds.ConvolutionKernel = "B30f"
    ds.PatientPosition = "FFS"
    ds.ImagePositionPatient = ["-125", "-125", "%.1f" % (-inst * 1.0)]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = "%.1f" % (-inst * 1.0)
    ds.PixelSpacing = ["0.48828125", "0.48828125"]
    ds.WindowCenter = ["40", "400"]
    ds.WindowWidth = ["400", "1500"]
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.LossyImageCompression = "00"
    image_pixel(ds, 512, 512, 1, False, r)


def make_mr(ds, inst, r, undef):
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = ["SK", "SP"]
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.SliceThickness = "3"
    ds.RepetitionTime = "%.1f" % float(r.uniform(400, 4000))
    ds.EchoTime = "%.1f" % float(r.uniform(10, 120))
    ds.NumberOfAverages = "2"
    ds.ImagingFrequency = "10.6"
    ds.ImagedNucleus = "1H"
    ds.EchoNumbers = "1"
    ds.MagneticFieldStrength = "0.25"
    ds.SpacingBetweenSlices = "3.5"
    ds.NumberOfPhaseEncodingSteps = "256"
    ds.EchoTrainLength = "1"
    ds.PercentSampling = "100"
    ds.PercentPhaseFieldOfView = "100"
    ds.PixelBandwidth = "130"
    ds.ReceiveCoilName = "Knee coil"
    ds.TransmitCoilName = "Body"
    ds.AcquisitionMatrix = [0, 256, 256, 0]
    ds.InPlanePhaseEncodingDirection = "ROW"
    ds.FlipAngle = "90"
    ds.SAR = "0.1"
    ds.PatientPosition = "HFS"
    ds.ImagePositionPatient = ["-100", "-100", "%.1f" % (inst * 3.5)]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.SliceLocation = "%.1f" % (inst * 3.5)
    ds.PixelSpacing = ["0.78125", "0.78125"]
    ds.WindowCenter = "600"
    ds.WindowWidth = "1200"
    image_pixel(ds, 256, 256, 1, False, r)


def us_regions(r, undef):
    reg = Dataset()
    reg.RegionSpatialFormat = 1
    reg.RegionDataType = 1
    reg.RegionFlags = 2
    reg.RegionLocationMinX0 = 80
    reg.RegionLocationMinY0 = 48
    reg.RegionLocationMaxX1 = 560
    reg.RegionLocationMaxY1 = 440
    reg.ReferencePixelX0 = 240
    reg.ReferencePixelY0 = 0
    reg.PhysicalUnitsXDirection = 3
    reg.PhysicalUnitsYDirection = 3
    reg.ReferencePixelPhysicalValueX = 0.0
    reg.ReferencePixelPhysicalValueY = 0.0
    reg.PhysicalDeltaX = float(r.uniform(0.01, 0.03))
    reg.PhysicalDeltaY = reg.PhysicalDeltaX
    reg.TransducerFrequency = 7500
    reg.is_undefined_length_sequence_item = undef
    return seq([reg], undef)


def make_us(ds, inst, r, undef, frames):
    ds.SequenceOfUltrasoundRegions = us_regions(r, undef)
    ds.TransducerData = ["L7-3", "", ""]
    ds.ProcessingFunction = "ABD"
    ds.DepthOfScanField = str(int(r.integers(40, 160)))
    ds.LossyImageCompression = "00"
    if frames > 1:
        ds.FrameTime = "33.33"
        ds.FrameIncrementPointer = 0x00181063
        ds.CineRate = "30"
        ds.RecommendedDisplayFrameRate = "30"
        ds.StartTrim = "1"
        ds.StopTrim = str(frames)
    image_pixel(ds, 480, 640, frames, True, r)


def dx_attrs(ds, r, undef):
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.KVP = str(int(r.integers(50, 90)))
    ds.DistanceSourceToDetector = "1000"
    ds.DistanceSourceToPatient = "900"
    ds.ExposureTime = str(int(r.integers(10, 100)))
    ds.XRayTubeCurrent = str(int(r.integers(100, 400)))
    ds.Exposure = str(int(r.integers(2, 20)))
    ds.ImageAndFluoroscopyAreaDoseProduct = "%.4f" % float(r.uniform(0.01, 1))
    ds.Grid = "NONE"
    ds.DetectorType = "SCINTILLATOR"
    ds.DetectorID = "FDR%04d" % int(r.integers(10000))
    ds.ImagerPixelSpacing = ["0.15", "0.15"]
    ds.PixelSpacing = ["0.15", "0.15"]
    ds.ExposureIndex = str(int(r.integers(100, 1000)))
    ds.DeviationIndex = "%.1f" % float(r.uniform(-2, 2))
    ds.ViewPosition = ["LL", "VD", "DV", "LAT"][int(r.integers(4))]
    ds.ViewCodeSequence = seq([code_item("R-10206", "SRT", "lateral", undef)], undef)
    ds.BurnedInAnnotation = "NO"
    ds.WindowCenter = "2048"
    ds.WindowWidth = "4096"
    ds.RescaleIntercept = "0"
    ds.RescaleSlope = "1"
    ds.RescaleType = "US"
    ds.LossyImageCompression = "00"
    voi = Dataset()
    voi.LUTDescriptor = [4096, 0, 16]
    voi.LUTExplanation = "NORMAL"
    voi.add_new(0x00283006, "OW", np.linspace(0, 65535, 4096).astype("<u2").tobytes())
    voi.is_undefined_length_sequence_item = undef
    ds.VOILUTSequence = seq([voi], undef)


def make_dx(ds, inst, r, undef, rows, cols, frames=1):
    dx_attrs(ds, r, undef)
    if frames > 1:
        ds.FrameTime = "66.7"
        ds.FrameIncrementPointer = 0x00181063
    image_pixel(ds, rows, cols, frames, False, r)


def write(ds, path, explicit):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian if explicit else ImplicitVRLittleEndian
    meta.ImplementationClassUID = IMPL_UID
    meta.ImplementationVersionName = "VPBENCH_1"
    meta.SourceApplicationEntityTitle = "VPBENCH"
    ds.file_meta = meta
    ds.preamble = b"\0" * 128
    ds.is_little_endian = True
    ds.is_implicit_VR = not explicit
    ds.save_as(path, write_like_original=False)


def plan(count):
    """List of (index, kind, study, series, instance, extra) for the corpus, deterministic."""
    n_dx = max(1, round(count * 16 / 2000))
    n_cine = max(1, round(count * 14 / 2000))
    n_us = round(count * 120 / 2000)
    n_ct = round(count * 400 / 2000)
    n_mr = count - n_dx - n_cine - n_us - n_ct
    jobs = []
    study = 0

    def add_series(kind, n, per_series, extra=None):
        nonlocal study
        done = 0
        series = 0
        while done < n:
            k = min(per_series, n - done)
            study += 1
            series += 1
            for i in range(k):
                jobs.append((kind, study, series, i, extra))
            done += k

    add_series("MR", n_mr, 50)
    add_series("CT", n_ct, 100)
    add_series("US", n_us, 10)
    add_series("USMF", n_cine, 2)
    add_series("DX", n_dx, 4)
    return [(i,) + j for i, j in enumerate(jobs)]


DX_SIZES = [(2000, 2000), (2500, 2048), (3000, 2500), (2048, 1536)]


def make_one(args):
    seed, outdir, (index, kind, study, series, inst, extra) = args
    ctx = study_context(seed, study)
    sr = rng_for(seed, "series", study, series)
    explicit = sr.random() >= 0.15
    undef = sr.random() < 0.5
    series_uid = uid(seed, "series", study, series)
    r = rng_for(seed, "inst", index)
    mod = "US" if kind == "USMF" else kind
    ds = base_dataset(ctx, mod, series, series_uid, inst, undef, r)
    ds.SOPClassUID = SOP[kind]
    if kind == "CT":
        ds.FrameOfReferenceUID = uid(seed, "for", study)
        make_ct(ds, inst, r, undef)
    elif kind == "MR":
        ds.FrameOfReferenceUID = uid(seed, "for", study)
        make_mr(ds, inst, r, undef)
    elif kind == "US":
        make_us(ds, inst, r, undef, 1)
    elif kind == "USMF":
        make_us(ds, inst, r, undef, 8)
    else:
        rows, cols = DX_SIZES[index % len(DX_SIZES)]
        make_dx(ds, inst, r, undef, rows, cols)
    name = "%04d_%s.dcm" % (index, kind.lower())
    write(ds, os.path.join(outdir, name), explicit)
    return "%s %d %s" % (name, os.path.getsize(os.path.join(outdir, name)),
                         "explicit" if explicit else "implicit")


def make_headeronly(seed, outdir):
    lines = []
    ctx = study_context(seed, 999999)
    for name, rows, cols, frames, kind in [("small_100k", 212, 212, 1, "DX"),
                                           ("dx_13m", 2560, 2560, 1, "DX"),
                                           ("rf_130m", 1024, 1024, 62, "RF")]:
        # same random stream for every file: identical header, only the pixels differ
        r = rng_for(seed, "headeronly")
        ds = base_dataset(ctx, "DX", 1, uid(seed, "ho-series"), 0, False, r)
        ds.SOPClassUID = SOP[kind]
        ds.SOPInstanceUID = uid(seed, "ho", name)
        make_dx(ds, 0, r, False, rows, cols, frames)
        path = os.path.join(outdir, name + ".dcm")
        write(ds, path, True)
        lines.append("%s %d explicit" % (name + ".dcm", os.path.getsize(path)))
    return lines


def stamp_text(count, seed):
    with open(os.path.abspath(__file__), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    return "%s %d %d" % (digest, count, seed)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("dest")
    ap.add_argument("--count", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--print-stamp", action="store_true",
                    help="print the STAMP line these arguments would produce and exit")
    a = ap.parse_args()
    if a.print_stamp:
        print(stamp_text(a.count, a.seed))
        return 0
    if a.count < 10:
        ap.error("--count must be at least 10")
    dest = os.path.abspath(a.dest)
    # DEST is replaced as a whole: refuse to delete a folder this script did not make
    if os.path.isdir(dest) and os.listdir(dest) and not os.path.exists(
            os.path.join(dest, "STAMP")) and not os.path.exists(os.path.join(dest, "MANIFEST")):
        ap.error("%s exists and is not a corpus made by this script" % dest)
    tmp = dest + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(os.path.join(tmp, "roundtrip"))
    os.makedirs(os.path.join(tmp, "headeronly"))
    work = [(a.seed, os.path.join(tmp, "roundtrip"), j) for j in plan(a.count)]
    with multiprocessing.Pool(a.jobs) as pool:
        lines = ["roundtrip/" + x for x in pool.map(make_one, work, chunksize=16)]
    lines += ["headeronly/" + x for x in make_headeronly(a.seed, os.path.join(tmp, "headeronly"))]
    with open(os.path.join(tmp, "MANIFEST"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(tmp, "STAMP"), "w") as f:
        f.write(stamp_text(a.count, a.seed) + "\n")
    shutil.rmtree(dest, ignore_errors=True)
    os.rename(tmp, dest)
    total = sum(int(x.split()[1]) for x in lines[: a.count])
    print("make_corpus: %d files, %.0f MB in %s/roundtrip (+ header-only trio)"
          % (a.count, total / 1e6, dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
