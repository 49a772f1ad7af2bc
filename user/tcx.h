/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * TC attachment through tcx links (Linux 6.6+): the programs run straight
 * from the device's ingress and egress hooks, without the clsact qdisc and
 * the classifier walk of cls_bpf around them. A link lives as long as
 * something holds it, so each is pinned under the pin root: the datapath
 * outlives the agent, and the next agent adopts the link and swaps its
 * program atomically.
 */
#ifndef SLUICE_USER_TCX_H
#define SLUICE_USER_TCX_H

#include <stdbool.h>
#include <stdint.h>

/*
 * From the 6.6 UAPI: Debian 12's kernel headers predate tcx, and libbpf
 * 1.1 passes unknown attach types through bpf_link_create() unchanged.
 */
#define TCX_ATTACH_INGRESS 46 /* BPF_TCX_INGRESS */
#define TCX_ATTACH_EGRESS 47 /* BPF_TCX_EGRESS */
#define TCX_LINK_TYPE 11 /* BPF_LINK_TYPE_TCX */
#define TCX_F_BEFORE (1U << 3) /* BPF_F_BEFORE: with no relative program, first */

/* The pin of @ifindex's ingress or egress link: "<pin_root>/tcx_ingress_<ifindex>". */
int tcx_pin_path(char *buf, size_t len, const char *pin_root, int ifindex, bool egress);

/**
 * tcx_attach() - run @prog_fd at @ifindex's ingress or egress through a tcx
 * link: the pinned one when it is there and still on that device (its
 * program replaced in one step), else a new one, first in the device's tcx
 * list, pinned. @link_fd: the link, for the caller to close when done.
 * Return: 0, -EOPNOTSUPP when the kernel has no tcx (before 6.6), or -errno.
 */
int tcx_attach(const char *pin_root, int ifindex, bool egress, int prog_fd, int *link_fd);

/** tcx_release() - unpin and close: the link, and so the attachment, goes. */
void tcx_release(const char *pin_root, int ifindex, bool egress, int *link_fd);

/**
 * tcx_query() - the programs the kernel runs at @ifindex's tcx hook, in
 * order: up to *@n ids into @ids, *@n set to how many. Return: 0 or -errno
 * (-EINVAL before 6.6).
 */
int tcx_query(int ifindex, bool egress, uint32_t *ids, uint32_t *n);

/**
 * tcx_sweep() - release tcx pins under @pin_root: those whose device is gone
 * (the kernel detached their links already) and those of the interfaces
 * @keep() refuses; with @keep NULL, every one. Return: how many went.
 */
int tcx_sweep(const char *pin_root, bool (*keep)(int ifindex, void *arg), void *arg);

#endif /* SLUICE_USER_TCX_H */
