# SPDX-License-Identifier: MIT
"""`vetpacs serve`: the DICOM C-ECHO / C-STORE SCP, driven by real peers (dcmtk's echoscu,
storescu), by a minimal hand-written SCU, and by hostile peers speaking broken PS3.8.

Every test starts its own server on a free port with a fresh data folder (fixture `server`,
tests/integration/server_util.py). The fixture stops it with SIGTERM at the end and requires
exit status 0 and, under VP_SANITIZE, no sanitizer report in its stderr.
"""
import glob
import hashlib
import io
import os
import random
import re
import select
import signal
import socket
import sqlite3
import struct
import subprocess
import threading
import time
import warnings
import zlib

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset

from conftest import SLOW, run
from server_util import (A_ABORT, EXPLICIT_LE, IMPLICIT_LE, SECONDARY_CAPTURE, VERIFICATION,
                         RawAssoc, a_associate_rq, assert_echo, c_echo_rq, c_store_rq, connect,
                         dcmtk, echo, p_data_tf, parse_command, pdu, pdv, read_pdu,
                         server, wait_abort_or_close)  # noqa: F401

SHORT_TIMERS = "[dicom]\nartim_timeout = 2\nidle_timeout = 3\n"

ENC_UNCOMPRESSED = "1.2.840.10008.1.2.1.98"
DEFLATED = "1.2.840.10008.1.2.1.99"
BIG_ENDIAN = "1.2.840.10008.1.2.2"
RLE = "1.2.840.10008.1.2.5"

# storescu option that proposes exactly this transfer syntax first (so the data set crosses
# the network in the file's own transfer syntax); None: dcmtk 3.6.7 does not know it.
STORESCU_TS_OPTION = {IMPLICIT_LE: "-xi", EXPLICIT_LE: "-xe", BIG_ENDIAN: "-xb",
                      DEFLATED: "-xd", RLE: "-xr", ENC_UNCOMPRESSED: None}


def uid_for(*parts):
    h = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return "2.25." + str(int.from_bytes(h[:16], "big"))


def expected_counts(paths):
    """What `vetpacs check` must count for these files, from pydicom (Patient ID + Issuer)."""
    pats, studies, series, inst = set(), set(), set(), set()
    for p in paths:
        ds = read_quiet(p, stop_before_pixels=True)
        pats.add((str(ds.get("PatientID", "")).strip(),
                  str(ds.get("IssuerOfPatientID", "")).strip()))
        studies.add(str(ds.StudyInstanceUID))
        series.add(str(ds.SeriesInstanceUID))
        inst.add(str(ds.SOPInstanceUID))
    return {"patients": len(pats), "studies": len(studies), "series": len(series),
            "instances": len(inst), "errors": 0}


def check(data):
    """(exit status, "N patients, ..." line) of `vetpacs check`."""
    r = run(["check", "--data", data])
    return r.returncode, r.stdout.decode().strip(), r


def check_counts(data):
    """{patients, studies, series, instances, errors} from `vetpacs check`."""
    rc, line, r = check(data)
    m = re.match(r"(\d+) patients, (\d+) studies, (\d+) series, (\d+) instances, (\d+) errors$",
                 line)
    assert m, r.describe()
    return dict(zip(("patients", "studies", "series", "instances", "errors"),
                    map(int, m.groups()))), rc, r


def index_rows(data):
    db = sqlite3.connect(os.path.join(data, "index.db"))
    try:
        return {r[0]: r[1:] for r in db.execute(
            "SELECT sop_uid, path, transfer_syntax FROM instance")}
    finally:
        db.close()


def object_files(data):
    """Every object file under DIR/objects (whatever the folder layout below it)."""
    return glob.glob(os.path.join(data, "objects", "**", "*.dcm"), recursive=True)


def stored_path(data, sop_uid):
    """The object file for a SOP Instance: DIR/objects/.../<uid>.dcm, or None."""
    hits = glob.glob(os.path.join(data, "objects", "**", sop_uid + ".dcm"), recursive=True)
    assert len(hits) <= 1, hits
    return hits[0] if hits else None


# ---------------------------------------------------------------------------------------------
# Part 10 files at the byte level

def split_part10(b):
    """(meta element bytes incl. preamble, data set bytes, transfer syntax) of a Part 10 file
    (meta group Explicit VR LE, PS3.10 7.1)."""
    assert b[128:132] == b"DICM"
    off, ts = 132, None
    while off + 8 <= len(b):
        g, e = struct.unpack_from("<HH", b, off)
        if g != 2:
            break
        vr = b[off + 4:off + 6]
        if vr in (b"OB", b"OW", b"UN", b"UT", b"SQ", b"UC", b"UR"):
            n = struct.unpack_from("<I", b, off + 8)[0]
            hdr = 12
        else:
            n = struct.unpack_from("<H", b, off + 6)[0]
            hdr = 8
        if e == 0x0010:
            ts = b[off + hdr:off + hdr + n].rstrip(b"\0 ").decode()
        off += hdr + n
    return b[:off], b[off:], ts


LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT",
            b"UV"}


def _tag(b, off, little):
    g, e = struct.unpack_from("<HH" if little else ">HH", b, off)
    return (g << 16) | e


def _skip_items(b, off, explicit, little):
    """off at the first item of an undefined-length value; returns the offset after its
    sequence delimiter."""
    u32 = "<I" if little else ">I"
    while True:
        t = _tag(b, off, little)
        n = struct.unpack_from(u32, b, off + 4)[0]
        off += 8
        if t == 0xFFFEE0DD:
            return off
        assert t == 0xFFFEE000, "expected an item at %d, got %08X" % (off - 8, t)
        if n == 0xFFFFFFFF:
            off = _elements(b, off, explicit, little, in_item=True)[1]
        else:
            off += n


def _elements(b, off, explicit, little, in_item=False):
    """([(tag, start, end)], end offset) of the elements at this level."""
    out = []
    u16, u32 = ("<H", "<I") if little else (">H", ">I")
    while off < len(b):
        t = _tag(b, off, little)
        if t == 0xFFFEE00D:
            return out, off + 8
        if explicit:
            vr = b[off + 4:off + 6]
            if vr in LONG_VRS:
                n, hdr = struct.unpack_from(u32, b, off + 8)[0], 12
            else:
                n, hdr = struct.unpack_from(u16, b, off + 6)[0], 8
        else:
            vr, n, hdr = None, struct.unpack_from(u32, b, off + 4)[0], 8
        start = off
        if n == 0xFFFFFFFF:
            # CP-246: UN of undefined length holds Implicit VR LE items
            off = _skip_items(b, off + hdr, explicit and vr != b"UN",
                              little if vr != b"UN" else True)
        else:
            off += hdr + n
        out.append((t, start, off))
    assert not in_item, "item without delimiter"
    return out, off


def _encode_ui(tag, value, explicit, little):
    v = value.encode()
    if len(v) % 2:
        v += b"\0"
    e = "<" if little else ">"
    head = struct.pack(e + "HH", tag >> 16, tag & 0xFFFF)
    if explicit:
        return head + b"UI" + struct.pack(e + "H", len(v)) + v
    return head + struct.pack(e + "I", len(v)) + v


# Hanging Protocol objects have no patient or study, so the archive declines their SOP class
# at negotiation; the corpus's all-VR files use it. They travel as RT Beams Delivery
# Instruction (a patient IOD) instead: a UID of the same length, swapped byte for byte.
HANGING_PROTOCOL = b"1.2.840.10008.5.1.4.38.1"
STAND_IN_CLASS = b"1.2.840.10008.5.1.4.34.7"


def swap_declined_class(meta, data, ts):
    """meta and data with the Hanging Protocol SOP Class UID replaced (same length)."""
    meta = meta.replace(HANGING_PROTOCOL, STAND_IN_CLASS)
    if ts == DEFLATED:
        raw = zlib.decompress(data, -15).replace(HANGING_PROTOCOL, STAND_IN_CLASS)
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        return meta, c.compress(raw) + c.flush()
    return meta, data.replace(HANGING_PROTOCOL, STAND_IN_CLASS)


def add_missing_uids(data, ts, uids):
    """Data set bytes `data` (in transfer syntax ts) with the top-level UI elements of `uids`
    ({tag: value}) inserted in tag order where absent. Everything else stays byte for byte,
    and a group length (0020,0000) if present grows by what was inserted."""
    deflated = ts == DEFLATED
    if deflated:
        data = zlib.decompress(data, -15)
    explicit = ts != IMPLICIT_LE
    little = ts != BIG_ENDIAN
    elems, end = _elements(data, 0, explicit, little)
    assert end == len(data)
    present = {t for t, _, _ in elems}
    for tag in sorted(uids):
        if tag in present:
            continue
        blob = _encode_ui(tag, uids[tag], explicit, little)
        pos = next((s for t, s, _ in elems if t > tag), len(data))
        data = data[:pos] + blob + data[pos:]
        elems, _ = _elements(data, 0, explicit, little)
        for t, s, e in elems:
            if t == (tag & 0xFFFF0000):  # group length of this group
                f = "<I" if little else ">I"
                vo = e - 4
                old = struct.unpack_from(f, data, vo)[0]
                data = data[:vo] + struct.pack(f, old + len(blob)) + data[vo + 4:]
        present.add(tag)
    if deflated:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        data = c.compress(data) + c.flush()
    return data


def read_quiet(path_or_bytes, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = io.BytesIO(path_or_bytes) if isinstance(path_or_bytes, bytes) else path_or_bytes
        return pydicom.dcmread(src, **kw)


def dataset_diff(a, b, path="", dcmtk_normalized=False):
    """Differences between two pydicom data sets outside group 0002, as text lines.
    dcmtk_normalized: the data set went through dcmtk, which rewrites group lengths and pads
    odd-length values when it encodes for the network; those differences are not the
    server's."""
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ta = {t for t in a.keys() if t.group != 2}
        tb = {t for t in b.keys() if t.group != 2}
        for t in sorted(ta ^ tb):
            out.append("%s%s only in %s" % (path, t, "sent" if t in ta else "stored"))
        for t in sorted(ta & tb):
            ea, eb = a[t], b[t]
            if ea.VR == "SQ" or eb.VR == "SQ":
                va, vb = list(ea.value or []), list(eb.value or [])
                if len(va) != len(vb):
                    out.append("%s%s: %d items sent, %d stored" % (path, t, len(va), len(vb)))
                    continue
                for i, (ia, ib) in enumerate(zip(va, vb)):
                    out += dataset_diff(ia, ib, "%s%s[%d]." % (path, t, i), dcmtk_normalized)
            elif t.element == 0 and dcmtk_normalized:
                continue  # dcmtk recomputes group lengths when it sends
            elif (dcmtk_normalized and isinstance(ea.value, bytes) and len(ea.value) % 2 and
                  isinstance(eb.value, bytes) and eb.value[:-1] == ea.value and
                  eb.value[-1:] in (b"\0", b" ")):
                continue  # dcmtk pads an odd-length value when it sends
            elif ea.VR != eb.VR or ea.value != eb.value:
                out.append("%s%s: sent %s %r, stored %s %r" % (path, t, ea.VR, ea.value, eb.VR,
                                                             eb.value))
    return out


# ---------------------------------------------------------------------------------------------
# Small generated objects

def small_dataset(study, series, sop, n=0, rows=8, cols=8, text=""):
    ds = Dataset()
    ds.SOPClassUID = SECONDARY_CAPTURE
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.PatientID = "VP-%s" % study[-6:]
    ds.PatientName = "Owner^Rex"
    ds.Modality = "OT"
    ds.InstanceNumber = n
    ds.ConversionType = "WSD"
    ds.StudyDescription = text or "server test"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = rows, cols
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes((n + i) & 0xFF for i in range(rows * cols))
    return ds


def encode_dataset(ds, implicit=True):
    """Data set bytes (no meta) in Implicit (or Explicit) VR Little Endian."""
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = implicit
    write_dataset(fp, ds)
    return fp.getvalue()


def write_part10(ds, path, ts=EXPLICIT_LE):
    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = ds.SOPClassUID
    fm.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    fm.TransferSyntaxUID = ts
    fm.ImplementationClassUID = "1.2.826.0.1.3680043.9.7433.1.2"
    ds.file_meta = fm
    ds.is_little_endian = True
    ds.is_implicit_VR = ts == IMPLICIT_LE
    ds.save_as(path, write_like_original=False)


def make_files(folder, count, tag, size=8, ts=EXPLICIT_LE):
    """count small SC files with distinct SOP Instance UIDs in one study/series per tag."""
    os.makedirs(folder, exist_ok=True)
    study, series = uid_for(tag, "study"), uid_for(tag, "series")
    paths = []
    for i in range(count):
        ds = small_dataset(study, series, uid_for(tag, i), i, size, size)
        p = os.path.join(folder, "%s_%04d.dcm" % (tag, i))
        write_part10(ds, p, ts)
        paths.append(p)
    return paths


def storescu(srv, paths, *extra, calling="STORESCU", timeout=60):
    return dcmtk("storescu", "-to", 5 * SLOW, "-ta", 10 * SLOW, "-td", 20 * SLOW, "-nh", "-R",
                 "-aet", calling, "-aec", srv.aet, *extra, "127.0.0.1", srv.port, *paths,
                 timeout=timeout)


def assoc_lines(srv, calling):
    return [ln for ln in srv.log.splitlines()
            if re.search(r"association \S+ %s -> " % re.escape(calling), ln)]


# =============================================================================================
# 1. Verification and AE titles

def test_echo_and_called_ae(server):
    srv = server()
    assert_echo(srv)
    assert srv.wait_log(r"association \S+ ECHOSCU -> VETPACS: 0 stored, 0 failed, 1 echo, .*: "
                        r"released$"), srv.log
    r = echo(srv, "-aec", "OTHER")
    assert r.returncode not in (0, None), r
    assert srv.wait_log(r"ECHOSCU -> OTHER: .*rejected: called AE title not recognized"), srv.log
    assert_echo(srv)


def test_accepted_calling_aes(server):
    srv = server(config="[dicom]\naccepted_calling_aes = MODALITY1\n")
    r = echo(srv, "-aet", "OTHER")
    assert r.returncode not in (0, None), r
    assert srv.wait_log(r"OTHER -> VETPACS: .*rejected: calling AE title not recognized"), \
        srv.log
    assert_echo(srv, "-aet", "MODALITY1")
    assert srv.wait_log(r"MODALITY1 -> VETPACS: .*1 echo.*released$"), srv.log


# =============================================================================================
# 2. The corpus through storescu, every transfer syntax as sent

@pytest.fixture(scope="module")
def sendable_corpus(tmp_path_factory, corpus):
    """Copies of the corpus files that an archive can index: storage SOP classes, with
    Study and Series Instance UIDs (added byte-exactly where the corpus leaves them out, so
    the edge encodings still travel). {name: (path, transfer syntax, sop instance uid)}."""
    out_dir = tmp_path_factory.mktemp("sendable")
    out = {}
    for name, path in sorted(corpus.items()):
        with open(path, "rb") as f:
            b = f.read()
        meta, data, ts = split_part10(b)
        meta, data = swap_declined_class(meta, data, ts)
        ds = read_quiet(path, stop_before_pixels=True)
        sop = str(ds.SOPInstanceUID)
        study = str(ds.get("StudyInstanceUID", "")) or uid_for(sop, "study")
        data = add_missing_uids(data, ts, {0x0020000D: study,
                                           0x0020000E: uid_for(study, "series")})
        p = str(out_dir / name)
        with open(p, "wb") as f:
            f.write(meta + data)
        chk = read_quiet(p)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in chk.iterall():
                pass
        assert chk.SeriesInstanceUID and chk.SOPInstanceUID == sop, name
        out[name] = (p, ts, sop)
    return out


def verify_stored(srv, name, path, ts, sop, exact):
    """The stored object for `path` exists, reads, carries the sent data set and meta."""
    sp = stored_path(srv.data, sop)
    assert sp, "%s: no object file for %s" % (name, sop)
    with open(sp, "rb") as f:
        sb = f.read()
    smeta, sdata, sts = split_part10(sb)
    stored = read_quiet(sp)
    sent = read_quiet(path)
    assert str(stored.file_meta.MediaStorageSOPInstanceUID) == sop, name
    assert str(stored.file_meta.MediaStorageSOPClassUID) == str(sent.SOPClassUID), name
    assert str(stored.file_meta.TransferSyntaxUID) == ts, (name, stored.file_meta)
    diff = dataset_diff(sent, stored, dcmtk_normalized=not exact)
    assert not diff, "%s: stored data set differs:\n%s" % (name, "\n".join(diff[:20]))
    if exact:
        with open(path, "rb") as f:
            _, data, _ = split_part10(f.read())
        assert sdata == data, "%s: stored data set bytes differ from the sent ones" % name


def test_store_corpus_every_transfer_syntax(server, sendable_corpus):
    srv = server()
    files = sendable_corpus
    # Rounds: a SOP Instance appears in the corpus once per transfer syntax; each round holds
    # one transfer syntax, so every round replaces the previous round's objects (the default
    # policy) and is verified right after it was sent.
    by_ts = {}
    for name, (p, ts, sop) in files.items():
        by_ts.setdefault(ts, []).append(name)
    all_sops = {sop for _, _, sop in files.values()}
    sent_rounds = 0
    for ts, names in sorted(by_ts.items()):
        sops = [files[n][2] for n in names]
        assert len(set(sops)) == len(sops), "one round must not hold a SOP Instance twice"
        opt = STORESCU_TS_OPTION[ts]
        calling = "ROUND%d" % sent_rounds
        if opt:
            r = storescu(srv, [files[n][0] for n in names], opt, calling=calling)
            assert r.returncode == 0, "storescu %s: exit %s\n%s%s\n%s" % (
                opt, r.returncode, r.stdout[-3000:], r.stderr[-3000:], srv.log[-3000:])
            lines = srv.wait_log(r"%s -> VETPACS: " % calling)
            assert lines and re.search(r": %d stored, 0 failed, .*released$" % len(names),
                                       lines[-1]), lines
        else:
            # dcmtk 3.6.7 does not know this transfer syntax: the minimal SCU sends it.
            classes = sorted({str(read_quiet(files[n][0], stop_before_pixels=True).SOPClassUID)
                              for n in names})
            ctx = [(1 + 2 * i, c, (ts,)) for i, c in enumerate(classes)]
            a = RawAssoc(srv, ctx, calling=calling)
            assert a.ok, "association for %s refused: PDU 0x%02x" % (ts, a.pdu_type)
            for n in names:
                p, _, sop = files[n]
                with open(p, "rb") as f:
                    _, data, _ = split_part10(f.read())
                cls = str(read_quiet(p, stop_before_pixels=True).SOPClassUID)
                pcid = 1 + 2 * classes.index(cls)
                assert a.accepted.get(pcid) == ts, a.accepted
                status, comment = a.store(pcid, cls, sop, data)
                assert status == 0, "%s: status %04X %s" % (n, status, comment)
            assert a.release() == 0x06
        for n in names:
            p, t, sop = files[n]
            verify_stored(srv, n, p, t, sop, exact=opt is None)
        sent_rounds += 1

    counts, rc, r = check_counts(srv.data)
    assert rc == 0 and counts["errors"] == 0, r.describe()
    assert counts == expected_counts(p for p, _, _ in files.values()), counts
    assert counts["instances"] == len(all_sops), counts
    assert set(index_rows(srv.data)) == all_sops
    assert "replaced (policy replace)" in srv.log

    # The same bytes again: nothing new, every object answered with success.
    ts, names = sorted(by_ts.items())[0]
    r = storescu(srv, [files[n][0] for n in names], STORESCU_TS_OPTION[ts], calling="AGAIN")
    assert r.returncode == 0, r.stderr[-3000:]
    lines = srv.wait_log(r"AGAIN -> VETPACS: ")
    assert lines and re.search(r": %d stored, 0 failed, .*released$" % len(names),
                               lines[-1]), lines
    counts2, rc, r = check_counts(srv.data)
    assert rc == 0 and counts2 == counts, (counts, counts2)


def test_store_without_series_uid_is_refused(server, corpus):
    """A data set without Series Instance UID cannot be archived: A900, nothing indexed."""
    srv = server()
    name = "cs_ir100_expl.dcm"  # has no (0020,000E)
    assert "SeriesInstanceUID" not in read_quiet(corpus[name], stop_before_pixels=True)
    r = storescu(srv, [corpus[name]], "-xe", "-v", calling="NOSERIES")
    # storescu -nh exits 0 either way; -v names the status (A900 is DataSetDoesNotMatchSOPClass)
    assert "Received Store Response (Error: DataSetDoesNotMatchSOPClass)" in r.stderr, r.stderr
    lines = srv.wait_log(r"NOSERIES -> VETPACS: ")
    assert lines and ": 0 stored, 1 failed," in lines[-1], lines
    counts, rc, _ = check_counts(srv.data)
    assert counts["instances"] == 0 and rc == 0


def test_store_corpus_bytes_exact_minimal_scu(server, sendable_corpus):
    """The minimal SCU sends every corpus data set as it is in its file (no dcmtk re-encoding
    on the way), each in its own transfer syntax: the stored data set bytes are identical."""
    srv = server()
    files = sendable_corpus
    by_ts = {}
    for name, (p, ts, sop) in files.items():
        by_ts.setdefault(ts, []).append(name)
    for r, (ts, names) in enumerate(sorted(by_ts.items())):
        classes = sorted({str(read_quiet(files[n][0], stop_before_pixels=True).SOPClassUID)
                          for n in names})
        a = RawAssoc(srv, [(1 + 2 * i, c, (ts,)) for i, c in enumerate(classes)],
                     calling="EXACT%d" % r)
        assert a.ok and set(a.accepted.values()) == {ts}, (ts, a.results)
        for n in names:
            p, _, sop = files[n]
            with open(p, "rb") as f:
                _, data, _ = split_part10(f.read())
            cls = str(read_quiet(p, stop_before_pixels=True).SOPClassUID)
            status, comment = a.store(1 + 2 * classes.index(cls), cls, sop, data)
            assert status == 0, "%s: status %04X %s" % (n, status, comment)
            verify_stored(srv, n, p, ts, sop, exact=True)
        assert a.release() == 0x06
    counts, rc, r = check_counts(srv.data)
    assert rc == 0 and counts["instances"] == len({v[2] for v in files.values()}), counts


# =============================================================================================
# 3. Parallel senders

def test_parallel_senders(server, tmp_path):
    srv = server()
    senders, per = 8, 30
    folders = []
    for k in range(senders):
        d = str(tmp_path / ("s%d" % k))
        make_files(d, per, "par%d" % k, ts=IMPLICIT_LE if k % 2 else EXPLICIT_LE)
        folders.append(d)
    results = [None] * senders

    def send(k):
        results[k] = storescu(srv, [folders[k]], "+sd", calling="PAR%d" % k, timeout=120)

    threads = [threading.Thread(target=send, args=(k,)) for k in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, r in enumerate(results):
        assert r.returncode == 0, "sender %d: exit %s\n%s" % (k, r.returncode, r.stderr[-2000:])
    for k in range(senders):
        lines = srv.wait_log(r"PAR%d -> VETPACS: " % k)
        assert lines and re.search(r": %d stored, 0 failed, .*released$" % per, lines[-1]), lines
    counts, rc, r = check_counts(srv.data)
    assert rc == 0, r.describe()
    assert counts == {"patients": senders, "studies": senders, "series": senders,
                      "instances": senders * per, "errors": 0}, counts
    rows = index_rows(srv.data)
    assert len(rows) == senders * per
    for sop, (path, ts) in rows.items():
        assert os.path.isfile(os.path.join(srv.data, path)), path


# =============================================================================================
# 4. Hostile peers

def hostile_server(server, extra=""):
    return server(config=SHORT_TIMERS + extra)


def test_garbage_bytes(server):
    srv = hostile_server(server)
    rnd = random.Random(7)
    for payload in (b"GET / HTTP/1.1\r\nHost: vetpacs\r\n\r\n",
                    bytes(rnd.randrange(256) for _ in range(4096)),
                    b"\x01" + b"\xff" * 9):
        s = connect(srv)
        try:
            s.sendall(payload)
        except OSError:
            pass
        t0 = time.monotonic()
        how = wait_abort_or_close(s, 3 * SLOW)
        s.close()
        assert how in ("abort", "close", "reset"), how
        assert time.monotonic() - t0 < 2.5 * SLOW
        assert_echo(srv)


def test_truncated_associate_rq_does_not_block_others(server):
    srv = hostile_server(server)
    rq = a_associate_rq()
    s = connect(srv)
    t0 = time.monotonic()
    s.sendall(rq[:40])
    # Another peer is served at once, while the first one holds its half request.
    t1 = time.monotonic()
    assert_echo(srv)
    assert time.monotonic() - t1 < 2 * SLOW
    how = wait_abort_or_close(s, 10 * SLOW)
    elapsed = time.monotonic() - t0
    s.close()
    assert how in ("abort", "close", "reset"), how
    assert 1.5 <= elapsed <= 5 * SLOW, "closed after %.2f s (artim_timeout = 2)" % elapsed
    assert srv.wait_log(r"timed out: no A-ASSOCIATE-RQ \(ARTIM\)"), srv.log
    assert_echo(srv)


def test_huge_pdu_length(server):
    srv = hostile_server(server)
    for t in (0x01, 0x04, 0x07, 0x55):
        s = connect(srv)
        s.sendall(struct.pack(">BBI", t, 0, 0xFFFFFFFF) + b"\0" * 64)
        t0 = time.monotonic()
        how = wait_abort_or_close(s, 3 * SLOW)
        s.close()
        assert how in ("abort", "close", "reset"), (t, how)
        assert time.monotonic() - t0 < 1.5 * SLOW, t
    # The same on an established association.
    a = RawAssoc(srv)
    assert a.ok
    a.send(struct.pack(">BBI", 0x04, 0, 0xFFFFFFFF) + b"\0" * 64)
    how = wait_abort_or_close(a.sock, 3 * SLOW)
    a.close()
    assert how in ("abort", "close", "reset"), how
    assert_echo(srv)
    assert srv.alive()


def test_p_data_before_association(server):
    srv = hostile_server(server)
    s = connect(srv)
    s.sendall(p_data_tf(pdv(1, c_echo_rq(), True)))
    how = wait_abort_or_close(s, 3 * SLOW)
    s.close()
    assert how in ("abort", "close", "reset"), how
    assert_echo(srv)


def test_pdv_on_unaccepted_context(server):
    srv = hostile_server(server)
    a = RawAssoc(srv, [(1, VERIFICATION, (IMPLICIT_LE,))])
    assert a.ok and a.accepted == {1: IMPLICIT_LE}
    assert a.echo() == 0x0000
    a.send(p_data_tf(pdv(3, c_echo_rq(2), True)))
    how = wait_abort_or_close(a.sock, 3 * SLOW)
    a.close()
    assert how == "abort", how
    assert srv.wait_log(r"RAWSCU -> VETPACS: .*1 echo.*aborted"), srv.log
    assert_echo(srv)


def test_dataset_before_command(server):
    srv = hostile_server(server)
    a = RawAssoc(srv, [(1, VERIFICATION, (IMPLICIT_LE,))])
    assert a.ok
    a.send(p_data_tf(pdv(1, b"\x08\x00\x18\x00\x04\x00\x00\x001.2\0", False)))
    how = wait_abort_or_close(a.sock, 3 * SLOW)
    a.close()
    assert how == "abort", how
    assert srv.wait_log(r"RAWSCU -> VETPACS: .*aborted"), srv.log
    assert_echo(srv)


def test_slow_loris_is_cut_after_idle_timeout(server):
    srv = hostile_server(server)
    a = RawAssoc(srv)
    assert a.ok
    body = p_data_tf(pdv(1, c_echo_rq(), True))
    t0 = time.monotonic()
    how = None
    for i in range(len(body) * 4):
        try:
            a.sock.send(body[i % len(body):i % len(body) + 1])
        except OSError:
            how = "reset"
            break
        r, _, _ = select.select([a.sock], [], [], 0.5)
        if r:
            how = wait_abort_or_close(a.sock, 2)
            break
        if time.monotonic() - t0 > 15 * SLOW:
            break
    elapsed = time.monotonic() - t0
    a.close()
    assert how in ("abort", "close", "reset"), "still open after %.1f s" % elapsed
    assert 2.5 <= elapsed <= 8 * SLOW, "cut after %.2f s (idle_timeout = 3)" % elapsed
    assert srv.wait_log(r"RAWSCU -> VETPACS: .*timed out: association idle"), srv.log
    assert_echo(srv)


def test_half_open_connection_closed_after_artim(server):
    srv = hostile_server(server)
    s = connect(srv)
    t0 = time.monotonic()
    how = wait_abort_or_close(s, 10 * SLOW)
    elapsed = time.monotonic() - t0
    s.close()
    assert how in ("abort", "close", "reset"), how
    assert 1.5 <= elapsed <= 5 * SLOW, "closed after %.2f s (artim_timeout = 2)" % elapsed
    assert srv.wait_log(r"timed out: no A-ASSOCIATE-RQ \(ARTIM\)"), srv.log
    assert_echo(srv)


def test_many_idle_connections_do_not_block_echo(server):
    srv = server()  # default timers: the idle sockets stay open for the whole test
    socks = [connect(srv) for _ in range(40)]
    try:
        time.sleep(0.2)
        t0 = time.monotonic()
        assert_echo(srv)
        assert time.monotonic() - t0 < 2 * SLOW, "echo took %.2f s" % (time.monotonic() - t0)
        for s in socks:  # all still held open by the server
            r, _, _ = select.select([s], [], [], 0)
            assert not r
    finally:
        for s in socks:
            s.close()
    assert_echo(srv)


def test_max_associations_rejects_transiently(server):
    srv = server(config=SHORT_TIMERS.replace("idle_timeout = 3", "idle_timeout = 30") +
                 "max_associations = 2\n")
    held = [RawAssoc(srv, calling="HOLD%d" % i) for i in range(2)]
    try:
        assert all(a.ok for a in held)
        r = echo(srv, "-aet", "THIRD")
        assert r.returncode not in (0, None), r
        lines = srv.wait_log(r"THIRD -> VETPACS: ")
        assert lines and "rejected: too many associations" in lines[-1], lines
        # The A-ASSOCIATE-RJ is transient (result 2), source 3, reason 2 (local limit exceeded).
        s = connect(srv)
        s.sendall(a_associate_rq(calling="FOURTH"))
        t, body = read_pdu(s)
        s.close()
        assert t == 0x03 and body[1:4] == b"\x02\x03\x02", (t, body)
    finally:
        for a in held:
            assert a.release() == 0x06
    assert srv.wait_log(r"HOLD1 -> VETPACS: .*released$"), srv.log
    assert_echo(srv)


def test_pipelined_pdus_in_one_segment(server):
    """A-ASSOCIATE-RQ, two C-ECHO-RQ and A-RELEASE-RQ in one write: each is answered."""
    srv = hostile_server(server)
    s = connect(srv)
    s.sendall(a_associate_rq() + p_data_tf(pdv(1, c_echo_rq(1), True)) +
              p_data_tf(pdv(1, c_echo_rq(2), True)) + pdu(0x05, b"\0\0\0\0"))
    s.settimeout(5 * SLOW)
    types = [read_pdu(s)[0] for _ in range(4)]
    s.close()
    assert types == [0x02, 0x04, 0x04, 0x06], types
    assert srv.wait_log(r"RAWSCU -> VETPACS: 0 stored, 0 failed, 2 echo, .*released$"), srv.log


def test_request_sent_byte_by_byte_and_fragmented_messages(server):
    """The A-ASSOCIATE-RQ in 1-byte writes, then a C-STORE whose command and data set come in
    many small PDVs, several PDVs per PDU and PDUs split across writes."""
    srv = hostile_server(server)
    s = connect(srv)
    for b in a_associate_rq(contexts=[(1, SECONDARY_CAPTURE, (EXPLICIT_LE,))]):
        s.send(bytes([b]))
    s.settimeout(5 * SLOW)
    t, _ = read_pdu(s)
    assert t == 0x02
    sop = uid_for("frag", 1)
    data = encode_dataset(small_dataset(uid_for("frag", "st"), uid_for("frag", "se"), sop, 1),
                          implicit=False)
    cmd = c_store_rq(SECONDARY_CAPTURE, sop, 1)
    stream = b""
    for i in range(0, len(cmd), 10):
        stream += p_data_tf(pdv(1, cmd[i:i + 10], True, i + 10 >= len(cmd)))
    pdvs = [pdv(1, data[i:i + 7], False, i + 7 >= len(data)) for i in range(0, len(data), 7)]
    for i in range(0, len(pdvs), 5):
        stream += p_data_tf(*pdvs[i:i + 5])
    for i in range(0, len(stream), 13):
        s.send(stream[i:i + 13])
    t, body = read_pdu(s)
    assert t == 0x04
    rsp = parse_command(body[6:])
    assert struct.unpack("<H", rsp[0x0900])[0] == 0, rsp
    s.sendall(pdu(0x05, b"\0\0\0\0"))
    assert read_pdu(s)[0] == 0x06
    s.close()
    with open(stored_path(srv.data, sop), "rb") as f:
        assert split_part10(f.read())[1] == data


@pytest.mark.parametrize("max_pdu", [7, 8, 20, 64])
def test_tiny_peer_max_pdu_is_respected(server, max_pdu):
    """The requestor's Maximum Length (PS3.8 D.1) bounds every P-DATA-TF sent to it, down to
    one byte of fragment per PDV."""
    srv = hostile_server(server)
    a = RawAssoc(srv, max_pdu=max_pdu)
    assert a.ok
    assert a.echo() == 0x0000
    assert 0 < a.largest_pdata <= max_pdu, a.largest_pdata
    assert a.release() == 0x06
    assert_echo(srv)


def test_unusable_peer_max_pdu_is_not_exceeded(server):
    """A Maximum Length of 6 leaves no room for a PDV fragment (PDV header: 6 bytes). Whatever
    the server does (reject, abort, close), it must not crash nor send a P-DATA-TF longer than
    the peer allows (PS3.8 D.1)."""
    srv = hostile_server(server)
    max_pdu = 6
    s = connect(srv)
    s.sendall(a_associate_rq(max_pdu=max_pdu))
    s.settimeout(5 * SLOW)
    try:
        t, _ = read_pdu(s)
        if t == 0x02:
            s.sendall(p_data_tf(pdv(1, c_echo_rq(), True)))
            t, body = read_pdu(s)
            assert t != 0x04 or len(body) <= max_pdu, (
                "peer's Maximum Length %d, server sent a P-DATA-TF of length %d: %r" % (
                    max_pdu, len(body), body))
    except (ConnectionError, socket.timeout):
        pass
    s.close()
    assert_echo(srv)


def test_negotiation_results(server):
    """Unsupported abstract syntax -> result 3, unsupported transfer syntaxes only -> 4,
    the rest accepted (PS3.8 9.3.3.2); Verification stays usable."""
    srv = server()
    a = RawAssoc(srv, [(1, VERIFICATION, (IMPLICIT_LE,)),
                       # Composite Instance Root Retrieve - MOVE: not provided
                       (3, "1.2.840.10008.5.1.4.1.2.4.2", (IMPLICIT_LE,)),
                       (5, SECONDARY_CAPTURE, ("1.2.3.4.5.6",)),
                       (7, SECONDARY_CAPTURE, ("1.2.3.4.5.6", IMPLICIT_LE, EXPLICIT_LE)),
                       (9, "1.2.840.10008.1.3.10", (EXPLICIT_LE,))])  # DICOMDIR: media only
    assert a.ok
    assert a.results == {1: 0, 3: 3, 5: 4, 7: 0, 9: 3}, a.results
    assert a.accepted[7] == EXPLICIT_LE  # Explicit preferred over Implicit
    assert a.echo() == 0
    assert a.release() == 0x06


@pytest.mark.parametrize("case", ["app_context", "protocol_version", "leading_spaces"])
def test_associate_rq_fields(server, case):
    srv = server()
    rq = bytearray(a_associate_rq())
    if case == "app_context":
        rq = bytearray(bytes(rq).replace(b"1.2.840.10008.3.1.1.1", b"1.2.840.10008.3.1.1.9"))
    elif case == "protocol_version":
        rq[6:8] = b"\x00\x02"
    elif case == "leading_spaces":
        # PS3.5 6.2: leading and trailing spaces of an AE title are not significant
        rq[10:26] = b"   VETPACS      "
    s = connect(srv)
    s.sendall(bytes(rq))
    s.settimeout(5 * SLOW)
    t, body = read_pdu(s)
    s.close()
    if case == "leading_spaces":
        assert t == 0x02, (t, body[:4])
    elif case == "app_context":
        assert t == 0x03 and body[1:4] == b"\x01\x01\x02", (t, body)
    else:
        assert t == 0x03 and body[1:4] == b"\x01\x02\x02", (t, body)
    assert_echo(srv)


@pytest.mark.parametrize("bad", ["even_context", "context_zero", "pdv_length_1",
                                 "pdv_past_pdu", "unknown_pdu_type", "release_rp_unasked"])
def test_malformed_pdus_on_association(server, bad):
    srv = hostile_server(server)
    a = RawAssoc(srv)
    assert a.ok
    echo_cmd = c_echo_rq()
    payload = {
        "even_context": p_data_tf(pdv(2, echo_cmd, True)),
        "context_zero": p_data_tf(pdv(0, echo_cmd, True)),
        "pdv_length_1": pdu(0x04, struct.pack(">IB", 1, 1)),
        "pdv_past_pdu": pdu(0x04, struct.pack(">IBB", 5000, 1, 3) + echo_cmd),
        "unknown_pdu_type": pdu(0x09, b"\0" * 8),
        "release_rp_unasked": pdu(0x06, b"\0\0\0\0"),
    }[bad]
    a.send(payload)
    how = wait_abort_or_close(a.sock, 3 * SLOW)
    a.close()
    assert how in ("abort", "close", "reset"), how
    assert_echo(srv)


def test_peer_abort_mid_store_leaves_nothing(server):
    """A-ABORT (or a dropped connection) half-way through a data set: no object, no index
    row, no temporary file."""
    srv = server()
    for how in ("abort", "close"):
        sop = uid_for("midabort", how)
        data = encode_dataset(small_dataset(uid_for("ma", "st"), uid_for("ma", "se"), sop, 1,
                                            rows=256, cols=256))
        a = RawAssoc(srv, [(1, SECONDARY_CAPTURE, (IMPLICIT_LE,))], calling="MID" + how.upper())
        a.send(p_data_tf(pdv(1, c_store_rq(SECONDARY_CAPTURE, sop), True)))
        a.send(p_data_tf(pdv(1, data[:len(data) // 2], False, False)))
        time.sleep(0.2)
        if how == "abort":
            a.send(A_ABORT)
        a.close()
        lines = srv.wait_log(r"MID%s -> VETPACS: " % how.upper())
        assert lines and ": 0 stored, 1 failed," in lines[-1], lines
        if how == "abort":
            assert lines[-1].endswith("aborted by the peer"), lines
    assert os.listdir(os.path.join(srv.data, "tmp")) == []
    counts, rc, _ = check_counts(srv.data)
    assert rc == 0 and counts["instances"] == 0
    assert_echo(srv)


def test_large_object_streams(server):
    """A 24 MB data set in PDUs of the server's maximum length: stored intact."""
    srv = server()
    sop = uid_for("large", 1)
    ds = small_dataset(uid_for("large", "st"), uid_for("large", "se"), sop, 1, rows=16, cols=16)
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.NumberOfFrames = 48
    ds.Rows = ds.Columns = 512
    ds.PixelData = random.Random(3).randbytes(512 * 512 * 2 * 48)
    data = encode_dataset(ds)
    a = RawAssoc(srv, [(1, SECONDARY_CAPTURE, (IMPLICIT_LE,))])
    assert a.ok and a.max_pdu >= 16384
    status, comment = a.store(1, SECONDARY_CAPTURE, sop, data)
    assert status == 0, "%04X %s" % (status, comment)
    assert a.release() == 0x06
    with open(stored_path(srv.data, sop), "rb") as f:
        assert split_part10(f.read())[1] == data
    assert srv.wait_log(r"RAWSCU -> VETPACS: 1 stored, 0 failed, 0 echo, 25\.2 MB in "), srv.log


def test_write_failure_answers_a700_and_indexes_nothing(server):
    """A write that fails (here: past the process's file size limit, as on a full disk) is
    answered A700 (out of resources, the sender may retry later); nothing is indexed, no
    temporary file stays, and the association goes on storing what fits."""
    srv = server(fsize=4 << 20)
    big_sop, small_sop = uid_for("efbig", 1), uid_for("efbig", 2)
    study, series = uid_for("efbig", "st"), uid_for("efbig", "se")
    big = small_dataset(study, series, big_sop, 1, rows=16, cols=16)
    big.NumberOfFrames = 40
    big.Rows = big.Columns = 256
    big.BitsAllocated, big.BitsStored, big.HighBit = 16, 16, 15
    big.PixelData = bytes(256 * 256 * 2 * 40)  # 5.2 MB: over the 4 MiB limit
    small = small_dataset(study, series, small_sop, 2, rows=16, cols=16)
    a = RawAssoc(srv, [(1, SECONDARY_CAPTURE, (IMPLICIT_LE,))])
    assert a.ok
    status, comment = a.store(1, SECONDARY_CAPTURE, big_sop, encode_dataset(big))
    assert status & 0xFF00 == 0xA700, "%04X %s" % (status, comment)
    assert "write" in comment, comment
    status, comment = a.store(1, SECONDARY_CAPTURE, small_sop, encode_dataset(small))
    assert status == 0, "%04X %s" % (status, comment)
    assert a.release() == 0x06
    assert stored_path(srv.data, big_sop) is None
    assert os.listdir(os.path.join(srv.data, "tmp")) == []
    rc, line, _ = check(srv.data)
    assert rc == 0 and line.endswith("1 instances, 0 errors"), line


def test_sigterm_lets_running_association_finish(server):
    """SIGTERM: no new associations, the running one is still served to its release, then
    the process exits 0."""
    srv = hostile_server(server)
    a = RawAssoc(srv, calling="RUNNING")
    assert a.ok
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    assert srv.alive()
    assert a.echo() == 0
    assert a.release() == 0x06
    srv.proc.wait(timeout=5 * SLOW)
    assert srv.wait_log(r"RUNNING -> VETPACS: 0 stored, 0 failed, 1 echo, .*released$")
    srv.stop()  # exit status 0, no sanitizer report


def test_sigterm_with_idle_association_exits_after_idle_timeout(server):
    srv = hostile_server(server)
    a = RawAssoc(srv, calling="IDLE")
    assert a.ok
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    srv.proc.wait(timeout=10 * SLOW)
    assert time.monotonic() - t0 < 5 * SLOW
    assert wait_abort_or_close(a.sock, 1) in ("abort", "close", "reset")
    a.close()
    srv.stop()


def test_association_slots_survive_abnormal_endings(server):
    """With max_associations = 2, associations that end every abnormal way (peer A-ABORT,
    dropped connection, our abort after a protocol error, idle timeout, reject) give their
    slot back: afterwards two associations are accepted at once and a third is refused."""
    srv = server(config=SHORT_TIMERS.replace("idle_timeout = 3", "idle_timeout = 1") +
                 "max_associations = 2\n")
    for i in range(3):
        a = RawAssoc(srv)
        a.send(A_ABORT)
        a.close()
        a = RawAssoc(srv)
        a.close()
        a = RawAssoc(srv)
        a.send(p_data_tf(pdv(2, c_echo_rq(), True)))
        wait_abort_or_close(a.sock, 3 * SLOW)
        a.close()
        r = echo(srv, "-aec", "OTHER")
        assert r.returncode != 0
    a = RawAssoc(srv, calling="IDLER")
    assert wait_abort_or_close(a.sock, 5 * SLOW) in ("abort", "close", "reset")
    a.close()
    srv.wait_log(r"IDLER -> VETPACS: .*timed out: association idle")
    # the server logs an association once its thread is done: wait for all 13
    srv.wait_log(r"association \S+ \S+ -> ", count=13)
    held = [RawAssoc(srv, calling="HOLD%d" % i) for i in range(2)]
    try:
        assert [h.ok for h in held] == [True, True], srv.log[-3000:]
        third = RawAssoc(srv, calling="THIRD")
        assert third.pdu_type == 0x03
        third.close()
    finally:
        for h in held:
            h.close()


def test_server_closes_after_release_and_reject(server):
    """After A-RELEASE-RP or A-ASSOCIATE-RJ the server waits at most ARTIM for the peer to
    close, then closes itself (PS3.8 Sta13)."""
    srv = hostile_server(server)
    a = RawAssoc(srv)
    a.send(pdu(0x05, b"\0\0\0\0"))
    assert read_pdu(a.sock)[0] == 0x06
    t0 = time.monotonic()
    assert wait_abort_or_close(a.sock, 10 * SLOW) in ("close", "reset")
    assert time.monotonic() - t0 <= 4 * SLOW
    a.close()
    s = connect(srv)
    s.sendall(a_associate_rq(called="OTHER"))
    s.settimeout(5)
    assert read_pdu(s)[0] == 0x03
    t0 = time.monotonic()
    assert wait_abort_or_close(s, 10 * SLOW) in ("close", "reset")
    assert time.monotonic() - t0 <= 4 * SLOW
    s.close()
    assert_echo(srv)


# =============================================================================================
# 5. C-STORE failure statuses (minimal SCU)

def test_store_failure_statuses(server):
    srv = server()
    study, series = uid_for("fail", "study"), uid_for("fail", "series")
    good = small_dataset(study, series, uid_for("fail", 1), 1)
    a = RawAssoc(srv, [(1, SECONDARY_CAPTURE, (IMPLICIT_LE,))])
    assert a.ok and a.accepted == {1: IMPLICIT_LE}

    # The data set's SOP Instance UID is not the announced one: A900 with an Error Comment.
    status, comment = a.store(1, SECONDARY_CAPTURE, uid_for("fail", "other"),
                              encode_dataset(good))
    assert status == 0xA900, "%04X %s" % (status, comment)
    # Error Comment is LO (PS3.7 C.4.2): at most 64 characters, so only its start is there
    assert comment.startswith("SOP Instance UID") and len(comment) <= 64, repr(comment)

    # A data set cut in the middle of an element value (before Pixel Data): cannot be
    # understood, C000 class.
    ds = small_dataset(study, series, uid_for("fail", 2), 2)
    del ds.PixelData
    ds.PerformedProcedureStepDescription = "x" * 40  # (0040,0254), the last element
    blob = encode_dataset(ds)
    status, comment = a.store(1, SECONDARY_CAPTURE, uid_for("fail", 2), blob[:len(blob) - 10])
    assert 0xC000 <= status <= 0xCFFF, "%04X %s" % (status, comment)
    assert comment, "no Error Comment"

    # Garbage: an element whose length runs far past the end.
    garbage = struct.pack("<HHI", 0x0008, 0x0016, 0x7FFFFFF0) + b"x" * 64
    status, comment = a.store(1, SECONDARY_CAPTURE, uid_for("fail", 3), garbage)
    assert 0xC000 <= status <= 0xCFFF, "%04X %s" % (status, comment)

    counts, rc, r = check_counts(srv.data)
    assert rc == 0 and counts["instances"] == 0, counts
    assert not object_files(srv.data)

    # The association goes on.
    status, comment = a.store(1, SECONDARY_CAPTURE, uid_for("fail", 1), encode_dataset(good))
    assert status == 0x0000, "%04X %s" % (status, comment)
    assert a.release() == 0x06
    lines = srv.wait_log(r"RAWSCU -> VETPACS: ")
    assert lines and ": 1 stored, 3 failed, 0 echo" in lines[-1] and \
        lines[-1].endswith("released"), lines
    counts, rc, r = check_counts(srv.data)
    assert rc == 0 and counts["instances"] == 1, counts
    assert not os.listdir(os.path.join(srv.data, "tmp"))


def test_error_comment_offsets_are_data_set_offsets(server):
    """An Error Comment is written for the peer (docs/STYLE: messages are for the peer): an
    offset in it must be an offset in the data set the peer sent, not in the server's own
    Part 10 file (preamble and meta group the peer never saw)."""
    srv = server()
    sop = uid_for("offset", 1)
    blob = encode_dataset(small_dataset(uid_for("offset", "st"), uid_for("offset", "se"), sop,
                                        1))
    cut = blob[:len(blob) - 70]  # ends 2 bytes into an element header
    a = RawAssoc(srv, [(1, SECONDARY_CAPTURE, (IMPLICIT_LE,))])
    status, comment = a.store(1, SECONDARY_CAPTURE, sop, cut)
    assert a.release() == 0x06
    assert 0xC000 <= status <= 0xCFFF, "%04X %s" % (status, comment)
    m = re.search(r"offset (\d+)", comment)
    assert m, comment
    assert int(m.group(1)) == len(cut) - 2, (
        "C-STORE data set of %d bytes cut 2 bytes into an element header (data set offset "
        "%d): Error Comment %r" % (len(cut), len(cut) - 2, comment))


def test_store_truncated_pixel_data_is_refused(server):
    """A data set whose Pixel Data value is shorter than its declared length is damaged: it
    must fail (C000 class) and nothing may be archived, like any other truncation."""
    srv = server()
    sop = uid_for("trunc", 1)
    blob = encode_dataset(small_dataset(uid_for("trunc", "study"), uid_for("trunc", "series"),
                                        sop, 1))  # Pixel Data (7FE0,0010) of 64 bytes, last
    a = RawAssoc(srv, [(1, SECONDARY_CAPTURE, (IMPLICIT_LE,))])
    assert a.ok
    status, comment = a.store(1, SECONDARY_CAPTURE, sop, blob[:len(blob) - 30])
    assert a.release() == 0x06
    counts, rc, r = check_counts(srv.data)
    stored = stored_path(srv.data, sop)
    assert 0xC000 <= status <= 0xCFFF and counts["instances"] == 0 and stored is None, (
        "C-STORE of a data set whose Pixel Data (7FE0,0010) declares 64 bytes but holds 34: "
        "status %04X %r, %d instances indexed, object file %s (vetpacs dump of it: %s)" % (
            status, comment, counts["instances"], stored,
            run(["dump", stored]).stderr.strip() if stored else "-"))


# =============================================================================================
# 6. Duplicate policy

def _dup_pair():
    study, series, sop = uid_for("dup", "study"), uid_for("dup", "series"), uid_for("dup", 1)
    first = small_dataset(study, series, sop, 1, text="first version")
    second = small_dataset(study, series, sop, 1, text="second version")
    return sop, encode_dataset(first), encode_dataset(second)


@pytest.mark.parametrize("policy,status2,kept", [("replace", 0x0000, "second version"),
                                                 ("keep", 0x0000, "first version"),
                                                 ("reject", 0x0111, "first version")])
def test_duplicate_policy(server, policy, status2, kept):
    cfg = None if policy == "replace" else "[dicom]\nduplicates = %s\n" % policy
    srv = server(config=cfg)  # replace: the default, no config
    sop, b1, b2 = _dup_pair()
    a = RawAssoc(srv, [(1, SECONDARY_CAPTURE, (IMPLICIT_LE,))])
    assert a.ok
    assert a.store(1, SECONDARY_CAPTURE, sop, b1) == (0, "")
    # The very same bytes again: success whatever the policy.
    assert a.store(1, SECONDARY_CAPTURE, sop, b1)[0] == 0x0000
    status, comment = a.store(1, SECONDARY_CAPTURE, sop, b2)
    assert status == status2, "%04X %s" % (status, comment)
    assert a.release() == 0x06
    stored = read_quiet(stored_path(srv.data, sop))
    assert stored.StudyDescription == kept
    assert srv.wait_log(r"duplicate SOP Instance %s with other content: %s" % (
        re.escape(sop), {"replace": "replaced", "keep": "kept", "reject": "rejected"}[policy]))
    counts, rc, r = check_counts(srv.data)
    assert rc == 0 and counts["instances"] == 1, counts


def test_duplicate_policy_from_environment(server):
    srv = server(env={"VETPACS_DUPLICATES": "reject"})
    sop, b1, b2 = _dup_pair()
    a = RawAssoc(srv, [(1, SECONDARY_CAPTURE, (IMPLICIT_LE,))])
    assert a.store(1, SECONDARY_CAPTURE, sop, b1)[0] == 0
    assert a.store(1, SECONDARY_CAPTURE, sop, b2)[0] == 0x0111
    assert a.release() == 0x06


# =============================================================================================
# 7. Crash safety

def test_kill_during_transfer_keeps_acknowledged_objects(server, tmp_path):
    srv = server()
    folder = str(tmp_path / "crash")
    paths = make_files(folder, 300, "crash", size=96)
    log_path = str(tmp_path / "storescu.log")
    env = dict(os.environ, TCP_NODELAY="1")
    with open(log_path, "w") as logf:
        p = subprocess.Popen(["storescu", "-v", "-nh", "-R", "-ta", "10", "-aet", "CRASH",
                              "-aec", srv.aet, "127.0.0.1", str(srv.port)] + paths,
                             stdout=logf, stderr=subprocess.STDOUT, env=env)
        # Kill once some objects are in, well before the end (or after 1 s at most).
        t0 = time.monotonic()
        while time.monotonic() - t0 < 1.0 * SLOW:
            n = len(object_files(srv.data))
            if n >= 60:
                break
            time.sleep(0.005)
        srv.kill()
        killed_at = time.monotonic() - t0
        try:
            p.wait(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    with open(log_path) as f:
        out = f.read()
    # storescu -v: "Sending file: PATH" ... "Received Store Response (Success)"
    acked, current = [], None
    for ln in out.splitlines():
        m = re.search(r"Sending file: (\S+)", ln)
        if m:
            current = m.group(1)
        elif "Received Store Response (Success)" in ln and current:
            acked.append(current)
            current = None
    print("killed after %.2f s with %d objects in, %d acknowledged" % (killed_at, n, len(acked)))
    assert len(acked) < len(paths), "storescu finished before the kill: make the test slower"

    srv.restart()
    assert os.listdir(os.path.join(srv.data, "tmp")) == [], "temporary files left"
    counts, rc, r = check_counts(srv.data)
    assert rc == 0 and counts["errors"] == 0, r.describe()
    rows = index_rows(srv.data)
    assert counts["instances"] == len(rows) >= len(acked)
    for p in acked:
        sop = uid_for("crash", int(os.path.basename(p)[6:10]))
        assert sop in rows, "acknowledged %s (%s) is not in the index after the crash" % (p, sop)
    for sop, (path, ts) in rows.items():
        full = os.path.join(srv.data, path)
        ds = read_quiet(full)
        assert str(ds.SOPInstanceUID) == sop
        assert len(ds.PixelData) == 96 * 96, path
    # The restarted server works on the same archive.
    assert_echo(srv)
    r = storescu(srv, paths[-5:], calling="AFTER")
    assert r.returncode == 0, r.stderr[-2000:]
    counts2, rc, _ = check_counts(srv.data)
    assert rc == 0 and counts2["instances"] == len(set(rows) | {
        uid_for("crash", int(os.path.basename(p)[6:10])) for p in paths[-5:]})
