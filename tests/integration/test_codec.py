# SPDX-License-Identifier: MIT
"""The DICOM codec through the CLI, against pydicom and dcmtk.

Inputs: every file pydicom ships that pydicom reads without force, plus the generated corpus
(tests/gen/gen_corpus.py). For each input:

* test_roundtrip_keep: `vetpacs convert --ts keep`; pydicom reads the output and every element
  (sequences recursively, pixel data bytes) equals pydicom's reading of the input, VR included.
* test_roundtrip_native: the same into Implicit / Explicit LE / Explicit BE / Deflated for files
  with native (or no) pixel data; values compared (VRs too, except where Implicit VR makes the
  VR a dictionary guess). Encapsulated pixel data is decoded: every attribute but those
  decoding changes (Pixel Data, Photometric Interpretation, Planar Configuration, the lossy
  flags, the offset tables) is the input's; what no decoder handles is refused with exit 1
  and one line.
* test_idempotent: converting vetpacs' own output again gives the same bytes, for each syntax.
* test_dump_tags_match_dcmdump: the element list of `vetpacs dump` (with nesting, items and
  fragments) equals dcmdump's.
* test_dump_values_match_pydicom: every value printed by `vetpacs dump --width 100000` for the
  string and numeric VRs (and the first bytes of binary ones) equals pydicom's value; text VRs
  only when their bytes are ASCII (character sets are test_charset.py's job).
* test_written_meta: the meta group vetpacs writes (Implementation Class UID and Version Name,
  Transfer Syntax, Media Storage SOP Class / Instance from the data set, group length), and
  dcmdump (and dciodvfy when installed) find no new complaint in the output.
* test_roundtrip_chain: big -> implicit -> deflated -> explicit, vetpacs reading its own output
  each time; the values at the end are the input's.
* test_odd_values_padded: odd-length values get one pad byte, NUL for UI and binary VRs, space
  for the other strings (PS3.5 6.2).
* test_dump_pixel_locations: the '# pixel data' / '# frame' lines point at the pixel data and
  at each frame (native: the frame bytes; encapsulated: per the Extended or Basic Offset Table,
  PS3.5 A.4).
* test_dicomdir_offsets: a rewritten DICOMDIR's record offsets still point at its records.
* test_dciodvfy_no_new_errors: dciodvfy (when installed) finds no new error in the output.
* test_roundtrip_without_meta: bare data sets (no preamble or meta) become proper Part 10.
* test_known_bad_files_rejected: the deliberately damaged pydicom files give exit 1 and one line.
* test_forced_lengths: --defined-lengths / --undefined-lengths change only the encoding.
* Group lengths (gggg,0000) are recomputed by the writer: their values are not compared, but
  every one in an output must equal the size of its group as written.

Conversions run as a few batched vetpacs processes (convert accepts IN... DIR); a crashing
batch is rerun file by file so the failure names its file.
"""
import copy
import math
import os
import re
import struct
import subprocess
import warnings

import pytest

from conftest import (KNOWN_BAD, TIMEOUT, dcmdump_tags, dump_meta_and_dataset,
                      file_id, fmt_tags, have_tool, parse_dump_lines, pydicom_read,
                      pydicom_readable_files, run, run_batched, split_dump, vetpacs_tags)
import gen_corpus

from pydicom.dataelem import RawDataElement
from pydicom.multival import MultiValue

IMPLEMENTATION_CLASS_UID = "2.25.124558876457220195531134696587970400752"
IMPLEMENTATION_VERSION_NAME = "VETPACS_010"

TS_UID = {
    "implicit": "1.2.840.10008.1.2",
    "explicit": "1.2.840.10008.1.2.1",
    "big": "1.2.840.10008.1.2.2",
    "deflated": "1.2.840.10008.1.2.1.99",
}
NATIVE_UIDS = set(TS_UID.values())

PYDICOM_INPUTS = pydicom_readable_files()
CORPUS_NAMES = gen_corpus.corpus_names()
ALL_IDS = [file_id(p) for p in PYDICOM_INPUTS] + ["corpus/" + n for n in CORPUS_NAMES]
GOOD_IDS = [i for i in ALL_IDS if i not in KNOWN_BAD]


# ---------------------------------------------------------------------------------------------
# Session fixtures: inputs staged under unique names, batched conversions

@pytest.fixture(scope="session")
def inputs(corpus, tmp_path_factory):
    """{id: staged input path}. Inputs are symlinked under unique names so that several can be
    converted into one output folder (convert names outputs after the input's base name)."""
    stage = tmp_path_factory.mktemp("inputs")
    out = {}
    paths = {file_id(p): p for p in PYDICOM_INPUTS}
    paths.update({"corpus/" + n: p for n, p in corpus.items()})
    for k, i in enumerate(ALL_IDS):
        name = "%03d_%s" % (k, i.replace("/", "_"))
        dst = os.path.join(str(stage), name)
        os.symlink(paths[i], dst)
        out[i] = dst
    return out


@pytest.fixture(scope="session")
def originals(inputs):
    """pydicom's reading of each input. Read afresh on each call: looking at an element
    replaces pydicom's raw element with a typed one, and the raw bytes are needed."""
    def get(i):
        return pydicom_read(inputs[i])
    return get


class Conversion:
    """Outputs of one batched `vetpacs convert [opts] IN... DIR`."""

    def __init__(self, opts, inputs, ids, outdir):
        self.opts, self.outdir = opts, outdir
        os.makedirs(outdir, exist_ok=True)
        paths = [inputs[i] for i in ids]
        self.batch = run(["convert"] + opts + paths + [outdir], timeout=TIMEOUT * 6,
                         check_sanitizer=False)
        self.singles = {}
        if self.batch.crashed():
            # Rerun file by file so that the crash names its input.
            for i in ids:
                self.singles[i] = run(["convert"] + opts + [inputs[i], outdir],
                                      check_sanitizer=False)
        self.errors = {}
        for ln in self.batch.stderr_lines:
            for i in ids:
                if ln.startswith("vetpacs convert: %s: " % inputs[i]):
                    self.errors.setdefault(i, []).append(ln)
        self.inputs = inputs

    def output(self, i):
        """Output path for input i (which may not exist), None if i was not converted."""
        if i not in self.inputs:
            return None
        return os.path.join(self.outdir, os.path.basename(self.inputs[i]))

    def check_ran(self, i):
        """Fails the test if the process crashed for this input (attributed by the reruns),
        or if the batch crashed and no single run reproduces it (then every input fails)."""
        if not self.batch.crashed():
            return
        r = self.singles.get(i)
        if r is not None:
            assert not r.crashed(), "vetpacs crashed: " + r.describe()
        if not any(s.crashed() for s in self.singles.values()):
            pytest.fail("the batch crashed but no single run does: " + self.batch.describe())


@pytest.fixture(scope="session")
def convert(inputs, tmp_path_factory):
    """convert(mode) -> Conversion of every good input. mode: keep/implicit/explicit/big/
    deflated; "defined"/"undefined" (keep with forced sequence lengths); or "A>B>..." for
    the outputs of mode A converted again with --ts B (e.g. "big>big", "big>implicit")."""
    done = {}
    base = str(tmp_path_factory.mktemp("converted"))

    def get(mode):
        if mode in done:
            return done[mode]
        outdir = os.path.join(base, mode.replace(">", "-"))
        if ">" in mode:
            prev_mode, ts = mode.rsplit(">", 1)
            prev = get(prev_mode)
            staged = {}
            for i in GOOD_IDS:
                p = prev.output(i)
                if p and os.path.exists(p):
                    staged[i] = p
            c = Conversion(["--ts", ts], staged, list(staged), outdir)
        elif mode in ("defined", "undefined"):
            c = Conversion(["--ts", "keep", "--%s-lengths" % mode], inputs, GOOD_IDS, outdir)
        else:
            c = Conversion(["--ts", mode], inputs, GOOD_IDS, outdir)
        done[mode] = c
        return c
    return get


# ---------------------------------------------------------------------------------------------
# Canonical values from pydicom

SWAP_UNIT = {"AT": 2, "FD": 8, "FL": 4, "OD": 8, "OF": 4, "OL": 4, "OV": 8, "OW": 2, "SL": 4,
             "SS": 2, "SV": 8, "UL": 4, "US": 2, "UV": 8}
BYTES_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN", "OB or OW", "US or SS or OW"}
INT_VRS = {"US", "SS", "UL", "SL", "SV", "UV", "AT", "US or SS"}
FLOAT_VRS = {"FL", "FD"}
STRING_VRS = {"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM",
              "UC", "UI", "UR", "UT"}
TEXT_VRS = {"SH", "LO", "ST", "LT", "UT", "PN", "UC"}
SINGLE_VALUED = {"LT", "ST", "UT", "UR"}


def vrname(vr):
    """pydicom 2.3 uses a str Enum for VRs; str() of its members reads "VR.OB"."""
    return getattr(vr, "value", None) or str(vr) if vr is not None else "UN"


def to_le(vr, data, little):
    """Value bytes in little endian order."""
    u = SWAP_UNIT.get(vr, 1)
    if little or u == 1 or not data:
        return data
    whole = len(data) - len(data) % u
    return b"".join(data[k:k + u][::-1] for k in range(0, whole, u)) + data[whole:]


def fragments(data):
    """Items of an encapsulated pixel data value (pydicom keeps them as raw bytes)."""
    out, pos = [], 0
    while pos + 8 <= len(data):
        g, e, n = struct.unpack_from("<HHL", data, pos)
        pos += 8
        if (g, e) == (0xFFFE, 0xE0DD):
            break
        out.append(data[pos:pos + n])
        pos += n
    return out


class Canon:
    """One element: VR (pydicom's), the VR written in the file (None for Implicit VR), a
    typed canonical value, the raw value bytes in little endian order (or None)."""
    __slots__ = ("vr", "file_vr", "value", "raw", "undefined", "implicit")

    def __init__(self, vr, file_vr, value, raw, undefined, implicit):
        self.vr, self.file_vr, self.value, self.raw = vr, file_vr, value, raw
        self.undefined, self.implicit = undefined, implicit

    def unknown(self):
        """Whether the file gave no usable VR: UN written explicitly, or an Implicit VR
        element that pydicom's dictionary does not know either."""
        return self.file_vr == "UN" or (self.implicit and self.vr == "UN")


def canon_value(elem, vr, little):
    v = elem.value
    if vr == "SQ":
        return tuple(canon(item, little) for item in v)
    if v is None or (isinstance(v, (str, bytes, list, MultiValue)) and len(v) == 0):
        return ()
    if vr in BYTES_VRS:
        if elem.tag == 0x7FE00010 and elem.is_undefined_length:
            return ("fragments", tuple(fragments(v)))
        return ("bytes", to_le(vr, bytes(v), little))
    vals = list(v) if isinstance(v, (MultiValue, list, tuple)) else [v]
    if vr in FLOAT_VRS:
        return tuple(struct.pack("<d", float(x)) for x in vals)
    if vr in INT_VRS:
        return tuple(int(x) for x in vals)
    return tuple(str(x) for x in vals)


def canon(ds, little):
    """{tag: Canon} for a pydicom data set (recursively for sequences)."""
    out = {}
    for tag in list(ds.keys()):
        raw = ds.get_item(tag)
        raw_bytes = file_vr = None
        implicit = False
        if isinstance(raw, RawDataElement):
            implicit = bool(raw.is_implicit_VR)
            file_vr = None if implicit or raw.VR is None else vrname(raw.VR)
            if isinstance(raw.value, bytes):
                raw_bytes = raw.value
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                elem = ds[tag]
            vr = vrname(elem.VR)
            value = canon_value(elem, vr, little)
        except Exception as e:  # pydicom cannot type the value: keep the bytes
            vr = vrname(raw.VR)
            value = ("unconvertible", raw_bytes, type(e).__name__)
            elem = None
        if raw_bytes is not None:
            raw_bytes = to_le(file_vr or vr, raw_bytes, little)
        undefined = bool(getattr(elem, "is_undefined_length", False)) if elem is not None else False
        out[int(tag)] = Canon(vr, file_vr, value, raw_bytes, undefined, implicit)
    return out


def sq_from_un(c):
    """A sequence held in UN bytes (a private SQ written in Implicit VR, where pydicom cannot
    know it is one): the items parsed as Implicit VR Little Endian, canonicalised."""
    from pydicom.values import convert_SQ
    seq = convert_SQ(c.raw, True, True)
    return Canon("SQ", None, tuple(canon(item, True) for item in seq), None, False, True)


def bytes_equal(a, b):
    """Equal up to one trailing pad byte added to an odd-length value (PS3.5 7.1.1)."""
    if a == b:
        return True
    if a is None or b is None:
        return False
    if len(a) % 2 == 1 and len(b) == len(a) + 1 and b[:-1] == a and b[-1:] in (b"\0", b" "):
        return True
    if len(b) % 2 == 1 and len(a) == len(b) + 1 and a[:-1] == b and a[-1:] in (b"\0", b" "):
        return True
    return False


def values_equal(a, b):
    if a == b:
        return True
    if (isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) == 2 and
            a[0] == b[0] == "bytes"):
        return bytes_equal(a[1], b[1])
    if (isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) == 2 and
            a[0] == b[0] == "fragments"):
        return len(a[1]) == len(b[1]) and all(bytes_equal(x, y) for x, y in zip(a[1], b[1]))
    return False


def is_dicomdir(ds):
    """Media Storage Directory (PS3.10 8): has a Directory Record Sequence."""
    return 0x00041220 in ds


def tagstr(t):
    return "(%04X,%04X)" % (t >> 16, t & 0xFFFF)


def compare(a, b, strict_vr, path="", diffs=None):
    """Differences between two canon() trees as strings (at most 20)."""
    diffs = [] if diffs is None else diffs
    for t in sorted(set(a) | set(b)):
        if len(diffs) >= 20:
            break
        p = path + tagstr(t)
        if t not in b:
            diffs.append("%s missing from the output (%s)" % (p, a[t].vr))
            continue
        if t not in a:
            diffs.append("%s added in the output (%s)" % (p, b[t].vr))
            continue
        x, y = a[t], b[t]
        if t & 0xFFFF == 0:
            continue  # group lengths depend on the encoding; check_group_lengths checks them
        if t in DICOMDIR_OFFSET_TAGS:
            continue  # byte offsets move with the encoding; test_dicomdir_offsets checks them
        if x.vr == "SQ" and y.vr != "SQ" and y.unknown() and y.raw is not None:
            y = sq_from_un(y)
        elif y.vr == "SQ" and x.vr != "SQ" and x.unknown() and x.raw is not None:
            x = sq_from_un(x)
        if (x.unknown() or y.unknown()) and x.raw is not None and y.raw is not None:
            # Without a VR the bytes cannot be typed or swapped: they must be kept as they are.
            if not strict_vr or x.vr == y.vr or x.unknown() != y.unknown():
                if not bytes_equal(x.raw, y.raw):
                    diffs.append("%s: bytes differ (%s %r / %s %r)" % (
                        p, x.file_vr or x.vr, x.raw[:32], y.file_vr or y.vr, y.raw[:32]))
                if strict_vr and (x.file_vr or x.vr) != (y.file_vr or y.vr):
                    diffs.append("%s: VR %s, output has %s" % (p, x.file_vr or x.vr,
                                                               y.file_vr or y.vr))
                continue
        if x.vr == "SQ" and y.vr == "SQ":
            if len(x.value) != len(y.value):
                diffs.append("%s: %d items, output has %d" % (p, len(x.value), len(y.value)))
                continue
            for k, (ia, ib) in enumerate(zip(x.value, y.value)):
                compare(ia, ib, strict_vr, "%s[%d]." % (p, k), diffs)
            continue
        if x.vr != y.vr:
            # Encapsulated Pixel Data is OB whatever the input said (PS3.5 A.4): vetpacs
            # corrects an encapsulated OW; the fragments must still agree.
            encaps_fix = (t == 0x7FE00010 and x.vr == "OW" and y.vr == "OB" and
                          isinstance(x.value, tuple) and x.value[:1] == ("fragments",))
            if strict_vr and not encaps_fix:
                diffs.append("%s: VR %s, output has %s" % (p, x.vr, y.vr))
                continue
            # Implicit VR: the VR is a dictionary guess; the bytes must still agree.
            if x.raw is not None and y.raw is not None:
                if not bytes_equal(x.raw, y.raw):
                    diffs.append("%s: bytes differ (%s %r / %s %r)" % (p, x.vr, x.raw[:32],
                                                                       y.vr, y.raw[:32]))
                continue
            if x.value != y.value and not values_equal(x.value, y.value):
                diffs.append("%s: VR %s vs %s and values differ" % (p, x.vr, y.vr))
            continue
        if not values_equal(x.value, y.value):
            diffs.append("%s %s: value %s, output has %s" % (p, x.vr, short(x.value),
                                                           short(y.value)))
    return diffs


def short(v):
    s = repr(v)
    return s if len(s) < 160 else s[:160] + "..."


def is_little(ds):
    return ds.is_little_endian if ds.is_little_endian is not None else True


def ts_of(ds):
    return str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(ds, "file_meta") else ""


def has_encapsulated_pixels(ds):
    el = ds.get_item(0x7FE00010) if 0x7FE00010 in ds else None
    if el is None:
        return False
    if isinstance(el, RawDataElement):
        return el.length == 0xFFFFFFFF
    return bool(el.is_undefined_length)


LONG_VR_BYTES = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR",
                 b"UT", b"UV"}


def walk_elements(data, pos, explicit, little, end, in_item):
    """Position after the elements from pos up to end (defined length), or up to and
    including the Item Delimitation Item when in_item and end is None."""
    e = "<" if little else ">"
    limit = len(data) if end is None else end
    while pos + 8 <= limit:
        g, el = struct.unpack_from(e + "HH", data, pos)
        if g == 0xFFFE:
            assert el == 0xE00D and in_item, "unexpected (FFFE,%04X) at %d" % (el, pos)
            return pos + 8
        pos = walk_element(data, pos, explicit, little)
    return pos


def walk_element(data, pos, explicit, little):
    """Position after the element whose header starts at pos."""
    e = "<" if little else ">"
    vr = data[pos + 4:pos + 6] if explicit else None
    if explicit and vr in LONG_VR_BYTES:
        n = struct.unpack_from(e + "L", data, pos + 8)[0]
        pos += 12
    elif explicit:
        n = struct.unpack_from(e + "H", data, pos + 6)[0]
        pos += 8
    else:
        n = struct.unpack_from(e + "L", data, pos + 4)[0]
        pos += 8
    if n != 0xFFFFFFFF:
        return pos + n
    if vr == b"UN":  # CP-246: the items are Implicit VR Little Endian
        return walk_items(data, pos, False, True)
    return walk_items(data, pos, explicit, little)


def walk_items(data, pos, explicit, little):
    """Position after the Sequence Delimitation Item ending the items (or fragments) at pos."""
    e = "<" if little else ">"
    while pos + 8 <= len(data):
        g, el, n = struct.unpack_from(e + "HHL", data, pos)
        pos += 8
        if (g, el) == (0xFFFE, 0xE0DD):
            return pos
        assert (g, el) == (0xFFFE, 0xE000), "expected an item at %d" % (pos - 8)
        if n == 0xFFFFFFFF:
            pos = walk_elements(data, pos, explicit, little, None, True)
        else:
            pos += n
    raise AssertionError("unterminated undefined length")


def toplevel_elements(path):
    """[(tag, start, end)] of the top-level data set elements of a vetpacs output (offsets
    into the data set stream, inflated for the deflated syntax)."""
    import zlib
    with open(path, "rb") as f:
        data = f.read()
    glen = struct.unpack_from("<L", data, 140)[0]
    pos = 144 + glen
    new = read_output(path)
    ts = ts_of(new)
    if ts == TS_UID["deflated"]:
        data = zlib.decompress(data[pos:], -15)
        pos = 0
    little = ts != TS_UID["big"]
    explicit = ts != TS_UID["implicit"]
    e = "<" if little else ">"
    out = []
    while pos + 8 <= len(data):
        g, el = struct.unpack_from(e + "HH", data, pos)
        end = walk_element(data, pos, explicit, little)
        out.append(((g << 16) | el, pos, end))
        pos = end
    assert pos == len(data), "trailing bytes after the data set"
    return out


def check_group_lengths(path):
    """Every top-level group length (gggg,0000) vetpacs writes equals the bytes of the group's
    other elements as written."""
    els = toplevel_elements(path)
    new = read_output(path)
    for k, (tag, start, end) in enumerate(els):
        if tag & 0xFFFF or tag >> 16 == 2:
            continue
        group = tag >> 16
        size = sum(e2 - s2 for t2, s2, e2 in els[k + 1:] if t2 >> 16 == group)
        value = new[tag].value
        if isinstance(value, bytes):  # an unknown private group length reads as UN
            value = struct.unpack("<L" if is_little(new) else ">L", value)[0]
        assert value == size, "%s holds %s, the group takes %d bytes" % (tagstr(tag), value,
                                                                        size)


DICOMDIR_CLASS = "1.2.840.10008.1.3.10"


def read_output(path):
    """pydicom's reading of a vetpacs output. A Media Storage Directory is read as a plain data
    set: pydicom's DicomDir class follows the record offsets and raises on a stale one, which
    test_dicomdir_offsets reports on its own; the values are compared here."""
    import io
    import zlib
    from pydicom.filereader import _read_file_meta_info, read_dataset, read_preamble
    from pydicom.uid import UID
    meta = None
    with open(path, "rb") as fp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read_preamble(fp, False)
        meta = _read_file_meta_info(fp)
        if meta.get("MediaStorageSOPClassUID") != DICOMDIR_CLASS:
            meta = None
        else:
            ts = UID(meta.TransferSyntaxUID)
            rest = fp.read()
            if ts == TS_UID["deflated"]:
                rest = zlib.decompress(rest, -15)
                ts = UID(TS_UID["explicit"])
            ds = read_dataset(io.BytesIO(rest), ts.is_implicit_VR, ts.is_little_endian)
            ds.file_meta = meta
            return ds
    return pydicom_read(path)


def check_roundtrip(i, orig, conv, target_ts, strict_vr):
    assert i in conv.inputs, "an earlier conversion of the chain wrote no output"
    conv.check_ran(i)
    out = conv.output(i)
    assert i not in conv.errors, "vetpacs convert failed: %s" % conv.errors[i]
    assert os.path.exists(out), "no output written; stderr: %s" % conv.batch.stderr[-2000:]
    try:
        new = read_output(out)  # without force: must be a proper Part 10 file
    except Exception as e:
        pytest.fail("pydicom cannot read the output: %s: %s" % (type(e).__name__, e))
    assert ts_of(new) == target_ts
    diffs = compare(canon(orig, is_little(orig)), canon(new, is_little(new)), strict_vr)
    check_group_lengths(out)
    assert not diffs, "%d differences after %s:\n  %s" % (len(diffs), conv.opts,
                                                          "\n  ".join(diffs))


# ---------------------------------------------------------------------------------------------
# Round trips

@pytest.mark.parametrize("i", GOOD_IDS)
def test_roundtrip_keep(i, convert, originals):
    orig = originals(i)
    check_roundtrip(i, orig, convert("keep"), ts_of(orig) or "1.2.840.10008.1.2", True)


@pytest.mark.parametrize("ts", sorted(TS_UID))
@pytest.mark.parametrize("i", GOOD_IDS)
def test_roundtrip_native(i, ts, convert, originals):
    orig = originals(i)
    conv = convert(ts)
    if has_encapsulated_pixels(orig):
        # Compressed pixel data is decoded (img_transcode; test_transcode.py checks the
        # pixels); when no decoder can (12-bit JPEG, a damaged stream), a clean refusal.
        conv.check_ran(i)
        errs = conv.errors.get(i, [])
        if errs:
            assert not os.path.exists(conv.output(i)), "failed but written as %s" % ts
            assert len(errs) == 1, "expected one error line, got %r" % errs
            assert conv.batch.returncode == 1
            return
        new = read_output(conv.output(i))
        assert ts_of(new) == TS_UID[ts]
        assert not new["PixelData"].is_undefined_length
        # everything but what decoding changes is the input's
        changed = (0x7FE00010, 0x7FE00001, 0x7FE00002, 0x00280004, 0x00280006, 0x00282110,
                   0x00282114)
        a, b = copy.deepcopy(orig), copy.deepcopy(new)
        for d in (a, b):
            for t in changed:
                if t in d:
                    del d[t]
        strict = not (ts_of(orig) == TS_UID["implicit"] or ts == "implicit")
        diffs = compare(canon(a, is_little(orig)), canon(b, is_little(new)), strict)
        assert not diffs, "%d differences after %s:\n  %s" % (len(diffs), conv.opts,
                                                              "\n  ".join(diffs))
        return
    if is_dicomdir(orig) and ts == "deflated":
        # Record offsets count file bytes, which a deflated stream has not: a clean refusal.
        conv.check_ran(i)
        assert not os.path.exists(conv.output(i)), "DICOMDIR written deflated"
        assert len(conv.errors.get(i, [])) == 1
        return
    src_implicit = ts_of(orig) == TS_UID["implicit"] or not ts_of(orig)
    strict = not (src_implicit or ts == "implicit")
    check_roundtrip(i, orig, conv, TS_UID[ts], strict)


CHAIN = "big>implicit>deflated>explicit"


@pytest.mark.parametrize("i", GOOD_IDS)
def test_roundtrip_chain(i, convert, originals):
    """Through every native syntax in turn (vetpacs reading its own output each time): the
    values at the end are still the input's."""
    orig = originals(i)
    if has_encapsulated_pixels(orig):
        pytest.skip("decoded pixel data: test_roundtrip_native checks it")
    if is_dicomdir(orig):
        pytest.skip("a DICOMDIR cannot be deflated (test_roundtrip_native checks the refusal)")
    check_roundtrip(i, orig, convert(CHAIN), TS_UID["explicit"], False)


@pytest.mark.parametrize("mode", ["keep", "implicit", "explicit", "big", "deflated"])
@pytest.mark.parametrize("i", GOOD_IDS)
def test_idempotent(i, mode, convert):
    first = convert(mode)
    first.check_ran(i)
    if not os.path.exists(first.output(i)):
        pytest.skip("no first output (checked by the round trip tests)")
    second = convert(mode + ">" + mode)
    second.check_ran(i)
    assert i not in second.errors, "second conversion failed: %s" % second.errors[i]
    with open(first.output(i), "rb") as f:
        a = f.read()
    with open(second.output(i), "rb") as f:
        b = f.read()
    if a != b:
        at = next(k for k in range(min(len(a), len(b)) + 1)
                  if k == min(len(a), len(b)) or a[k] != b[k])
        pytest.fail("second write differs from the first: sizes %d / %d, first difference at "
                    "byte %d (%r / %r)" % (len(a), len(b), at, a[at:at + 16], b[at:at + 16]))


@pytest.mark.parametrize("i", GOOD_IDS)
def test_written_meta(i, convert, originals):
    conv = convert("keep")
    conv.check_ran(i)
    out = conv.output(i)
    assert os.path.exists(out), conv.errors.get(i)
    orig = originals(i)
    from pydicom.filereader import read_file_meta_info
    fm = read_file_meta_info(out)  # the data set is compared by the round trip tests
    with open(out, "rb") as f:
        head = f.read(132 + 12)
    assert head[:128] == b"\0" * 128 and head[128:132] == b"DICM"
    # (0002,0000) UL 4 <n>: the group length counts the meta elements after it.
    g, e, vr, n, glen = struct.unpack_from("<HH2sHL", head, 132)
    assert (g, e, vr, n) == (2, 0, b"UL", 4)
    assert fm.FileMetaInformationGroupLength == glen
    with open(out, "rb") as f:
        data = f.read()
    pos = 144
    while pos + 8 <= len(data) and struct.unpack_from("<H", data, pos)[0] == 2:
        vr = data[pos + 4:pos + 6]
        if vr in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN", b"UC", b"UR", b"OD", b"OL", b"OV",
                  b"SV", b"UV"):
            pos += 12 + struct.unpack_from("<L", data, pos + 8)[0]
        else:
            pos += 8 + struct.unpack_from("<H", data, pos + 6)[0]
    assert pos - 144 == glen, "group length %d, meta elements take %d bytes" % (glen, pos - 144)
    assert fm.FileMetaInformationVersion == b"\x00\x01"
    assert fm.ImplementationClassUID == IMPLEMENTATION_CLASS_UID
    assert fm.ImplementationVersionName == IMPLEMENTATION_VERSION_NAME
    assert fm.TransferSyntaxUID == (ts_of(orig) or "1.2.840.10008.1.2")
    ofm = orig.file_meta
    want_class = orig.get("SOPClassUID", ofm.get("MediaStorageSOPClassUID"))
    want_inst = orig.get("SOPInstanceUID", ofm.get("MediaStorageSOPInstanceUID"))
    if want_class:
        assert fm.get("MediaStorageSOPClassUID") == want_class
    if want_inst:
        assert fm.get("MediaStorageSOPInstanceUID") == want_inst
    for kw in ("SourceApplicationEntityTitle", "SendingApplicationEntityTitle",
               "ReceivingApplicationEntityTitle", "PrivateInformationCreatorUID",
               "PrivateInformation"):
        if kw in ofm:
            assert fm.get(kw) == ofm.get(kw), kw
    # dcmdump: no complaint about the output that it does not also make about the input.
    rc, _, err_out = dcmdump_tags(out)
    rc_in, _, err_in = dcmdump_tags(conv.inputs[i])
    assert rc == 0, err_out
    if rc_in != 0:
        err_in = ""  # dcmdump cannot read the input: every complaint about the output counts
    new_msgs = set(norm_msgs(err_out)) - set(norm_msgs(err_in))
    assert not new_msgs, "dcmdump complains about the output only:\n" + "\n".join(new_msgs)


def norm_msgs(text):
    return [ln.strip() for ln in text.splitlines()
            if ln.strip() and not ln.startswith("I:")]


@pytest.mark.skipif(not have_tool("dciodvfy"), reason="dicom3tools (dciodvfy) not installed")
@pytest.mark.parametrize("i", [i for i in GOOD_IDS if i.startswith("corpus/") and
                               "_defl" not in i])
def test_dciodvfy_no_new_errors(i, convert):
    """dciodvfy (no deflate support) finds no error in the output it did not find in the input
    (the corpus is not IOD-valid on purpose, so only new errors count)."""
    conv = convert("keep")
    conv.check_ran(i)
    out = conv.output(i)
    assert os.path.exists(out)

    def errors(p):
        r = subprocess.run(["dciodvfy", p], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        return {ln.strip() for ln in r.stdout.decode("latin-1").splitlines()
                if ln.startswith("Error")}
    new = errors(out) - errors(conv.inputs[i])
    assert not new, "\n".join(sorted(new))


def padding_problems(a, b, path=""):
    """Odd-length values of a (canon of an input) must be written as in b with one pad byte:
    NUL for UI and binary VRs, space for the other strings (PS3.5 6.2, 7.1.1)."""
    out = []
    for t, x in a.items():
        y = b.get(t)
        if y is None:
            continue
        if x.vr == "SQ" and y.vr == "SQ":
            for k, (ia, ib) in enumerate(zip(x.value, y.value)):
                out += padding_problems(ia, ib, "%s%s[%d]." % (path, tagstr(t), k))
            continue
        if x.raw is None or y.raw is None or len(x.raw) % 2 == 0:
            continue
        vr = x.file_vr or x.vr
        pad = b" " if vr in STRING_VRS and vr != "UI" else b"\0"
        if y.raw != x.raw + pad:
            out.append("%s%s %s: %r written as %r" % (path, tagstr(t), vr, x.raw[-8:],
                                                      y.raw[-8:]))
    return out


@pytest.mark.parametrize("mode", ["keep", "big", "implicit"])
@pytest.mark.parametrize("i", [i for i in GOOD_IDS if i.startswith("corpus/edge_")])
def test_odd_values_padded(i, mode, convert, originals):
    orig = originals(i)
    conv = convert(mode)
    conv.check_ran(i)
    assert os.path.exists(conv.output(i)), conv.errors.get(i)
    new = read_output(conv.output(i))
    problems = padding_problems(canon(orig, is_little(orig)), canon(new, is_little(new)))
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("mode", ["defined", "undefined"])
@pytest.mark.parametrize("i", [i for i in GOOD_IDS if i.startswith("corpus/allvr") or
                               i.startswith("corpus/edge") or i.startswith("corpus/vet_dog")
                               or i == "pydicom/test_files/UN_sequence.dcm"])
def test_forced_lengths(i, mode, convert, originals):
    orig = originals(i)
    conv = convert(mode)
    check_roundtrip(i, orig, conv, ts_of(orig), True)
    r = run(["dump", conv.output(i)])
    assert r.returncode == 0, r.describe()
    want = "u/l" if mode == "undefined" else "d/l"
    for ln in r.text.splitlines():
        if " SQ " in ln and ("u/l" in ln or "d/l" in ln):
            assert (" SQ %s " % want) in ln, ln
    # Items: dcmdump says how each item was encoded.
    p = subprocess.run(["dcmdump", conv.output(i)], stdout=subprocess.PIPE, timeout=60)
    txt = p.stdout.decode("latin-1")
    other = "Item with explicit length" if mode == "undefined" else "Item with undefined length"
    assert other not in txt


DICOMDIR_IDS = [i for i in GOOD_IDS if os.path.basename(i).startswith("DICOMDIR")]
DICOMDIR_OFFSET_TAGS = (0x00041200, 0x00041202, 0x00041400, 0x00041420)


@pytest.mark.parametrize("mode", ["keep", "explicit"])
@pytest.mark.parametrize("i", DICOMDIR_IDS)
def test_dicomdir_offsets(i, mode, convert):
    """A Media Storage Directory keeps byte offsets of its records, counted from the start of
    the file meta information (PS3.3 F.3.2.1, PS3.10 8.6); a rewrite that changes the meta
    group or the encoding must update them, or refuse. Every non-zero offset in the output
    must point at an Item tag."""
    conv = convert(mode)
    conv.check_ran(i)
    out = conv.output(i)
    if not os.path.exists(out):
        assert len(conv.errors.get(i, [])) == 1  # refusing is acceptable
        return
    with open(out, "rb") as f:
        data = f.read()
    # Read as a plain data set: pydicom's DicomDir class would raise on a stale offset.
    from pydicom.filereader import _read_file_meta_info, read_dataset, read_preamble
    from pydicom.uid import UID
    with open(out, "rb") as fp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        read_preamble(fp, False)
        ts = UID(_read_file_meta_info(fp).TransferSyntaxUID)
        little = ts.is_little_endian
        ds = read_dataset(fp, ts.is_implicit_VR, little)
    bad = []
    for elem in ds.iterall():
        if elem.tag in DICOMDIR_OFFSET_TAGS and elem.value:
            off = int(elem.value)
            e = "<" if little else ">"
            ok = off + 4 <= len(data) and struct.unpack_from(e + "HH", data, off) == (0xFFFE,
                                                                                       0xE000)
            if not ok:
                bad.append("%s = %d does not point at an item" % (tagstr(elem.tag), off))
    assert not bad, "%d stale offsets, e.g.:\n  %s" % (len(bad), "\n  ".join(bad[:5]))


NO_META_FILES = ["test_files/ExplVR_BigEndNoMeta.dcm", "test_files/ExplVR_LitEndNoMeta.dcm",
                 "test_files/rtstruct.dcm"]


@pytest.mark.parametrize("name", NO_META_FILES)
def test_roundtrip_without_meta(name, tmp_path):
    """Bare data sets (no preamble, no meta group; pydicom needs force): vetpacs detects the
    encoding and writes a proper Part 10 file with the same values."""
    path = os.path.join("/usr/lib/python3/dist-packages/pydicom/data", name)
    orig = pydicom_read(path, force=True)
    out = str(tmp_path / "out.dcm")
    r = run(["convert", "--ts", "keep", path, out])
    assert r.returncode == 0, r.describe()
    new = pydicom_read(out)
    want_ts = TS_UID["implicit"] if orig.is_implicit_VR else (
        TS_UID["explicit"] if orig.is_little_endian else TS_UID["big"])
    assert ts_of(new) == want_ts
    diffs = compare(canon(orig, is_little(orig)), canon(new, is_little(new)), True)
    assert not diffs, "\n".join(diffs)


def test_known_bad_files_rejected(inputs):
    pdir = "/usr/lib/python3/dist-packages/pydicom/data/"
    for i in KNOWN_BAD:
        path = pdir + i[len("pydicom/"):]
        r = run(["dump", path])
        assert r.returncode == 1, r.describe()
        lines = r.stderr_lines
        assert len(lines) == 1 and lines[0].startswith("vetpacs dump: "), r.describe()
        assert "offset" in lines[0] and "(" in lines[0], lines[0]


# ---------------------------------------------------------------------------------------------
# Dumps: tag lists against dcmdump, values against pydicom

@pytest.fixture(scope="session")
def dumps(inputs):
    """{id: ("ok", dump lines) | ("error", stderr lines) | ("crash", Result)} from one batched
    `vetpacs dump --width 100000` (rerun file by file when the batch crashes)."""
    ids = GOOD_IDS
    paths = [inputs[i] for i in ids]
    r, singles = run_batched(["dump", "--width", "100000"], paths, timeout=TIMEOUT * 6)
    out = {}
    if singles:
        if not any(s.crashed() for s in singles.values()):
            return {i: ("crash", r) for i in ids}  # not attributable: every file fails
        for i in ids:
            s = singles[inputs[i]]
            out[i] = ("crash", s) if s.crashed() else (
                ("ok", s.text.splitlines()) if s.returncode == 0 else ("error", s.stderr_lines))
        return out
    parts = split_dump(r.text, paths)
    for i in ids:
        p = inputs[i]
        if p in parts:
            out[i] = ("ok", parts[p])
        else:
            out[i] = ("error", [ln for ln in r.stderr_lines if p in ln])
    return out


def get_dump(dumps, i):
    kind, v = dumps[i]
    assert kind != "crash", "vetpacs dump crashed: " + v.describe()
    assert kind == "ok", "vetpacs dump failed: %s" % v
    return v


# Files dcmdump cannot list, for a documented reason.
DCMDUMP_EXCEPTIONS = {
    "pydicom/test_files/SC_rgb_jpeg.dcm":
        "the meta group says JPEG Baseline (explicit VR) but the data set is Implicit VR; "
        "dcmdump stops with an error, vetpacs and pydicom detect the implicit encoding",
}


@pytest.mark.parametrize("i", GOOD_IDS)
def test_dump_tags_match_dcmdump(i, dumps, inputs):
    lines = get_dump(dumps, i)
    if i in DCMDUMP_EXCEPTIONS:
        pytest.skip(DCMDUMP_EXCEPTIONS[i])
    rc, want, err = dcmdump_tags(inputs[i])
    assert rc == 0, "dcmdump failed on the input: %s" % err
    got = vetpacs_tags(lines)
    if got != want:
        at = next(k for k in range(min(len(got), len(want)) + 1)
                  if k == min(len(got), len(want)) or got[k] != want[k])
        pytest.fail("element lists differ at entry %d (%d vs %d entries)\nvetpacs:\n%s\n"
                    "dcmdump:\n%s" % (at, len(got), len(want), fmt_tags(got, at),
                                      fmt_tags(want, at)))


PIXEL_LINE = re.compile(r"^# pixel data at offset (\d+), (\d+) bytes, (\d+) frames( \(offsets in "
                        r"the inflated stream\))?$")
FRAME_LINE = re.compile(r"^# frame (\d+) at offset (\d+), (\d+) bytes$")


def expected_frames(data, value_at, nframes, eot):
    """[(offset of the first fragment's data, total bytes)] per frame of encapsulated pixel
    data whose first item (the Basic Offset Table) starts at value_at (PS3.5 A.4): Extended
    Offset Table, else Basic Offset Table, else one fragment per frame, else one frame."""
    frags = []  # (item offset relative to the first fragment's item, data offset, length)
    pos = value_at
    bot = None
    while True:
        g, e, n = struct.unpack_from("<HHL", data, pos)
        if (g, e) == (0xFFFE, 0xE0DD):
            break
        if bot is None:
            bot = data[pos + 8:pos + 8 + n]
        else:
            frags.append((pos, pos + 8, n))
        pos += 8 + n
    first = frags[0][0] if frags else 0
    rel = [(f[0] - first, f[1], f[2]) for f in frags]
    starts = None
    if eot is not None and len(eot) // 8 == nframes:
        starts = list(struct.unpack("<%dQ" % nframes, eot[:8 * nframes]))
    elif bot and len(bot) // 4 == nframes:
        starts = list(struct.unpack("<%dL" % nframes, bot[:4 * nframes]))
    if starts:
        out = []
        for k, st in enumerate(starts):
            nxt = starts[k + 1] if k + 1 < nframes else float("inf")
            mine = [f for f in rel if st <= f[0] < nxt]
            out.append((mine[0][1], sum(f[2] for f in mine)))
        return out
    if len(frags) == nframes:
        return [(f[1], f[2]) for f in frags]
    if nframes == 1:
        return [(frags[0][1], sum(f[2] for f in frags))]
    return []


@pytest.mark.parametrize("i", GOOD_IDS)
def test_dump_pixel_locations(i, dumps, inputs, originals):
    """The '# pixel data' and '# frame' lines locate the pixel data and each frame in the file
    (the PACS streams frames from these offsets)."""
    lines = get_dump(dumps, i)
    ds = originals(i)
    info = [PIXEL_LINE.match(ln) for ln in lines if ln.startswith("# pixel data")]
    if 0x7FE00010 not in ds:
        assert not info, "pixel data reported for a file without any"
        return
    assert len(info) == 1 and info[0], "no '# pixel data' line"
    value_at, value_len, nframes = (int(x) for x in info[0].groups()[:3])
    frames = [tuple(int(x) for x in m.groups()) for m in (FRAME_LINE.match(ln) for ln in lines)
              if m]
    assert [f[0] for f in frames] == list(range(1, nframes + 1))
    if info[0].group(4):
        assert ts_of(ds) == TS_UID["deflated"]
        return
    assert ts_of(ds) != TS_UID["deflated"], "deflated offsets not flagged"
    with open(inputs[i], "rb") as f:
        data = f.read()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want_frames = int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        pytest.skip("Number of Frames is not a number: %r" % ds.get_item(0x00280008).value)
    if has_encapsulated_pixels(ds):
        g, e = struct.unpack_from("<HH", data, value_at)
        assert (g, e) == (0xFFFE, 0xE000), "pixel data offset does not point at the first item"
        eot = ds.get("ExtendedOffsetTable")
        want = expected_frames(data, value_at, want_frames, eot)
        assert [(f[1], f[2]) for f in frames] == want
        if want:
            assert nframes == want_frames
        return
    raw = ds.get_item(0x7FE00010)
    assert isinstance(raw, RawDataElement)
    assert value_len == raw.length
    assert data[value_at:value_at + value_len] == raw.value, "offset is not the pixel data's"
    assert nframes == want_frames
    for k, off, n in frames:
        assert off == value_at + (k - 1) * n
        assert off + n <= value_at + value_len


def dump_str_values(text, vr):
    """Values of a string element as vetpacs printed them (between the brackets)."""
    if vr in SINGLE_VALUED:
        return [text]
    return text.split("\\")


def printable(s):
    return "".join("." if (ord(c) < 0x20 or ord(c) == 0x7F) else c for c in s)


def check_node(node, ds, little, charset_ascii, path, diffs):
    tag = node.tag
    p = path + tagstr(tag)
    if tag not in ds:
        diffs.append("%s printed by vetpacs, absent for pydicom" % p)
        return
    raw = ds.get_item(tag)
    raw_bytes = raw.value if isinstance(raw, RawDataElement) and isinstance(raw.value,
                                                                            bytes) else None
    raw_len = raw.length if isinstance(raw, RawDataElement) else None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            elem = ds[tag]
        vr = vrname(elem.VR)
    except Exception:
        elem, vr = None, vrname(raw.VR)
    if node.items is not None:
        if elem is None or vr not in ("SQ", "UN"):
            diffs.append("%s: vetpacs shows a sequence, pydicom VR %s" % (p, vr))
            return
        seq = elem.value
        if len(seq) != len(node.items) or node.declared_items != len(node.items):
            diffs.append("%s: %d items printed (%d declared), pydicom has %d" %
                         (p, len(node.items), node.declared_items, len(seq)))
            return
        if bool(elem.is_undefined_length) != node.undefined:
            diffs.append("%s: vetpacs %s, pydicom undefined length %s" %
                         (p, "u/l" if node.undefined else "d/l", elem.is_undefined_length))
        for k, (item_nodes, item) in enumerate(zip(node.items, seq)):
            check_nodes(item_nodes, item, little, charset_ascii, "%s[%d]." % (p, k), diffs)
        return
    if node.fragments is not None:
        frags = fragments(elem.value)
        if [len(f) for f in frags] != node.fragments or node.declared_fragments != len(frags):
            diffs.append("%s: fragments %r, pydicom %r" % (p, node.fragments,
                                                           [len(f) for f in frags]))
        return
    if elem is None:
        return  # pydicom cannot type it; nothing to compare with
    if vr != node.vr:
        ambiguous_ok = (node.vr in ("OB", "OW") and vr in ("OB", "OW", "OB or OW") or
                        node.vr in ("US", "SS") and vr == "US or SS" or
                        node.vr == "UN" or vr == "UN")
        if not ambiguous_ok:
            diffs.append("%s: VR %s, pydicom %s" % (p, node.vr, vr))
            return
    if raw_len is not None and raw_len != 0xFFFFFFFF and node.length != raw_len:
        diffs.append("%s: length %s, pydicom %s" % (p, node.length, raw_len))
    v = node.value
    empty = elem.value is None or (hasattr(elem.value, "__len__") and len(elem.value) == 0)
    if v == "(no value)":
        if not empty and (raw_len or 0) != 0:
            diffs.append("%s: vetpacs (no value), pydicom %r" % (p, elem.value))
        return
    # Binary or unknown: the first 16 bytes in hex.
    if node.vr in BYTES_VRS or vr in BYTES_VRS and node.vr not in STRING_VRS:
        data = raw_bytes if raw_bytes is not None else elem.value
        if isinstance(data, str):
            data = data.encode("latin-1")
        data = to_le(node.vr, bytes(data), little)
        want = "\\".join("%02x" % b for b in data[:16]) + ("..." if len(data) > 16 else "")
        if v != want:
            diffs.append("%s %s: %s, pydicom bytes %s" % (p, node.vr, v, want))
        return
    if node.vr in STRING_VRS:
        if not (v.startswith("[") and v.endswith("]")):
            diffs.append("%s: string value not in brackets: %r" % (p, v))
            return
        text = v[1:-1]
        if node.vr in TEXT_VRS:
            if raw_bytes is None:
                if not charset_ascii:
                    return
            elif any(c >= 0x80 or c == 0x1B for c in raw_bytes):
                return  # non-ASCII text: test_charset.py's job
        if raw_bytes is not None:
            want = raw_bytes.decode("latin-1").rstrip(" \0")
            if text != printable(want):
                diffs.append("%s %s: [%s], file bytes %r" % (p, node.vr, short(text), want))
                return
        got = dump_str_values(text, node.vr)
        vals = (list(elem.value) if isinstance(elem.value, (MultiValue, list)) else
                [elem.value])
        if node.vr in ("DS", "IS"):
            try:
                g = [float(x) if x.strip() else None for x in got]
                w = [float(x) if str(x).strip() else None for x in vals]
            except (ValueError, TypeError):
                return  # invalid number strings: the bytes check above covered them
            if not all(a == b or (a is not None and b is not None and math.isclose(a, b))
                       for a, b in zip(g, w)) or len(g) != len(w):
                diffs.append("%s %s: %r, pydicom %r" % (p, node.vr, got, vals))
            return
        w = [printable(str(x)) for x in vals]
        if node.vr in SINGLE_VALUED:
            ok = [got[0].rstrip(" ")] == [x.rstrip(" ") for x in w]
        else:
            ok = [x.strip(" ") for x in got] == [x.strip(" ") for x in w]
        if not ok:
            diffs.append("%s %s: %r, pydicom %r" % (p, node.vr, got, w))
        return
    # Numbers: up to 16 values, then "...".
    vals = list(elem.value) if isinstance(elem.value, (MultiValue, list)) else [elem.value]
    more = v.endswith("...")
    shown = (v[:-3] if more else v).split("\\")
    if more != (len(vals) > 16) or len(shown) != min(16, len(vals)):
        diffs.append("%s %s: %d values shown%s, pydicom has %d" %
                     (p, node.vr, len(shown), " and ..." if more else "", len(vals)))
        return
    for s, x in zip(shown, vals):
        if node.vr == "AT":
            ok = s == "(%04X,%04X)" % (int(x) >> 16, int(x) & 0xFFFF)
        elif node.vr in FLOAT_VRS:
            try:
                f = float(s)
            except ValueError:
                ok = False
            else:
                ok = f == x or (math.isnan(f) and math.isnan(x))
        else:
            try:
                ok = int(s) == int(x)
            except ValueError:
                ok = False
        if not ok:
            diffs.append("%s %s: %s, pydicom %r" % (p, node.vr, v, vals[:16]))
            return


def check_nodes(nodes, ds, little, charset_ascii, path, diffs):
    seen = set()
    for n in nodes:
        seen.add(n.tag)
        check_node(n, ds, little, charset_ascii, path, diffs)
    missing = [t for t in ds.keys() if int(t) not in seen]
    if missing:
        diffs.append("%s: pydicom has %s that vetpacs does not print" %
                     (path or "top level", ", ".join(tagstr(int(t)) for t in missing[:8])))


@pytest.mark.parametrize("i", GOOD_IDS)
def test_dump_values_match_pydicom(i, dumps, originals):
    lines = get_dump(dumps, i)
    assert lines and lines[0].startswith("# transfer syntax "), lines[:2]
    ds = originals(i)
    want_ts = ts_of(ds)
    if want_ts:
        assert lines[0].split()[3] == want_ts
    nodes = parse_dump_lines(lines)
    meta, rest = dump_meta_and_dataset(nodes)
    cs = ds.get("SpecificCharacterSet", "")
    cs = [cs] if isinstance(cs, str) else list(cs)
    charset_ascii = all(c in ("", "ISO_IR 6", "ISO 2022 IR 6") for c in cs)
    diffs = []
    check_nodes(meta, ds.file_meta, True, True, "meta ", diffs)
    check_nodes(rest, ds, is_little(ds), charset_ascii, "", diffs)
    assert not diffs, "%d differences:\n  %s" % (len(diffs), "\n  ".join(diffs[:30]))
