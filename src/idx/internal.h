/* SPDX-License-Identifier: MIT */
/* Private to src/idx. */
#ifndef VP_IDX_INTERNAL_H
#define VP_IDX_INTERNAL_H

#include "idx/idx.h"

/* Number of migrations, i.e. the current schema version. */
int idx__migration_count(void);
/* SQL of the migration that produces schema version `version` (1-based), or NULL. */
const char *idx__migration(int version);

#endif
