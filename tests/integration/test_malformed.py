# SPDX-License-Identifier: MIT
"""Malformed input: `vetpacs dump` must never crash, hang or exit above 1.

A malformed corpus is built at test time from a few valid files (generated and pydicom's):

* every file truncated at every offset (files up to 2 KB) or at sampled offsets (all of the
  first 600 bytes, every element and item boundary +-1, and random ones);
* every element and item length field corrupted (odd, past the end, 0xFFFFFFFF on non-SQ,
  huge, zero) at random, two variants per field;
* garbage VR bytes in every element of the explicit VR files;
* sequences nested 1,000 (and 5,000) deep, with defined and with undefined lengths;
* odd lengths on fixed-size binary VRs (US of 3 bytes, FD of 9...), in both byte orders;
* invalid deflate streams; a zero-byte file, a preamble alone, a lone "DICM", garbage;
* pixel data tables that lie (Number of Frames, Basic and Extended Offset Tables).

For each file: exit status 0 or 1 (never a signal, never above 1), done within the timeout,
and on failure exactly one stderr line `vetpacs dump: FILE: ...` naming an offset or element.
With VP_SANITIZE=ON any AddressSanitizer / UBSan / LeakSanitizer report fails the test.

Files are dumped in batches (dump takes several files; each bad one gets its own stderr
line); a batch that crashes is rerun file by file so the crash names its file. Failing inputs
stay in pytest's temporary folder, whose path the failure message gives.
"""
import os
import random
import re
import shutil
import struct
import zlib

import pytest

from conftest import (PYDICOM_DATA, SANITIZE, TIMEOUT, run)

import gen_corpus as gen

BATCH = 150 if SANITIZE else 400
ERR_LINE = re.compile(r"^vetpacs (?P<tool>dump|convert): (?P<path>.+?): (?P<msg>.*)$")
NAMES_PLACE = re.compile(r"offset \d+|\([0-9A-Fa-f]{4},[0-9A-Fa-f]{4}\)")
MAX_SAMPLED = 300 if SANITIZE else 700
MAX_REWRITE = 100 if SANITIZE else 300

CORPUS_SEEDS = ["edge_expl.dcm", "edge_impl.dcm", "edge_big.dcm", "edge_defl.dcm",
                "allvr_expl.dcm", "allvr_big.dcm", "enc_fragments_bot.dcm",
                "enc_fragments_eot.dcm", "enc_rle_cat.dcm", "cs_ir87_expl.dcm",
                "vet_exotic_impl.dcm"]
PYDICOM_SEEDS = ["test_files/MR_small.dcm", "test_files/UN_sequence.dcm",
                 "test_files/rtplan.dcm", "test_files/image_dfl.dcm",
                 "test_files/ExplVR_BigEnd.dcm", "test_files/dicomdirtests/DICOMDIR-implicit",
                 "test_files/nested_priv_SQ.dcm", "test_files/JPEG2000.dcm",
                 "test_files/SC_rgb_small_odd.dcm"]
SEED_IDS = ["corpus/" + s for s in CORPUS_SEEDS] + ["pydicom/" + s for s in PYDICOM_SEEDS]


@pytest.fixture(scope="session")
def seeds(corpus):
    out = {}
    for s in CORPUS_SEEDS:
        with open(corpus[s], "rb") as f:
            out["corpus/" + s] = f.read()
    for s in PYDICOM_SEEDS:
        with open(os.path.join(PYDICOM_DATA, s), "rb") as f:
            out["pydicom/" + s] = f.read()
    return out


# ---------------------------------------------------------------------------------------------
# Structure of a valid file: where the headers and length fields are

LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT",
            b"UV"}
TS_IMPLICIT = "1.2.840.10008.1.2"
TS_BIG = "1.2.840.10008.1.2.2"
TS_DEFLATED = "1.2.840.10008.1.2.1.99"


class Layout:
    """A Part 10 file split into its parts: meta bytes, the data set stream (inflated when
    deflated) and the list of headers found in that stream."""

    def __init__(self, data):
        self.data = data
        assert data[128:132] == b"DICM"
        glen = struct.unpack_from("<L", data, 140)[0]
        self.body_at = 144 + glen
        meta = data[132:self.body_at]
        m = re.search(rb"\x02\x00\x10\x00UI(..)", meta, re.S)
        n = struct.unpack("<H", m.group(1))[0]
        self.ts = meta[m.end():m.end() + n].rstrip(b"\0 ").decode()
        self.deflated = self.ts == TS_DEFLATED
        self.little = self.ts != TS_BIG
        self.explicit = self.ts != TS_IMPLICIT
        self.body = zlib.decompress(data[self.body_at:], -15) if self.deflated else \
            data[self.body_at:]
        # headers: dicts with pos (of the tag), kind ("element" or "item"), len_pos, len_size,
        # vr_pos (explicit elements) and end (position after the value, when known)
        self.headers = []
        self._walk(0, len(self.body), self.explicit, self.little, False)

    def rebuild(self, body):
        """A whole file around a changed data set stream."""
        if self.deflated:
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            body = c.compress(body) + c.flush()
        return self.data[:self.body_at] + body

    def _walk(self, pos, end, explicit, little, in_item):
        e = "<" if little else ">"
        b = self.body
        while pos + 8 <= end:
            g, el = struct.unpack_from(e + "HH", b, pos)
            if g == 0xFFFE:
                if el == 0xE00D and in_item:
                    return pos + 8
                raise ValueError("unexpected (FFFE,%04X) at %d" % (el, pos))
            h = {"pos": pos, "kind": "element", "tag": (g << 16) | el}
            vr = None
            if explicit:
                vr = b[pos + 4:pos + 6]
                h["vr_pos"] = pos + 4
                if vr in LONG_VRS:
                    h["len_pos"], h["len_size"] = pos + 8, 4
                    hdr = 12
                else:
                    h["len_pos"], h["len_size"] = pos + 6, 2
                    hdr = 8
            else:
                h["len_pos"], h["len_size"], hdr = pos + 4, 4, 8
            n = struct.unpack_from(e + ("L" if h["len_size"] == 4 else "H"), b,
                                   h["len_pos"])[0]
            self.headers.append(h)
            pos += hdr
            is_sq = vr == b"SQ" if explicit else None
            if n == 0xFFFFFFFF:
                if vr == b"UN":
                    pos = self._items(pos, None, False, True)
                else:
                    pos = self._items(pos, None, explicit, little)
            elif is_sq:
                self._items(pos, pos + n, explicit, little)
                pos += n
            else:
                pos += n
            h["end"] = pos
        return pos

    def _items(self, pos, end, explicit, little):
        e = "<" if little else ">"
        b = self.body
        while pos + 8 <= (len(b) if end is None else end):
            g, el, n = struct.unpack_from(e + "HHL", b, pos)
            if (g, el) == (0xFFFE, 0xE0DD):
                return pos + 8
            if (g, el) != (0xFFFE, 0xE000):
                raise ValueError("expected an item at %d" % pos)
            h = {"pos": pos, "kind": "item", "len_pos": pos + 4, "len_size": 4}
            self.headers.append(h)
            pos += 8
            if n == 0xFFFFFFFF:
                pos = self._walk(pos, len(b), explicit, little, True)
            else:
                # fragments hold no elements; items of a sequence do. Tell them apart by
                # whether the content parses; fragment data is skipped.
                try:
                    saved = len(self.headers)
                    self._walk(pos, pos + n, explicit, little, False)
                except (ValueError, struct.error):
                    del self.headers[saved:]
                pos += n
            h["end"] = pos
        return pos


# ---------------------------------------------------------------------------------------------
# Running dump over many files

def dump_all(paths, labels):
    """Dumps every path; returns (problems as strings, paths vetpacs accepted)."""
    problems, accepted = [], []
    for k in range(0, len(paths), BATCH):
        chunk = paths[k:k + BATCH]
        p, ok = dump_batch(chunk, labels)
        problems += p
        accepted += ok
        if len(problems) > 40:
            break
    return problems, accepted


def dump_batch(chunk, labels, cmd=("dump",), tool="dump"):
    r = run(list(cmd) + chunk, timeout=TIMEOUT * 3, check_sanitizer=False)
    if r.crashed() or r.returncode not in (0, 1):
        return [p for p in (check_single(x, labels, cmd, tool) for x in chunk) if p][:20] or [
            "batch of %d files crashed but no single file does: %s" % (len(chunk),
                                                                       r.describe())], []
    problems = []
    seen = {}
    wanted = set(chunk)
    for ln in r.stderr_lines:
        m = ERR_LINE.match(ln)
        if not m or m.group("tool") != tool or m.group("path") not in wanted:
            problems.append("stderr line not naming one of the files: %r" % ln[:300])
            continue
        seen[m.group("path")] = seen.get(m.group("path"), 0) + 1
        if not NAMES_PLACE.search(m.group("msg")) and tool == "dump":
            problems.append("%s (%s): error names no offset or element: %r" %
                            (m.group("path"), labels[m.group("path")], ln[:300]))
    for p, n in seen.items():
        if n != 1:
            problems.append("%s (%s): %d stderr lines" % (p, labels[p], n))
    if r.returncode == 0 and seen:
        problems.append("exit 0 although %d files failed" % len(seen))
    if r.returncode == 1 and not seen:
        problems.append("exit 1 but no file reported an error: %s" % r.describe())
    return problems, [p for p in chunk if p not in seen]


def check_single(path, labels, cmd=("dump",), tool="dump"):
    r = run(list(cmd) + [path], check_sanitizer=False)
    what = "%s %s (%s)" % (tool, path, labels[path])
    if r.timed_out:
        return "%s: no result within %d s" % (what, TIMEOUT)
    if r.sanitizer_report():
        return "%s: sanitizer report:\n%s" % (what, r.stderr[-3000:])
    if r.returncode < 0:
        return "%s: killed by signal %d" % (what, -r.returncode)
    if r.returncode > 1:
        return "%s: exit %d: %s" % (what, r.returncode, r.stderr[-500:])
    if r.returncode == 1:
        lines = r.stderr_lines
        if len(lines) != 1 or not lines[0].startswith("vetpacs %s: " % tool):
            return "%s: expected one error line, got %r" % (what, lines[:5])
        if tool == "dump" and not NAMES_PLACE.search(lines[0]):
            return "%s: error names no offset or element: %r" % (what, lines[0])
    return None


def check_files(files, folder, rewrite=MAX_REWRITE):
    """files: list of (name, bytes, label). Writes them to folder and dumps them. Then up to
    `rewrite` of the files vetpacs accepted are converted (keep, explicit, big endian) and the
    outputs, vetpacs' own writing, must dump without error."""
    os.makedirs(folder, exist_ok=True)
    paths, labels = [], {}
    for name, data, label in files:
        p = os.path.join(folder, name)
        with open(p, "wb") as f:
            f.write(data)
        paths.append(p)
        labels[p] = label
    problems, accepted = dump_all(paths, labels)
    if not problems and accepted and rewrite:
        rng = random.Random(folder)
        some = sorted(rng.sample(accepted, min(rewrite, len(accepted))))
        for ts in ("keep", "explicit", "big"):
            out = os.path.join(folder, "out_" + ts)
            os.makedirs(out)
            cmd = ("convert", "--ts", ts)
            for k in range(0, len(some), BATCH):
                chunk = some[k:k + BATCH]
                p, written = dump_batch(chunk + [out], dict(labels, **{out: "output folder"}),
                                        cmd, "convert")
                problems += p
            outs = sorted(os.path.join(out, n) for n in os.listdir(out))
            out_labels = {o: "%s written by convert --ts %s from %s" % (
                o, ts, labels[os.path.join(folder, os.path.basename(o))]) for o in outs}
            for k in range(0, len(outs), BATCH):
                r = run(["dump"] + outs[k:k + BATCH], timeout=TIMEOUT * 3,
                        check_sanitizer=False)
                if r.returncode != 0 or r.sanitizer_report():
                    bad = [check_single(o, out_labels) for o in outs[k:k + BATCH]]
                    bad = [b for b in bad if b]
                    problems += ["vetpacs cannot read its own output: " + b for b in bad] or \
                        ["dump of outputs failed: " + r.describe()]
                    for o in outs[k:k + BATCH]:
                        rr = run(["dump", o], check_sanitizer=False)
                        if rr.returncode == 1:
                            problems.append("vetpacs cannot read its own output %s: %s" %
                                            (out_labels[o], rr.stderr.strip()))
    assert not problems, "%d problems (inputs kept in %s):\n%s" % (
        len(problems), folder, "\n".join(problems[:25]))
    # Passed: drop the files now (tens of thousands would slow down pytest's clean-up of old
    # temporary folders in later sessions). Failing inputs stay for reproduction.
    shutil.rmtree(folder, ignore_errors=True)
    return len(paths)


def safe(s):
    return re.sub(r"[^A-Za-z0-9_.-]", "_", s)


# ---------------------------------------------------------------------------------------------
# Mutations

def truncation_offsets(data, layout, rng):
    n = len(data)
    if n <= 2048:
        return list(range(n))
    offs = set(range(min(600, n)))
    base = layout.body_at if not layout.deflated else None
    if base is not None:
        for h in layout.headers:
            for x in (h["pos"], h.get("end", h["pos"])):
                for d in (-1, 0, 1, 4, 8):
                    if 0 <= base + x + d < n:
                        offs.add(base + x + d)
    offs = sorted(offs)
    if len(offs) > MAX_SAMPLED:
        offs = sorted(rng.sample(offs, MAX_SAMPLED))
    extra = [rng.randrange(n) for _ in range(100)]
    return sorted(set(offs) | set(extra))


@pytest.mark.parametrize("seed", SEED_IDS)
def test_truncated(seed, seeds, tmp_path):
    data = seeds[seed]
    rng = random.Random("trunc" + seed)
    layout = Layout(data)
    files = [("t%06d.dcm" % k, data[:k], "%s truncated to %d of %d bytes" % (seed, k, len(data)))
             for k in truncation_offsets(data, layout, rng)]
    check_files(files, str(tmp_path / safe(seed)))


def length_variants(h, cur, remaining, rng):
    """Corrupted values for one length field (two picked at random)."""
    if h["len_size"] == 2:
        cands = [cur | 1 if cur % 2 == 0 else cur + 2, min(0xFFFF, remaining + 2), 0xFFFF,
                 0xFFFE, 0, (cur + 1) & 0xFFFF]
    else:
        cands = [cur + 1 if cur % 2 == 0 else cur + 2, remaining + 2, remaining + 1000,
                 0xFFFFFFFF, 0xFFFFFFFE, 0x7FFFFFFF, 0x80000000, 0, cur + 8, max(0, cur - 8)]
    mask = 0xFFFF if h["len_size"] == 2 else 0xFFFFFFFF
    cands = sorted({c & mask for c in cands} - {cur})
    return rng.sample(cands, min(2, len(cands)))


@pytest.mark.parametrize("seed", SEED_IDS)
def test_bad_lengths(seed, seeds, tmp_path):
    data = seeds[seed]
    layout = Layout(data)
    rng = random.Random("len" + seed)
    e = "<" if layout.little else ">"
    files = []
    body = layout.body
    for k, h in enumerate(layout.headers):
        fmt = e + ("L" if h["len_size"] == 4 else "H")
        cur = struct.unpack_from(fmt, body, h["len_pos"])[0]
        remaining = len(body) - h["len_pos"] - h["len_size"]
        for v in length_variants(h, cur, remaining, rng):
            b = bytearray(body)
            struct.pack_into(fmt, b, h["len_pos"], v)
            files.append(("l%05d_%08x.dcm" % (k, v), layout.rebuild(bytes(b)),
                          "%s: %s at body offset %d length %d -> 0x%X" %
                          (seed, h["kind"], h["pos"], cur, v)))
    # The meta group's own lengths: group length and each meta element.
    for k, pos in enumerate(meta_length_fields(data)):
        for v in (0, 1, 0xFFFF, 0x7FFF, 3):
            b = bytearray(data)
            struct.pack_into("<H", b, pos, v)
            files.append(("m%03d_%04x.dcm" % (k, v), bytes(b),
                          "%s: meta length at %d -> 0x%X" % (seed, pos, v)))
    for v in (0, 1, 0xFFFFFFFF, 0x7FFFFFFF, len(data)):
        b = bytearray(data)
        struct.pack_into("<L", b, 140, v)
        files.append(("g%08x.dcm" % v, bytes(b), "%s: meta group length -> 0x%X" % (seed, v)))
    assert files
    check_files(files, str(tmp_path / safe(seed)))


def meta_length_fields(data):
    out = []
    pos = 144
    while pos + 8 <= len(data) and struct.unpack_from("<H", data, pos)[0] == 2:
        vr = data[pos + 4:pos + 6]
        if vr in LONG_VRS:
            pos += 12 + struct.unpack_from("<L", data, pos + 8)[0]
        else:
            out.append(pos + 6)
            pos += 8 + struct.unpack_from("<H", data, pos + 6)[0]
    return out


GARBAGE_VRS = [b"\0\0", b"zz", b"ZZ", b"??", b"SQ", b"OB", b"UN", b"US", b"UT", b"AT", b"FD",
               b"OW", b"xS", b"S\0", b"\xff\xff", b"UV", b"OV", b"DS"]


@pytest.mark.parametrize("seed", [s for s in SEED_IDS if not s.endswith(("_impl.dcm",
                                                                            "DICOMDIR-implicit",
                                                                            "nested_priv_SQ.dcm",
                                                                            "rtplan.dcm"))])
def test_garbage_vr(seed, seeds, tmp_path):
    data = seeds[seed]
    layout = Layout(data)
    if not layout.explicit:
        pytest.skip("implicit VR seed")
    rng = random.Random("vr" + seed)
    files = []
    for k, h in enumerate(layout.headers):
        if "vr_pos" not in h:
            continue
        cur = layout.body[h["vr_pos"]:h["vr_pos"] + 2]
        for vr in rng.sample([v for v in GARBAGE_VRS if v != cur], 2):
            b = bytearray(layout.body)
            b[h["vr_pos"]:h["vr_pos"] + 2] = vr
            files.append(("v%05d_%s.dcm" % (k, vr.hex()), layout.rebuild(bytes(b)),
                          "%s: VR of element at body offset %d %r -> %r" %
                          (seed, h["pos"], cur, vr)))
    # Random byte flips anywhere in the data set stream.
    for k in range(200):
        b = bytearray(layout.body)
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        files.append(("f%05d.dcm" % k, layout.rebuild(bytes(b)),
                      "%s: random byte flips #%d" % (seed, k)))
    check_files(files, str(tmp_path / safe(seed)))


# ---------------------------------------------------------------------------------------------
# Hand-built files

def part10(elements, ts):
    t = ts
    explicit = t != TS_IMPLICIT
    little = t != TS_BIG
    body = gen.encode(elements, explicit, little)
    if t == TS_DEFLATED:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = c.compress(body) + c.flush()
    return gen.part10(gen.meta_for(gen.SOP_SC, "1.2.3.4", t), body, t)


def nested_body(depth, undefined, explicit, little):
    """A data set with depth Content Sequences nested in each other (built iteratively: no
    recursion, whatever the depth)."""
    e = "<" if little else ">"
    inner = gen.encode([gen.El(0x00100010, "PN", b"Deep^Dog")], explicit, little)
    for _ in range(depth):
        if undefined:
            items = struct.pack(e + "HHL", 0xFFFE, 0xE000, 0xFFFFFFFF) + inner + \
                struct.pack(e + "HHL", 0xFFFE, 0xE00D, 0) + struct.pack(e + "HHL", 0xFFFE,
                                                                       0xE0DD, 0)
            n = 0xFFFFFFFF
        else:
            items = struct.pack(e + "HHL", 0xFFFE, 0xE000, len(inner)) + inner
            n = len(items)
        head = struct.pack(e + "HH", 0x0040, 0xA730)
        head += (b"SQ" + struct.pack(e + "HL", 0, n)) if explicit else struct.pack(e + "L", n)
        inner = head + items
    first = gen.encode([gen.El(0x00080016, "UI", gen.SOP_SC.encode() + b"\0")], explicit,
                       little)
    return first + inner


def nested_file(depth, undefined, ts):
    body = nested_body(depth, undefined, ts != TS_IMPLICIT, ts != TS_BIG)
    if ts == TS_DEFLATED:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        body = c.compress(body) + c.flush()
    return gen.part10(gen.meta_for(gen.SOP_SC, "1.2.3.4", ts), body, ts)


@pytest.mark.parametrize("ts", [TS_IMPLICIT, "1.2.840.10008.1.2.1", TS_BIG, TS_DEFLATED])
def test_deep_nesting(ts, tmp_path):
    files = []
    for depth in (63, 64, 65, 1000, 5000):
        for undefined in (False, True):
            files.append(("deep%d_%s.dcm" % (depth, "ul" if undefined else "dl"),
                          nested_file(depth, undefined, ts),
                          "%d nested sequences, %s length" %
                          (depth, "undefined" if undefined else "defined")))
    # Undefined-length nesting with the delimiters missing (truncated at the deepest point).
    deep = nested_file(1000, True, ts)
    if ts != TS_DEFLATED:
        files.append(("deep_nodelim.dcm", deep[:len(deep) // 2], "1000 deep, cut in half"))
    # UN of undefined length nested deeply (CP-246 switches to implicit inside).
    if ts == "1.2.840.10008.1.2.1":
        # Explicit UN of undefined length, its content Implicit VR (CP-246), nested.
        inner = gen.encode([gen.El(0x00100010, "PN", b"X^Y ")], False, True)
        for level in range(1000):
            outer = level == 999
            head = b"\x09\x00\x01\x10" + (b"UN\0\0" if outer else b"") + b"\xff" * 4
            inner = (head + b"\xfe\xff\x00\xe0\xff\xff\xff\xff" + inner +
                     b"\xfe\xff\x0d\xe0\0\0\0\0\xfe\xff\xdd\xe0\0\0\0\0")
        body = inner
        files.append(("deep_un.dcm", gen.part10(gen.meta_for(gen.SOP_SC, "1.2.3.4", ts), body,
                                                ts), "1000 nested UN sequences"))
    check_files(files, str(tmp_path))


BINARY_VRS = ["US", "SS", "UL", "SL", "FL", "FD", "AT", "OW", "OF", "OD", "OL", "OV", "SV", "UV"]
VR_TAG = {"US": 0x0072007A, "SS": 0x0072007E, "UL": 0x00720078, "SL": 0x0072007C,
          "FL": 0x00720076, "FD": 0x00720074, "AT": 0x00720060, "OW": 0x00720069,
          "OF": 0x00720067, "OD": 0x00720073, "OL": 0x00720075, "OV": 0x00720081,
          "SV": 0x00720082, "UV": 0x00720083}


@pytest.mark.parametrize("ts", [TS_IMPLICIT, "1.2.840.10008.1.2.1", TS_BIG, TS_DEFLATED])
def test_odd_lengths(ts, tmp_path):
    """Lengths that are no multiple of the VR's value size, and odd lengths everywhere."""
    files = []
    for vr in BINARY_VRS:
        for n in (1, 3, 5, 7, 9, 15, 17):
            els = [gen.El(0x00080016, "UI", gen.SOP_SC.encode() + b"\0"),
                   gen.El(0x00280103, "US", b"\x01\x00"),
                   gen.El(VR_TAG[vr], vr, bytes(range(1, n + 1)))]
            files.append(("odd_%s_%d.dcm" % (vr, n), part10(els, ts),
                          "%s value of %d bytes" % (vr, n)))
    # Odd-length items and sequences (defined lengths that are odd).
    item = gen.Item([gen.El(0x00100010, "PN", b"Odd")], False)
    els = [gen.El(0x00080016, "UI", gen.SOP_SC.encode() + b"\0"),
           gen.El(0x0040A730, "SQ", [item, item], False)]
    files.append(("odd_items.dcm", part10(els, ts), "odd item and sequence lengths"))
    # US or SS element (Smallest Image Pixel Value) with odd length under both signs.
    for rep in (b"\x00\x00", b"\x01\x00"):
        els = [gen.El(0x00280103, "US", rep), gen.El(0x00280106, "SS" if rep[0] else "US",
                                                      b"\x01\x02\x03")]
        files.append(("odd_xs_%d.dcm" % rep[0], part10(els, ts), "US or SS of 3 bytes"))
    check_files(files, str(tmp_path))


def deflated_seed():
    els = gen.edge_elements(True)
    return part10(els, TS_DEFLATED)


def test_bad_deflate(tmp_path):
    good = deflated_seed()
    layout = Layout(good)
    at = layout.body_at
    stream = good[at:]
    rng = random.Random("deflate")
    files = [("valid.dcm", good, "valid deflated file")]
    files.append(("stored.dcm", good[:at] + layout.body, "data set not deflated at all"))
    files.append(("zlib.dcm", good[:at] + zlib.compress(layout.body),
                  "zlib header instead of raw deflate"))
    files.append(("empty.dcm", good[:at], "no deflated data"))
    files.append(("garbage.dcm", good[:at] + bytes(rng.randrange(256) for _ in range(500)),
                  "500 random bytes"))
    files.append(("trailing.dcm", good + b"\x01\x02\x03garbage", "garbage after the stream"))
    files.append(("zeros.dcm", good[:at] + b"\0" * 64, "zeros"))
    files.append(("ff.dcm", good[:at] + b"\xff" * 64, "0xFF bytes"))
    for k in range(len(stream)):
        if k < 64 or k % 7 == 0:
            b = bytearray(stream)
            b[k] ^= 0x55
            files.append(("flip%05d.dcm" % k, good[:at] + bytes(b), "deflate byte %d xor 0x55" % k))
    for k in range(0, len(stream), 3):
        files.append(("cut%05d.dcm" % k, good[:at] + stream[:k], "deflate cut at %d" % k))
    # A small stream that inflates to a lot (zeros): a deflate bomb within limits.
    bomb = zlib.compressobj(9, zlib.DEFLATED, -15)
    z = bomb.compress(b"\0" * (64 << 20)) + bomb.flush()
    files.append(("bomb.dcm", good[:at] + z, "64 MiB of zeros in %d bytes" % len(z)))
    check_files(files, str(tmp_path))


def test_tiny_files(tmp_path):
    rng = random.Random("tiny")
    files = [
        ("zero.dcm", b"", "zero-byte file"),
        ("one.dcm", b"\x08", "one byte"),
        ("preamble.dcm", b"\0" * 128, "only a preamble"),
        ("preamble_ff.dcm", b"\xff" * 128, "preamble of 0xFF"),
        ("dicm.dcm", b"\0" * 128 + b"DICM", "preamble and DICM"),
        ("dicm_only.dcm", b"DICM", "DICM alone"),
        ("dicm_short.dcm", b"\0" * 128 + b"DIC", "preamble and half a prefix"),
        ("meta_tag.dcm", b"\0" * 128 + b"DICM\x02\x00", "half a meta tag"),
        ("meta_hdr.dcm", b"\0" * 128 + b"DICM\x02\x00\x00\x00UL\x04\x00",
         "meta group length without value"),
        ("meta_huge.dcm", b"\0" * 128 + b"DICM\x02\x00\x00\x00UL\x04\x00\xff\xff\xff\xff",
         "meta group length 0xFFFFFFFF and nothing else"),
        ("meta_only.dcm", gen.part10(gen.meta_for(gen.SOP_SC, "1.2.3", TS_IMPLICIT), b"",
                                     TS_IMPLICIT), "meta group and no data set"),
        ("meta_deflated_only.dcm", gen.part10(gen.meta_for(gen.SOP_SC, "1.2.3", TS_DEFLATED),
                                              b"", TS_DEFLATED), "deflated, nothing after meta"),
        ("meta_bad_ts.dcm", gen.part10(gen.meta_for(gen.SOP_SC, "1.2.3", "1.2.3.4.5.6"),
                                       b"\x08\x00\x16\x00UI\x02\x001\0", "1.2.3.4.5.6"),
         "unknown transfer syntax"),
        ("meta_long_ts.dcm", gen.part10(gen.meta_for(gen.SOP_SC, "1.2.3", "1." * 60 + "1"),
                                        b"", "1"), "transfer syntax UID over 64 characters"),
        ("seq_delim_top.dcm", b"\xfe\xff\xdd\xe0\0\0\0\0" * 4, "sequence delimiters alone"),
        ("item_top.dcm", b"\xfe\xff\x00\xe0\xff\xff\xff\xff" * 4, "items at top level"),
        ("item_delim_top.dcm", b"\xfe\xff\x0d\xe0\0\0\0\0", "item delimiter at top level"),
        ("implicit_undef.dcm", b"\x10\x00\x10\x00\xff\xff\xff\xff", "undefined length PN"),
    ]
    for k in range(30):
        n = rng.choice([2, 7, 8, 12, 100, 131, 132, 133, 200, 1000])
        files.append(("garbage%02d.dcm" % k, bytes(rng.randrange(256) for _ in range(n)),
                      "%d random bytes" % n))
        files.append(("pgarbage%02d.dcm" % k,
                      b"\0" * 128 + b"DICM" + bytes(rng.randrange(256) for _ in range(n)),
                      "preamble, DICM, %d random bytes" % n))
    check_files(files, str(tmp_path))


def test_lying_pixel_tables(corpus, tmp_path):
    """Number of Frames, Basic and Extended Offset Tables that do not match the data."""
    import pydicom
    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag
    from pydicom.uid import UID
    files = []
    rng = random.Random("pixels")
    for name in ("enc_fragments_bot.dcm", "enc_fragments_eot.dcm", "enc_rle_cat.dcm",
                 "vet_cat_expl.dcm", "vet_exotic_big.dcm"):
        ds0 = pydicom.dcmread(corpus[name])
        ts = UID(ds0.file_meta.TransferSyntaxUID)
        for nf in ("0", "-1", "1", "2", "3", "5", "1000", "65535", "100000000",
                   "2000000000", "2147483647", "99999999999", "abc", "1.5", ""):
            ds = pydicom.dcmread(corpus[name])
            raw = nf.encode() + (b" " if len(nf) % 2 else b"")
            ds[0x00280008] = RawDataElement(Tag(0x00280008), "IS", len(raw), raw, 0,
                                            ds.is_implicit_VR, ds.is_little_endian)
            files.append(("%s_nf_%s.dcm" % (name[:-4], safe(nf) or "empty"),
                          gen.pydicom_bytes(ds, ts, swap=False),
                          "%s with Number of Frames %r" % (name, nf)))
        for rows, cols in ((0, 0), (65535, 65535), (1, 1)):
            ds = pydicom.dcmread(corpus[name])
            ds.Rows, ds.Columns = rows, cols
            files.append(("%s_rc_%d_%d.dcm" % (name[:-4], rows, cols),
                          gen.pydicom_bytes(ds, ts, swap=False),
                          "%s with %dx%d" % (name, rows, cols)))
        if "ExtendedOffsetTable" in ds0:
            for k in range(6):
                ds = pydicom.dcmread(corpus[name])
                n = len(ds.ExtendedOffsetTable) // 8
                vals = [rng.choice([0, 1, 7, 2 ** 63, 2 ** 64 - 1, rng.randrange(2 ** 32)])
                        for _ in range(n + rng.choice([-1, 0, 0, 1]))]
                ds.ExtendedOffsetTable = struct.pack("<%dQ" % len(vals), *vals)
                ds.ExtendedOffsetTableLengths = struct.pack("<%dQ" % len(vals),
                                                            *reversed(vals))
                files.append(("%s_eot%d.dcm" % (name[:-4], k),
                              gen.pydicom_bytes(ds, ts, swap=False),
                              "%s with a garbage Extended Offset Table" % name))
    # Basic Offset Table garbage: rewrite the first item of encapsulated pixel data.
    data = open(corpus["enc_fragments_bot.dcm"], "rb").read()
    at = data.rfind(b"\xe0\x7f\x10\x00OB\0\0\xff\xff\xff\xff")
    assert at > 0
    bot_at = at + 12
    g, e, n = struct.unpack_from("<HHL", data, bot_at)
    assert (g, e) == (0xFFFE, 0xE000) and n == 16
    for k, vals in enumerate([(0, 0, 0, 0), (0xFFFFFFFF,) * 4, (4, 3, 2, 1),
                              (0, 1, 2, 3), (0, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0)]):
        b = bytearray(data)
        struct.pack_into("<4L", b, bot_at + 8, *vals)
        files.append(("bot%d.dcm" % k, bytes(b), "Basic Offset Table %r" % (vals,)))
    check_files(files, str(tmp_path))
