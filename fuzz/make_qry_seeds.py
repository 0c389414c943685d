#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Writes fuzz/seeds/qry: flags byte + Explicit VR LE C-FIND identifiers.
import io, os, sys
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.filewriter import write_dataset

out = sys.argv[1]

from pydicom.filebase import DicomBytesIO

def enc(ds):
    b = DicomBytesIO()
    b.is_little_endian = True
    b.is_implicit_VR = False
    write_dataset(b, ds)
    return b.getvalue()

def seed(name, flags, ds):
    ds.is_little_endian = True
    ds.is_implicit_VR = False
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([flags]) + enc(ds))

d = Dataset(); d.QueryRetrieveLevel = "STUDY"; d.PatientName = "Smith*"; d.StudyInstanceUID = ""
d.StudyDate = "20240101-20240131"; d.StudyTime = "0800-"; d.ModalitiesInStudy = ["CT", "MR"]
d.AccessionNumber = ""; d.SpecificCharacterSet = "ISO_IR 100"
seed("study-ranges.bin", 0, d)
d2 = Dataset(); d2.QueryRetrieveLevel = "STUDY"; d2.StudyDate = "20231231-20240105"; d2.StudyTime = "2359-1015"
seed("study-datetime.bin", 8, d2)
d3 = Dataset(); d3.QueryRetrieveLevel = "PATIENT"; d3.PatientID = "P_?"; d3.ResponsiblePerson = ""
code = Dataset(); code.CodeValue = "448771007"; code.CodingSchemeDesignator = "SCT"
d3.PatientSpeciesCodeSequence = Sequence([code]); d3.PatientSpeciesDescription = "Can*"
d3.ResponsibleOrganization = '""'; d3.PatientSexNeutered = "ALTERED"
seed("patient-vet.bin", 2, d3)
d4 = Dataset(); d4.QueryRetrieveLevel = "SERIES"; d4.StudyInstanceUID = "1.2.3"; d4.Modality = "C?"
d4.SeriesInstanceUID = ["1.2.3.4", "1.2.3.5", "1.2.3.6", "1.2.3.7"]; d4.SeriesNumber = "1"
seed("series-uids.bin", 64, d4)
d5 = Dataset(); d5.QueryRetrieveLevel = "IMAGE"; d5.SOPInstanceUID = ""; d5.InstanceNumber = "12"
d5.SeriesInstanceUID = "1.2.3.4"; d5.NumberOfFrames = ""
seed("image.bin", 48, d5)
d6 = Dataset(); d6.QueryRetrieveLevel = "STUDY"; d6.SeriesInstanceUID = ""; d6.StudyDate = "20240131-20240101"
seed("study-bad.bin", 1, d6)
d7 = Dataset(); d7.PatientName = "x"
seed("no-level.bin", 0, d7)
# Modality Worklist (flags bit 128): keys nested in the Scheduled Procedure Step Sequence item.
w = Dataset(); w.PatientName = "Smith*"; w.PatientID = ""; w.AccessionNumber = ""
w.PatientSpeciesDescription = "Can*"; w.PatientSpeciesCodeSequence = Sequence([code])
w.ResponsiblePerson = ""; w.StudyInstanceUID = ""; w.SpecificCharacterSet = "ISO_IR 100"
sps = Dataset(); sps.Modality = "DX"; sps.ScheduledStationAETitle = "DX1"
sps.ScheduledProcedureStepStartDate = "20261101-20261130"; sps.ScheduledProcedureStepStartTime = "0800-"
sps.ScheduledPerformingPhysicianName = ""; sps.ScheduledProcedureStepID = ""
w.ScheduledProcedureStepSequence = Sequence([sps])
seed("worklist-sps.bin", 128 | 2, w)
w2 = Dataset(); w2.PatientID = "P1"; w2.ScheduledProcedureStepSequence = Sequence([])
w2.BreedRegistrationSequence = Sequence([]); w2.PatientWeight = "0"
seed("worklist-empty-sps.bin", 128 | 32, w2)
w3 = Dataset(); w3.QueryRetrieveLevel = "STUDY"
st = Dataset(); st.ScheduledProcedureStepStatus = "SCHEDULED\\COMPLETED"
w3.ScheduledProcedureStepSequence = Sequence([st, Dataset()])
seed("worklist-two-items.bin", 128, w3)
