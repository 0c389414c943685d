# SPDX-License-Identifier: MIT
"""Interoperability with Orthanc (Debian package orthanc), a third-party PACS, both ways.

  * vetpacs send -> Orthanc's C-STORE SCP: what Orthanc's REST API returns
    (/instances/{id}/file) holds the same data set as the file sent, in the same transfer
    syntax (Explicit/Implicit VR LE, Explicit VR BE, Deflated, RLE); a transfer syntax Orthanc
    refuses (Encapsulated Uncompressed, unknown to its dcmtk) is reported by vetpacs send
    naming the file and the refusal, and the rest of the batch still goes through.
  * Orthanc's C-STORE SCU (POST /modalities/vetpacs/store, synchronous) -> vetpacs serve:
    `vetpacs check` counts what pydicom says was sent, and every stored object holds the data
    set uploaded to Orthanc (values compared with pydicom outside group 0002; byte for byte
    too where no deflater sits in between).
  * C-ECHO both ways.

Each test starts its own Orthanc with a generated JSON configuration (storage and index in
the test's temporary folder, free DICOM and HTTP ports, no remote access, no authentication,
any calling AE may store, the called AE is not checked, DicomModalities naming vetpacs serve
when there is one) and stops it by its pid at teardown: a system Orthanc service, if one
runs, is never touched. Readiness is Orthanc answering GET /system with our DICOM port.
Orthanc exits at start when its DICOM port was taken meanwhile: it is started again on new
ports (three tries).
"""
import glob
import io
import json
import os
import shutil
import socket
import struct
import subprocess
import time
import urllib.error
import urllib.request
import warnings

import pydicom
import pytest

from conftest import SLOW, run
from server_util import free_port, server  # noqa: F401  (fixture)


def _find_orthanc():
    for c in ("Orthanc", "/usr/sbin/Orthanc"):
        p = shutil.which(c)
        if p:
            return p
    return None


ORTHANC = _find_orthanc()
pytestmark = [pytest.mark.skipif(ORTHANC is None,
                                 reason="Orthanc not installed (Debian package orthanc; "
                                        "scripts/deps.sh test installs it)"),
              pytest.mark.filterwarnings("ignore::UserWarning")]

ILE, ELE, EBE = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"
DEFLATED, RLE = "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.5"
# Orthanc 1.10 (dcmtk 3.6.7) accepts all of these by default (its *TransferSyntaxAccepted
# options are true): a file in one of them must arrive.
ORTHANC_ACCEPTS = {ILE, ELE, EBE, DEFLATED, RLE}

# One file per SOP Instance (the corpus writes every animal in several syntaxes under the same
# UIDs, and Orthanc keeps the first copy of an instance): every object has Study and Series
# Instance UIDs. The two directions use different syntaxes of the same animals.
SEND_FILES = ["vet_dog_big.dcm", "vet_cat_defl.dcm", "vet_horse_impl.dcm",
              "vet_exotic_expl.dcm", "enc_rle_dog.dcm", "enc_rle_cat.dcm"]
REFUSED_FILE = "enc_fragments_bot.dcm"  # Encapsulated Uncompressed Explicit VR LE
STORE_FILES = ["vet_dog_expl.dcm", "vet_cat_impl.dcm", "vet_horse_defl.dcm",
               "vet_exotic_big.dcm", "enc_rle_dog.dcm", "enc_rle_cat.dcm"]

START_TIMEOUT = 30
HTTP_TIMEOUT = 30 * SLOW  # a synchronous store waits for vetpacs (slow under sanitizers)


# ---------------------------------------------------------------------------------------------
# Orthanc

class Orthanc:
    """Our own Orthanc process: dicom_port, http_port, workdir, proc; REST helpers."""

    def __init__(self, workdir, modalities):
        self.workdir, self.modalities = workdir, dict(modalities or {})
        self.proc = None
        self.log_path = os.path.join(workdir, "orthanc.log")
        os.makedirs(workdir, exist_ok=True)

    def _config(self):
        cfg = {
            "Name": "vetpacs-interop",
            "StorageDirectory": os.path.join(self.workdir, "storage"),
            "IndexDirectory": os.path.join(self.workdir, "index"),
            "TemporaryDirectory": os.path.join(self.workdir, "tmp"),
            "DicomServerEnabled": True,
            "DicomAet": "ORTHANC",
            "DicomPort": self.dicom_port,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowEcho": True,
            "DicomCheckModalityHost": False,
            "DicomModalities": self.modalities,
            # close our SCU associations at the end of a job, not 5 s later: vetpacs serve
            # must stop promptly at teardown
            "DicomAssociationCloseDelay": 0,
            "DicomScuTimeout": 10 * SLOW,
            "OrthancPeers": {},
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "Plugins": [],
            "LuaScripts": [],
            "SaveJobs": False,
        }
        path = os.path.join(self.workdir, "orthanc.json")
        with open(path, "w") as f:
            json.dump(cfg, f, indent=1)
        return path

    def start(self):
        env = dict(os.environ, TCP_NODELAY="1")
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "LD_PRELOAD"):
            env.pop(k, None)  # Orthanc is not ours and not instrumented
        for attempt in range(3):
            self.dicom_port, self.http_port = free_port(), free_port()
            while self.http_port == self.dicom_port:
                self.http_port = free_port()
            for d in ("storage", "index", "tmp"):
                shutil.rmtree(os.path.join(self.workdir, d), ignore_errors=True)
                os.makedirs(os.path.join(self.workdir, d))
            cfg = self._config()
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen([ORTHANC, "--no-jobs", cfg], stdout=log,
                                             stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env=env, cwd=self.workdir)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    system = self.get("/system", timeout=2)
                    if system.get("DicomPort") == self.dicom_port and self._dicom_listening():
                        return self
                except (OSError, ValueError):
                    pass
                time.sleep(0.05)
            if self.proc.poll() is None:
                self.stop()
                pytest.fail("Orthanc not ready within %d s\n%s" % (START_TIMEOUT, self.log()),
                            pytrace=False)
            self.proc.wait()
            if "already in use" not in self.log():  # else: lost a race for a port, retry
                break
        pytest.fail("Orthanc exited %s at start\n%s" % (self.proc.returncode, self.log()),
                    pytrace=False)

    def _dicom_listening(self):
        try:
            with socket.create_connection(("127.0.0.1", self.dicom_port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self):
        """SIGTERM to our process (by pid), SIGKILL after 20 s."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def log(self, tail=4000):
        try:
            with open(self.log_path, "r", errors="replace") as f:
                return f.read()[-tail:]
        except OSError:
            return ""

    # -- REST ---------------------------------------------------------------------------------

    def request(self, method, path, body=None, raw=False, timeout=HTTP_TIMEOUT):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.http_port, path),
                                     data=body, method=method)
        with urllib.request.urlopen(req, timeout=timeout) as r:
            data = r.read()
        return data if raw else json.loads(data.decode() or "null")

    def get(self, path, raw=False, timeout=HTTP_TIMEOUT):
        return self.request("GET", path, raw=raw, timeout=timeout)

    def post(self, path, body, raw=False):
        """POST; an HTTP error fails the test with Orthanc's answer and log."""
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        try:
            return self.request("POST", path, body, raw=raw)
        except urllib.error.HTTPError as e:
            pytest.fail("Orthanc POST %s -> HTTP %d: %s\nOrthanc log:\n%s" % (
                path, e.code, e.read().decode("utf-8", "replace")[:2000], self.log()),
                pytrace=False)


@pytest.fixture
def orthanc(tmp_path):
    """orthanc(modalities=None) -> a started Orthanc; every one is stopped at teardown."""
    started = []

    def start(modalities=None):
        o = Orthanc(str(tmp_path / ("orthanc%d" % len(started))), modalities)
        started.append(o)
        return o.start()

    yield start
    for o in started:
        o.stop()


# ---------------------------------------------------------------------------------------------
# Data sets

def read(src):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(src) if isinstance(src, bytes) else src)


SWAP = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def plain(elem, big_endian):
    """A value comparable across encodings: binary values little endian, one padding byte
    of odd-length values removed."""
    v = elem.value
    if isinstance(v, bytes):
        unit = SWAP.get(elem.VR, 1) if big_endian else 1
        if unit > 1:
            v = b"".join(v[i:i + unit][::-1] for i in range(0, len(v), unit))
        return v[:-1] if len(v) % 2 == 0 and v.endswith((b"\0", b" ")) else v
    if isinstance(v, str):
        return v.rstrip(" \0")
    return v


def is_big(ds):
    return str(ds.file_meta.TransferSyntaxUID) == EBE


def diff_datasets(a, b, a_big=False, b_big=False, where=""):
    """The first difference between data sets a and b outside group 0002 (same tags in the
    same order, same values, same VRs where both have them), or None."""
    ta = [e.tag for e in a if e.tag.group != 0x0002]
    tb = [e.tag for e in b if e.tag.group != 0x0002]
    if ta != tb:
        return "%stags differ: only in sent %s, only in received %s" % (
            where, sorted(set(ta) - set(tb)), sorted(set(tb) - set(ta)))
    for ea in a:
        if ea.tag.group == 0x0002:
            continue
        eb = b[ea.tag]
        at = "%s(%04X,%04X)" % (where, ea.tag.group, ea.tag.element)
        if ea.VR == "SQ" or eb.VR == "SQ":
            if ea.VR != eb.VR or len(ea.value) != len(eb.value):
                return "%s: sequence differs (%s, %s)" % (at, ea.VR, eb.VR)
            for i, (ia, ib) in enumerate(zip(ea.value, eb.value)):
                d = diff_datasets(ia, ib, a_big, b_big, "%s[%d]." % (at, i))
                if d:
                    return d
            continue
        if ea.VR != eb.VR:
            return "%s: VR %s != %s" % (at, ea.VR, eb.VR)
        va, vb = plain(ea, a_big), plain(eb, b_big)
        if va != vb:
            return "%s: %r != %r" % (at, str(va)[:80], str(vb)[:80])
    return None


def assert_same_dataset(sent_path, received, what):
    sent = read(sent_path)
    got = read(received)
    d = diff_datasets(sent, got, is_big(sent), is_big(got))
    assert d is None, "%s: %s differs from what was sent: %s" % (sent_path, what, d)
    return sent, got


LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT",
            b"UV"}


def dataset_bytes(data):
    """The bytes after the Part 10 meta group (walked by hand, nothing re-encoded)."""
    pos = 132 if data[128:132] == b"DICM" else 0
    while pos + 8 <= len(data) and struct.unpack_from("<H", data, pos)[0] == 0x0002:
        vr = data[pos + 4:pos + 6]
        if vr in LONG_VRS:
            n, head = struct.unpack_from("<I", data, pos + 8)[0], 12
        else:
            n, head = struct.unpack_from("<H", data, pos + 6)[0], 8
        pos += head + n
    return data[pos:]


def expected_counts(paths):
    """(patients, studies, series, instances) as pydicom reads the files (patients: Patient
    ID with its issuer, as vetpacs indexes them)."""
    patients, studies, series, instances = set(), set(), set(), set()
    for p in paths:
        ds = read(p)
        patients.add((str(ds.get("PatientID", "")).strip(),
                      str(ds.get("IssuerOfPatientID", "")).strip()))
        studies.add(ds.StudyInstanceUID)
        series.add(ds.SeriesInstanceUID)
        instances.add(ds.SOPInstanceUID)
    return len(patients), len(studies), len(series), len(instances)


def pick(corpus, names):
    paths = [corpus[n] for n in names]
    sops = [str(read(p).SOPInstanceUID) for p in paths]
    assert len(set(sops)) == len(sops), "one file per SOP Instance expected"
    for p in paths:
        ds = read(p)
        assert "StudyInstanceUID" in ds and "SeriesInstanceUID" in ds, p
    return paths


# ---------------------------------------------------------------------------------------------
# C-ECHO

def test_echo_both_ways(server, orthanc):  # noqa: F811
    srv = server()
    o = orthanc({"vetpacs": ["VETPACS", "127.0.0.1", srv.port]})
    r = run(["echo", "--call", "ORTHANC", "127.0.0.1", str(o.dicom_port)])
    assert r.returncode == 0, r.describe() + "\nOrthanc log:\n" + o.log()
    assert r.text.strip().startswith("C-ECHO 127.0.0.1:%d (ORTHANC) 0000 Success in "
                                     % o.dicom_port), r.text
    assert r.stderr_lines == []
    # Orthanc's answer is {} on success, HTTP 500 when the echo failed
    assert o.post("/modalities/vetpacs/echo", {}) == {}
    assert srv.wait_log(r"association 127\.0\.0\.1:\d+ ORTHANC -> VETPACS: 0 stored, 0 failed, "
                        r"1 echo, .*: released"), srv.log[-3000:]


# ---------------------------------------------------------------------------------------------
# vetpacs send -> Orthanc

def test_send_to_orthanc(orthanc, corpus):
    o = orthanc()
    paths = pick(corpus, SEND_FILES) + [corpus[REFUSED_FILE]]
    r = run(["send", "--call", "ORTHANC", "127.0.0.1", str(o.dicom_port)] + paths,
            timeout=60 * SLOW)
    assert not r.crashed(), r.describe()
    ts = {p: str(read(p).file_meta.TransferSyntaxUID) for p in paths}
    assert {ILE, ELE, EBE, DEFLATED, RLE} <= set(ts.values())

    # What Orthanc holds, by SOP Instance UID
    held = {}
    for iid in o.get("/instances"):
        data = o.get("/instances/%s/file" % iid, raw=True)
        held[str(read(data).SOPInstanceUID)] = data
    errors = [ln for ln in r.stderr_lines if ln.startswith("vetpacs send: ")]
    arrived, refused = [], []
    for p in paths:
        sop = str(read(p).SOPInstanceUID)
        if sop in held:
            sent, got = assert_same_dataset(p, held[sop], "Orthanc's copy")
            # sent as it is: Orthanc keeps the transfer syntax it received
            assert str(got.file_meta.TransferSyntaxUID) == ts[p], p
            arrived.append(p)
            continue
        assert ts[p] not in ORTHANC_ACCEPTS, (
            "%s (%s) did not reach Orthanc\n%s\nOrthanc log:\n%s" % (p, ts[p], r.describe(),
                                                                  o.log()))
        # refused: vetpacs names the file and why, and goes on with the others
        mine = [e for e in errors if e.startswith("vetpacs send: %s: " % p)]
        assert len(mine) == 1, (p, errors)
        assert ("no presentation context accepted" in mine[0] or "status" in mine[0]), mine[0]
        assert "Encapsulated Uncompressed Explicit VR Little Endian" in mine[0], mine[0]
        refused.append(p)
    assert len(errors) == len(refused), errors
    assert len(held) == len(arrived), sorted(held)
    assert r.returncode == (1 if refused else 0), r.describe()
    last = r.text.strip().splitlines()[-1]
    assert last.startswith("%d sent, 0 warnings, %d failed (" % (len(arrived), len(refused))), \
        r.text

    # Orthanc indexed the patients, studies and series the attributes say
    stats = o.get("/statistics")
    _, st, se, i = expected_counts(arrived)
    assert (stats["CountStudies"], stats["CountSeries"], stats["CountInstances"]) == \
        (st, se, i), stats


# ---------------------------------------------------------------------------------------------
# Orthanc -> vetpacs serve

def test_orthanc_stores_into_vetpacs(server, orthanc, corpus):  # noqa: F811
    srv = server()
    o = orthanc({"vetpacs": ["VETPACS", "127.0.0.1", srv.port]})
    paths = pick(corpus, STORE_FILES)
    uploaded = {}
    ids = []
    for p in paths:
        with open(p, "rb") as f:
            data = f.read()
        ans = o.post("/instances", data)
        assert ans.get("Status") == "Success", (p, ans)
        ids.append(ans["ID"])
        uploaded[p] = data

    ans = o.post("/modalities/vetpacs/store", {"Resources": ids, "Synchronous": True})
    assert ans.get("InstancesCount") == len(paths), ans
    assert ans.get("FailedInstancesCount") == 0, (ans, srv.log[-3000:])
    assert ans.get("RemoteAet") == "VETPACS", ans

    # The server logs each association (Orthanc opens one per SOP class and transfer
    # syntax) a moment after it ended
    deadline = time.monotonic() + 10 * SLOW
    while True:
        lines = srv.wait_log(r"ORTHANC -> VETPACS: \d+ stored", timeout=1)
        stored = sum(int(ln.split("ORTHANC -> VETPACS: ")[1].split()[0]) for ln in lines)
        if stored >= len(paths) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert stored == len(paths), srv.log[-3000:]
    assert all(" stored, 0 failed, " in ln and ln.endswith(": released") for ln in lines), lines

    r = run(["check", "--data", srv.data])
    assert r.returncode == 0, r.describe()
    assert r.text.strip() == ("%d patients, %d studies, %d series, %d instances, 0 errors"
                              % expected_counts(paths)), r.text

    for p in paths:
        sop = str(read(p).SOPInstanceUID)
        hits = glob.glob(os.path.join(srv.data, "objects", "**", sop + ".dcm"), recursive=True)
        assert len(hits) == 1, (p, hits)
        sent, got = assert_same_dataset(p, hits[0], "vetpacs' stored object")
        ts = str(sent.file_meta.TransferSyntaxUID)
        assert str(got.file_meta.TransferSyntaxUID) == ts, p
        if ts != DEFLATED:  # Orthanc's dcmtk deflates again, with its own stream
            with open(hits[0], "rb") as f:
                assert dataset_bytes(f.read()) == dataset_bytes(uploaded[p]), p
        assert str(got.file_meta.get("SourceApplicationEntityTitle", "")).strip() == "ORTHANC"


def test_orthanc_queries_vetpacs(server, orthanc, corpus, tmp_path):  # noqa: F811
    """Orthanc as a C-FIND caller (its Query/Retrieve SCU, driven through REST) against
    vetpacs serve: a study-level query on a veterinary key finds exactly the cats."""
    paths = pick(corpus, STORE_FILES)
    data = str(tmp_path / "qdata")
    r = run(["import", "--data", data] + paths)
    assert r.returncode == 0, r.describe()
    srv = server(data=data)
    o = orthanc({"vetpacs": ["VETPACS", "127.0.0.1", srv.port]})
    cats = {str(read(p).StudyInstanceUID) for p in paths
            if str(read(p).get("PatientSpeciesDescription", "")).startswith("Felis")}
    assert cats
    q = o.post("/modalities/vetpacs/query",
               {"Level": "Study", "Normalize": False,
                "Query": {"StudyInstanceUID": "", "PatientName": "",
                          "PatientSpeciesDescription": "Felis*"}})
    answers = o.get("/queries/%s/answers?expand&simplify" % q["ID"])
    assert {a["StudyInstanceUID"] for a in answers} == cats, answers
    assert all(a["PatientSpeciesDescription"].startswith("Felis") for a in answers), answers
    assert srv.wait_log(r"ORTHANC -> VETPACS: 0 stored, 0 failed, 0 echo, 1 find"), srv.log
