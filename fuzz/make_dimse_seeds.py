#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes the seeds of fuzz/fuzz_dimse.c into fuzz/seeds/dimse (run once; outputs are checked
in). Standard library only. Command sets are built by hand in Implicit VR Little Endian
(PS3.7 6.3.1, E.1). A seed whose first byte is even holds one command set; odd first byte: a
list of PDV fragments, each a control byte (bit 0 command, bit 1 last, bit 2 context 3
instead of 1, bit 3 collect) and a length byte, then the bytes."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "seeds", "dimse")


def el(elem, value):
    if isinstance(value, int):
        value = struct.pack("<H", value)
    elif isinstance(value, str):
        value = value.encode("ascii")
    return struct.pack("<HHI", 0, elem, len(value)) + value


def ui(s):
    b = s.encode("ascii")
    return b + b"\0" if len(b) % 2 else b


def ae(s):
    b = s.encode("ascii")
    return b + b" " if len(b) % 2 else b


def command(*elements, group_length=True):
    body = b"".join(elements)
    if not group_length:
        return body
    return el(0x0000, struct.pack("<I", len(body))) + body


STORE_CR = "1.2.840.10008.5.1.4.1.1.1"
FIND = "1.2.840.10008.5.1.4.1.2.2.1"
MOVE = "1.2.840.10008.5.1.4.1.2.2.2"
GET = "1.2.840.10008.5.1.4.1.2.2.3"
ECHO = "1.2.840.10008.1.1"

COMMANDS = {
    "echo-rq": command(el(0x0002, ui(ECHO)), el(0x0100, 0x0030), el(0x0110, 1), el(0x0800, 0x0101)),
    "echo-rsp": command(el(0x0002, ui(ECHO)), el(0x0100, 0x8030), el(0x0120, 1),
                        el(0x0800, 0x0101), el(0x0900, 0)),
    "store-rq": command(el(0x0002, ui(STORE_CR)), el(0x0100, 0x0001), el(0x0110, 2),
                        el(0x0700, 0), el(0x0800, 0x0001), el(0x1000, ui("2.25.12345")),
                        el(0x1030, ae("MOVESCU")), el(0x1031, 9)),
    "store-rsp": command(el(0x0002, ui(STORE_CR)), el(0x0100, 0x8001), el(0x0120, 2),
                         el(0x0800, 0x0101), el(0x0900, 0xB000),
                         el(0x0901, struct.pack("<HH", 0x0010, 0x0010)),
                         el(0x0902, ae("coerced")), el(0x0903, 1), el(0x1000, ui("2.25.12345"))),
    "find-rq": command(el(0x0002, ui(FIND)), el(0x0100, 0x0020), el(0x0110, 3), el(0x0700, 2),
                       el(0x0800, 0x0000)),
    "find-rsp": command(el(0x0002, ui(FIND)), el(0x0100, 0x8020), el(0x0120, 3),
                        el(0x0800, 0x0001), el(0x0900, 0xFF00)),
    "move-rq": command(el(0x0002, ui(MOVE)), el(0x0100, 0x0021), el(0x0110, 4),
                       el(0x0600, ae("STORESCP")), el(0x0700, 1), el(0x0800, 0x0001)),
    "move-rsp": command(el(0x0002, ui(MOVE)), el(0x0100, 0x8021), el(0x0120, 4),
                        el(0x0800, 0x0101), el(0x0900, 0xFF00), el(0x1020, 3), el(0x1021, 2),
                        el(0x1022, 0), el(0x1023, 1)),
    "get-rq": command(el(0x0002, ui(GET)), el(0x0100, 0x0010), el(0x0110, 5), el(0x0700, 0),
                      el(0x0800, 0x0001)),
    "get-rsp": command(el(0x0002, ui(GET)), el(0x0100, 0x8010), el(0x0120, 5),
                       el(0x0800, 0x0001), el(0x0900, 0xB000), el(0x1021, 2), el(0x1022, 1)),
    "cancel-rq": command(el(0x0100, 0x0FFF), el(0x0120, 3), el(0x0800, 0x0101)),
    # real-world variations
    "store-rq-no-gl": command(el(0x0002, ui(STORE_CR)), el(0x0100, 0x0001), el(0x0110, 2),
                              el(0x0700, 0), el(0x0800, 0x0001), el(0x1000, "1.2.3"),
                              group_length=False),
    "store-rq-extra": command(el(0x0001, struct.pack("<I", 0)), el(0x0002, STORE_CR + " "),
                              el(0x0100, 0x0001), el(0x0110, 2), el(0x0700, 0),
                              el(0x0800, 0x0001), el(0x1000, ui("1.2.840.01.5")),
                              el(0x1020, 1), el(0x4000, "comment ")),
    "n-get-rq": command(el(0x0003, ui(STORE_CR)), el(0x0100, 0x0110), el(0x0110, 6),
                        el(0x0800, 0x0101)),
    "bad-msgid-ul": command(el(0x0002, ui(ECHO)), el(0x0100, 0x0030),
                            el(0x0110, struct.pack("<I", 1)), el(0x0800, 0x0101)),
}


def frag(ctl, data):
    out = b""
    while True:
        chunk, data = data[:255], data[255:]
        last = not data
        c = ctl if last else ctl & ~2
        out += bytes([c, len(chunk)]) + chunk
        if last:
            return out


def split(ctl, data, n):
    out = b""
    parts = [data[i:i + n] for i in range(0, len(data), n)] or [b""]
    for i, p in enumerate(parts):
        c = ctl | (2 if i == len(parts) - 1 else 0)
        out += bytes([c, len(p)]) + p
    return out


FRAGMENTS = {
    "frag-echo": frag(3, COMMANDS["echo-rq"]),
    "frag-store-stream": split(1, COMMANDS["store-rq"], 7) + split(0, bytes(range(200)), 33),
    "frag-store-collect": split(1 | 8 | 0x30, COMMANDS["store-rq"], 40) + split(0, b"\1" * 300, 100),
    "frag-find-two": frag(3, COMMANDS["find-rq"]) + split(0, b"\x08\x00\x52\x00\x06\x00\x00\x00STUDY ", 5)
    + frag(3, COMMANDS["cancel-rq"]),
    "frag-data-first": split(0, b"xxxx", 2) + frag(3, COMMANDS["echo-rq"]),
    "frag-ctx-switch": split(1, COMMANDS["store-rq"], 50)[:60] + split(5, COMMANDS["store-rq"], 50),
    "frag-bad-command": frag(3, COMMANDS["bad-msgid-ul"]) + frag(3, COMMANDS["n-get-rq"])
    + frag(3, COMMANDS["echo-rq"]),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in COMMANDS.items():
        with open(os.path.join(OUT, "cmd-%s.bin" % name), "wb") as f:
            f.write(b"\0" + data)
    for name, data in FRAGMENTS.items():
        with open(os.path.join(OUT, "%s.bin" % name), "wb") as f:
            f.write(b"\1" + data)
    print("wrote %d seeds to %s" % (len(COMMANDS) + len(FRAGMENTS), OUT))


if __name__ == "__main__":
    main()
