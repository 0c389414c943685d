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
};

int idx__migration_count(void)
{
    return (int)(sizeof migrations / sizeof migrations[0]);
}

const char *idx__migration(int version)
{
    return version >= 1 && version <= idx__migration_count() ? migrations[version - 1] : NULL;
}
