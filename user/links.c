// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Following the node's interfaces (links.h): one rtnetlink socket subscribed
 * to RTMGRP_LINK for the events, a short-lived one per dump, and the set of
 * matching interfaces already reported, kept sorted by ifindex.
 *
 * Only what matches is remembered: an event for an ifindex not in the set
 * whose name matches is an addition whether the interface is new or was
 * renamed into the pattern, and that is the same thing to the caller.
 *
 * It opens sockets and reads; it never changes an interface, and it logs
 * nothing (it returns errors), so it builds on its own for its test.
 */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <net/if.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

#include "links.h"

/*
 * Large enough for any one link message the kernel sends: a dump fills up
 * to the reader's buffer (32 KiB at most), and the netlink docs ask for
 * at least that much to be offered so nothing is cut (MSG_TRUNC).
 */
#define LINKS_BUF_SIZE 65536
/*
 * A CNI bringing up many pods at once sends a few events per veth; the
 * default receive buffer (rmem_default, ~200 KiB) holds a few hundred.
 * More is cheap and makes a resync rarer; an overflow is recovered anyway.
 */
#define LINKS_RCVBUF (4 << 20)
/* Bounds the discarding of stale events before a resync (see resync()). */
#define LINKS_DRAIN_MAX 100000
/* A dump interrupted by concurrent changes (NLM_F_DUMP_INTR) is retried. */
#define LINKS_DUMP_TRIES 5

struct link_ent {
	int ifindex;
	char name[IF_NAMESIZE];
};

struct link_set {
	struct link_ent *e;
	size_t n;
	size_t cap;
};

struct links {
	struct mnl_socket *nl;
	links_cb cb;
	void *ctx;
	char *pat_buf; /* the pattern list with every ',' made a NUL */
	char **pats;
	int n_pats;
	struct link_set known; /* reported as added, not yet as removed */
	unsigned long resyncs;
	int cb_err; /* what stopped event_cb, for links_process() to return */
	unsigned int seq;
	char *buf;
};

/* Interface names never hold these (the kernel's dev_valid_name()). */
static bool name_char_ok(char c)
{
	return c != '/' && c != ':' && c != ',' && !isspace((unsigned char)c);
}

/* Whether every '[' of @glob has its ']', as fnmatch(3) reads brackets. */
static bool brackets_closed(const char *glob)
{
	for (const char *p = glob; *p; p++) {
		if (*p == '\\' && p[1]) {
			p++;
			continue;
		}
		if (*p != '[')
			continue;
		p++;
		if (*p == '!' || *p == '^')
			p++;
		if (*p == ']') /* a leading ']' is a member, not the end */
			p++;
		while (*p && *p != ']')
			p++;
		if (!*p)
			return false;
	}
	return true;
}

static bool item_valid(const char *item, size_t len, char *err, size_t err_len)
{
	bool glob = false;

	if (!len) {
		snprintf(err, err_len, "an empty item (two commas, or one at an end)");
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if (!name_char_ok(item[i])) {
			snprintf(err, err_len, "\"%.*s\": interface names have no '%c'", (int)len,
				 item, isspace((unsigned char)item[i]) ? ' ' : item[i]);
			return false;
		}
		if (item[i] == '*' || item[i] == '?' || item[i] == '[')
			glob = true;
	}
	if (!glob) {
		if (len >= IF_NAMESIZE) {
			snprintf(err, err_len, "\"%.*s\": longer than an interface name (%d)",
				 (int)len, item, IF_NAMESIZE - 1);
			return false;
		}
		if ((len == 1 && item[0] == '.') || (len == 2 && !strncmp(item, "..", 2))) {
			snprintf(err, err_len, "\"%.*s\" is not an interface name", (int)len, item);
			return false;
		}
		return true;
	}
	if (len > LINKS_GLOB_MAX) {
		snprintf(err, err_len, "\"%.20s...\": a pattern is at most %d characters", item,
			 LINKS_GLOB_MAX);
		return false;
	}
	{
		char copy[LINKS_GLOB_MAX + 1];

		memcpy(copy, item, len);
		copy[len] = '\0';
		if (!brackets_closed(copy)) {
			snprintf(err, err_len, "\"%s\": a '[' is not closed", copy);
			return false;
		}
	}
	return true;
}

bool links_pattern_valid(const char *patterns, char *err, size_t err_len)
{
	char scratch[160];
	const char *p;

	if (!err || !err_len) {
		err = scratch;
		err_len = sizeof(scratch);
	}
	if (!patterns || !*patterns) {
		snprintf(err, err_len, "no interface name or pattern");
		return false;
	}
	if (strlen(patterns) > LINKS_PATTERNS_MAX) {
		snprintf(err, err_len, "the list is over %d characters", LINKS_PATTERNS_MAX);
		return false;
	}
	for (p = patterns;;) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (!item_valid(p, len, err, err_len))
			return false;
		if (!end)
			return true;
		p = end + 1;
	}
}

bool links_match(const struct links *l, const char *ifname)
{
	for (int i = 0; i < l->n_pats; i++)
		if (!fnmatch(l->pats[i], ifname, 0))
			return true;
	return false;
}

/* Index of @ifindex in @s, or where it would go (with *found false). */
static size_t set_find(const struct link_set *s, int ifindex, bool *found)
{
	size_t lo = 0, hi = s->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (s->e[mid].ifindex < ifindex)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < s->n && s->e[lo].ifindex == ifindex;
	return lo;
}

static int set_insert(struct link_set *s, size_t at, int ifindex, const char *name)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 16;
		struct link_ent *e = realloc(s->e, cap * sizeof(*e));

		if (!e)
			return -ENOMEM;
		s->e = e;
		s->cap = cap;
	}
	memmove(&s->e[at + 1], &s->e[at], (s->n - at) * sizeof(*s->e));
	s->e[at].ifindex = ifindex;
	snprintf(s->e[at].name, sizeof(s->e[at].name), "%s", name);
	s->n++;
	return 0;
}

static void set_remove(struct link_set *s, size_t at)
{
	memmove(&s->e[at], &s->e[at + 1], (s->n - at - 1) * sizeof(*s->e));
	s->n--;
}

/* The interface @ifindex is called @name now (RTM_NEWLINK, or a dump line). */
static int link_seen(struct links *l, int ifindex, const char *name)
{
	bool found, match = links_match(l, name);
	size_t at = set_find(&l->known, ifindex, &found);
	char old[IF_NAMESIZE];
	int err;

	if (!found) {
		if (!match)
			return 0;
		err = set_insert(&l->known, at, ifindex, name);
		if (err)
			return err;
		l->cb(l->ctx, name, ifindex, true);
		return 0;
	}
	/* Up, down, MTU, carrier...: none of that changes what we report. */
	if (!strcmp(l->known.e[at].name, name))
		return 0;
	if (match) {
		/* Same ifindex, same filters: only the name the caller knows changes. */
		snprintf(l->known.e[at].name, sizeof(l->known.e[at].name), "%s", name);
		l->cb(l->ctx, name, ifindex, true);
		return 0;
	}
	snprintf(old, sizeof(old), "%s", l->known.e[at].name);
	set_remove(&l->known, at);
	l->cb(l->ctx, old, ifindex, false);
	return 0;
}

/* The interface @ifindex has left this namespace (RTM_DELLINK, or a dump without it). */
static void link_gone(struct links *l, int ifindex)
{
	char old[IF_NAMESIZE];
	bool found;
	size_t at = set_find(&l->known, ifindex, &found);

	if (!found)
		return;
	snprintf(old, sizeof(old), "%s", l->known.e[at].name);
	set_remove(&l->known, at);
	l->cb(l->ctx, old, ifindex, false);
}

static int attr_cb(const struct nlattr *attr, void *data)
{
	const char **name = data;

	if (mnl_attr_get_type(attr) == IFLA_IFNAME &&
	    mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0)
		*name = mnl_attr_get_str(attr);
	return MNL_CB_OK;
}

/*
 * The ifindex and name of a link message, or false for one to pass over:
 * bridge-port messages (ifi_family AF_BRIDGE) share RTMGRP_LINK, and an
 * RTM_DELLINK among them means "left the bridge", not "deleted".
 */
static bool parse_link(const struct nlmsghdr *nlh, int *ifindex, const char **name)
{
	const struct ifinfomsg *ifm;

	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(*ifm)))
		return false;
	ifm = mnl_nlmsg_get_payload(nlh);
	if (ifm->ifi_family != AF_UNSPEC || ifm->ifi_index <= 0)
		return false;
	*ifindex = ifm->ifi_index;
	*name = NULL;
	mnl_attr_parse(nlh, sizeof(*ifm), attr_cb, name);
	return *name && **name && strlen(*name) < IF_NAMESIZE;
}

struct dump_ctx {
	struct links *l;
	struct link_set seen; /* matching interfaces in the dump */
	int err;
};

static int dump_cb(const struct nlmsghdr *nlh, void *data)
{
	struct dump_ctx *d = data;
	const char *name;
	int ifindex, err;
	bool found;
	size_t at;

	if (nlh->nlmsg_type != RTM_NEWLINK || !parse_link(nlh, &ifindex, &name) ||
	    !links_match(d->l, name))
		return MNL_CB_OK;
	at = set_find(&d->seen, ifindex, &found);
	if (found)
		return MNL_CB_OK;
	err = set_insert(&d->seen, at, ifindex, name);
	if (err) {
		d->err = err;
		return MNL_CB_ERROR;
	}
	return MNL_CB_OK;
}

/* One RTM_GETLINK dump into @d->seen, on a socket of its own. */
static int dump_links(struct links *l, struct dump_ctx *d)
{
	struct mnl_socket *nl;
	struct nlmsghdr *nlh;
	struct ifinfomsg *ifm;
	unsigned int portid, seq = ++l->seq;
	int err = 0;
	ssize_t n;

	/*
	 * Not the event socket: there the dump's replies would be mixed with
	 * events, and the events would then be read out of their order.
	 */
	nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl)
		return -errno;
	if (mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto out;
	}
	portid = mnl_socket_get_portid(nl);

	nlh = mnl_nlmsg_put_header(l->buf);
	nlh->nlmsg_type = RTM_GETLINK;
	nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	nlh->nlmsg_seq = seq;
	ifm = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifm));
	ifm->ifi_family = AF_UNSPEC;
	/* Names are all we read: leave the counters out of a dump of every link. */
	mnl_attr_put_u32(nlh, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0) {
		err = -errno;
		goto out;
	}
	for (;;) {
		int ret;

		n = mnl_socket_recvfrom(nl, l->buf, LINKS_BUF_SIZE);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		ret = mnl_cb_run(l->buf, (size_t)n, seq, portid, dump_cb, d);
		if (ret == MNL_CB_STOP)
			break;
		if (ret < 0) {
			/* libmnl says EINTR for a dump that NLM_F_DUMP_INTR marked */
			err = d->err ? d->err : -errno;
			break;
		}
	}
out:
	mnl_socket_close(nl);
	return err;
}

int links_sync(struct links *l)
{
	struct dump_ctx d = { .l = l };
	int err, tries = 0;

	do {
		free(d.seen.e);
		memset(&d.seen, 0, sizeof(d.seen));
		d.err = 0;
		err = dump_links(l, &d);
	} while (err == -EINTR && ++tries < LINKS_DUMP_TRIES);
	if (err)
		goto out;

	/* Removals first, so a name that moved between ifindexes is never seen twice. */
	for (size_t i = l->known.n; i-- > 0;) {
		bool found;

		set_find(&d.seen, l->known.e[i].ifindex, &found);
		if (!found)
			link_gone(l, l->known.e[i].ifindex);
	}
	for (size_t i = 0; i < d.seen.n && !err; i++)
		err = link_seen(l, d.seen.e[i].ifindex, d.seen.e[i].name);
out:
	free(d.seen.e);
	return err;
}

static int event_cb(const struct nlmsghdr *nlh, void *data)
{
	struct links *l = data;
	const char *name;
	int ifindex;

	if ((nlh->nlmsg_type != RTM_NEWLINK && nlh->nlmsg_type != RTM_DELLINK) ||
	    !parse_link(nlh, &ifindex, &name))
		return MNL_CB_OK;
	if (nlh->nlmsg_type == RTM_DELLINK) {
		link_gone(l, ifindex);
		return MNL_CB_OK;
	}
	l->cb_err = link_seen(l, ifindex, name);
	return l->cb_err ? MNL_CB_ERROR : MNL_CB_OK;
}

/*
 * The kernel dropped events (the receive buffer overflowed). It reports that
 * before the events still queued, which are older than a dump taken now:
 * read after it, they would undo what the dump says (a rename, a deletion).
 * So they are discarded first; whatever they said, the dump says as of now.
 */
static int resync(struct links *l)
{
	for (int i = 0; i < LINKS_DRAIN_MAX; i++) {
		if (mnl_socket_recvfrom(l->nl, l->buf, LINKS_BUF_SIZE) < 0 &&
		    (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
	}
	l->resyncs++;
	return links_sync(l);
}

int links_process(struct links *l)
{
	for (;;) {
		ssize_t n = mnl_socket_recvfrom(l->nl, l->buf, LINKS_BUF_SIZE);
		int err;

		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return 0;
			if (errno == EINTR)
				continue;
			/* ENOSPC: libmnl's word for a message cut short (MSG_TRUNC) */
			if (errno != ENOBUFS && errno != ENOSPC)
				return -errno;
			err = resync(l);
			if (err)
				return err;
			continue;
		}
		/* seq and portid 0: events are not answers to anything we sent */
		l->cb_err = 0;
		errno = 0;
		if (mnl_cb_run(l->buf, (size_t)n, 0, 0, event_cb, l) < 0)
			return l->cb_err ? l->cb_err : errno ? -errno : -EIO;
	}
}

int links_fd(struct links *l)
{
	return mnl_socket_get_fd(l->nl);
}

unsigned long links_resyncs(const struct links *l)
{
	return l->resyncs;
}

static int split_patterns(struct links *l, const char *patterns)
{
	int n = 1;

	l->pat_buf = strdup(patterns);
	if (!l->pat_buf)
		return -ENOMEM;
	for (const char *p = patterns; *p; p++)
		n += *p == ',';
	l->pats = calloc(n, sizeof(*l->pats));
	if (!l->pats)
		return -ENOMEM;
	for (char *p = l->pat_buf, *end;; p = end + 1) {
		l->pats[l->n_pats++] = p;
		end = strchr(p, ',');
		if (!end)
			break;
		*end = '\0';
	}
	return 0;
}

int links_open(struct links **out, const char *patterns, links_cb cb, void *ctx)
{
	struct links *l;
	int err, size = LINKS_RCVBUF;

	*out = NULL;
	if (!cb || !links_pattern_valid(patterns, NULL, 0))
		return -EINVAL;
	l = calloc(1, sizeof(*l));
	if (!l)
		return -ENOMEM;
	l->cb = cb;
	l->ctx = ctx;
	/* Any start for the dump sequence numbers will do; the clock avoids reuse. */
	l->seq = (unsigned int)time(NULL);
	err = split_patterns(l, patterns);
	if (err)
		goto fail;
	l->buf = malloc(LINKS_BUF_SIZE);
	if (!l->buf) {
		err = -ENOMEM;
		goto fail;
	}
	l->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (!l->nl) {
		err = -errno;
		goto fail;
	}
	/* FORCE passes rmem_max with CAP_NET_ADMIN (the agent has it); else what we may. */
	if (setsockopt(links_fd(l), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
		setsockopt(links_fd(l), SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	if (mnl_socket_bind(l->nl, RTMGRP_LINK, MNL_SOCKET_AUTOPID) < 0) {
		err = -errno;
		goto fail;
	}
	*out = l;
	return 0;
fail:
	links_close(l);
	return err;
}

void links_close(struct links *l)
{
	if (!l)
		return;
	if (l->nl)
		mnl_socket_close(l->nl);
	free(l->known.e);
	free(l->pats);
	free(l->pat_buf);
	free(l->buf);
	free(l);
}
