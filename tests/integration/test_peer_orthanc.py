# SPDX-License-Identifier: MIT
"""Interoperability with a second, independent DICOM implementation: Orthanc (Debian package
orthanc), in both directions. vetpacs send and echo talk to Orthanc's SCP; Orthanc's SCU
(driven through its REST API) stores into and echoes vetpacs serve. Stored data sets must
equal the sent ones element for element."""
import glob
import json
import os
import shutil
import subprocess
import time
import urllib.request
import warnings

import pydicom
import pytest

from conftest import run
from server_util import free_port, server  # noqa: F401  (fixture)

ORTHANC = shutil.which("Orthanc") or ("/usr/sbin/Orthanc" if os.path.exists("/usr/sbin/Orthanc")
                                       else None)
pytestmark = pytest.mark.skipif(ORTHANC is None, reason="Orthanc is not installed")


def read(path_or_bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if isinstance(path_or_bytes, bytes):
            import io
            path_or_bytes = io.BytesIO(path_or_bytes)
        return pydicom.dcmread(path_or_bytes)


def elements(ds):
    """{tag: value repr} of a data set outside group 0002, sequences flattened."""
    out = {}
    for el in ds.iterall():
        if el.tag.group == 0x0002:
            continue
        out[(len(out), int(el.tag))] = (el.VR, repr(el.value) if el.VR != "SQ" else "SQ")
    return sorted(out.values())


class Orthanc:
    def __init__(self, workdir, modalities):
        self.port, self.http = free_port(), free_port()
        for d in ("storage", "index", "tmp"):
            os.makedirs(os.path.join(workdir, d), exist_ok=True)
        cfg = {
            "Name": "vetpacs-peer",
            "StorageDirectory": os.path.join(workdir, "storage"),
            "IndexDirectory": os.path.join(workdir, "index"),
            "TemporaryDirectory": os.path.join(workdir, "tmp"),
            "DicomServerEnabled": True, "DicomAet": "ORTHANC", "DicomPort": self.port,
            "DicomCheckCalledAet": False, "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowEcho": True, "DicomCheckModalityHost": False,
            "DicomModalities": modalities, "OrthancPeers": {},
            "HttpServerEnabled": True, "HttpPort": self.http, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "Plugins": [], "LuaScripts": [], "SaveJobs": False,
        }
        path = os.path.join(workdir, "orthanc.json")
        with open(path, "w") as f:
            json.dump(cfg, f)
        self.log = open(os.path.join(workdir, "orthanc.log"), "wb")
        env = dict(os.environ, TCP_NODELAY="1")
        for k in ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LD_PRELOAD"):
            env.pop(k, None)
        self.proc = subprocess.Popen([ORTHANC, "--no-jobs", path], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.get("/system")
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        self.stop()
        pytest.fail("Orthanc did not start (see %s)" % self.log.name)

    def request(self, method, path, body=None, raw=False):
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.http, path), data=body,
                                     method=method)
        with urllib.request.urlopen(req, timeout=60) as r:
            data = r.read()
        return data if raw else json.loads(data or b"null")

    def get(self, path, raw=False):
        return self.request("GET", path, raw=raw)

    def post(self, path, body, raw=False):
        if not isinstance(body, bytes):
            body = json.dumps(body).encode()
        return self.request("POST", path, body, raw=raw)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def orthanc(tmp_path):
    started = []

    def start(modalities=None):
        o = Orthanc(str(tmp_path / ("orthanc%d" % len(started))), modalities or {})
        started.append(o)
        return o

    yield start
    for o in started:
        o.stop()


@pytest.fixture(scope="module")
def peer_files(corpus):
    """Corpus files an archive can index, one per SOP Instance, in several transfer syntaxes
    (explicit, implicit, big endian, deflated, RLE)."""
    want = ["vet_dog_expl.dcm", "vet_cat_impl.dcm", "vet_horse_defl.dcm", "vet_exotic_big.dcm",
            "enc_rle_dog.dcm", "enc_rle_cat.dcm"]
    seen, out = set(), []
    for name in want:
        path = corpus.get(name) or corpus.get(name[:-4])
        if not path:
            continue
        sop = str(read(path).SOPInstanceUID)
        if sop not in seen:
            seen.add(sop)
            out.append(path)
    assert len(out) >= 4, out
    return out


def test_echo_both_ways(server, orthanc):  # noqa: F811
    srv = server()
    o = orthanc({"vetpacs": ["VETPACS", "127.0.0.1", srv.port]})
    r = run(["echo", "--call", "ORTHANC", "127.0.0.1", str(o.port)])
    assert r.returncode == 0, r.describe()
    assert b"0000 Success" in r.stdout, r.describe()
    o.post("/modalities/vetpacs/echo", {})
    assert srv.wait_log(r"ORTHANC -> VETPACS: 0 stored, 0 failed, 1 echo"), srv.log


def test_send_to_orthanc(orthanc, peer_files):
    o = orthanc()
    r = run(["send", "--call", "ORTHANC", "127.0.0.1", str(o.port)] + peer_files)
    assert r.returncode == 0, r.describe()
    assert ("%d sent, 0 warnings, 0 failed" % len(peer_files)).encode() in r.stdout, r.describe()
    ids = o.get("/instances")
    assert len(ids) == len(peer_files)
    stored = {}
    for i in ids:
        ds = read(o.get("/instances/%s/file" % i, raw=True))
        stored[str(ds.SOPInstanceUID)] = ds
    for path in peer_files:
        sent = read(path)
        got = stored.get(str(sent.SOPInstanceUID))
        assert got is not None, path
        assert elements(got) == elements(sent), path


def test_orthanc_stores_into_vetpacs(server, orthanc, peer_files):  # noqa: F811
    srv = server()
    o = orthanc({"vetpacs": ["VETPACS", "127.0.0.1", srv.port]})
    ids = []
    for path in peer_files:
        with open(path, "rb") as f:
            ids.append(o.post("/instances", f.read())["ID"])
    # Synchronous: the call returns once every C-STORE was answered (Orthanc opens one
    # association per patient).
    o.post("/modalities/vetpacs/store", {"Resources": ids, "Synchronous": True})
    assert srv.wait_log(r"ORTHANC -> VETPACS: \d+ stored, 0 failed"), srv.log
    r = run(["check", "--data", srv.data])
    assert r.returncode == 0, r.describe()
    assert r.stdout.decode().strip().endswith("%d instances, 0 errors" % len(peer_files))
    for path in peer_files:
        sent = read(path)
        hits = glob.glob(os.path.join(srv.data, "objects", "**",
                                      str(sent.SOPInstanceUID) + ".dcm"), recursive=True)
        assert len(hits) == 1, path
        assert elements(read(hits[0])) == elements(sent), path
