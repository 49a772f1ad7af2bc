// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Loads every Canary of a spec file or directory and checks what no single
 * document can: two rollouts steering the same VIP, port and protocol, or
 * two with the same namespace/name.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <arpa/inet.h>

#include "spec_set.h"

static bool spec_file_name(const char *name)
{
	size_t n = strlen(name);

	if (name[0] == '.')
		return false; /* editors' swap files, ConfigMap's ..data links */
	return (n > 5 && !strcmp(name + n - 5, ".json")) ||
	       (n > 5 && !strcmp(name + n - 5, ".yaml")) || (n > 4 && !strcmp(name + n - 4, ".yml"));
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int load_one(const char *file, struct spec_set *set)
{
	struct spec_errors errs = { 0 };
	struct spec_canary *c;

	if (set->n >= SPEC_SET_MAX) {
		fprintf(stderr, "%s: more than %d rollouts (the node's service limit)\n", file,
			SPEC_SET_MAX);
		return -E2BIG;
	}
	c = &set->items[set->n];
	if (spec_parse_file(file, c, &errs)) {
		spec_print_errors(stderr, file, &errs);
		return -EINVAL;
	}
	set->n++;
	return 0;
}

static bool same_vip(const struct spec_canary *a, const struct spec_canary *b)
{
	return a->vip.family == b->vip.family && a->port == b->port && a->proto == b->proto &&
	       !memcmp(&a->vip.addr, &b->vip.addr, sizeof(a->vip.addr));
}

static int check_conflicts(const char *path, const struct spec_set *set)
{
	int err = 0;

	for (int i = 0; i < set->n; i++) {
		for (int j = 0; j < i; j++) {
			const struct spec_canary *a = &set->items[j], *b = &set->items[i];
			char vip[INET6_ADDRSTRLEN];

			if (same_vip(a, b)) {
				inet_ntop(a->vip.family, &a->vip.addr, vip, sizeof(vip));
				fprintf(stderr,
					"%s: spec.steering.vip: %s/%s and %s/%s both steer %s port %u\n",
					path, a->namespace, a->name, b->namespace, b->name, vip,
					a->port);
				err = -EINVAL;
			}
			if (!strcmp(a->name, b->name) && !strcmp(a->namespace, b->namespace)) {
				fprintf(stderr, "%s: metadata.name: %s/%s appears twice\n", path,
					a->namespace, a->name);
				err = -EINVAL;
			}
		}
	}
	return err;
}

int spec_set_load(const char *path, struct spec_set *set)
{
	struct dirent **names = NULL;
	struct stat st;
	int n, err = 0;

	memset(set, 0, sizeof(*set));
	if (stat(path, &st)) {
		err = -errno;
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return err;
	}
	set->items = calloc(S_ISDIR(st.st_mode) ? SPEC_SET_MAX : 1, sizeof(*set->items));
	if (!set->items)
		return -ENOMEM;
	if (!S_ISDIR(st.st_mode)) {
		err = load_one(path, set);
		goto out;
	}

	n = scandir(path, &names, NULL, by_name);
	if (n < 0) {
		err = -errno;
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		goto out;
	}
	for (int i = 0; i < n; i++) {
		char file[PATH_MAX];
		int e;

		if (spec_file_name(names[i]->d_name) &&
		    snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name) < (int)sizeof(file)) {
			e = load_one(file, set);
			if (e && !err)
				err = e;
		}
		free(names[i]);
	}
	free(names);
	/*
	 * An empty directory is a node with no rollout yet (an empty ConfigMap):
	 * not an error. The agent runs and picks specs up as they arrive.
	 */
out:
	if (!err)
		err = check_conflicts(path, set);
	if (err)
		spec_set_free(set);
	return err;
}

void spec_set_free(struct spec_set *set)
{
	free(set->items);
	set->items = NULL;
	set->n = 0;
}
