# SPDX-License-Identifier: MIT
"""The vetpacs command line: help, version, exit statuses, error lines, tojson, convert.

Exit statuses: 0 success, 1 a bad or missing file (one stderr line naming it), 2 bad use.
"""
import json
import os
import re
import shutil
import stat

import pytest

from conftest import PYDICOM_DATA, VETPACS_BIN, pydicom_read, run

MR_SMALL = os.path.join(PYDICOM_DATA, "test_files", "MR_small.dcm")
RLE = os.path.join(PYDICOM_DATA, "test_files", "MR_small_RLE.dcm")
VRS = {"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF",
       "OL", "OV", "OW", "PN", "SH", "SL", "SQ", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN",
       "UR", "US", "UT", "UV"}


@pytest.fixture(autouse=True)
def _binary(vetpacs_bin):
    return vetpacs_bin


def one_error_line(r, tool, path=None):
    lines = r.stderr_lines
    assert len(lines) == 1, "expected one stderr line: %s" % r.describe()
    prefix = "vetpacs %s: " % tool + ("%s: " % path if path else "")
    assert lines[0].startswith(prefix), lines[0]
    return lines[0]


# ---------------------------------------------------------------------------------------------
# Help, version, bad use

@pytest.mark.parametrize("arg", ["--help", "-h", "help"])
def test_help(arg):
    r = run([arg])
    assert r.returncode == 0, r.describe()
    out = r.text
    assert "Usage: vetpacs COMMAND" in out
    for cmd in ("dump", "tojson", "convert", "import", "check", "--version"):
        assert re.search(r"^\s+vetpacs %s\b" % re.escape(cmd), out, re.M), cmd
    assert r.stderr == ""


def test_version():
    r = run(["--version"])
    assert r.returncode == 0, r.describe()
    assert re.match(r"^vetpacs \d+\.\d+\.\d+ ", r.text), r.text
    assert "VETPACS_010" in r.text
    assert "2.25.124558876457220195531134696587970400752" in r.text
    assert r.text.count("\n") == 1


def test_no_arguments():
    r = run([])
    assert r.returncode == 2
    assert "Usage" in r.stderr and r.stdout == b""


def test_unknown_command():
    r = run(["frobnicate", MR_SMALL])
    assert r.returncode == 2, r.describe()
    lines = r.stderr_lines
    assert len(lines) == 1 and "frobnicate" in lines[0], r.describe()
    assert r.stdout == b""


@pytest.mark.parametrize("args", [["dump"], ["tojson"], ["convert"], ["convert", MR_SMALL],
                                  ["dump", "--bogus", MR_SMALL],
                                  ["tojson", "--bogus", MR_SMALL],
                                  ["convert", "--bogus", MR_SMALL, "/tmp/x.dcm"],
                                  ["tojson", MR_SMALL, MR_SMALL]])
def test_bad_use_exits_2(args):
    r = run(args)
    assert r.returncode == 2, r.describe()
    assert r.stdout == b""
    assert r.stderr_lines, "no explanation on stderr"


def test_several_inputs_need_a_folder(tmp_path):
    target = tmp_path / "not_a_folder.dcm"
    r = run(["convert", MR_SMALL, MR_SMALL, str(target)])
    assert r.returncode == 2, r.describe()
    assert not target.exists()


# ---------------------------------------------------------------------------------------------
# Missing and unreadable files

@pytest.mark.parametrize("tool", ["dump", "tojson", "convert"])
def test_missing_file(tool, tmp_path):
    path = str(tmp_path / "no_such_file.dcm")
    args = [tool, path] + ([str(tmp_path / "out.dcm")] if tool == "convert" else [])
    r = run(args)
    assert r.returncode == 1, r.describe()
    line = one_error_line(r, tool, path)
    assert "No such file" in line
    assert r.stdout == b""


@pytest.mark.parametrize("tool", ["dump", "tojson", "convert"])
def test_missing_file_named_once(tool, tmp_path):
    """The error line is `vetpacs TOOL: FILE: reason`, the file named once."""
    path = str(tmp_path / "no_such_file.dcm")
    args = [tool, path] + ([str(tmp_path / "out.dcm")] if tool == "convert" else [])
    r = run(args)
    line = one_error_line(r, tool, path)
    assert line.count(path) == 1, line


def test_folder_as_input(tmp_path):
    r = run(["dump", str(tmp_path)])
    assert r.returncode == 1, r.describe()
    one_error_line(r, "dump", str(tmp_path))


def test_dump_several_files_one_bad(tmp_path, corpus):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\x7f1.2")
    files = [MR_SMALL, str(bad), corpus["vet_cat_impl.dcm"]]
    r = run(["dump"] + files)
    assert r.returncode == 1, r.describe()
    line = one_error_line(r, "dump", str(bad))
    assert re.search(r"offset \d+|\([0-9A-F]{4},[0-9A-F]{4}\)", line), line
    headers = [ln[2:] for ln in r.text.splitlines() if ln.startswith("# /")]
    assert headers == [MR_SMALL, corpus["vet_cat_impl.dcm"]]


def test_dump_format(corpus):
    r = run(["dump", corpus["vet_dog_expl.dcm"]])
    assert r.returncode == 0, r.describe()
    lines = r.text.splitlines()
    assert lines[0] == "# transfer syntax 1.2.840.10008.1.2.1"
    assert lines[1].startswith("(0002,0000) UL 4 ")
    assert "(0010,0010) PN 10 [Smith^Rex] PatientName" in lines
    assert "(0010,2201) LO 22 [Canis lupus familiaris] PatientSpeciesDescription" in lines
    assert "(0010,2298) CS 6 [OWNER] ResponsiblePersonRole" in lines
    k = lines.index("(0010,2202) SQ d/l 1 items PatientSpeciesCodeSequence")
    assert lines[k + 1] == "  (FFFE,E000) na Item #1"
    assert lines[k + 2] == "    (0008,0100) SH 10 [448771007] CodeValue"


def test_dump_width(corpus):
    f = corpus["allvr_expl.dcm"]
    full = run(["dump", "--width", "100000", f]).text
    cut = run(["dump", "--width", "5", f]).text
    assert "[AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA]" in full
    assert "[AAAAA...] LongCodeValue" in cut
    default = run(["dump", f]).text
    assert "[" + "A" * 64 + "...] LongCodeValue" in default


def test_dump_encapsulated(corpus):
    r = run(["dump", corpus["enc_fragments_bot.dcm"]])
    assert r.returncode == 0, r.describe()
    lines = r.text.splitlines()
    k = next(n for n, ln in enumerate(lines) if ln.startswith("(7FE0,0010) OB u/l 9 fragments"))
    assert lines[k + 1] == "  (FFFE,E000) pi 16 Basic Offset Table #0"
    assert all(ln.startswith("  (FFFE,E000) pi ") for ln in lines[k + 1:k + 10])


# ---------------------------------------------------------------------------------------------
# tojson

def check_json_dataset(obj, path="$"):
    assert isinstance(obj, dict), path
    for key, el in obj.items():
        assert re.match(r"^[0-9A-F]{8}$", key), "%s: key %r" % (path, key)
        assert isinstance(el, dict) and el.get("vr") in VRS, "%s.%s: %r" % (path, key, el)
        forms = [k for k in ("Value", "InlineBinary", "BulkDataURI") if k in el]
        assert len(forms) <= 1, "%s.%s: %r" % (path, key, forms)
        if "Value" in el:
            assert isinstance(el["Value"], list) and el["Value"], "%s.%s" % (path, key)
            if el["vr"] == "SQ":
                for k, item in enumerate(el["Value"]):
                    check_json_dataset(item, "%s.%s[%d]" % (path, key, k))
            elif el["vr"] == "PN":
                for v in el["Value"]:
                    assert v is None or (isinstance(v, dict) and set(v) <= {
                        "Alphabetic", "Ideographic", "Phonetic"}), "%s.%s: %r" % (path, key, v)
        if "InlineBinary" in el:
            assert isinstance(el["InlineBinary"], str)


JSON_INPUTS = ["vet_dog_expl.dcm", "vet_cat_big.dcm", "vet_horse_defl.dcm", "vet_exotic_impl.dcm",
               "allvr_expl.dcm", "edge_impl.dcm", "enc_fragments_eot.dcm", "cs_ir192_expl.dcm"]


@pytest.mark.parametrize("name", JSON_INPUTS)
@pytest.mark.parametrize("opts", [[], ["--pretty"], ["--bulk-threshold", "0"]])
def test_tojson_valid(name, opts, corpus):
    r = run(["tojson"] + opts + [corpus[name]])
    assert r.returncode == 0, r.describe()
    obj = json.loads(r.stdout.decode("utf-8"))
    check_json_dataset(obj)
    ds = pydicom_read(corpus[name])
    assert obj.get("00100020", {}).get("Value") == [ds.PatientID]
    assert obj["00080018"]["Value"] == [ds.SOPInstanceUID]
    assert not any(k.startswith("0002") for k in obj), "meta group in the data set JSON"


@pytest.mark.parametrize("path", [MR_SMALL, RLE,
                                  os.path.join(PYDICOM_DATA, "test_files", "rtplan.dcm"),
                                  os.path.join(PYDICOM_DATA, "test_files", "waveform_ecg.dcm")])
def test_tojson_pydicom_files(path):
    r = run(["tojson", path])
    assert r.returncode == 0, r.describe()
    check_json_dataset(json.loads(r.stdout.decode("utf-8")))


def test_tojson_bad_file(tmp_path):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00UI\xff\x7f1.2")
    r = run(["tojson", str(bad)])
    assert r.returncode == 1
    one_error_line(r, "tojson", str(bad))
    assert r.stdout == b""


# ---------------------------------------------------------------------------------------------
# convert

def test_convert_into_folder(tmp_path, corpus):
    names = ["vet_dog_impl.dcm", "vet_cat_big.dcm", "vet_horse_defl.dcm", "edge_expl.dcm",
             "cs_ir87_expl.dcm"]
    out = tmp_path / "out"
    out.mkdir()
    r = run(["convert", "--ts", "explicit"] + [corpus[n] for n in names] + [str(out)])
    assert r.returncode == 0, r.describe()
    assert r.stderr == ""
    assert sorted(os.listdir(out)) == sorted(names), "no temporary files may remain"
    for n in names:
        new = pydicom_read(str(out / n))
        old = pydicom_read(corpus[n])
        assert new.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
        assert new.SOPInstanceUID == old.SOPInstanceUID
        assert new.PatientName == old.PatientName


def test_convert_folder_with_a_failure(tmp_path, corpus):
    """One input that cannot be written natively (encapsulated in a syntax without a decoder)
    does not stop the others; it gets one error line and no output, and no temporary file is
    left. An RLE input is decoded."""
    out = tmp_path / "out"
    out.mkdir()
    mpeg = pydicom_read(RLE)
    mpeg.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"
    bad = str(tmp_path / "mpeg.dcm")
    mpeg.save_as(bad)
    ins = [corpus["vet_dog_expl.dcm"], bad, RLE, corpus["vet_cat_expl.dcm"]]
    r = run(["convert", "--ts", "implicit"] + ins + [str(out)])
    assert r.returncode == 1, r.describe()
    one_error_line(r, "convert", bad)
    assert "unsupported transfer syntax: MPEG2" in r.stderr
    assert sorted(os.listdir(out)) == ["MR_small_RLE.dcm", "vet_cat_expl.dcm", "vet_dog_expl.dcm"]


@pytest.mark.parametrize("ts,uid", [("implicit", "1.2.840.10008.1.2"),
                                    ("explicit", "1.2.840.10008.1.2.1"),
                                    ("big", "1.2.840.10008.1.2.2"),
                                    ("deflated", "1.2.840.10008.1.2.1.99"),
                                    ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1"),
                                    ("keep", "1.2.840.10008.1.2.1")])
def test_convert_ts_names(ts, uid, tmp_path):
    out = tmp_path / "o.dcm"
    r = run(["convert", "--ts", ts, MR_SMALL, str(out)])
    assert r.returncode == 0, r.describe()
    assert pydicom_read(str(out)).file_meta.TransferSyntaxUID == uid


@pytest.mark.parametrize("ts", ["bogus", "1.2.3..4", "1." * 40 + "1"])
def test_convert_bad_ts(ts, tmp_path):
    out = tmp_path / "o.dcm"
    r = run(["convert", "--ts", ts, MR_SMALL, str(out)])
    assert r.returncode in (1, 2), r.describe()
    assert len(r.stderr_lines) == 1, r.describe()
    assert not out.exists()
    assert os.listdir(tmp_path) == []


def test_convert_in_place(tmp_path):
    f = tmp_path / "mr.dcm"
    shutil.copy(MR_SMALL, f)
    r = run(["convert", "--ts", "big", str(f), str(f)])
    assert r.returncode == 0, r.describe()
    ds = pydicom_read(str(f))
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.2"
    assert ds.PixelData[:4] == bytes(reversed(pydicom_read(MR_SMALL).PixelData[:2])) + \
        bytes(reversed(pydicom_read(MR_SMALL).PixelData[2:4]))


def test_convert_into_missing_folder(tmp_path):
    out = tmp_path / "no" / "such" / "o.dcm"
    r = run(["convert", MR_SMALL, str(out)])
    assert r.returncode == 1, r.describe()
    one_error_line(r, "convert")


def test_convert_output_mode_follows_umask(tmp_path):
    """A written file gets the usual 0666 & ~umask permissions (0644 under umask 022), like
    cp or dcmconv, not the 0600 of a private temporary file."""
    out = tmp_path / "o.dcm"
    old = os.umask(0o022)
    try:
        import subprocess
        p = subprocess.run([VETPACS_BIN, "convert", MR_SMALL, str(out)], capture_output=True)
    finally:
        os.umask(old)
    assert p.returncode == 0, p.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o644, oct(os.stat(out).st_mode)
