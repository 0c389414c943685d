/* SPDX-License-Identifier: MIT */
/* app: the vetpacs command line. Each command is a function taking argc/argv after its name
 * and returning the process exit status. */
#ifndef VP_APP_H
#define VP_APP_H

int app_cmd_dump(int argc, char **argv);
int app_cmd_tojson(int argc, char **argv);
int app_cmd_convert(int argc, char **argv);
int app_cmd_import(int argc, char **argv);
int app_cmd_check(int argc, char **argv);
int app_cmd_serve(int argc, char **argv);
int app_cmd_worklist(int argc, char **argv);
int app_cmd_pixels(int argc, char **argv);
int app_cmd_render(int argc, char **argv);
int app_cmd_user(int argc, char **argv), app_cmd_audit(int argc, char **argv);

#endif
