# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""A UDP echo service and its client, for the end-to-end suites.

  udp_echo.py serve NAME PORT
      every datagram back to its sender, prefixed with NAME and a space
      (IPv4 and IPv6 on one socket)

  udp_echo.py client VIP PORT SOCKETS COUNT NOCHECK BASE [SIZE]
      SOCKETS sockets (one flow each, source ports from BASE up) send COUNT
      datagrams each, SIZE bytes long at least (default: as short as the
      text), IPv4 ones without a checksum when NOCHECK is 1, and wait up to
      2 s for each one's echo (after 5 losses, 50 ms); a late echo of an
      earlier datagram still counts for its flow's pods. Prints JSON:
      sent, answered, late, lost, wrong_source (replies not from VIP:PORT),
      pods (answers per pod), flows_on_one_pod.
"""
import json
import socket
import sys
import time

SO_NO_CHECK = 11  # asm-generic/socket.h: send IPv4 UDP without a checksum


def serve(name, port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", port))
    while True:
        data, peer = s.recvfrom(4096)
        s.sendto(name.encode() + b" " + data, peer)


def client(vip, port, sockets, count, nocheck, base, size):
    fam = socket.AF_INET6 if ":" in vip else socket.AF_INET
    r = {"sent": 0, "answered": 0, "late": 0, "wrong_source": 0, "pods": {},
         "flows_on_one_pod": 0, "lost": 0}
    for i in range(sockets):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", base + i))
        if nocheck:
            s.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
        seen = set()
        for j in range(count):
            msg = (b"flow %d datagram %d " % (i, j)).ljust(size, b".")
            s.sendto(msg, (vip, port))
            r["sent"] += 1
            # past a few losses something is broken: fail fast, not 2 s a datagram
            deadline = time.monotonic() + (2.0 if r["lost"] < 5 else 0.05)
            got = False
            while not got and time.monotonic() < deadline:
                s.settimeout(max(deadline - time.monotonic(), 0.001))
                try:
                    data, src = s.recvfrom(4096)
                except socket.timeout:
                    break
                pod, _, echo = data.partition(b" ")
                if (socket.inet_pton(fam, src[0]) != socket.inet_pton(fam, vip)
                        or src[1] != port):
                    r["wrong_source"] += 1
                seen.add(pod.decode())
                if echo == msg:
                    got = True
                    r["answered"] += 1
                    r["pods"][pod.decode()] = r["pods"].get(pod.decode(), 0) + 1
                else:
                    r["late"] += 1
            r["lost"] += not got
        r["flows_on_one_pod"] += len(seen) == 1
        s.close()
    print(json.dumps(r))


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[:1] == ["serve"] and len(a) == 3:
        serve(a[1], int(a[2]))
    elif a[:1] == ["client"] and len(a) in (7, 8):
        client(a[1], int(a[2]), int(a[3]), int(a[4]), a[5] == "1", int(a[6]),
               int(a[7]) if len(a) == 8 else 0)
    else:
        sys.exit(__doc__)
