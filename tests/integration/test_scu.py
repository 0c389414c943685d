# SPDX-License-Identifier: MIT
"""`vetpacs echo` and `vetpacs send` against dcmtk's storescp.

storescp runs with TCP_NODELAY=1 (else dcmtk's Nagle delays cost 40 ms per message), on a
free port, with a configuration file (-xf) naming exactly the SOP classes and transfer syntaxes
it accepts, so each test says what the peer supports. What arrived is compared with what was
sent: the data set bytes after the meta group when vetpacs sent the file as it is (storescp
+B keeps them), element values read by pydicom when it re-encoded them.

dcmtk 3.6.7 does not know Encapsulated Uncompressed Explicit VR Little Endian
(1.2.840.10008.1.2.1.98): those corpus files cannot go anywhere, which tests the rule that
encapsulated data only travels in its own transfer syntax. storescp has no option to reject an
unknown called AE title; --refuse (reject every association) stands in for a rejecting peer.
"""
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time
import warnings

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from conftest import (SANITIZE, SANITIZER_MARKERS, SLOW, VETPACS_BIN, have_tool, run,
                      sanitizer_env)

pytestmark = [pytest.mark.skipif(not have_tool("storescp"), reason="dcmtk storescp not installed"),
              pytest.mark.filterwarnings("ignore::UserWarning")]  # pydicom on long LO values

ILE, ELE, EBE = "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2"
DEFLATED, RLE = "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.5"
ENCAPSULATED_UNCOMPRESSED = "1.2.840.10008.1.2.1.98"
VERIFICATION = "1.2.840.10008.1.1"
# SOP classes of the generated corpus (tests/gen/gen_corpus.py).
CORPUS_SOP_CLASSES = ["1.2.840.10008.5.1.4.1.1.7", "1.2.840.10008.5.1.4.1.1.1.1",
                      "1.2.840.10008.5.1.4.1.1.3.1", "1.2.840.10008.5.1.4.1.1.2",
                      "1.2.840.10008.5.1.4.1.1.4", "1.2.840.10008.5.1.4.38.1"]
SUMMARY = re.compile(r"^(\d+) sent, (\d+) warnings, (\d+) failed "
                     r"\(\d+\.\d+ MB in \d+\.\d+ s, \d+\.\d+ images/s\)$")


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def storescp_config(syntaxes, sop_classes=CORPUS_SOP_CLASSES):
    """A storescp -xf file with profile "Test": Verification and sop_classes, each accepting
    syntaxes (in storescp's order of preference)."""
    lines = ["[[TransferSyntaxes]]", "[Accepted]"]
    lines += ["TransferSyntax%d = %s" % (i + 1, ts) for i, ts in enumerate(syntaxes)]
    lines += ["[[PresentationContexts]]", "[Contexts]"]
    lines += ["PresentationContext%d = %s\\Accepted" % (i + 1, uid)
              for i, uid in enumerate([VERIFICATION] + list(sop_classes))]
    lines += ["[[Profiles]]", "[Test]", "PresentationContexts = Contexts", ""]
    return "\n".join(lines)


class StoreSCP:
    """A running storescp: port, out (folder of received files), log text."""

    def __init__(self, tmp_path, args, config=None):
        self.out = str(tmp_path / ("received-%d" % id(self)))
        os.makedirs(self.out)
        self.log_path = str(tmp_path / ("storescp-%d.log" % id(self)))
        extra = []
        if config is not None:
            cfg = str(tmp_path / ("storescp-%d.cfg" % id(self)))
            with open(cfg, "w") as f:
                f.write(config)
            extra = ["-xf", cfg, "Test"]
        env = dict(os.environ, TCP_NODELAY="1")
        for _ in range(3):
            self.port = free_port()
            with open(self.log_path, "w") as log:
                self.proc = subprocess.Popen(
                    ["storescp", "-v", "-od", self.out, "-aet", "STORESCP", "+uf"] + extra +
                    list(args) + [str(self.port)], stdout=log, stderr=subprocess.STDOUT, env=env)
            if self._wait_listening():
                return
            self.stop()
        pytest.fail("storescp did not start: %s" % self.log)

    def _wait_listening(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            # Listening sockets of the process's port, without connecting to it (a bare
            # connection would be an association attempt in storescp's log).
            with open("/proc/net/tcp") as f:
                for ln in f.readlines()[1:]:
                    local, state = ln.split()[1], ln.split()[3]
                    if state == "0A" and int(local.split(":")[1], 16) == self.port:
                        return True
            time.sleep(0.05)
        return False

    @property
    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def associations(self):
        return self.log.count("Association Received")

    def received(self):
        return sorted(os.path.join(self.out, f) for f in os.listdir(self.out))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def storescp(tmp_path):
    """storescp(*args, config=None) -> StoreSCP; every one is stopped at teardown."""
    started = []

    def start(*args, config=None):
        s = StoreSCP(tmp_path, args, config)
        started.append(s)
        return s
    yield start
    for s in started:
        s.stop()


# ---------------------------------------------------------------------------------------------
# Comparing what arrived with what was sent

LONG_VRS = (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT",
            b"UV")


def split_part10(path):
    """(meta transfer syntax, data set bytes) of a Part 10 file, the meta group walked by hand
    (Explicit VR Little Endian, PS3.10 7.1) so that nothing is re-encoded."""
    with open(path, "rb") as f:
        b = f.read()
    pos = 132 if b[128:132] == b"DICM" else 0
    ts = None
    while pos + 8 <= len(b) and struct.unpack("<H", b[pos:pos + 2])[0] == 0x0002:
        elem, vr = struct.unpack("<H", b[pos + 2:pos + 4])[0], b[pos + 4:pos + 6]
        if vr in LONG_VRS:
            n, head = struct.unpack("<I", b[pos + 8:pos + 12])[0], 12
        else:
            n, head = struct.unpack("<H", b[pos + 6:pos + 8])[0], 8
        if elem == 0x0010:
            ts = b[pos + head:pos + head + n].rstrip(b"\0 ").decode()
        pos += head + n
    return ts, b[pos:]


def read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


SWAP = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def plain(elem, big_endian):
    """An element's value for comparison across encodings: binary values little endian,
    one trailing padding byte removed (the writer pads odd lengths, PS3.5 7.1.1)."""
    v = elem.value
    if isinstance(v, bytes):
        unit = SWAP.get(elem.VR, 1) if big_endian else 1
        if unit > 1:
            v = b"".join(v[i:i + unit][::-1] for i in range(0, len(v), unit))
        return v[:-1] if len(v) % 2 == 0 and v.endswith((b"\0", b" ")) else v
    if isinstance(v, str):
        return v.rstrip(" \0")
    return v


def same_values(a, b, a_big=False, path=""):
    """Asserts that data sets a and b hold the same tags and values (VRs may differ: Implicit
    VR has none)."""
    ta = [e.tag for e in a if e.tag.group != 0x0002]
    tb = [e.tag for e in b if e.tag.group != 0x0002]
    assert ta == tb, "%s: tags differ: %s" % (path, sorted(set(ta) ^ set(tb)))
    for ea in a:
        if ea.tag.group == 0x0002:
            continue
        eb = b[ea.tag]
        where = "%s(%04X,%04X)" % (path, ea.tag.group, ea.tag.element)
        if ea.VR == "SQ":
            assert len(ea.value) == len(eb.value), where
            for i, (ia, ib) in enumerate(zip(ea.value, eb.value)):
                same_values(ia, ib, a_big, "%s[%d]." % (where, i))
            continue
        va, vb = plain(ea, a_big), plain(eb, False)
        if isinstance(va, bytes) != isinstance(vb, bytes):
            # Implicit VR: an element the dictionary does not know arrives as bytes
            raw, other = (vb, ea.value) if isinstance(vb, bytes) else (va, eb.value)
            assert str(other).encode().rstrip(b" \0") == raw.rstrip(b" \0"), where
            continue
        assert va == vb, "%s: %r != %r" % (where, str(va)[:80], str(vb)[:80])


def match_received(scp, sent_paths):
    """{sent path: received path}, pairing files whose data set bytes are identical; the
    received files left over are returned too."""
    bodies = {}
    for p in sent_paths:
        bodies.setdefault(split_part10(p)[1], []).append(p)
    matched, left = {}, []
    for r in scp.received():
        cands = bodies.get(split_part10(r)[1], [])
        free = [c for c in cands if c not in matched]
        if free:
            matched[free[0]] = r
        else:
            left.append(r)
    return matched, left


def write_big_file(path, rows, cols):
    """A Secondary Capture of rows x cols 16-bit pixels in Explicit VR LE (even length)."""
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "2.25.7703162634012888047393939100288%d" % rows
    ds.PatientName = "Big^Dog"
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit = rows, cols, 16, 16, 15
    ds.SamplesPerPixel, ds.PixelRepresentation = 1, 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = bytes(range(256)) * (rows * cols * 2 // 256)
    ds["PixelData"].VR = "OW"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, write_like_original=False)
    return path


def summary(r):
    m = SUMMARY.match(r.text.strip())
    assert m, "no summary line: %s\nstdout: %s" % (r.describe(), r.text)
    return tuple(int(x) for x in m.groups())


def error_lines(r, cmd="send"):
    return [ln for ln in r.stderr_lines if ln.startswith("vetpacs %s: " % cmd)]


# ---------------------------------------------------------------------------------------------
# echo

def test_echo_success(storescp):
    scp = storescp(config=storescp_config([ILE]))
    r = run(["echo", "127.0.0.1", str(scp.port)])
    assert r.returncode == 0, r.describe()
    assert re.match(r"^C-ECHO 127\.0\.0\.1:%d \(ANY-SCP\) 0000 Success in \d+\.\d ms$" % scp.port,
                    r.text.strip()), r.text
    assert r.stderr_lines == []
    assert scp.associations() == 1
    assert "Association Release" in scp.log


def test_echo_sends_the_ae_titles_given(storescp):
    scp = storescp("-d", config=storescp_config([ILE]))
    r = run(["echo", "--aet", "VP-TEST", "--call", "THE-ARCHIVE", "--timeout", "5",
             "127.0.0.1", str(scp.port)])
    assert r.returncode == 0, r.describe()
    assert "(THE-ARCHIVE) 0000 Success" in r.text
    assert re.search(r"Calling Application Name: +VP-TEST\b", scp.log)
    assert re.search(r"Called Application Name: +THE-ARCHIVE\b", scp.log)


def test_echo_to_a_closed_port_fails_cleanly():
    port = free_port()
    t0 = time.monotonic()
    r = run(["echo", "127.0.0.1", str(port)])
    assert r.returncode == 1, r.describe()
    assert r.stdout == b""
    assert r.stderr_lines == ["vetpacs echo: connect to 127.0.0.1:%d: Connection refused" % port]
    assert time.monotonic() - t0 < 5 * SLOW


def test_echo_rejected_association_is_explained(storescp):
    scp = storescp("--refuse", config=storescp_config([ILE]))
    r = run(["echo", "127.0.0.1", str(scp.port)])
    assert r.returncode == 1, r.describe()
    assert r.stderr_lines == [
        "vetpacs echo: association rejected by 127.0.0.1:%d (ANY-SCP): rejected-permanent, "
        "source: DICOM UL service-user, reason: no-reason-given" % scp.port]


def test_echo_times_out_on_a_silent_peer():
    """A peer that takes the connection and never answers the A-ASSOCIATE-RQ."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)  # the kernel completes the handshake; nobody reads
    port = silent.getsockname()[1]
    try:
        t0 = time.monotonic()
        r = run(["echo", "--timeout", "1", "127.0.0.1", str(port)], timeout=20 * SLOW)
        took = time.monotonic() - t0
    finally:
        silent.close()
    assert r.returncode == 1, r.describe()
    assert r.stderr_lines == ["vetpacs echo: 127.0.0.1:%d (ANY-SCP): no A-ASSOCIATE-AC or -RJ "
                              "within the timeout" % port]
    assert took < 1 + 6 * SLOW  # timeout, then at most the ARTIM wait after the A-ABORT


@pytest.mark.parametrize("args", [
    [], ["127.0.0.1"], ["127.0.0.1", "0"], ["127.0.0.1", "65536"], ["127.0.0.1", "x"],
    ["--timeout", "0", "127.0.0.1", "104"], ["--aet", "A\\B", "127.0.0.1", "104"],
    ["--call", "SEVENTEEN-CHARS-X", "127.0.0.1", "104"], ["--bogus", "127.0.0.1", "104"],
    ["127.0.0.1", "104", "extra"],
])
def test_echo_bad_use(args):
    r = run(["echo"] + args)
    assert r.returncode == 2, r.describe()
    assert r.stdout == b""


# ---------------------------------------------------------------------------------------------
# send

def test_send_corpus_arrives_identical(storescp, corpus):
    """Every corpus file in every transfer syntax storescp knows (native ones, deflated, RLE)
    arrives; files sent as they are have byte-identical data sets, and the one file vetpacs
    must re-encode (an odd-length data set, padded on the way) the same values."""
    scp = storescp("+B", config=storescp_config([ELE, ILE, EBE, DEFLATED, RLE]))
    paths = sorted(corpus.values())
    r = run(["send", "127.0.0.1", str(scp.port)] + paths, timeout=60 * SLOW)
    assert r.returncode == 1, r.describe()
    unsendable = [p for p in paths
                  if pydicom.dcmread(p, stop_before_pixels=True).file_meta.TransferSyntaxUID ==
                  ENCAPSULATED_UNCOMPRESSED]
    assert len(unsendable) == 2
    assert summary(r) == (len(paths) - 2, 0, 2)
    errs = error_lines(r)
    assert len(errs) == 2, r.stderr
    for p in unsendable:
        assert any(e.startswith("vetpacs send: %s: " % p) and
                   "in Encapsulated Uncompressed Explicit VR Little Endian: no presentation "
                   "context accepted (transfer-syntaxes-not-supported" in e for e in errs), errs
    assert scp.associations() == 1  # 6 SOP classes x a few syntaxes fit one association

    sendable = [p for p in paths if p not in unsendable]
    matched, left = match_received(scp, sendable)
    odd = [p for p in sendable if p not in matched]
    # Only edge_long_impl.dcm has an odd-length data set (values of odd length)
    assert [os.path.basename(p) for p in odd] == ["edge_long_impl.dcm"], odd
    assert len(left) == 1
    ts, _ = split_part10(left[0])
    assert ts == ILE
    same_values(read(odd[0]), read(left[0]))
    # pydicom agrees on the data sets sent as they are (group 0002 is not compared)
    for p, got in matched.items():
        assert read(p) == read(got), p
        assert split_part10(p)[0] == split_part10(got)[0], p


def test_send_reencodes_for_an_implicit_only_peer(storescp, corpus, tmp_path):
    """The peer takes only Implicit VR Little Endian: native files in other syntaxes are
    re-encoded (values unchanged), an RLE file is decoded (same pixels), and a file in a
    syntax without a decoder (MPEG-2) cannot be sent and fails with the peer's answer."""
    scp = storescp(config=storescp_config([ILE]))
    mpeg = read(corpus["enc_rle_dog.dcm"])
    mpeg.SOPInstanceUID = mpeg.file_meta.MediaStorageSOPInstanceUID = mpeg.SOPInstanceUID + ".9"
    mpeg.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"
    mpeg.save_as(str(tmp_path / "mpeg.dcm"))
    names = ["vet_dog_expl.dcm", "vet_cat_big.dcm", "vet_horse_defl.dcm", "vet_exotic_impl.dcm",
             "cs_ir87_big.dcm", "enc_rle_dog.dcm"]
    paths = [corpus[n] for n in names] + [str(tmp_path / "mpeg.dcm")]
    r = run(["send", "127.0.0.1", str(scp.port)] + paths, timeout=60 * SLOW)
    assert r.returncode == 1, r.describe()
    assert summary(r) == (6, 0, 1)
    assert error_lines(r) == [
        "vetpacs send: %s: Digital X-Ray Image Storage - For Presentation in MPEG2 Main Profile "
        "/ Main Level: no presentation context accepted (transfer-syntaxes-not-supported "
        "(provider rejection))" % (tmp_path / "mpeg.dcm")], r.stderr
    got = {}
    for p in scp.received():
        ds = read(p)
        assert ds.file_meta.TransferSyntaxUID == ILE
        got[(ds.SOPInstanceUID, str(ds.get("SpecificCharacterSet", "")))] = ds
    assert len(got) == 6
    for n, p in zip(names[:-1], paths[:-2]):
        sent = read(p)
        same_values(sent, got[(sent.SOPInstanceUID, str(sent.get("SpecificCharacterSet", "")))],
                    a_big=n.endswith("_big.dcm"))
    rle = read(corpus["enc_rle_dog.dcm"])
    dec = got[(rle.SOPInstanceUID, str(rle.get("SpecificCharacterSet", "")))]
    assert (dec.pixel_array == rle.pixel_array).all()


def test_send_directory_with_a_non_dicom_file(storescp, corpus, tmp_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for n in ("vet_dog_expl.dcm", "enc_rle_cat.dcm"):
        shutil.copy(corpus[n], src / n)
    shutil.copy(corpus["cs_ir100_expl.dcm"], src / "sub" / "x.dcm")
    (src / "README.txt").write_text("not an image\n")
    (src / "sub" / "tiny.bin").write_bytes(b"DI\n")
    scp = storescp("+B", config=storescp_config([ELE, RLE]))
    r = run(["send", "127.0.0.1", str(scp.port), str(src)], timeout=60 * SLOW)
    assert r.returncode == 1, r.describe()
    assert summary(r) == (3, 0, 2)
    errs = sorted(error_lines(r))
    assert len(errs) == 2, r.stderr
    assert errs[0] == ("vetpacs send: %s: not a DICOM object: no SOP Class UID (0008,0016)"
                       % (src / "README.txt"))
    assert errs[1].startswith("vetpacs send: %s: not a readable DICOM file: offset 0: "
                              % (src / "sub" / "tiny.bin")), errs[1]
    assert len(scp.received()) == 3
    matched, left = match_received(scp, [corpus["vet_dog_expl.dcm"], corpus["enc_rle_cat.dcm"],
                                         corpus["cs_ir100_expl.dcm"]])
    assert len(matched) == 3 and not left


def test_send_all_good_exits_0(storescp, corpus):
    scp = storescp(config=storescp_config([ELE]))
    r = run(["send", "--aet", "VP-SEND", "--call", "STORESCP", "127.0.0.1", str(scp.port),
             corpus["vet_dog_expl.dcm"], corpus["vet_cat_expl.dcm"]])
    assert r.returncode == 0, r.describe()
    assert summary(r) == (2, 0, 0)
    assert r.stderr_lines == []  # no progress bar: stderr is not a terminal


def test_send_many_sop_classes_uses_several_associations(storescp, tmp_path):
    """70 SOP classes in Explicit VR LE need 140 presentation contexts (own syntax and the LE
    fallback each): more than the 128 one association may propose (PS3.8 9.3.2.2)."""
    src = tmp_path / "many"
    src.mkdir()
    for i in range(70):
        ds = Dataset()
        ds.SOPClassUID = "2.25.318476550012845107911293874618262%d" % (100 + i)
        ds.SOPInstanceUID = "2.25.9100447622018841203938484%d" % (1000 + i)
        ds.PatientName = "Many^Classes"
        ds.PatientID = "M%d" % i
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.save_as(str(src / ("f%02d.dcm" % i)), write_like_original=False)
    scp = storescp("-pm", "+xa")  # promiscuous: accepts SOP classes it does not know
    r = run(["send", "127.0.0.1", str(scp.port), str(src)], timeout=60 * SLOW)
    assert r.returncode == 0, r.describe()
    assert summary(r) == (70, 0, 0)
    assert scp.associations() == 2
    assert len(scp.received()) == 70


@pytest.mark.parametrize("when", ["--abort-after", "--abort-during"])
def test_send_survives_peer_aborts(storescp, corpus, tmp_path, when):
    """The peer aborts every association after the C-STORE-RQ, or while the data set comes
    (an 8 MiB one is still being written then): each file fails with the reason, and the next
    file gets a new association."""
    scp = storescp(when, config=storescp_config([ELE]))
    big = write_big_file(str(tmp_path / "big.dcm"), 2048, 2048)
    paths = [corpus["vet_dog_expl.dcm"], big, corpus["edge_expl.dcm"]]
    r = run(["send", "127.0.0.1", str(scp.port)] + paths, timeout=60 * SLOW)
    assert r.returncode == 1, r.describe()
    assert summary(r) == (0, 0, 3)
    errs = error_lines(r)
    assert len(errs) == 3, r.stderr
    for p, e in zip(paths, errs):
        # The A-ABORT, or when the peer's close overtook it, the close
        assert e in ("vetpacs send: %s: 127.0.0.1:%d (ANY-SCP) aborted the association "
                     "(A-ABORT, source: DICOM UL service-user)" % (p, scp.port),
                     "vetpacs send: %s: 127.0.0.1:%d (ANY-SCP): connection closed by the "
                     "peer" % (p, scp.port)), e
    assert scp.associations() == 3


def test_send_times_out_waiting_for_the_response(storescp, corpus):
    scp = storescp("--sleep-during", "4", config=storescp_config([ELE]))
    t0 = time.monotonic()
    r = run(["send", "--timeout", "1", "127.0.0.1", str(scp.port), corpus["vet_dog_expl.dcm"]],
            timeout=30 * SLOW)
    assert r.returncode == 1, r.describe()
    assert summary(r) == (0, 0, 1)
    assert error_lines(r) == ["vetpacs send: %s: 127.0.0.1:%d (ANY-SCP): no C-STORE-RSP within "
                              "the timeout" % (corpus["vet_dog_expl.dcm"], scp.port)]
    assert time.monotonic() - t0 < 4 + 4 * SLOW


def test_send_to_a_closed_port(corpus):
    port = free_port()
    paths = [corpus["vet_dog_expl.dcm"], corpus["vet_cat_expl.dcm"]]
    r = run(["send", "127.0.0.1", str(port)] + paths)
    assert r.returncode == 1, r.describe()
    assert summary(r) == (0, 0, 2)
    assert error_lines(r) == ["vetpacs send: connect to 127.0.0.1:%d: Connection refused "
                              "(2 files not sent)" % port]


def test_send_streams_a_large_file(storescp, tmp_path):
    """A 64 MiB data set goes out in pieces: vetpacs never holds the file (peak RSS well
    below its size; not measured under sanitizers, whose shadow memory dominates)."""
    big = write_big_file(str(tmp_path / "big.dcm"), 4096, 8192)
    scp = storescp("--ignore", config=storescp_config([ELE]))
    # A Python parent reports the peak RSS of its only child, vetpacs.
    probe = ("import resource, subprocess, sys\n"
             "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
             "sys.stdout.write(p.stdout.decode() + '\\n' + p.stderr.decode())\n"
             "print('maxrss_kb', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
             "sys.exit(p.returncode)\n")
    p = subprocess.run([sys.executable, "-c", probe, VETPACS_BIN, "send", "127.0.0.1",
                        str(scp.port), big, big], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=120 * SLOW, env=sanitizer_env())
    out = p.stdout.decode("utf-8", "replace")
    assert not any(m in out for m in SANITIZER_MARKERS), out
    assert p.returncode == 0, out + p.stderr.decode()
    assert re.search(r"^2 sent, 0 warnings, 0 failed \(134\.2 MB in ", out, re.M), out
    rss_kb = int(re.search(r"maxrss_kb (\d+)", out).group(1))
    if not SANITIZE:
        assert rss_kb < 24 * 1024, "peak RSS %d KiB for a 64 MiB file" % rss_kb
