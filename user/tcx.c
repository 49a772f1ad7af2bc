// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * tcx links: create, pin, adopt, release and query them (see tcx.h).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "log.h"
#include "tcx.h"

int tcx_pin_path(char *buf, size_t len, const char *pin_root, int ifindex, bool egress)
{
	int n = snprintf(buf, len, "%s/tcx_%s_%d", pin_root, egress ? "egress" : "ingress", ifindex);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/*
 * The device a tcx link is on; 0 once the device is gone. Debian 12's
 * struct bpf_link_info has no tcx member: its info starts with the ifindex,
 * as the xdp member's does, at the same place.
 */
static int tcx_link_ifindex(int fd)
{
	struct bpf_link_info info;
	__u32 len = sizeof(info);

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || info.type != TCX_LINK_TYPE)
		return -1;
	return (int)info.xdp.ifindex;
}

int tcx_attach(const char *pin_root, int ifindex, bool egress, int prog_fd, int *link_fd)
{
	LIBBPF_OPTS(bpf_link_create_opts, lo, .flags = TCX_F_BEFORE);
	char path[4096];
	int fd, err;

	*link_fd = -1;
	err = tcx_pin_path(path, sizeof(path), pin_root, ifindex, egress);
	if (err)
		return err;
	fd = bpf_obj_get(path);
	if (fd >= 0) {
		/* ours from before: same device, so swap the program in one step */
		if (tcx_link_ifindex(fd) == ifindex && !bpf_link_update(fd, prog_fd, NULL)) {
			*link_fd = fd;
			return 0;
		}
		/* a link of a device that went, whose index came back on another */
		close(fd);
		unlink(path);
	}
	fd = bpf_link_create(prog_fd, ifindex, egress ? TCX_ATTACH_EGRESS : TCX_ATTACH_INGRESS,
			     &lo);
	if (fd < 0) {
		err = -errno;
		/* before 6.6 the kernel knows no such attach type for TC programs */
		return err == -EINVAL ? -EOPNOTSUPP : err;
	}
	if (bpf_obj_pin(fd, path)) {
		err = -errno;
		log_warn("pinning the tcx link at %s: %s\n", path, strerror(-err));
		close(fd); /* and so detached: a link nothing holds would vanish with the agent */
		return err;
	}
	*link_fd = fd;
	return 0;
}

void tcx_release(const char *pin_root, int ifindex, bool egress, int *link_fd)
{
	char path[4096];

	if (!tcx_pin_path(path, sizeof(path), pin_root, ifindex, egress) && unlink(path) &&
	    errno != ENOENT)
		log_warn("removing %s: %s\n", path, strerror(errno));
	if (*link_fd >= 0)
		close(*link_fd);
	*link_fd = -1;
}

int tcx_query(int ifindex, bool egress, uint32_t *ids, uint32_t *n)
{
	__u32 flags = 0;

	return bpf_prog_query(ifindex, egress ? TCX_ATTACH_EGRESS : TCX_ATTACH_INGRESS, 0, &flags,
			      ids, n) ? -errno : 0;
}

int tcx_sweep(const char *pin_root, bool (*keep)(int ifindex, void *arg), void *arg)
{
	DIR *d = opendir(pin_root);
	struct dirent *de;
	int gone = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char path[4096];
		int fd, ifindex;

		if (strncmp(de->d_name, "tcx_", 4))
			continue;
		snprintf(path, sizeof(path), "%s/%s", pin_root, de->d_name);
		fd = bpf_obj_get(path);
		ifindex = fd >= 0 ? tcx_link_ifindex(fd) : -1;
		if (fd >= 0)
			close(fd);
		if (ifindex > 0 && keep && keep(ifindex, arg))
			continue;
		if (!unlink(path)) {
			gone++;
			log_debug("released %s (%s)\n", path,
				  ifindex > 0 ? "detached" : "its device is gone");
		}
	}
	closedir(d);
	return gone;
}
