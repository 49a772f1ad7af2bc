/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Reading cJSON objects the forgiving way the CLI and the state dir need:
 * a missing or mistyped field reads as 0 or "", never as a crash.
 */
#ifndef SLUICE_JSON_UTIL_H
#define SLUICE_JSON_UTIL_H

#include <cjson/cJSON.h>

/** json_num() - the number at @key, 0 when absent or not a number. */
double json_num(const cJSON *o, const char *key);
/** json_str() - the string at @key, "" when absent or not a string. */
const char *json_str(const cJSON *o, const char *key);
/** json_print_line() - @o on one line of stdout. */
void json_print_line(const cJSON *o);

#endif /* SLUICE_JSON_UTIL_H */
