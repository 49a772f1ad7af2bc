#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# The test run inside the vmtest VM: started by vmtest/init, chrooted into
# the host's root (read-only, fresh tmpfs on /tmp and /run), with the
# project's directory as $1 and the suites as a comma-separated $2. The
# binaries are the ones the host built; nothing is compiled here. Runs the
# suites through tests/run.sh (TAP and its summary line) and ends with the
# marker line vmtest/run.sh waits for. Writes only to /tmp, /run, bpffs and
# the network namespaces the suites make.
set -eu
repo=$1
suites=${2:-}
cd "$repo"

# Suites inherit the host's 15-minute cap per suite; under TCG the e2e check
# is the slow one and stays far below it.
export SUITE_TIMEOUT=${SUITE_TIMEOUT:-900}

echo "# vmtest: kernel $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) MiB"
IFS=, read -r -a list <<<"$suites"
rc=0
tests/run.sh "${list[@]}" || rc=$?
echo "vmtest: done (status $rc)"
