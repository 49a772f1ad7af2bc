// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `sluice check FILE...`: validate Canary specs the way the agent would,
 * without touching the datapath. Every error is printed with its file and
 * path; with --json a clean spec is printed in its normalized form.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "spec.h"

static void check_usage(FILE *f)
{
	fprintf(f, "Usage: sluice check [--json] FILE...\n"
		   "\n"
		   "Validate Canary specs (JSON or YAML). Prints every error as FILE: PATH: REASON\n"
		   "and exits 1 if any file has one; with --json prints each valid spec's\n"
		   "normalized form, one JSON object per line.\n");
}

int do_check(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool json = false, bad = false;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "jh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			check_usage(stdout);
			return EXIT_OK;
		default:
			check_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		check_usage(stderr);
		return EXIT_USAGE;
	}
	for (int i = optind; i < argc; i++) {
		struct spec_canary *spec = calloc(1, sizeof(*spec));
		struct spec_errors errs = { 0 };

		if (!spec)
			return EXIT_FAIL;
		if (spec_parse_file(argv[i], spec, &errs)) {
			spec_print_errors(stderr, argv[i], &errs);
			bad = true;
		} else if (json) {
			char *s = spec_to_json(spec);

			printf("%s\n", s ? s : "{}");
			free(s);
		} else {
			printf("%s: ok (%s/%s)\n", argv[i], spec->namespace, spec->name);
			for (int k = 0; k < spec->n_ignored; k++)
				printf("%s: %s: accepted, not acted on by sluice\n", argv[i],
				       spec->ignored[k]);
		}
		free(spec);
	}
	return bad ? EXIT_FAIL : EXIT_OK;
}
