#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""C-STORE ingest throughput of three SCPs on loopback: vetpacs, Orthanc, dcmtk storescp.

    bench/ingest.sh [--only vetpacs,orthanc,storescp] [--quick] [--runs N]

The same sender, dcmtk storescu, feeds every SCP (TCP_NODELAY=1 for every process):
    (a) 2,000 MR images of ~95 KB (212x212, 16 bit) over one association
    (b) the same 2,000 over 4 parallel associations (4 storescu processes, 500 files each)
    (c) 200 DX radiographs of ~13 MB (2500x2600, 16 bit) over one association
--quick: 200 small and 20 large images instead. Each SCP is started fresh with an empty
storage folder under bench/out before every timed send and stopped after it; its CPU time
(user + system, /proc/PID/stat) and peak memory (VmHWM) are read around the send, and the
number of files it stored is checked. The disk's durable write speed (write + fsync + rename
+ folder fsync) is measured first as the reference. Benchmarks are not tests: goals are
printed as PASS/MISS and the exit status is 0 unless something failed.

Corpus: generated with pydicom (bench/make_corpus.py's attribute sets) into
bench/out/ingest-corpus, cached; file N is the same whatever the count, so --quick reuses
the full corpus and the full run extends a quick one.

Environment: VETPACS (binary, default build/vetpacs), VP_BENCH_OUT (bench/out),
VP_BENCH_WAIT_IDLE (seconds to wait for idle CPUs before each send, 60).
"""
import argparse
import hashlib
import importlib
import json
import multiprocessing
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.environ.get("VP_BENCH_OUT") or os.path.join(HERE, "out")
CORPUS = os.path.join(OUT, "ingest-corpus")
SEED = 1
CORPUS_VERSION = "1"
SMALL_FULL, LARGE_FULL = 2000, 200
SMALL_QUICK, LARGE_QUICK = 200, 20
PARALLEL = 4
SCPS = ["vetpacs", "orthanc", "storescp"]
AETS = {"vetpacs": "VETPACS", "orthanc": "ORTHANC", "storescp": "STORESCP"}
CALLING_AET = "BENCHSCU"
ENV = dict(os.environ, TCP_NODELAY="1", LC_ALL="C")
TICK = os.sysconf("SC_CLK_TCK")

STARTED = []  # every Popen we started: stopped on exit


class Failure(Exception):
    pass


def say(*a):
    print(*a, flush=True)


# ---- corpus ---------------------------------------------------------------------------------

def make_one(job):
    """Writes file index of one kind ("small" or "large") into folder, atomically."""
    kind, index, folder = job
    if HERE not in sys.path:
        sys.path.insert(0, HERE)
    import make_corpus as mc

    if kind == "small":  # MR series of 50 slices
        study, series, inst = 1000000 + index // 50, 1, index % 50
        mod = "MR"
    else:  # DX studies of 4 views
        study, series, inst = 2000000 + index // 4, 1, index % 4
        mod = "DX"
    ctx = mc.study_context(SEED, study)
    series_uid = mc.uid(SEED, "ingest-series", kind, study, series)
    r = mc.rng_for(SEED, "ingest", kind, index)
    ds = mc.base_dataset(ctx, mod, series, series_uid, inst, False, r)
    ds.SOPInstanceUID = mc.uid(SEED, "ingest-inst", kind, index)
    if kind == "small":
        ds.FrameOfReferenceUID = mc.uid(SEED, "ingest-for", study)
        mc.make_mr(ds, inst, r, False)  # MR attributes (and 256x256 pixels, replaced below)
        mc.image_pixel(ds, 212, 212, 1, False, r)
    else:
        mc.make_dx(ds, inst, r, False, 2600, 2500)
    name = "%05d.dcm" % index
    tmp = os.path.join(folder, "." + name + ".tmp")
    mc.write(ds, tmp, True)
    os.rename(tmp, os.path.join(folder, name))
    return name


def corpus_stamp():
    with open(os.path.join(HERE, "make_corpus.py"), "rb") as f:
        return "ingest %s seed %d make_corpus %s" % (CORPUS_VERSION, SEED,
                                                     hashlib.sha256(f.read()).hexdigest()[:16])


def ensure_corpus(kind, count):
    """bench/out/ingest-corpus/KIND/00000.dcm ... : generates the missing files. Returns paths."""
    folder = os.path.join(CORPUS, kind)
    stamp_path = os.path.join(folder, "STAMP")
    stamp = corpus_stamp()
    old = open(stamp_path).read().strip() if os.path.exists(stamp_path) else None
    if old != stamp and os.path.isdir(folder):
        shutil.rmtree(folder)
    os.makedirs(folder, exist_ok=True)
    with open(stamp_path, "w") as f:
        f.write(stamp + "\n")
    names = ["%05d.dcm" % i for i in range(count)]
    have = set(os.listdir(folder))
    missing = [i for i, n in enumerate(names) if n not in have]
    if missing:
        per = 13.1e6 if kind == "large" else 0.095e6
        need = len(missing) * per
        if shutil.disk_usage(folder).free < need + 1e9:
            raise Failure("need ~%.1f GB free in %s for the corpus" % (need / 1e9, folder))
        say("generating %d %s images in %s (once; %s)" % (
            len(missing), kind, folder, "about a minute" if kind == "large" else "seconds"))
        with multiprocessing.Pool(os.cpu_count() or 1) as pool:
            pool.map(make_one, [(kind, i, folder) for i in missing], chunksize=4)
    return [os.path.join(folder, n) for n in names]


# ---- processes ------------------------------------------------------------------------------

def free_ports(n):
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def listening(port):
    """True when some socket listens on TCP port (from /proc/net/tcp*, no connection made)."""
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if p[3] == "0A" and int(p[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except OSError:
            pass
    return False


def start(argv, log, cwd, env=ENV):
    with open(log, "ab") as lf:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                             cwd=cwd, env=env, start_new_session=True)
    STARTED.append(p)
    return p


def stop(p, grace=15.0):
    """SIGTERM to the process group we created for p (its id is p's, which is not reaped
    yet), SIGKILL after grace seconds."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
    if p in STARTED:
        STARTED.remove(p)


def stop_all():
    for p in list(STARTED):
        try:
            stop(p, grace=5.0)
        except Exception:  # keep going: stop the others
            pass


def tail(path, n=8):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:]).rstrip()
    except OSError:
        return ""


def proc_cpu(session):
    """CPU seconds (user + system, reaped children included) of every process in session."""
    total = 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        p = st[st.rindex(")") + 2:].split()
        # p[0] is field 3 (state): session is field 6, utime..cstime fields 14..17
        if int(p[3]) == session:
            total += int(p[11]) + int(p[12]) + int(p[13]) + int(p[14])
    return total / TICK


def vm_hwm_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cpu_busy(interval=0.5):
    def read():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:9]]
        return sum(v), v[3] + v[4]  # total, idle + iowait

    t0, i0 = read()
    time.sleep(interval)
    t1, i1 = read()
    return 100.0 * ((t1 - t0) - (i1 - i0)) / max(1, t1 - t0)


def wait_idle(limit):
    deadline = time.monotonic() + limit
    while True:
        b = cpu_busy()
        if b < 20 or time.monotonic() >= deadline:
            return b


# ---- the SCPs -------------------------------------------------------------------------------

def count_files(top, suffix=""):
    n = 0
    for _, _, files in os.walk(top):
        n += sum(1 for f in files if f.endswith(suffix))
    return n


class Scp:
    def __init__(self, name, tmp):
        self.name, self.tmp, self.aet = name, tmp, AETS[name]

    def launch(self, run, port):  # -> Popen
        raise NotImplementedError

    def ready(self, run, p):
        return listening(self.port)

    def stored(self, run):
        raise NotImplementedError

    def start(self, run):
        self.port, = free_ports(1)
        self.log = os.path.join(run, "scp.log")
        p = self.launch(run, self.port)
        deadline = time.monotonic() + 60
        while not self.ready(run, p):
            if p.poll() is not None:
                raise Failure("%s exited (status %s) before listening:\n%s"
                              % (self.name, p.returncode, tail(self.log)))
            if time.monotonic() > deadline:
                raise Failure("%s not listening on port %d after 60 s:\n%s"
                              % (self.name, self.port, tail(self.log)))
            time.sleep(0.05)
        return p


class Vetpacs(Scp):
    durable = "durable: fsync per object, rename, folder fsync, synced index commit"

    def __init__(self, tmp, binary):
        super().__init__("vetpacs", tmp)
        self.binary = os.path.join(tmp, "vetpacs")  # private copy: rebuilds change nothing
        shutil.copy2(binary, self.binary)
        self.version = (subprocess.run([self.binary, "--version"], capture_output=True,
                                       text=True).stdout.strip().splitlines() or ["?"])[0]

    def launch(self, run, port):
        http, = free_ports(1)
        env = dict(ENV, VETPACS_HTTP_PORT=str(http))
        return start([self.binary, "serve", "--data", os.path.join(run, "data"),
                      "--dicom-port", str(port), "--aet", self.aet], self.log, run, env)

    def ready(self, run, p):
        return listening(self.port) and "listening" in tail(self.log, 50)

    def stored(self, run):
        return count_files(os.path.join(run, "data", "objects"), ".dcm")


class Orthanc(Scp):
    durable = ("fdatasync per file (SyncStorageArea, its default), no folder fsync; SQLite"
               " index (WAL) synced only at checkpoints")

    def __init__(self, tmp, binary):
        super().__init__("orthanc", tmp)
        self.binary = binary
        out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
        self.version = (out.strip().splitlines() or ["Orthanc ?"])[0]

    def launch(self, run, port):
        http, = free_ports(1)
        for d in ("storage", "index", "tmp"):
            os.makedirs(os.path.join(run, d))
        cfg = {
            "Name": "vetpacs-bench",
            "StorageDirectory": os.path.join(run, "storage"),
            "IndexDirectory": os.path.join(run, "index"),
            "TemporaryDirectory": os.path.join(run, "tmp"),
            "DicomServerEnabled": True,
            "DicomAet": self.aet,
            "DicomPort": port,
            "DicomCheckCalledAet": False,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowEcho": True,
            "DicomCheckModalityHost": False,
            "DicomModalities": {},
            "OrthancPeers": {},
            "HttpServerEnabled": True,
            "HttpPort": http,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "Plugins": [],
            "LuaScripts": [],
            "SaveJobs": False,
        }
        path = os.path.join(run, "orthanc.json")
        with open(path, "w") as f:
            json.dump(cfg, f, indent=1)
        return start([self.binary, "--no-jobs", path], self.log, run)

    def stored(self, run):
        return count_files(os.path.join(run, "storage"))


class Storescp(Scp):
    durable = "no fsync at all; one association at a time (no --fork)"

    def __init__(self, tmp):
        super().__init__("storescp", tmp)
        out = subprocess.run(["storescp", "--version"], capture_output=True, text=True).stdout
        v = [x for x in out.split() if x.startswith("v3") or x.startswith("v4")]
        self.version = "dcmtk storescp " + (v[0] if v else "?")

    def launch(self, run, port):
        os.makedirs(os.path.join(run, "in"))
        return start(["storescp", "-od", os.path.join(run, "in"), "+xa", "-aet", self.aet,
                      str(port)], self.log, run)

    def stored(self, run):
        return count_files(os.path.join(run, "in"))


# ---- one timed send -------------------------------------------------------------------------

def send(scp, files, sessions, run, busy_limit):
    """Fresh SCP, send files over `sessions` parallel associations, stop. -> result dict."""
    os.sync()  # earlier writes must not be flushed during this send
    p = scp.start(run)
    try:
        groups = [files[i * len(files) // sessions:(i + 1) * len(files) // sessions]
                  for i in range(sessions)]
        busy = wait_idle(busy_limit)
        cpu0 = proc_cpu(p.pid)
        t0 = time.perf_counter()
        senders = []
        for i, g in enumerate(groups):
            log = os.path.join(run, "storescu%d.log" % i)
            senders.append((start(["storescu", "-aet", CALLING_AET, "-aec", scp.aet,
                                   "127.0.0.1", str(scp.port)]
                                  + [os.path.basename(f) for f in g], log,
                                  os.path.dirname(g[0])), log))
        bad = []
        for s, log in senders:
            s.wait()
            STARTED.remove(s)
            if s.returncode != 0:
                bad.append("storescu exit status %d:\n%s" % (s.returncode, tail(log)))
        wall = time.perf_counter() - t0
        cpu = proc_cpu(p.pid) - cpu0
        rss = vm_hwm_kb(p.pid)
        if p.poll() is not None:
            raise Failure("%s died during the send (status %s):\n%s"
                          % (scp.name, p.returncode, tail(scp.log)))
        stored = scp.stored(run)
    finally:
        stop(p)
    if bad or stored != len(files):
        raise Failure("%s stored %d of %d files%s\n%s\nSCP log:\n%s"
                      % (scp.name, stored, len(files), "" if not bad else "; sender failed:",
                         "\n".join(bad), tail(scp.log)))
    return {"wall": wall, "cpu": cpu, "rss_kb": rss, "busy": busy}


# ---- reference: durable writes on the storage disk -----------------------------------------

def durable_writes(folder, n, size):
    """Seconds to write n files of size bytes, each: write, fsync, rename, folder fsync."""
    os.makedirs(folder)
    buf = os.urandom(size)
    dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        t0 = time.perf_counter()
        for i in range(n):
            tmp = os.path.join(folder, "%05d.tmp" % i)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                mv = memoryview(buf)
                while mv:
                    mv = mv[os.write(fd, mv):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp, os.path.join(folder, "%05d.dat" % i))
            os.fsync(dfd)
        return time.perf_counter() - t0
    finally:
        os.close(dfd)
        shutil.rmtree(folder)
        os.sync()


# ---- main -----------------------------------------------------------------------------------

def find_orthanc():
    for c in ("Orthanc", "/usr/sbin/Orthanc"):
        path = shutil.which(c)
        if path:
            return path
    return None


def install_orthanc():
    say("installing orthanc (apt-get install orthanc)")
    cmd = ["apt-get", "install", "-y", "-qq", "orthanc"]
    if os.geteuid() != 0:
        cmd = ["sudo", "-n"] + cmd
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    if r.returncode != 0:
        say("  apt-get failed: %s" % (r.stderr.strip().splitlines() or ["?"])[-1])
    return find_orthanc()


def num(x):
    return "%.0f" % x if x >= 100 else "%.1f" % x


def fmt_ratio(a, b):
    return "%.2fx" % (a / b) if a and b else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--only", default=",".join(SCPS),
                    help="comma-separated SCPs among vetpacs,orthanc,storescp (default: all)")
    ap.add_argument("--quick", action="store_true",
                    help="%d small and %d large images instead of %d and %d"
                    % (SMALL_QUICK, LARGE_QUICK, SMALL_FULL, LARGE_FULL))
    ap.add_argument("--runs", type=int, default=1, help="sends per cell, median (default 1)")
    a = ap.parse_args()
    only = [x.strip() for x in a.only.split(",") if x.strip()]
    for x in only:
        if x not in SCPS:
            ap.error("--only: unknown SCP %r (vetpacs, orthanc, storescp)" % x)
    if a.runs < 1:
        ap.error("--runs must be at least 1")
    n_small = SMALL_QUICK if a.quick else SMALL_FULL
    n_large = LARGE_QUICK if a.quick else LARGE_FULL
    wait_limit = float(os.environ.get("VP_BENCH_WAIT_IDLE", "60"))

    for t in ("storescu", "storescp"):
        if not shutil.which(t):
            raise Failure("%s not found (Debian package dcmtk)" % t)
    try:
        for m in ("numpy", "pydicom"):
            importlib.import_module(m)
    except ImportError:
        raise Failure("%s cannot import pydicom and numpy (Debian: python3-pydicom "
                      "python3-numpy)" % sys.executable)

    os.makedirs(OUT, exist_ok=True)
    t_start = time.monotonic()
    small = ensure_corpus("small", n_small)
    large = ensure_corpus("large", n_large)
    b_small = sum(os.path.getsize(f) for f in small)
    b_large = sum(os.path.getsize(f) for f in large)
    need = b_large * 1.1 + 1e9
    if shutil.disk_usage(OUT).free < need:
        raise Failure("need ~%.1f GB free in %s for the SCPs' storage" % (need / 1e9, OUT))

    tmp = tempfile.mkdtemp(prefix="ingest-tmp.", dir=OUT)
    notes = []
    try:
        scps = []
        if "vetpacs" in only:
            vp = os.environ.get("VETPACS") or os.path.join(ROOT, "build", "vetpacs")
            if not os.access(vp, os.X_OK):
                notes.append("vetpacs skipped: %s not found (build it: make build)" % vp)
            else:
                scps.append(Vetpacs(tmp, vp))
        if "orthanc" in only:
            ob = find_orthanc() or install_orthanc()
            if ob:
                scps.append(Orthanc(tmp, ob))
            else:
                notes.append("orthanc skipped: not installed (Debian package orthanc)")
        if "storescp" in only:
            scps.append(Storescp(tmp))

        # vetpacs is being written: without a working `serve` it is skipped, not an error
        for s in list(scps):
            if s.name != "vetpacs":
                continue
            probe = os.path.join(tmp, "probe")
            os.makedirs(probe)
            try:
                stop(s.start(probe))
            except Failure as e:
                msg = str(e).splitlines()
                first = next((x for x in msg[1:] if x.strip()), msg[0])
                notes.append("vetpacs skipped: `vetpacs serve` did not start (%s)" % first.strip())
                scps.remove(s)
            finally:
                shutil.rmtree(probe, ignore_errors=True)

        for f in small + large:  # warm the page cache: the sender reads from memory
            with open(f, "rb") as fh:
                while fh.read(1 << 22):
                    pass

        sender = subprocess.run(["storescu", "--version"], capture_output=True,
                                text=True).stdout.split()
        sender_v = next((x for x in sender if x.startswith("v3")), "?")
        fs = subprocess.run(["df", "-PT", OUT], capture_output=True, text=True).stdout.split("\n")
        fs = fs[1].split() if len(fs) > 1 and fs[1] else ["?", "?"]
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        rev = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                             capture_output=True, text=True).stdout.strip() or "?"
        say("")
        say("== Ingest: C-STORE over loopback, storescu %s -> SCP, TCP_NODELAY=1 ==" % sender_v)
        say("host: %d CPUs, %.0f GB RAM; SCP storage and corpus on %s (%s) under %s; git %s"
            % (os.cpu_count() or 0, mem, fs[1], fs[0], os.path.relpath(OUT, ROOT), rev))
        say("each cell: fresh SCP, empty storage, corpus in the page cache, %d send%s (median);"
            " wall = senders' start to their exit" % (a.runs, "" if a.runs == 1 else "s"))
        for s in scps:
            say("  %-9s %s: %s" % (s.name, s.version, s.durable))
        for n in notes:
            say("  " + n)

        # reference
        say("")
        ref_dir = os.path.join(tmp, "reference")
        t_big = durable_writes(ref_dir, n_large, 13_000_000)
        t_small = durable_writes(ref_dir, n_small, 90_000)
        ref_mbs = n_large * 13.0 / t_big
        say("disk reference (each file: write, fsync, rename, folder fsync):")
        say("  %d x 13 MB: %.0f MB/s (%.1f files/s)   %d x 90 KB: %.0f files/s (%.1f MB/s)"
            % (n_large, ref_mbs, n_large / t_big, n_small, n_small / t_small,
               n_small * 0.09 / t_small))

        workloads = [
            ("a", "%d x %.0f KB MR 212x212, 1 association" % (n_small, b_small / n_small / 1e3),
             small, 1, b_small),
            ("b", "the same %d over %d parallel associations (%d storescu x %d files)"
             % (n_small, PARALLEL, PARALLEL, n_small // PARALLEL), small, PARALLEL, b_small),
            ("c", "%d x %.1f MB DX 2500x2600, 1 association" % (n_large, b_large / n_large / 1e6),
             large, 1, b_large),
        ]
        maxbusy = 0.0
        results = {}
        for key, title, files, sessions, nbytes in workloads:
            say("")
            say("(%s) %s, %.0f MB" % (key, title, nbytes / 1e6))
            say("  %-9s %8s %8s %8s %11s %8s %6s" % ("SCP", "wall s", "img/s", "MB/s",
                                                     "CPU ms/img", "RSS MiB", "busy%"))
            for s in scps:
                runs = []
                for i in range(a.runs):
                    run = tempfile.mkdtemp(prefix="%s-%s." % (key, s.name), dir=tmp)
                    try:
                        runs.append(send(s, files, sessions, run, wait_limit))
                    finally:
                        shutil.rmtree(run, ignore_errors=True)  # then sync: see send()
                wall = statistics.median(r["wall"] for r in runs)
                cpu = statistics.median(r["cpu"] for r in runs)
                rss = max((r["rss_kb"] or 0) for r in runs) / 1024
                busy = max(r["busy"] for r in runs)
                maxbusy = max(maxbusy, busy)
                n = len(files)
                results[(key, s.name)] = {"ips": n / wall, "mbs": nbytes / 1e6 / wall,
                                          "cpu_ms": cpu * 1e3 / n, "rss": rss}
                say("  %-9s %8.2f %8s %8.0f %11.2f %8.0f %6.0f"
                    % (s.name, wall, num(n / wall), nbytes / 1e6 / wall, cpu * 1e3 / n, rss,
                       busy))
            v = results.get((key, "vetpacs"))
            for other in ("orthanc", "storescp"):
                o = results.get((key, other))
                if v and o:
                    say("  vetpacs/%-8s img/s %s, CPU per image %s, RSS %s"
                        % (other, fmt_ratio(v["ips"], o["ips"]),
                           fmt_ratio(v["cpu_ms"], o["cpu_ms"]), fmt_ratio(v["rss"], o["rss"])))

        # goals
        say("")
        say("goals (vetpacs)%s:" % (" - --quick counts, indicative only" if a.quick else ""))

        def goal(text, ok):
            say("  %-62s %s" % (text, "n/a" if ok is None else ("PASS" if ok else "MISS")))

        def ratio(key, other):
            v, o = results.get((key, "vetpacs")), results.get((key, other))
            return v["ips"] / o["ips"] if v and o else None

        def met(x, limit):
            return None if x is None else x >= limit

        ra_o, ra_s, rc_o = ratio("a", "orthanc"), ratio("a", "storescp"), ratio("c", "orthanc")
        vc = results.get(("c", "vetpacs"))
        goal("(a) >= 4x Orthanc images/s%s" % ("  (%.2fx)" % ra_o if ra_o else ""),
             met(ra_o, 4))
        goal("(a) >= storescp images/s%s" % ("  (%.2fx)" % ra_s if ra_s else ""), met(ra_s, 1))
        goal("(c) >= 2x Orthanc images/s%s" % ("  (%.2fx)" % rc_o if rc_o else ""),
             met(rc_o, 2))
        goal("(c) >= 80%% of the durable write bandwidth%s"
             % ("  (%.0f%% of %.0f MB/s)" % (100 * vc["mbs"] / ref_mbs, ref_mbs) if vc else ""),
             None if not vc else vc["mbs"] >= 0.8 * ref_mbs)
        goal("(c) peak memory < 64 MiB%s" % ("  (%.0f MiB)" % vc["rss"] if vc else ""),
             None if not vc else vc["rss"] < 64)
        if "vetpacs" not in [s.name for s in scps]:
            say("  (n/a: vetpacs was not measured)")
        say("note: vetpacs answers a C-STORE once the object and its index row are on disk;"
            " Orthanc syncs the file but not its folder or index row, storescp nothing: they may"
            " answer while writes still sit in the page cache.")
        if maxbusy > 20:
            say("WARNING: other work kept the CPUs up to %.0f %% busy before a send: wall times"
                " are noisy, CPU times less so." % maxbusy)
        say("total bench time %.0f s" % (time.monotonic() - t_start))
    finally:
        stop_all()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


def on_signal(signum, frame):
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    try:
        sys.exit(main())
    except Failure as e:
        stop_all()
        sys.stderr.write("ingest: FAILED: %s\n" % e)
        sys.exit(1)
    except KeyboardInterrupt:
        stop_all()
        sys.exit(130)
    finally:
        stop_all()
