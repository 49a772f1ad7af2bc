#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# Replays the fuzzers' seed corpus (and every crash found so far, kept there
# as a regression input) through the sanitizer-built parsers: a crash, leak
# or undefined behaviour fails the suite. `make fuzz` is the long run.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
n=0
fail=0
for t in spec api; do
	n=$((n + 1))
	bin=$root/build/fuzz/fuzz_$t
	if [ ! -x "$bin" ]; then
		echo "ok $n - fuzz_$t corpus replay # SKIP not built (needs clang's libFuzzer runtime)"
		continue
	fi
	count=$(ls "$root/tests/fuzz/corpus/$t" | wc -l)
	if out=$("$bin" -runs=0 "$root/tests/fuzz/corpus/$t" 2>&1); then
		echo "ok $n - fuzz_$t: $count corpus inputs replayed under ASan/UBSan"
	else
		echo "not ok $n - fuzz_$t: an input of tests/fuzz/corpus/$t failed"
		echo "$out" | tail -20 | sed 's/^/# /'
		fail=1
	fi
done
echo "1..$n"
exit $fail
