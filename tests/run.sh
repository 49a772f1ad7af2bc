#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Runs test suites and sums their TAP into one closing line:
#   N passed, N failed, N skipped
# Each argument is a suite: an executable (C test program or shell script)
# that prints TAP ("ok N - ...", "not ok N - ...", "... # SKIP reason").
# A suite that exits non-zero without a failing line, or prints no result at
# all, counts as one failure, so a crash can never pass for success.
set -u
passed=0 failed=0 skipped=0
SUITE_TIMEOUT=${SUITE_TIMEOUT:-900}

for suite in "$@"; do
	echo "=== $suite"
	out=$(mktemp)
	timeout --kill-after=10 "$SUITE_TIMEOUT" "$suite" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	# a skip is a skip whether the runner says "ok" or (cmocka 1.1) "not ok" before it
	p=$(grep -E '^ok ' "$out" | grep -vc '# SKIP')
	s=$(grep -E '^(not )?ok ' "$out" | grep -c '# SKIP')
	f=$(grep -E '^not ok ' "$out" | grep -vc '# SKIP')
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $suite exited with status $rc"
		f=1
	elif [ $((p + s + f)) -eq 0 ]; then
		echo "not ok - $suite reported no results"
		f=1
	fi
	passed=$((passed + p)) skipped=$((skipped + s)) failed=$((failed + f))
	rm -f "$out"
done

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
