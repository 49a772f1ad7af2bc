#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# vmtest: the project's BPF fixture suites and a short end-to-end check in a
# QEMU VM booting a Debian kernel package (default: Debian 12's
# linux-image-amd64, 6.1 LTS), with the project built on the host.
#
#   vmtest/run.sh                      KERNEL=linux-image-amd64 by default
#   KERNEL=linux-image-6.1.0-56-amd64 vmtest/run.sh
#   KERNEL=/path/to/linux-image-X.deb vmtest/run.sh
#
# The kernel package is fetched with `apt-get download` and unpacked with
# dpkg-deb into build/vmtest/ (never installed on the host). The VM's root is
# the host's own root, shared read-only over 9p; a small initramfs (static
# busybox, the package's 9p/virtio/veth/TC modules, vmtest/init) mounts it
# and runs vmtest/guest.sh there. The VM has no network device: the suites
# build their own namespaces inside it, as on the host.
#
# Prints TAP: the guest's suites as they run (read from the VM's second
# serial port), then one line for the VM itself. tests/run.sh counts it
# (`make vmtest`). Writes only under build/vmtest/ and a temporary directory.
#
# Environment: KERNEL, VMTEST_SUITES (comma-separated, relative to the
# project; default: every BPF fixture suite, tests/e2e/test_steer.sh,
# test_udp.sh and test_overlay.sh, and vmtest/e2e.sh), VMTEST_TIMEOUT (seconds for the whole VM, default 840),
# VMTEST_MEM (MiB, 2048), VMTEST_SMP (2), VMTEST_ACCEL (kvm|tcg: skip the
# probe), VMTEST_MODULES (kernel modules to load, space-separated), V=1
# (echo the kernel console as it runs).
set -eu

ROOT=$(cd "$(dirname "$0")/.." && pwd)
KERNEL=${KERNEL:-linux-image-amd64}
CACHE=${VMTEST_CACHE:-$ROOT/build/vmtest}
# Default: every BPF fixture suite (tests/bpf/test_*.c, built by the host),
# the e2e steering, UDP and overlay suites, and vmtest's own short rollout.
default_suites() {
	local f
	for f in "$ROOT"/tests/bpf/test_*.c; do
		f=${f##*/}
		printf 'build/tests/%s,' "${f%.c}"
	done
	echo "tests/e2e/test_steer.sh,tests/e2e/test_udp.sh,tests/e2e/test_overlay.sh,vmtest/e2e.sh"
}
SUITES=${VMTEST_SUITES:-$(default_suites)}
# Below tests/run.sh's 900 s per suite, so the VM's own report still comes.
TIMEOUT=${VMTEST_TIMEOUT:-840}
MEM=${VMTEST_MEM:-2048}
SMP=${VMTEST_SMP:-2}
QEMU=${QEMU:-qemu-system-x86_64}
# What the suites need from the kernel that Debian builds as modules; their
# dependencies are resolved from the package's modules.dep.
MODULES=${VMTEST_MODULES:-virtio_pci 9pnet_virtio 9p veth sch_ingress cls_bpf vxlan}

TMP=$(mktemp -d /tmp/sluice-vmtest.XXXXXX)
qemu=
# On every way out (an interrupted run too) the VM goes with the script.
cleanup() {
	[ -z "$qemu" ] || kill "$qemu" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

diag() { echo "# $*"; }
# fail WHAT: the run cannot go on; one failing TAP line says why.
fail() {
	echo "not ok - vmtest: $*"
	exit 1
}

# Like the e2e suites: a machine without the tools skips, with the reason.
skip_all() {
	echo "ok - vmtest # SKIP $*"
	exit 0
}
[ "$(id -u)" -eq 0 ] || skip_all "needs root (apt-get download, the host root shared read-only)"
for t in "$QEMU" apt-get dpkg-deb depmod busybox; do
	command -v "$t" >/dev/null || skip_all "$t is not installed (make deps)"
done
for s in ${SUITES//,/ }; do
	[ -x "$ROOT/$s" ] || fail "$s is missing: build the project first (make vmtest does)"
done

# candidate PKG: the version apt would fetch, after one `apt-get update` if
# the package lists do not know the package yet (a fresh machine).
candidate() {
	local v
	v=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
	if [ -z "$v" ] || [ "$v" = "(none)" ]; then
		apt-get update -qq >/dev/null 2>&1 || true
		v=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2}')
	fi
	[ -n "$v" ] && [ "$v" != "(none)" ] && echo "$v"
}

# deb_for PKG: path of PKG's .deb in the cache, downloaded when missing or
# older than apt's candidate.
deb_for() {
	local pkg=$1 dir=$CACHE/deb/$1 ver have
	ver=$(candidate "$pkg") || return 1
	have=$(find "$dir" -name '*.deb' 2>/dev/null | head -n 1)
	if [ -n "$have" ] && [ "$(dpkg-deb -f "$have" Version)" = "$ver" ]; then
		echo "$have"
		return 0
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	# apt warns that _apt cannot write here and downloads as root: harmless.
	(cd "$dir" && apt-get download "$pkg" >"$TMP/apt.log" 2>&1) || {
		cat "$TMP/apt.log" >&2
		return 1
	}
	find "$dir" -name '*.deb' | head -n 1
}

# The kernel package: a .deb path, or a package name; a metapackage such as
# linux-image-amd64 carries no kernel, so its linux-image-* dependency is
# followed (at most three steps).
if [ -f "$KERNEL" ]; then
	deb=$KERNEL
else
	deb=$(deb_for "$KERNEL") || fail "apt-get download $KERNEL failed"
fi
for _ in 1 2 3; do
	# grep without -q reads to the end: dpkg-deb must not see a broken pipe.
	dpkg-deb -c "$deb" | grep '/boot/vmlinuz-' >/dev/null && break
	dep=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/[(|].*//; s/ //g' |
		grep '^linux-image-' | head -n 1)
	[ -n "$dep" ] || fail "$(basename "$deb") has no kernel and no linux-image-* dependency"
	deb=$(deb_for "$dep") || fail "apt-get download $dep failed"
done

# Unpacked once per package file; depmod writes the modules.dep that the
# package's postinst would have written.
kdir=$CACHE/kernel/$(basename "$deb" .deb)
if [ ! -d "$kdir" ]; then
	rm -rf "$kdir.tmp"
	mkdir -p "$kdir.tmp"
	dpkg-deb -x "$deb" "$kdir.tmp"
	kver=$(basename "$(find "$kdir.tmp/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n 1)")
	depmod -b "$kdir.tmp" "$kver"
	mv "$kdir.tmp" "$kdir"
fi
vmlinuz=$(find "$kdir/boot" -name 'vmlinuz-*' | head -n 1)
[ -n "$vmlinuz" ] || fail "no vmlinuz in $(basename "$deb")"
kver=${vmlinuz##*/vmlinuz-}
mdir=$kdir/lib/modules/$kver
diag "kernel: $(dpkg-deb -f "$deb" Package) $(dpkg-deb -f "$deb" Version) ($kver)"

# The initramfs: busybox, init, the modules in load order (dependencies
# first). Built per run: it takes well under a second.
stage=$TMP/initramfs
mkdir -p "$stage/bin" "$stage/etc" "$stage/lib/modules" "$stage/proc" "$stage/sys" "$stage/dev"
cp "$(command -v busybox)" "$stage/bin/busybox"
cp "$ROOT/vmtest/init" "$stage/init"
chmod 755 "$stage/init"
: >"$stage/etc/modules"
declare -A loaded=()
add_module() { # name (- and _ are the same to the kernel)
	local name=${1//-/_} line path dep
	[ -z "${loaded[$name]:-}" ] || return 0
	loaded[$name]=1
	line=$(sed 's/-/_/g' "$mdir/modules.dep" | grep -n -E "(^|/)$name\.ko(\.[a-z]+)?:" |
		head -n 1 | cut -d: -f1)
	if [ -z "$line" ]; then
		grep -q -E "/${1}\.ko" "$mdir/modules.builtin" ||
			diag "module $1 is neither in modules.dep nor built in; the VM may lack it"
		return 0
	fi
	line=$(sed -n "${line}p" "$mdir/modules.dep")
	path=${line%%:*}
	for dep in ${line#*:}; do
		dep=${dep##*/}
		add_module "${dep%%.ko*}"
	done
	case $path in
	*.ko) cp "$mdir/$path" "$stage/lib/modules/$name.ko" ;;
	*.ko.xz) xz -dc "$mdir/$path" >"$stage/lib/modules/$name.ko" ;;
	*.ko.zst) zstd -qdc "$mdir/$path" >"$stage/lib/modules/$name.ko" ;;
	*.ko.gz) gzip -dc "$mdir/$path" >"$stage/lib/modules/$name.ko" ;;
	esac
	echo "$name" >>"$stage/etc/modules"
}
for m in $MODULES; do
	add_module "$m"
done
(cd "$stage" && find . | busybox cpio -o -H newc 2>/dev/null) >"$TMP/initramfs.cpio"

# KVM only when it really runs a vCPU: on this kind of machine /dev/kvm is
# there but nested KVM aborts on its first MSR write, at once. A probe that
# is still running after two seconds has a working vCPU.
accel=${VMTEST_ACCEL:-}
if [ -z "$accel" ]; then
	accel=tcg
	if [ -w /dev/kvm ]; then
		rc=0
		# In a subshell: its abort is reported there, into the log.
		(timeout 2 "$QEMU" -accel kvm -cpu host -m 64 -nodefaults -display none \
			-no-reboot </dev/null; exit $?) >"$TMP/kvm-probe.log" 2>&1 || rc=$?
		if [ "$rc" -eq 124 ]; then
			accel=kvm
		else
			diag "KVM probe failed ($(grep -m1 -i error "$TMP/kvm-probe.log" || echo "status $rc")): using TCG"
		fi
	fi
fi
# shellcheck disable=SC2054 # the comma belongs to QEMU's option
case $accel in
kvm) accel_args=(-accel kvm -cpu host) ;;
*) accel_args=(-accel tcg,thread=multi -cpu max) ;;
esac
diag "accelerator: $accel, $SMP CPUs, $MEM MiB"

console=$TMP/console.log
results=$TMP/results.log
: >"$results"
start=$(date +%s)
# ttyS0: kernel console; ttyS1: the guest's TAP. No network device at all.
timeout --kill-after=10 "$TIMEOUT" "$QEMU" "${accel_args[@]}" -smp "$SMP" -m "$MEM" \
	-nodefaults -display none -no-reboot -nic none \
	-kernel "$vmlinuz" -initrd "$TMP/initramfs.cpio" \
	-append "console=ttyS0 panic=-1 oops=panic loglevel=4 rdinit=/init sluice.repo=$ROOT sluice.suites=$SUITES" \
	-serial "file:$console" -serial "file:$results" \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	</dev/null >"$TMP/qemu.log" 2>&1 &
qemu=$!
if [ "${V:-}" = 1 ]; then
	tail -n +1 -f --pid="$qemu" "$console" 2>/dev/null | sed 's/^/# console: /' &
fi
# The guest's lines as they come; each run.sh summary there becomes a comment, so
# the only closing line is the one tests/run.sh prints over all of this.
# sed -u, not tr: nothing may sit in a pipe buffer while the VM runs.
tail -n +1 -f --pid="$qemu" "$results" |
	sed -u -E 's/\r$//; s/^([0-9]+ passed, [0-9]+ failed.*)$/# in the VM: \1/'
rc=0
wait "$qemu" || rc=$?
took=$(($(date +%s) - start))

if grep -q '^vmtest: done' "$results"; then
	echo "ok - vmtest: the VM ($kver, $accel) ran every suite to the end in $took s"
	exit 0
fi
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
	why="timed out after $TIMEOUT s"
else
	why="stopped early (qemu status $rc)"
fi
echo "not ok - vmtest: the VM ($kver, $accel) $why; last console lines:"
tail -n 30 "$console" | tr -d '\r' | sed 's/^/#   /'
sed 's/^/#   qemu: /' "$TMP/qemu.log"
exit 1
