/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Request accounting: recognising HTTP/1.x request and response heads in
 * the first bytes of a TCP segment's payload, and keeping per flow the one
 * outstanding request whose latency the response closes. Deliberately
 * shallow: a head is recognised by its first bytes only, and anything that
 * cannot be matched one request to one response is counted as
 * unclassified, never as a success. docs/accounting.md has the rules.
 */
#ifndef SLUICE_BPF_HTTP_H
#define SLUICE_BPF_HTTP_H

#include <stdbool.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "lib/maps.h"
#include "lib/parse.h"
#include "sluice/hash.h"
#include "sluice/latency.h"

/* The first four payload bytes as one big-endian word. */
#define HTTP_W(a, b, c, d) (((__u32)(a) << 24) | ((__u32)(b) << 16) | ((__u32)(c) << 8) | (d))

#define HTTP_HEAD_LEN 12 /* "HTTP/1.1 200" */

/**
 * http_load() - the first @len bytes of @p's payload into @buf.
 * Direct access when they are in the linear part, which they nearly always
 * are; bpf_skb_load_bytes() otherwise (a GSO packet's payload in frags).
 */
static __always_inline int http_load(void *ctx, bool xdp, const struct pkt *p, void *buf,
				     __u32 len)
{
	void *data = xdp ? (void *)(long)((struct xdp_md *)ctx)->data
			 : (void *)(long)((struct __sk_buff *)ctx)->data;
	void *data_end = xdp ? (void *)(long)((struct xdp_md *)ctx)->data_end
			     : (void *)(long)((struct __sk_buff *)ctx)->data_end;
	__u32 off = p->payload_off & 0x1ff;

	if (p->payload_len < len)
		return -1;
	if (data + off + HTTP_HEAD_LEN <= data_end) {
		__builtin_memcpy(buf, data + off, HTTP_HEAD_LEN);
		return 0;
	}
	/* an XDP frame is linear: what is not in it is not there */
	return xdp ? -1 : bpf_skb_load_bytes(ctx, off, buf, len);
}

/* Does a payload starting with @w (host order) start an HTTP/1.x request? */
static __always_inline bool http_is_request(__u32 w)
{
	switch (w) {
	case HTTP_W('G', 'E', 'T', ' '):
	case HTTP_W('P', 'O', 'S', 'T'):
	case HTTP_W('P', 'U', 'T', ' '):
	case HTTP_W('H', 'E', 'A', 'D'):
	case HTTP_W('D', 'E', 'L', 'E'):
	case HTTP_W('O', 'P', 'T', 'I'):
	case HTTP_W('P', 'A', 'T', 'C'):
	case HTTP_W('C', 'O', 'N', 'N'):
	case HTTP_W('T', 'R', 'A', 'C'):
		return true;
	}
	return false;
}

/**
 * http_status() - the status code of a response head "HTTP/1.x NNN", or 0
 * when @h is no such head, or -1 when it is one with an unreadable code.
 */
static __always_inline int http_status(const __u8 *h)
{
	__u32 code = 0;
	int i;

	if (h[0] != 'H' || h[1] != 'T' || h[2] != 'T' || h[3] != 'P' || h[4] != '/' ||
	    h[5] != '1' || h[6] != '.' || h[8] != ' ')
		return 0;
#pragma unroll
	for (i = 9; i < 12; i++) {
		if (h[i] < '0' || h[i] > '9')
			return -1;
		code = code * 10 + (h[i] - '0');
	}
	return code >= 100 && code <= 599 ? (int)code : -1;
}

/* One timed request, standing for @weight requests (2^k when 1 in 2^k is timed). */
static __always_inline void http_count_latency(__u32 backend_id, __u64 ns, __u32 weight)
{
	struct sl_latency_hist *h = bpf_map_lookup_elem(&sl_latency, &backend_id);
	__u32 b = sl_lat_bucket(ns);

	if (h && b < SL_LAT_BUCKETS)
		h->buckets[b] += weight;
}

/*
 * Is the request starting at TCP sequence @seq timed, on flow @e? Its
 * service times 1 in 2^k requests, k as the agent set it now (an entry from
 * before svc_ref existed finds no service and times every request). Hashing
 * the sequence number (random from the handshake on) picks requests
 * independently of their latency, and a retransmitted head gets the same
 * answer as the original.
 * Return: k when it is timed, -1 when not.
 */
static __always_inline int http_sample_shift(const struct sl_ct_entry *e, __u32 seq)
{
	__u32 svc_id = e->svc_ref - 1;
	__u8 *k = bpf_map_lookup_elem(&sl_svc_sampling, &svc_id);
	__u32 shift = k ? *k & 7 : 0;

	if (!shift)
		return 0; /* every request timed: no hash to compute */
	return !(sl_mix32(seq) & ((1U << shift) - 1)) ? (int)shift : -1;
}

/**
 * http_forward() - account a client -> backend segment with payload.
 * @e: the flow's conntrack entry.
 */
static __always_inline void http_forward(void *ctx, bool xdp, const struct pkt *p,
					 struct sl_ct_entry *e, struct sl_backend_stats *st)
{
	__u8 head[HTTP_HEAD_LEN];

	if (http_load(ctx, xdp, p, head, 4))
		return;
	if (!http_is_request(HTTP_W(head[0], head[1], head[2], head[3])))
		return; /* a body, or not HTTP at all */
	if ((e->req_ns || (e->http_flags & SL_HTTP_F_UNTIMED)) && p->seq == e->req_seq)
		return; /* the same request head sent again */
	if (st)
		st->requests++;
	if (e->pending == 0) {
		int shift = http_sample_shift(e, p->seq);

		e->req_seq = p->seq;
		if (shift >= 0) {
			e->req_ns = bpf_ktime_get_ns();
			e->req_shift = shift;
			e->http_flags &= ~SL_HTTP_F_UNTIMED;
		} else {
			e->http_flags |= SL_HTTP_F_UNTIMED;
		}
	} else {
		/* Responses can no longer be told apart: stop timing this flow. */
		e->http_flags |= SL_HTTP_F_PIPELINED;
	}
	if (e->pending < 255)
		e->pending++;
}

/**
 * http_reverse() - account a backend -> client segment that may carry a
 * response head. @fwd is the flow's conntrack entry, @h the payload's first
 * bytes.
 */
static __always_inline void http_reverse(const struct pkt *p, struct sl_ct_entry *fwd,
					 const __u8 *h, __u32 backend_id,
					 struct sl_backend_stats *st)
{
	int code = http_status(h);
	__u32 cls;

	if (code == 0 || !st)
		return;
	if (fwd->resp_seq == p->seq && fwd->resp_seq != 0)
		return; /* the same response head sent again */
	fwd->resp_seq = p->seq;
	if (fwd->pending == 0 || code < 0 || (fwd->http_flags & SL_HTTP_F_PIPELINED)) {
		st->unclassified++;
		if (fwd->pending)
			fwd->pending--;
		return;
	}
	fwd->pending--;
	cls = ((__u32)code / 100 - 1) & 7; /* masked: the verifier does not follow division */
	if (cls < SL_HTTP_CLASSES)
		st->responses[cls]++;
	if (code >= 500) {
		__u32 k = code == 500 ? SL_5XX_500 : code == 502 ? SL_5XX_502 :
			  code == 503 ? SL_5XX_503 : code == 504 ? SL_5XX_504 : SL_5XX_OTHER;

		if (k < SL_5XX_KINDS)
			st->responses_5xx[k]++;
	}
	if (!(fwd->http_flags & SL_HTTP_F_UNTIMED))
		http_count_latency(backend_id, bpf_ktime_get_ns() - fwd->req_ns,
				   1U << (fwd->req_shift & 7));
}

#endif /* SLUICE_BPF_HTTP_H */
