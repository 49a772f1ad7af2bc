// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `sluice`: one binary, subcommands in the bpftool manner. This file only
 * dispatches: each subcommand lives in the file of its concern (agent.c,
 * status.c, check.c, ...). Unambiguous prefixes are accepted (`sluice st`).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "log.h"

#ifndef SLUICE_VERSION
#define SLUICE_VERSION "0.1.0"
#endif

static int do_version(int argc, char **argv)
{
	(void)argc, (void)argv;
	printf("sluice %s\n", SLUICE_VERSION);
	return 0;
}

static int do_help(int argc, char **argv);

static const struct cmd cmds[] = {
	{ "agent", do_agent, "load the datapath, attach it and run the rollouts of a spec" },
	{ "status", do_status, "rollouts: phase, weight, checks, metrics, per-backend counters" },
	{ "check", do_check, "validate Canary specs; print every error with its path" },
	{ "pause", do_pause, "hold a rollout where it is" },
	{ "resume", do_resume, "let a paused rollout's analysis continue" },
	{ "promote", do_promote, "next step now (--full: all traffic to the canary set)" },
	{ "abort", do_abort, "roll back now (works with the agent down)" },
	{ "retry", do_retry, "start a Failed rollout over" },
	{ "set-weight", do_set_weight, "hold the canary weight at PERCENT; pauses analysis" },
	{ "drill", do_drill, "rehearse a rollback: time until the canary gets no traffic" },
	{ "history", do_history, "every attempt: versions, steps, metrics, outcome" },
	{ "hooks", do_hooks, "where sluice's programs run: tcx, cls_bpf and XDP per interface" },
	{ "version", do_version, "print the version" },
	{ "help", do_help, "this list" },
};

static int do_help(int argc, char **argv)
{
	(void)argc, (void)argv;
	printf("Usage: sluice COMMAND [ARGS]   (sluice COMMAND --help for each)\n\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		printf("  %-10s %s\n", cmds[i].name, cmds[i].help);
	printf("\nExit status: 0 success, 1 failure (see the message), 2 bad usage.\n");
	return 0;
}

int main(int argc, char **argv)
{
	const struct cmd *match = NULL;
	size_t len;

	if (argc < 2) {
		do_help(0, NULL);
		return EXIT_USAGE;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))
		return do_help(0, NULL);
	if (!strcmp(argv[1], "-V") || !strcmp(argv[1], "--version"))
		return do_version(0, NULL);
	log_route_libbpf();
	len = strlen(argv[1]);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strncmp(cmds[i].name, argv[1], len))
			continue;
		if (cmds[i].name[len] == '\0') {
			match = &cmds[i];
			break;
		}
		if (match) {
			fprintf(stderr, "sluice: '%s' is ambiguous (%s, %s, ...)\n", argv[1],
				match->name, cmds[i].name);
			return EXIT_USAGE;
		}
		match = &cmds[i];
	}
	if (!match) {
		fprintf(stderr, "sluice: unknown command '%s' (sluice help lists them)\n", argv[1]);
		return EXIT_USAGE;
	}
	return match->fn(argc - 1, argv + 1);
}
