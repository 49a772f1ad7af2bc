#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The test run inside the vmtest VM: started by vmtest/init, chrooted into
# the host's root (read-only, fresh tmpfs on /tmp and /run), with the
# project's directory as $1 and the suites as a comma-separated $2. The
# binaries are the ones the host built; nothing is compiled here. Runs each
# suite through tests/run.sh (TAP and a summary line, which run.sh on the host
# turns into a comment) and ends with the marker line vmtest/run.sh waits for. Writes only to /tmp, /run, bpffs and
# the network namespaces the suites make.
set -eu
repo=$1
suites=${2:-}
cd "$repo"

# A hung suite is ended well before run.sh's cap on the whole VM, so the
# suites after it still run. The slowest, the e2e steering suite, takes
# about 70 s under TCG here.
export SUITE_TIMEOUT=420

uptime_s() { cut -d. -f1 /proc/uptime; }

echo "# vmtest: kernel $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) MiB, booted in $(uptime_s) s"
IFS=, read -r -a list <<<"$suites"
rc=0
# One run.sh per suite, so each one's time shows (vmtest/README.md quotes them).
for s in "${list[@]}"; do
	t0=$(uptime_s)
	tests/run.sh "$s" || rc=1
	echo "# vmtest: $s took $(($(uptime_s) - t0)) s"
done
echo "vmtest: done (status $rc)"
