# SPDX-License-Identifier: MIT
"""`vetpacs user ...` and `vetpacs audit`: users, roles and API tokens kept in the real index of
a data folder (migration 5), and the audit log of what the commands changed.

- test_add_list_remove: add, list (tab-separated, header), remove; names unique ignoring case.
- test_passwords_are_argon2id: the stored hash is an argon2id string at the INTERACTIVE cost,
  without the password; passwd replaces it; --password-stdin reads one line.
- test_bad_values_exit_2 / test_failures_exit_1: unknown role, weak or missing password, bad
  name, bad use exit 2; a taken name, an unknown user, no archive exit 1; nothing is written.
- test_tokens: `user token` prints vpt_ + 43 base64url characters once; the index keeps only
  its BLAKE2b-256 digest (checked with hashlib); tokens lists them; revoke-token by ID, label
  and --all; removing a user removes its tokens.
- test_set_role_and_disable: `user set` changes the role and the disabled flag.
- test_audit: every change is in the audit log, newest first, with client "cli" and the OS
  user; filters --action, --user, --resource, --since/--until (ISO and relative), --limit;
  the log refuses UPDATE and DELETE.
- test_default_data_folder: VETPACS_DATA is used without --data.
- test_existing_archive: a folder made by `vetpacs import` (older index) gets the tables.
- test_while_the_server_runs: the commands and `vetpacs serve` share the data folder while
  objects are sent to the server: every command succeeds, every object is stored, the server
  stops cleanly.

Exit statuses: 0 success, 1 a failure, 2 bad use or a bad value.
"""
import hashlib
import os
import re
import sqlite3
import subprocess
import threading

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from conftest import SLOW, TIMEOUT, VETPACS_BIN, run, sanitizer_env
from server_util import server  # noqa: F401  (fixture)

TOKEN_RE = re.compile(r"^vpt_[A-Za-z0-9_-]{43}$")
AUDIT_HEADER = ["Time", "User", "Action", "ResourceType", "Resource", "Client", "Outcome",
                "Status", "Detail"]


def ok(args, **kw):
    r = run(args, **kw)
    assert r.returncode == 0, r.describe()
    return r


def table(r, header=None):
    """Tab-separated output as a list of dicts."""
    lines = r.stdout.decode("utf-8").splitlines()
    assert lines, r.describe()
    cols = lines[0].split("\t")
    if header:
        assert cols == header
    rows = []
    for ln in lines[1:]:
        cells = ln.split("\t")
        assert len(cells) == len(cols), ln
        rows.append(dict(zip(cols, cells)))
    return rows


def users(data):
    return {u["Name"]: u for u in table(ok(["user", "list", "--data", data]),
                                        ["Name", "Role", "Status", "Created", "Updated"])}


def add(data, name, role="vet", password="long-enough-1"):
    return ok(["user", "add", name, "--role", role, "--password", password, "--data", data])


def with_stdin(args, text, env=None):
    e = sanitizer_env()
    e.update(env or {})
    return subprocess.run([VETPACS_BIN] + args, input=text.encode(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=TIMEOUT, env=e)


def db(data):
    return sqlite3.connect(os.path.join(data, "index.db"))


def audit(data, *extra):
    return table(ok(["audit", "--data", data] + list(extra)), AUDIT_HEADER)


def test_add_list_remove(tmp_path):
    data = str(tmp_path / "data")
    r = add(data, "Alice", "radiologist")
    assert b"Alice" in r.stdout
    add(data, "bob", "read-only")
    u = users(data)
    assert list(u) == ["Alice", "bob"]
    assert u["Alice"]["Role"] == "radiologist" and u["Alice"]["Status"] == "enabled"
    assert u["bob"]["Role"] == "read-only"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", u["bob"]["Created"])
    r = run(["user", "add", "ALICE", "--role", "vet", "--password", "long-enough-2",
             "--data", data])
    assert r.returncode == 1 and "exists" in r.stderr, r.describe()
    ok(["user", "remove", "alice", "--data", data])
    assert list(users(data)) == ["bob"]
    r = run(["user", "remove", "alice", "--data", data])
    assert r.returncode == 1 and "no user" in r.stderr, r.describe()


def test_passwords_are_argon2id(tmp_path):
    data = str(tmp_path / "data")
    add(data, "vet1", password="first-password")
    with db(data) as c:
        (h1,) = c.execute("SELECT pw_hash FROM users WHERE name = 'vet1'").fetchone()
    assert h1.startswith("$argon2id$v=19$m=65536,t=2,p=1$"), h1
    assert "first-password" not in h1
    ok(["user", "passwd", "vet1", "--password", "second-password", "--data", data])
    with db(data) as c:
        (h2,) = c.execute("SELECT pw_hash FROM users WHERE name = 'vet1'").fetchone()
    assert h2 != h1 and h2.startswith("$argon2id$")
    # from standard input: one line, its line end not part of the password
    p = with_stdin(["user", "add", "vet2", "--role", "vet", "--password-stdin", "--data", data],
                   "stdin-password\n")
    assert p.returncode == 0, p.stderr
    p = with_stdin(["user", "passwd", "vet2", "--password-stdin", "--data", data], "")
    assert p.returncode == 2 and b"no password" in p.stderr
    p = with_stdin(["user", "passwd", "vet2", "--password-stdin", "--data", data], "short\r\n")
    assert p.returncode == 2 and b"shorter than 8" in p.stderr
    p = with_stdin(["user", "passwd", "vet2", "--password-stdin", "--data", data],
                   "x" * 2000 + "\n")
    assert p.returncode == 2 and b"longer than" in p.stderr
    assert set(users(data)) == {"vet1", "vet2"}


BAD = [
    (["--role", "root", "--password", "long-enough"], "unknown role"),
    (["--password", "long-enough"], "--role is required"),
    (["--role", "vet"], "--password"),
    (["--role", "vet", "--password", "x", "--password-stdin"], "--password"),
    (["--role", "vet", "--password", ""], "empty"),
    (["--role", "vet", "--password", "seven77"], "shorter than 8"),
    (["--role", "vet", "--password", "NEWUSER1"], "user name"),
    (["--role", "vet", "--password", "long-enough", "--bogus"], "unknown"),
    (["--role"], "needs a value"),
]


def test_bad_values_exit_2(tmp_path):
    data = str(tmp_path / "data")
    add(data, "keep")
    for extra, why in BAD:
        r = run(["user", "add", "newuser1", "--data", data] + extra)
        assert r.returncode == 2 and why in r.stderr, r.describe()
    for name in ["two words", "", "x" * 65, "caf\u00e9"]:
        r = run(["user", "add", name, "--role", "vet", "--password", "long-enough", "--data",
                 data])
        assert r.returncode == 2 and "user name" in r.stderr, r.describe()
    for args in (["user"], ["user", "frobnicate"], ["user", "list", "extra"],
                 ["user", "set", "keep", "--data", data],
                 ["user", "set", "keep", "--disable", "--enable", "--data", data],
                 ["user", "set", "keep", "--role", "god", "--data", data],
                 ["user", "revoke-token", "keep", "--data", data],
                 ["user", "revoke-token", "keep", "abc", "--data", data],
                 ["user", "revoke-token", "keep", "1", "--all", "--data", data],
                 ["audit", "--since", "yesterday", "--data", data],
                 ["audit", "--since", "2026-13-01", "--data", data],
                 ["audit", "--limit", "-1", "--data", data],
                 ["audit", "--frob", "1", "--data", data]):
        r = run(args)
        assert r.returncode == 2, r.describe()
    assert list(users(data)) == ["keep"]


def test_failures_exit_1(tmp_path):
    data = str(tmp_path / "data")
    missing = str(tmp_path / "nowhere")
    for args in (["user", "list"], ["user", "remove", "x"], ["audit"],
                 ["user", "token", "x"]):
        r = run(args + ["--data", missing])
        assert r.returncode == 1 and "no archive" in r.stderr, r.describe()
    assert not os.path.exists(missing)
    add(data, "keep")
    for args in (["user", "passwd", "ghost", "--password", "long-enough"],
                 ["user", "set", "ghost", "--role", "vet"],
                 ["user", "token", "ghost"], ["user", "tokens", "ghost"],
                 ["user", "revoke-token", "ghost", "--all"],
                 ["user", "revoke-token", "keep", "--all"]):
        r = run(args + ["--data", data])
        assert r.returncode == 1, r.describe()


def test_tokens(tmp_path):
    data = str(tmp_path / "data")
    add(data, "pms", "technician")
    add(data, "other", "vet")
    tokens = []
    for label in ("practice system", "practice system", None):
        args = ["user", "token", "pms", "--data", data] + (["--label", label] if label else [])
        r = ok(args)
        out = r.stdout.decode().splitlines()
        assert len(out) == 1 and TOKEN_RE.match(out[0]), out
        assert "shown once" in r.stderr
        tokens.append(out[0])
    assert len(set(tokens)) == 3
    # only digests are stored: BLAKE2b-256 of the whole token string
    with db(data) as c:
        stored = {bytes(h) for (h,) in c.execute("SELECT hash FROM api_token")}
    assert stored == {hashlib.blake2b(t.encode(), digest_size=32).digest() for t in tokens}
    raw = open(os.path.join(data, "index.db"), "rb").read()
    wal = os.path.join(data, "index.db-wal")
    raw += open(wal, "rb").read() if os.path.exists(wal) else b""
    assert not any(t.encode() in raw or t[4:].encode() in raw for t in tokens)
    listed = table(ok(["user", "tokens", "pms", "--data", data]),
                   ["ID", "Label", "Created", "LastUsed"])
    assert [t["Label"] for t in listed] == ["practice system", "practice system", ""]
    assert all(t["LastUsed"] == "-" for t in listed)
    first_id = listed[0]["ID"]
    r = ok(["user", "revoke-token", "pms", first_id, "--data", data])
    assert b"1 token revoked" in r.stdout
    r = run(["user", "revoke-token", "pms", first_id, "--data", data])
    assert r.returncode == 1, r.describe()
    r = ok(["user", "revoke-token", "pms", "--label", "practice system", "--data", data])
    assert b"1 token revoked" in r.stdout
    assert [t["Label"] for t in table(ok(["user", "tokens", "pms", "--data", data]))] == [""]
    ok(["user", "token", "other", "--data", data])
    ok(["user", "remove", "other", "--data", data])  # its tokens go with it
    with db(data) as c:
        assert c.execute("SELECT count(*) FROM api_token").fetchone() == (1,)
    r = ok(["user", "revoke-token", "pms", "--all", "--data", data])
    assert b"1 token revoked" in r.stdout
    assert table(ok(["user", "tokens", "pms", "--data", data])) == []


def test_set_role_and_disable(tmp_path):
    data = str(tmp_path / "data")
    add(data, "tech", "technician")
    ok(["user", "set", "tech", "--role", "Radiologist", "--data", data])
    assert users(data)["tech"]["Role"] == "radiologist"
    ok(["user", "set", "TECH", "--disable", "--data", data])
    assert users(data)["tech"]["Status"] == "disabled"
    ok(["user", "set", "tech", "--enable", "--role", "vet", "--data", data])
    u = users(data)["tech"]
    assert (u["Role"], u["Status"]) == ("vet", "enabled")
    assert u["Updated"] >= u["Created"]


def test_audit(tmp_path):
    data = str(tmp_path / "data")
    env = {"USER": "tester"}
    p = with_stdin(["user", "add", "amy", "--role", "admin", "--password-stdin", "--data", data],
                   "amy-password\n", env)
    assert p.returncode == 0, p.stderr
    add(data, "ben", "vet")
    ok(["user", "token", "ben", "--label", "ris", "--data", data])
    ok(["user", "set", "ben", "--disable", "--data", data])
    ok(["user", "passwd", "ben", "--password", "new-password", "--data", data])
    ok(["user", "remove", "ben", "--data", data])
    rows = audit(data)
    assert [r["Action"] for r in rows] == ["user.remove", "user.passwd", "user.set",
                                           "token.create", "user.add", "user.add"]
    assert all(r["Client"] == "cli" and r["Outcome"] == "success" for r in rows)
    assert [r["Resource"] for r in rows] == ["ben"] * 5 + ["amy"]
    assert rows[-1]["User"] == "tester" and rows[-1]["Detail"] == "admin"
    assert rows[3]["Detail"].endswith("ris")
    assert [r["Action"] for r in audit(data, "--action", "user.add")] == ["user.add"] * 2
    assert [r["Resource"] for r in audit(data, "--user", "TESTER")] == ["amy"]
    assert len(audit(data, "--resource", "ben")) == 5
    assert len(audit(data, "--limit", "2")) == 2
    assert len(audit(data, "--limit", "0")) == 6
    assert len(audit(data, "--since", "1h")) == 6
    assert audit(data, "--since", "2999-01-01") == []
    assert audit(data, "--until", "2000-01-01T00:00:00Z") == []
    assert len(audit(data, "--since", "2000-01-01T00:00", "--until", "2999-12-31")) == 6
    # append-only, whoever opens the index
    with db(data) as c:
        for q in ("UPDATE audit SET user = 'x'", "DELETE FROM audit"):
            try:
                c.execute(q)
                raise AssertionError(q + " succeeded")
            except sqlite3.DatabaseError as e:
                assert "append-only" in str(e)
    assert len(audit(data)) == 6


def test_default_data_folder(tmp_path):
    data = str(tmp_path / "env-data")
    e = {"VETPACS_DATA": data}
    p = with_stdin(["user", "add", "envuser", "--role", "vet", "--password-stdin"],
                   "env-password\n", e)
    assert p.returncode == 0, p.stderr
    assert os.path.exists(os.path.join(data, "index.db"))
    assert list(users(data)) == ["envuser"]


def write_object(path, i):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "Pet^%d" % i
    ds.PatientID = "P%d" % i
    ds.Modality = "OT"
    ds.is_little_endian, ds.is_implicit_VR = True, False
    pydicom.dcmwrite(path, ds, write_like_original=False)
    return path


def test_existing_archive(tmp_path):
    """A folder whose index an earlier command made gets the user tables at the next open."""
    data = str(tmp_path / "data")
    f = write_object(str(tmp_path / "a.dcm"), 1)
    ok(["import", "--data", data, f])
    with db(data) as c:
        c.executescript("DROP TABLE audit; DROP TABLE session; DROP TABLE api_token;"
                        " DROP TABLE users; PRAGMA user_version = 4;")
    add(data, "late", "vet")
    with db(data) as c:
        # migrations from 5 on ran (later ones may follow: at least the users' one)
        assert c.execute("PRAGMA user_version").fetchone()[0] >= 5
        assert c.execute("SELECT count(*) FROM instance").fetchone() == (1,)
    assert list(users(data)) == ["late"]


def test_while_the_server_runs(server, tmp_path):  # noqa: F811
    data = str(tmp_path / "data")
    srv = server(data=data)
    files = [write_object(str(tmp_path / ("o%d.dcm" % i)), i) for i in range(40)]
    results = []

    def send():
        for k in range(0, len(files), 5):
            results.append(run(["send", "--call", srv.aet, "127.0.0.1", str(srv.port)]
                               + files[k:k + 5], timeout=60 * SLOW))

    sender = threading.Thread(target=send)
    sender.start()
    try:
        for i in range(8):
            add(data, "u%d" % i, "vet")
            ok(["user", "token", "u%d" % i, "--data", data])
            ok(["user", "list", "--data", data])
            ok(["audit", "--limit", "5", "--data", data])
            if i % 2:
                ok(["user", "remove", "u%d" % (i - 1), "--data", data])
    finally:
        sender.join()
    for r in results:
        assert r.returncode == 0, r.describe()
    assert srv.alive(), srv.log[-3000:]
    assert list(users(data)) == ["u%d" % i for i in range(1, 8, 2)]
    assert len(audit(data, "--action", "user.add", "--limit", "0")) == 8
    with db(data) as c:
        assert c.execute("SELECT count(*) FROM instance").fetchone() == (40,)
    r = ok(["check", "--data", data])
    # and the server goes on serving after the commands wrote the index
    f = write_object(str(tmp_path / "late.dcm"), 99)
    ok(["send", "--call", srv.aet, "127.0.0.1", str(srv.port), f], timeout=30 * SLOW)
    with db(data) as c:
        assert c.execute("SELECT count(*) FROM instance").fetchone() == (41,)
