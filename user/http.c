// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * /metrics and /healthz over libmicrohttpd (a well-kept HTTP server
 * library: no hand-written HTTP parsing in the agent). GET only.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "http.h"
#include "log.h"

struct http_server {
	struct MHD_Daemon *d;
	http_render render;
	void *ctx;
};

int http_parse_addr(const char *addr, struct sockaddr_storage *ss)
{
	char host[64];
	const char *colon;
	char *end;
	unsigned long port;

	memset(ss, 0, sizeof(*ss));
	if (addr[0] == '[') {
		const char *close = strchr(addr, ']');

		if (!close || close[1] != ':' || (size_t)(close - addr - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, addr + 1, close - addr - 1);
		host[close - addr - 1] = '\0';
		colon = close + 1;
	} else {
		colon = strrchr(addr, ':');
		if (!colon || (size_t)(colon - addr) >= sizeof(host))
			return -EINVAL;
		memcpy(host, addr, colon - addr);
		host[colon - addr] = '\0';
	}
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || colon[1] == '\0' || port > 65535)
		return -EINVAL;
	if (addr[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		return inet_pton(AF_INET6, host, &s6->sin6_addr) == 1 ? 0 : -EINVAL;
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &s4->sin_addr) == 1 ? 0 : -EINVAL;
}

static enum MHD_Result answer(struct MHD_Connection *c, unsigned int code, const char *type,
			      char *body)
{
	struct MHD_Response *r =
		MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
	enum MHD_Result ret;

	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **req_cls)
{
	struct http_server *s = cls;
	char *body;

	(void)version, (void)upload;
	if (!*req_cls) {
		/* first call: headers only; answer on the next one */
		*req_cls = s;
		return MHD_YES;
	}
	if (*upload_size) {
		*upload_size = 0; /* a body on a GET: read and ignored */
		return MHD_YES;
	}
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return answer(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", strdup("GET only\n"));
	body = s->render(url, s->ctx);
	if (!body)
		return answer(c, MHD_HTTP_NOT_FOUND, "text/plain",
			      strdup("not found: /metrics and /healthz are served here\n"));
	return answer(c, MHD_HTTP_OK,
		      !strcmp(url, "/metrics") ? "text/plain; version=0.0.4; charset=utf-8"
					       : "text/plain; charset=utf-8",
		      body);
}

int http_start(struct http_server **out, const char *addr, http_render render, void *ctx)
{
	struct sockaddr_storage ss;
	struct http_server *s;
	unsigned int flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;

	*out = NULL;
	if (http_parse_addr(addr, &ss)) {
		log_warn("--listen %s: not IPv4:PORT or [IPv6]:PORT\n", addr);
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->render = render;
	s->ctx = ctx;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
				(struct sockaddr *)&ss, MHD_OPTION_CONNECTION_TIMEOUT,
				(unsigned int)10, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
				MHD_OPTION_END);
	if (!s->d) {
		log_warn("--listen %s: cannot serve HTTP there (in use? not an address of this "
			 "host?)\n", addr);
		free(s);
		return -EADDRINUSE;
	}
	*out = s;
	return 0;
}

int http_fd(const struct http_server *s)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_EPOLL_FD);

	return i ? i->epoll_fd : -1;
}

void http_run(struct http_server *s)
{
	MHD_run(s->d);
}

int http_timeout_ms(struct http_server *s)
{
	MHD_UNSIGNED_LONG_LONG ms;

	if (MHD_get_timeout(s->d, &ms) != MHD_YES)
		return -1;
	return ms > 1000 ? 1000 : (int)ms;
}

void http_stop(struct http_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->d);
	free(s);
}
