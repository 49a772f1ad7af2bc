// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The webhook worker: one thread, one curl multi handle, every call in
 * flight at once, so a slow hook of one rollout (up to its timeout, 10 s by
 * default) never delays another's, nor the agent's ticks. libcurl does the
 * HTTP; the agent thread only queues requests and reads results. The
 * worker and libcurl (with the TLS library under it) start at the first
 * call: an agent whose Canaries have no webhooks never pays for them, about
 * 2.4 MiB of resident memory.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "log.h"
#include "webhook.h"

struct call {
	struct call *next;
	uint64_t token;
	char url[512];
	char *payload;
	long timeout_ms;
	int retries_left, attempts;
	CURL *easy;
	struct curl_slist *headers;
	char error[CURL_ERROR_SIZE];
};

struct webhook_runner {
	pthread_t thread;
	pthread_mutex_t lock;
	CURLM *multi; /* with the thread, from the first call on */
	bool started;
	struct call *queued; /* submitted, not yet handed to curl */
	struct webhook_result *results; /* finished, not yet read */
	int n_results, cap_results;
	int pipe[2]; /* a byte per result: wakes the agent's poll */
	uint64_t next_token;
	bool stop;
};

static size_t discard(char *p, size_t size, size_t n, void *ctx)
{
	(void)p, (void)ctx;
	return size * n; /* the answer's body is not read: only its status counts */
}

static int call_start(struct webhook_runner *r, struct call *c)
{
	c->easy = curl_easy_init();
	if (!c->easy)
		return -ENOMEM;
	if (!c->headers)
		c->headers = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(c->easy, CURLOPT_URL, c->url);
	curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->payload);
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->headers);
	curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, c->timeout_ms);
	curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->error);
	curl_easy_setopt(c->easy, CURLOPT_PRIVATE, c);
	curl_easy_setopt(c->easy, CURLOPT_USERAGENT, "sluice-agent");
	c->error[0] = '\0';
	c->attempts++;
	return curl_multi_add_handle(r->multi, c->easy) == CURLM_OK ? 0 : -EIO;
}

static void call_free(struct call *c)
{
	curl_slist_free_all(c->headers);
	free(c->payload);
	free(c);
}

static void deliver(struct webhook_runner *r, struct call *c, bool ok, long status,
		    const char *error)
{
	struct webhook_result *res;
	char byte = 1;

	pthread_mutex_lock(&r->lock);
	if (r->n_results == r->cap_results) {
		int cap = r->cap_results ? r->cap_results * 2 : 16;
		struct webhook_result *g = realloc(r->results, cap * sizeof(*g));

		if (!g) {
			pthread_mutex_unlock(&r->lock);
			return;
		}
		r->results = g;
		r->cap_results = cap;
	}
	res = &r->results[r->n_results++];
	memset(res, 0, sizeof(*res));
	res->token = c->token;
	res->ok = ok;
	res->status = (int)status;
	res->attempts = c->attempts;
	snprintf(res->error, sizeof(res->error), "%s", error);
	pthread_mutex_unlock(&r->lock);
	if (write(r->pipe[1], &byte, 1) < 0 && errno != EAGAIN)
		log_debug("webhook: waking the agent: %s\n", strerror(errno));
}

static void finished(struct webhook_runner *r, CURLMsg *m)
{
	struct call *c = NULL;
	long status = 0;
	bool ok;

	curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
	curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
	curl_multi_remove_handle(r->multi, m->easy_handle);
	curl_easy_cleanup(m->easy_handle);
	c->easy = NULL;
	/* Flagger passes 200, 201 and 202 */
	ok = m->data.result == CURLE_OK && status >= 200 && status <= 202;
	if (!ok && c->retries_left > 0) {
		c->retries_left--;
		if (call_start(r, c) == 0)
			return;
	}
	deliver(r, c, ok, status,
		m->data.result == CURLE_OK ? "" : c->error[0] ? c->error
							    : curl_easy_strerror(m->data.result));
	call_free(c);
}

static void *worker(void *arg)
{
	struct webhook_runner *r = arg;

	for (;;) {
		struct call *batch;
		CURLMsg *m;
		int running = 0, left;

		pthread_mutex_lock(&r->lock);
		if (r->stop) {
			pthread_mutex_unlock(&r->lock);
			break;
		}
		batch = r->queued;
		r->queued = NULL;
		pthread_mutex_unlock(&r->lock);
		while (batch) {
			struct call *c = batch;

			batch = c->next;
			if (call_start(r, c)) {
				deliver(r, c, false, 0, "could not start the request");
				call_free(c);
			}
		}
		curl_multi_perform(r->multi, &running);
		while ((m = curl_multi_info_read(r->multi, &left)))
			if (m->msg == CURLMSG_DONE)
				finished(r, m);
		/* sleeps until a transfer moves, a submit wakes it, or a second passes */
		curl_multi_poll(r->multi, NULL, 0, 1000, NULL);
	}
	return NULL;
}

int webhook_runner_start(struct webhook_runner **out)
{
	struct webhook_runner *r = calloc(1, sizeof(*r));

	*out = NULL;
	if (!r)
		return -ENOMEM;
	if (pipe2(r->pipe, O_CLOEXEC | O_NONBLOCK)) {
		free(r);
		return -EIO;
	}
	pthread_mutex_init(&r->lock, NULL);
	*out = r;
	return 0;
}

/* libcurl and the worker thread, at the first call (agent thread only). */
static int runner_begin(struct webhook_runner *r)
{
	if (r->started)
		return 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -EIO;
	r->multi = curl_multi_init();
	if (!r->multi)
		return -ENOMEM;
	if (pthread_create(&r->thread, NULL, worker, r)) {
		curl_multi_cleanup(r->multi);
		r->multi = NULL;
		return -EAGAIN;
	}
	pthread_setname_np(r->thread, "sl-webhooks"); /* for ps -L, top -H and the tests */
	r->started = true;
	return 0;
}

int webhook_runner_fd(const struct webhook_runner *r)
{
	return r->pipe[0];
}

uint64_t webhook_submit(struct webhook_runner *r, const struct spec_webhook *w,
			const char *payload)
{
	struct call *c;
	uint64_t token;
	int err = runner_begin(r);

	if (err) {
		log_warn("webhook %s not called: the webhook worker cannot start: %s\n", w->name,
			 strerror(-err));
		return 0;
	}
	c = calloc(1, sizeof(*c));
	if (!c)
		return 0;
	c->payload = strdup(payload);
	if (!c->payload) {
		free(c);
		return 0;
	}
	snprintf(c->url, sizeof(c->url), "%s", w->url);
	c->timeout_ms = (long)w->timeout_ms;
	c->retries_left = w->retries;
	pthread_mutex_lock(&r->lock);
	token = c->token = ++r->next_token;
	c->next = r->queued;
	r->queued = c;
	pthread_mutex_unlock(&r->lock);
	curl_multi_wakeup(r->multi);
	return token;
}

bool webhook_result_next(struct webhook_runner *r, struct webhook_result *out)
{
	bool got = false;
	char buf[64];

	pthread_mutex_lock(&r->lock);
	if (r->n_results) {
		*out = r->results[0];
		memmove(r->results, r->results + 1, (r->n_results - 1) * sizeof(*r->results));
		r->n_results--;
		got = true;
	}
	if (!r->n_results)
		while (read(r->pipe[0], buf, sizeof(buf)) > 0)
			; /* drained: poll sleeps again */
	pthread_mutex_unlock(&r->lock);
	return got;
}

void webhook_runner_stop(struct webhook_runner *r)
{
	if (!r)
		return;
	if (r->started) {
		pthread_mutex_lock(&r->lock);
		r->stop = true;
		pthread_mutex_unlock(&r->lock);
		curl_multi_wakeup(r->multi);
		pthread_join(r->thread, NULL);
		/* transfers still in flight are dropped with the multi handle */
		curl_multi_cleanup(r->multi);
	}
	while (r->queued) {
		struct call *c = r->queued;

		r->queued = c->next;
		call_free(c);
	}
	close(r->pipe[0]);
	close(r->pipe[1]);
	free(r->results);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
