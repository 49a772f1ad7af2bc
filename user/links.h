/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Following the node's interfaces: which of them match the agent's --iface
 * patterns (names and fnmatch globs, comma-separated: "eth0,lxc*,veth*"),
 * reported once as they appear and once as they go. Reads the kernel's link
 * events (rtnetlink, RTMGRP_LINK) through libmnl, in the network namespace
 * of the process that calls links_open(). Touches nothing: attaching is the
 * caller's business, from the callback.
 */
#ifndef SLUICE_LINKS_H
#define SLUICE_LINKS_H

#include <stdbool.h>
#include <stddef.h>

/* Longest pattern list and longest single glob accepted. */
#define LINKS_PATTERNS_MAX 1024
#define LINKS_GLOB_MAX 64

struct links;

/*
 * added: @ifname (@ifindex) matches and is new to us, in whatever state it
 * is (CNIs create veths down; TC attaches to a down interface all the same).
 * !added: it was reported as added and is gone: deleted, moved to another
 * network namespace, or renamed to a name that does not match.
 */
typedef void (*links_cb)(void *ctx, const char *ifname, int ifindex, bool added);

/**
 * links_open() - subscribe to link events for the interfaces matching @patterns.
 * @out: the handle, freed by links_close()
 * @patterns: comma-separated names and globs, as links_pattern_valid() accepts
 * @cb: called from links_sync() and links_process(), never from elsewhere;
 *      it may call links_match() but not links_sync(), links_process() or
 *      links_close() on the same handle
 * @ctx: passed to @cb
 *
 * Nothing is reported until links_sync(): subscribe first, then dump, so
 * that no interface created in between is missed.
 * Return: 0 or -errno (-EINVAL for a bad pattern list).
 */
int links_open(struct links **out, const char *patterns, links_cb cb, void *ctx);

/**
 * links_sync() - bring what was reported in line with the kernel's list.
 *
 * The first call reports every matching interface as added, in ifindex
 * order. Later calls report only the differences (removals first, then
 * additions in ifindex order); links_process() calls it by itself when the
 * kernel dropped events (ENOBUFS), so the caller never holds a stale set.
 * Return: 0 or -errno.
 */
int links_sync(struct links *l);

/** links_fd() - the event socket, for poll(POLLIN); non-blocking. */
int links_fd(struct links *l);

/**
 * links_process() - read every pending link event and report what changed.
 *
 * An interface renamed from a matching name to another matching name keeps
 * its ifindex and its TC filters: it is reported as added once more, with
 * its new name, and never as removed (so the caller can update its record
 * without detaching anything). Bridge-port events (AF_BRIDGE) are ignored:
 * a port leaving a bridge still exists.
 * Return: 0 (also when nothing was pending) or -errno.
 */
int links_process(struct links *l);

/** links_close() - close the socket and free @l; NULL is fine. Reports nothing. */
void links_close(struct links *l);

/**
 * links_pattern_valid() - whether @patterns is a list links_open() takes.
 *
 * One or more items separated by commas, none empty; no whitespace, '/' or
 * ':' (no interface name has them); a plain name shorter than IF_NAMESIZE; a
 * glob at most LINKS_GLOB_MAX characters, with every '[' closed.
 * Return: true, or false with the reason in @err (when @err is not NULL).
 */
bool links_pattern_valid(const char *patterns, char *err, size_t err_len);

/**
 * links_resyncs() - how many times events were lost (the receive buffer
 * overflowed) and the set was rebuilt from a dump; for the agent's metrics.
 */
unsigned long links_resyncs(const struct links *l);

/** links_match() - whether @ifname matches one of @l's patterns. */
bool links_match(const struct links *l, const char *ifname);

#endif /* SLUICE_LINKS_H */
