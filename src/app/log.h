/* SPDX-License-Identifier: MIT */
/*
 * The server log: one line per event on stderr, "2026-11-27T23:50:01.123Z level message",
 * written with a single write(2) so lines from concurrent threads never interleave.
 */
#ifndef VP_APP_LOG_H
#define VP_APP_LOG_H

void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
