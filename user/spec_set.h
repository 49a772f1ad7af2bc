/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A set of Canary specs from a file or a directory: what `sluice agent
 * --spec` takes. The set is all-or-nothing: if any document is bad, or two
 * claim the same VIP, the whole set is refused with every error listed, so
 * a half-applied directory never reaches the datapath.
 */
#ifndef SLUICE_SPEC_SET_H
#define SLUICE_SPEC_SET_H

#include "spec.h"

#define SPEC_SET_MAX SL_MAX_SERVICES

struct spec_set {
	int n;
	struct spec_canary *items; /* malloc'd, n entries */
};

/**
 * spec_set_load() - parse @path (a file, or every *.json, *.yaml and *.yml
 * directly in a directory, in name order).
 * Errors are printed to stderr as "FILE: PATH: REASON".
 * Return: 0, or -EINVAL (bad documents), -ENOENT, -E2BIG, ...
 */
int spec_set_load(const char *path, struct spec_set *set);
void spec_set_free(struct spec_set *set);

#endif /* SLUICE_SPEC_SET_H */
