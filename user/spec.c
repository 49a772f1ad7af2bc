// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Canary specs: a Flagger Canary (flagger.app/v1beta1) plus sluice's
 * spec.steering block, read from JSON or YAML into struct spec_canary, and
 * written back out in a normalized form.
 *
 * Both formats become one cJSON tree (YAML through yaml_json.c), and one
 * validator walks it, so a field means the same thing and fails with the same
 * message whichever format it came in. The validator never stops at the first
 * problem: `sluice check` shows a user every error with its path at once.
 *
 * Three kinds of keys: those sluice acts on; Flagger's (and Kubernetes') that
 * it accepts without acting on them, listed in spec_canary.ignored so that
 * nothing is silently misread; and everything else, which is an error, since a
 * typo such as "stepweight" would otherwise quietly fall back to a default.
 *
 * One Canary per file: a YAML stream whose second document has content is an
 * error (yaml_json.c), not a second rollout, until the agent grows a notion of
 * several specs per file.
 *
 * Pure computation: no I/O except spec_parse_file() reading its file.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "spec.h"
#include "yaml_json.h"

#define SPEC_API_VERSION "flagger.app/v1beta1"
#define SPEC_KIND "Canary"
#define SPEC_FILE_MAX (1 << 20) /* a Canary is a few KiB; more is not a spec */
#define DNS1123_SUBDOMAIN_MAX 253
#define DNS1123_LABEL_MAX 63

static const char custom_metric_msg[] =
	"custom metrics need a metrics provider; sluice measures request-success-rate "
	"and request-duration in the kernel";

enum field_use {
	F_USE, /* sluice reads it */
	F_IGNORE, /* Flagger's, not acted on: reported in spec_canary.ignored */
	F_QUIET, /* bookkeeping (labels, status ...) that means nothing to a rollout */
};

struct field {
	const char *name;
	enum field_use use;
};

/* The walk's state: where in the document we are and what was found. */
struct vctx {
	struct spec_canary *c;
	struct spec_errors *errs;
	char path[sizeof(((struct spec_error *)0)->path)];
	size_t plen;
	/* Document index of each stored endpoint, to name the other of a duplicate. */
	int ep_index[2][SPEC_MAX_ENDPOINTS];
};

/* ---- errors and paths ---- */

/* Bounded copy; truncation is fine for messages and impossible for checked fields. */
static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = strnlen(src, size - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static void add_error(struct spec_errors *errs, const char *path, const char *reason)
{
	struct spec_error *e;

	if (errs->n >= (int)(sizeof(errs->e) / sizeof(errs->e[0]))) {
		errs->dropped++;
		return;
	}
	e = &errs->e[errs->n++];
	copy_str(e->path, sizeof(e->path), path);
	copy_str(e->reason, sizeof(e->reason), reason);
}

static void verr(struct vctx *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void verr(struct vctx *v, const char *fmt, ...)
{
	char reason[sizeof(((struct spec_error *)0)->reason)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	add_error(v->errs, v->path, reason);
}

/* Paths are built in place; push returns what pop needs to undo it. */
static size_t path_push(struct vctx *v, const char *key)
{
	size_t saved = v->plen, i;
	int n;

	if (!*key)
		return saved;

	n = snprintf(v->path + v->plen, sizeof(v->path) - v->plen, "%s%s",
		     v->plen ? "." : "", key);
	if (n > 0)
		v->plen += (size_t)n;
	if (v->plen >= sizeof(v->path))
		v->plen = sizeof(v->path) - 1;
	/* A key is the user's text too: keep each error on one line. */
	for (i = saved; i < v->plen; i++)
		if ((unsigned char)v->path[i] < 0x20 || v->path[i] == 0x7f)
			v->path[i] = '?';
	return saved;
}

static size_t path_push_index(struct vctx *v, int i)
{
	size_t saved = v->plen;
	int n;

	n = snprintf(v->path + v->plen, sizeof(v->path) - v->plen, "[%d]", i);
	if (n > 0)
		v->plen += (size_t)n;
	if (v->plen >= sizeof(v->path))
		v->plen = sizeof(v->path) - 1;
	return saved;
}

static void path_pop(struct vctx *v, size_t saved)
{
	v->plen = saved;
	v->path[saved] = '\0';
}

static void verr_at(struct vctx *v, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void verr_at(struct vctx *v, const char *key, const char *fmt, ...)
{
	char reason[sizeof(((struct spec_error *)0)->reason)];
	size_t saved = path_push(v, key);
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	add_error(v->errs, v->path, reason);
	path_pop(v, saved);
}

static void add_ignored(struct vctx *v, const char *key)
{
	struct spec_canary *c = v->c;
	size_t saved;

	if (c->n_ignored >= (int)(sizeof(c->ignored) / sizeof(c->ignored[0]))) {
		c->ignored_dropped++;
		return;
	}
	saved = path_push(v, key);
	copy_str(c->ignored[c->n_ignored++], sizeof(c->ignored[0]), v->path);
	path_pop(v, saved);
}

/*
 * A user's string inside a reason: quoted, control characters escaped and cut
 * short, so that garbage input cannot make an error message unreadable.
 */
static const char *quote(char *buf, size_t size, const char *s)
{
	/* room for one more escape, the ellipsis, the closing quote and NUL */
	size_t o = 0, max = size - 8;

	buf[o++] = '"';
	for (; *s && o + 6 < max; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch < 0x20 || ch == 0x7f || ch == '"' || ch == '\\')
			o += (size_t)snprintf(buf + o, size - o, "\\x%02x", ch);
		else
			buf[o++] = (char)ch;
	}
	if (*s)
		o += (size_t)snprintf(buf + o, size - o, "...");
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

static const char *type_name(const cJSON *it)
{
	if (cJSON_IsString(it))
		return "a string";
	if (cJSON_IsNumber(it))
		return "a number";
	if (cJSON_IsBool(it))
		return "a boolean";
	if (cJSON_IsArray(it))
		return "a list";
	if (cJSON_IsObject(it))
		return "a mapping";
	return "null";
}

/* ---- typed access: 0 found and valid, -ENOENT absent (or null), -EINVAL reported ---- */

static const cJSON *field(const cJSON *obj, const char *key)
{
	const cJSON *it = cJSON_GetObjectItemCaseSensitive(obj, key);

	/* Kubernetes reads an explicit null as "not set"; so does sluice. */
	return cJSON_IsNull(it) ? NULL : it;
}

static int get_string(struct vctx *v, const cJSON *obj, const char *key, const char **out)
{
	const cJSON *it = field(obj, key);

	if (!it)
		return -ENOENT;
	if (!cJSON_IsString(it)) {
		verr_at(v, key, "must be a string, not %s", type_name(it));
		return -EINVAL;
	}
	*out = it->valuestring;
	return 0;
}

static int get_number(struct vctx *v, const cJSON *obj, const char *key, double *out)
{
	const cJSON *it = field(obj, key);

	if (!it)
		return -ENOENT;
	if (!cJSON_IsNumber(it)) {
		verr_at(v, key, "must be a number, not %s", type_name(it));
		return -EINVAL;
	}
	if (!isfinite(it->valuedouble)) {
		verr_at(v, key, "must be a finite number");
		return -EINVAL;
	}
	*out = it->valuedouble;
	return 0;
}

/* Integers: exactly, within 2^53 so that the double holds every digit. */
static int number_to_int(struct vctx *v, const char *key, double d, long long *out)
{
	if (d != floor(d)) {
		verr_at(v, key, "must be an integer, not %g", d);
		return -EINVAL;
	}
	if (fabs(d) > 9007199254740992.0) {
		verr_at(v, key, "%g is out of range", d);
		return -EINVAL;
	}
	*out = (long long)d;
	return 0;
}

static int get_int(struct vctx *v, const cJSON *obj, const char *key, long long *out)
{
	double d;
	int err;

	err = get_number(v, obj, key, &d);
	if (err)
		return err;
	return number_to_int(v, key, d, out);
}

static int get_bool(struct vctx *v, const cJSON *obj, const char *key, bool *out)
{
	const cJSON *it = field(obj, key);

	if (!it)
		return -ENOENT;
	if (!cJSON_IsBool(it)) {
		verr_at(v, key, "must be true or false, not %s", type_name(it));
		return -EINVAL;
	}
	*out = cJSON_IsTrue(it);
	return 0;
}

static int get_object(struct vctx *v, const cJSON *obj, const char *key, const cJSON **out)
{
	const cJSON *it = field(obj, key);

	if (!it)
		return -ENOENT;
	if (!cJSON_IsObject(it)) {
		verr_at(v, key, "must be a mapping, not %s", type_name(it));
		return -EINVAL;
	}
	*out = it;
	return 0;
}

static int get_array(struct vctx *v, const cJSON *obj, const char *key, const cJSON **out)
{
	const cJSON *it = field(obj, key);

	if (!it)
		return -ENOENT;
	if (!cJSON_IsArray(it)) {
		verr_at(v, key, "must be a list, not %s", type_name(it));
		return -EINVAL;
	}
	*out = it;
	return 0;
}

/* Turns "absent" into the "required" error; passes the others through. */
static int required(struct vctx *v, const char *key, int err)
{
	if (err == -ENOENT)
		verr_at(v, key, "required");
	return err;
}

static int check_range(struct vctx *v, const char *key, long long val, long long min,
		       long long max)
{
	if (val < min) {
		if (min == 1)
			verr_at(v, key, "must be > 0");
		else if (min == 0)
			verr_at(v, key, "must be >= 0");
		else
			verr_at(v, key, "%lld is under %lld", val, min);
		return -ERANGE;
	}
	if (val > max) {
		verr_at(v, key, "%lld is over %lld", val, max);
		return -ERANGE;
	}
	return 0;
}

/* An integer field with bounds: 0 valid, -ENOENT absent, else reported. */
static int get_int_range(struct vctx *v, const cJSON *obj, const char *key, long long min,
			 long long max, int *out)
{
	long long val;
	int err;

	err = get_int(v, obj, key, &val);
	if (err)
		return err;
	err = check_range(v, key, val, min, max);
	if (err)
		return err;
	*out = (int)val;
	return 0;
}

/*
 * Unknown keys, Flagger's keys sluice does not act on, and duplicates (JSON
 * allows them and cJSON keeps both; Kubernetes would take the last, sluice
 * the first: better to refuse than to pick one).
 */
static void check_fields(struct vctx *v, const cJSON *obj, const struct field *table)
{
	const cJSON *it, *prev;
	const struct field *f;
	char q[64];

	cJSON_ArrayForEach(it, obj) {
		for (prev = obj->child; prev != it; prev = prev->next)
			if (!strcmp(prev->string, it->string))
				break;
		if (prev != it) {
			verr_at(v, it->string, "duplicate key");
			continue;
		}
		for (f = table; f->name; f++)
			if (!strcmp(f->name, it->string))
				break;
		if (f->name) {
			if (f->use == F_IGNORE)
				add_ignored(v, it->string);
			continue;
		}
		for (f = table; f->name; f++)
			if (!strcasecmp(f->name, it->string))
				break;
		if (f->name)
			verr_at(v, it->string, "unknown field; did you mean %s?",
				quote(q, sizeof(q), f->name));
		else
			verr_at(v, it->string, "unknown field");
	}
}

/* ---- durations ---- */

static const struct {
	const char *name;
	uint64_t ms;
} duration_units[] = {
	{ "ms", 1 },
	{ "s", 1000 },
	{ "m", 60 * 1000 },
	{ "h", 60 * 60 * 1000 },
};

/*
 * Go's time.ParseDuration syntax (what Flagger reads), restricted to units a
 * millisecond clock can honour: "250ms", "1.5s", "1h30m". *why says what was
 * wrong for the error message.
 */
static int duration_parse(const char *s, uint64_t *out_ms, const char **why)
{
	uint64_t total = 0;

	*why = NULL;
	if (!s || !*s) {
		*why = "empty";
		return -EINVAL;
	}
	if (*s == '-') {
		*why = "negative";
		return -EINVAL;
	}
	if (*s == '+')
		s++;
	if (!strcmp(s, "0")) {
		*out_ms = 0;
		return 0;
	}
	if (!*s) {
		*why = "no number";
		return -EINVAL;
	}
	while (*s) {
		uint64_t whole = 0, frac = 0, scale = 1, unit = 0, part, rest;
		bool digits = false;
		size_t ulen, i;

		for (; *s >= '0' && *s <= '9'; s++, digits = true)
			if (__builtin_mul_overflow(whole, 10, &whole) ||
			    __builtin_add_overflow(whole, (uint64_t)(*s - '0'), &whole)) {
				*why = "too large";
				return -EINVAL;
			}
		if (*s == '.') {
			for (s++; *s >= '0' && *s <= '9'; s++, digits = true) {
				if (scale == 1000000000ULL) {
					*why = "too many decimals";
					return -EINVAL;
				}
				frac = frac * 10 + (uint64_t)(*s - '0');
				scale *= 10;
			}
		}
		if (!digits) {
			*why = "expected a number";
			return -EINVAL;
		}
		for (ulen = 0; isalpha((unsigned char)s[ulen]); ulen++)
			;
		if (!ulen) {
			*why = "missing unit (ms, s, m or h)";
			return -EINVAL;
		}
		for (i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++)
			if (strlen(duration_units[i].name) == ulen &&
			    !strncmp(duration_units[i].name, s, ulen))
				unit = duration_units[i].ms;
		if (!unit) {
			*why = "unknown unit (use ms, s, m or h)";
			return -EINVAL;
		}
		s += ulen;
		/* frac < 1e9 and unit <= 3.6e6: the product fits in 64 bits. */
		rest = frac * unit;
		if (rest % scale) {
			*why = "finer than a millisecond";
			return -EINVAL;
		}
		if (__builtin_mul_overflow(whole, unit, &part) ||
		    __builtin_add_overflow(part, rest / scale, &part) ||
		    __builtin_add_overflow(total, part, &total)) {
			*why = "too large";
			return -EINVAL;
		}
	}
	*out_ms = total;
	return 0;
}

int spec_duration_ms(const char *s, uint64_t *out_ms)
{
	const char *why;

	return duration_parse(s, out_ms, &why);
}

/* The shortest string duration_parse() reads back as @ms: "1h30m", "1s500ms". */
static void duration_format(uint64_t ms, char *buf, size_t size)
{
	size_t o = 0;
	int i;

	buf[0] = '\0';
	if (!ms) {
		snprintf(buf, size, "0s");
		return;
	}
	for (i = (int)(sizeof(duration_units) / sizeof(duration_units[0])) - 1; i >= 0; i--) {
		uint64_t n = ms / duration_units[i].ms;
		int w;

		if (!n)
			continue;
		ms -= n * duration_units[i].ms;
		w = snprintf(buf + o, size - o, "%llu%s", (unsigned long long)n,
			     duration_units[i].name);
		if (w < 0 || (size_t)w >= size - o)
			return;
		o += (size_t)w;
	}
}

/*
 * interval / intervalMs of the analysis or of a metric. intervalMs is sluice's
 * own spelling for an exact millisecond count (what spec_to_json() writes);
 * a bare number under interval is refused, as "interval: 60" is likelier to
 * mean a minute than 60 ms.
 */
static int get_interval(struct vctx *v, const cJSON *obj, uint64_t *out_ms)
{
	const cJSON *it = field(obj, "interval");
	uint64_t from_str = 0;
	long long ms = 0;
	const char *why;
	bool have_str = false;
	char q[64];
	int err;

	if (it && !cJSON_IsString(it)) {
		verr_at(v, "interval", "must be a duration string such as \"1m\", not %s%s",
			type_name(it), cJSON_IsNumber(it) ? " (or give intervalMs)" : "");
		return -EINVAL;
	}
	if (it) {
		if (duration_parse(it->valuestring, &from_str, &why)) {
			verr_at(v, "interval", "not a duration: %s: %s",
				quote(q, sizeof(q), it->valuestring), why);
			return -EINVAL;
		}
		if (!from_str) {
			verr_at(v, "interval", "must be > 0");
			return -EINVAL;
		}
		have_str = true;
	}
	err = get_int(v, obj, "intervalMs", &ms);
	if (err == -ENOENT) {
		if (!have_str)
			return -ENOENT;
		*out_ms = from_str;
		return 0;
	}
	if (err)
		return err;
	if (check_range(v, "intervalMs", ms, 1, 9007199254740992LL))
		return -EINVAL;
	if (have_str && (uint64_t)ms != from_str) {
		verr_at(v, "intervalMs", "%lld disagrees with interval %s", ms,
			quote(q, sizeof(q), it->valuestring));
		return -EINVAL;
	}
	*out_ms = (uint64_t)ms;
	return 0;
}

/* ---- addresses ---- */

int spec_addr_parse(const char *s, struct spec_addr *out)
{
	memset(out, 0, sizeof(*out));
	if (!s)
		return -EINVAL;
	if (inet_pton(AF_INET, s, &out->addr.v4) == 1) {
		out->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, out->addr.bytes) == 1) {
		out->family = AF_INET6;
		return 0;
	}
	return -EINVAL;
}

static const char *family_name(int family)
{
	return family == AF_INET6 ? "IPv6" : "IPv4";
}

static int addr_bits(int family)
{
	return family == AF_INET6 ? 128 : 32;
}

static bool addr_equal(const struct spec_addr *a, const struct spec_addr *b)
{
	return a->family == b->family && !memcmp(a->addr.bytes, b->addr.bytes, 16);
}

static void addr_format(const struct spec_addr *a, char *buf, size_t size)
{
	if (!inet_ntop(a->family, a->addr.bytes, buf, (socklen_t)size))
		snprintf(buf, size, "?");
}

/* Neither can be a real VIP or pod: they would steer nothing or everything. */
static const char *addr_unusable(const struct spec_addr *a)
{
	static const uint8_t zero[16];

	if (a->family == AF_INET) {
		if (!a->addr.v4)
			return "the unspecified address";
		if ((a->addr.bytes[0] & 0xf0) == 0xe0)
			return "a multicast address";
		if (a->addr.v4 == 0xffffffff)
			return "the broadcast address";
	} else {
		if (!memcmp(a->addr.bytes, zero, 16))
			return "the unspecified address";
		if (a->addr.bytes[0] == 0xff)
			return "a multicast address";
	}
	return NULL;
}

static int parse_port(const char *s, uint16_t *out)
{
	unsigned long p = 0;
	const char *d;

	if (!*s)
		return -EINVAL;
	for (d = s; *d; d++) {
		if (*d < '0' || *d > '9' || d - s >= 5)
			return -EINVAL;
		p = p * 10 + (unsigned long)(*d - '0');
	}
	if (p < 1 || p > 65535)
		return -EINVAL;
	*out = (uint16_t)p;
	return 0;
}

/*
 * "198.18.1.2", "198.18.1.2:8080", "fd00:5c::2", "[fd00:5c::2]:8080". A bare
 * IPv6 address never takes a port: with its colons the port would be a guess.
 */
static int endpoint_parse(const char *s, uint16_t default_port, struct spec_endpoint *ep,
			  const char **why)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon, *port = NULL;
	bool bracketed = s[0] == '[';
	size_t hlen;

	*why = "not an IPv4 or IPv6 address";
	if (bracketed) {
		const char *end = strchr(s, ']');

		if (!end)
			return -EINVAL;
		hlen = (size_t)(end - s - 1);
		s++;
		if (end[1] == ':')
			port = end + 2;
		else if (end[1])
			return -EINVAL;
	} else {
		colon = strchr(s, ':');
		if (colon && !strchr(colon + 1, ':')) {
			hlen = (size_t)(colon - s);
			port = colon + 1;
		} else {
			hlen = strlen(s);
		}
	}
	if (hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (spec_addr_parse(host, &ep->addr))
		return -EINVAL;
	if (bracketed && ep->addr.family != AF_INET6) {
		*why = "brackets are for IPv6 addresses";
		return -EINVAL;
	}
	ep->port = default_port;
	if (port && parse_port(port, &ep->port)) {
		*why = "port must be 1..65535";
		return -EINVAL;
	}
	return 0;
}

static void endpoint_format(const struct spec_endpoint *ep, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];

	addr_format(&ep->addr, a, sizeof(a));
	if (ep->addr.family == AF_INET6)
		snprintf(buf, size, "[%s]:%u", a, ep->port);
	else
		snprintf(buf, size, "%s:%u", a, ep->port);
}

/* "198.18.0.0/28"; a bare address is a host route, as with ip route. */
static int cidr_parse(const char *s, struct spec_cidr *out, const char **why)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	size_t hlen = slash ? (size_t)(slash - s) : strlen(s);
	unsigned long len = 0;
	const char *d;
	int bits;

	*why = "not a CIDR such as 198.18.0.0/28";
	if (hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, s, hlen);
	host[hlen] = '\0';
	if (spec_addr_parse(host, &out->net))
		return -EINVAL;
	bits = addr_bits(out->net.family);
	if (!slash) {
		out->prefixlen = (uint8_t)bits;
		return 0;
	}
	if (!slash[1] || strlen(slash + 1) > 3)
		return -EINVAL;
	for (d = slash + 1; *d; d++) {
		if (*d < '0' || *d > '9')
			return -EINVAL;
		len = len * 10 + (unsigned long)(*d - '0');
	}
	if (len > (unsigned long)bits) {
		*why = out->net.family == AF_INET6 ? "prefix length over 128" :
						     "prefix length over 32";
		return -EINVAL;
	}
	out->prefixlen = (uint8_t)len;
	return 0;
}

/* Zero the host bits; true if any were set. */
static bool cidr_mask(struct spec_cidr *c)
{
	bool had = false;
	int i;

	for (i = 0; i < addr_bits(c->net.family) / 8; i++) {
		int keep = (int)c->prefixlen - i * 8;
		uint8_t mask = keep >= 8 ? 0xff : keep <= 0 ? 0 : (uint8_t)(0xff << (8 - keep));

		if (c->net.addr.bytes[i] & ~mask)
			had = true;
		c->net.addr.bytes[i] &= mask;
	}
	return had;
}

static void cidr_format(const struct spec_cidr *c, char *buf, size_t size)
{
	char a[INET6_ADDRSTRLEN];

	addr_format(&c->net, a, sizeof(a));
	snprintf(buf, size, "%s/%u", a, c->prefixlen);
}

static bool cidr_equal(const struct spec_cidr *a, const struct spec_cidr *b)
{
	return a->prefixlen == b->prefixlen && addr_equal(&a->net, &b->net);
}

/* ---- the document ---- */

/* Kubernetes object names: RFC 1123 labels joined only by '-' (no dots). */
static void check_dns_name(struct vctx *v, const char *key, const char *s, size_t max)
{
	size_t len = strlen(s), i;
	char q[64];

	if (!len) {
		verr_at(v, key, "must not be empty");
		return;
	}
	if (len > max) {
		verr_at(v, key, "%zu characters; at most %zu", len, max);
		return;
	}
	for (i = 0; i < len; i++) {
		bool alnum = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9');

		if (alnum || (s[i] == '-' && i && i + 1 < len))
			continue;
		verr_at(v, key,
			"%s is not a DNS-1123 name: lowercase letters, digits and '-', "
			"starting and ending with a letter or digit",
			quote(q, sizeof(q), s));
		return;
	}
}

static void parse_metadata(struct vctx *v, const cJSON *md)
{
	static const struct field fields[] = {
		{ "name", F_USE },
		{ "namespace", F_USE },
		{ "labels", F_QUIET },
		{ "annotations", F_QUIET },
		{ "uid", F_QUIET },
		{ "resourceVersion", F_QUIET },
		{ "generation", F_QUIET },
		{ "creationTimestamp", F_QUIET },
		{ "deletionTimestamp", F_QUIET },
		{ "deletionGracePeriodSeconds", F_QUIET },
		{ "managedFields", F_QUIET },
		{ "ownerReferences", F_QUIET },
		{ "finalizers", F_QUIET },
		{ "generateName", F_QUIET },
		{ "selfLink", F_QUIET },
		{ NULL, F_USE },
	};
	struct spec_canary *c = v->c;
	const char *s;

	check_fields(v, md, fields);
	if (!required(v, "name", get_string(v, md, "name", &s))) {
		check_dns_name(v, "name", s, DNS1123_SUBDOMAIN_MAX);
		copy_str(c->name, sizeof(c->name), s);
	}
	switch (get_string(v, md, "namespace", &s)) {
	case 0:
		check_dns_name(v, "namespace", s, DNS1123_LABEL_MAX);
		copy_str(c->namespace, sizeof(c->namespace), s);
		break;
	case -ENOENT:
		snprintf(c->namespace, sizeof(c->namespace), "default");
		break;
	}
}

static void parse_service(struct vctx *v, const cJSON *svc)
{
	static const struct field fields[] = {
		{ "port", F_USE },
		{ "targetPort", F_USE },
		{ "name", F_IGNORE },
		{ "portName", F_IGNORE },
		{ "appProtocol", F_IGNORE },
		{ "portDiscovery", F_IGNORE },
		{ "timeout", F_IGNORE },
		{ "gateways", F_IGNORE },
		{ "gatewayRefs", F_IGNORE },
		{ "hosts", F_IGNORE },
		{ "delegation", F_IGNORE },
		{ "trafficPolicy", F_IGNORE },
		{ "match", F_IGNORE },
		{ "rewrite", F_IGNORE },
		{ "retries", F_IGNORE },
		{ "headers", F_IGNORE },
		{ "corsPolicy", F_IGNORE },
		{ "meshName", F_IGNORE },
		{ "backends", F_IGNORE },
		{ "apex", F_IGNORE },
		{ "primary", F_IGNORE },
		{ "canary", F_IGNORE },
		{ NULL, F_USE },
	};
	struct spec_canary *c = v->c;
	const cJSON *tp;
	int port;

	check_fields(v, svc, fields);
	if (!required(v, "port", get_int_range(v, svc, "port", 1, 65535, &port)))
		c->port = (uint16_t)port;

	tp = field(svc, "targetPort");
	if (!tp) {
		c->target_port = c->port;
	} else if (cJSON_IsString(tp)) {
		verr_at(v, "targetPort", "named ports need Kubernetes; give the number");
	} else if (!get_int_range(v, svc, "targetPort", 1, 65535, &port)) {
		c->target_port = (uint16_t)port;
	}
}

static bool metric_is_builtin(const char *name, enum spec_metric_kind *kind)
{
	if (!strcmp(name, "request-success-rate")) {
		*kind = SPEC_METRIC_SUCCESS_RATE;
		return true;
	}
	if (!strcmp(name, "request-duration")) {
		*kind = SPEC_METRIC_DURATION;
		return true;
	}
	return false;
}

static void parse_threshold_range(struct vctx *v, const cJSON *tr, struct spec_metric *m)
{
	static const struct field fields[] = {
		{ "min", F_USE },
		{ "max", F_USE },
		{ NULL, F_USE },
	};

	check_fields(v, tr, fields);
	m->has_min = !get_number(v, tr, "min", &m->min);
	m->has_max = !get_number(v, tr, "max", &m->max);
}

/* Flagger's success rate is a percentage and its duration a p99 in ms. */
static void check_metric_bounds(struct vctx *v, struct spec_metric *m)
{
	size_t saved = path_push(v, "thresholdRange");

	if (m->kind == SPEC_METRIC_SUCCESS_RATE) {
		if (!m->has_min)
			verr_at(v, "min", "required");
		else if (m->min < 0)
			verr_at(v, "min", "must be >= 0");
		else if (m->min > 100)
			verr_at(v, "min", "%g is over 100", m->min);
		if (m->has_max && m->max < 0)
			verr_at(v, "max", "must be >= 0");
		else if (m->has_max && m->max > 100)
			verr_at(v, "max", "%g is over 100", m->max);
	} else {
		if (!m->has_max)
			verr_at(v, "max", "required");
		else if (m->max <= 0)
			verr_at(v, "max", "must be > 0");
		if (m->has_min && m->min < 0)
			verr_at(v, "min", "must be >= 0");
	}
	if (m->has_min && m->has_max && m->min > m->max)
		verr_at(v, "max", "%g is under min %g", m->max, m->min);
	path_pop(v, saved);
}

static void parse_metric(struct vctx *v, const cJSON *obj, uint64_t default_ms,
			 struct spec_metric *m)
{
	static const struct field fields[] = {
		{ "name", F_USE },
		{ "interval", F_USE },
		{ "intervalMs", F_USE },
		{ "thresholdRange", F_USE },
		{ "threshold", F_USE },
		{ "templateRef", F_USE },
		{ "query", F_USE },
		{ "templateVariables", F_QUIET }, /* only with templateRef, refused below */
		{ NULL, F_USE },
	};
	const cJSON *tr = NULL;
	bool custom = false;
	const char *name;
	double threshold;
	int err;

	if (!cJSON_IsObject(obj)) {
		verr(v, "must be a mapping, not %s", type_name(obj));
		return;
	}
	check_fields(v, obj, fields);
	if (field(obj, "templateRef")) {
		verr_at(v, "templateRef", "%s", custom_metric_msg);
		custom = true;
	}
	if (field(obj, "query")) {
		verr_at(v, "query", "%s", custom_metric_msg);
		custom = true;
	}
	if (required(v, "name", get_string(v, obj, "name", &name)))
		return;
	if (!metric_is_builtin(name, &m->kind)) {
		if (!custom)
			verr_at(v, "name", "%s", custom_metric_msg);
		return;
	}
	if (custom)
		return;

	err = get_interval(v, obj, &m->interval_ms);
	if (err == -ENOENT)
		m->interval_ms = default_ms;

	err = get_object(v, obj, "thresholdRange", &tr);
	if (!err) {
		size_t saved = path_push(v, "thresholdRange");

		parse_threshold_range(v, tr, m);
		path_pop(v, saved);
	}
	/* The deprecated threshold was the min of a rate and the max of a duration. */
	if (!get_number(v, obj, "threshold", &threshold)) {
		if (tr) {
			add_ignored(v, "threshold");
		} else if (m->kind == SPEC_METRIC_SUCCESS_RATE) {
			m->has_min = true;
			m->min = threshold;
		} else {
			m->has_max = true;
			m->max = threshold;
		}
	}
	if (err != -EINVAL)
		check_metric_bounds(v, m);
}

static const char *const webhook_type_names[WH_TYPES] = {
	[WH_CONFIRM_ROLLOUT] = "confirm-rollout",
	[WH_PRE_ROLLOUT] = "pre-rollout",
	[WH_ROLLOUT] = "rollout",
	[WH_CONFIRM_TRAFFIC_INCREASE] = "confirm-traffic-increase",
	[WH_CONFIRM_PROMOTION] = "confirm-promotion",
	[WH_POST_ROLLOUT] = "post-rollout",
	[WH_ROLLBACK] = "rollback",
	[WH_EVENT] = "event",
};

const char *spec_webhook_type_name(enum spec_webhook_type t)
{
	return (unsigned)t < WH_TYPES ? webhook_type_names[t] : "?";
}

static void parse_webhook(struct vctx *v, const cJSON *obj, struct spec_analysis *a)
{
	static const struct field fields[] = {
		{ "name", F_USE },
		{ "type", F_USE },
		{ "url", F_USE },
		{ "timeout", F_USE },
		{ "retries", F_USE },
		{ "metadata", F_USE },
		{ "muteAlert", F_IGNORE },
		{ NULL, F_USE },
	};
	struct spec_webhook *w = &a->webhooks[a->n_webhooks];
	const cJSON *meta = NULL, *it;
	const char *s, *why;
	char q[64];
	int t;

	if (!cJSON_IsObject(obj)) {
		verr(v, "must be a mapping, not %s", type_name(obj));
		return;
	}
	check_fields(v, obj, fields);
	memset(w, 0, sizeof(*w));
	if (!required(v, "name", get_string(v, obj, "name", &s))) {
		if (!*s || strlen(s) >= sizeof(w->name))
			verr_at(v, "name", "must be 1 to %zu characters", sizeof(w->name) - 1);
		copy_str(w->name, sizeof(w->name), s);
		for (int i = 0; i < a->n_webhooks; i++)
			if (!strcmp(a->webhooks[i].name, w->name))
				verr_at(v, "name", "%s is used by another webhook",
					quote(q, sizeof(q), s));
	}
	w->type = WH_ROLLOUT; /* Flagger's default */
	if (!get_string(v, obj, "type", &s)) {
		for (t = 0; t < WH_TYPES && strcmp(s, webhook_type_names[t]); t++)
			;
		if (t == WH_TYPES)
			verr_at(v, "type", "%s is not a Flagger webhook type (confirm-rollout, "
				"pre-rollout, rollout, confirm-traffic-increase, confirm-promotion, "
				"post-rollout, rollback, event)", quote(q, sizeof(q), s));
		else
			w->type = (enum spec_webhook_type)t;
	}
	if (!required(v, "url", get_string(v, obj, "url", &s))) {
		if (strncmp(s, "http://", 7) && strncmp(s, "https://", 8))
			verr_at(v, "url", "%s is not an http:// or https:// URL",
				quote(q, sizeof(q), s));
		else if (strlen(s) >= sizeof(w->url))
			verr_at(v, "url", "longer than %zu characters", sizeof(w->url) - 1);
		copy_str(w->url, sizeof(w->url), s);
	}
	w->timeout_ms = 10000;
	if (!get_string(v, obj, "timeout", &s)) {
		if (duration_parse(s, &w->timeout_ms, &why))
			verr_at(v, "timeout", "not a duration: %s: %s", quote(q, sizeof(q), s), why);
		else if (w->timeout_ms == 0)
			verr_at(v, "timeout", "must be > 0");
	}
	get_int_range(v, obj, "retries", 0, 10, &w->retries);
	if (!get_object(v, obj, "metadata", &meta)) {
		size_t saved = path_push(v, "metadata");

		cJSON_ArrayForEach(it, meta) {
			if (w->n_meta >= SPEC_MAX_WEBHOOK_META) {
				verr(v, "more than %d entries", SPEC_MAX_WEBHOOK_META);
				break;
			}
			if (!cJSON_IsString(it) || strlen(it->string) >= sizeof(w->meta_key[0]) ||
			    strlen(it->valuestring) >= sizeof(w->meta_val[0])) {
				verr_at(v, it->string, "must be a string of at most %zu characters "
					"(keys %zu)", sizeof(w->meta_val[0]) - 1,
					sizeof(w->meta_key[0]) - 1);
				continue;
			}
			copy_str(w->meta_key[w->n_meta], sizeof(w->meta_key[0]), it->string);
			copy_str(w->meta_val[w->n_meta++], sizeof(w->meta_val[0]), it->valuestring);
		}
		path_pop(v, saved);
	}
	a->n_webhooks++;
}

static void parse_webhooks(struct vctx *v, const cJSON *arr, struct spec_analysis *a)
{
	const cJSON *it;
	int i = 0;

	if (cJSON_GetArraySize(arr) > SPEC_MAX_WEBHOOKS) {
		verr_at(v, "webhooks", "%d webhooks; at most %d", cJSON_GetArraySize(arr),
			SPEC_MAX_WEBHOOKS);
		return;
	}
	cJSON_ArrayForEach(it, arr) {
		size_t saved = path_push(v, "webhooks");

		path_push_index(v, i++);
		parse_webhook(v, it, a);
		path_pop(v, saved);
	}
}

static void parse_step_weights(struct vctx *v, const cJSON *arr, struct spec_analysis *a)
{
	int n = cJSON_GetArraySize(arr), i = 0;
	const cJSON *it;
	size_t saved;
	long long w;

	if (!n) {
		verr_at(v, "stepWeights", "must not be empty");
		return;
	}
	if (n > SPEC_MAX_STEPS) {
		verr_at(v, "stepWeights", "%d steps; at most %d", n, SPEC_MAX_STEPS);
		return;
	}
	saved = path_push(v, "stepWeights");
	cJSON_ArrayForEach(it, arr) {
		size_t s2 = path_push_index(v, i++);

		if (!cJSON_IsNumber(it)) {
			verr(v, "must be a number, not %s", type_name(it));
		} else if (!number_to_int(v, "", it->valuedouble, &w)) {
			if (w < 1)
				verr(v, "must be > 0");
			else if (w > 100)
				verr(v, "%lld is over 100", w);
			else if (a->n_step_weights &&
				 w <= a->step_weights[a->n_step_weights - 1])
				verr(v, "%lld is not above the step before it (%d)", w,
				     a->step_weights[a->n_step_weights - 1]);
			else
				a->step_weights[a->n_step_weights++] = (int)w;
		}
		path_pop(v, s2);
	}
	path_pop(v, saved);
}

static void parse_analysis(struct vctx *v, const cJSON *obj, struct spec_analysis *a)
{
	static const struct field fields[] = {
		{ "interval", F_USE },
		{ "intervalMs", F_USE },
		{ "threshold", F_USE },
		{ "maxWeight", F_USE },
		{ "stepWeight", F_USE },
		{ "stepWeights", F_USE },
		{ "stepWeightPromotion", F_USE },
		{ "iterations", F_USE },
		{ "metrics", F_USE },
		{ "mirror", F_IGNORE },
		{ "mirrorWeight", F_IGNORE },
		{ "alerts", F_IGNORE },
		{ "webhooks", F_USE },
		{ "match", F_IGNORE },
		{ "sessionAffinity", F_IGNORE },
		{ "primaryReadyThreshold", F_IGNORE },
		{ "canaryReadyThreshold", F_IGNORE },
		{ NULL, F_USE },
	};
	const cJSON *steps = NULL, *metrics, *hooks, *it;
	bool has_max, has_step, has_steps;
	long long threshold;
	int max_weight = 0, i;

	check_fields(v, obj, fields);
	required(v, "interval", get_interval(v, obj, &a->interval_ms));

	a->threshold = 1;
	if (!get_int(v, obj, "threshold", &threshold) && threshold > 1)
		a->threshold = threshold > INT32_MAX ? INT32_MAX : (int)threshold;

	a->max_weight = 100;
	has_max = !get_int_range(v, obj, "maxWeight", 1, 100, &max_weight);
	if (has_max)
		a->max_weight = max_weight;

	has_step = field(obj, "stepWeight") != NULL;
	has_steps = field(obj, "stepWeights") != NULL;
	if (has_step && has_steps) {
		verr_at(v, "stepWeights", "give stepWeight or stepWeights, not both");
	} else if (has_step) {
		if (!get_int_range(v, obj, "stepWeight", 1, 100, &a->step_weight) &&
		    a->step_weight > a->max_weight) {
			verr_at(v, "stepWeight", "%d is over maxWeight %d", a->step_weight,
				a->max_weight);
		}
	} else if (has_steps && !get_array(v, obj, "stepWeights", &steps)) {
		parse_step_weights(v, steps, a);
		if (a->n_step_weights) {
			int last = a->step_weights[a->n_step_weights - 1];

			/* Flagger would ignore a maxWeight here; a mismatch is a mistake. */
			if (has_max && max_weight != last)
				verr_at(v, "maxWeight",
					"%d differs from the last of stepWeights (%d), "
					"which is the max weight",
					max_weight, last);
			a->max_weight = last;
		}
	}

	get_int_range(v, obj, "stepWeightPromotion", 1, 100, &a->step_weight_promotion);
	get_int_range(v, obj, "iterations", 0, INT32_MAX, &a->iterations);
	if (!has_step && !has_steps && a->iterations <= 0)
		verr_at(v, "stepWeight",
			"required (or stepWeights; or iterations for blue/green)");

	if (!get_array(v, obj, "webhooks", &hooks))
		parse_webhooks(v, hooks, a);

	if (get_array(v, obj, "metrics", &metrics))
		return;
	if (cJSON_GetArraySize(metrics) > SPEC_MAX_METRICS) {
		verr_at(v, "metrics", "%d metrics; at most %d", cJSON_GetArraySize(metrics),
			SPEC_MAX_METRICS);
		return;
	}
	i = 0;
	cJSON_ArrayForEach(it, metrics) {
		size_t saved = path_push(v, "metrics");

		path_push_index(v, i++);
		parse_metric(v, it, a->interval_ms, &a->metrics[a->n_metrics]);
		a->n_metrics++;
		path_pop(v, saved);
	}
}

static void check_version(struct vctx *v, const char *s)
{
	size_t len = strlen(s), i;

	if (!len) {
		verr_at(v, "version", "must not be empty");
		return;
	}
	if (len >= SPEC_VERSION_MAX) {
		verr_at(v, "version", "%zu characters; at most %d", len, SPEC_VERSION_MAX - 1);
		return;
	}
	/* It ends up in logs, metrics labels and the CLI's columns. */
	for (i = 0; i < len; i++) {
		if (!isgraph((unsigned char)s[i])) {
			verr_at(v, "version", "must be printable ASCII without spaces");
			return;
		}
	}
}

static void parse_endpoints(struct vctx *v, const cJSON *arr, int which, bool need_one)
{
	struct spec_canary *c = v->c;
	struct spec_version_set *set = which == SL_PRIMARY ? &c->primary : &c->canary;
	const struct spec_version_set *other = &c->primary;
	int n = cJSON_GetArraySize(arr), i = 0, j;
	const cJSON *it;
	char q[64];
	size_t saved;

	if (!n && need_one) {
		verr_at(v, "endpoints", "needs at least one endpoint");
		return;
	}
	if (n > SPEC_MAX_ENDPOINTS) {
		verr_at(v, "endpoints", "%d endpoints; at most %d per version", n,
			SPEC_MAX_ENDPOINTS);
		return;
	}
	saved = path_push(v, "endpoints");
	cJSON_ArrayForEach(it, arr) {
		size_t s2 = path_push_index(v, i);
		struct spec_endpoint ep;
		const char *why, *bad;

		if (!cJSON_IsString(it)) {
			verr(v, "must be a string, not %s%s", type_name(it),
			     cJSON_IsArray(it) ? " (quote \"[IPv6]:port\" in YAML)" : "");
			goto next;
		}
		if (endpoint_parse(it->valuestring, c->target_port, &ep, &why)) {
			verr(v, "%s: %s", why, quote(q, sizeof(q), it->valuestring));
			goto next;
		}
		bad = addr_unusable(&ep.addr);
		if (bad) {
			verr(v, "%s is %s", quote(q, sizeof(q), it->valuestring), bad);
			goto next;
		}
		if (c->vip.family && ep.addr.family != c->vip.family) {
			verr(v, "%s endpoint for an %s vip", family_name(ep.addr.family),
			     family_name(c->vip.family));
			goto next;
		}
		if (addr_equal(&ep.addr, &c->vip)) {
			verr(v, "%s is the vip", quote(q, sizeof(q), it->valuestring));
			goto next;
		}
		for (j = 0; j < set->n_endpoints; j++)
			if (addr_equal(&set->endpoints[j].addr, &ep.addr) &&
			    set->endpoints[j].port == ep.port)
				break;
		if (j < set->n_endpoints) {
			verr(v, "%s is the same endpoint as [%d]",
			     quote(q, sizeof(q), it->valuestring), v->ep_index[which][j]);
			goto next;
		}
		for (j = 0; which == SL_CANARY && j < other->n_endpoints; j++)
			if (addr_equal(&other->endpoints[j].addr, &ep.addr) &&
			    other->endpoints[j].port == ep.port)
				break;
		if (which == SL_CANARY && j < other->n_endpoints) {
			verr(v, "%s is also spec.steering.primary.endpoints[%d]",
			     quote(q, sizeof(q), it->valuestring), v->ep_index[SL_PRIMARY][j]);
			goto next;
		}
		v->ep_index[which][set->n_endpoints] = i;
		set->endpoints[set->n_endpoints++] = ep;
next:
		path_pop(v, s2);
		i++;
	}
	path_pop(v, saved);
}

static void parse_version_set(struct vctx *v, const cJSON *obj, int which)
{
	static const struct field fields[] = {
		{ "version", F_USE },
		{ "endpoints", F_USE },
		{ NULL, F_USE },
	};
	struct spec_version_set *set = which == SL_PRIMARY ? &v->c->primary : &v->c->canary;
	const cJSON *eps;
	const char *s;
	int err;

	check_fields(v, obj, fields);
	if (!required(v, "version", get_string(v, obj, "version", &s))) {
		check_version(v, s);
		copy_str(set->version, sizeof(set->version), s);
	}
	err = get_array(v, obj, "endpoints", &eps);
	if (!err)
		parse_endpoints(v, eps, which, which == SL_PRIMARY);
	else if (err == -ENOENT && which == SL_PRIMARY)
		verr_at(v, "endpoints", "required");
}

static void parse_cohort_list(struct vctx *v, const cJSON *cohorts, int which)
{
	const char *key = which == SL_PRIMARY ? "primary" : "canary";
	struct spec_version_set *set = which == SL_PRIMARY ? &v->c->primary : &v->c->canary;
	const struct spec_version_set *other = &v->c->primary;
	const cJSON *arr, *it;
	size_t saved;
	char q[64], net[INET6_ADDRSTRLEN + 5];
	int i = 0, j;

	if (get_array(v, cohorts, key, &arr))
		return;
	if (cJSON_GetArraySize(arr) > SPEC_MAX_COHORTS) {
		verr_at(v, key, "%d cohorts; at most %d", cJSON_GetArraySize(arr),
			SPEC_MAX_COHORTS);
		return;
	}
	saved = path_push(v, key);
	cJSON_ArrayForEach(it, arr) {
		size_t s2 = path_push_index(v, i++);
		struct spec_cidr cidr;
		const char *why;

		if (!cJSON_IsString(it)) {
			verr(v, "must be a string, not %s", type_name(it));
			goto next;
		}
		if (cidr_parse(it->valuestring, &cidr, &why)) {
			verr(v, "%s: %s", why, quote(q, sizeof(q), it->valuestring));
			goto next;
		}
		if (v->c->vip.family && cidr.net.family != v->c->vip.family) {
			verr(v, "%s cohort for an %s vip", family_name(cidr.net.family),
			     family_name(v->c->vip.family));
			goto next;
		}
		/* Like ip route: a set host bit is more likely a typo than a wish. */
		if (cidr_mask(&cidr)) {
			cidr_format(&cidr, net, sizeof(net));
			verr(v, "%s has host bits set; the network is %s",
			     quote(q, sizeof(q), it->valuestring), net);
			goto next;
		}
		for (j = 0; j < set->n_cohorts; j++)
			if (cidr_equal(&set->cohorts[j], &cidr))
				break;
		if (j < set->n_cohorts) {
			verr(v, "%s is listed twice", quote(q, sizeof(q), it->valuestring));
			goto next;
		}
		for (j = 0; which == SL_CANARY && j < other->n_cohorts; j++)
			if (cidr_equal(&other->cohorts[j], &cidr))
				break;
		if (which == SL_CANARY && j < other->n_cohorts) {
			verr(v, "%s is also in spec.steering.cohorts.primary",
			     quote(q, sizeof(q), it->valuestring));
			goto next;
		}
		set->cohorts[set->n_cohorts++] = cidr;
next:
		path_pop(v, s2);
	}
	path_pop(v, saved);
}

static void parse_steering(struct vctx *v, const cJSON *st)
{
	static const struct field fields[] = {
		{ "vip", F_USE },
		{ "protocol", F_USE },
		{ "affinity", F_USE },
		{ "weight", F_USE },
		{ "primary", F_USE },
		{ "canary", F_USE },
		{ "cohorts", F_USE },
		{ "failsafe", F_USE },
		{ "onRollback", F_USE },
		{ "drainTimeout", F_USE },
		{ NULL, F_USE },
	};
	static const struct field cohort_fields[] = {
		{ "primary", F_USE },
		{ "canary", F_USE },
		{ NULL, F_USE },
	};
	struct spec_canary *c = v->c;
	const cJSON *obj;
	const char *s, *bad;
	int err, canary_listed = -1;
	double weight;
	char q[64];

	check_fields(v, st, fields);
	err = required(v, "vip", get_string(v, st, "vip", &s));
	if (!err && spec_addr_parse(s, &c->vip)) {
		verr_at(v, "vip", "not an IPv4 or IPv6 address: %s", quote(q, sizeof(q), s));
	} else if (!err) {
		bad = addr_unusable(&c->vip);
		if (bad) {
			verr_at(v, "vip", "%s is %s", quote(q, sizeof(q), s), bad);
			memset(&c->vip, 0, sizeof(c->vip));
		}
	}

	c->proto = IPPROTO_TCP;
	if (!get_string(v, st, "protocol", &s)) {
		/* Any case: Kubernetes manifests spell it TCP. */
		if (!strcasecmp(s, "udp"))
			c->proto = IPPROTO_UDP;
		else if (strcasecmp(s, "tcp"))
			verr_at(v, "protocol", "%s is not tcp or udp", quote(q, sizeof(q), s));
	}

	c->failsafe = true;
	get_bool(v, st, "failsafe", &c->failsafe);
	c->rollback_reset = false;
	if (!get_string(v, st, "onRollback", &s)) {
		if (!strcasecmp(s, "reset"))
			c->rollback_reset = true;
		else if (strcasecmp(s, "drain"))
			verr_at(v, "onRollback", "%s is not drain or reset", quote(q, sizeof(q), s));
	}
	c->drain_timeout_ms = 30000;
	if (!get_string(v, st, "drainTimeout", &s)) {
		const char *why;

		if (duration_parse(s, &c->drain_timeout_ms, &why))
			verr_at(v, "drainTimeout", "not a duration: %s: %s", quote(q, sizeof(q), s),
				why);
	}

	c->affinity = SL_AFFINITY_CONNECTION;
	if (!get_string(v, st, "affinity", &s)) {
		if (!strcasecmp(s, "client"))
			c->affinity = SL_AFFINITY_CLIENT;
		else if (strcasecmp(s, "connection"))
			verr_at(v, "affinity", "%s is not connection or client",
				quote(q, sizeof(q), s));
	}

	if (!get_number(v, st, "weight", &weight)) {
		double bp = weight * 100.0;

		if (weight < 0)
			verr_at(v, "weight", "must be >= 0");
		else if (weight > 100)
			verr_at(v, "weight", "%g is over 100", weight);
		else if (fabs(bp - round(bp)) > 1e-6)
			verr_at(v, "weight", "%g is finer than 0.01 (one basis point)", weight);
		else {
			c->initial_weight = (int)round(bp);
			c->has_initial_weight = true;
		}
	}

	err = required(v, "primary", get_object(v, st, "primary", &obj));
	if (!err) {
		size_t saved = path_push(v, "primary");

		parse_version_set(v, obj, SL_PRIMARY);
		path_pop(v, saved);
	}
	err = required(v, "canary", get_object(v, st, "canary", &obj));
	if (!err) {
		size_t saved = path_push(v, "canary");

		parse_version_set(v, obj, SL_CANARY);
		path_pop(v, saved);
		if (c->primary.version[0] && !strcmp(c->primary.version, c->canary.version))
			verr_at(v, "canary.version",
				"same as spec.steering.primary.version; a canary is another "
				"version");
		canary_listed = cJSON_GetArraySize(field(obj, "endpoints"));
		if (!canary_listed && c->initial_weight)
			verr_at(v, "weight", "must be 0 while the canary has no endpoints");
	}
	/* The datapath's slot table holds both versions of one service. */
	if (c->primary.n_endpoints + c->canary.n_endpoints > SL_MAX_SLOTS)
		verr(v, "%d endpoints in primary and canary together; at most %d",
		     c->primary.n_endpoints + c->canary.n_endpoints, SL_MAX_SLOTS);

	if (!get_object(v, st, "cohorts", &obj)) {
		size_t saved = path_push(v, "cohorts");

		check_fields(v, obj, cohort_fields);
		parse_cohort_list(v, obj, SL_PRIMARY);
		parse_cohort_list(v, obj, SL_CANARY);
		if (c->canary.n_cohorts && !canary_listed)
			verr_at(v, "canary", "the canary has no endpoints to pin these clients to");
		path_pop(v, saved);
	}
}

static void parse_spec(struct vctx *v, const cJSON *spec)
{
	static const struct field fields[] = {
		{ "service", F_USE },
		{ "analysis", F_USE },
		{ "canaryAnalysis", F_USE }, /* Flagger's deprecated name, see below */
		{ "steering", F_USE },
		{ "skipAnalysis", F_USE },
		{ "revertOnFailure", F_USE },
		{ "suspend", F_USE },
		{ "provider", F_IGNORE },
		{ "metricsServer", F_IGNORE },
		{ "targetRef", F_IGNORE },
		{ "autoscalerRef", F_IGNORE },
		{ "ingressRef", F_IGNORE },
		{ "routeRef", F_IGNORE },
		{ "upstreamRef", F_IGNORE },
		{ "progressDeadlineSeconds", F_IGNORE },
		{ "revertOnDeletion", F_IGNORE },
		{ NULL, F_USE },
	};
	struct spec_canary *c = v->c;
	const char *akey = "analysis";
	const cJSON *obj;
	bool suspend;

	check_fields(v, spec, fields);
	if (!required(v, "service", get_object(v, spec, "service", &obj))) {
		size_t saved = path_push(v, "service");

		parse_service(v, obj);
		path_pop(v, saved);
	}

	/* As in Flagger: analysis wins, canaryAnalysis is read only without it. */
	if (field(spec, "analysis")) {
		if (field(spec, "canaryAnalysis"))
			add_ignored(v, "canaryAnalysis");
	} else if (field(spec, "canaryAnalysis")) {
		akey = "canaryAnalysis";
	}
	if (!required(v, akey, get_object(v, spec, akey, &obj))) {
		size_t saved = path_push(v, akey);

		parse_analysis(v, obj, &c->analysis);
		path_pop(v, saved);
	}

	c->revert_on_failure = true;
	get_bool(v, spec, "revertOnFailure", &c->revert_on_failure);
	get_bool(v, spec, "skipAnalysis", &c->skip_analysis);
	/* Running a rollout the user asked to hold would be a misreading. */
	if (!get_bool(v, spec, "suspend", &suspend) && suspend)
		verr_at(v, "suspend", "not supported; use `sluice pause %s`",
			c->name[0] ? c->name : "NAME");

	if (!required(v, "steering", get_object(v, spec, "steering", &obj))) {
		size_t saved = path_push(v, "steering");

		parse_steering(v, obj);
		path_pop(v, saved);
	}
}

static void validate(struct vctx *v, const cJSON *root)
{
	static const struct field fields[] = {
		{ "apiVersion", F_USE },
		{ "kind", F_USE },
		{ "metadata", F_USE },
		{ "spec", F_USE },
		{ "status", F_QUIET }, /* present in `kubectl get -o yaml` output */
		{ NULL, F_USE },
	};
	const cJSON *obj;
	const char *s;
	char q[64];

	if (!cJSON_IsObject(root)) {
		verr(v, "a Canary is a mapping, not %s", type_name(root));
		return;
	}
	check_fields(v, root, fields);
	if (!required(v, "apiVersion", get_string(v, root, "apiVersion", &s)) &&
	    strcmp(s, SPEC_API_VERSION))
		verr_at(v, "apiVersion", "%s is not " SPEC_API_VERSION, quote(q, sizeof(q), s));
	if (!required(v, "kind", get_string(v, root, "kind", &s)) && strcmp(s, SPEC_KIND))
		verr_at(v, "kind", "%s is not " SPEC_KIND, quote(q, sizeof(q), s));
	if (!required(v, "metadata", get_object(v, root, "metadata", &obj))) {
		size_t saved = path_push(v, "metadata");

		parse_metadata(v, obj);
		path_pop(v, saved);
	}
	if (!required(v, "spec", get_object(v, root, "spec", &obj))) {
		size_t saved = path_push(v, "spec");

		parse_spec(v, obj);
		path_pop(v, saved);
	}
}

/* ---- entry points ---- */

static void line_col(const char *buf, const char *at, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (; buf < at; buf++) {
		if (*buf == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

/*
 * JSON first when the document looks like JSON, for cJSON's stricter reading
 * and its messages; YAML otherwise, and as the fallback, since JSON is YAML.
 */
static int load_tree(const char *buf, size_t len, cJSON **root, struct spec_errors *errs)
{
	const char *p = buf, *end = buf + len, *parse_end = NULL, *nul;
	char msg[sizeof(errs->e[0].reason)];
	bool json = false;
	int line, col, err;

	if (len >= 3 && !memcmp(p, "\xef\xbb\xbf", 3))
		p += 3;
	while (p < end && isspace((unsigned char)*p))
		p++;
	if (p == end) {
		add_error(errs, "", "empty document");
		return -EINVAL;
	}
	/* cJSON would end a string at a NUL and read what comes before it as valid. */
	nul = memchr(buf, '\0', len);
	if (nul) {
		snprintf(msg, sizeof(msg), "NUL byte at offset %zu; a spec is text",
			 (size_t)(nul - buf));
		add_error(errs, "", msg);
		return -EINVAL;
	}
	if (*p == '{') {
		json = true;
		*root = cJSON_ParseWithLengthOpts(p, (size_t)(end - p), &parse_end, false);
		if (*root) {
			while (parse_end < end && isspace((unsigned char)*parse_end))
				parse_end++;
			if (parse_end == end)
				return 0;
			cJSON_Delete(*root);
			*root = NULL;
		}
	}
	err = yaml_to_cjson(buf, len, root, msg, sizeof(msg));
	if (!err)
		return 0;
	if (err == -ENOMEM) {
		add_error(errs, "", "out of memory");
		return err;
	}
	if (json && parse_end) {
		line_col(buf, parse_end, &line, &col);
		snprintf(msg, sizeof(msg), "not valid JSON at line %d, column %d", line, col);
	}
	add_error(errs, "", msg);
	return -EINVAL;
}

int spec_parse_buffer(const char *buf, size_t len, struct spec_canary *out,
		      struct spec_errors *errs)
{
	struct vctx v = { .c = out, .errs = errs };
	cJSON *root = NULL;
	int err;

	memset(errs, 0, sizeof(*errs));
	memset(out, 0, sizeof(*out));
	if (!buf)
		len = 0;
	err = load_tree(buf, len, &root, errs);
	if (err)
		return err;
	validate(&v, root);
	cJSON_Delete(root);
	return errs->n || errs->dropped ? -EINVAL : 0;
}

int spec_parse_file(const char *path, struct spec_canary *out, struct spec_errors *errs)
{
	char msg[sizeof(errs->e[0].reason)];
	struct stat st;
	char *buf = NULL;
	size_t got = 0;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		err = -errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		err = -EISDIR;
		snprintf(msg, sizeof(msg), "not a regular file");
		goto fail_msg;
	}
	if (st.st_size > SPEC_FILE_MAX) {
		err = -EFBIG;
		snprintf(msg, sizeof(msg), "%lld bytes; a spec is at most %d",
			 (long long)st.st_size, SPEC_FILE_MAX);
		goto fail_msg;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		err = -ENOMEM;
		goto fail;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			goto fail;
		}
		if (!n)
			break;
		got += (size_t)n;
	}
	close(fd);
	err = spec_parse_buffer(buf, got, out, errs);
	free(buf);
	return err;

fail:
	snprintf(msg, sizeof(msg), "cannot read: %s", strerror(-err));
fail_msg:
	memset(errs, 0, sizeof(*errs));
	memset(out, 0, sizeof(*out));
	add_error(errs, "", msg);
	free(buf);
	if (fd >= 0)
		close(fd);
	return err;
}

void spec_print_errors(FILE *f, const char *file, const struct spec_errors *errs)
{
	int i;

	for (i = 0; i < errs->n; i++) {
		if (errs->e[i].path[0])
			fprintf(f, "%s: %s: %s\n", file, errs->e[i].path, errs->e[i].reason);
		else
			fprintf(f, "%s: %s\n", file, errs->e[i].reason);
	}
	if (errs->dropped)
		fprintf(f, "%s: ... and %d more errors\n", file, errs->dropped);
}

/* ---- the normalized form ---- */

/*
 * cJSON's builders return NULL when out of memory and carry on; a normalized
 * form with a field silently missing would be read back with its default, so
 * every addition goes through these and any failure fails the whole output.
 */
struct jw {
	bool failed;
};

static cJSON *jw_check(struct jw *w, cJSON *it)
{
	if (!it)
		w->failed = true;
	return it;
}

static void jw_str(struct jw *w, cJSON *obj, const char *key, const char *val)
{
	jw_check(w, cJSON_AddStringToObject(obj, key, val));
}

static void jw_num(struct jw *w, cJSON *obj, const char *key, double val)
{
	jw_check(w, cJSON_AddNumberToObject(obj, key, val));
}

static void jw_bool(struct jw *w, cJSON *obj, const char *key, bool val)
{
	jw_check(w, cJSON_AddBoolToObject(obj, key, val));
}

static cJSON *jw_obj(struct jw *w, cJSON *obj, const char *key)
{
	return jw_check(w, cJSON_AddObjectToObject(obj, key));
}

static cJSON *jw_arr(struct jw *w, cJSON *obj, const char *key)
{
	return jw_check(w, cJSON_AddArrayToObject(obj, key));
}

static void jw_push(struct jw *w, cJSON *arr, cJSON *it)
{
	if (!it || !cJSON_AddItemToArray(arr, it)) {
		cJSON_Delete(it);
		w->failed = true;
	}
}

static void add_interval(struct jw *w, cJSON *obj, uint64_t ms)
{
	char buf[64];

	duration_format(ms, buf, sizeof(buf));
	jw_str(w, obj, "interval", buf);
	jw_num(w, obj, "intervalMs", (double)ms);
}

static void add_version_set(struct jw *w, cJSON *steering, const char *key,
			    const struct spec_version_set *s)
{
	cJSON *obj = jw_obj(w, steering, key), *eps;
	char buf[INET6_ADDRSTRLEN + 8];
	int i;

	jw_str(w, obj, "version", s->version);
	eps = jw_arr(w, obj, "endpoints");
	for (i = 0; i < s->n_endpoints; i++) {
		endpoint_format(&s->endpoints[i], buf, sizeof(buf));
		jw_push(w, eps, cJSON_CreateString(buf));
	}
}

static void add_cohorts(struct jw *w, cJSON *cohorts, const char *key,
			const struct spec_version_set *s)
{
	char buf[INET6_ADDRSTRLEN + 5];
	cJSON *arr;
	int i;

	if (!s->n_cohorts)
		return;
	arr = jw_arr(w, cohorts, key);
	for (i = 0; i < s->n_cohorts; i++) {
		cidr_format(&s->cohorts[i], buf, sizeof(buf));
		jw_push(w, arr, cJSON_CreateString(buf));
	}
}

static void add_analysis(struct jw *w, cJSON *spec, const struct spec_analysis *a)
{
	cJSON *an = jw_obj(w, spec, "analysis"), *arr, *m, *tr;
	int i;

	add_interval(w, an, a->interval_ms);
	jw_num(w, an, "threshold", a->threshold);
	jw_num(w, an, "maxWeight", a->max_weight);
	if (a->step_weight)
		jw_num(w, an, "stepWeight", a->step_weight);
	if (a->n_step_weights) {
		arr = jw_arr(w, an, "stepWeights");
		for (i = 0; i < a->n_step_weights; i++)
			jw_push(w, arr, cJSON_CreateNumber(a->step_weights[i]));
	}
	if (a->step_weight_promotion)
		jw_num(w, an, "stepWeightPromotion", a->step_weight_promotion);
	jw_num(w, an, "iterations", a->iterations);
	arr = jw_arr(w, an, "metrics");
	for (i = 0; i < a->n_metrics; i++) {
		const struct spec_metric *sm = &a->metrics[i];

		m = cJSON_CreateObject();
		jw_push(w, arr, m);
		if (w->failed)
			return;
		jw_str(w, m, "name",
		       sm->kind == SPEC_METRIC_SUCCESS_RATE ? "request-success-rate" :
							      "request-duration");
		tr = jw_obj(w, m, "thresholdRange");
		if (sm->has_min)
			jw_num(w, tr, "min", sm->min);
		if (sm->has_max)
			jw_num(w, tr, "max", sm->max);
		add_interval(w, m, sm->interval_ms);
	}
	if (!a->n_webhooks)
		return;
	arr = jw_arr(w, an, "webhooks");
	for (i = 0; i < a->n_webhooks; i++) {
		const struct spec_webhook *wh = &a->webhooks[i];
		char d[64];

		m = cJSON_CreateObject();
		jw_push(w, arr, m);
		if (w->failed)
			return;
		jw_str(w, m, "name", wh->name);
		jw_str(w, m, "type", spec_webhook_type_name(wh->type));
		jw_str(w, m, "url", wh->url);
		duration_format(wh->timeout_ms, d, sizeof(d));
		jw_str(w, m, "timeout", d);
		jw_num(w, m, "retries", wh->retries);
		if (wh->n_meta) {
			tr = jw_obj(w, m, "metadata");
			for (int k = 0; k < wh->n_meta; k++)
				jw_str(w, tr, wh->meta_key[k], wh->meta_val[k]);
		}
	}
}

/*
 * A Canary document again, so that spec_parse_buffer() reads it back to the
 * same struct. Differences from what the user wrote: defaults are filled,
 * every interval also appears as intervalMs, endpoints carry their port,
 * and the Flagger fields sluice ignores are left out.
 */
char *spec_to_json(const struct spec_canary *c)
{
	cJSON *root = cJSON_CreateObject(), *md, *spec, *svc, *st, *co;
	char buf[INET6_ADDRSTRLEN];
	struct jw w = { false };
	char *out = NULL;

	if (!root)
		return NULL;
	jw_str(&w, root, "apiVersion", SPEC_API_VERSION);
	jw_str(&w, root, "kind", SPEC_KIND);
	md = jw_obj(&w, root, "metadata");
	jw_str(&w, md, "name", c->name);
	jw_str(&w, md, "namespace", c->namespace);

	spec = jw_obj(&w, root, "spec");
	svc = jw_obj(&w, spec, "service");
	jw_num(&w, svc, "port", c->port);
	jw_num(&w, svc, "targetPort", c->target_port);
	add_analysis(&w, spec, &c->analysis);
	jw_bool(&w, spec, "skipAnalysis", c->skip_analysis);
	jw_bool(&w, spec, "revertOnFailure", c->revert_on_failure);

	st = jw_obj(&w, spec, "steering");
	addr_format(&c->vip, buf, sizeof(buf));
	jw_str(&w, st, "vip", buf);
	jw_str(&w, st, "protocol", c->proto == IPPROTO_UDP ? "udp" : "tcp");
	jw_str(&w, st, "affinity", c->affinity == SL_AFFINITY_CLIENT ? "client" : "connection");
	jw_bool(&w, st, "failsafe", c->failsafe);
	jw_str(&w, st, "onRollback", c->rollback_reset ? "reset" : "drain");
	{
		char d[64];

		duration_format(c->drain_timeout_ms, d, sizeof(d));
		jw_str(&w, st, "drainTimeout", d);
	}
	if (c->has_initial_weight)
		jw_num(&w, st, "weight", c->initial_weight / 100.0);
	add_version_set(&w, st, "primary", &c->primary);
	add_version_set(&w, st, "canary", &c->canary);
	if (c->primary.n_cohorts || c->canary.n_cohorts) {
		co = jw_obj(&w, st, "cohorts");
		add_cohorts(&w, co, "primary", &c->primary);
		add_cohorts(&w, co, "canary", &c->canary);
	}

	if (!w.failed)
		out = cJSON_Print(root);
	cJSON_Delete(root);
	return out;
}
