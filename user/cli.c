// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * What every subcommand shares in talking to people and scripts: errors as
 * a line on stderr, or as {"error": "..."} on stdout in JSON mode (bpftool's
 * habit), so a script reading --json output always gets JSON.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "cli.h"

void cli_error(bool json, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (json) {
		cJSON *o = cJSON_CreateObject();
		char *s;

		cJSON_AddStringToObject(o, "error", msg);
		s = cJSON_PrintUnformatted(o);
		printf("%s\n", s);
		free(s);
		cJSON_Delete(o);
	} else {
		fprintf(stderr, "sluice: %s\n", msg);
	}
}
