#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes the small Part 10 and bare data set seeds in fuzz/seeds (run once; outputs are
checked in). Each seed is built here so the corpus carries no third-party files."""
import io
import os
import struct
import sys

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian,
                         DeflatedExplicitVRLittleEndian, RLELossless)
from pydicom.encaps import encapsulate

HERE = os.path.dirname(os.path.abspath(__file__))


def base(i):
    ds = Dataset()
    ds.SpecificCharacterSet = ["ISO_IR 100", "ISO_IR 192"][i % 2]
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.1"
    ds.SOPInstanceUID = "2.25.%d" % (1000 + i)
    ds.PatientName = "Smith^Rex"
    ds.PatientID = "PET%03d" % i
    ds.PatientSpeciesDescription = "Canine"
    code = Dataset()
    code.CodeValue = "448771007"
    code.CodingSchemeDesignator = "SCT"
    code.CodeMeaning = "Canis lupus familiaris"
    ds.PatientSpeciesCodeSequence = Sequence([code])
    ds.PatientBreedDescription = "Beagle"
    ds.ResponsiblePerson = "Smith^Jane"
    ds.ResponsiblePersonRole = "OWNER"
    ds.ResponsibleOrganization = "Paws Clinic"
    ds.PatientSexNeutered = "ALTERED"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.Rows = 2
    ds.Columns = 2
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.add_new(0x00091010, "LO", "PRIV")
    ds.add_new(0x00091001, "UN", b"\x01\x02\x03\x04")
    return ds


def part10(ds, ts, encaps=False):
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ts
    ds.is_implicit_VR = ts == ImplicitVRLittleEndian
    ds.is_little_endian = ts != ExplicitVRBigEndian
    if encaps:
        ds.PixelData = encapsulate([b"\x01\x02\x03\x04", b"\x05\x06\x07"], has_bot=True)
        ds["PixelData"].VR = "OB"
    else:
        ds.PixelData = struct.pack("<4H", 1, 2, 3, 4)
        ds["PixelData"].VR = "OW"
    out = io.BytesIO()
    ds.save_as(out, write_like_original=False)
    return out.getvalue()


def main():
    os.makedirs(os.path.join(HERE, "seeds", "part10"), exist_ok=True)
    os.makedirs(os.path.join(HERE, "seeds", "dataset"), exist_ok=True)
    syntaxes = [ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian,
                DeflatedExplicitVRLittleEndian]
    for i, ts in enumerate(syntaxes):
        data = part10(base(i), ts)
        with open(os.path.join(HERE, "seeds", "part10", "native-%d.dcm" % i), "wb") as f:
            f.write(data)
        # Bare data set: first byte selects the syntax in fuzz_dataset.c (0..3 as above).
        body = data[132:]
        glen = struct.unpack("<I", body[8:12])[0]
        with open(os.path.join(HERE, "seeds", "dataset", "bare-%d.bin" % i), "wb") as f:
            f.write(bytes([i]) + body[12 + glen:])
    with open(os.path.join(HERE, "seeds", "part10", "rle.dcm"), "wb") as f:
        f.write(part10(base(9), RLELossless, encaps=True))
    # no preamble, no meta
    ds = base(5)
    ds.is_implicit_VR = True
    ds.is_little_endian = True
    out = io.BytesIO()
    ds.save_as(out, write_like_original=True)
    with open(os.path.join(HERE, "seeds", "part10", "bare-implicit.dcm"), "wb") as f:
        f.write(out.getvalue())


if __name__ == "__main__":
    sys.exit(main())
