// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `sluice agent`: loads the datapath with its maps pinned, attaches it to
 * the client-facing interfaces, writes every rollout of the spec into the
 * maps, and on SIGINT/SIGTERM detaches and removes what it pinned.
 * The analysis loop that moves the weight builds on this; until then the
 * weight is the spec's fixed spec.steering.weight.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "datapath.h"
#include "log.h"
#include "spec_set.h"
#include "steering.h"

struct agent_opts {
	const char *spec;
	char *ifaces;
	const char *pin_root;
	struct dp_opts dp;
};

static volatile sig_atomic_t stop_signal, reload_requested;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		reload_requested = 1;
	else
		stop_signal = sig;
}

static void agent_usage(FILE *f)
{
	fprintf(f,
		"Usage: sluice agent --spec FILE|DIR --iface IF[,IF...] [OPTIONS]\n"
		"\n"
		"Load the steering programs, attach them to each interface (forward half at\n"
		"TC ingress, reverse half at TC egress) and steer every Canary of the spec.\n"
		"Runs until SIGINT or SIGTERM, then detaches and removes its pinned maps.\n"
		"SIGHUP reloads the spec: a bad one is refused and the rollouts keep running.\n"
		"\n"
		"  -s, --spec FILE|DIR     Canary spec, or a directory of *.json/*.yaml/*.yml\n"
		"  -i, --iface IF[,IF]     client-facing interfaces to attach to\n"
		"  -b, --bpffs DIR         pin root (default %s); the BPF\n"
		"                          filesystem is mounted at /sys/fs/bpf when absent\n"
		"      --ct-flows N        conntrack capacity in flows (default %d)\n"
		"      --udp-timeout DUR   idle time after which a UDP flow is steered anew\n"
		"                          (default 30s; 250ms, 2s, 1m ...)\n"
		"  -v, --verbose           debug messages, libbpf's included\n"
		"  -h, --help              this text\n",
		DP_DEFAULT_PIN_ROOT, DP_DEFAULT_CT_FLOWS);
}

static int parse_agent_opts(int argc, char **argv, struct agent_opts *o)
{
	static const struct option longopts[] = {
		{ "spec", required_argument, NULL, 's' },
		{ "iface", required_argument, NULL, 'i' },
		{ "bpffs", required_argument, NULL, 'b' },
		{ "ct-flows", required_argument, NULL, 'C' },
		{ "udp-timeout", required_argument, NULL, 'U' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->pin_root = DP_DEFAULT_PIN_ROOT;
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:i:b:vh", longopts, NULL)) != -1) {
		char *end;
		unsigned long v;
		uint64_t ms;

		switch (c) {
		case 's':
			o->spec = optarg;
			break;
		case 'i':
			o->ifaces = optarg;
			break;
		case 'b':
			o->pin_root = optarg;
			break;
		case 'C':
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || v < 1024 || v > (1UL << 26)) {
				fprintf(stderr, "sluice agent: --ct-flows: %s is not a number of "
						"flows in 1024..67108864\n", optarg);
				return -EINVAL;
			}
			o->dp.ct_flows = (uint32_t)v;
			break;
		case 'U':
			if (spec_duration_ms(optarg, &ms) || ms == 0) {
				fprintf(stderr, "sluice agent: --udp-timeout: %s is not a positive "
						"duration (250ms, 2s, 1m)\n", optarg);
				return -EINVAL;
			}
			o->dp.udp_timeout_ns = ms * 1000000ULL;
			break;
		case 'v':
			log_set_level(LOG_LEVEL_DEBUG);
			break;
		case 'h':
			agent_usage(stdout);
			return 1;
		default:
			agent_usage(stderr);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "sluice agent: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (!o->spec || !o->ifaces) {
		fprintf(stderr, "sluice agent: --spec and --iface are required (sluice agent --help)\n");
		return -EINVAL;
	}
	o->dp.pin_root = o->pin_root;
	return 0;
}

static int apply_all(struct datapath *dp, const struct spec_set *set)
{
	for (int i = 0; i < set->n; i++) {
		const struct spec_canary *c = &set->items[i];
		uint32_t id;
		int err = steering_apply(&dp->maps, c, (uint16_t)c->initial_weight, &id);

		if (err)
			return err;
		log_info("%s/%s: steering %s port %u (service %u): canary weight %.2f%%, "
			 "%d primary and %d canary backends\n", c->namespace, c->name,
			 c->vip.family == AF_INET6 ? "IPv6 VIP" : "IPv4 VIP", c->port, id,
			 c->initial_weight / 100.0, c->primary.n_endpoints, c->canary.n_endpoints);
		for (int k = 0; k < c->n_ignored; k++)
			log_info("%s/%s: %s is accepted but not acted on by sluice\n", c->namespace,
				 c->name, c->ignored[k]);
	}
	return 0;
}

static bool in_set(const struct spec_set *set, const struct sl_service_key *key)
{
	for (int i = 0; i < set->n; i++) {
		struct sl_service_key k;

		steering_key(&set->items[i], &k);
		if (!memcmp(&k, key, sizeof(k)))
			return true;
	}
	return false;
}

/*
 * Re-read the spec. All or nothing: a set that fails to parse or to apply
 * leaves the running rollouts as they were, so a typo in a ConfigMap never
 * takes traffic down.
 */
static void reload(struct datapath *dp, const char *path, struct spec_set *set)
{
	struct spec_set next;
	int err;

	if (spec_set_load(path, &next)) {
		log_warn("%s: reload refused (errors above); %d rollout(s) continue unchanged\n",
			 path, set->n);
		return;
	}
	err = apply_all(dp, &next);
	if (err) {
		log_warn("%s: reload failed while writing the maps (%s); restoring the previous "
			 "spec\n", path, strerror(-err));
		apply_all(dp, set);
		spec_set_free(&next);
		return;
	}
	for (int i = 0; i < set->n; i++) {
		struct sl_service_key key;

		steering_key(&set->items[i], &key);
		if (!in_set(&next, &key)) {
			steering_remove(&dp->maps, &key);
			log_info("%s/%s: no longer in the spec; its VIP is not steered any more\n",
				 set->items[i].namespace, set->items[i].name);
		}
	}
	spec_set_free(set);
	*set = next;
	log_info("%s: reloaded, %d rollout(s)\n", path, set->n);
}

static int attach_all(struct datapath *dp, char *ifaces)
{
	char *save = NULL;

	for (char *tok = strtok_r(ifaces, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		int err;

		if (!*tok)
			continue;
		err = dp_attach(dp, tok);
		if (err)
			return err;
	}
	return dp->n_hooks ? 0 : -EINVAL;
}

int do_agent(int argc, char **argv)
{
	struct agent_opts o;
	struct spec_set set;
	struct datapath dp = { 0 };
	struct sigaction sa = { .sa_handler = on_signal };
	sigset_t block, old;
	int err;

	err = parse_agent_opts(argc, argv, &o);
	if (err)
		return err > 0 ? EXIT_OK : EXIT_USAGE;
	if (spec_set_load(o.spec, &set)) {
		log_warn("%s: spec refused; nothing was loaded\n", o.spec);
		return EXIT_FAIL;
	}

	/* Signals are taken only in sigsuspend(), so none is lost in between. */
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &old);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	err = dp_load(&dp, &o.dp);
	if (err)
		goto out;
	err = apply_all(&dp, &set);
	if (!err)
		err = attach_all(&dp, o.ifaces);
	if (err)
		goto cleanup;
	log_info("agent running: %d rollout(s), pin root %s\n", set.n, dp.pin_root);

	while (!stop_signal) {
		sigsuspend(&old);
		if (reload_requested) {
			reload_requested = 0;
			reload(&dp, o.spec, &set);
		}
	}
	log_info("%s: detaching\n", strsignal(stop_signal));

cleanup:
	dp_detach(&dp);
	dp_unpin(&dp);
	dp_destroy(&dp);
out:
	spec_set_free(&set);
	return err ? EXIT_FAIL : EXIT_OK;
}
