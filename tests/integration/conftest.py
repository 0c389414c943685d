# SPDX-License-Identifier: MIT
"""Shared fixtures and helpers for the vetpacs integration tests.

Environment (set by CTest, see tests/CMakeLists.txt):
  VETPACS_BIN   path of the vetpacs binary (default: <repo>/build/vetpacs)
  VP_SANITIZE   "ON" when the binary is built with ASan/UBSan: timeouts grow and any sanitizer
                report on stderr fails the test
  VP_BUILD_DIR  the CMake build folder (unused here beyond locating the binary)

Test modules import the helpers with ``from conftest import ...`` (pytest puts this folder on
sys.path in its default import mode).
"""
import functools
import os
import re
import shutil
import subprocess
import sys
import warnings

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "gen"))
import gen_corpus  # noqa: E402

PYDICOM_DATA = "/usr/lib/python3/dist-packages/pydicom/data"
PYDICOM_DIRS = [os.path.join(PYDICOM_DATA, "test_files"),
                os.path.join(PYDICOM_DATA, "charset_files")]


def _bin():
    b = os.environ.get("VETPACS_BIN")
    if b:
        return b
    d = os.environ.get("VP_BUILD_DIR") or os.path.join(REPO, "build")
    return os.path.join(d, "vetpacs")


VETPACS_BIN = _bin()
SANITIZE = os.environ.get("VP_SANITIZE", "").upper() in ("ON", "1", "TRUE", "YES")
# Per-process timeouts: sanitizers make everything several times slower.
SLOW = 5 if SANITIZE else 1
TIMEOUT = 10 * SLOW
SANITIZER_MARKERS = ("ERROR: AddressSanitizer", "runtime error:", "LeakSanitizer",
                     "ERROR: UndefinedBehaviorSanitizer", "AddressSanitizer:DEADLYSIGNAL")


def sanitizer_env():
    env = dict(os.environ)
    # Keep the report on stderr and the exit status recognisable; CTest sets the same.
    env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


class Result:
    """Outcome of one vetpacs run: exit status, stdout bytes, stderr text."""

    def __init__(self, args, returncode, stdout, stderr, timed_out=False):
        self.args, self.returncode, self.stdout, self.stderr = args, returncode, stdout, stderr
        self.timed_out = timed_out

    @property
    def text(self):
        return self.stdout.decode("utf-8", "replace")

    @property
    def stderr_lines(self):
        return [ln for ln in self.stderr.splitlines() if ln.strip()]

    def sanitizer_report(self):
        """The sanitizer report text if stderr holds one, else None."""
        for m in SANITIZER_MARKERS:
            if m in self.stderr:
                return self.stderr
        return None

    def crashed(self):
        """Killed by a signal, an exit status above 1 (bad use is 2, never expected here for
        files), a timeout or a sanitizer report."""
        return (self.timed_out or self.returncode < 0 or self.returncode > 1 or
                self.sanitizer_report() is not None)

    def describe(self):
        return "vetpacs %s -> exit %s%s\nstderr:\n%s" % (
            " ".join(self.args)[:2000], self.returncode,
            " (timed out)" if self.timed_out else "", self.stderr[-4000:])


def run(args, timeout=None, check_sanitizer=True, cwd=None):
    """Runs vetpacs with args (list of str). Never raises on a non-zero exit; a timeout gives
    a Result with timed_out set. With check_sanitizer, a sanitizer report fails the test."""
    timeout = timeout or TIMEOUT
    try:
        p = subprocess.run([VETPACS_BIN] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout, env=sanitizer_env(),
                           cwd=cwd)
        r = Result(args, p.returncode, p.stdout, p.stderr.decode("utf-8", "replace"))
    except subprocess.TimeoutExpired as e:
        r = Result(args, None, e.stdout or b"", (e.stderr or b"").decode("utf-8", "replace"),
                   timed_out=True)
        r.returncode = -9
    if check_sanitizer and r.sanitizer_report():
        pytest.fail("sanitizer report from " + r.describe(), pytrace=False)
    return r


def run_batched(prefix, paths, timeout=None):
    """Runs `vetpacs <prefix> paths...` once; if that process crashes (signal, exit > 1,
    timeout or sanitizer report), runs each path alone so the crash is attributable.
    Returns (batch_result, {path: single_result}) where the dict is empty unless the batch
    crashed."""
    timeout = timeout or TIMEOUT * max(1, len(paths) // 20)
    r = run(list(prefix) + list(paths), timeout=timeout, check_sanitizer=False)
    singles = {}
    if r.crashed():
        for p in paths:
            singles[p] = run(list(prefix) + [p], check_sanitizer=False)
    return r, singles


# ---------------------------------------------------------------------------------------------
# Input files

@functools.lru_cache(maxsize=None)
def pydicom_all_files():
    """Every file under pydicom's test_files/** and charset_files/** (sorted)."""
    out = []
    for root in PYDICOM_DIRS:
        for dp, _, fn in os.walk(root):
            for f in fn:
                if f.endswith((".py", ".pyc")):
                    continue
                out.append(os.path.join(dp, f))
    return sorted(out)


def pydicom_read(path, force=False, stop_before_pixels=False):
    import pydicom
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path, force=force, stop_before_pixels=stop_before_pixels)


@functools.lru_cache(maxsize=None)
def pydicom_readable_files():
    """pydicom's files that pydicom reads without force, every nested value included."""
    out = []
    for p in pydicom_all_files():
        try:
            ds = pydicom_read(p)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for _ in ds.iterall():
                    pass
        except Exception:
            continue
        out.append(p)
    return out


def file_id(path):
    """Short, unique, readable test id for an input path."""
    if path.startswith(PYDICOM_DATA):
        return "pydicom/" + os.path.relpath(path, PYDICOM_DATA)
    return "corpus/" + os.path.basename(path)


# Files pydicom reads without force that vetpacs rejects on purpose: their damage is real and
# an error naming the element and offset is the right answer (dcmtk agrees on the first two).
KNOWN_BAD = {
    "pydicom/test_files/MR_truncated.dcm":
        "Pixel Data length 8192 runs past the end of the file (dcmdump: error too)",
    "pydicom/test_files/rtplan_truncated.dcm":
        "a sequence length runs past the end of the file (dcmdump: error too)",
    "pydicom/test_files/dicomdirtests/DICOMDIR-nooffset":
        "the last Directory Record item declares 248 bytes but only 224 remain and the "
        "sequence delimiter is missing (dcmtk and pydicom read up to the end silently)",
}


@pytest.fixture(scope="session")
def vetpacs_bin():
    if not os.access(VETPACS_BIN, os.X_OK):
        pytest.fail("vetpacs binary not found at %s (set VETPACS_BIN)" % VETPACS_BIN)
    return VETPACS_BIN


@pytest.fixture(scope="session")
def vp(vetpacs_bin):
    """The run helpers, for tests that prefer a fixture to an import."""
    class VP:
        bin = vetpacs_bin
        run = staticmethod(run)
        run_batched = staticmethod(run_batched)
    return VP


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory):
    """The generated corpus, written once per session into a temporary folder."""
    d = tmp_path_factory.mktemp("corpus")
    gen_corpus.generate(str(d))
    return str(d)


@pytest.fixture(scope="session")
def corpus(corpus_dir):
    """Paths of the generated corpus files, by file name."""
    return {n: os.path.join(corpus_dir, n) for n in sorted(os.listdir(corpus_dir))}


@pytest.fixture(scope="session")
def pydicom_files():
    return pydicom_readable_files()


def corpus_names():
    return gen_corpus.corpus_names()


def have_tool(name):
    return shutil.which(name) is not None


# ---------------------------------------------------------------------------------------------
# Parsing `vetpacs dump` output

DUMP_LINE = re.compile(
    r"^(?P<indent> *)\((?P<g>[0-9A-F]{4}),(?P<e>[0-9A-F]{4})\) (?P<vr>\S\S) (?P<rest>.*)$")


class DumpNode:
    """One element of a `vetpacs dump`: tag, vr, length (None for u/l or SQ), the value text
    (what follows the length, keyword removed), items (list of lists of DumpNode) for SQ,
    fragments (list of lengths, BOT first) for encapsulated pixel data."""

    def __init__(self, depth, tag, vr):
        self.depth, self.tag, self.vr = depth, tag, vr
        self.length = None
        self.value = None
        self.keyword = ""
        self.undefined = False
        self.items = None
        self.fragments = None

    def __repr__(self):
        return "(%04X,%04X) %s %s %r" % (self.tag >> 16, self.tag & 0xFFFF, self.vr,
                                          self.length, self.value)


SEQ_REST = re.compile(r"^(u/l|d/l) (\d+) items ?(\S*)$")
ENC_REST = re.compile(r"^u/l (\d+) fragments ?(\S*)$")
FRAG_REST = re.compile(r"^(\d+) (Basic Offset Table|Fragment) #(\d+)$")
ELEM_REST = re.compile(r"^(\d+) (.*?) ?(\w*)$", re.S)
STR_VALUE = re.compile(r"^(\d+) \[(.*)\] ?(\w*)$", re.S)


def parse_dump_lines(lines):
    """Parses the element lines of one file's dump (no '#' lines) into a list of DumpNode."""
    root = []
    # stack of (depth of elements, list to append to)
    stack = [(0, root)]
    last_at_depth = {}
    for ln in lines:
        if not ln.strip() or ln.lstrip().startswith("#"):
            continue
        m = DUMP_LINE.match(ln)
        if not m:
            raise ValueError("unparsable dump line: %r" % ln)
        depth = len(m.group("indent")) // 2
        tag = int(m.group("g") + m.group("e"), 16)
        vr, rest = m.group("vr"), m.group("rest")
        while stack and stack[-1][0] > depth:
            stack.pop()
        if tag == 0xFFFEE000 and vr == "na":
            # item of the sequence at depth - 1
            seq = last_at_depth.get(depth - 1)
            if seq is None or seq.items is None:
                raise ValueError("item without a sequence: %r" % ln)
            seq.items.append([])
            stack.append((depth + 1, seq.items[-1]))
            continue
        if tag == 0xFFFEE000 and vr == "pi":
            enc = last_at_depth.get(depth - 1)
            fm = FRAG_REST.match(rest)
            if enc is None or enc.fragments is None or not fm:
                raise ValueError("fragment without pixel data: %r" % ln)
            enc.fragments.append(int(fm.group(1)))
            continue
        node = DumpNode(depth, tag, vr)
        sm = SEQ_REST.match(rest) if vr == "SQ" else None
        em = ENC_REST.match(rest)
        if sm:
            node.undefined = sm.group(1) == "u/l"
            node.items = []
            node.keyword = sm.group(3)
            node.declared_items = int(sm.group(2))
        elif em:
            node.undefined = True
            node.fragments = []
            node.keyword = em.group(2)
            node.declared_fragments = int(em.group(1))
        else:
            smv = STR_VALUE.match(rest)
            if smv:
                node.length = int(smv.group(1))
                node.value = "[" + smv.group(2) + "]"
                node.keyword = smv.group(3)
            else:
                mm = ELEM_REST.match(rest)
                if not mm:
                    raise ValueError("unparsable element line: %r" % ln)
                node.length = int(mm.group(1))
                node.value = mm.group(2)
                node.keyword = mm.group(3)
                # A value with no keyword: the regex may have taken the value's last word.
                if node.value == "" and node.keyword:
                    node.value, node.keyword = node.keyword, ""
        while stack[-1][0] > depth:
            stack.pop()
        if stack[-1][0] != depth:
            raise ValueError("bad indentation: %r" % ln)
        stack[-1][1].append(node)
        last_at_depth[depth] = node
    return root


def split_dump(text, paths):
    """Splits the stdout of `vetpacs dump p1 p2 ...` into {path: [lines]} (only files that
    were dumped: those with an error print nothing on stdout)."""
    out = {}
    cur = None
    wanted = set(paths)
    for ln in text.splitlines():
        if ln.startswith("# ") and ln[2:] in wanted and (cur is None or ln[2:] != cur):
            cur = ln[2:]
            out[cur] = []
            continue
        if cur is not None:
            out[cur].append(ln)
    if len(paths) == 1 and not out and text:
        out[paths[0]] = text.splitlines()
    return out


def dump_meta_and_dataset(nodes):
    """Splits the top-level nodes into (meta group 0002 nodes, data set nodes)."""
    meta = [n for n in nodes if n.tag >> 16 == 0x0002]
    rest = [n for n in nodes if n.tag >> 16 != 0x0002]
    return meta, rest


# ---------------------------------------------------------------------------------------------
# Parsing dcmdump output into a tag list with nesting

DCMDUMP_LINE = re.compile(r"^(?P<indent> *)\((?P<g>[0-9a-f]{4}),(?P<e>[0-9a-f]{4})\) (?P<vr>\S\S) ")


def dcmdump_tags(path, extra=()):
    """(returncode, [(depth, tag)], stderr) from dcmdump, without delimitation items."""
    p = subprocess.run(["dcmdump", "+L"] + list(extra) + [path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    tags = []
    for ln in p.stdout.decode("latin-1").splitlines():
        m = DCMDUMP_LINE.match(ln)
        if not m:
            continue
        tag = int(m.group("g") + m.group("e"), 16)
        if tag in (0xFFFEE00D, 0xFFFEE0DD):
            continue
        tags.append((len(m.group("indent")) // 2, tag))
    return p.returncode, tags, p.stderr.decode("latin-1")


def vetpacs_tags(lines):
    tags = []
    for ln in lines:
        m = DUMP_LINE.match(ln)
        if m:
            tags.append((len(m.group("indent")) // 2, int(m.group("g") + m.group("e"), 16)))
    return tags


def fmt_tags(tags, at, ctx=4):
    lo, hi = max(0, at - ctx), at + ctx
    return "\n".join("%s%s(%04X,%04X)" % (">> " if i == at else "   ", "  " * d, t >> 16,
                                            t & 0xFFFF)
                     for i, (d, t) in enumerate(tags[lo:hi], lo))
