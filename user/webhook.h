/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Flagger-style webhooks, called without holding up the agent: a worker
 * thread runs every call concurrently through libcurl's multi interface
 * and hands results back through a pipe the agent polls. The agent asks
 * (webhook_submit) at a tick and reads the answer when it comes; what an
 * answer means is the analysis's business (gates, failed checks, rollback).
 */
#ifndef SLUICE_WEBHOOK_H
#define SLUICE_WEBHOOK_H

#include <stdbool.h>
#include <stdint.h>

#include "spec.h"

struct webhook_runner;

struct webhook_result {
	uint64_t token; /* what webhook_submit returned */
	bool ok; /* 200-202 (Flagger's success), after retries */
	int status; /* last HTTP status, 0 when none (refused, timeout, ...) */
	int attempts;
	char error[128]; /* transport error, empty when an HTTP status came */
};

/**
 * webhook_runner_start() - the runner, without its thread: libcurl and the
 * worker start at the first webhook_submit().
 */
int webhook_runner_start(struct webhook_runner **out);
/** webhook_runner_fd() - readable when results wait. */
int webhook_runner_fd(const struct webhook_runner *r);
/**
 * webhook_submit() - POST @payload (JSON) to @w->url with @w's timeout and
 * retries. Return: a token (> 0) identifying the call, or 0 when it could
 * not be queued (no memory, or the worker could not start: logged).
 */
uint64_t webhook_submit(struct webhook_runner *r, const struct spec_webhook *w,
			const char *payload);
/** webhook_result_next() - one finished call; false when none is waiting. */
bool webhook_result_next(struct webhook_runner *r, struct webhook_result *out);
/** webhook_runner_stop() - finish the thread; unanswered calls are dropped. */
void webhook_runner_stop(struct webhook_runner *r);

#endif /* SLUICE_WEBHOOK_H */
