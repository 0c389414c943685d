# SPDX-License-Identifier: MIT
"""Writes the seeds of fuzz/fuzz_jpeg12.c into fuzz/seeds/jpeg12/: small 12-bit extended DCT
streams from dcmcjpeg (+ee; monochrome, YCbCr 4:2:2, 4:4:4, 4:1:1) and the same streams
rewritten by tests/integration/test_jpeg12.py's recoder (restart intervals, one scan per
component with tables redefined, 16-bit codes, COM/APP segments and fill bytes).
Run: /usr/bin/python3 fuzz/make_jpeg12_seeds.py"""
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "integration"))
import test_jpeg12 as t  # noqa: E402

OUT = HERE / "seeds" / "jpeg12"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        made = {}
        src = t.write_native(d / "m.dcm", t.smooth(1, (1, 19, 23), 30))
        made["mono_q90"] = t.compress(src, d / "m90.dcm", "+q", "90")
        made["mono_q25"] = t.compress(src, d / "m25.dcm", "+q", "25")
        src = t.write_native(d / "o.dcm", t.smooth(2, (1, 1, 1), 0))
        made["mono_1x1"] = t.compress(src, d / "o1.dcm")
        src = t.write_native(d / "c.dcm", t.rgb(3, (1, 17, 21), 40), "RGB")
        for opt in ("+s2", "+s4", "+n1"):
            made["rgb" + opt[1:]] = t.compress(src, d / f"c{opt[1:]}.dcm", opt, "+q", "75")
        for name, path in made.items():
            _, frags = t.stream_fragments(path)
            (OUT / name).write_bytes(frags[0])
        mono = (OUT / "mono_q90").read_bytes()
        ybr = (OUT / "rgbs2").read_bytes()
        (OUT / "mono_restart").write_bytes(t.recode(mono, restart=2, rst_fill=True))
        (OUT / "mono_long_extras").write_bytes(t.recode(mono, long_codes=True, extras=True))
        (OUT / "rgbs2_planes_restart").write_bytes(t.recode(ybr, planes=True, restart=3))
        (OUT / "rgbs2_restart1").write_bytes(t.recode(ybr, restart=1))
    for f in sorted(os.listdir(OUT)):
        print(f, (OUT / f).stat().st_size)


if __name__ == "__main__":
    main()
