# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
"""A UDP echo service and its client, for the end-to-end suites.

  udp_echo.py serve NAME PORT
      every datagram back to its sender, prefixed with NAME, a tab, the TTL
      or hop limit it arrived with, and a space (IPv4 and IPv6 on one socket)

  udp_echo.py client VIP PORT SOCKETS COUNT NOCHECK BASE [SIZE]
      SOCKETS sockets (one flow each, source ports from BASE up) send COUNT
      datagrams each, SIZE bytes long at least (default: as short as the
      text), IPv4 ones without a checksum when NOCHECK is 1, and wait up to
      2 s for each one's echo (after 5 losses, 50 ms); a late echo of an
      earlier datagram still counts for its flow's pods. Prints JSON:
      sent, answered, late, lost, wrong_source (replies not from VIP:PORT),
      pods (answers per pod), flows_on_one_pod, ttl_there and ttl_back (the
      TTLs or hop limits datagrams reached the pod with, and echoes the
      client with: every value seen).
"""
import json
import socket
import sys
import time

SO_NO_CHECK = 11  # asm-generic/socket.h: send IPv4 UDP without a checksum
# linux/in.h and linux/in6.h, which Python's socket module lacks in part
IP_TTL, IP_RECVTTL = 2, 12
IPV6_RECVHOPLIMIT, IPV6_HOPLIMIT = 51, 52


def want_ttl(s, fam):
    """Ask for each datagram's TTL (IPv4, mapped ones included) and hop limit."""
    s.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, IPV6_RECVHOPLIMIT, 1)


def ttl_of(ancdata):
    for level, kind, value in ancdata:
        if (level, kind) in ((socket.IPPROTO_IP, IP_TTL),
                             (socket.IPPROTO_IPV6, IPV6_HOPLIMIT)):
            return int.from_bytes(value[:4], sys.byteorder)
    return -1


def serve(name, port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    want_ttl(s, socket.AF_INET6)
    s.bind(("::", port))
    while True:
        data, anc, _, peer = s.recvmsg(4096, 256)
        s.sendto(b"%s\t%d %s" % (name.encode(), ttl_of(anc), data), peer)


def client(vip, port, sockets, count, nocheck, base, size):
    fam = socket.AF_INET6 if ":" in vip else socket.AF_INET
    r = {"sent": 0, "answered": 0, "late": 0, "wrong_source": 0, "pods": {},
         "flows_on_one_pod": 0, "lost": 0}
    there, back = set(), set()
    for i in range(sockets):
        s = socket.socket(fam, socket.SOCK_DGRAM)
        s.bind(("::" if fam == socket.AF_INET6 else "0.0.0.0", base + i))
        if nocheck:
            s.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
        want_ttl(s, fam)
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
                    data, anc, _, src = s.recvmsg(4096, 256)
                except socket.timeout:
                    break
                back.add(ttl_of(anc))
                head, _, echo = data.partition(b" ")
                pod, _, ttl = head.partition(b"\t")
                there.add(int(ttl or -1))
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
    r["ttl_there"], r["ttl_back"] = sorted(there), sorted(back)
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
