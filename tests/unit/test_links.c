// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * user/links.c against the real kernel: interfaces are created, renamed,
 * moved and deleted with iproute2, and the callbacks checked. Every test
 * runs in a network namespace of its own (unshare(CLONE_NEWNET) in the test
 * process before each one), so nothing touches the root namespace and each
 * test starts from a namespace holding only lo. Needs root (CAP_NET_ADMIN
 * and CAP_SYS_ADMIN for unshare); without it those tests are skipped with
 * the reason. The pattern checks need nothing.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "links.h"

#define MAX_EVENTS 256

struct link_event {
	char name[IF_NAMESIZE];
	int ifindex;
	bool added;
};

static struct link_event events[MAX_EVENTS];
static int n_events;
static char no_netns_why[160]; /* empty: tests may make namespaces */

static void record(void *ctx, const char *ifname, int ifindex, bool added)
{
	struct link_event *e;

	(void)ctx;
	assert_true(n_events < MAX_EVENTS);
	e = &events[n_events++];
	snprintf(e->name, sizeof(e->name), "%s", ifname);
	e->ifindex = ifindex;
	e->added = added;
}

/*
 * Runs one shell command line (iproute2); the test fails if it does.
 * `mk NAME` makes an interface: a veth whose peer is qNAME, since veth is
 * the one type every kernel the project supports has (dummy is often a
 * module left out); no pattern below matches a q-name.
 */
static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void sh(const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int rc, n;

	va_start(ap, fmt);
	n = snprintf(cmd, sizeof(cmd), "%s",
		     "mk() { ip link add \"$1\" type veth peer name \"q$1\"; }; ");
	vsnprintf(cmd + n, sizeof(cmd) - n, fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		fail_msg("command failed (status %d): %s", rc, cmd);
}

/* A fresh network namespace for each test, or a skip saying why not. */
static int fresh_netns(void **state)
{
	(void)state;
	n_events = 0;
	if (!no_netns_why[0] && unshare(CLONE_NEWNET))
		snprintf(no_netns_why, sizeof(no_netns_why),
			 "unshare(CLONE_NEWNET): %s (needs root)", strerror(errno));
	return 0;
}

static void need_netns(void)
{
	if (no_netns_why[0]) {
		print_message("# skipped: %s\n", no_netns_why);
		skip();
	}
}

static struct links *open_links(const char *patterns)
{
	struct links *l = NULL;

	assert_int_equal(links_open(&l, patterns, record, NULL), 0);
	assert_non_null(l);
	return l;
}

/* The events since the last call, then forgets them. */
static int drain(struct links *l)
{
	struct pollfd p = { .fd = links_fd(l), .events = POLLIN };
	int n;

	/* iproute2 returns after the kernel queued the event: no wait needed, but allow some */
	poll(&p, 1, 100);
	assert_int_equal(links_process(l), 0);
	n = n_events;
	n_events = 0;
	return n;
}

static void assert_event(int i, const char *name, bool added)
{
	assert_string_equal(events[i].name, name);
	assert_int_equal(events[i].added, added);
	if (added)
		assert_int_equal(events[i].ifindex, (int)if_nametoindex(name));
}

static bool event_for(int n, const char *name, bool added)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(events[i].name, name) && events[i].added == added)
			return true;
	return false;
}

static void patterns_are_checked(void **state)
{
	static const char *good[] = { "eth0", "veth*", "eth0,lxc*,veth*", "cali[0-9a-f]*",
				      "tap?", "[]x]*", "[!a]*", "a\\[b", "123456789012345" };
	static const char *bad[] = { "", "eth0,,veth*", ",eth0", "eth0,", "eth 0", "a/b",
				     "eth0:1", "1234567890123456", ".", "..", "veth[0-9",
				     "[!*" };
	struct links *l = NULL;
	char err[160];

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!links_pattern_valid(good[i], err, sizeof(err)))
			fail_msg("\"%s\" refused: %s", good[i], err);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (links_pattern_valid(bad[i], err, sizeof(err)))
			fail_msg("\"%s\" accepted", bad[i]);
		assert_true(err[0] != '\0');
	}
	assert_false(links_pattern_valid(NULL, NULL, 0));
	links_pattern_valid("veth[0-9", err, sizeof(err));
	assert_non_null(strstr(err, "veth[0-9"));
	assert_int_equal(links_open(&l, "eth0,,x", record, NULL), -EINVAL);
	assert_null(l);
}

static void sync_reports_existing_in_ifindex_order(void **state)
{
	struct links *l;

	(void)state;
	need_netns();
	/* created in an order unlike their names, so a sort by name would show */
	sh("mk sb1 && mk other && mk lxc0 && mk sa2");
	l = open_links("s*,lxc*");
	assert_int_equal(n_events, 0); /* nothing before links_sync() */
	assert_int_equal(links_sync(l), 0);
	assert_int_equal(n_events, 3);
	assert_event(0, "sb1", true);
	assert_event(1, "lxc0", true);
	assert_event(2, "sa2", true);
	assert_true(events[0].ifindex < events[1].ifindex);
	assert_true(events[1].ifindex < events[2].ifindex);
	n_events = 0;
	/* a second sync has nothing new to say, and no events are pending */
	assert_int_equal(links_sync(l), 0);
	assert_int_equal(n_events, 0);
	assert_int_equal(drain(l), 0);
	links_close(l);
}

static void veth_added_down_then_removed(void **state)
{
	struct links *l;
	int n;

	(void)state;
	need_netns();
	l = open_links("sv*");
	assert_int_equal(links_sync(l), 0);
	assert_int_equal(n_events, 0);

	/* as a CNI does: the pair is created down; both ends are reported at once */
	sh("ip link add sv0 type veth peer name sv1");
	n = drain(l);
	assert_int_equal(n, 2);
	assert_true(event_for(n, "sv0", true));
	assert_true(event_for(n, "sv1", true));
	assert_false(if_nametoindex("sv0") == 0);

	/* up, MTU, address: the same interface, nothing to report */
	sh("ip link set sv0 up && ip link set sv1 mtu 1400 && ip addr add 198.18.0.1/24 dev sv0");
	assert_int_equal(drain(l), 0);

	/* deleting one end deletes both */
	sh("ip link del sv0");
	n = drain(l);
	assert_int_equal(n, 2);
	assert_true(event_for(n, "sv0", false));
	assert_true(event_for(n, "sv1", false));
	links_close(l);
}

static void globs_match_only_their_names(void **state)
{
	struct links *l;
	int n;

	(void)state;
	need_netns();
	l = open_links("eth0,lxc[0-9]*,cali?x");
	assert_int_equal(links_sync(l), 0);
	sh("for n in eth0 eth01 xeth0 lxc1 lxc12 lxcx calibx caliabx cali; do "
	   "mk $n || exit 1; done");
	n = drain(l);
	assert_int_equal(n, 4);
	assert_event(0, "eth0", true);
	assert_event(1, "lxc1", true);
	assert_event(2, "lxc12", true);
	assert_event(3, "calibx", true);
	assert_true(links_match(l, "lxc9abc"));
	assert_false(links_match(l, "lxc"));
	assert_false(links_match(l, "eth0 "));
	/* deleting what never matched reports nothing */
	sh("ip link del eth01 && ip link del lxcx && ip link del caliabx");
	assert_int_equal(drain(l), 0);
	sh("ip link del lxc12");
	assert_int_equal(drain(l), 1);
	assert_event(0, "lxc12", false);
	links_close(l);
}

static void renames_in_and_out_of_the_pattern(void **state)
{
	struct links *l;
	int ifindex;

	(void)state;
	need_netns();
	l = open_links("lxc*");
	assert_int_equal(links_sync(l), 0);
	sh("mk tmp1");
	assert_int_equal(drain(l), 0);
	ifindex = (int)if_nametoindex("tmp1");

	/* Cilium names a new veth tmpN and renames it: that is an addition */
	sh("ip link set tmp1 name lxc1");
	assert_int_equal(drain(l), 1);
	assert_event(0, "lxc1", true);
	assert_int_equal(events[0].ifindex, ifindex);

	/* within the pattern: one more "added" with the new name, never "removed" */
	sh("ip link set lxc1 name lxc2");
	assert_int_equal(drain(l), 1);
	assert_event(0, "lxc2", true);
	assert_int_equal(events[0].ifindex, ifindex);

	/* out of the pattern: removed, under the name it was reported with */
	sh("ip link set lxc2 name other");
	assert_int_equal(drain(l), 1);
	assert_string_equal(events[0].name, "lxc2");
	assert_false(events[0].added);
	assert_int_equal(events[0].ifindex, ifindex);
	links_close(l);
}

static void bridge_port_events_are_not_removals(void **state)
{
	struct links *l;

	(void)state;
	need_netns();
	l = open_links("sp*");
	assert_int_equal(links_sync(l), 0);
	if (system("ip link add brx type bridge 2>/dev/null")) {
		print_message("# skipped: this kernel has no bridge devices\n");
		links_close(l);
		skip();
	}
	sh("mk sp0");
	assert_int_equal(drain(l), 1);
	assert_event(0, "sp0", true);
	/* enslaving and releasing send AF_BRIDGE NEWLINK/DELLINK for sp0 */
	sh("ip link set sp0 master brx && ip link set brx up && ip link set sp0 up && "
	   "ip link set sp0 nomaster && ip link del brx");
	assert_int_equal(drain(l), 0);
	links_close(l);
}

static void moves_between_namespaces(void **state)
{
	int ready[2], hold[2];
	struct links *l;
	char c;
	pid_t pod;
	int n;

	(void)state;
	need_netns();
	/* a "pod": a child in a network namespace of its own, alive until told */
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(hold), 0);
	pod = fork();
	assert_true(pod >= 0);
	if (pod == 0) {
		close(ready[0]);
		close(hold[1]);
		if (unshare(CLONE_NEWNET))
			_exit(1);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		while (read(hold[0], &c, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	assert_int_equal(read(ready[0], &c, 1), 1);

	l = open_links("nv*");
	assert_int_equal(links_sync(l), 0);

	/* the CNI way: a veth whose other end goes straight into the pod */
	sh("ip link add nv0 type veth peer name eth0 netns %d", (int)pod);
	assert_int_equal(drain(l), 1);
	assert_event(0, "nv0", true);

	/* moved out: gone from here */
	sh("ip link set nv0 netns %d", (int)pod);
	assert_int_equal(drain(l), 1);
	assert_string_equal(events[0].name, "nv0");
	assert_false(events[0].added);

	/* moved in from the pod: new here */
	sh("nsenter -t %d -n ip link set nv0 netns %d", (int)pod, (int)getpid());
	n = drain(l);
	assert_int_equal(n, 1);
	assert_event(0, "nv0", true);

	/* the pod's namespace goes away with its end: ours goes too */
	close(hold[1]);
	waitpid(pod, NULL, 0);
	/* the namespace is freed asynchronously (cleanup_net), so allow it time */
	for (int i = 0; i < 50 && !n_events; i++) {
		poll(NULL, 0, 20);
		assert_int_equal(links_process(l), 0);
	}
	assert_int_equal(n_events, 1);
	assert_string_equal(events[0].name, "nv0");
	assert_false(events[0].added);
	close(ready[0]);
	links_close(l);
}

static void lost_events_are_recovered_by_a_dump(void **state)
{
	struct links *l;
	int tiny = 0, n;

	(void)state;
	need_netns();
	l = open_links("sx*");
	sh("mk sx0");
	assert_int_equal(links_sync(l), 0);
	assert_int_equal(n_events, 1);
	n_events = 0;

	/* the smallest buffer the kernel allows: a few events overflow it */
	assert_int_equal(setsockopt(links_fd(l), SOL_SOCKET, SO_RCVBUF, &tiny, sizeof(tiny)), 0);
	/* queued, older than what follows: must not undo the rename below */
	sh("ip link set sx0 mtu 1400");
	sh("for i in $(seq 30); do mk fill$i || exit 1; done");
	sh("ip link set sx0 name zz0 && mk sx5");
	n = drain(l);
	assert_true(links_resyncs(l) >= 1);
	assert_int_equal(n, 2);
	assert_string_equal(events[0].name, "sx0");
	assert_false(events[0].added);
	assert_event(1, "sx5", true);

	/* what was reported is what the kernel has */
	assert_int_equal(links_sync(l), 0);
	assert_int_equal(n_events, 0);
	links_close(l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(patterns_are_checked),
		cmocka_unit_test_setup(sync_reports_existing_in_ifindex_order, fresh_netns),
		cmocka_unit_test_setup(veth_added_down_then_removed, fresh_netns),
		cmocka_unit_test_setup(globs_match_only_their_names, fresh_netns),
		cmocka_unit_test_setup(renames_in_and_out_of_the_pattern, fresh_netns),
		cmocka_unit_test_setup(bridge_port_events_are_not_removals, fresh_netns),
		cmocka_unit_test_setup(moves_between_namespaces, fresh_netns),
		cmocka_unit_test_setup(lost_events_are_recovered_by_a_dump, fresh_netns),
	};

	/* Nothing here may run in the namespace we were started in. */
	if (geteuid() != 0)
		snprintf(no_netns_why, sizeof(no_netns_why),
			 "needs root to create network namespaces and interfaces");
	else if (unshare(CLONE_NEWNET))
		snprintf(no_netns_why, sizeof(no_netns_why), "unshare(CLONE_NEWNET): %s",
			 strerror(errno));
	else if (system("ip -V >/dev/null 2>&1") != 0)
		snprintf(no_netns_why, sizeof(no_netns_why), "iproute2's ip is not installed");
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests_name("links", tests, NULL, NULL);
}
