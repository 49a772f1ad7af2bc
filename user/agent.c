// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `sluice agent`: loads the datapath with its maps pinned, attaches it to
 * the client-facing interfaces, and runs every rollout of the spec: one
 * thread, one poll loop over signals, the control socket and the rollouts'
 * ticks. The spec is reloaded on SIGHUP and when its files change.
 *
 * On exit the datapath stays: programs attached, maps pinned, each service
 * at the weight it had, so connections keep flowing and a restarted agent
 * adopts everything (rollouts resume from the state dir). --detach-on-exit
 * removes it all instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "api.h"
#include "cli.h"
#include "datapath.h"
#include "links.h"
#include "http.h"
#include "prom.h"
#include "webhook.h"
#include "log.h"
#include "metrics.h"
#include "rollout.h"
#include "spec_set.h"
#include "state.h"
#include "steering.h"

struct agent_opts {
	const char *spec;
	char *ifaces;
	const char *pin_root;
	const char *state_dir;
	const char *run_dir;
	const char *listen; /* NULL: no HTTP endpoint */
	char *xdp_ifaces; /* NICs for the XDP forward half */
	bool cleanup;
	uint64_t failsafe_ms; /* 0: off */
	uint32_t latency_samples; /* per interval, in the smaller share; 0: time every request */
	bool detach_on_exit;
	struct dp_opts dp;
};

struct agent {
	struct agent_opts o;
	struct datapath dp;
	struct rollout **r;
	int n;
	uint64_t spec_sig;
	bool stop;
	struct http_server *http;
	struct webhook_runner *hooks;
	struct links *links;
};

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void agent_usage(FILE *f)
{
	fprintf(f,
		"Usage: sluice agent --spec FILE|DIR --iface IF[,IF...] [OPTIONS]\n"
		"\n"
		"Load the steering programs, attach them to each interface (forward half at\n"
		"TC ingress, reverse half at TC egress) and run every Canary of the spec:\n"
		"judge the canary each interval and move its weight, promote or roll back.\n"
		"SIGHUP, or a change to the spec's files, reloads the spec; a bad one is\n"
		"refused and the rollouts keep running. On SIGINT/SIGTERM the agent exits and\n"
		"the datapath stays (attached, pinned, at its weights) for the next agent.\n"
		"\n"
		"  -s, --spec FILE|DIR     Canary spec, or a directory of *.json/*.yaml/*.yml\n"
		"  -i, --iface IF[,IF]     client-facing interfaces to attach to: names or globs\n"
		"                          (eth0,lxc*,veth*); interfaces that appear later are\n"
		"                          attached as they come (netlink), gone ones forgotten\n"
		"  -x, --xdp-iface IF[,IF] north-south NICs: the forward half as XDP (native mode\n"
		"                          where the driver has it, else generic), reverse at TC\n"
		"  -b, --bpffs DIR         pin root (default %s); the BPF\n"
		"                          filesystem is mounted at /sys/fs/bpf when absent\n"
		"      --state-dir DIR     rollout status and audit log (default %s)\n"
		"      --run-dir DIR       control socket (default %s)\n"
		"      --listen ADDR:PORT  /metrics and /healthz (default %s; none: off)\n"
		"      --ct-flows N        conntrack capacity in flows (default %d)\n"
		"      --tc-api API        how the TC halves attach: tcx (links, Linux 6.6+),\n"
		"                          clsact (cls_bpf filters) or auto: tcx where the\n"
		"                          kernel has it (default)\n"
		"      --udp-timeout DUR   idle time after which a UDP flow is steered anew\n"
		"                          (default 30s; 250ms, 2s, 1m ...)\n"
		"      --failsafe-after DUR  when the agent has been silent this long, rollouts\n"
		"                          that opt in send new connections to primary only\n"
		"                          (default 30s; 0: never)\n"
		"      --no-accounting     leave request accounting out of the datapath\n"
		"      --host-routing      route steered packets in the programs (FIB lookup,\n"
		"                          straight into a pod's veth): faster, but the node's\n"
		"                          netfilter FORWARD/POSTROUTING rules never see them;\n"
		"                          list the backends' interfaces in --iface too, for\n"
		"                          their replies (docs/datapath.md)\n"
		"      --latency-samples N at high request rates time only a sample of the\n"
		"                          requests, keeping at least N timed an interval in\n"
		"                          the version with the smaller share (default %d;\n"
		"                          0: time every request)\n"
		"      --detach-on-exit    on SIGINT/SIGTERM detach and unpin everything\n"
		"      --cleanup           do not run: remove sluice's TC and XDP attachments\n"
		"                          (from --iface, or every interface) and its pins under\n"
		"                          --bpffs, and exit\n"
		"  -v, --verbose           debug messages, libbpf's included\n"
		"  -h, --help              this text\n",
		DP_DEFAULT_PIN_ROOT, STATE_DEFAULT_DIR, API_DEFAULT_RUN_DIR, HTTP_DEFAULT_LISTEN,
		DP_DEFAULT_CT_FLOWS, METRICS_SAMPLES_MIN);
}

static int parse_agent_opts(int argc, char **argv, struct agent_opts *o)
{
	enum { O_STATE = 256, O_RUN, O_CT, O_UDP, O_NOACCT, O_DETACH, O_LISTEN, O_FAILSAFE,
	       O_CLEANUP, O_TC_API, O_SAMPLES, O_HOST_ROUTING };
	static const struct option longopts[] = {
		{ "spec", required_argument, NULL, 's' },
		{ "iface", required_argument, NULL, 'i' },
		{ "xdp-iface", required_argument, NULL, 'x' },
		{ "bpffs", required_argument, NULL, 'b' },
		{ "state-dir", required_argument, NULL, O_STATE },
		{ "run-dir", required_argument, NULL, O_RUN },
		{ "listen", required_argument, NULL, O_LISTEN },
		{ "failsafe-after", required_argument, NULL, O_FAILSAFE },
		{ "cleanup", no_argument, NULL, O_CLEANUP },
		{ "ct-flows", required_argument, NULL, O_CT },
		{ "tc-api", required_argument, NULL, O_TC_API },
		{ "latency-samples", required_argument, NULL, O_SAMPLES },
		{ "udp-timeout", required_argument, NULL, O_UDP },
		{ "no-accounting", no_argument, NULL, O_NOACCT },
		{ "host-routing", no_argument, NULL, O_HOST_ROUTING },
		{ "detach-on-exit", no_argument, NULL, O_DETACH },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	o->pin_root = DP_DEFAULT_PIN_ROOT;
	o->state_dir = STATE_DEFAULT_DIR;
	o->run_dir = API_DEFAULT_RUN_DIR;
	o->listen = HTTP_DEFAULT_LISTEN;
	o->failsafe_ms = 30000;
	o->latency_samples = METRICS_SAMPLES_MIN;
	optind = 1;
	while ((c = getopt_long(argc, argv, "s:i:x:b:vh", longopts, NULL)) != -1) {
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
		case 'x':
			o->xdp_ifaces = optarg;
			break;
		case 'b':
			o->pin_root = optarg;
			break;
		case O_STATE:
			o->state_dir = optarg;
			break;
		case O_RUN:
			o->run_dir = optarg;
			break;
		case O_LISTEN: {
			struct sockaddr_storage ss;

			if (!strcmp(optarg, "none")) {
				o->listen = NULL;
				break;
			}
			if (http_parse_addr(optarg, &ss)) {
				fprintf(stderr, "sluice agent: --listen: %s is not IPv4:PORT, "
						"[IPv6]:PORT or none\n", optarg);
				return -EINVAL;
			}
			o->listen = optarg;
			break;
		}
		case O_CT:
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || *end || v < 1024 || v > (1UL << 26)) {
				fprintf(stderr, "sluice agent: --ct-flows: %s is not a number of "
						"flows in 1024..67108864\n", optarg);
				return -EINVAL;
			}
			o->dp.ct_flows = (uint32_t)v;
			break;
		case O_TC_API:
			if (!strcmp(optarg, "auto")) {
				o->dp.tc_api = DP_TC_AUTO;
			} else if (!strcmp(optarg, "tcx")) {
				o->dp.tc_api = DP_TC_TCX;
			} else if (!strcmp(optarg, "clsact")) {
				o->dp.tc_api = DP_TC_CLSACT;
			} else {
				fprintf(stderr, "sluice agent: --tc-api: %s is not auto, tcx or "
						"clsact\n", optarg);
				return -EINVAL;
			}
			break;
		case O_UDP:
			if (spec_duration_ms(optarg, &ms) || ms == 0) {
				fprintf(stderr, "sluice agent: --udp-timeout: %s is not a positive "
						"duration (250ms, 2s, 1m)\n", optarg);
				return -EINVAL;
			}
			o->dp.udp_timeout_ns = ms * 1000000ULL;
			break;
		case O_FAILSAFE:
			if (!strcmp(optarg, "0")) {
				o->failsafe_ms = 0;
				break;
			}
			if (spec_duration_ms(optarg, &ms) || ms == 0) {
				fprintf(stderr, "sluice agent: --failsafe-after: %s is not a duration "
						"(5s, 1m) or 0\n", optarg);
				return -EINVAL;
			}
			o->failsafe_ms = ms;
			break;
		case O_NOACCT:
			o->dp.no_accounting = true;
			break;
		case O_HOST_ROUTING:
			o->dp.host_routing = true;
			break;
		case O_SAMPLES:
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' || v > 100000000) {
				fprintf(stderr, "sluice agent: --latency-samples: %s is not a count "
						"from 0 to 100000000\n", optarg);
				return -EINVAL;
			}
			o->latency_samples = (uint32_t)v;
			break;
		case O_DETACH:
			o->detach_on_exit = true;
			break;
		case O_CLEANUP:
			o->cleanup = true;
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
	if (o->cleanup) {
		o->dp.pin_root = o->pin_root;
		return 0;
	}
	if (!o->spec || (!o->ifaces && !o->xdp_ifaces)) {
		fprintf(stderr, "sluice agent: --spec and --iface (or --xdp-iface) are required "
				"(sluice agent --help)\n");
		return -EINVAL;
	}
	{
		char why[160];

		if (o->ifaces && !links_pattern_valid(o->ifaces, why, sizeof(why))) {
			fprintf(stderr, "sluice agent: --iface: %s\n", why);
			return -EINVAL;
		}
	}
	o->dp.pin_root = o->pin_root;
	return 0;
}

/* A cheap signature of the spec's files: names, sizes and mtimes. */
static uint64_t spec_signature(const char *path)
{
	uint64_t h = 1469598103934665603ULL;
	struct stat st;
	DIR *d;
	struct dirent *de;

#define MIXV(v)                                                  \
	do {                                                     \
		uint64_t _v = (uint64_t)(v);                     \
		for (int _i = 0; _i < 8; _i++, _v >>= 8)         \
			h = (h ^ (_v & 0xff)) * 1099511628211ULL; \
	} while (0)
	if (stat(path, &st))
		return 0;
	MIXV(st.st_mtim.tv_sec);
	MIXV(st.st_mtim.tv_nsec);
	MIXV(st.st_size);
	if (!S_ISDIR(st.st_mode) || !(d = opendir(path)))
		return h;
	while ((de = readdir(d))) {
		char file[PATH_MAX];

		if (de->d_name[0] == '.' ||
		    snprintf(file, sizeof(file), "%s/%s", path, de->d_name) >= (int)sizeof(file) ||
		    stat(file, &st))
			continue;
		for (const char *p = de->d_name; *p; p++)
			MIXV(*p);
		MIXV(st.st_mtim.tv_sec);
		MIXV(st.st_mtim.tv_nsec);
		MIXV(st.st_size);
	}
	closedir(d);
#undef MIXV
	return h;
}

static struct rollout *find_by_name(struct agent *a, const char *ns_name)
{
	for (int i = 0; i < a->n; i++)
		if (!strcmp(a->r[i]->rec.name, ns_name))
			return a->r[i];
	return NULL;
}

/* Take on a spec set: stop what left, update what stayed, start what is new. */
static int apply_set(struct agent *a, const struct spec_set *set)
{
	struct rollout **next = calloc(set->n ? set->n : 1, sizeof(*next));
	uint64_t now = mono_ms();
	int err = 0;

	if (!next)
		return -ENOMEM;
	for (int i = 0; i < a->n; i++) {
		bool kept = false;

		for (int k = 0; k < set->n && !kept; k++) {
			char name[STATE_NAME_MAX];

			snprintf(name, sizeof(name), "%s/%s", set->items[k].namespace,
				 set->items[k].name);
			kept = !strcmp(name, a->r[i]->rec.name);
		}
		if (!kept) {
			rollout_stop(a->r[i]);
			rollout_free(a->r[i]);
			a->r[i] = NULL;
		}
	}
	for (int k = 0; k < set->n; k++) {
		const struct spec_canary *c = &set->items[k];
		char name[STATE_NAME_MAX];
		struct rollout *r;

		snprintf(name, sizeof(name), "%s/%s", c->namespace, c->name);
		r = find_by_name(a, name);
		if (r) {
			err = rollout_update(r, c, now);
		} else {
			r = calloc(1, sizeof(*r));
			if (!r) {
				err = -ENOMEM;
			} else {
				err = rollout_start(r, c, &a->dp.maps, a->o.state_dir, a->hooks, now);
				r->sample_min = a->o.latency_samples;
				for (int i = 0; i < c->n_ignored; i++)
					log_info("%s: %s is accepted but not acted on by sluice\n",
						 name, c->ignored[i]);
			}
		}
		if (err) {
			/*
			 * One rollout that does not fit (node limits, a bad map)
			 * must not take the others down: it is refused, loudly.
			 */
			log_warn("%s: not steered: %s\n", name, strerror(-err));
			rollout_free(r);
			r = NULL;
			err = 0;
			continue;
		}
		next[k] = r;
	}
	/* compact: rollouts that failed to start are left out, logged above */
	free(a->r);
	a->r = next;
	a->n = 0;
	for (int k = 0; k < set->n; k++)
		if (next[k])
			a->r[a->n++] = next[k];
	return err;
}

static void reload(struct agent *a, const char *why)
{
	struct spec_set set;

	a->spec_sig = spec_signature(a->o.spec);
	if (spec_set_load(a->o.spec, &set)) {
		log_warn("%s: reload (%s) refused, errors above; %d rollout(s) continue unchanged\n",
			 a->o.spec, why, a->n);
		return;
	}
	apply_set(a, &set);
	spec_set_free(&set);
	log_info("%s: reloaded (%s), %d rollout(s)\n", a->o.spec, why, a->n);
}

static int command_of(const char *s, enum rollout_command *cmd)
{
	static const struct {
		const char *name;
		enum rollout_command cmd;
	} table[] = {
		{ "pause", CMD_PAUSE },		{ "resume", CMD_RESUME },
		{ "promote", CMD_PROMOTE },	{ "promote-full", CMD_PROMOTE_FULL },
		{ "abort", CMD_ABORT },		{ "retry", CMD_RETRY },
		{ "set-weight", CMD_SET_WEIGHT },
	};

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (!strcmp(s, table[i].name)) {
			*cmd = table[i].cmd;
			return 0;
		}
	}
	return -EINVAL;
}

static cJSON *reply(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static cJSON *reply(bool ok, const char *fmt, ...)
{
	cJSON *o = cJSON_CreateObject();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cJSON_AddBoolToObject(o, "ok", ok);
	cJSON_AddStringToObject(o, ok ? "message" : "error", msg);
	return o;
}

/* "ns/name" exactly, or "name" when one namespace has it. */
static struct rollout *resolve(struct agent *a, const char *name, char *err, size_t len)
{
	struct rollout *found = NULL;
	int n = 0;

	if (strchr(name, '/')) {
		found = find_by_name(a, name);
		if (!found)
			snprintf(err, len, "no rollout %s", name);
		return found;
	}
	for (int i = 0; i < a->n; i++) {
		if (!strcmp(a->r[i]->spec.name, name)) {
			found = a->r[i];
			n++;
		}
	}
	if (n == 1)
		return found;
	snprintf(err, len, n ? "%s is in %d namespaces: say namespace/%s" : "no rollout %s", name,
		 n, name);
	return NULL;
}

static cJSON *handle_request(const cJSON *req, void *ctx)
{
	struct agent *a = ctx;
	const char *command = cJSON_GetObjectItemCaseSensitive(req, "command")->valuestring;
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "rollout"));
	const cJSON *w = cJSON_GetObjectItemCaseSensitive(req, "weight_pct");
	enum rollout_command cmd;
	struct rollout *r;
	char msg[512];
	uint16_t bp = 0;

	if (!strcmp(command, "ping"))
		return reply(true, "agent pid %d, %d rollout(s)", (int)getpid(), a->n);
	if (!strcmp(command, "drill-start") || !strcmp(command, "drill-end")) {
		const cJSON *ms = cJSON_GetObjectItemCaseSensitive(req, "measured_ms");
		int err;

		if (!name)
			return reply(false, "%s needs a \"rollout\" name", command);
		r = resolve(a, name, msg, sizeof(msg));
		if (!r)
			return reply(false, "%s", msg);
		if (!strcmp(command, "drill-start"))
			err = rollout_drill_start(r, msg, sizeof(msg));
		else
			err = rollout_drill_end(r, cJSON_IsNumber(ms) ? ms->valuedouble : -1, msg,
						sizeof(msg));
		return reply(!err, "%s", msg);
	}
	if (command_of(command, &cmd))
		return reply(false, "unknown command \"%.64s\"", command);
	if (!name)
		return reply(false, "%s needs a \"rollout\" name", command);
	r = resolve(a, name, msg, sizeof(msg));
	if (!r)
		return reply(false, "%s", msg);
	if (cmd == CMD_SET_WEIGHT) {
		double pct = cJSON_IsNumber(w) ? w->valuedouble : -1;

		if (pct < 0 || pct > 100)
			return reply(false, "set-weight needs \"weight_pct\" in 0..100");
		bp = (uint16_t)(pct * 100 + 0.5);
	}
	if (rollout_command(r, cmd, bp, msg, sizeof(msg)))
		return reply(false, "%s", msg);
	return reply(true, "%s", msg);
}

static char *render(const char *path, void *ctx)
{
	struct agent *a = ctx;

	if (!strcmp(path, "/metrics"))
		return prom_render(a->r, a->n, &a->dp.maps);
	if (!strcmp(path, "/healthz")) {
		/* alive, and the datapath's maps answer */
		struct sl_service_key k;
		int err = bpf_map_get_next_key(a->dp.maps.services, NULL, &k);

		return strdup(!err || errno == ENOENT ? "ok\n" : "maps unreadable\n");
	}
	return NULL;
}

/* links.c reports an interface that matches --iface, or that stopped matching. */
static void on_link(void *ctx, const char *ifname, int ifindex, bool added)
{
	struct agent *a = ctx;
	char now[IF_NAMESIZE];

	if (added) {
		dp_attach_ifindex(&a->dp, ifname, ifindex);
		return;
	}
	/* Still there (renamed out of the pattern, not deleted): our filters come off it. */
	dp_forget(&a->dp, ifindex, if_indextoname((unsigned int)ifindex, now) != NULL);
}

static int attach_all(struct agent *a)
{
	int err = 0;

	if (a->o.ifaces) {
		err = links_open(&a->links, a->o.ifaces, on_link, a);
		if (err) {
			log_warn("following interfaces %s: %s\n", a->o.ifaces, strerror(-err));
			return err;
		}
		err = links_sync(a->links);
	}
	if (err) {
		log_warn("listing interfaces: %s\n", strerror(-err));
		return err;
	}
	if (a->o.xdp_ifaces) {
		char *save = NULL;

		for (char *tok = strtok_r(a->o.xdp_ifaces, ",", &save); tok && !err;
		     tok = strtok_r(NULL, ",", &save))
			err = dp_attach_xdp(&a->dp, tok);
	}
	return err;
}

/* One agent per run dir: a second one would fight the first over the weights. */
static int take_lock(const char *run_dir)
{
	char path[PATH_MAX];
	int fd;

	if (mkdir(run_dir, 0700) && errno != EEXIST)
		return -errno;
	snprintf(path, sizeof(path), "%s/agent.lock", run_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		close(fd);
		return -EBUSY;
	}
	return fd;
}

/* The heartbeat the datapath's fail-safe watches (struct sl_agent_state). */
static void heartbeat(struct agent *a)
{
	struct timespec ts;
	struct sl_agent_state s;
	uint32_t zero = 0;

	clock_gettime(CLOCK_MONOTONIC, &ts); /* bpf_ktime_get_ns()'s clock */
	s.heartbeat_ns = (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
	s.failsafe_after_ns = a->o.failsafe_ms * 1000000ULL;
	bpf_map_update_elem(a->dp.maps.agent, &zero, &s, BPF_ANY);
}

static void run(struct agent *a, int sfd, int lfd)
{
	uint64_t last_watch = mono_ms();

	while (!a->stop) {
		struct pollfd p[5] = { { .fd = sfd, .events = POLLIN },
				       { .fd = lfd, .events = POLLIN },
				       { .fd = a->http ? http_fd(a->http) : -1, .events = POLLIN },
				       { .fd = webhook_runner_fd(a->hooks), .events = POLLIN },
				       { .fd = a->links ? links_fd(a->links) : -1, .events = POLLIN } };
		uint64_t now = mono_ms(), next = now + 1000;
		int timeout, ht;

		heartbeat(a);
		for (int i = 0; i < a->n; i++)
			if (rollout_next_due(a->r[i]) < next)
				next = rollout_next_due(a->r[i]);
		timeout = next > now ? (int)(next - now) : 0;
		ht = a->http ? http_timeout_ms(a->http) : -1;
		if (ht >= 0 && ht < timeout)
			timeout = ht;
		if (poll(p, 5, timeout) < 0 && errno != EINTR)
			break;
		if (p[4].revents & POLLIN) {
			int lerr = links_process(a->links);

			if (lerr)
				log_warn("interface events: %s\n", strerror(-lerr));
		}
		if (p[3].revents & POLLIN) {
			struct webhook_result res;

			while (webhook_result_next(a->hooks, &res))
				for (int i = 0; i < a->n; i++)
					if (rollout_hook_result(a->r[i], res.token, res.ok, res.status,
								res.error))
						break;
		}
		if (a->http)
			http_run(a->http); /* also expires idle connections */

		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo == SIGHUP) {
					reload(a, "SIGHUP");
				} else {
					log_info("%s: exiting\n", strsignal((int)si.ssi_signo));
					a->stop = true;
				}
			}
		}
		if (p[1].revents & POLLIN)
			api_serve_one(lfd, handle_request, a);

		now = mono_ms();
		for (int i = 0; i < a->n; i++) {
			if (a->r[i]->next_tick_ms <= now)
				rollout_tick(a->r[i], now);
			rollout_housekeep(a->r[i], now);
		}
		if (now - last_watch >= 1000) {
			last_watch = now;
			if (spec_signature(a->o.spec) != a->spec_sig)
				reload(a, "spec files changed");
		}
	}
}

int do_agent(int argc, char **argv)
{
	static struct agent a;
	struct spec_set set;
	sigset_t mask;
	int err, sfd = -1, lfd = -1, lock = -1;

	err = parse_agent_opts(argc, argv, &a.o);
	if (err)
		return err > 0 ? EXIT_OK : EXIT_USAGE;
	if (a.o.cleanup) {
		int filters, pins;

		dp_cleanup(a.o.pin_root, a.o.ifaces, &filters, &pins);
		printf("removed %d attachment(s) and %d pinned map(s) under %s\n", filters, pins,
		       a.o.pin_root);
		return EXIT_OK;
	}
	a.spec_sig = spec_signature(a.o.spec);
	if (spec_set_load(a.o.spec, &set)) {
		log_warn("%s: spec refused; nothing was loaded\n", a.o.spec);
		return EXIT_FAIL;
	}
	lock = take_lock(a.o.run_dir);
	if (lock < 0) {
		log_warn("%s: %s\n", a.o.run_dir,
			 lock == -EBUSY ? "another sluice agent runs with this run dir"
					: strerror(-lock));
		spec_set_free(&set);
		return EXIT_FAIL;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	lfd = api_listen(a.o.run_dir);
	if (sfd < 0 || lfd < 0) {
		log_warn("%s: %s\n", sfd < 0 ? "signalfd" : "control socket",
			 strerror(sfd < 0 ? errno : -lfd));
		err = -EIO;
		goto out;
	}

	err = webhook_runner_start(&a.hooks);
	if (err) {
		log_warn("starting the webhook worker: %s\n", strerror(-err));
		goto out;
	}
	err = dp_load(&a.dp, &a.o.dp);
	if (err)
		goto out;
	if (a.o.listen) {
		err = http_start(&a.http, a.o.listen, render, &a);
		if (err)
			goto cleanup;
	}
	err = apply_set(&a, &set);
	/* each rollout holds its own copy: the set's ~33 KB a Canary need not stay */
	spec_set_free(&set);
	if (!err)
		err = attach_all(&a);
	if (err)
		goto cleanup;
	log_info("agent running: %d rollout(s), pin root %s, state %s, socket %s/%s, http %s\n",
		 a.n, a.dp.pin_root, a.o.state_dir, a.o.run_dir, API_SOCKET_NAME,
		 a.o.listen ? a.o.listen : "off");

	run(&a, sfd, lfd);

cleanup:
	/*
	 * A start that failed half way leaves the pins alone: they may be a
	 * running datapath's, adopted from the previous agent.
	 */
	if (err) {
		log_warn("agent not started: %s; pinned maps under %s left as they were\n",
			 strerror(-err), a.dp.pin_root);
	} else if (a.o.detach_on_exit) {
		dp_detach(&a.dp);
		dp_unpin(&a.dp);
	} else {
		log_info("datapath left in place: attached, pinned under %s, at the current "
			 "weights\n", a.dp.pin_root);
	}
	if (a.links)
		links_close(a.links);
	http_stop(a.http);
	dp_destroy(&a.dp);
out:
	webhook_runner_stop(a.hooks);
	for (int i = 0; i < a.n; i++)
		rollout_free(a.r[i]);
	free(a.r);
	spec_set_free(&set);
	if (lfd >= 0) {
		char path[PATH_MAX];

		snprintf(path, sizeof(path), "%s/%s", a.o.run_dir, API_SOCKET_NAME);
		unlink(path);
		close(lfd);
	}
	if (sfd >= 0)
		close(sfd);
	close(lock);
	return err ? EXIT_FAIL : EXIT_OK;
}
