#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Deterministic veterinary DICOM test corpus for vetpacs.

Writes a small corpus (a few hundred kB) into an output folder:

* ``vet_<species>_<ts>.dcm``: dogs, cats, horses and exotics with every CP-643 attribute
  (Patient Species Description / Code Sequence, Breed Description / Code Sequence, Breed
  Registration Sequence, Responsible Person and Role, Responsible Organization, Patient's Sex
  Neutered, Anatomical Orientation Type), Patient Name as ``Owner^Pet`` and as the pet alone,
  native pixel data (16-bit, signed, RGB multi-frame, 8-bit odd-length multi-frame), built
  with pydicom and written in Implicit VR LE, Explicit VR LE, Explicit VR BE and Deflated.
* ``allvr_<ts>.dcm``: one element of every VR (AE .. UV, including OV, SV, UV), multi-valued
  elements, private blocks with creators, sequences nested four deep with defined and
  undefined lengths, built with pydicom.
* ``edge_<ts>.dcm``: written by the small encoder below, which pydicom cannot be made to do:
  odd value lengths, an empty value of every VR, empty items and sequences of both length
  kinds, group length elements, a private sequence, UN with undefined length (CP-246; little
  endian only). ``edge_long_impl.dcm``: Implicit VR values too long for the 16-bit length of
  their VR in Explicit VR (an LO of 69,979 bytes, a US of 80,000), which become UN there.
* ``enc_*.dcm``: encapsulated pixel data: RLE from pydicom's encoder (one and three frames,
  Basic Offset Table), hand-built fragments (two per frame, Basic Offset Table) and one with an
  Extended Offset Table (7FE0,0001)/(7FE0,0002), in Encapsulated Uncompressed Explicit VR LE.
* ``cs_<charset>.dcm``: text in ISO_IR 100, 101, 144, 126, 127, 138, 148, 166, 192, GB18030,
  ISO 2022 IR 87 (Japanese) and ISO 2022 IR 149 (Korean), encoded by pydicom.

The pydicom-built files carry Source AE Title in their meta group, allvr also Sending and
Receiving AE Titles and Private Information (a writer should carry these over).

Everything is seeded and fixed (UIDs, dates, pixel values), so two runs write identical bytes.
Every file is read back with pydicom (without force) before the generator returns.

Usage: gen_corpus.py OUTDIR          (prints the written paths, one a line)
Library: generate(outdir) -> list of paths
"""
import copy
import hashlib
import io
import os
import struct
import sys
import warnings
import zlib

import numpy as np
import pydicom
from pydicom import config
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, encapsulate_extended
from pydicom.sequence import Sequence
from pydicom.uid import (UID, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian,
                         ExplicitVRLittleEndian, ImplicitVRLittleEndian, RLELossless)

ENCAPSULATED_UNCOMPRESSED = UID("1.2.840.10008.1.2.1.98")

# Short names used in file names for the four native transfer syntaxes.
NATIVE_TS = {
    "impl": ImplicitVRLittleEndian,
    "expl": ExplicitVRLittleEndian,
    "big": ExplicitVRBigEndian,
    "defl": DeflatedExplicitVRLittleEndian,
}

SOP_SC = "1.2.840.10008.5.1.4.1.1.7"        # Secondary Capture
SOP_DX = "1.2.840.10008.5.1.4.1.1.1.1"      # Digital X-Ray For Presentation
SOP_US_MF = "1.2.840.10008.5.1.4.1.1.3.1"   # Ultrasound Multi-frame
SOP_CT = "1.2.840.10008.5.1.4.1.1.2"        # CT
SOP_MR = "1.2.840.10008.5.1.4.1.1.4"        # MR
SOP_HP = "1.2.840.10008.5.1.4.38.1"         # Hanging Protocol (the Selector*Value home)


def uid(*parts):
    """A fixed 2.25 UID derived from the parts (deterministic, valid, at most 64 chars)."""
    h = hashlib.sha256("/".join(str(p) for p in parts).encode()).digest()
    return "2.25." + str(int.from_bytes(h[:16], "big"))


def code(value, scheme, meaning):
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


# ---------------------------------------------------------------------------------------------
# Veterinary patients (PS3.3 C.7.1.1 Patient Module, CP-643 attributes)

SPECIES = {
    "dog": dict(name="Smith^Rex", pid="VET-DOG-0001", sex="M", neutered="ALTERED",
                species=("Canis lupus familiaris", "448771007"),
                breed=("Labrador Retriever", "VP-B-0001"), registry="AKC",
                regnum="SR12345678", birth="20160314", owner="Smith^John",
                org="Happy Paws Veterinary Clinic", age="007Y", weight="31.5"),
    "cat": dict(name="Whiskers", pid="VET-CAT-0002", sex="F", neutered="UNALTERED",
                species=("Felis catus", "448169003"),
                breed=("Maine Coon", "VP-B-0002"), registry="CFA",
                regnum="MC-2020-0042", birth="20200101", owner="Garcia^Maria",
                org="Cat Care Center", age="004Y", weight="6.2"),
    "horse": dict(name="Johnson^Thunder", pid="VET-EQ-0003", sex="M", neutered="ALTERED",
                  species=("Equus caballus", "35354009"),
                  breed=("Thoroughbred", "VP-B-0003"), registry="TJC",
                  regnum="TB-1999-777", birth="20120505", owner="Johnson^Emily",
                  org="Equine Hospital of the Valley", age="012Y", weight="520"),
    "exotic": dict(name="Spike", pid="VET-EX-0004", sex="O", neutered="UNALTERED",
                   species=("Pogona vitticeps", None),
                   breed=("Central bearded dragon", None), registry=None,
                   regnum=None, birth="20210707", owner="Lee^Kim",
                   org="Exotic Animal Practice", age="003Y", weight="0.45"),
}


def patient_module(ds, key):
    s = SPECIES[key]
    ds.PatientName = s["name"]
    ds.PatientID = s["pid"]
    ds.PatientBirthDate = s["birth"]
    ds.PatientSex = s["sex"]
    ds.PatientAge = s["age"]
    ds.PatientWeight = s["weight"]
    ds.PatientSpeciesDescription = s["species"][0]
    if s["species"][1]:
        ds.PatientSpeciesCodeSequence = Sequence([code(s["species"][1], "SCT",
                                                      s["species"][0])])
    else:
        ds.PatientSpeciesCodeSequence = Sequence([])  # empty sequence (Type 2 style)
    ds.PatientSexNeutered = s["neutered"]
    ds.PatientBreedDescription = s["breed"][0]
    if s["breed"][1]:
        ds.PatientBreedCodeSequence = Sequence([code(s["breed"][1], "99VP", s["breed"][0])])
    else:
        ds.PatientBreedCodeSequence = Sequence([])
    if s["registry"]:
        reg = Dataset()
        reg.BreedRegistrationNumber = s["regnum"]
        rc = code(s["registry"], "99VP", s["registry"] + " registry")
        # Third level: an equivalent code inside the registry code inside the registration.
        rc.EquivalentCodeSequence = Sequence([code(s["registry"].lower(), "99VPX",
                                                   "local alias")])
        reg.BreedRegistryCodeSequence = Sequence([rc])
        ds.BreedRegistrationSequence = Sequence([reg])
    else:
        ds.BreedRegistrationSequence = Sequence([])
    ds.ResponsiblePerson = s["owner"]
    ds.ResponsiblePersonRole = "OWNER"
    ds.ResponsibleOrganization = s["org"]
    ds.AnatomicalOrientationType = "QUADRUPED"


def study_module(ds, key, modality, sop_class):
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = uid("vetpacs-corpus", key, "instance")
    ds.StudyInstanceUID = uid("vetpacs-corpus", key, "study")
    ds.SeriesInstanceUID = uid("vetpacs-corpus", key, "series")
    ds.FrameOfReferenceUID = uid("vetpacs-corpus", key, "for")
    ds.StudyDate = "20240229"
    ds.StudyTime = "101530.123456"
    ds.SeriesDate = "20240229"
    ds.ContentDate = "20240229"
    ds.ContentTime = "101531"
    ds.AccessionNumber = "A" + key.upper()[:6]
    ds.Modality = modality
    ds.Manufacturer = "VETPACS"
    ds.InstitutionName = SPECIES[key]["org"]
    ds.ReferringPhysicianName = "Doolittle^John^^Dr."
    ds.StudyDescription = "Vet imaging " + key
    ds.SeriesDescription = modality + " series"
    ds.StudyID = "S" + key[:4]
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.BodyPartExamined = "THORAX"


def image_pixels(ds, rows, cols, frames, spp, bits, signed, rng, stored=None):
    ds.Rows = rows
    ds.Columns = cols
    ds.SamplesPerPixel = spp
    ds.PhotometricInterpretation = "RGB" if spp == 3 else "MONOCHROME2"
    if spp == 3:
        ds.PlanarConfiguration = 0
    ds.BitsAllocated = bits
    ds.BitsStored = stored or bits
    ds.HighBit = (stored or bits) - 1
    ds.PixelRepresentation = 1 if signed else 0
    if frames > 1:
        ds.NumberOfFrames = frames
    dtype = {(8, False): np.uint8, (16, False): np.uint16, (16, True): np.int16}[(bits, signed)]
    hi = 1 << (stored or bits)
    if signed:
        arr = rng.integers(-hi // 2, hi // 2, size=(frames, rows, cols, spp)).astype(dtype)
    else:
        arr = rng.integers(0, hi, size=(frames, rows, cols, spp)).astype(dtype)
    return arr


def vet_dataset(key, rng):
    ds = Dataset()
    if key == "dog":
        study_module(ds, key, "DX", SOP_DX)
        arr = image_pixels(ds, 96, 128, 1, 1, 16, False, rng, stored=12)
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.ViewPosition = "LL"
        ds.ImagerPixelSpacing = [0.139, 0.139]
        ds.WindowCenter = [2048, 1024]
        ds.WindowWidth = [4096, 2048]
    elif key == "cat":
        study_module(ds, key, "US", SOP_US_MF)
        arr = image_pixels(ds, 24, 32, 3, 3, 8, False, rng)
        ds.FrameTime = 33.3
        ds.FrameIncrementPointer = 0x00181063
        ds.ImageType = ["ORIGINAL", "PRIMARY", "ABDOMINAL"]
    elif key == "horse":
        study_module(ds, key, "CT", SOP_CT)
        arr = image_pixels(ds, 32, 32, 1, 1, 16, True, rng)
        ds.RescaleIntercept = "-1024"
        ds.RescaleSlope = "1"
        ds.ImagePositionPatient = [-120.5, -80.25, 33]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.5, 0.5]
        ds.SliceThickness = "2.5"
        # US or SS element whose VR follows Pixel Representation in Implicit VR.
        ds.SmallestImagePixelValue = int(arr.min())
        ds.LargestImagePixelValue = int(arr.max())
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    else:
        study_module(ds, key, "MR", SOP_MR)
        # 8 bits, 15 x 17 x 5 frames: an odd number of pixel bytes (padded by the writer).
        arr = image_pixels(ds, 15, 17, 5, 1, 8, False, rng)
        ds.ScanningSequence = "SE"
        ds.SequenceVariant = "NONE"
        ds.EchoTime = "12.5"
        ds.RepetitionTime = "500"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    patient_module(ds, key)
    ds.PixelData = arr.tobytes()
    ds["PixelData"].VR = "OW" if ds.BitsAllocated > 8 else "OB"
    return ds, arr


# ---------------------------------------------------------------------------------------------
# Every VR (pydicom)

def allvr_dataset():
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = SOP_HP
    ds.SOPInstanceUID = uid("vetpacs-corpus", "allvr", "instance")
    ds.StudyInstanceUID = uid("vetpacs-corpus", "allvr", "study")
    patient_module(ds, "dog")
    ds.PatientName = "Smith^Rex^^Dr.^Jr.=Smith^Rex"                    # PN with two groups
    ds.OperatorsName = ["Vet^Anna", "Tech^Bob", ""]                      # PN multi, empty value
    ds.PerformedStationAETitle = "VETPACS_AE"                            # AE
    ds.RetrieveAETitle = ["AE_ONE", "AE_TWO"]                            # AE multi
    ds.PatientAge = "007Y"                                               # AS
    ds.Modality = "OT"                                                   # CS
    ds.ImageType = ["DERIVED", "SECONDARY", "", "X"]                      # CS multi with empty
    ds.StudyDate = "20240229"                                            # DA
    ds.AcquisitionDateTime = "20240229101530.123456+0100"                # DT
    ds.StudyTime = "235959.999999"                                       # TM
    ds.InstanceNumber = "-42"                                            # IS
    ds.InstitutionAddress = "1 Kennel Road\\Dogtown"                     # ST (backslash is text)
    ds.ImageComments = "Line one\r\nLine two\\still one value\r\n"       # LT
    ds.AccessionNumber = ""                                              # SH empty
    ds.ReferringPhysicianName = ""                                       # PN empty
    ds.RetrieveURL = "https://pacs.example.vet/wado?study=1&x=%20y"      # UR
    ds.SimpleFrameList = [1, 2, 4294967295]                              # UL multi
    ds.FrameIncrementPointer = [0x00181063, 0x00209153]                  # AT multi
    ds.SelectorAttribute = 0x00100010                                    # AT
    ds.SelectorATValue = [0x7FE00010, 0x00080005]                        # AT multi
    ds.SelectorCSValue = ["A", "B", "C"]
    ds.SelectorDAValue = ["20000101", "19991231"]
    ds.SelectorDSValue = ["1.5", "-2E-3", "+3.25", "0"]                   # DS multi
    ds.SelectorDTValue = "2000"
    ds.SelectorFDValue = [1.0, -2.5, 1e300, 5e-324]                      # FD incl. subnormal
    ds.SelectorFLValue = [0.5, -1.25, 3.4028234663852886e38]             # FL
    ds.SelectorISValue = ["1", "-2147483648", "2147483647"]              # IS multi
    ds.SelectorLOValue = ["Labrador", "Retriever"]                       # LO multi
    ds.SelectorLTValue = "Long text with \\ backslash"                   # LT
    ds.SelectorOBValue = bytes(range(256)) + b"\x01"                     # OB odd (padded)
    ds.SelectorODValue = struct.pack("<3d", 1.5, -0.0, 1e-310)           # OD
    ds.SelectorOFValue = struct.pack("<4f", 1.0, -1.0, 0.25, 1e-40)      # OF
    ds.SelectorOLValue = struct.pack("<3L", 0, 0xDEADBEEF, 7)            # OL
    ds.SelectorOVValue = struct.pack("<2Q", 0x0123456789ABCDEF, 2 ** 64 - 1)  # OV
    ds.SelectorOWValue = struct.pack("<5H", 1, 0x0203, 0xFFFF, 0x8000, 0)     # OW
    ds.SelectorPNValue = ["Rex", "Smith^Rex", "=^Rex"]                   # PN multi
    ds.SelectorSHValue = ["SH1", "SH 2"]
    ds.SelectorSLValue = [-2147483648, 2147483647, 0]                    # SL
    ds.SelectorSSValue = [-32768, 32767, -1]                             # SS
    ds.SelectorSTValue = "Short text"
    ds.SelectorSVValue = [-(2 ** 63), 2 ** 63 - 1, -1]                   # SV
    ds.SelectorUCValue = ["Unlimited characters " * 4, "second"]        # UC multi
    ds.SelectorULValue = [0, 4294967295]
    ds.SelectorURValue = "urn:oid:1.2.3"
    ds.SelectorUSValue = [0, 65535, 512]                                 # US multi
    ds.SelectorUTValue = "Unlimited text " * 20                          # UT
    ds.SelectorUVValue = [0, 2 ** 64 - 1, 12345678901234567890]          # UV
    ds.LongCodeValue = "A" * 70                                          # UC single
    ds.URNCodeValue = "urn:uuid:" + "0" * 8 + "-0000-4000-8000-" + "0" * 12
    # Private block with a creator; VRs kept in explicit encodings.
    ds.private_block(0x0009, "VETPACS TEST", create=True)
    blk = ds.private_block(0x0009, "VETPACS TEST")
    blk.add_new(0x01, "LO", "private long string")
    blk.add_new(0x02, "US", [1, 2, 3])
    blk.add_new(0x03, "FD", 3.141592653589793)
    blk.add_new(0x04, "OB", b"\x00\x01\x02\x03")
    blk.add_new(0x05, "UN", b"\xAA\xBB\xCC\xDD")
    psq = Sequence([Dataset(), Dataset()])
    psq[0].PatientID = "in private SQ"
    blk.add_new(0x06, "SQ", psq)
    blk2 = ds.private_block(0x0011, "VETPACS SECOND", create=True)
    blk2.add_new(0x10, "SH", "second block")
    blk3 = ds.private_block(0x0011, "VETPACS THIRD", create=True)
    blk3.add_new(0x10, "SL", [-5, 5])
    # Nesting four levels deep, alternating undefined and defined lengths.
    l4 = Dataset()
    l4.CodeValue = "L4"
    l4.CodingSchemeDesignator = "99VP"
    l4.CodeMeaning = "level four"
    l3 = Dataset()
    l3.TextValue = "level three"
    l3.ConceptNameCodeSequence = Sequence([l4])
    l2 = Dataset()
    l2.RelationshipType = "CONTAINS"
    l2.ContentSequence = Sequence([l3, Dataset()])      # second item empty
    l1 = Dataset()
    l1.ValueType = "CONTAINER"
    l1.ContentSequence = Sequence([l2])
    ds.ContentSequence = Sequence([l1, Dataset()])
    ds.ContentSequence[1].ValueType = "TEXT"
    ds["ContentSequence"].is_undefined_length = True
    l1.is_undefined_length_sequence_item = True
    l1["ContentSequence"].is_undefined_length = False
    l2["ContentSequence"].is_undefined_length = True
    l3.is_undefined_length_sequence_item = True
    l3["ConceptNameCodeSequence"].is_undefined_length = True
    ds.ReferencedStudySequence = Sequence([])           # empty sequence, defined length
    ds.ReferencedSeriesSequence = Sequence([])          # empty sequence, undefined length
    ds["ReferencedSeriesSequence"].is_undefined_length = True
    ds.ReferencedImageSequence = Sequence([Dataset(), Dataset()])  # empty items
    ds.ReferencedImageSequence[1].is_undefined_length_sequence_item = True
    return ds


# ---------------------------------------------------------------------------------------------
# Hand encoder for what pydicom will not write: odd lengths, CP-246 UN, empty values everywhere

LONG_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"}
SWAP_UNIT = {"AT": 2, "FD": 8, "FL": 4, "OD": 8, "OF": 4, "OL": 4, "OV": 8, "OW": 2, "SL": 4,
             "SS": 2, "SV": 8, "UL": 4, "US": 2, "UV": 8}


class El:
    """One element for the hand encoder. value: LE bytes, or a list of Item for SQ."""

    def __init__(self, tag, vr, value=b"", undefined=False):
        self.tag, self.vr, self.value, self.undefined = tag, vr, value, undefined


class Item:
    def __init__(self, elements, undefined=False):
        self.elements, self.undefined = elements, undefined


def _swap(vr, b):
    u = SWAP_UNIT.get(vr, 1)
    if u == 1:
        return b
    whole = len(b) - len(b) % u
    out = bytearray()
    for i in range(0, whole, u):
        out += b[i:i + u][::-1]
    return bytes(out) + b[whole:]


def encode(elements, explicit, little):
    e = "<" if little else ">"
    out = bytearray()
    for el in elements:
        out += struct.pack(e + "HH", el.tag >> 16, el.tag & 0xFFFF)
        if el.vr == "SQ" or (el.vr == "UN" and isinstance(el.value, list)):
            # CP-246: UN with undefined length holds Implicit VR LE items.
            inner_explicit, inner_little = (explicit, little) if el.vr == "SQ" else (False, True)
            ie = "<" if inner_little else ">"
            body = bytearray()
            for it in el.value:
                ib = encode(it.elements, inner_explicit, inner_little)
                body += struct.pack(ie + "HHL", 0xFFFE, 0xE000,
                                    0xFFFFFFFF if it.undefined else len(ib))
                body += ib
                if it.undefined:
                    body += struct.pack(ie + "HHL", 0xFFFE, 0xE00D, 0)
            if el.undefined:
                body += struct.pack(ie + "HHL", 0xFFFE, 0xE0DD, 0)
            length = 0xFFFFFFFF if el.undefined else len(body)
        else:
            body = el.value if little else _swap(el.vr, el.value)
            length = len(body)
        if explicit:
            out += el.vr.encode()
            if el.vr in LONG_VRS:
                out += struct.pack(e + "HL", 0, length)
            else:
                out += struct.pack(e + "H", length)
        else:
            out += struct.pack(e + "L", length)
        out += body
    return bytes(out)


def part10(meta_elements, data, ts):
    meta = encode(meta_elements, True, True)
    head = b"\0" * 128 + b"DICM" + encode([El(0x00020000, "UL", struct.pack("<L", len(meta)))],
                                          True, True)
    return head + meta + data


def meta_for(sop_class, sop_instance, ts):
    def ui(s):
        b = s.encode()
        return b + b"\0" if len(b) % 2 else b
    return [El(0x00020001, "OB", b"\x00\x01"),
            El(0x00020002, "UI", ui(sop_class)),
            El(0x00020003, "UI", ui(sop_instance)),
            El(0x00020010, "UI", ui(ts)),
            El(0x00020012, "UI", ui(uid("vetpacs-corpus", "generator"))),
            El(0x00020013, "SH", b"VP_GEN_1")]


def edge_elements(little_endian_ok):
    s = lambda text: text.encode("ascii")  # noqa: E731
    u16 = lambda *v: struct.pack("<%dH" % len(v), *v)  # noqa: E731
    empty_all = [  # an empty value of every VR that may be empty, in a sequence item
        El(0x00720026, "AT"), El(0x00720060, "AT"), El(0x00720061, "DA"),
        El(0x00720062, "CS"), El(0x00720063, "DT"), El(0x00720064, "IS"),
        El(0x00720065, "OB"), El(0x00720066, "LO"), El(0x00720067, "OF"),
        El(0x00720068, "LT"), El(0x00720069, "OW"), El(0x0072006A, "PN"),
        El(0x0072006C, "SH"), El(0x0072006E, "ST"), El(0x0072006F, "UC"),
        El(0x00720070, "UT"), El(0x00720071, "UR"), El(0x00720072, "DS"),
        El(0x00720073, "OD"), El(0x00720074, "FD"), El(0x00720075, "OL"),
        El(0x00720076, "FL"), El(0x00720078, "UL"), El(0x0072007A, "US"),
        El(0x0072007C, "SL"), El(0x0072007E, "SS"), El(0x00720081, "OV"),
        El(0x00720082, "SV"), El(0x00720083, "UV"),
    ]
    level4 = [Item([El(0x00080100, "SH", s("L4CODE")), El(0x00080102, "SH", s("99VP")),
                    El(0x00080104, "LO", s("four"))], undefined=True),
              Item([], undefined=False)]
    level3 = [Item([El(0x0040A043, "SQ", level4, undefined=False),
                    El(0x0040A160, "UT", s("three"))], undefined=False)]
    level2 = [Item([El(0x0040A010, "CS", s("CONTAINS")),
                    El(0x0040A730, "SQ", level3, undefined=True)], undefined=True)]
    els = [
        El(0x00080000, "UL", struct.pack("<L", 0)),  # group length (recomputed by writers)
        El(0x00080005, "CS", s("ISO_IR 100")),
        El(0x00080016, "UI", s(SOP_SC) + b"\0"),
        El(0x00080018, "UI", s(uid("vetpacs-corpus", "edge", "instance"))),
        El(0x00080020, "DA", s("20240229")),
        El(0x00080050, "SH", b""),                               # empty SH
        El(0x00080060, "CS", s("OT")),
        El(0x00080070, "LO", s("ABC")),                          # odd length, no padding
        El(0x00080080, "LO", s("Odd Length Clinic")),            # 17 bytes
        El(0x00080090, "PN", s("Doolittle^J")),                  # 11 bytes
        El(0x00081030, "LO", s("  leading spaces kept")),        # leading spaces
        El(0x00081110, "SQ", [], undefined=False),               # empty SQ, defined length
        El(0x00081115, "SQ", [], undefined=True),                # empty SQ, undefined length
        El(0x00081140, "SQ", [Item([], False), Item([], True), Item([], False)],
           undefined=True),                                       # empty items, both kinds
        El(0x00090010, "LO", s("VETPACS EDGE")),                 # private creator
        El(0x00091001, "OB", b"\x01\x02\x03"),                   # odd OB
        El(0x00091002, "UN", b"\x10\x20\x30\x40\x50"),           # odd UN
        El(0x00091003, "SQ", [Item([El(0x00100010, "PN", s("Private^Item"))], True),
                              Item([El(0x00100020, "LO", s("P2"))], False)],
           undefined=False),                                      # private sequence
        El(0x00091004, "DS", s("1.5\\2.5\\-3")),                  # private DS multi, odd
        El(0x00100000, "UL", struct.pack("<L", 0)),               # group length
        El(0x00100010, "PN", s("Cat")),                           # pet alone, odd length
        El(0x00100020, "LO", s("EDGE-1")),
        El(0x00100030, "DA", b""),
        El(0x00100040, "CS", s("F")),                             # odd CS
        El(0x00102201, "LO", s("Felis catus")),
        El(0x00102202, "SQ", [Item([El(0x00080100, "SH", s("448169003")),
                                    El(0x00080102, "SH", s("SCT")),
                                    El(0x00080104, "LO", s("Felis catus"))], False)]),
        El(0x00102203, "CS", s("ALTERED")),
        El(0x00102210, "CS", s("QUADRUPED")),
        El(0x00102297, "PN", s("Miller^Sue")),
        El(0x00102298, "CS", s("OWNER")),
        El(0x00102299, "LO", s("Edge Case Vets")),
        El(0x0020000D, "UI", s(uid("vetpacs-corpus", "edge", "study"))),
        El(0x00200013, "IS", s("7")),                             # odd IS
        El(0x00280002, "US", u16(1)),
        El(0x0040A730, "SQ", [Item([El(0x0040A040, "CS", s("CONTAINER")),
                                    El(0x0040A730, "SQ", level2, undefined=False)], False)],
           undefined=True),                                       # four levels
        El(0x00720022, "SQ", [Item(empty_all, undefined=True)], undefined=False),
    ]
    if little_endian_ok:
        # CP-246: an unknown private element of VR UN with undefined length holding a sequence
        # in Implicit VR LE; meaningful only when the outer encoding is little endian.
        els.insert(18, El(0x00091005, "UN",
                          [Item([El(0x00100010, "PN", s("Hidden^Seq")),
                                 El(0x00280010, "US", u16(2))], True)], undefined=True))
    els.sort(key=lambda e: e.tag)
    return els


def long_values_file():
    """Implicit VR only: values longer than the 16-bit length field of their VR in Explicit VR
    (a US of 80,000 bytes, an LO of 70,001): converting to Explicit VR must write them as UN
    (PS3.5 6.2.2) and keep their bytes."""
    ts = ImplicitVRLittleEndian
    vals = list(range(40000))
    els = [El(0x00080005, "CS", b"ISO_IR 100"),
           El(0x00080016, "UI", SOP_SC.encode() + b"\0"),
           El(0x00080018, "UI", uid("vetpacs-corpus", "long", "instance").encode()),
           El(0x00081030, "LO", b"Long study description of a very patient dog " * 1555 +
              b"END!"),
           El(0x00100010, "PN", b"Long^Dog"),
           El(0x00720022, "SQ", [Item([El(0x0072007A, "US",
                                          struct.pack("<%dH" % len(vals), *vals)),
                                       El(0x0072007C, "SL", struct.pack("<%dl" % 20000,
                                                                        *range(-10000, 10000)))
                                       ], True)], True)]
    els.sort(key=lambda e: e.tag)
    data = encode(els, False, True)
    sop = uid("vetpacs-corpus", "long", "instance")
    return part10(meta_for(SOP_SC, sop, ts), data, ts)


def edge_file(ts):
    t = UID(ts)
    explicit = not t.is_implicit_VR
    little = t.is_little_endian
    els = edge_elements(little_endian_ok=little and explicit)
    data = encode(els, explicit, little)
    if t == DeflatedExplicitVRLittleEndian:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        data = c.compress(data) + c.flush()
        if len(data) % 2:
            data += b"\0"
    sop = uid("vetpacs-corpus", "edge", "instance")
    return part10(meta_for(SOP_SC, sop, ts), data, ts)


# ---------------------------------------------------------------------------------------------
# Character sets (PS3.5 6.1; strings encoded by pydicom)

CHARSETS = [
    # (file tag, Specific Character Set value, patient name, breed / free text)
    ("ir100", "ISO_IR 100", "Müller^Bello", "Großer Münsterländer, Zürich"),
    ("ir101", "ISO_IR 101", "Dvořák^Žofka", "Český fousek, Łódź"),
    ("ir144", "ISO_IR 144", "Иванов^Шарик", "Русская псовая борзая"),
    ("ir126", "ISO_IR 126", "Παπαδόπουλος^Άρης", "Κρητικός λαγωνικός"),
    ("ir127", "ISO_IR 127", "قاسم^سمسم", "سلوقي عربي"),
    ("ir138", "ISO_IR 138", "כהן^רקסי", "כלב כנעני"),
    ("ir148", "ISO_IR 148", "Yılmaz^Karabaş", "Kangal çoban köpeği"),
    ("ir166", "ISO_IR 166", "สมชาย^มะลิ", "ไทยหลังอาน"),
    ("ir192", "ISO_IR 192", "山田^ポチ", "Shiba Inu 柴犬 🐕 Ωmega"),
    ("gb18030", "GB18030", "王^旺财", "中华田园犬"),
    ("ir87", ["", "ISO 2022 IR 87"], "Yamada^Pochi=山田^ポチ=やまだ^ぽち", "柴犬"),
    ("ir149", ["", "ISO 2022 IR 149"], "Hong^Baduk=洪^바둑=홍^바둑", "진돗개"),
]


def charset_dataset(tag, charset, name, text):
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    ds.SOPClassUID = SOP_SC
    ds.SOPInstanceUID = uid("vetpacs-corpus", "charset", tag)
    ds.StudyInstanceUID = uid("vetpacs-corpus", "charset", tag, "study")
    ds.Modality = "OT"
    ds.PatientName = name
    ds.PatientID = "CS-" + tag.upper()
    ds.PatientSpeciesDescription = "Canis lupus familiaris"
    ds.PatientSpeciesCodeSequence = Sequence([code("448771007", "SCT",
                                                   "Canis lupus familiaris")])
    ds.PatientBreedDescription = text
    ds.ResponsiblePerson = name.split("=")[0] if "=" in name else name
    ds.ResponsiblePersonRole = "OWNER"
    ds.PatientSexNeutered = "UNALTERED"
    ds.AnatomicalOrientationType = "QUADRUPED"
    ds.StudyDescription = text
    ds.InstitutionAddress = text + "\r\n" + text                   # ST
    ds.ImageComments = text + " / " + text                          # LT
    item = Dataset()                                                # text inside an item
    item.CodeValue = "X1"
    item.CodingSchemeDesignator = "99VP"
    item.CodeMeaning = text
    ds.AnatomicRegionSequence = Sequence([item])
    return ds


# ---------------------------------------------------------------------------------------------
# Writing

def file_meta(ds, ts):
    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = ds.SOPClassUID
    fm.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    fm.TransferSyntaxUID = ts
    fm.ImplementationClassUID = uid("vetpacs-corpus", "generator")
    fm.ImplementationVersionName = "VP_GEN_1"
    fm.SourceApplicationEntityTitle = "VET_MODALITY"
    if ds.SOPClassUID == SOP_HP:
        # allvr: every optional meta element (PS3.10 7.1) that a writer should carry over.
        fm.add_new(0x00020017, "AE", "VET_SENDER")
        fm.add_new(0x00020018, "AE", "VET_RECEIVER")
        fm.PrivateInformationCreatorUID = uid("vetpacs-corpus", "private-info")
        fm.PrivateInformation = b"VETPACS private meta information\x00\x01"
    return fm


def pydicom_bytes(ds, ts, swap=True):
    """ds encoded as a Part 10 file in ts by pydicom. swap: ds holds its OW-like values in
    little endian order (as built here), to be swapped for big endian; False for data sets
    read from a file in ts, whose raw values are in that order already."""
    ts = UID(ts)
    ds = copy.deepcopy(ds)
    if swap and not ts.is_little_endian:
        # pydicom writes OB/OW-like values as given: big endian needs them pre-swapped.
        for elem in ds.iterall():
            if elem.VR in ("OW", "OF", "OD", "OL", "OV") and elem.value:
                elem.value = _swap(elem.VR, bytes(elem.value))
    ds.file_meta = file_meta(ds, ts)
    ds.is_little_endian = ts.is_little_endian
    ds.is_implicit_VR = ts.is_implicit_VR
    buf = io.BytesIO()
    ds.save_as(buf, write_like_original=False)
    return buf.getvalue()


def rle_dataset(key, rng):
    ds, arr = vet_dataset(key, rng)
    ds.SOPInstanceUID = uid("vetpacs-corpus", key, "rle")
    ds.compress(RLELossless, arr[0] if arr.shape[0] == 1 else arr,
                encoding_plugin="pydicom")
    ds["PixelData"].VR = "OB"  # encapsulated pixel data is OB (PS3.5 A.4)
    return ds


def fragmented_dataset(rng, extended):
    """Encapsulated Uncompressed Explicit VR LE: each frame split in two fragments."""
    ds = Dataset()
    key = "dog"
    study_module(ds, key, "DX", SOP_DX)
    patient_module(ds, key)
    ds.PatientName = "Rex"  # pet alone
    ds.SOPInstanceUID = uid("vetpacs-corpus", "fragments", extended)
    arr = image_pixels(ds, 16, 20, 4, 1, 16, False, rng)
    ds.NumberOfFrames = 4
    frames = [arr[i].tobytes() for i in range(4)]
    if extended:
        data, offsets, lengths = encapsulate_extended(frames)
        ds.PixelData = data
        ds.ExtendedOffsetTable = offsets
        ds.ExtendedOffsetTableLengths = lengths
    else:
        ds.PixelData = encapsulate(frames, fragments_per_frame=2, has_bot=True)
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    return ds


def corpus_names():
    """File names generate() writes, sorted (known without generating anything)."""
    names = []
    for short in NATIVE_TS:
        names += ["vet_%s_%s.dcm" % (key, short) for key in SPECIES]
        names += ["allvr_%s.dcm" % short, "edge_%s.dcm" % short]
    names += ["edge_long_impl.dcm"]
    names += ["enc_rle_dog.dcm", "enc_rle_cat.dcm", "enc_fragments_bot.dcm",
              "enc_fragments_eot.dcm"]
    for tag, _, _, _ in CHARSETS:
        names.append("cs_%s_expl.dcm" % tag)
        if tag in ("ir192", "ir87"):
            names += ["cs_%s_impl.dcm" % tag, "cs_%s_big.dcm" % tag]
    return sorted(names)


def generate(outdir):
    """Writes the corpus into outdir and returns the paths written (sorted)."""
    os.makedirs(outdir, exist_ok=True)
    config.settings.writing_validation_mode = config.IGNORE
    rng = np.random.default_rng(20240229)
    files = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key in SPECIES:
            ds, _ = vet_dataset(key, rng)
            for short, ts in NATIVE_TS.items():
                files["vet_%s_%s.dcm" % (key, short)] = pydicom_bytes(ds, ts)
        allvr = allvr_dataset()
        for short, ts in NATIVE_TS.items():
            files["allvr_%s.dcm" % short] = pydicom_bytes(allvr, ts)
            files["edge_%s.dcm" % short] = edge_file(ts)
        files["edge_long_impl.dcm"] = long_values_file()
        for key in ("dog", "cat"):
            ds = rle_dataset(key, rng)
            files["enc_rle_%s.dcm" % key] = pydicom_bytes(ds, RLELossless)
        files["enc_fragments_bot.dcm"] = pydicom_bytes(fragmented_dataset(rng, False),
                                                       ENCAPSULATED_UNCOMPRESSED)
        files["enc_fragments_eot.dcm"] = pydicom_bytes(fragmented_dataset(rng, True),
                                                       ENCAPSULATED_UNCOMPRESSED)
        for tag, charset, name, text in CHARSETS:
            ds = charset_dataset(tag, charset, name, text)
            files["cs_%s_expl.dcm" % tag] = pydicom_bytes(ds, ExplicitVRLittleEndian)
            if tag in ("ir192", "ir87"):
                files["cs_%s_impl.dcm" % tag] = pydicom_bytes(ds, ImplicitVRLittleEndian)
                files["cs_%s_big.dcm" % tag] = pydicom_bytes(ds, ExplicitVRBigEndian)
    assert sorted(files) == corpus_names(), "corpus_names() is out of date"
    paths = []
    for name in sorted(files):
        path = os.path.join(outdir, name)
        with open(path, "wb") as f:
            f.write(files[name])
        paths.append(path)
    verify(paths)
    return paths


def verify(paths):
    """Every file must be readable by pydicom without force, down to every nested value."""
    for p in paths:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(p)
            for _ in ds.iterall():
                pass
        if os.path.basename(p).startswith("cs_"):
            tag = os.path.basename(p).split("_")[1]
            want = {c[0]: c for c in CHARSETS}[tag]
            if str(ds.PatientName) != want[2] or ds.PatientBreedDescription != want[3]:
                raise AssertionError("%s: charset round trip failed: %r" % (p, ds.PatientName))


def main(argv):
    if len(argv) != 2:
        sys.stderr.write("usage: gen_corpus.py OUTDIR\n")
        return 2
    for p in generate(argv[1]):
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
