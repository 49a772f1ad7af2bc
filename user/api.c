// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The control socket. The agent serves it from its one thread between
 * ticks, so every request is bounded: 4 KiB, one second to arrive.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "log.h"

static int socket_path(const char *run_dir, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/%s", run_dir, API_SOCKET_NAME) >=
	    (int)sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	return 0;
}

int api_listen(const char *run_dir)
{
	struct sockaddr_un sa;
	int fd, err;

	if (mkdir(run_dir, 0700) && errno != EEXIST)
		return -errno;
	err = socket_path(run_dir, &sa);
	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(sa.sun_path); /* a stale socket of a dead agent */
	/* Created 0600 from the start: no window in which others could connect. */
	mode_t old = umask(0177);

	err = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (err || chmod(sa.sun_path, 0600) || listen(fd, 16)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

cJSON *api_parse_request(const char *line, size_t len, char *err, size_t err_len)
{
	cJSON *req = cJSON_ParseWithLength(line, len);
	const cJSON *cmd;

	if (!req || !cJSON_IsObject(req)) {
		snprintf(err, err_len, "the request is not a JSON object");
		cJSON_Delete(req);
		return NULL;
	}
	cmd = cJSON_GetObjectItemCaseSensitive(req, "command");
	if (!cJSON_IsString(cmd) || !cmd->valuestring[0]) {
		snprintf(err, err_len, "the request has no \"command\" string");
		cJSON_Delete(req);
		return NULL;
	}
	return req;
}

static int read_line(int fd, char *buf, size_t cap, size_t *len)
{
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	*len = 0;
	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long waited;
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &now);
		waited = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
		if (waited >= 1000)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)(1000 - waited)) <= 0)
			return -ETIMEDOUT;
		n = read(fd, buf + *len, cap - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return *len ? 0 : -EPIPE;
		*len += n;
		if (memchr(buf + *len - n, '\n', n))
			return 0;
		if (*len == cap)
			return -E2BIG;
	}
}

static void send_json(int fd, cJSON *o)
{
	char *s = cJSON_PrintUnformatted(o);
	size_t len;

	if (!s)
		return;
	len = strlen(s);
	s[len] = '\n';
	if (send(fd, s, len + 1, MSG_NOSIGNAL) < 0)
		log_debug("api: answering: %s\n", strerror(errno));
	free(s);
}

static cJSON *error_reply(const char *msg)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddBoolToObject(o, "ok", false);
	cJSON_AddStringToObject(o, "error", msg);
	return o;
}

void api_serve_one(int lfd, api_handler fn, void *ctx)
{
	char buf[API_MAX_REQUEST + 1], why[128];
	size_t len;
	cJSON *req, *resp;
	int fd, err;

	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0)
		return;
	err = read_line(fd, buf, API_MAX_REQUEST, &len);
	if (err) {
		resp = error_reply(err == -E2BIG ? "request over 4096 bytes"
						 : "no complete request line within a second");
		goto answer;
	}
	req = api_parse_request(buf, len, why, sizeof(why));
	if (!req) {
		resp = error_reply(why);
		goto answer;
	}
	resp = fn(req, ctx);
	cJSON_Delete(req);
answer:
	send_json(fd, resp);
	cJSON_Delete(resp);
	close(fd);
}

int api_call(const char *run_dir, const cJSON *req, cJSON **resp)
{
	struct sockaddr_un sa;
	char buf[65536];
	size_t len = 0;
	char *s;
	int fd, err;

	*resp = NULL;
	err = socket_path(run_dir, &sa);
	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		close(fd);
		return err;
	}
	s = cJSON_PrintUnformatted(req);
	if (!s) {
		close(fd);
		return -ENOMEM;
	}
	len = strlen(s);
	s[len] = '\n';
	if (send(fd, s, len + 1, MSG_NOSIGNAL) != (ssize_t)(len + 1))
		err = -errno;
	free(s);
	len = 0;
	while (!err && len < sizeof(buf) - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		/* the agent answers between ticks: allow it a while */
		if (poll(&p, 1, 10000) <= 0) {
			err = -ETIMEDOUT;
			break;
		}
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += n;
	}
	close(fd);
	if (err)
		return err;
	buf[len] = '\0';
	*resp = cJSON_Parse(buf);
	return *resp ? 0 : -EPROTO;
}
