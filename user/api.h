/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The CLI <-> agent channel: a Unix stream socket in the run dir, mode
 * 0600 (root only, like the maps it steers). One request per connection:
 * a JSON object on one line, answered by one JSON object on one line.
 *
 *   {"command": "pause", "rollout": "production/api-service"}
 *   {"command": "set-weight", "rollout": "api-service", "weight_pct": 12.5}
 *   -> {"ok": true, "message": "..."} or {"ok": false, "error": "..."}
 */
#ifndef SLUICE_API_H
#define SLUICE_API_H

#include <cjson/cJSON.h>

#define API_DEFAULT_RUN_DIR "/run/sluice"
#define API_SOCKET_NAME "sluice.sock"
#define API_MAX_REQUEST 4096

/** api_listen() - bind and listen on RUN_DIR/sluice.sock (0600). Return: fd or -errno. */
int api_listen(const char *run_dir);

/*
 * The agent's answer to one parsed request; returns a new object, which
 * the server sends and frees.
 */
typedef cJSON *(*api_handler)(const cJSON *req, void *ctx);

/**
 * api_serve_one() - accept one connection on @lfd and answer it. A
 * malformed or oversized request gets {"ok": false, "error": ...}; a client
 * that stalls is dropped after a second, so it cannot hold the agent up.
 */
void api_serve_one(int lfd, api_handler fn, void *ctx);

/**
 * api_call() - send @req to the agent and read its answer into @resp.
 * Return: 0, -ENOENT/-ECONNREFUSED when no agent listens, other -errno.
 */
int api_call(const char *run_dir, const cJSON *req, cJSON **resp);

/** api_parse_request() - validate a request line; NULL with @err set when it is not one. */
cJSON *api_parse_request(const char *line, size_t len, char *err, size_t err_len);

#endif /* SLUICE_API_H */
