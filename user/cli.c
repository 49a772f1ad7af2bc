// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * What every subcommand shares in talking to people and scripts: errors as
 * a line on stderr, or as {"error": "..."} on stdout in JSON mode (bpftool's
 * habit), so a script reading --json output always gets JSON.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "json_util.h"

void cli_error(bool json, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (json) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "error", msg);
		json_print_line(o);
		cJSON_Delete(o);
	} else {
		fprintf(stderr, "sluice: %s\n", msg);
	}
}

bool cli_name_matches(const char *want, const char *full)
{
	const char *slash = strchr(full, '/');

	return !want || !strcmp(want, full) ||
	       (slash && !strchr(want, '/') && !strcmp(want, slash + 1));
}
