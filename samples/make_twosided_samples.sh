#!/bin/sh
# Stages one TCP client/server exchange captured at BOTH ends, through a router that can inject a
# reset, on private network namespaces (veth pairs; no traffic leaves them). Needs root, iproute2,
# nftables, tcpdump, editcap (wireshark-common) and python3 (stdlib only).
#   sh samples/make_twosided_samples.sh       # writes samples/twosided/twosided_*_{client,server}.pcap
# Topology: client ns 10.215.1.2 — router ns 10.215.1.1 | 10.215.2.1 — server ns 10.215.2.2.
# The server ns uses an initial TTL of 128 (a Windows server); client and router Linux's 64.
# Scenarios (see docs/twosided.md):
#   healthy   five requests, idle 2.5 s, two more, close (FIN both ways); a second connection.
#   injected  the same, but during the idle period the router's firewall starts answering the flow
#             with `reject with tcp reset` (its session expired): the client's next request is
#             answered by a RST "from the server" that the server never sent, and never reaches
#             the server. The client reconnects on a new port (that flow passes) and finishes.
#   nat       as injected, with the router masquerading the client (the server sees 10.215.2.1).
# Each server capture's clock is shifted by +3.217 s with `editcap -t` (a second host's clock that
# is off): ipcscope must recover that offset from the matched packets.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
outdir=${1:-$here/twosided}
mkdir -p "$outdir"
shift_s=3.217
work=$(mktemp -d /tmp/ipcscope-twosided.XXXXXX)
tag=$$
C=ts15c$tag R=ts15r$tag S=ts15s$tag

cat >"$work/peer.py" <<'PY'
import socket, sys, time
role = sys.argv[1]
if role == "server":
    ls = socket.socket(); ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("10.215.2.2", 9000)); ls.listen(8)
    open(sys.argv[2], "w").write("ready\n")
    ls.settimeout(20)
    for _ in range(2):
        try:
            s, _ = ls.accept()
        except socket.timeout:
            break
        s.settimeout(8)
        try:
            while True:
                d = s.recv(4096)
                if not d:
                    break
                s.sendall(b"reply:" + d)
        except OSError:
            pass
        s.close()
    sys.exit(0)
# client: port, then idle-marker file (written when idle starts), then wait-file (router is set)
def session(port, idle_mark, go_file):
    s = socket.socket()
    s.bind(("10.215.1.2", port))
    s.connect(("10.215.2.2", 9000))
    try:
        for i in range(5):
            s.sendall(b"request %d\n" % i); s.recv(4096); time.sleep(0.2)
        if idle_mark:
            open(idle_mark, "w").write("idle\n")
        time.sleep(2.5)
        for i in range(5, 7):
            s.sendall(b"request %d\n" % i); s.recv(4096); time.sleep(0.2)
        s.shutdown(socket.SHUT_WR)
        while s.recv(4096):
            pass
        print("session on port %d closed normally" % port)
    except OSError as e:
        print("session on port %d failed: %s" % (port, e))
    s.close()
session(50001, sys.argv[2], None)
time.sleep(0.5)
session(50002, None, None)
PY

cleanup() {
    for p in "$work"/*.tcpdump.pid; do [ -f "$p" ] && kill "$(cat "$p")" 2>/dev/null || true; done
    sleep 0.5
    for n in $C $R $S; do
        ip netns pids "$n" 2>/dev/null | while read -r p; do kill "$p" 2>/dev/null || true; done
        ip netns del "$n" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

stage() {
    name=$1
    for n in $C $R $S; do ip netns add $n; ip netns exec $n ip link set lo up; done
    ip link add ts15c0 netns $C type veth peer name ts15r0 netns $R
    ip link add ts15r1 netns $R type veth peer name ts15s0 netns $S
    ip -n $C addr add 10.215.1.2/24 dev ts15c0; ip -n $C link set ts15c0 up
    ip -n $R addr add 10.215.1.1/24 dev ts15r0; ip -n $R link set ts15r0 up
    ip -n $R addr add 10.215.2.1/24 dev ts15r1; ip -n $R link set ts15r1 up
    ip -n $S addr add 10.215.2.2/24 dev ts15s0; ip -n $S link set ts15s0 up
    ip -n $C route add default via 10.215.1.1
    ip -n $S route add default via 10.215.2.1
    ip netns exec $R sysctl -qw net.ipv4.ip_forward=1
    ip netns exec $S sysctl -qw net.ipv4.ip_default_ttl=128
    # Offloads off: the captures show the segments as sent (no GSO super-frames).
    for d in "$C ts15c0" "$R ts15r0" "$R ts15r1" "$S ts15s0"; do
        set -- $d
        ip netns exec "$1" ethtool -K "$2" tso off gso off gro off tx off >/dev/null 2>&1 || true
    done
    ip netns exec $R nft -f - <<NFT
table ip lab {
    chain filt { type filter hook forward priority 0; policy accept; }
    chain natpost { type nat hook postrouting priority 100; policy accept; }
}
NFT
    if [ "$name" = nat ]; then
        ip netns exec $R nft add rule ip lab natpost oifname ts15r1 masquerade
    fi
    ip netns exec $C tcpdump -i ts15c0 -w "$work/client.pcap" -U --immediate-mode -n -s 262144 tcp \
        2>/dev/null & echo $! >"$work/c.tcpdump.pid"
    ip netns exec $S tcpdump -i ts15s0 -w "$work/server.pcap" -U --immediate-mode -n -s 262144 tcp \
        2>/dev/null & echo $! >"$work/s.tcpdump.pid"
    sleep 1
    rm -f "$work/ready" "$work/idle"
    ip netns exec $S python3 "$work/peer.py" server "$work/ready" & spid=$!
    while [ ! -f "$work/ready" ]; do sleep 0.1; done
    ip netns exec $C python3 "$work/peer.py" client "$work/idle" & cpid=$!
    if [ "$name" != healthy ]; then
        while [ ! -f "$work/idle" ]; do sleep 0.05; done
        sleep 0.5
        # The firewall's session for the first flow expired: its next packet is answered by RST.
        ip netns exec $R nft add rule ip lab filt ip saddr 10.215.1.2 tcp sport 50001 tcp dport 9000 \
            reject with tcp reset
    fi
    wait $cpid
    wait $spid || true
    sleep 1
    kill "$(cat "$work/c.tcpdump.pid")" "$(cat "$work/s.tcpdump.pid")"
    sleep 1
    rm -f "$work"/*.tcpdump.pid
    cp "$work/client.pcap" "$outdir/twosided_${name}_client.pcap"
    editcap -t $shift_s "$work/server.pcap" "$outdir/twosided_${name}_server.pcap"
    for n in $C $R $S; do ip netns del $n; done
    echo "wrote $outdir/twosided_${name}_client.pcap and _server.pcap (server clock +$shift_s s)"
}

stage healthy
stage injected
stage nat
