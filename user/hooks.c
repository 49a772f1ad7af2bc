// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `sluice hooks`: where sluice's programs run, asked of the kernel: each
 * interface's tcx hooks (every program there, in order, so a neighbour's
 * programs show too), sluice's cls_bpf slot and its XDP program. Debian 12's
 * bpftool (7.1) predates tcx and cannot show those attachments.
 */
#include <errno.h>
#include <getopt.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <cjson/cJSON.h>

#include "cli.h"
#include "datapath.h"
#include "json_util.h"
#include "tcx.h"

#define HOOKS_MAX_PROGS 64

struct hook_row {
	const char *iface;
	const char *hook; /* ingress, egress, xdp */
	const char *api; /* tcx, cls_bpf, native, generic */
	char prog[BPF_OBJ_NAME_LEN];
	uint32_t id;
	int position, of; /* within the hook's tcx list; 1 of 1 elsewhere */
};

static void prog_name(uint32_t id, char *name, size_t len)
{
	struct bpf_prog_info info = { 0 };
	__u32 ilen = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id);

	snprintf(name, len, "?");
	if (fd < 0)
		return;
	if (!bpf_obj_get_info_by_fd(fd, &info, &ilen))
		snprintf(name, len, "%s", info.name);
	close(fd);
}

static void emit(cJSON *arr, const struct hook_row *r)
{
	if (arr) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "iface", r->iface);
		cJSON_AddStringToObject(o, "hook", r->hook);
		cJSON_AddStringToObject(o, "api", r->api);
		cJSON_AddStringToObject(o, "program", r->prog);
		cJSON_AddNumberToObject(o, "id", r->id);
		cJSON_AddNumberToObject(o, "position", r->position);
		cJSON_AddNumberToObject(o, "of", r->of);
		cJSON_AddItemToArray(arr, o);
		return;
	}
	printf("%-16s %-8s %-8s %-16s %6u   %d of %d%s\n", r->iface, r->hook, r->api, r->prog,
	       r->id, r->position, r->of, strncmp(r->prog, "sl_", 3) ? "   (not sluice's)" : "");
}

/* One interface's hooks; Return: how many rows were sluice's. */
static int hooks_of(const char *iface, int ifindex, cJSON *arr)
{
	struct hook_row r = { .iface = iface };
	int ours = 0;

	for (int egress = 0; egress < 2; egress++) {
		uint32_t ids[HOOKS_MAX_PROGS], n = HOOKS_MAX_PROGS;
		bool mine = false;

		r.hook = egress ? "egress" : "ingress";
		/* tcx: list the whole hook when one of its programs is ours */
		if (!tcx_query(ifindex, egress, ids, &n)) {
			for (uint32_t i = 0; i < n && i < HOOKS_MAX_PROGS; i++) {
				prog_name(ids[i], r.prog, sizeof(r.prog));
				mine |= !strncmp(r.prog, "sl_", 3);
			}
			for (uint32_t i = 0; mine && i < n && i < HOOKS_MAX_PROGS; i++) {
				prog_name(ids[i], r.prog, sizeof(r.prog));
				r.api = "tcx";
				r.id = ids[i];
				r.position = (int)i + 1;
				r.of = (int)n;
				ours += !strncmp(r.prog, "sl_", 3);
				emit(arr, &r);
			}
		}
		/* cls_bpf: sluice's own slot */
		{
			LIBBPF_OPTS(bpf_tc_hook, h, .ifindex = ifindex,
				    .attach_point = egress ? BPF_TC_EGRESS : BPF_TC_INGRESS);
			LIBBPF_OPTS(bpf_tc_opts, to, .handle = DP_TC_HANDLE,
				    .priority = DP_TC_PRIORITY);

			if (!bpf_tc_query(&h, &to)) {
				prog_name(to.prog_id, r.prog, sizeof(r.prog));
				r.api = "cls_bpf";
				r.id = to.prog_id;
				r.position = r.of = 1;
				ours += !strncmp(r.prog, "sl_", 3);
				emit(arr, &r);
			}
		}
	}
	{
		LIBBPF_OPTS(bpf_xdp_query_opts, xq);

		if (!bpf_xdp_query(ifindex, 0, &xq) && xq.prog_id) {
			r.hook = "xdp";
			r.api = xq.attach_mode == XDP_ATTACHED_DRV	? "native" :
				xq.attach_mode == XDP_ATTACHED_SKB	? "generic" :
				xq.attach_mode == XDP_ATTACHED_HW	? "offload" :
									  "multi";
			r.id = xq.prog_id;
			prog_name(xq.prog_id, r.prog, sizeof(r.prog));
			r.position = r.of = 1;
			if (!strncmp(r.prog, "sl_", 3)) {
				ours++;
				emit(arr, &r);
			}
		}
	}
	return ours;
}

static void hooks_usage(FILE *f)
{
	fprintf(f,
		"Usage: sluice hooks [--json] [IFACE...]\n"
		"\n"
		"Where sluice's programs run on this network namespace's interfaces (all, or\n"
		"those named), as the kernel reports them: tcx hooks with every program in\n"
		"their order, sluice's cls_bpf filter (handle 0x%x, priority %d), and XDP.\n"
		"Exit status 1 when sluice runs on none of them.\n"
		"\n"
		"      --json   one JSON array\n"
		"  -h, --help   this text\n",
		DP_TC_HANDLE, DP_TC_PRIORITY);
}

int do_hooks(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct if_nameindex *all, *it;
	cJSON *arr = NULL;
	bool json = false;
	int c, ours = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		if (c == 'j') {
			json = true;
		} else if (c == 'h') {
			hooks_usage(stdout);
			return EXIT_OK;
		} else {
			hooks_usage(stderr);
			return EXIT_USAGE;
		}
	}
	for (int i = optind; i < argc; i++) {
		if (!if_nametoindex(argv[i])) {
			cli_error(json, "interface %s: %s", argv[i], strerror(errno));
			return EXIT_FAIL;
		}
	}
	all = if_nameindex();
	if (!all) {
		cli_error(json, "listing interfaces: %s", strerror(errno));
		return EXIT_FAIL;
	}
	if (json)
		arr = cJSON_CreateArray();
	else
		printf("%-16s %-8s %-8s %-16s %6s   %s\n", "IFACE", "HOOK", "API", "PROGRAM", "ID",
		       "ORDER");
	for (it = all; it->if_index; it++) {
		bool listed = optind >= argc;

		for (int i = optind; i < argc && !listed; i++)
			listed = !strcmp(argv[i], it->if_name);
		if (listed)
			ours += hooks_of(it->if_name, (int)it->if_index, arr);
	}
	if_freenameindex(all);
	if (json) {
		json_print_line(arr);
		cJSON_Delete(arr);
	}
	return ours ? EXIT_OK : EXIT_FAIL;
}
