#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes fuzz/seeds/codecs/: small real JPEG, JPEG-LS, JPEG 2000 and HTJ2K streams made by
dcmcjpeg, dcmcjpls, gdcmconv and ojph_compress, each behind the 5-byte header fuzz_codecs.c
reads (decoder, rows - 1, columns - 1, layout, Bits Stored - 1). Run from the repository."""
import os
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import test_codecs as T  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds", "codecs")


def header(dec, rows, cols, spp, ba, bs, signed, pi_index):
    layout = (1 if spp == 3 else 0) | (2 if ba == 16 else 0) | (pi_index << 2) | (signed << 4)
    return bytes([dec, rows - 1, cols - 1, layout, bs - 1])


def main():
    os.makedirs(OUT, exist_ok=True)
    tmp = tempfile.mkdtemp()
    p = lambda n: os.path.join(tmp, n)  # noqa: E731
    seeds = {}
    cases = [  # name, geometry, tool args, decoder, photometric index
        ("jpeg_base", (16, 24, 8, 8, False, 1), ["dcmcjpeg", "+eb"], 0, 0),
        ("jpeg_prog", (16, 24, 8, 8, False, 1), ["dcmcjpeg", "+ep"], 0, 0),
        ("jpeg_ybr", (16, 18, 8, 8, False, 3), ["dcmcjpeg", "+eb"], 0, 2),
        ("jpeg_rgb", (16, 18, 8, 8, False, 3), ["dcmcjpeg", "+eb", "+cr"], 0, 1),
        ("jpeg_16", (12, 10, 16, 8, False, 1), ["dcmcjpeg", "+eb"], 0, 0),
        ("jls_12", (16, 20, 16, 12, False, 1), ["dcmcjpls"], 1, 0),
        ("jls_signed", (16, 20, 16, 12, True, 1), ["dcmcjpls"], 1, 0),
        ("jls_rgb_none", (12, 10, 8, 8, False, 3), ["dcmcjpls", "+in"], 1, 1),
        ("jls_rgb_line", (12, 10, 8, 8, False, 3), ["dcmcjpls"], 1, 1),
        ("jls_near", (16, 20, 8, 8, False, 1), ["dcmcjpls", "+en"], 1, 0),
        ("j2k_16", (16, 20, 16, 16, False, 1), ["gdcmconv", "--j2k"], 2, 0),
        ("j2k_signed", (16, 20, 16, 12, True, 1), ["gdcmconv", "--j2k"], 2, 0),
        ("j2k_rgb", (12, 10, 8, 8, False, 3), ["gdcmconv", "--j2k"], 2, 3),
        ("j2k_lossy", (16, 20, 16, 12, False, 1), ["gdcmconv", "--j2k", "--lossy", "-q", "30"],
         2, 0),
    ]
    for name, (rows, cols, ba, bs, signed, spp), cmd, dec, pi in cases:
        a = T.image(rows, cols, ba, bs, signed, spp)
        T.native_file(p("src.dcm"), a, bs, signed)
        subprocess.run(cmd + [p("src.dcm"), p("c.dcm")], check=True, capture_output=True)
        seeds[name] = header(dec, rows, cols, spp, ba, bs, signed, pi) + T.stream_of(p("c.dcm"))
    for name, rows, cols, spp in (("htj2k_8", 16, 20, 1), ("htj2k_rgb", 12, 10, 3)):
        a = T.image(rows, cols, 8, 8, False, spp)
        from pathlib import Path
        inp, _ = T._ojph_input(Path(tmp), a, 8, False)
        subprocess.run(["ojph_compress", "-i", str(inp), "-o", p("o.j2c"), "-reversible",
                        "true"], check=True, capture_output=True)
        seeds[name] = (header(2, rows, cols, spp, 8, 8, False, 3 if spp == 3 else 0)
                       + open(p("o.j2c"), "rb").read())
    for name, data in seeds.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print(len(seeds), "seeds in", OUT)


if __name__ == "__main__":
    main()
