// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The BPF filesystem: sluice's maps live there so they outlive the agent.
 * Many nodes (and this project's CI machines) boot without it mounted, so
 * the agent mounts it at /sys/fs/bpf when it is absent, as Cilium does.
 */
#include <errno.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <linux/magic.h>

#include "datapath.h"
#include "log.h"

static bool is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

static int mkdir_p(const char *path)
{
	char buf[PATH_MAX];
	size_t len = strlen(path);

	if (len == 0 || len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0700) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

int bpffs_prepare(const char *pin_root)
{
	size_t mlen = strlen(DP_BPFFS_MOUNT);
	int err;

	if (!strncmp(pin_root, DP_BPFFS_MOUNT, mlen) &&
	    (pin_root[mlen] == '/' || pin_root[mlen] == '\0') && !is_bpffs(DP_BPFFS_MOUNT)) {
		err = mkdir_p(DP_BPFFS_MOUNT);
		if (!err && mount("bpf", DP_BPFFS_MOUNT, "bpf", 0, "mode=0700"))
			err = -errno;
		if (err) {
			log_warn("mounting the BPF filesystem at %s: %s\n", DP_BPFFS_MOUNT,
				 strerror(-err));
			return err;
		}
		log_info("mounted the BPF filesystem at %s\n", DP_BPFFS_MOUNT);
	}
	err = mkdir_p(pin_root);
	if (err) {
		log_warn("creating pin root %s: %s\n", pin_root, strerror(-err));
		return err;
	}
	if (!is_bpffs(pin_root)) {
		log_warn("%s is not on a BPF filesystem (mount -t bpf bpf DIR first)\n", pin_root);
		return -EINVAL;
	}
	return 0;
}
