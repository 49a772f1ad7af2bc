#!/usr/bin/env bash
# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# BIG TCP through a VIP: with an interface's GSO limit raised past 64 KiB
# (as Cilium does on fast NICs), the stack builds TCP aggregates whose IP
# length field cannot hold their length and reads 0 (IPv4 tot_len, IPv6
# payload_len); the kernel takes the skb's length for them. The client's
# and the pod's links send such aggregates; an upload and a download through
# each VIP must arrive whole, with none of their packets passed
# untranslated as malformed (the datapath once did that with every such
# aggregate: 256 in an IPv6 upload here, and an IPv4 download stalled). Over
# IPv4 the counters also show aggregates over 64 KiB went through (bytes per
# packet); IPv6 senders here build fewer of them, mostly at 64 KiB, so their
# average proves nothing. IPv4 BIG TCP needs Linux 6.3 and a netlink
# attribute iproute2 6.1 cannot set: a few lines of Python set it. Prints TAP.
set -u
CLUSTER_PODS="p1:1"
. "$(dirname "$0")/lib.sh"
need_root_tools "BIG TCP through a VIP"
need_tools "BIG TCP through a VIP" jq python3
trap cluster_down EXIT
cluster_up

BIG=196608 # 192 KiB aggregates
# gso_ipv4 NS DEV SIZE: IFLA_GSO_IPV4_MAX_SIZE (63, Linux 6.3) over rtnetlink
cat >"$WORK/gso_ipv4.py" <<'PY'
import socket, struct, sys
dev, size = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
body = struct.pack("=BxHiII", socket.AF_UNSPEC, 0, socket.if_nametoindex(dev), 0, 0)
body += struct.pack("=HHI", 8, 63, size)  # IFLA_GSO_IPV4_MAX_SIZE
s.send(struct.pack("=IHHII", 16 + len(body), 16, 0x1 | 0x4, 1, 0) + body)  # RTM_NEWLINK, REQUEST|ACK
err = struct.unpack_from("=i", s.recv(4096), 16)[0]
sys.exit(0 if err == 0 else 1)
PY
gso_ipv4() { in_ns "$1" python3 "$WORK/gso_ipv4.py" "$2" "$3" 2>/dev/null; }

# The client's and the pod's links (both ends) may send and take aggregates of $BIG.
r=0
for h in client p1; do
	link=$h; [ $h = client ] && link=cli0
	ip -n "$(ns "$h")" link set dev eth0 gso_max_size $BIG gro_max_size $BIG &&
		ip -n "$(ns node)" link set dev "$link" gso_max_size $BIG gro_max_size $BIG || r=1
done
ok $r "GSO and GRO limits of $BIG on the client's and the pod's links (IPv6 BIG TCP)"
# Older kernels ignore the attribute they do not know and answer 0: ask uname.
kv=$(uname -r) v4=1
maj=${kv%%.*} min=${kv#*.}
min=${min%%.*}
[ "$maj" -gt 6 ] || { [ "$maj" -eq 6 ] && [ "$min" -ge 3 ]; } || v4=0
for h in client p1; do gso_ipv4 "$h" eth0 $BIG || v4=0; done
gso_ipv4 node cli0 $BIG && gso_ipv4 node p1 $BIG || v4=0

# Bulk transfers written in one call each, so that TCP builds the largest
# aggregates it may: a sink that answers with the byte count it read, and a
# source that sends the whole blob on every connection.
cat >"$WORK/bulk.py" <<'PY'
import hashlib, socket, sys
mode, blob = sys.argv[1], open(sys.argv[2], "rb").read()
if mode in ("sink", "source"):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", int(sys.argv[3])))
    s.listen(8)
    while True:
        c, _ = s.accept()
        if mode == "source":
            c.sendall(blob)
        else:
            n = 0
            while True:
                d = c.recv(1 << 20)
                if not d:
                    break
                n += len(d)
            c.sendall(b"%d" % n)
        c.close()
addr, port = sys.argv[3], int(sys.argv[4])
c = socket.create_connection((addr, port), timeout=30)
if mode == "up":
    c.sendall(blob)
    c.shutdown(socket.SHUT_WR)
    print(c.recv(64).decode() == str(len(blob)) and "whole" or "short")
else:
    h, n = hashlib.sha256(), 0
    while True:
        d = c.recv(1 << 20)
        if not d:
            break
        h.update(d)
        n += len(d)
    print(h.digest() == hashlib.sha256(blob).digest() and "whole" or "different (%d bytes)" % n)
PY
head -c $((24 << 20)) /dev/urandom >"$WORK/blob"
for m in sink:9000 source:9001; do
	(exec ip netns exec "$(ns p1)" python3 "$WORK/bulk.py" ${m%%:*} "$WORK/blob" ${m##*:} \
		>"$WORK/bulk-${m%%:*}.log" 2>&1) &
	CLUSTER_PIDS+=($!)
done
sleep 0.5
bulk() { in_ns client timeout 40 python3 "$WORK/bulk.py" "$1" "$WORK/blob" "$2" "$3" 2>&1; }
[ "$(bulk up 198.18.1.2 9000)" = whole ] && [ "$(bulk down 198.18.1.2 9001)" = whole ]
ok $? "24 MiB up to and down from the pod directly"

# everything to the pod (weight 0; the canary is an address nothing answers on)
canary_spec up 80 9000 tcp 0 $VIP4 198.18.1.2 198.18.1.9
canary_spec down 81 9001 tcp 0 $VIP4 198.18.1.2 198.18.1.9
canary_spec up6 80 9000 tcp 0 "\"$VIP6\"" '"fd00:5c:1::2"' '"fd00:5c:1::9"'
canary_spec down6 81 9001 tcp 0 "\"$VIP6\"" '"fd00:5c:1::2"' '"fd00:5c:1::9"'
start_agent "$WORK/spec"
ok $? "agent steers uploads and downloads on both VIPs"

# counter NAME FIELD: the primary backend's counter of rollout NAME
counter() { sl status "$1" --json | jq ".services[0].primary.backends[0].$2"; }
malformed() { sl status --json | jq .datapath.malformed_passed; }

for fam in 6 4; do
	if [ $fam = 4 ] && [ $v4 = 0 ]; then
		skip "BIG TCP over IPv4" "this kernel takes no IFLA_GSO_IPV4_MAX_SIZE (Linux 6.3)"
		skip "BIG TCP over IPv4, download" "as above"
		continue
	fi
	vip=$VIP4 sfx="" min=65536; [ $fam = 6 ] && vip=$VIP6 sfx=6 min=1
	m0=$(malformed)
	got=$(bulk up $vip 80)
	p=$(counter up$sfx packets_to_backend) b=$(counter up$sfx bytes_to_backend)
	[ "$got" = whole ] && [ "$p" -gt 0 ] && [ $((b / p)) -ge $min ] && [ "$(malformed)" = "$m0" ]
	ok $? "BIG TCP over IPv$fam, upload: 24 MiB arrived $got; $((b / ${p:-1})) bytes a packet to the backend, malformed passed $m0 -> $(malformed)"
	got=$(bulk down $vip 81)
	p=$(counter down$sfx packets_from_backend) b=$(counter down$sfx bytes_from_backend)
	[ "$got" = whole ] && [ "$p" -gt 0 ] && [ $((b / p)) -ge $min ] && [ "$(malformed)" = "$m0" ]
	ok $? "BIG TCP over IPv$fam, download: 24 MiB arrived $got; $((b / ${p:-1})) bytes a packet from the backend, malformed passed $m0 -> $(malformed)"
done
tap_done
