/* SPDX-License-Identifier: MIT */
/* app: the DICOM client commands `vetpacs echo` (C-ECHO), `vetpacs send` (C-STORE),
 * `vetpacs find` (C-FIND), `vetpacs move` (C-MOVE) and `vetpacs get` (C-GET). Each
 * takes argc/argv after its name and returns the process exit status. */
#ifndef VP_APP_CMD_SCU_H
#define VP_APP_CMD_SCU_H

int app_cmd_echo(int argc, char **argv);
int app_cmd_send(int argc, char **argv);
int app_cmd_find(int argc, char **argv);
int app_cmd_move(int argc, char **argv);
int app_cmd_get(int argc, char **argv);

#endif
