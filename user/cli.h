/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The subcommand table's types and the do_* entry points, one per
 * subcommand. Each returns the process exit status.
 */
#ifndef SLUICE_CLI_H
#define SLUICE_CLI_H

#include <stdbool.h>

/* Exit statuses scripts can rely on. */
#define EXIT_OK 0
#define EXIT_FAIL 1 /* the command ran and failed: the message says why */
#define EXIT_USAGE 2 /* bad arguments */

struct cmd {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *help;
};

int do_agent(int argc, char **argv);
int do_status(int argc, char **argv);
int do_check(int argc, char **argv);
int do_pause(int argc, char **argv);
int do_resume(int argc, char **argv);
int do_promote(int argc, char **argv);
int do_abort(int argc, char **argv);
int do_retry(int argc, char **argv);
int do_set_weight(int argc, char **argv);
int do_history(int argc, char **argv);
int do_drill(int argc, char **argv);
int do_hooks(int argc, char **argv);

/** cli_error() - an error for a person, or {"error": ...} in JSON mode. */
void cli_error(bool json, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** cli_name_matches() - NAME (or NULL: all) is "namespace/name" whole, or its name part. */
bool cli_name_matches(const char *want, const char *full);

#endif /* SLUICE_CLI_H */
