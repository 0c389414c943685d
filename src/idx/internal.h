/* SPDX-License-Identifier: MIT */
/* Private to src/idx. */
#ifndef VP_IDX_INTERNAL_H
#define VP_IDX_INTERNAL_H

#include "idx/idx.h"

/* Number of migrations, i.e. the current schema version. */
int idx__migration_count(void);
/* SQL of the migration that produces schema version `version` (1-based), or NULL. */
const char *idx__migration(int version);

/* The SQLite connection of an idx, for the other files of the SQLite backend
 * (sqlite_worklist.c), and its error mapping (as the statuses of idx.h, message in err). */
struct sqlite3 *idx__db(idx *x);
vp_status idx__db_error(idx *x, vp_error *err, const char *what);

#endif
