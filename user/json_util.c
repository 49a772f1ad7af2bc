// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Forgiving cJSON accessors; see json_util.h. */
#include <stdio.h>
#include <stdlib.h>

#include "json_util.h"

double json_num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

const char *json_str(const cJSON *o, const char *key)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));

	return s ? s : "";
}

void json_print_line(const cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);

	printf("%s\n", s ? s : "{}");
	free(s);
}
