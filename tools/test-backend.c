// SPDX-License-Identifier: GPL-2.0
/*
 * test-backend - a small HTTP/1.1 server that plays a "pod" in sluice's end-to-end tests.
 *
 * It answers every request with its name, so a client (curl, loadgen, wrk) can tell which
 * backend a steered connection reached, and it can be told to fail a fraction of requests
 * or to be slow, so tests can drive the canary analysis into promote or rollback:
 *
 *   test-backend --listen 198.18.1.2:8080 --name canary --error-rate 0.2 --latency-ms 5:10
 *
 * Every response carries `X-Backend: NAME`, a Content-Length and the body "NAME\n".
 * While it runs, the same port takes two special paths, which are never delayed, never
 * failed and never counted, so a test in any namespace can steer it and read it back:
 *
 *   GET /control?error_rate=0.5&error_code=503&latency_ms=10:20&slow_rate=0.01&slow_ms=300
 *   GET /stats
 *
 * It touches nothing but the socket it listens on; SIGTERM or SIGINT ends it with status 0.
 *
 * Design: one thread per connection. Latency is injected with a plain sleep, which only
 * holds up the connection that asked, and keeps pipelined responses in order for free;
 * a few hundred keep-alive connections cost a few hundred mostly idle threads, which is
 * far below what the tests need to worry about.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_HEADER	16384		/* request line + headers; more is answered with 431 */
#define IN_BUF		(MAX_HEADER + 4096)
#define OUT_BUF		32768
#define MAX_NAME	128
#define NSTATUS		600
#define MAX_DELAY_US	(600u * 1000 * 1000)	/* 10 min: anything longer is a typo */
#define LINGER_MS	2000
#define THREAD_STACK	(256 * 1024)
#define MIN_U(a, b)	((a) < (b) ? (a) : (b))

/* What the next request should experience; replaced as a whole by /control. */
struct behaviour {
	double error_rate;
	int error_code;
	unsigned int lat_min_us;
	unsigned int lat_max_us;
	double slow_rate;
	unsigned int slow_us;
};

static struct behaviour behaviour = { .error_code = 500 };
static pthread_mutex_t behaviour_lock = PTHREAD_MUTEX_INITIALIZER;

static char name[MAX_NAME + 1] = "backend";
static bool quiet;
static FILE *request_log; /* --log: one line per request, for webhook tests */
static pthread_mutex_t request_log_lock = PTHREAD_MUTEX_INITIALIZER;
static int idle_timeout_s = 60;

static atomic_ullong n_requests;
static atomic_ullong n_bad;
static atomic_ullong n_conns;
static atomic_llong n_active;
static atomic_ullong n_status[NSTATUS];

struct request {
	const char *target;
	size_t target_len;
	unsigned long long content_length;
	bool keep_alive;
	bool head;
};

struct conn {
	int fd;
	uint64_t rng;
	unsigned long long skip;	/* body bytes of the last request still to discard */
	size_t off, len;		/* unparsed input is in[off, len) */
	size_t out_len;
	char in[IN_BUF];
	char out[OUT_BUF];
};

static void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void log_info(const char *fmt, ...)
{
	va_list ap;

	if (quiet)
		return;
	va_start(ap, fmt);
	fprintf(stderr, "test-backend %s: ", name);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* xorshift64*: each connection draws its own numbers, so there is no shared state. */
static double rnd01(struct conn *c)
{
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return (double)((c->rng * 2685821657736338717ull) >> 11) * 0x1.0p-53;
}

static void sleep_us(unsigned int us)
{
	struct timespec ts = { .tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---- value parsing, shared by the command line and /control ---- */

static int parse_fraction(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0.0 && v <= 1.0))
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_ms(const char *s, const char *stop, unsigned int *us)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || end != stop || !(v >= 0.0) || v * 1000.0 > MAX_DELAY_US)
		return -EINVAL;
	*us = (unsigned int)(v * 1000.0 + 0.5);
	return 0;
}

/* "MIN" or "MIN:MAX", milliseconds, fractions allowed */
static int parse_latency(const char *s, unsigned int *min_us, unsigned int *max_us)
{
	const char *colon = strchr(s, ':');
	unsigned int lo, hi;

	if (!colon) {
		if (parse_ms(s, s + strlen(s), &lo))
			return -EINVAL;
		hi = lo;
	} else if (parse_ms(s, colon, &lo) || parse_ms(colon + 1, colon + 1 + strlen(colon + 1),
						     &hi) || hi < lo) {
		return -EINVAL;
	}
	*min_us = lo;
	*max_us = hi;
	return 0;
}

/*
 * Error codes must be final responses that carry a body: 1xx would confuse every client's
 * framing, and 204/304 are defined to have no body, but we always send "NAME\n".
 */
static int parse_code(const char *s, int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 200 || v > 599 || v == 204 || v == 304)
		return -EINVAL;
	*out = (int)v;
	return 0;
}

static const char *reason(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 408: return "Request Timeout";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Status";
	}
}

/* Writes s as a JSON string; names come from the command line, so quote what needs it. */
static size_t json_str(char *dst, size_t cap, const char *s)
{
	size_t n = 0;

#define PUT(ch) do { if (n + 1 < cap) dst[n] = (ch); n++; } while (0)
	PUT('"');
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			PUT('\\');
			PUT((char)ch);
		} else if (ch < 0x20) {
			char esc[8];

			snprintf(esc, sizeof(esc), "\\u%04x", ch);
			for (char *e = esc; *e; e++)
				PUT(*e);
		} else {
			PUT((char)ch);
		}
	}
	PUT('"');
#undef PUT
	if (cap)
		dst[n < cap ? n : cap - 1] = '\0';
	return n;
}

/* ---- HTTP request parsing ---- */

static bool is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

static bool token_eq(const char *p, size_t n, const char *lit)
{
	return strlen(lit) == n && !strncasecmp(p, lit, n);
}

/* Connection is a comma separated list of options; only two of them matter here. */
static void parse_connection(const char *v, size_t n, bool *close, bool *keep)
{
	size_t i = 0;

	while (i < n) {
		size_t s, e;

		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		while (i < n && v[i] != ',')
			i++;
		e = i;
		while (e > s && (v[e - 1] == ' ' || v[e - 1] == '\t'))
			e--;
		if (token_eq(v + s, e - s, "close"))
			*close = true;
		else if (token_eq(v + s, e - s, "keep-alive"))
			*keep = true;
	}
}

/*
 * Parses one request head from p[0, n).
 * Returns its length in bytes, 0 when more input is needed, -EBADMSG for garbage,
 * -E2BIG when the head is too long and -ENOTSUP for a body framing we do not implement.
 * Bare LF line ends are taken too: hand-written test clients send them.
 */
static int parse_request(const char *p, size_t n, struct request *r)
{
	bool conn_close = false, conn_keep = false, have_cl = false;
	const char *line, *nl, *sp1, *sp2;
	size_t pos = 0, len;
	int minor;

	memset(r, 0, sizeof(*r));

	/* RFC 9112 2.2: ignore empty lines before the request line */
	while (pos < n && (p[pos] == '\r' || p[pos] == '\n')) {
		if (p[pos] == '\r' && (pos + 1 == n || p[pos + 1] != '\n'))
			return pos + 1 == n ? 0 : -EBADMSG;
		pos += p[pos] == '\r' ? 2 : 1;
	}

	for (bool first = true;; first = false) {
		nl = memchr(p + pos, '\n', n - pos);
		if (!nl)
			return n >= MAX_HEADER ? -E2BIG : 0;
		if ((size_t)(nl - p) >= MAX_HEADER)
			return -E2BIG;
		line = p + pos;
		len = nl - line;
		if (len && line[len - 1] == '\r')
			len--;
		pos = nl - p + 1;
		for (size_t i = 0; i < len; i++) {
			unsigned char ch = (unsigned char)line[i];

			if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
				return -EBADMSG;
		}

		if (first) {
			/* METHOD SP request-target SP HTTP/1.x */
			sp1 = memchr(line, ' ', len);
			if (!sp1 || sp1 == line)
				return -EBADMSG;
			for (const char *q = line; q < sp1; q++)
				if (!is_tchar((unsigned char)*q))
					return -EBADMSG;
			sp2 = memchr(sp1 + 1, ' ', len - (sp1 + 1 - line));
			if (!sp2 || sp2 == sp1 + 1)
				return -EBADMSG;
			if (line + len - (sp2 + 1) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) ||
			    sp2[8] < '0' || sp2[8] > '9')
				return -EBADMSG;
			for (const char *q = sp1 + 1; q < sp2; q++)
				if (*q == '\t')
					return -EBADMSG;
			minor = sp2[8] - '0';
			r->target = sp1 + 1;
			r->target_len = sp2 - (sp1 + 1);
			r->head = sp1 - line == 4 && !memcmp(line, "HEAD", 4);
			continue;
		}

		if (!len)
			break;

		/* field-name ":" OWS field-value OWS; obsolete line folding is refused */
		const char *colon = memchr(line, ':', len);
		const char *v, *ve;

		if (!colon || colon == line)
			return -EBADMSG;
		for (const char *q = line; q < colon; q++)
			if (!is_tchar((unsigned char)*q))
				return -EBADMSG;
		v = colon + 1;
		ve = line + len;
		while (v < ve && (*v == ' ' || *v == '\t'))
			v++;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;

		if (token_eq(line, colon - line, "content-length")) {
			unsigned long long cl = 0;

			if (v == ve)
				return -EBADMSG;
			for (const char *q = v; q < ve; q++) {
				if (*q < '0' || *q > '9' || cl > (ULLONG_MAX >> 4))
					return -EBADMSG;
				cl = cl * 10 + (unsigned)(*q - '0');
			}
			/* differing lengths are a request smuggling vector: refuse */
			if (have_cl && cl != r->content_length)
				return -EBADMSG;
			have_cl = true;
			r->content_length = cl;
		} else if (token_eq(line, colon - line, "transfer-encoding")) {
			return -ENOTSUP;
		} else if (token_eq(line, colon - line, "connection")) {
			parse_connection(v, ve - v, &conn_close, &conn_keep);
		}
	}

	r->keep_alive = !conn_close && (minor >= 1 || conn_keep);
	return (int)pos;
}

/* ---- output ---- */

static int send_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int flush_out(struct conn *c)
{
	int err = send_all(c->fd, c->out, c->out_len);

	c->out_len = 0;
	return err;
}

/* Queues data behind earlier pipelined responses; large pieces go straight out. */
static int queue_out(struct conn *c, const char *p, size_t n)
{
	int err;

	if (c->out_len + n > OUT_BUF) {
		err = flush_out(c);
		if (err)
			return err;
	}
	if (n > OUT_BUF)
		return send_all(c->fd, p, n);
	memcpy(c->out + c->out_len, p, n);
	c->out_len += n;
	return 0;
}

static int respond(struct conn *c, int code, const char *ctype, const char *body, size_t blen,
		   bool keep_alive, bool head)
{
	char hdr[512];
	int n, err;

	n = snprintf(hdr, sizeof(hdr),
		     "HTTP/1.1 %d %s\r\n"
		     "X-Backend: %s\r\n"
		     "Content-Type: %s\r\n"
		     "Content-Length: %zu\r\n"
		     "Connection: %s\r\n"
		     "\r\n",
		     code, reason(code), name, ctype, blen, keep_alive ? "keep-alive" : "close");
	if (n < 0 || (size_t)n >= sizeof(hdr))
		return -EOVERFLOW;
	err = queue_out(c, hdr, (size_t)n);
	if (!err && !head)
		err = queue_out(c, body, blen);
	return err;
}

/* ---- control and stats ---- */

static size_t behaviour_json(char *buf, size_t cap, const struct behaviour *b)
{
	char qname[2 * MAX_NAME + 16];
	int n;

	json_str(qname, sizeof(qname), name);
	n = snprintf(buf, cap,
		     "{\"name\":%s,\"error_rate\":%g,\"error_code\":%d,"
		     "\"latency_min_ms\":%g,\"latency_max_ms\":%g,"
		     "\"slow_rate\":%g,\"slow_ms\":%g}\n",
		     qname, b->error_rate, b->error_code, b->lat_min_us / 1000.0,
		     b->lat_max_us / 1000.0, b->slow_rate, b->slow_us / 1000.0);
	return n < 0 ? 0 : ((size_t)n < cap ? (size_t)n : cap - 1);
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* URL-decodes p[0, n) into dst (NUL terminated); curl may send ':' as %3A. */
static int url_decode(const char *p, size_t n, char *dst, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char ch = p[i];

		if (ch == '%') {
			int hi, lo;

			if (i + 2 >= n)
				return -EINVAL;
			hi = hexval(p[i + 1]);
			lo = hexval(p[i + 2]);
			if (hi < 0 || lo < 0)
				return -EINVAL;
			ch = (char)(hi * 16 + lo);
			i += 2;
		} else if (ch == '+') {
			ch = ' ';
		}
		if (!ch || o + 1 >= cap)
			return -EINVAL;
		dst[o++] = ch;
	}
	dst[o] = '\0';
	return 0;
}

static void reset_stats(void)
{
	atomic_store(&n_requests, 0);
	atomic_store(&n_bad, 0);
	atomic_store(&n_conns, 0);
	for (int i = 0; i < NSTATUS; i++)
		atomic_store(&n_status[i], 0);
}

/*
 * Applies every parameter of the query or none of them: the new behaviour is built on a
 * copy and published under the lock, so a request never sees half an update.
 */
static int handle_control(struct conn *c, const char *q, size_t qlen, const struct request *r)
{
	char body[1024], key[64], val[128], msg[256], qmsg[600];
	struct behaviour nb;
	bool do_reset = false;
	size_t blen;
	int err = 0;

	pthread_mutex_lock(&behaviour_lock);
	nb = behaviour;
	for (size_t i = 0; i < qlen && !err;) {
		size_t s = i, e, eq;

		while (i < qlen && q[i] != '&')
			i++;
		e = i++;
		if (e == s)
			continue;
		for (eq = s; eq < e && q[eq] != '='; eq++)
			;
		if (url_decode(q + s, eq - s, key, sizeof(key)) ||
		    url_decode(q + eq + (eq < e), e - eq - (eq < e), val, sizeof(val))) {
			snprintf(msg, sizeof(msg), "bad encoding in query");
			err = -EINVAL;
			break;
		}
		if (!strcmp(key, "error_rate"))
			err = parse_fraction(val, &nb.error_rate);
		else if (!strcmp(key, "error_code"))
			err = parse_code(val, &nb.error_code);
		else if (!strcmp(key, "latency_ms"))
			err = parse_latency(val, &nb.lat_min_us, &nb.lat_max_us);
		else if (!strcmp(key, "slow_rate"))
			err = parse_fraction(val, &nb.slow_rate);
		else if (!strcmp(key, "slow_ms"))
			err = parse_ms(val, val + strlen(val), &nb.slow_us);
		else if (!strcmp(key, "reset_stats"))
			do_reset = !strcmp(val, "1") || !strcmp(val, "true");
		else
			err = -ENOENT;
		if (err)
			snprintf(msg, sizeof(msg), "%s %s=%s", err == -ENOENT ?
				 "unknown parameter" : "bad value for", key, val);
	}
	if (!err)
		behaviour = nb;
	pthread_mutex_unlock(&behaviour_lock);

	if (err) {
		json_str(qmsg, sizeof(qmsg), msg);
		snprintf(body, sizeof(body), "{\"error\":%s}\n", qmsg);
		return respond(c, 400, "application/json", body, strlen(body), r->keep_alive,
			       r->head);
	}
	if (do_reset)
		reset_stats();
	blen = behaviour_json(body, sizeof(body), &nb);
	log_info("control: error_rate=%g error_code=%d latency_ms=%g:%g slow_rate=%g slow_ms=%g%s",
		 nb.error_rate, nb.error_code, nb.lat_min_us / 1000.0, nb.lat_max_us / 1000.0,
		 nb.slow_rate, nb.slow_us / 1000.0, do_reset ? " (stats reset)" : "");
	return respond(c, 200, "application/json", body, blen, r->keep_alive, r->head);
}

static int handle_stats(struct conn *c, const struct request *r)
{
	char body[NSTATUS * 32 + 512], qname[2 * MAX_NAME + 16];
	size_t n = 0;
	bool first = true;

	json_str(qname, sizeof(qname), name);
	n += snprintf(body + n, sizeof(body) - n, "{\"name\":%s,\"requests\":%llu,\"by_status\":{",
		      qname, atomic_load(&n_requests));
	for (int i = 0; i < NSTATUS; i++) {
		unsigned long long v = atomic_load(&n_status[i]);

		if (!v)
			continue;
		n += snprintf(body + n, sizeof(body) - n, "%s\"%d\":%llu", first ? "" : ",", i, v);
		first = false;
	}
	n += snprintf(body + n, sizeof(body) - n,
		      "},\"connections\":%llu,\"active_connections\":%lld,\"bad_requests\":%llu}\n",
		      atomic_load(&n_conns), atomic_load(&n_active), atomic_load(&n_bad));
	return respond(c, 200, "application/json", body, n, r->keep_alive, r->head);
}

/* ---- request handling ---- */

static bool path_is(const struct request *r, const char *path, const char **query, size_t *qlen)
{
	size_t plen = strlen(path);

	if (r->target_len < plen || memcmp(r->target, path, plen))
		return false;
	if (r->target_len == plen) {
		*query = r->target + plen;
		*qlen = 0;
		return true;
	}
	if (r->target[plen] != '?')
		return false;
	*query = r->target + plen + 1;
	*qlen = r->target_len - plen - 1;
	return true;
}

static int handle_request(struct conn *c, const struct request *r)
{
	struct behaviour b;
	unsigned int delay_us;
	const char *q;
	size_t qlen;
	char body[MAX_NAME + 2];
	int code = 200, err;

	if (path_is(r, "/control", &q, &qlen))
		return handle_control(c, q, qlen, r);
	if (path_is(r, "/stats", &q, &qlen))
		return handle_stats(c, r);

	pthread_mutex_lock(&behaviour_lock);
	b = behaviour;
	pthread_mutex_unlock(&behaviour_lock);

	if (b.error_rate > 0 && rnd01(c) < b.error_rate)
		code = b.error_code;
	if (b.slow_rate > 0 && rnd01(c) < b.slow_rate)
		delay_us = b.slow_us;
	else if (b.lat_max_us == b.lat_min_us)
		delay_us = b.lat_min_us;
	else
		/* the product can round up to MAX + 1 */
		delay_us = MIN_U(b.lat_max_us, b.lat_min_us + (unsigned int)(rnd01(c) *
				 (b.lat_max_us - b.lat_min_us + 1.0)));
	if (delay_us) {
		/* earlier pipelined answers must not wait for this one's delay */
		err = flush_out(c);
		if (err)
			return err;
		sleep_us(delay_us);
	}

	snprintf(body, sizeof(body), "%s\n", name);
	err = respond(c, code, "text/plain", body, strlen(body), r->keep_alive, r->head);
	atomic_fetch_add_explicit(&n_requests, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&n_status[code], 1, memory_order_relaxed);
	return err;
}

/*
 * Closing a socket that still has unread input makes the kernel send RST, and an RST can
 * overtake the response we just wrote. So half-close, and drain for a short while until
 * the client closes its side.
 */
static void lingering_close(int fd)
{
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200 * 1000 };
	char sink[4096];
	int waited_ms = 0;

	shutdown(fd, SHUT_WR);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (waited_ms < LINGER_MS) {
		ssize_t n = recv(fd, sink, sizeof(sink), 0);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			break;
		if (n < 0)
			waited_ms += 200;
	}
	close(fd);
}

static int reject(struct conn *c, int code)
{
	char body[MAX_NAME + 2];
	int err;

	atomic_fetch_add_explicit(&n_bad, 1, memory_order_relaxed);
	snprintf(body, sizeof(body), "%s\n", name);
	err = respond(c, code, "text/plain", body, strlen(body), false, false);
	return err ? err : flush_out(c);
}

/*
 * --log: wait for the request's body (bounded by the input buffer), then
 * write "TARGET BODY" on one line. Webhook tests read what was POSTed here.
 */
static int log_request(struct conn *c, const struct request *r)
{
	size_t need = r->content_length < IN_BUF / 2 ? (size_t)r->content_length : 0;
	char line[IN_BUF];
	size_t n = 0;

	while (c->len - c->off < need) {
		ssize_t got;

		if (c->off) {
			memmove(c->in, c->in + c->off, c->len - c->off);
			c->len -= c->off;
			c->off = 0;
		}
		got = recv(c->fd, c->in + c->len, IN_BUF - c->len, 0);
		if (got <= 0)
			return -EPIPE;
		c->len += (size_t)got;
	}
	n += snprintf(line, sizeof(line), "%.*s ", (int)r->target_len, r->target);
	for (size_t i = 0; i < need && n < sizeof(line) - 2; i++) {
		char ch = c->in[c->off + i];

		line[n++] = ch == '\n' || ch == '\r' ? ' ' : ch;
	}
	line[n++] = '\n';
	pthread_mutex_lock(&request_log_lock);
	fwrite(line, 1, n, request_log);
	fflush(request_log);
	pthread_mutex_unlock(&request_log_lock);
	return 0;
}

static void *conn_main(void *arg)
{
	struct conn *c = arg;
	struct request r;
	bool linger = false;
	int rc;

	for (;;) {
		if (c->skip) {
			size_t have = c->len - c->off;
			size_t take = have < c->skip ? have : (size_t)c->skip;

			c->off += take;
			c->skip -= take;
		}
		if (!c->skip) {
			rc = parse_request(c->in + c->off, c->len - c->off, &r);
			if (rc > 0) {
				c->off += (size_t)rc;
				const char *q;
				size_t ql;

				if (request_log && !path_is(&r, "/control", &q, &ql) &&
				    !path_is(&r, "/stats", &q, &ql) && log_request(c, &r))
					break;
				c->skip = r.content_length;
				if (handle_request(c, &r))
					break;
				if (!r.keep_alive) {
					linger = !flush_out(c);
					break;
				}
				continue;
			}
			if (rc < 0) {
				linger = !reject(c, rc == -E2BIG ? 431 : rc == -ENOTSUP ? 501 :
						 400);
				break;
			}
		}

		/* nothing complete is buffered: answer what we have before blocking */
		if (flush_out(c))
			break;
		if (c->off == c->len) {
			c->off = c->len = 0;
		} else if (c->off) {
			memmove(c->in, c->in + c->off, c->len - c->off);
			c->len -= c->off;
			c->off = 0;
		}
		ssize_t n = recv(c->fd, c->in + c->len, IN_BUF - c->len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;	/* EOF, reset, or idle timeout (EAGAIN) */
		c->len += (size_t)n;
	}

	if (linger)
		lingering_close(c->fd);
	else
		close(c->fd);
	atomic_fetch_sub(&n_active, 1);
	free(c);
	return NULL;
}

/* ---- setup ---- */

/* "1.2.3.4:80", "[::1]:80", "[fe80::1%veth0]:80" -> socket address */
static int parse_listen(const char *s, struct addrinfo **res)
{
	struct addrinfo hints = {
		.ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
	};
	char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
	const char *port, *hs, *he;
	char *end;
	long pv;

	if (s[0] == '[') {
		hs = s + 1;
		he = strchr(hs, ']');
		if (!he || he[1] != ':')
			return -EINVAL;
		port = he + 2;
		hints.ai_family = AF_INET6;
	} else {
		hs = s;
		he = strrchr(s, ':');
		if (!he || memchr(s, ':', he - s))
			return -EINVAL;
		port = he + 1;
		hints.ai_family = AF_INET;
	}
	if ((size_t)(he - hs) >= sizeof(host) || he == hs)
		return -EINVAL;
	memcpy(host, hs, he - hs);
	host[he - hs] = '\0';
	errno = 0;
	pv = strtol(port, &end, 10);
	if (errno || end == port || *end || pv < 0 || pv > 65535)
		return -EINVAL;
	return getaddrinfo(host, port, &hints, res) ? -EINVAL : 0;
}

static int open_listener(const struct addrinfo *ai)
{
	int one = 1, fd, err;

	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 4096)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static void print_bound(int fd)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char host[INET6_ADDRSTRLEN + IF_NAMESIZE + 2], port[8];

	if (quiet || getsockname(fd, (struct sockaddr *)&ss, &sl) ||
	    getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV))
		return;
	/* stdout, so a test that asked for port 0 can read the port it got */
	if (ss.ss_family == AF_INET6)
		printf("test-backend %s: listening on [%s]:%s\n", name, host, port);
	else
		printf("test-backend %s: listening on %s:%s\n", name, host, port);
	fflush(stdout);
}

static void *signal_main(void *arg)
{
	sigset_t *set = arg;
	int sig = 0;

	sigwait(set, &sig);
	log_info("signal %d: exiting after %llu requests on %llu connections", sig,
		 atomic_load(&n_requests), atomic_load(&n_conns));
	fflush(stdout);
	fflush(stderr);
	/* connection threads may be asleep in an injected delay; do not wait for them */
	_exit(0);
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: test-backend --listen ADDR:PORT [OPTIONS]\n"
"\n"
"HTTP/1.1 server standing in for a pod in sluice's end-to-end tests. Every response has\n"
"the header 'X-Backend: NAME', a Content-Length and the body 'NAME\\n'.\n"
"\n"
"Options:\n"
"  --listen ADDR:PORT    address to listen on: 198.18.0.2:8080, [fd00:5c::2]:8080,\n"
"                        0.0.0.0:8080 or [::]:8080. Port 0 picks a free port.\n"
"  --name NAME           backend name for X-Backend and the body (default 'backend';\n"
"                        printable, at most %d bytes)\n"
"  --error-rate F        fraction 0..1 of requests answered with the error code (default 0)\n"
"  --error-code N        status of those errors, 200..599 except 204 and 304 (default 500)\n"
"  --latency-ms MIN[:MAX]\n"
"                        delay every response uniformly in [MIN, MAX] ms (default 0)\n"
"  --slow-rate F         fraction 0..1 of requests delayed --slow-ms instead (default 0);\n"
"                        with --latency-ms this shapes a p99 tail\n"
"  --slow-ms N           delay of the slow requests in ms (default 0)\n"
"  --idle-timeout-s N    close keep-alive connections idle this long (default 60)\n"
"  --log FILE            append 'TARGET BODY' per request (not /control, /stats):\n"
"                        what a webhook receiver got\n"
"  --quiet               print nothing but errors (not even the listening line)\n"
"  --help                this text\n"
"\n"
"HTTP: keep-alive by default for HTTP/1.1, for HTTP/1.0 with 'Connection: keep-alive';\n"
"'Connection: close' is honoured; pipelined requests are answered in order; request\n"
"bodies with Content-Length are read and ignored. Malformed requests get 400 (headers\n"
"over %d bytes 431, Transfer-Encoding 501) and the connection is closed.\n"
"\n"
"Control, on the same port, never delayed, failed or counted, any method:\n"
"  GET /control?error_rate=0.5&error_code=503&latency_ms=10:20&slow_rate=0.01&slow_ms=300\n"
"        changes any subset of the settings at once for requests that arrive after it\n"
"        (a bad or unknown parameter changes nothing and answers 400). Add\n"
"        reset_stats=1 to zero the counters. Answers 200 with the settings as JSON:\n"
"        {\"name\":..,\"error_rate\":..,\"error_code\":..,\"latency_min_ms\":..,\n"
"         \"latency_max_ms\":..,\"slow_rate\":..,\"slow_ms\":..}\n"
"  GET /stats\n"
"        {\"name\":..,\"requests\":N,\"by_status\":{\"200\":N,\"500\":N},\"connections\":N,\n"
"         \"active_connections\":N,\"bad_requests\":N}\n"
"        requests and by_status count answered requests other than control ones;\n"
"        connections counts accepted connections (control ones included);\n"
"        bad_requests counts requests rejected as malformed.\n"
"\n"
"On start it prints 'test-backend NAME: listening on ADDR:PORT' on stdout.\n"
"SIGTERM or SIGINT: exit 0 at once. Exit 2 on bad arguments, 1 when it cannot listen.\n",
		MAX_NAME, MAX_HEADER);
}

static void __attribute__((noreturn)) die_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "test-backend: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'test-backend --help'.\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "name", required_argument, NULL, 'n' },
		{ "error-rate", required_argument, NULL, 'e' },
		{ "error-code", required_argument, NULL, 'c' },
		{ "latency-ms", required_argument, NULL, 't' },
		{ "slow-rate", required_argument, NULL, 's' },
		{ "slow-ms", required_argument, NULL, 'S' },
		{ "log", required_argument, NULL, 'L' },
		{ "idle-timeout-s", required_argument, NULL, 'i' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct addrinfo *ai = NULL;
	const char *listen_arg = NULL;
	pthread_attr_t attr;
	pthread_t th;
	sigset_t set;
	uint64_t seed = 0;
	char *end;
	int opt, lfd;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			listen_arg = optarg;
			break;
		case 'n':
			if (!*optarg || strlen(optarg) > MAX_NAME)
				die_usage("--name must be 1..128 bytes: '%s'", optarg);
			for (const char *p = optarg; *p; p++)
				if ((unsigned char)*p < 0x21 || *p == 0x7f)
					die_usage("--name must be printable without spaces: '%s'",
						  optarg);
			strcpy(name, optarg);
			break;
		case 'e':
			if (parse_fraction(optarg, &behaviour.error_rate))
				die_usage("--error-rate wants a fraction 0..1, got '%s'", optarg);
			break;
		case 'c':
			if (parse_code(optarg, &behaviour.error_code))
				die_usage("--error-code wants 200..599 except 204/304, got '%s'",
					  optarg);
			break;
		case 't':
			if (parse_latency(optarg, &behaviour.lat_min_us, &behaviour.lat_max_us))
				die_usage("--latency-ms wants MIN[:MAX], MIN <= MAX, got '%s'",
					  optarg);
			break;
		case 's':
			if (parse_fraction(optarg, &behaviour.slow_rate))
				die_usage("--slow-rate wants a fraction 0..1, got '%s'", optarg);
			break;
		case 'S':
			if (parse_ms(optarg, optarg + strlen(optarg), &behaviour.slow_us))
				die_usage("--slow-ms wants milliseconds, got '%s'", optarg);
			break;
		case 'i':
			errno = 0;
			idle_timeout_s = (int)strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || idle_timeout_s < 1 ||
			    idle_timeout_s > 86400)
				die_usage("--idle-timeout-s wants 1..86400, got '%s'", optarg);
			break;
		case 'L':
			request_log = fopen(optarg, "a");
			if (!request_log) {
				fprintf(stderr, "test-backend: --log %s: %s\n", optarg,
					strerror(errno));
				return 2;
			}
			break;
		case 'q':
			quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			die_usage("%s", "bad option");
		}
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (!listen_arg)
		die_usage("%s", "--listen ADDR:PORT is required");
	if (parse_listen(listen_arg, &ai))
		die_usage("--listen wants IPv4:PORT or [IPv6]:PORT, got '%s'", listen_arg);

	lfd = open_listener(ai);
	if (lfd < 0) {
		fprintf(stderr, "test-backend: cannot listen on %s: %s\n", listen_arg,
			strerror(-lfd));
		return 1;
	}
	freeaddrinfo(ai);

	signal(SIGPIPE, SIG_IGN);
	/* every thread inherits the mask, so only the signal thread ever sees these */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&th, &attr, signal_main, &set)) {
		fprintf(stderr, "test-backend: cannot start the signal thread\n");
		return 1;
	}
	if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	print_bound(lfd);

	for (;;) {
		struct timeval tv = { .tv_sec = idle_timeout_s };
		int one = 1, fd, err;
		struct conn *c;

		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			/* out of descriptors or memory: back off rather than spin */
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				usleep(10000);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		tv.tv_sec = 30;
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));

		c = malloc(sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		c->skip = 0;
		c->off = c->len = c->out_len = 0;
		seed += 0x9e3779b97f4a7c15ull;
		c->rng = seed | 1;
		atomic_fetch_add(&n_conns, 1);
		atomic_fetch_add(&n_active, 1);
		err = pthread_create(&th, &attr, conn_main, c);
		if (err) {
			log_info("cannot start a connection thread: %s", strerror(err));
			atomic_fetch_sub(&n_active, 1);
			close(fd);
			free(c);
			usleep(10000);
		}
	}
}
