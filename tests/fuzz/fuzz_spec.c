// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * libFuzzer target: any bytes as a Canary spec (JSON or YAML). The parser
 * must answer with a spec or with errors, never crash, leak or read out of
 * bounds (ASan/UBSan). A spec that parses must survive spec_to_json() and
 * parse again. `make fuzz` runs it; `make test` replays the seed corpus.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spec_canary *c = calloc(1, sizeof(*c)), *again = calloc(1, sizeof(*again));
	struct spec_errors errs = { 0 };

	if (!c || !again)
		abort();
	if (spec_parse_buffer((const char *)data, size, c, &errs) == 0) {
		char *json = spec_to_json(c);

		if (!json)
			abort();
		memset(&errs, 0, sizeof(errs));
		/* the normalized form is a spec the parser accepts */
		if (spec_parse_buffer(json, strlen(json), again, &errs))
			abort();
		free(json);
	}
	free(c);
	free(again);
	return 0;
}
