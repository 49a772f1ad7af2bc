// SPDX-License-Identifier: GPL-2.0
/*
 * loadgen - a bounded HTTP/1.1 load generator for sluice's tests and demos.
 *
 * It sends GET requests to one URL at a paced rate over keep-alive connections or one
 * connection per request, and reports what the clients saw: status codes, failures by
 * kind, which backend answered (the X-Backend response header that test-backend sets)
 * and the latency distribution, exact from every sample:
 *
 *   loadgen --url http://198.18.0.10:80/ --rate 500 --duration 5 --connections 8 --json
 *
 * A run always ends by itself: at --requests or at --duration (default 10 s, at most one
 * hour), whichever comes first; requests in flight then get up to --timeout-ms to finish.
 * SIGINT or SIGTERM ends it early, still with the report. It touches nothing but its own
 * client sockets. Exit 0 when it ran, even if every request failed; 2 on bad arguments.
 *
 * Design: one thread per connection, blocking-with-deadline I/O on non-blocking sockets.
 * Pacing is one schedule shared by all threads: the k-th request is due at start + k/R,
 * taken by whichever connection is free, so the rate does not depend on how the requests
 * spread over connections. Counters live behind one lock (a few hundred thousand updates
 * a second is far more than the tests need); latency samples are kept per thread and
 * merged at the end.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF		65536		/* per connection: a response head must fit */
#define NSTATUS		600
#define MAX_BACKENDS	256
#define MAX_BNAME	63
#define OVERFLOW_NAME	"(other)"	/* backends past MAX_BACKENDS */
#define NO_BACKEND	"(none)"	/* responses without X-Backend */
#define MAX_CONNS	1000
#define MAX_DURATION_S	3600.0
#define THREAD_STACK	(256 * 1024)
#define NSEC		1000000000ull

enum fail { F_REFUSED, F_RESET, F_TIMEOUT, F_OTHER, NFAIL };
static const char *const fail_names[NFAIL] = { "refused", "reset", "timeout", "other" };

struct config {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	const char *url;
	char *request;		/* the bytes of one request, built once */
	size_t request_len;
	double rate;		/* requests/s over all connections; 0 = unpaced */
	double duration_s;
	unsigned long long max_requests;
	int connections;
	bool close_mode;
	int timeout_ms;
	bool json;
	int interval_ms;
};

struct backend_count {
	char name[MAX_BNAME + 1];
	unsigned long long requests;
	unsigned long long status[NSTATUS];
};

struct counts {
	unsigned long long requests;	/* attempts: responses + failures */
	unsigned long long responses;
	unsigned long long status[NSTATUS];
	unsigned long long fail[NFAIL];
	unsigned long long connects;
	struct backend_count *be;
	size_t nbe;
};

struct samples {
	uint32_t *v;			/* microseconds */
	size_t n, cap;
};

struct response {
	int status;
	bool keep_alive;
	char backend[MAX_BNAME + 1];
};

struct worker {
	pthread_t th;
	int fd;
	size_t off, len;		/* unread input is in[off, len) */
	struct samples lat;
	char in[RBUF];
};

static struct config cfg = {
	.duration_s = 10.0,
	.max_requests = ~0ull,
	.connections = 4,
	.timeout_ms = 2000,
};

static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond;
static bool workers_done;
static struct counts total, interval;
static struct samples interval_lat;

static pthread_mutex_t sched_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long long issued;
static double next_due_ns;
static uint64_t start_ns, deadline_ns;

static atomic_int stop;			/* set by SIGINT/SIGTERM, read by every thread */

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC + (uint64_t)ts.tv_nsec;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int samples_push(struct samples *s, uint32_t v)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4096;
		uint32_t *nv = realloc(s->v, cap * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n++] = v;
	return 0;
}

/* ---- pacing ---- */

/*
 * Hands out the next request slot and the time it is due, or returns false when the run
 * is over. When the senders fall behind (a slow server, a stall), the overdue slots are
 * sent at once, but the backlog is capped at max(100 ms, C/R) worth of slots: past that,
 * slots are dropped, so a recovering server is not hit by an unbounded burst.
 */
static bool next_slot(uint64_t *due)
{
	uint64_t now = now_ns();
	bool ok = false;

	pthread_mutex_lock(&sched_lock);
	if (stop || issued >= cfg.max_requests || now >= deadline_ns)
		goto out;
	if (cfg.rate > 0) {
		double period = NSEC / cfg.rate;
		double lag = fmax(0.1 * NSEC, cfg.connections * period);
		double t = fmax(next_due_ns, (double)now - lag);

		if (t >= (double)deadline_ns)
			goto out;
		next_due_ns = t + period;
		*due = (uint64_t)t;
	} else {
		*due = now;
	}
	issued++;
	ok = true;
out:
	pthread_mutex_unlock(&sched_lock);
	return ok;
}

/* Sleeps until t, in slices, so that SIGINT is not held up by a slow rate. */
static void wait_until(uint64_t t)
{
	for (;;) {
		uint64_t now = now_ns(), d;
		struct timespec ts;

		if (now >= t || stop)
			return;
		d = t - now;
		if (d > 50 * 1000 * 1000)
			d = 50 * 1000 * 1000;
		ts.tv_sec = 0;
		ts.tv_nsec = (long)d;
		nanosleep(&ts, NULL);
	}
}

/* ---- counting ---- */

static struct backend_count *backend_slot(struct counts *c, const char *name)
{
	struct backend_count *b;

	for (size_t i = 0; i < c->nbe; i++)
		if (!strcmp(c->be[i].name, name))
			return &c->be[i];
	if (c->nbe == MAX_BACKENDS - 1)
		name = OVERFLOW_NAME;
	if (c->nbe == MAX_BACKENDS) {
		for (size_t i = 0; i < c->nbe; i++)
			if (!strcmp(c->be[i].name, OVERFLOW_NAME))
				return &c->be[i];
	}
	if (!c->be) {
		c->be = calloc(MAX_BACKENDS, sizeof(*c->be));
		if (!c->be)
			return NULL;
	}
	b = &c->be[c->nbe++];
	memset(b, 0, sizeof(*b));
	snprintf(b->name, sizeof(b->name), "%s", name);
	return b;
}

static void count_one(struct counts *c, int fail, const struct response *r)
{
	struct backend_count *b;

	c->requests++;
	if (fail >= 0) {
		c->fail[fail]++;
		return;
	}
	c->responses++;
	c->status[r->status]++;
	b = backend_slot(c, r->backend[0] ? r->backend : NO_BACKEND);
	if (b) {
		b->requests++;
		b->status[r->status]++;
	}
}

/* fail is an enum fail, or -1 for a response in r with its latency */
static void record(struct worker *w, int fail, const struct response *r, uint32_t lat_us)
{
	if (fail < 0)
		samples_push(&w->lat, lat_us);
	pthread_mutex_lock(&count_lock);
	count_one(&total, fail, r);
	if (cfg.interval_ms) {
		count_one(&interval, fail, r);
		if (fail < 0)
			samples_push(&interval_lat, lat_us);
	}
	pthread_mutex_unlock(&count_lock);
}

static void count_connect(void)
{
	pthread_mutex_lock(&count_lock);
	total.connects++;
	interval.connects++;
	pthread_mutex_unlock(&count_lock);
}

static int classify(int err)
{
	switch (err) {
	case -ECONNREFUSED:
		return F_REFUSED;
	case -ECONNRESET:
	case -EPIPE:
	case -ECONNABORTED:
	case -ENODATA:		/* the peer closed before the response was complete */
		return F_RESET;
	case -ETIMEDOUT:
		return F_TIMEOUT;
	default:
		return F_OTHER;
	}
}

/* ---- socket I/O, each step bounded by the request's deadline ---- */

static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		uint64_t now = now_ns();
		int ms, n;

		if (now >= deadline)
			return -ETIMEDOUT;
		ms = (int)((deadline - now + 999999) / 1000000);
		n = poll(&p, 1, ms);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

static void close_conn(struct worker *w)
{
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	w->off = w->len = 0;
}

static int open_conn(struct worker *w, uint64_t deadline)
{
	int one = 1, err = 0;
	socklen_t sl = sizeof(err);

	w->fd = socket(cfg.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (w->fd < 0)
		return -errno;
	w->off = w->len = 0;
	setsockopt(w->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(w->fd, (struct sockaddr *)&cfg.addr, cfg.addrlen)) {
		if (errno != EINPROGRESS)
			return -errno;
		err = wait_fd(w->fd, POLLOUT, deadline);
		if (err)
			return err;
		if (getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &err, &sl))
			return -errno;
		if (err)
			return -err;
	}
	count_connect();
	return 0;
}

static int send_all(struct worker *w, const char *p, size_t n, uint64_t deadline)
{
	while (n) {
		ssize_t s = send(w->fd, p, n, MSG_NOSIGNAL);

		if (s < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				int err = wait_fd(w->fd, POLLOUT, deadline);

				if (err)
					return err;
				continue;
			}
			return -errno;
		}
		p += s;
		n -= (size_t)s;
	}
	return 0;
}

/* Reads more input. Returns bytes read, 0 at EOF, or -errno. */
static ssize_t fill(struct worker *w, uint64_t deadline)
{
	if (w->off == w->len) {
		w->off = w->len = 0;
	} else if (w->len == RBUF) {
		if (!w->off)
			return -E2BIG;
		memmove(w->in, w->in + w->off, w->len - w->off);
		w->len -= w->off;
		w->off = 0;
	}
	for (;;) {
		ssize_t n = recv(w->fd, w->in + w->len, RBUF - w->len, 0);

		if (n >= 0) {
			w->len += (size_t)n;
			return n;
		}
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		int err = wait_fd(w->fd, POLLIN, deadline);

		if (err)
			return err;
	}
}

/* Discards n body bytes. */
static int skip_bytes(struct worker *w, unsigned long long n, uint64_t deadline)
{
	for (;;) {
		size_t have = w->len - w->off;
		size_t take = have < n ? have : (size_t)n;
		ssize_t r;

		w->off += take;
		n -= take;
		if (!n)
			return 0;
		r = fill(w, deadline);
		if (r <= 0)
			return r ? (int)r : -ENODATA;
	}
}

/* Makes a whole line available at in[off]; returns its length including the LF. */
static ssize_t get_line(struct worker *w, uint64_t deadline)
{
	for (;;) {
		char *nl = memchr(w->in + w->off, '\n', w->len - w->off);
		ssize_t r;

		if (nl)
			return nl - (w->in + w->off) + 1;
		r = fill(w, deadline);
		if (r <= 0)
			return r ? r : -ENODATA;
	}
}

static bool hdr_is(const char *line, size_t len, const char *name, const char **val,
		   size_t *vlen)
{
	size_t n = strlen(name);
	const char *v, *e;

	if (len <= n || line[n] != ':' || strncasecmp(line, name, n))
		return false;
	v = line + n + 1;
	e = line + len;
	while (v < e && (*v == ' ' || *v == '\t'))
		v++;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' || e[-1] == '\n'))
		e--;
	*val = v;
	*vlen = (size_t)(e - v);
	return true;
}

static bool list_has(const char *v, size_t n, const char *tok)
{
	size_t tl = strlen(tok);

	for (size_t i = 0; i + tl <= n; i++) {
		if (strncasecmp(v + i, tok, tl))
			continue;
		if ((i == 0 || v[i - 1] == ',' || v[i - 1] == ' ' || v[i - 1] == '\t') &&
		    (i + tl == n || v[i + tl] == ',' || v[i + tl] == ' ' || v[i + tl] == '\t'))
			return true;
	}
	return false;
}

static int read_chunked(struct worker *w, uint64_t deadline)
{
	for (;;) {
		unsigned long long size = 0;
		ssize_t ll = get_line(w, deadline);
		const char *p;
		int digits = 0, err;

		if (ll < 0)
			return (int)ll;
		for (p = w->in + w->off; *p != ';' && *p != '\r' && *p != '\n'; p++) {
			int d = (*p >= '0' && *p <= '9') ? *p - '0' :
				(*p >= 'a' && *p <= 'f') ? *p - 'a' + 10 :
				(*p >= 'A' && *p <= 'F') ? *p - 'A' + 10 : -1;

			if (d < 0 || ++digits > 15)
				return -EBADMSG;
			size = size * 16 + (unsigned)d;
		}
		if (!digits)
			return -EBADMSG;
		w->off += (size_t)ll;
		if (!size)
			break;
		err = skip_bytes(w, size, deadline);
		if (err)
			return err;
		ll = get_line(w, deadline);
		if (ll < 0)
			return (int)ll;
		if (ll > 2 || (ll == 2 && w->in[w->off] != '\r'))
			return -EBADMSG;
		w->off += (size_t)ll;
	}
	/* trailer fields up to the empty line */
	for (;;) {
		ssize_t ll = get_line(w, deadline);

		if (ll < 0)
			return (int)ll;
		w->off += (size_t)ll;
		if (ll == 1 || (ll == 2 && w->in[w->off - 2] == '\r'))
			return 0;
	}
}

/* Reads one whole response to a GET. Returns 0 with r filled, or -errno. */
static int read_response(struct worker *w, struct response *r, uint64_t deadline)
{
	unsigned long long clen = 0;
	bool have_clen, chunked, conn_close, conn_keep;
	int minor;
	ssize_t ll;

next:
	have_clen = chunked = conn_close = conn_keep = false;
	r->backend[0] = '\0';

	/* status line: HTTP/1.x SP 3DIGIT ... */
	ll = get_line(w, deadline);
	if (ll < 0)
		return (int)ll;
	{
		const char *s = w->in + w->off;

		if (ll < 13 || memcmp(s, "HTTP/1.", 7) || s[7] < '0' || s[7] > '9' ||
		    s[8] != ' ' || s[9] < '1' || s[9] > '5' || s[10] < '0' || s[10] > '9' ||
		    s[11] < '0' || s[11] > '9' || (s[12] != ' ' && s[12] != '\r' && s[12] != '\n'))
			return -EBADMSG;
		minor = s[7] - '0';
		r->status = (s[9] - '0') * 100 + (s[10] - '0') * 10 + (s[11] - '0');
		w->off += (size_t)ll;
	}

	for (;;) {
		const char *line, *v;
		size_t vlen;

		ll = get_line(w, deadline);
		if (ll < 0)
			return (int)ll;
		line = w->in + w->off;
		w->off += (size_t)ll;
		if (ll == 1 || (ll == 2 && line[0] == '\r'))
			break;
		if (hdr_is(line, (size_t)ll, "content-length", &v, &vlen)) {
			char *end;

			if (!vlen || vlen > 18 || v[0] < '0' || v[0] > '9')
				return -EBADMSG;
			clen = strtoull(v, &end, 10);
			if (end != v + vlen)
				return -EBADMSG;
			have_clen = true;
		} else if (hdr_is(line, (size_t)ll, "transfer-encoding", &v, &vlen)) {
			chunked = list_has(v, vlen, "chunked");
		} else if (hdr_is(line, (size_t)ll, "connection", &v, &vlen)) {
			conn_close |= list_has(v, vlen, "close");
			conn_keep |= list_has(v, vlen, "keep-alive");
		} else if (hdr_is(line, (size_t)ll, "x-backend", &v, &vlen)) {
			if (vlen > MAX_BNAME)
				vlen = MAX_BNAME;
			memcpy(r->backend, v, vlen);
			r->backend[vlen] = '\0';
		}
	}

	/* interim responses (100 Continue, 103 Early Hints) precede the real one */
	if (r->status < 200 && r->status != 101)
		goto next;

	r->keep_alive = !conn_close && (minor >= 1 || conn_keep);
	if (r->status == 204 || r->status == 304 || r->status == 101)
		return 0;
	if (chunked)
		return read_chunked(w, deadline);
	if (have_clen)
		return skip_bytes(w, clen, deadline);

	/* no framing: the body runs to the end of the connection */
	r->keep_alive = false;
	for (;;) {
		ssize_t n;

		w->off = w->len;
		n = fill(w, deadline);
		if (n == 0)
			return 0;
		if (n < 0)
			return (int)n;
	}
}

/*
 * A kept-alive connection that has become readable between requests was closed (or
 * reset) by the server while idle: reconnecting is what any client does, and it is not
 * a failure of the next request.
 */
static bool conn_stale(struct worker *w)
{
	struct pollfd p = { .fd = w->fd, .events = POLLIN | POLLRDHUP };

	return w->off != w->len || poll(&p, 1, 0) != 0;
}

/*
 * When the server has said it will close, let it close first so that it, not us, holds
 * the TIME_WAIT state: otherwise close mode at a few thousand requests a second runs out
 * of local ports. Bounded, so a server that never closes costs little.
 */
static void await_eof(struct worker *w, uint64_t deadline)
{
	while (fill(w, deadline) > 0)
		w->off = w->len;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint64_t due;

	w->fd = -1;
	while (next_slot(&due)) {
		struct response r = { 0 };
		uint64_t t0, deadline;
		int err;

		wait_until(due);
		if (w->fd >= 0 && conn_stale(w))
			close_conn(w);
		deadline = now_ns() + (uint64_t)cfg.timeout_ms * 1000000;
		if (w->fd < 0) {
			err = open_conn(w, deadline);
			if (err) {
				close_conn(w);
				record(w, classify(err), NULL, 0);
				continue;
			}
		}
		t0 = now_ns();
		err = send_all(w, cfg.request, cfg.request_len, deadline);
		if (!err)
			err = read_response(w, &r, deadline);
		if (err) {
			close_conn(w);
			record(w, classify(err), NULL, 0);
			continue;
		}
		uint64_t lat = (now_ns() - t0) / 1000;

		record(w, -1, &r, lat > UINT32_MAX ? UINT32_MAX : (uint32_t)lat);
		if (cfg.close_mode || !r.keep_alive) {
			uint64_t linger = now_ns() + 200 * 1000000ull;

			if (!r.keep_alive)
				await_eof(w, linger < deadline ? linger : deadline);
			close_conn(w);
		}
	}
	close_conn(w);
	return NULL;
}

/* ---- reporting ---- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* nearest rank on sorted samples: the smallest value with at least p of them at or below */
static double pct_ms(const struct samples *s, double p)
{
	size_t k = (size_t)ceil(p * (double)s->n);

	if (k < 1)
		k = 1;
	if (k > s->n)
		k = s->n;
	return s->v[k - 1] / 1000.0;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void json_status(FILE *f, const unsigned long long *status)
{
	bool first = true;

	fputc('{', f);
	for (int i = 0; i < NSTATUS; i++) {
		if (!status[i])
			continue;
		fprintf(f, "%s\"%d\":%llu", first ? "" : ",", i, status[i]);
		first = false;
	}
	fputc('}', f);
}

/* the counts part of both the final object and the interval lines */
static void json_counts(FILE *f, const struct counts *c)
{
	fprintf(f, "\"requests\":%llu,\"responses\":%llu,\"connects\":%llu,\"by_status\":",
		c->requests, c->responses, c->connects);
	json_status(f, c->status);
	fputs(",\"failures\":{", f);
	for (int i = 0; i < NFAIL; i++)
		fprintf(f, "%s\"%s\":%llu", i ? "," : "", fail_names[i], c->fail[i]);
	fputs("},\"by_backend\":{", f);
	for (size_t i = 0; i < c->nbe; i++) {
		fputs(i ? "," : "", f);
		json_str(f, c->be[i].name);
		fprintf(f, ":{\"requests\":%llu,\"by_status\":", c->be[i].requests);
		json_status(f, c->be[i].status);
		fputc('}', f);
	}
	fputc('}', f);
}

static void json_latency(FILE *f, struct samples *s)
{
	static const struct { const char *key; double p; } q[] = {
		{ "latency_p50_ms", 0.50 }, { "latency_p90_ms", 0.90 },
		{ "latency_p99_ms", 0.99 }, { "latency_max_ms", 1.0 },
	};
	double sum = 0;

	qsort(s->v, s->n, sizeof(*s->v), cmp_u32);
	for (size_t i = 0; i < s->n; i++)
		sum += s->v[i];
	for (size_t i = 0; i < sizeof(q) / sizeof(q[0]); i++) {
		if (s->n)
			fprintf(f, ",\"%s\":%.3f", q[i].key, pct_ms(s, q[i].p));
		else
			fprintf(f, ",\"%s\":null", q[i].key);
	}
	if (s->n)
		fprintf(f, ",\"latency_mean_ms\":%.3f", sum / (double)s->n / 1000.0);
	else
		fputs(",\"latency_mean_ms\":null", f);
	fprintf(f, ",\"latency_samples\":%zu", s->n);
}

/* Prints one interval line and starts the next interval. Called with count_lock held. */
static void print_interval(uint64_t now, uint64_t len_ns)
{
	printf("{\"t_ms\":%llu,\"interval_ms\":%llu,",
	       (unsigned long long)((now - start_ns) / 1000000),
	       (unsigned long long)(len_ns / 1000000));
	json_counts(stdout, &interval);
	json_latency(stdout, &interval_lat);
	fputs("}\n", stdout);
	fflush(stdout);
	memset(interval.status, 0, sizeof(interval.status));
	memset(interval.fail, 0, sizeof(interval.fail));
	interval.requests = interval.responses = interval.connects = 0;
	interval.nbe = 0;
	interval_lat.n = 0;
}

static void *interval_main(void *arg)
{
	uint64_t last = start_ns, next = start_ns + (uint64_t)cfg.interval_ms * 1000000;

	(void)arg;
	pthread_mutex_lock(&count_lock);
	while (!workers_done) {
		struct timespec ts = { .tv_sec = (time_t)(next / NSEC),
				       .tv_nsec = (long)(next % NSEC) };
		uint64_t now;

		pthread_cond_timedwait(&done_cond, &count_lock, &ts);
		now = now_ns();
		if (now >= next) {
			print_interval(now, now - last);
			last = now;
			next += (uint64_t)cfg.interval_ms * 1000000;
			if (next <= now)
				next = now + (uint64_t)cfg.interval_ms * 1000000;
		}
	}
	/* the tail of the run, shorter than an interval */
	if (interval.requests) {
		uint64_t now = now_ns();

		print_interval(now, now - last);
	}
	pthread_mutex_unlock(&count_lock);
	return NULL;
}

static void print_text(struct samples *lat, double elapsed)
{
	const struct counts *c = &total;
	unsigned long long fails = 0;
	bool first = true;

	for (int i = 0; i < NFAIL; i++)
		fails += c->fail[i];
	qsort(lat->v, lat->n, sizeof(*lat->v), cmp_u32);

	printf("loadgen %s  mode %s, %d connection%s, rate ", cfg.url,
	       cfg.close_mode ? "close" : "keepalive", cfg.connections,
	       cfg.connections == 1 ? "" : "s");
	if (cfg.rate > 0)
		printf("%g/s\n", cfg.rate);
	else
		printf("unpaced\n");
	printf("  %.3f s, %llu requests (%.1f/s), %llu responses, %llu failures, %llu connects\n",
	       elapsed, c->requests, elapsed > 0 ? c->requests / elapsed : 0.0, c->responses,
	       fails, c->connects);

	printf("  status    ");
	for (int i = 0; i < NSTATUS; i++) {
		if (!c->status[i])
			continue;
		printf("%s%d: %llu", first ? "" : "   ", i, c->status[i]);
		first = false;
	}
	printf("%s\n  failures  ", first ? "-" : "");
	for (int i = 0; i < NFAIL; i++)
		printf("%s%s: %llu", i ? "   " : "", fail_names[i], c->fail[i]);
	if (lat->n)
		printf("\n  latency   p50 %.3f ms   p90 %.3f ms   p99 %.3f ms   max %.3f ms"
		       "   (%zu samples)\n", pct_ms(lat, 0.5), pct_ms(lat, 0.9), pct_ms(lat, 0.99),
		       pct_ms(lat, 1.0), lat->n);
	else
		printf("\n  latency   - (no responses)\n");

	if (!c->nbe)
		return;
	printf("  %-20s %10s", "backend", "requests");
	for (int i = 0; i < NSTATUS; i++)
		if (c->status[i])
			printf(" %8d", i);
	printf("\n");
	for (size_t b = 0; b < c->nbe; b++) {
		printf("  %-20s %10llu", c->be[b].name, c->be[b].requests);
		for (int i = 0; i < NSTATUS; i++)
			if (c->status[i])
				printf(" %8llu", c->be[b].status[i]);
		printf("\n");
	}
}

/* ---- arguments ---- */

static bool json_errors;

static void __attribute__((noreturn, format(printf, 1, 2))) bad_args(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "loadgen: %s\nTry 'loadgen --help'.\n", msg);
	if (json_errors) {
		fputs("{\"error\":", stdout);
		json_str(stdout, msg);
		fputs("}\n", stdout);
	}
	exit(2);
}

static double arg_double(const char *opt, const char *s, double min, double max)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min && v <= max))
		bad_args("%s wants a number in [%g, %g], got '%s'", opt, min, max, s);
	return v;
}

static long long arg_int(const char *opt, const char *s, long long min, long long max)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		bad_args("%s wants an integer in [%lld, %lld], got '%s'", opt, min, max, s);
	return v;
}

/* http://HOST[:PORT][/PATH] with HOST an IPv4 address or [IPv6]; builds the request too */
static void parse_url(const char *url)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)&cfg.addr;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&cfg.addr;
	const char *p, *hs, *he, *auth_end;
	char host[INET6_ADDRSTRLEN];
	long port = 80;
	size_t plen;
	int n;

	if (strncasecmp(url, "http://", 7))
		bad_args("--url must start with http:// (no TLS), got '%s'", url);
	p = url + 7;
	auth_end = p + strcspn(p, "/?#");
	if (*p == '[') {
		hs = p + 1;
		he = memchr(hs, ']', auth_end - hs);
		if (!he)
			bad_args("--url: unterminated [IPv6] address in '%s'", url);
		p = he + 1;
	} else {
		hs = p;
		he = memchr(hs, ':', auth_end - hs);
		if (!he)
			he = auth_end;
		p = he;
	}
	if (he == hs || (size_t)(he - hs) >= sizeof(host))
		bad_args("--url: bad host in '%s'", url);
	memcpy(host, hs, he - hs);
	host[he - hs] = '\0';
	if (p < auth_end) {
		char *end;

		if (*p != ':')
			bad_args("--url: junk after the host in '%s'", url);
		errno = 0;
		port = strtol(p + 1, &end, 10);
		if (errno || end == p + 1 || end != auth_end || port < 1 || port > 65535)
			bad_args("--url: bad port in '%s'", url);
	}

	memset(&cfg.addr, 0, sizeof(cfg.addr));
	if (hs[-1] == '[') {
		if (inet_pton(AF_INET6, host, &a6->sin6_addr) != 1)
			bad_args("--url: '%s' is not an IPv6 address", host);
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		cfg.addrlen = sizeof(*a6);
	} else {
		if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
			bad_args("--url: '%s' is not an IPv4 address (names are not resolved)",
				 host);
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		cfg.addrlen = sizeof(*a4);
	}

	/* "http://h?x" asks for "/?x"; a fragment never goes on the wire */
	plen = strcspn(auth_end, "#");
	for (size_t i = 0; i < plen; i++)
		if ((unsigned char)auth_end[i] <= 0x20 || auth_end[i] == 0x7f)
			bad_args("--url: spaces or control characters in the path of '%s'", url);
	n = asprintf(&cfg.request,
		     "GET %s%.*s HTTP/1.1\r\nHost: %.*s\r\nUser-Agent: sluice-loadgen\r\n"
		     "Accept: */*\r\n%s\r\n",
		     *auth_end == '/' ? "" : "/", (int)plen, auth_end,
		     (int)(auth_end - (url + 7)), url + 7,
		     cfg.close_mode ? "Connection: close\r\n" : "");
	if (n < 0) {
		fprintf(stderr, "loadgen: out of memory\n");
		exit(1);
	}
	cfg.request_len = (size_t)n;
}

static void usage(void)
{
	printf(
"Usage: loadgen --url http://HOST:PORT/PATH [OPTIONS]\n"
"\n"
"Bounded HTTP/1.1 GET load generator. Reports status codes, failures by kind, the\n"
"backend that answered (X-Backend response header) and latency percentiles computed\n"
"exactly from every sample.\n"
"\n"
"Options:\n"
"  --url URL             http://IPv4[:PORT][/PATH] or http://[IPv6][:PORT][/PATH]; names\n"
"                        are not resolved; port 80 by default\n"
"  --rate R              requests/s over all connections, paced on a fixed schedule\n"
"                        (default 0: as fast as the connections go). When behind, overdue\n"
"                        requests go at once, but at most max(100 ms, C/R) worth of them;\n"
"                        older slots are skipped rather than sent in a burst\n"
"  --duration SEC        stop issuing requests after SEC seconds (default 10, max 3600)\n"
"  --requests N          stop after N requests (whichever of the two comes first)\n"
"  --connections C       concurrent connections, 1..%d (default 4)\n"
"  --mode keepalive|close\n"
"                        keepalive (default): C persistent connections, reopened when the\n"
"                        server closes one; close: a new connection per request, sent with\n"
"                        'Connection: close'\n"
"  --timeout-ms T        bound on connect + request + response, per request (default 2000)\n"
"  --json                print the report as one JSON object\n"
"  --interval-ms I       also print a JSON line every I ms with that interval's counts\n"
"  --help                this text\n"
"\n"
"Each request ends as a status code or a failure:\n"
"  refused   the connection was refused (RST to the SYN)\n"
"  reset     the connection was reset, or closed by the server before the response was\n"
"            complete (ECONNRESET, EPIPE, early EOF)\n"
"  timeout   no complete response within --timeout-ms (the connection is closed)\n"
"  other     anything else: unreachable, malformed response, no local ports...\n"
"A failed connection is counted once, for the request that used it, and reopened for the\n"
"next one. Latency runs from sending the request to the end of the response, so it\n"
"leaves out connecting; it covers responses only, whatever their status.\n"
"\n"
"JSON report keys: url, mode, connections, rate_rps, duration_s, requests, responses,\n"
"connects, by_status {code: n}, failures {refused, reset, timeout, other},\n"
"by_backend {name: {requests, by_status}}, throughput_rps, latency_p50_ms,\n"
"latency_p90_ms, latency_p99_ms, latency_max_ms, latency_mean_ms (null without\n"
"responses), latency_samples. Interval lines have t_ms, interval_ms and the same\n"
"count and latency keys for their interval. Responses without X-Backend count under\n"
"\"" NO_BACKEND "\".\n"
"\n"
"Requests in flight when the run ends get their timeout to finish. SIGINT/SIGTERM end\n"
"the run early, with the report. Exit 0 when it ran (whatever the outcome of the\n"
"requests), 2 on bad arguments, 1 when it could not start.\n", MAX_CONNS);
}

static void parse_args(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "rate", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' },
		{ "requests", required_argument, NULL, 'n' },
		{ "connections", required_argument, NULL, 'c' },
		{ "mode", required_argument, NULL, 'm' },
		{ "timeout-ms", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	const char *url = NULL;
	int opt;

	/* --json anywhere decides how argument errors are reported */
	for (int i = 1; i < argc; i++)
		if (!strcmp(argv[i], "--json"))
			json_errors = true;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
		switch (opt) {
		case 'u':
			url = optarg;
			break;
		case 'r':
			cfg.rate = arg_double("--rate", optarg, 0, 1e7);
			break;
		case 'd':
			cfg.duration_s = arg_double("--duration", optarg, 0.001, MAX_DURATION_S);
			break;
		case 'n':
			cfg.max_requests = (unsigned long long)arg_int("--requests", optarg, 1,
								      1000000000000ll);
			break;
		case 'c':
			cfg.connections = (int)arg_int("--connections", optarg, 1, MAX_CONNS);
			break;
		case 'm':
			if (!strcmp(optarg, "keepalive"))
				cfg.close_mode = false;
			else if (!strcmp(optarg, "close"))
				cfg.close_mode = true;
			else
				bad_args("--mode wants keepalive or close, got '%s'", optarg);
			break;
		case 't':
			cfg.timeout_ms = (int)arg_int("--timeout-ms", optarg, 1, 600000);
			break;
		case 'j':
			cfg.json = true;
			break;
		case 'i':
			cfg.interval_ms = (int)arg_int("--interval-ms", optarg, 10, 3600000);
			break;
		case 'h':
			usage();
			exit(0);
		case ':':
			bad_args("%s needs a value", argv[optind - 1]);
		default:
			bad_args("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		bad_args("unexpected argument '%s'", argv[optind]);
	if (!url)
		bad_args("--url is required");
	cfg.url = url;
	parse_url(url);
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct samples all = { 0 };
	pthread_condattr_t ca;
	pthread_attr_t attr;
	pthread_t ith;
	struct worker **w;
	double elapsed;
	int started = 0, err;

	parse_args(argc, argv);

	signal(SIGPIPE, SIG_IGN);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&done_cond, &ca);

	w = calloc((size_t)cfg.connections, sizeof(*w));
	if (!w) {
		fprintf(stderr, "loadgen: out of memory\n");
		return 1;
	}
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, THREAD_STACK);

	start_ns = now_ns();
	deadline_ns = start_ns + (uint64_t)(cfg.duration_s * NSEC);
	next_due_ns = (double)start_ns;

	if (cfg.interval_ms && pthread_create(&ith, &attr, interval_main, NULL)) {
		fprintf(stderr, "loadgen: cannot start the interval thread\n");
		return 1;
	}
	for (int i = 0; i < cfg.connections; i++) {
		w[i] = calloc(1, sizeof(**w));
		err = w[i] ? pthread_create(&w[i]->th, &attr, worker_main, w[i]) : ENOMEM;
		if (err) {
			/* run with what started rather than leave those threads unjoined */
			fprintf(stderr, "loadgen: cannot start connection %d: %s\n", i,
				strerror(err));
			free(w[i]);
			stop = 1;
			break;
		}
		started++;
	}
	for (int i = 0; i < started; i++) {
		pthread_join(w[i]->th, NULL);
		for (size_t k = 0; k < w[i]->lat.n; k++)
			samples_push(&all, w[i]->lat.v[k]);
		free(w[i]->lat.v);
		free(w[i]);
	}
	free(w);
	elapsed = (double)(now_ns() - start_ns) / NSEC;

	pthread_mutex_lock(&count_lock);
	workers_done = true;
	pthread_cond_signal(&done_cond);
	pthread_mutex_unlock(&count_lock);
	if (cfg.interval_ms)
		pthread_join(ith, NULL);
	if (!started)
		return 1;

	if (cfg.json) {
		printf("{\"url\":");
		json_str(stdout, cfg.url);
		printf(",\"mode\":\"%s\",\"connections\":%d,\"rate_rps\":%g,\"duration_s\":%.3f,",
		       cfg.close_mode ? "close" : "keepalive", cfg.connections, cfg.rate, elapsed);
		json_counts(stdout, &total);
		printf(",\"throughput_rps\":%.1f", elapsed > 0 ? total.requests / elapsed : 0.0);
		json_latency(stdout, &all);
		printf("}\n");
	} else {
		print_text(&all, elapsed);
	}
	free(all.v);
	free(total.be);
	free(interval.be);
	free(interval_lat.v);
	free(cfg.request);
	return 0;
}
