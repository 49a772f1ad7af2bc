// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `sluice history [NAME]`: the audit log read back as attempts: for each
 * rollout and attempt, the versions, every decision with its weight change
 * and the metrics behind it, and the outcome. Reads history.jsonl from the
 * state dir, so it needs no agent.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "history_svg.h"
#include "json_util.h"
#include "state.h"

static void history_usage(FILE *f)
{
	fprintf(f, "Usage: sluice history [NAME] [--json] [--svg FILE [--attempt N]] [--state-dir DIR]\n"
		   "\n"
		   "Every attempt of every rollout (or of NAME): primary and canary versions,\n"
		   "each decision with its weight step, the metric snapshot behind it, the\n"
		   "outcome and the reason. --json prints an array of attempts. --svg FILE\n"
		   "draws NAME's last attempt (or --attempt N) as a timeline: weight, success\n"
		   "rate and p99 per version, thresholds, every decision marked.\n"
		   "Default --state-dir %s.\n", STATE_DEFAULT_DIR);
}

/* The attempt object for (rollout, attempt), created on first sight. */
static cJSON *attempt_of(cJSON *attempts, const cJSON *rec)
{
	cJSON *a;

	cJSON_ArrayForEach(a, attempts) {
		if (!strcmp(json_str(a, "rollout"), json_str(rec, "rollout")) &&
		    json_num(a, "attempt") == json_num(rec, "attempt"))
			return a;
	}
	a = cJSON_CreateObject();
	cJSON_AddStringToObject(a, "rollout", json_str(rec, "rollout"));
	cJSON_AddNumberToObject(a, "attempt", json_num(rec, "attempt"));
	cJSON_AddStringToObject(a, "primary_version", json_str(rec, "primary_version"));
	cJSON_AddStringToObject(a, "canary_version", json_str(rec, "canary_version"));
	cJSON_AddStringToObject(a, "started", json_str(rec, "time"));
	cJSON_AddStringToObject(a, "ended", json_str(rec, "time"));
	cJSON_AddStringToObject(a, "outcome", json_str(rec, "phase"));
	cJSON_AddStringToObject(a, "reason", json_str(rec, "reason"));
	cJSON_AddArrayToObject(a, "decisions");
	cJSON_AddItemToArray(attempts, a);
	return a;
}

static void print_window(const cJSON *w, const char *label)
{
	if (!w)
		return;
	if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(w, "has_data"))) {
		printf(" %s -", label);
		return;
	}
	printf(" %s %.2f%%", label, json_num(w, "success_rate_pct"));
	if (cJSON_GetObjectItemCaseSensitive(w, "latency_p99_ms"))
		printf(" p99 %.1fms", json_num(w, "latency_p99_ms"));
}

static void print_attempts(const cJSON *attempts)
{
	const cJSON *a, *d;

	if (cJSON_GetArraySize(attempts) == 0)
		printf("no history\n");
	cJSON_ArrayForEach(a, attempts) {
		printf("%s  attempt %.0f  %s -> %s  %s .. %s  %s\n", json_str(a, "rollout"),
		       json_num(a, "attempt"), json_str(a, "primary_version"), json_str(a, "canary_version"),
		       json_str(a, "started"), json_str(a, "ended"), json_str(a, "outcome"));
		cJSON_ArrayForEach(d, cJSON_GetObjectItemCaseSensitive(a, "decisions")) {
			const cJSON *w = cJSON_GetObjectItemCaseSensitive(d, "window");
			const char *t = json_str(d, "time");

			printf("  %s  %-8s %6.2f%% -> %6.2f%%  %-11s", strlen(t) > 11 ? t + 11 : t,
			       json_str(d, "action"), json_num(d, "weight_from_pct"), json_num(d, "weight_pct"),
			       json_str(d, "phase"));
			if (w) {
				print_window(cJSON_GetObjectItemCaseSensitive(w, "canary"), "canary");
				print_window(cJSON_GetObjectItemCaseSensitive(w, "primary"), "| primary");
			}
			printf("  [%s] %s\n", json_str(d, "by"), json_str(d, "reason"));
		}
		printf("  outcome: %s: %s\n\n", json_str(a, "outcome"), json_str(a, "reason"));
	}
}

int do_history(int argc, char **argv)
{
	enum { O_STATE = 256, O_RUN, O_SVG, O_ATTEMPT };
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "svg", required_argument, NULL, O_SVG },
		{ "attempt", required_argument, NULL, O_ATTEMPT },
		{ "state-dir", required_argument, NULL, O_STATE },
		{ "run-dir", required_argument, NULL, O_RUN },
		{ "bpffs", required_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *state_dir = STATE_DEFAULT_DIR, *want = NULL, *svg = NULL;
	bool json = false;
	int attempt = 0;
	char path[PATH_MAX], *line = NULL;
	size_t cap = 0;
	cJSON *attempts;
	FILE *f;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "jb:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case O_STATE:
			state_dir = optarg;
			break;
		case O_SVG:
			svg = optarg;
			break;
		case O_ATTEMPT:
			attempt = atoi(optarg);
			if (attempt < 1) {
				cli_error(json, "--attempt: %s is not an attempt number (1, 2, ...)",
					  optarg);
				return EXIT_USAGE;
			}
			break;
		case O_RUN:
		case 'b':
			break; /* accepted so one set of options fits every command */
		case 'h':
			history_usage(stdout);
			return EXIT_OK;
		default:
			history_usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind < argc)
		want = argv[optind++];
	if (optind < argc) {
		cli_error(json, "unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "%s/history.jsonl", state_dir);
	f = fopen(path, "r");
	if (!f && errno != ENOENT) {
		cli_error(json, "%s: %s", path, strerror(errno));
		return EXIT_FAIL;
	}
	attempts = cJSON_CreateArray();
	while (f && getline(&line, &cap, f) > 0) {
		cJSON *rec = cJSON_Parse(line), *a;

		/* a torn last line (a crash mid-write) is skipped, not fatal */
		if (!rec || !cli_name_matches(want, json_str(rec, "rollout"))) {
			cJSON_Delete(rec);
			continue;
		}
		a = attempt_of(attempts, rec);
		cJSON_ReplaceItemInObjectCaseSensitive(a, "ended",
						       cJSON_CreateString(json_str(rec, "time")));
		cJSON_ReplaceItemInObjectCaseSensitive(a, "outcome",
						       cJSON_CreateString(json_str(rec, "phase")));
		cJSON_ReplaceItemInObjectCaseSensitive(a, "reason",
						       cJSON_CreateString(json_str(rec, "reason")));
		cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(a, "decisions"), rec);
	}
	free(line);
	if (f)
		fclose(f);
	if (want && cJSON_GetArraySize(attempts) == 0) {
		cli_error(json, "no history for %s in %s", want, path);
		cJSON_Delete(attempts);
		return EXIT_FAIL;
	}
	if (svg) {
		const cJSON *pick = NULL, *a;
		int err;

		if (!want) {
			cli_error(json, "--svg draws one rollout: give its NAME");
			cJSON_Delete(attempts);
			return EXIT_USAGE;
		}
		cJSON_ArrayForEach(a, attempts)
			if (!attempt || json_num(a, "attempt") == attempt)
				pick = a; /* the last one, or the one asked for */
		if (!pick) {
			cli_error(json, "%s has no attempt %d", want, attempt);
			cJSON_Delete(attempts);
			return EXIT_FAIL;
		}
		err = history_svg(pick, svg);
		if (err)
			cli_error(json, "%s: %s", svg, strerror(-err));
		else if (!json)
			printf("%s: attempt %.0f of %s drawn\n", svg, json_num(pick, "attempt"),
			       json_str(pick, "rollout"));
		cJSON_Delete(attempts);
		return err ? EXIT_FAIL : EXIT_OK;
	}
	if (json) {
		json_print_line(attempts);
	} else {
		print_attempts(attempts);
	}
	cJSON_Delete(attempts);
	return EXIT_OK;
}
