// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `sluice pause|resume|promote|abort|retry NAME` and `sluice set-weight NAME
 * PCT`: a person steering a rollout, through the agent's control socket.
 * `abort` also works with the agent down: a rollback must never depend on
 * the agent being alive, so it then writes weight 0 straight into the
 * pinned service entry and marks the rollout Failed in the state dir, where
 * the next agent finds it.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "api.h"
#include "cli.h"
#include "datapath.h"
#include "json_util.h"
#include "state.h"
#include "steering.h"

struct control_opts {
	const char *run_dir, *state_dir, *pin_root;
	bool json, full;
	const char *name;
	double pct;
};

static void control_usage(FILE *f, const char *cmd)
{
	bool weight = !strcmp(cmd, "set-weight");

	fprintf(f,
		"Usage: sluice %s NAME%s%s [--json] [--run-dir DIR] [--state-dir DIR] [--bpffs DIR]\n"
		"\n", cmd, weight ? " PERCENT" : "", !strcmp(cmd, "promote") ? " [--full]" : "");
	if (!strcmp(cmd, "pause"))
		fprintf(f, "Hold the rollout where it is: no checks, no steps (phase Waiting).\n");
	else if (!strcmp(cmd, "resume"))
		fprintf(f, "Let the analysis continue after pause or set-weight.\n");
	else if (!strcmp(cmd, "promote"))
		fprintf(f, "Move to the next step now, without waiting for a check; with --full,\n"
			   "send all traffic to the canary set at once (Succeeded).\n");
	else if (!strcmp(cmd, "abort"))
		fprintf(f, "Roll back now: all new connections to primary, phase Failed. Works\n"
			   "with the agent down, straight on the pinned maps.\n");
	else if (!strcmp(cmd, "retry"))
		fprintf(f, "Start a Failed rollout over (a new attempt at 0%%).\n");
	else if (!strcmp(cmd, "drill"))
		fprintf(f, "Rehearse a rollback: the canary out of all traffic at once (its\n"
			   "connections reset), time until no packet reaches it any more, then put\n"
			   "everything back. The time is printed and recorded in the history.\n");
	else
		fprintf(f, "Hold the canary weight at PERCENT (0..100, up to two decimals); the\n"
			   "analysis pauses until `sluice resume`.\n");
	fprintf(f, "\nNAME is namespace/name, or a name unique across namespaces.\n"
		   "Exit status: 0 done, 1 refused or failed (the message says why), 2 bad usage.\n"
		   "Defaults: --run-dir %s, --state-dir %s, --bpffs %s\n",
		API_DEFAULT_RUN_DIR, STATE_DEFAULT_DIR, DP_DEFAULT_PIN_ROOT);
}

static int parse(int argc, char **argv, const char *cmd, struct control_opts *o)
{
	enum { O_RUN = 256, O_STATE, O_FULL };
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "run-dir", required_argument, NULL, O_RUN },
		{ "state-dir", required_argument, NULL, O_STATE },
		{ "bpffs", required_argument, NULL, 'b' },
		{ "full", no_argument, NULL, O_FULL },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	bool weight = !strcmp(cmd, "set-weight");
	int c;

	memset(o, 0, sizeof(*o));
	o->run_dir = API_DEFAULT_RUN_DIR;
	o->state_dir = STATE_DEFAULT_DIR;
	o->pin_root = DP_DEFAULT_PIN_ROOT;
	optind = 1;
	while ((c = getopt_long(argc, argv, "jb:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			o->json = true;
			break;
		case O_RUN:
			o->run_dir = optarg;
			break;
		case O_STATE:
			o->state_dir = optarg;
			break;
		case 'b':
			o->pin_root = optarg;
			break;
		case O_FULL:
			if (strcmp(cmd, "promote")) {
				cli_error(o->json, "%s: --full belongs to promote", cmd);
				return -EINVAL;
			}
			o->full = true;
			break;
		case 'h':
			control_usage(stdout, cmd);
			return 1;
		default:
			control_usage(stderr, cmd);
			return -EINVAL;
		}
	}
	if (argc - optind != (weight ? 2 : 1)) {
		cli_error(o->json, "%s needs %s (sluice %s --help)", cmd,
			  weight ? "NAME and PERCENT" : "NAME", cmd);
		return -EINVAL;
	}
	o->name = argv[optind];
	if (weight) {
		char *end;
		double bp;

		errno = 0;
		o->pct = strtod(argv[optind + 1], &end);
		bp = o->pct * 100;
		if (errno || *end || end == argv[optind + 1] || o->pct < 0 || o->pct > 100 ||
		    bp - (double)(long)(bp + 0.5) > 1e-6 || (double)(long)(bp + 0.5) - bp > 1e-6) {
			cli_error(o->json, "set-weight: %s is not a percent in 0..100 with at most "
					   "two decimals", argv[optind + 1]);
			return -EINVAL;
		}
	}
	return 0;
}

static void say(bool json, bool ok, const char *msg)
{
	if (json) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddBoolToObject(o, "ok", ok);
		cJSON_AddStringToObject(o, ok ? "message" : "error", msg);
		json_print_line(o);
		cJSON_Delete(o);
	} else if (ok) {
		printf("%s\n", msg);
	} else {
		fprintf(stderr, "sluice: %s\n", msg);
	}
}

/* The service of rollout @name in the pinned maps, through sl_svc_meta. */
static int find_service(const struct dp_maps *m, const char *name, struct sl_service_key *key,
			char *full, size_t full_len)
{
	struct sl_service_key k, next;
	int err = bpf_map_get_next_key(m->services, NULL, &next), found = 0;

	while (!err) {
		struct sl_service svc;
		struct sl_service_meta meta;

		k = next;
		err = bpf_map_get_next_key(m->services, &k, &next);
		if (bpf_map_lookup_elem(m->services, &k, &svc) ||
		    bpf_map_lookup_elem(m->meta, &svc.id, &meta))
			continue;
		if (cli_name_matches(name, meta.name)) {
			*key = k;
			snprintf(full, full_len, "%s", meta.name);
			found++;
		}
	}
	return found == 1 ? 0 : found ? -EEXIST : -ENOENT;
}

/* abort with the agent down: the maps first (traffic), then the record. */
static int abort_offline(const struct control_opts *o, const char *why)
{
	struct dp_maps m;
	struct sl_service_key key;
	struct rollout_record r;
	char full[STATE_NAME_MAX], msg[768];
	int err = dp_maps_open_pinned(&m, o->pin_root);

	if (err) {
		snprintf(msg, sizeof(msg), "abort %s: the agent is not running (%s) and no sluice "
			 "datapath is pinned at %s", o->name, why, o->pin_root);
		say(o->json, false, msg);
		return EXIT_FAIL;
	}
	err = find_service(&m, o->name, &key, full, sizeof(full));
	if (!err)
		err = steering_set_weight(&m, &key, 0);
	dp_maps_close(&m);
	if (err) {
		snprintf(msg, sizeof(msg), "abort %s: %s", o->name,
			 err == -ENOENT ? "no such rollout in the pinned maps" :
			 err == -EEXIST ? "the name is in several namespaces: say namespace/name" :
					  strerror(-err));
		say(o->json, false, msg);
		return EXIT_FAIL;
	}
	if (state_load(o->state_dir, full, &r) == 0) {
		cJSON *h = cJSON_CreateObject();
		char t[40];

		unix_ms_format(now_unix_ms(), t, sizeof(t));
		cJSON_AddStringToObject(h, "time", t);
		cJSON_AddStringToObject(h, "rollout", full);
		cJSON_AddNumberToObject(h, "attempt", r.attempt);
		cJSON_AddStringToObject(h, "primary_version", r.primary_version);
		cJSON_AddStringToObject(h, "canary_version", r.canary_version);
		cJSON_AddStringToObject(h, "by", "person");
		cJSON_AddStringToObject(h, "action", "rollback");
		cJSON_AddStringToObject(h, "phase_from", phase_name(r.st.phase));
		cJSON_AddStringToObject(h, "phase", "Failed");
		cJSON_AddNumberToObject(h, "weight_from_pct", r.st.weight_bp / 100.0);
		cJSON_AddNumberToObject(h, "weight_pct", 0);
		cJSON_AddNumberToObject(h, "failed_checks", r.st.failed_checks);
		cJSON_AddNumberToObject(h, "threshold", r.threshold);
		cJSON_AddStringToObject(h, "reason", "aborted by a person with the agent down: "
						     "rolled back in the pinned maps");
		r.st.phase = PHASE_FAILED;
		r.st.weight_bp = 0;
		r.st.paused = r.st.manual = false;
		r.updated_unix_ms = now_unix_ms();
		snprintf(r.last_action, sizeof(r.last_action), "rollback");
		snprintf(r.last_reason, sizeof(r.last_reason),
			 "aborted by a person with the agent down");
		state_save(o->state_dir, &r);
		history_append(o->state_dir, h);
		cJSON_Delete(h);
	}
	snprintf(msg, sizeof(msg), "%s: Failed, canary weight 0.00%% (aborted with the agent down, "
		 "%s: rolled back in the pinned maps)", full, why);
	say(o->json, true, msg);
	return EXIT_OK;
}

static int control(int argc, char **argv, const char *cmd)
{
	struct control_opts o;
	cJSON *req, *resp = NULL;
	const cJSON *ok, *text;
	char msg[768];
	int err = parse(argc, argv, cmd, &o);

	if (err)
		return err > 0 ? EXIT_OK : EXIT_USAGE;
	req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "command",
				!strcmp(cmd, "promote") && o.full ? "promote-full" : cmd);
	cJSON_AddStringToObject(req, "rollout", o.name);
	if (!strcmp(cmd, "set-weight"))
		cJSON_AddNumberToObject(req, "weight_pct", o.pct);
	err = api_call(o.run_dir, req, &resp);
	cJSON_Delete(req);
	if (err) {
		const char *why = err == -ENOENT || err == -ECONNREFUSED ? "no agent listens on the "
									   "control socket"
									 : strerror(-err);

		if (!strcmp(cmd, "abort"))
			return abort_offline(&o, why);
		snprintf(msg, sizeof(msg), "%s %s: %s (%s/%s)", cmd, o.name, why, o.run_dir,
			 API_SOCKET_NAME);
		say(o.json, false, msg);
		return EXIT_FAIL;
	}
	ok = cJSON_GetObjectItemCaseSensitive(resp, "ok");
	text = cJSON_GetObjectItemCaseSensitive(resp, cJSON_IsTrue(ok) ? "message" : "error");
	say(o.json, cJSON_IsTrue(ok), cJSON_IsString(text) ? text->valuestring : "?");
	err = cJSON_IsTrue(ok) ? EXIT_OK : EXIT_FAIL;
	cJSON_Delete(resp);
	return err;
}

int do_pause(int argc, char **argv)
{
	return control(argc, argv, "pause");
}

int do_resume(int argc, char **argv)
{
	return control(argc, argv, "resume");
}

int do_promote(int argc, char **argv)
{
	return control(argc, argv, "promote");
}

int do_abort(int argc, char **argv)
{
	return control(argc, argv, "abort");
}

int do_retry(int argc, char **argv)
{
	return control(argc, argv, "retry");
}

int do_set_weight(int argc, char **argv)
{
	return control(argc, argv, "set-weight");
}

/* The canary backends' packets so far: whatever still reaches the canary moves it. */
static int canary_packets(const struct dp_maps *m, const struct sl_service_key *key,
			  uint64_t *pkts)
{
	struct sl_service svc;
	uint32_t bank;

	*pkts = 0;
	if (bpf_map_lookup_elem(m->services, key, &svc))
		return -errno;
	bank = !!(svc.flags & SL_SVC_F_BANK1);
	for (uint32_t i = svc.primary_count; i < (uint32_t)svc.primary_count + svc.canary_count;
	     i++) {
		uint32_t slot = sl_slot_index(svc.id, bank, i), id;
		struct sl_backend_stats st;

		if (!bpf_map_lookup_elem(m->slots, &slot, &id) && !dp_backend_stats(m, id, &st))
			*pkts += st.pkts_fwd;
	}
	return 0;
}

static uint64_t now_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * `sluice drill NAME`: a rollback rehearsed for real. The agent takes the
 * canary out of all traffic (weight 0, primary only, its connections reset);
 * this side watches the canary's packet counters in the pinned maps until
 * they have been still for a second, reports how long after the rollback
 * the last packet reached the canary, and has the agent put everything back.
 */
int do_drill(int argc, char **argv)
{
	struct control_opts o;
	struct sl_service_key key;
	struct dp_maps m;
	cJSON *req, *resp = NULL;
	char full[STATE_NAME_MAX], msg[768];
	uint64_t t0, last_move, pkts, prev;
	double measured;
	int err;

	err = parse(argc, argv, "drill", &o);
	if (err)
		return err > 0 ? EXIT_OK : EXIT_USAGE;
	err = dp_maps_open_pinned(&m, o.pin_root);
	if (!err)
		err = find_service(&m, o.name, &key, full, sizeof(full));
	if (err) {
		snprintf(msg, sizeof(msg), "drill %s: %s", o.name,
			 err == -ENOENT ? "no such rollout in the pinned maps" : strerror(-err));
		say(o.json, false, msg);
		return EXIT_FAIL;
	}
	canary_packets(&m, &key, &prev);

	/* the clock starts with the request: the agent's reaction is part of the time */
	t0 = now_mono_ms();
	req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "command", "drill-start");
	cJSON_AddStringToObject(req, "rollout", full);
	err = api_call(o.run_dir, req, &resp);
	cJSON_Delete(req);
	if (err || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok"))) {
		snprintf(msg, sizeof(msg), "drill %s: %s", o.name,
			 err ? "no agent listens on the control socket (a drill needs the agent)"
			     : json_str(resp, "error"));
		cJSON_Delete(resp);
		dp_maps_close(&m);
		say(o.json, false, msg);
		return EXIT_FAIL;
	}
	cJSON_Delete(resp);

	last_move = now_mono_ms(); /* at least until the agent answered */
	if (canary_packets(&m, &key, &pkts) == 0 && pkts != prev)
		prev = pkts;
	while (now_mono_ms() - last_move < 1000 && now_mono_ms() - t0 < 30000) {
		usleep(10 * 1000);
		if (canary_packets(&m, &key, &pkts) == 0 && pkts != prev) {
			prev = pkts;
			last_move = now_mono_ms();
		}
	}
	measured = (double)(last_move - t0);
	dp_maps_close(&m);

	req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "command", "drill-end");
	cJSON_AddStringToObject(req, "rollout", full);
	cJSON_AddNumberToObject(req, "measured_ms", measured);
	err = api_call(o.run_dir, req, &resp);
	cJSON_Delete(req);
	if (err || !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "ok"))) {
		snprintf(msg, sizeof(msg), "drill %s: measured %.0f ms, but restoring failed: %s",
			 o.name, measured, err ? strerror(-err) : json_str(resp, "error"));
		cJSON_Delete(resp);
		say(o.json, false, msg);
		return EXIT_FAIL;
	}
	if (o.json) {
		cJSON *out = cJSON_CreateObject();

		cJSON_AddBoolToObject(out, "ok", true);
		cJSON_AddStringToObject(out, "rollout", full);
		cJSON_AddNumberToObject(out, "canary_quiet_after_ms", measured);
		cJSON_AddStringToObject(out, "message", json_str(resp, "message"));
		json_print_line(out);
		cJSON_Delete(out);
	} else {
		printf("%s\n", json_str(resp, "message"));
	}
	cJSON_Delete(resp);
	return EXIT_OK;
}
