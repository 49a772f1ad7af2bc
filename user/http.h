/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's HTTP endpoint (--listen): /metrics and /healthz, served by
 * libmicrohttpd in epoll mode without a thread of its own, so its one
 * epoll fd joins the agent's poll loop and every request is answered on the
 * agent's thread, with no locking around the rollouts it reports.
 */
#ifndef SLUICE_HTTP_H
#define SLUICE_HTTP_H

#include <stddef.h>

#define HTTP_DEFAULT_LISTEN "127.0.0.1:9477"

struct http_server;

/* Render the body of GET @path into a malloc'd string; NULL: 404. */
typedef char *(*http_render)(const char *path, void *ctx);

/**
 * http_start() - listen on @addr ("IPv4:PORT" or "[IPv6]:PORT").
 * Return: 0 or -errno (logged), e.g. -EADDRINUSE.
 */
int http_start(struct http_server **out, const char *addr, http_render render, void *ctx);
/** http_fd() - the fd to poll for input. */
int http_fd(const struct http_server *s);
/** http_run() - serve what is ready; never blocks. */
void http_run(struct http_server *s);
/** http_timeout_ms() - how long poll may wait before http_run is needed again (-1: no limit). */
int http_timeout_ms(struct http_server *s);
void http_stop(struct http_server *s);

/** http_parse_addr() - "IPv4:PORT" or "[IPv6]:PORT" into a sockaddr; 0 or -EINVAL. */
struct sockaddr_storage;
int http_parse_addr(const char *addr, struct sockaddr_storage *ss);

#endif /* SLUICE_HTTP_H */
