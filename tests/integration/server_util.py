# SPDX-License-Identifier: MIT
"""Starting `vetpacs serve` for a test, and talking to it at the PS3.8 level by hand.

Fixture (import it into a test module: ``from server_util import server``):

  server(config=None, env=None, data=None, aet="VETPACS") -> Server
      starts `vetpacs serve --data DIR --dicom-port PORT --aet AET [--config FILE]` on a free
      port (DIR is a fresh temporary folder unless `data` names one, e.g. to restart on the
      same archive), with `config` as the text of an INI file, waits for the "vetpacs
      listening" line (10 s, longer under sanitizers) and returns a Server. At teardown every
      server still running gets SIGTERM and must exit 0 within 15 s without a sanitizer
      report on stderr (VP_SANITIZE); a server stopped earlier with Server.stop() is checked
      there and then, one killed with Server.kill() is not checked. Raw sockets opened with
      connect() (RawAssoc too) are closed before the SIGTERM, so a test that fails half-way
      does not hold the shutdown for the server's own timeouts.

Raw upper-layer helpers (PS3.8 9.3) for hostile and minimal peers: a_associate_rq(),
p_data_tf(), c_echo_rq(), c_store_rq(), RawAssoc (connect, associate, send a DIMSE message,
read the response status), read_pdu().

dcmtk helpers: dcmtk(tool, args...) runs echoscu/storescu/dcmsend with TCP_NODELAY=1 and a
timeout.
"""
import os
import resource
import re
import signal
import socket
import struct
import subprocess
import tempfile
import time

import pytest

from conftest import SANITIZER_MARKERS, SANITIZE, SLOW, VETPACS_BIN, sanitizer_env

LISTEN_RE = re.compile(r"vetpacs listening: DICOM AE (\S+) on (\S+):(\d+), data in (.*)")
START_TIMEOUT = 10 * SLOW
STOP_TIMEOUT = 15 * SLOW


def free_port():
    """A TCP port nobody listens on right now (the server may still lose a race for it:
    start() retries)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


class Server:
    """A running `vetpacs serve`: port, data (folder), config_path, proc, and its log."""

    def __init__(self, workdir, data, config_text, env, aet, fsize=None):
        self.workdir, self.data, self.aet = workdir, data, aet
        self.fsize = fsize  # RLIMIT_FSIZE for the server: writes past it fail with EFBIG
        self.config_path = None
        if config_text is not None:
            self.config_path = os.path.join(workdir, "vetpacs-%d.conf" % id(self))
            with open(self.config_path, "w") as f:
                f.write(config_text)
        self.extra_env = dict(env or {})
        self.proc = None
        self.port = None
        self.sockets = []  # raw client sockets, closed before the server is stopped
        self.returncode = None
        self.killed = False
        self._stdout_path = os.path.join(workdir, "serve-%d.out" % id(self))
        self._stderr_path = os.path.join(workdir, "serve-%d.err" % id(self))

    # -- life cycle ---------------------------------------------------------------------------

    def start(self):
        last = ""
        for _ in range(3):
            self.port = free_port()
            args = [VETPACS_BIN, "serve", "--data", self.data, "--dicom-port", str(self.port),
                    "--aet", self.aet]
            if self.config_path:
                args += ["--config", self.config_path]
            env = sanitizer_env()
            env.update(self.extra_env)
            # O_APPEND files, not pipes: a chatty server never blocks on a full pipe, and a
            # restart on the same Server keeps one log.
            out = open(self._stdout_path, "ab")
            err = open(self._stderr_path, "ab")
            self._err_offset = err.tell()
            limit = self.fsize

            def preexec():
                if limit is not None:
                    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

            self.proc = subprocess.Popen(args, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                         env=env, preexec_fn=preexec)
            out.close()
            err.close()
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                m = self._listening()
                if m:
                    assert int(m.group(3)) == self.port, m.group(0)
                    return self
                if self.proc.poll() is not None:
                    break
                time.sleep(0.02)
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
                pytest.fail("vetpacs serve printed no 'listening' line within %d s\n%s" %
                            (START_TIMEOUT, self.log), pytrace=False)
            last = self.log
            if "in use" not in last.lower():
                break
        pytest.fail("vetpacs serve exited %s at start:\n%s" % (self.proc.returncode, last),
                    pytrace=False)

    def _listening(self):
        with open(self._stdout_path, "r", errors="replace") as f:
            for ln in f.read().splitlines():
                m = LISTEN_RE.match(ln)
                if m and int(m.group(3)) == self.port:
                    return m
        return None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, check=True):
        """SIGTERM, wait, and (check) assert exit 0 and no sanitizer report. Returns the
        exit status."""
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass
        self.sockets = []
        if self.proc is None:
            return self.returncode
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                if check:
                    pytest.fail("vetpacs serve did not stop within %d s of SIGTERM\n%s" %
                                (STOP_TIMEOUT, self.log[-4000:]), pytrace=False)
        self.returncode = self.proc.returncode
        self.proc = None
        if check:
            self.check_exit()
        return self.returncode

    def check_exit(self):
        log = self.log
        assert self.returncode == 0, "vetpacs serve exited %s\n%s" % (self.returncode,
                                                                     log[-4000:])
        self.assert_no_sanitizer_report()

    def assert_no_sanitizer_report(self):
        if SANITIZE:
            log = self.log
            for m in SANITIZER_MARKERS:
                assert m not in log, "sanitizer report from vetpacs serve:\n" + log[-8000:]

    def kill(self):
        """SIGKILL, no checks (crash tests)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.returncode = self.proc.returncode
            self.proc = None
        self.killed = True

    def restart(self):
        """Starts again on the same data folder and config (after stop() or kill())."""
        assert self.proc is None
        self.killed = False
        return self.start()

    # -- log ----------------------------------------------------------------------------------

    @property
    def log(self):
        with open(self._stderr_path, "r", errors="replace") as f:
            return f.read()

    def wait_log(self, pattern, timeout=5, count=1):
        """Waits until `pattern` (regex) matches count lines of the log; returns the matches.
        The server logs an association after it ended, a moment after the peer saw the end."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout * SLOW
        while True:
            hits = [ln for ln in self.log.splitlines() if rx.search(ln)]
            if len(hits) >= count or time.monotonic() > deadline:
                return hits
            time.sleep(0.05)


@pytest.fixture
def server(tmp_path):
    started = []

    def start(config=None, env=None, data=None, aet="VETPACS", fsize=None):
        workdir = tempfile.mkdtemp(prefix="srv", dir=str(tmp_path))
        s = Server(workdir, data or os.path.join(workdir, "data"), config, env, aet, fsize)
        started.append(s)
        return s.start()

    yield start
    failures = []
    for s in started:
        if s.proc is None:
            continue
        try:
            s.stop(check=True)
        except BaseException as e:  # every server is stopped even when one fails its check
            failures.append(str(e))
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)


# ---------------------------------------------------------------------------------------------
# dcmtk peers

def dcmtk(tool, *args, timeout=30):
    """Runs a dcmtk network tool; returns CompletedProcess with text stdout/stderr. A tool
    that hangs is killed and reported as returncode None."""
    env = dict(os.environ)
    env["TCP_NODELAY"] = "1"
    try:
        return subprocess.run([tool] + [str(a) for a in args], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, env=env, timeout=timeout * SLOW,
                              universal_newlines=True, errors="replace")
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(e.cmd, None, e.stdout or "", e.stderr or "")


def echo(srv, *extra, timeout=10):
    """echoscu against srv with short timeouts; returns CompletedProcess."""
    return dcmtk("echoscu", "-to", 5 * SLOW, "-ta", 5 * SLOW, "-td", 5 * SLOW, "-aec", srv.aet,
                 *extra, "127.0.0.1", srv.port, timeout=timeout)


def assert_echo(srv, *extra):
    r = echo(srv, *extra)
    assert r.returncode == 0, ("echoscu %s failed (exit %s)\n%s%s\nserver log:\n%s" %
                               (" ".join(map(str, extra)), r.returncode, r.stdout, r.stderr,
                                srv.log[-3000:]))
    assert srv.alive(), "vetpacs serve died:\n" + srv.log[-3000:]
    return r


# ---------------------------------------------------------------------------------------------
# PS3.8 9.3 PDUs by hand

APP_CONTEXT = "1.2.840.10008.3.1.1.1"
VERIFICATION = "1.2.840.10008.1.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_LE = "1.2.840.10008.1.2.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
IMPL_CLASS_UID = "1.2.826.0.1.3680043.9.7433.1.1"


def _ascii(u):
    return u.encode("ascii")


def item(item_type, payload):
    return struct.pack(">BBH", item_type, 0, len(payload)) + payload


def pdu(pdu_type, payload):
    return struct.pack(">BBI", pdu_type, 0, len(payload)) + payload


def ae16(s):
    return s.encode("ascii").ljust(16, b" ")[:16]


def a_associate_rq(called="VETPACS", calling="RAWSCU", contexts=((1, VERIFICATION,
                                                                   (IMPLICIT_LE,)),),
                   max_pdu=16384):
    """A-ASSOCIATE-RQ (PS3.8 9.3.2). contexts: (id, abstract syntax, [transfer syntaxes])."""
    body = struct.pack(">HH", 1, 0) + ae16(called) + ae16(calling) + b"\0" * 32
    body += item(0x10, _ascii(APP_CONTEXT))
    for pcid, abstract, tss in contexts:
        sub = item(0x30, _ascii(abstract)) + b"".join(item(0x40, _ascii(t)) for t in tss)
        body += item(0x20, struct.pack(">BBBB", pcid, 0, 0, 0) + sub)
    ui = item(0x51, struct.pack(">I", max_pdu)) + item(0x52, _ascii(IMPL_CLASS_UID))
    body += item(0x50, ui)
    return pdu(0x01, body)


def pdv(pcid, data, command, last=True):
    ctrl = (1 if command else 0) | (2 if last else 0)
    return struct.pack(">IBB", len(data) + 2, pcid, ctrl) + data


def p_data_tf(*pdvs):
    return pdu(0x04, b"".join(pdvs))


A_RELEASE_RQ = pdu(0x05, b"\0\0\0\0")
A_ABORT = pdu(0x07, b"\0\0\0\0")


def _elem(group, elem, value):
    if len(value) % 2:
        value += b"\0"
    return struct.pack("<HHI", group, elem, len(value)) + value


def _ui(s):
    b = s.encode("ascii")
    return b + b"\0" if len(b) % 2 else b


def _us(v):
    return struct.pack("<H", v)


def command_set(elements):
    """Implicit VR LE command set (PS3.7 6.3.1 / E.1) with its group length (0000,0000).
    elements: [(element number, value bytes)] in ascending order."""
    body = b"".join(_elem(0, e, v) for e, v in elements)
    return _elem(0, 0x0000, struct.pack("<I", len(body))) + body


def c_echo_rq(message_id=1):
    return command_set([(0x0002, _ui(VERIFICATION)), (0x0100, _us(0x0030)),
                        (0x0110, _us(message_id)), (0x0800, _us(0x0101))])


def c_store_rq(sop_class, sop_instance, message_id=1):
    return command_set([(0x0002, _ui(sop_class)), (0x0100, _us(0x0001)),
                        (0x0110, _us(message_id)), (0x0700, _us(0)), (0x0800, _us(0x0000)),
                        (0x1000, _ui(sop_instance))])


def parse_command(b):
    """{element number: raw value} of an Implicit VR LE group 0000 command set."""
    out, off = {}, 0
    while off + 8 <= len(b):
        g, e, n = struct.unpack_from("<HHI", b, off)
        out[e] = b[off + 8:off + 8 + n]
        off += 8 + n
    return out


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def read_pdu(sock):
    """(type, payload) of the next PDU; raises ConnectionError on close, socket.timeout."""
    t, _, n = struct.unpack(">BBI", recv_exact(sock, 6))
    return t, recv_exact(sock, n)


def wait_abort_or_close(sock, timeout):
    """Reads until the server closes the connection or sends an A-ABORT (returns 'abort',
    'close', 'reset' or ('pdu', type) for anything else). socket.timeout when neither
    happened within timeout seconds."""
    sock.settimeout(timeout)
    deadline = time.monotonic() + timeout
    try:
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            t, _ = read_pdu(sock)
            if t == 0x07:
                return "abort"
            if time.monotonic() > deadline:
                raise socket.timeout()
            return ("pdu", t)
    except ConnectionResetError:
        return "reset"
    except ConnectionError:
        return "close"


def connect(srv, timeout=5):
    """A TCP connection to srv; the fixture closes it before stopping the server (a test that
    fails half-way would otherwise hold the server's shutdown for its own timeouts)."""
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    srv.sockets.append(s)
    return s


class RawAssoc:
    """A minimal association requestor over a plain socket."""

    def __init__(self, srv, contexts=((1, VERIFICATION, (IMPLICIT_LE,)),), calling="RAWSCU",
                 called=None, timeout=10, max_pdu=16384):
        self.sock = connect(srv, timeout)
        self.sock.settimeout(timeout * SLOW)
        self.sock.sendall(a_associate_rq(called or srv.aet, calling, contexts, max_pdu))
        t, body = read_pdu(self.sock)
        self.pdu_type, self.body = t, body
        self.accepted = {}  # pc id -> transfer syntax
        self.results = {}  # pc id -> result/reason (PS3.8 9.3.3.2)
        self.max_pdu = 16384
        if t == 0x02:
            self._parse_ac(body)
        self.message_id = 0
        self.largest_pdata = 0  # longest P-DATA-TF variable field received

    def _parse_ac(self, body):
        off = 68
        while off + 4 <= len(body):
            it, _, n = struct.unpack_from(">BBH", body, off)
            v = body[off + 4:off + 4 + n]
            if it == 0x21:
                pcid, result = v[0], v[2]
                self.results[pcid] = result
                ts = None
                if len(v) > 4:
                    _, _, tn = struct.unpack_from(">BBH", v, 4)
                    ts = v[8:8 + tn].rstrip(b"\0 ").decode()
                if result == 0:
                    self.accepted[pcid] = ts
            elif it == 0x50:
                soff = 0
                while soff + 4 <= len(v):
                    st, _, sn = struct.unpack_from(">BBH", v, soff)
                    if st == 0x51:
                        self.max_pdu = struct.unpack_from(">I", v, soff + 4)[0] or (1 << 30)
                    soff += 4 + sn
            off += 4 + n

    @property
    def ok(self):
        return self.pdu_type == 0x02

    def send(self, data):
        self.sock.sendall(data)

    def send_message(self, pcid, command, dataset=None):
        """Sends a command (one PDV) and a data set (split into PDVs that fit the server's
        max PDU length)."""
        self.send(p_data_tf(pdv(pcid, command, True, True)))
        if dataset is not None:
            chunk = max(16, min(self.max_pdu, 1 << 20) - 6)
            for i in range(0, max(1, len(dataset)), chunk):
                part = dataset[i:i + chunk]
                self.send(p_data_tf(pdv(pcid, part, False, i + chunk >= len(dataset))))

    def read_response(self):
        """The next DIMSE response command as {element: raw bytes}; raises AssertionError on
        anything other than P-DATA."""
        cmd = b""
        while True:
            t, body = read_pdu(self.sock)
            assert t == 0x04, "expected P-DATA-TF, got PDU type 0x%02x %r" % (t, body[:16])
            self.largest_pdata = max(self.largest_pdata, len(body))
            off = 0
            while off + 6 <= len(body):
                n, pcid, ctrl = struct.unpack_from(">IBB", body, off)
                cmd += body[off + 6:off + 4 + n]
                off += 4 + n
                if ctrl & 1 and ctrl & 2:
                    return parse_command(cmd)

    def store(self, pcid, sop_class, sop_instance, dataset):
        """C-STORE; returns (status, error comment)."""
        self.message_id += 1
        self.send_message(pcid, c_store_rq(sop_class, sop_instance, self.message_id), dataset)
        rsp = self.read_response()
        status = struct.unpack("<H", rsp[0x0900])[0]
        comment = rsp.get(0x0902, b"").rstrip(b"\0 ").decode("ascii", "replace")
        return status, comment

    def echo(self, pcid=1):
        self.message_id += 1
        self.send_message(pcid, c_echo_rq(self.message_id))
        rsp = self.read_response()
        return struct.unpack("<H", rsp[0x0900])[0]

    def release(self):
        self.send(A_RELEASE_RQ)
        t, _ = read_pdu(self.sock)
        self.sock.close()
        return t

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
