// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: any bytes as a control-socket request line. The agent
 * parses these from whoever can open the socket; a malformed one must get an
 * error, never a crash.
 */
#include <stdint.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "api.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[128];
	cJSON *req;

	if (size > API_MAX_REQUEST)
		return 0; /* the server refuses those before parsing */
	req = api_parse_request((const char *)data, size, why, sizeof(why));
	if (req) {
		/* what the agent reads next: these must be safe on anything */
		(void)cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "rollout"));
		(void)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(req, "weight_pct"));
	} else if (!why[0]) {
		abort(); /* a refusal always says why */
	}
	cJSON_Delete(req);
	return 0;
}
