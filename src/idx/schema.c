/* SPDX-License-Identifier: MIT */
/*
 * Schema migrations as data: migration N brings the schema from version N-1 to N. Applied in
 * one transaction each at open, recorded in PRAGMA user_version. Never edit a released
 * migration: add the next one.
 */
#include "idx/internal.h"

static const char *const migrations[] = {
    /* 1: patient (the animal) / study / series / instance with the veterinary attributes
     * (CP-643) and every usual matching key as a column. Names keep NOCASE indexes for
     * case-insensitive person-name matching. */
    "CREATE TABLE patient ("
    "  id INTEGER PRIMARY KEY,"
    "  patient_id TEXT NOT NULL,"
    "  issuer TEXT NOT NULL DEFAULT '',"
    "  patient_name TEXT NOT NULL DEFAULT '',"
    "  pet_name TEXT NOT NULL DEFAULT '',"
    "  owner_name TEXT NOT NULL DEFAULT '',"
    "  owner_role TEXT NOT NULL DEFAULT '',"
    "  clinic TEXT NOT NULL DEFAULT '',"
    "  species TEXT NOT NULL DEFAULT '',"
    "  species_code TEXT NOT NULL DEFAULT '',"
    "  breed TEXT NOT NULL DEFAULT '',"
    "  breed_code TEXT NOT NULL DEFAULT '',"
    "  sex TEXT NOT NULL DEFAULT '',"
    "  birth_date TEXT NOT NULL DEFAULT '',"
    "  UNIQUE (patient_id, issuer));"
    "CREATE INDEX patient_name_i ON patient (patient_name COLLATE NOCASE);"
    "CREATE INDEX patient_pet_i ON patient (pet_name COLLATE NOCASE);"
    "CREATE INDEX patient_owner_i ON patient (owner_name COLLATE NOCASE);"
    "CREATE INDEX patient_clinic_i ON patient (clinic COLLATE NOCASE);"
    "CREATE INDEX patient_species_i ON patient (species COLLATE NOCASE);"
    "CREATE INDEX patient_species_code_i ON patient (species_code);"
    "CREATE INDEX patient_breed_i ON patient (breed COLLATE NOCASE);"
    "CREATE TABLE study ("
    "  id INTEGER PRIMARY KEY,"
    "  patient INTEGER NOT NULL REFERENCES patient (id),"
    "  study_uid TEXT NOT NULL UNIQUE,"
    "  study_date TEXT NOT NULL DEFAULT '',"
    "  study_time TEXT NOT NULL DEFAULT '',"
    "  accession TEXT NOT NULL DEFAULT '',"
    "  study_id TEXT NOT NULL DEFAULT '',"
    "  description TEXT NOT NULL DEFAULT '',"
    "  referring TEXT NOT NULL DEFAULT '',"
    "  sex_neutered TEXT NOT NULL DEFAULT '',"
    "  weight TEXT NOT NULL DEFAULT '',"
    "  modalities TEXT NOT NULL DEFAULT '',"
    "  n_series INTEGER NOT NULL DEFAULT 0,"
    "  n_instances INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX study_patient_i ON study (patient);"
    "CREATE INDEX study_date_i ON study (study_date, study_time);"
    "CREATE INDEX study_accession_i ON study (accession);"
    "CREATE INDEX study_id_i ON study (study_id);"
    "CREATE TABLE series ("
    "  id INTEGER PRIMARY KEY,"
    "  study INTEGER NOT NULL REFERENCES study (id),"
    "  series_uid TEXT NOT NULL UNIQUE,"
    "  modality TEXT NOT NULL DEFAULT '',"
    "  series_number TEXT NOT NULL DEFAULT '',"
    "  description TEXT NOT NULL DEFAULT '',"
    "  body_part TEXT NOT NULL DEFAULT '',"
    "  n_instances INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX series_study_i ON series (study);"
    "CREATE INDEX series_modality_i ON series (modality);"
    "CREATE TABLE instance ("
    "  id INTEGER PRIMARY KEY,"
    "  series INTEGER NOT NULL REFERENCES series (id),"
    "  sop_uid TEXT NOT NULL UNIQUE,"
    "  sop_class TEXT NOT NULL,"
    "  instance_number TEXT NOT NULL DEFAULT '',"
    "  transfer_syntax TEXT NOT NULL DEFAULT '',"
    "  frames INTEGER NOT NULL DEFAULT 1,"
    "  path TEXT NOT NULL,"
    "  size INTEGER NOT NULL,"
    "  checksum BLOB NOT NULL,"
    "  received_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')));"
    "CREATE INDEX instance_series_i ON instance (series);"
    "CREATE INDEX instance_class_i ON instance (sop_class);",
    /* 2: an instance whose row was committed while its file was still being synced is
     * pending until the sync is known to have completed; after a crash, pending rows are
     * checked against their files before anything is served (see src/app/ingest.c). */
    "ALTER TABLE instance ADD COLUMN pending INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX instance_pending_i ON instance (pending) WHERE pending <> 0;",
    /* 3: the Modality Worklist (PS3.4 K.6.1): one row per Scheduled Procedure Step, with its
     * Requested Procedure, Imaging Service Request and patient attributes (Table K.6-1, the
     * veterinary ones of CP-643 included) flattened into columns, since each step is answered
     * as one worklist item. Columns are named as the fields of idx_worklist_item. Indexed:
     * the keys modalities query on (date, modality, station, patient, species) and the two
     * that complete a step when its study arrives (accession, study UID). */
    "CREATE TABLE worklist ("
    "  id INTEGER PRIMARY KEY,"
    "  sps_id TEXT NOT NULL UNIQUE,"
    "  status TEXT NOT NULL DEFAULT 'SCHEDULED',"
    "  patient_id TEXT NOT NULL DEFAULT '',"
    "  issuer TEXT NOT NULL DEFAULT '',"
    "  patient_name TEXT NOT NULL DEFAULT '',"
    "  birth_date TEXT NOT NULL DEFAULT '',"
    "  sex TEXT NOT NULL DEFAULT '',"
    "  weight TEXT NOT NULL DEFAULT '',"
    "  species TEXT NOT NULL DEFAULT '',"
    "  species_code TEXT NOT NULL DEFAULT '',"
    "  species_scheme TEXT NOT NULL DEFAULT '',"
    "  species_meaning TEXT NOT NULL DEFAULT '',"
    "  breed TEXT NOT NULL DEFAULT '',"
    "  breed_code TEXT NOT NULL DEFAULT '',"
    "  breed_scheme TEXT NOT NULL DEFAULT '',"
    "  breed_meaning TEXT NOT NULL DEFAULT '',"
    "  breed_registration TEXT NOT NULL DEFAULT '',"
    "  registry_code TEXT NOT NULL DEFAULT '',"
    "  registry_scheme TEXT NOT NULL DEFAULT '',"
    "  registry_meaning TEXT NOT NULL DEFAULT '',"
    "  owner_name TEXT NOT NULL DEFAULT '',"
    "  owner_role TEXT NOT NULL DEFAULT '',"
    "  clinic TEXT NOT NULL DEFAULT '',"
    "  sex_neutered TEXT NOT NULL DEFAULT '',"
    "  accession TEXT NOT NULL DEFAULT '',"
    "  requested_id TEXT NOT NULL DEFAULT '',"
    "  requested_description TEXT NOT NULL DEFAULT '',"
    "  study_uid TEXT NOT NULL,"
    "  referring TEXT NOT NULL DEFAULT '',"
    "  station_ae TEXT NOT NULL DEFAULT '',"
    "  start_date TEXT NOT NULL DEFAULT '',"
    "  start_time TEXT NOT NULL DEFAULT '',"
    "  modality TEXT NOT NULL DEFAULT '',"
    "  performing TEXT NOT NULL DEFAULT '',"
    "  sps_description TEXT NOT NULL DEFAULT '',"
    "  station_name TEXT NOT NULL DEFAULT '',"
    "  location TEXT NOT NULL DEFAULT '',"
    "  created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),"
    "  ended_at TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX worklist_start_i ON worklist (start_date, start_time);"
    "CREATE INDEX worklist_modality_i ON worklist (modality);"
    "CREATE INDEX worklist_station_i ON worklist (station_ae);"
    "CREATE INDEX worklist_accession_i ON worklist (accession);"
    "CREATE INDEX worklist_study_i ON worklist (study_uid);"
    "CREATE INDEX worklist_patient_i ON worklist (patient_id);"
    "CREATE INDEX worklist_name_i ON worklist (patient_name COLLATE NOCASE);"
    "CREATE INDEX worklist_species_i ON worklist (species COLLATE NOCASE);",
    /* 4: the rest of the first item of Patient Species Code Sequence (0010,2202) and Patient
     * Breed Code Sequence (0010,2293) next to its Code Value: Coding Scheme Designator
     * (0008,0102), Coding Scheme Version (0008,0103) and Code Meaning (0008,0104) of the Code
     * Sequence Macro (PS3.3 Table 8.8-1), which sequence matching returns when asked for (PS3.4
     * C.2.2.2.6). A constant default makes ADD COLUMN rewrite no row: existing patients read
     * '' (unknown) until a new object of theirs is indexed. Not indexed: a query names them
     * next to the Code Value, on the smallest table. */
    "ALTER TABLE patient ADD COLUMN species_scheme TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE patient ADD COLUMN species_version TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE patient ADD COLUMN species_meaning TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE patient ADD COLUMN breed_scheme TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE patient ADD COLUMN breed_version TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE patient ADD COLUMN breed_meaning TEXT NOT NULL DEFAULT '';",
    /* 5: users, their credentials and the audit log (src/idx/sqlite_users.c, policy in
     * src/app/auth.c, docs/users.md). Times are Unix milliseconds (UTC), compared as numbers
     * for expiry. A user name is unique ignoring ASCII case (NOCASE: names are printable
     * ASCII). Passwords are kept as libsodium's argon2id strings (algorithm, parameters, salt
     * and hash in one); API tokens and session ids only as their BLAKE2b-256 digest, UNIQUE
     * so a request's credential is one index probe. Removing a user removes its tokens and
     * sessions (foreign_keys is on), never its audit rows: the log names the user by id and
     * name, without a reference, and refuses UPDATE and DELETE (append-only). Audit indexes
     * serve the filters of idx_audit_query; newest first is rowid order. IF NOT EXISTS: a file
     * whose user_version was set back (as the tests of earlier migrations do) still opens. */
    "CREATE TABLE IF NOT EXISTS users ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL UNIQUE COLLATE NOCASE,"
    "  role TEXT NOT NULL"
    "    CHECK (role IN ('admin', 'radiologist', 'vet', 'technician', 'read-only')),"
    "  pw_hash TEXT NOT NULL,"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  disabled INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS api_token ("
    "  id INTEGER PRIMARY KEY,"
    "  user INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  hash BLOB NOT NULL UNIQUE,"
    "  label TEXT NOT NULL DEFAULT '',"
    "  created_ms INTEGER NOT NULL,"
    "  used_ms INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS api_token_user_i ON api_token (user);"
    "CREATE TABLE IF NOT EXISTS session ("
    "  id INTEGER PRIMARY KEY,"
    "  hash BLOB NOT NULL UNIQUE,"
    "  user INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,"
    "  created_ms INTEGER NOT NULL,"
    "  seen_ms INTEGER NOT NULL,"
    "  expires_ms INTEGER NOT NULL,"
    "  client TEXT NOT NULL DEFAULT '',"
    "  user_agent TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX IF NOT EXISTS session_user_i ON session (user);"
    "CREATE INDEX IF NOT EXISTS session_expires_i ON session (expires_ms);"
    "CREATE INDEX IF NOT EXISTS session_seen_i ON session (seen_ms);"
    "CREATE TABLE IF NOT EXISTS audit ("
    "  id INTEGER PRIMARY KEY,"
    "  time_ms INTEGER NOT NULL,"
    "  user_id INTEGER NOT NULL DEFAULT 0,"
    "  user TEXT NOT NULL DEFAULT '',"
    "  action TEXT NOT NULL,"
    "  resource_type TEXT NOT NULL DEFAULT '',"
    "  resource_id TEXT NOT NULL DEFAULT '',"
    "  client TEXT NOT NULL DEFAULT '',"
    "  outcome TEXT NOT NULL DEFAULT '',"
    "  status INTEGER NOT NULL DEFAULT 0,"
    "  detail TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX IF NOT EXISTS audit_time_i ON audit (time_ms);"
    "CREATE INDEX IF NOT EXISTS audit_user_i ON audit (user COLLATE NOCASE);"
    "CREATE INDEX IF NOT EXISTS audit_action_i ON audit (action);"
    "CREATE INDEX IF NOT EXISTS audit_resource_i ON audit (resource_id);"
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;"
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit"
    "  BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;",
    /* 6: the WADO-RS metadata of each instance (PS3.18 10.4.1.1.2, the DICOM JSON Model of
     * Annex F), computed at ingest and written in the transaction of its instance row, so it
     * never disagrees with the index; removed with the row (ON DELETE CASCADE). A table of its
     * own keeps instance rows small for the queries that scan them. json is the zlib stream
     * (RFC 1950) of the object, raw_len its size inflated. Instances indexed before this
     * migration have no row here: readers build it from the stored file (src/web/metadata.c)
     * and may backfill it. */
    "CREATE TABLE IF NOT EXISTS instance_meta ("
    "  instance INTEGER PRIMARY KEY REFERENCES instance (id) ON DELETE CASCADE,"
    "  raw_len INTEGER NOT NULL,"
    "  json BLOB NOT NULL);",
};

int idx__migration_count(void)
{
    return (int)(sizeof migrations / sizeof migrations[0]);
}

const char *idx__migration(int version)
{
    return version >= 1 && version <= idx__migration_count() ? migrations[version - 1] : NULL;
}
