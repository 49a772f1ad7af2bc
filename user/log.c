// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Logging for the agent and the CLI: leveled lines on stderr, timestamped
 * so an agent's log can be lined up against a load generator's.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <bpf/libbpf.h>

#include "log.h"

static enum log_level current_level = LOG_LEVEL_INFO;

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return current_level;
}

static void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	static const char *const names[] = { "warn", "info", "debug" };
	struct timespec ts;
	struct tm tm;

	if (level > current_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	fprintf(stderr, "%02d:%02d:%02d.%03ld %-5s ", tm.tm_hour, tm.tm_min, tm.tm_sec,
		ts.tv_nsec / 1000000, names[level]);
	vfprintf(stderr, fmt, ap);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	enum log_level ours = level == LIBBPF_WARN ? LOG_LEVEL_WARN : LOG_LEVEL_DEBUG;

	/*
	 * bpf_tc_hook_create() on an interface that has clsact already makes
	 * the kernel say so and libbpf warn; sluice expects and accepts that.
	 */
	if (ours == LOG_LEVEL_WARN && strstr(fmt, "Kernel error message")) {
		va_list copy;
		const char *msg;

		va_copy(copy, ap);
		msg = va_arg(copy, const char *);
		/* ...and probing an interface without clsact (--cleanup) makes it say that */
		if (msg && (strstr(msg, "Exclusivity flag on") || strstr(msg, "Parent Qdisc") ||
			    strstr(msg, "Cannot find specified filter chain")))
			ours = LOG_LEVEL_DEBUG;
		va_end(copy);
	}

	if (ours > current_level)
		return 0;
	log_vmsg(ours, fmt, ap);
	return 0;
}

void log_route_libbpf(void)
{
	libbpf_set_print(libbpf_print);
}
