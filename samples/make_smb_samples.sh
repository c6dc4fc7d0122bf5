#!/bin/sh
# Stages real SMB2 named-pipe opens against Samba on a private loopback (a network namespace of
# its own: no traffic leaves it) and captures them with tcpdump: samples/smb_samba_pipes.pcap.
# Needs root and the Debian packages samba, smbclient, tcpdump, iproute2, tshark.
#   sh samples/make_smb_samples.sh     # writes samples/smb_samba_pipes.pcap and its answer key
#   sh samples/make_smb_samples.sh --key samples/smb_pipes_busy_storm.pcap   # an answer key only
# The answer key samples/smb_samba_pipes.tshark.tsv is TShark's reading of the same capture (an
# independent decoder): every CREATE / NT Create AndX request on IPC$ with its final response
# (TShark's response_to, STATUS_PENDING interim replies skipped) and NT status.
# What is staged (docs/smb.md):
#   rpcclient srvinfo (\srvsvc) and lsaquery (\lsarpc), each its own connection;
#   smbclient over SMB1 opening \srvsvc (NT Create AndX; the tree is disconnected without a CLOSE);
#   25 more srvinfo runs back to back (a client opening the pipe per call);
#   smbclient opening a pipe that does not exist (STATUS_OBJECT_NAME_NOT_FOUND), 30 times in ~3 s;
#   one encrypted SMB3 session (smbclient --client-protection=encrypt): counted, unreadable.
set -eu
# TShark's answer key of a capture: FILE.pcap -> FILE.tshark.tsv (uses $work for scratch files).
write_key() {
    out=$1
    key=${out%.pcap}.tshark.tsv
    {
        printf 'op\treq_frame\tresp_frame\tpipe_name\tnt_status\n'
        # requests on IPC$ trees
        tshark -n -r "$out" -Y 'smb2.cmd==5 && smb2.flags.response==0 && smb2.tree contains "IPC$"' \
            -T fields -E separator=/t -e frame.number -e smb2.filename 2>/dev/null | sed 's/^/SMB2_CREATE\t/' >"$work/req"
        tshark -n -r "$out" -Y 'smb.cmd==0xa2 && smb.flags.response==0 && smb.path contains "IPC$"' \
            -T fields -E separator=/t -e frame.number -e smb.file 2>/dev/null | sed 's/^/SMB1_NT_CREATE_ANDX\t/' >>"$work/req"
        # final responses: request frame, response frame, status
        tshark -n -r "$out" -Y 'smb2.cmd==5 && smb2.flags.response==1 && smb2.nt_status!=0x103' \
            -T fields -E separator=/t -e smb2.response_to -e frame.number -e smb2.nt_status 2>/dev/null >"$work/resp"
        tshark -n -r "$out" -Y 'smb.cmd==0xa2 && smb.flags.response==1' \
            -T fields -E separator=/t -e smb.response_to -e frame.number -e smb.nt_status 2>/dev/null >>"$work/resp"
        awk -F'\t' -v OFS='\t' 'NR==FNR { resp[$1] = $2; st[$1] = $3; next }
            { print $1, $2, resp[$2], $3, st[$2] }' "$work/resp" "$work/req" | sort -t"$(printf '\t')" -k2,2n
    } >"$key"
}
# `sh samples/make_smb_samples.sh --key FILE.pcap`: only the answer key of an existing capture
# (used for smb_pipes_busy_storm.pcap, which `cargo run --example make_smb_storm_sample` writes).
if [ "${1:-}" = "--key" ]; then
    work=$(mktemp -d /tmp/ipcscope-smb.XXXXXX)
    write_key "$2"
    rm -rf "$work"
    echo "wrote $key ($(($(wc -l <"$key") - 1)) pipe opens)"
    exit 0
fi
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/smb_samba_pipes.pcap}
ns=ipcscope-smb-$$
work=$(mktemp -d /tmp/ipcscope-smb.XXXXXX)
cleanup() {
    [ -f "$work/tcpdump.pid" ] && kill "$(cat "$work/tcpdump.pid")" 2>/dev/null || true
    [ -f "$work/pid/smbd.pid" ] && kill "$(cat "$work/pid/smbd.pid")" 2>/dev/null || true
    sleep 1
    ip netns pids "$ns" 2>/dev/null | while read -r p; do kill "$p" 2>/dev/null || true; done
    ip netns del "$ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
mkdir -p "$work/private" "$work/lock" "$work/state" "$work/cache" "$work/pid" "$work/ncalrpc" "$work/share"
cat >"$work/smb.conf" <<CONF
[global]
    workgroup = IPCSCOPE
    netbios name = SMBLAB
    server role = standalone server
    interfaces = 127.0.0.1
    bind interfaces only = yes
    smb ports = 445
    disable netbios = yes
    server min protocol = NT1
    passdb backend = tdbsam:$work/private/passdb.tdb
    private dir = $work/private
    lock directory = $work/lock
    state directory = $work/state
    cache directory = $work/cache
    pid directory = $work/pid
    ncalrpc dir = $work/ncalrpc
    log file = $work/log.%m
    load printers = no
    printing = bsd
    printcap name = /dev/null
[share]
    path = $work/share
    read only = yes
CONF
ip netns add "$ns"
ip netns exec "$ns" ip link set lo up
run() { ip netns exec "$ns" "$@"; }
printf 'labpass\nlabpass\n' | run smbpasswd -c "$work/smb.conf" -s -a root >/dev/null
run smbd -D -s "$work/smb.conf"
for _ in 1 2 3 4 5 6 7 8 9 10; do
    run sh -c 'exec 3<>/dev/tcp/127.0.0.1/445' 2>/dev/null && break
    run bash -c 'exec 3<>/dev/tcp/127.0.0.1/445' 2>/dev/null && break
    sleep 1
done
run tcpdump -i lo -s 0 -U -w "$work/cap.pcap" 'tcp port 445' 2>/dev/null &
echo $! >"$work/tcpdump.pid"
sleep 2
auth="-U root%labpass"
run rpcclient $auth -c srvinfo 127.0.0.1 >/dev/null
run rpcclient $auth -c lsaquery 127.0.0.1 >/dev/null
# SMB1 (NT Create AndX on IPC$)
# (rpcclient ignores the protocol options and stays on SMB2; smbclient's open does SMB1.)
run smbclient $auth --option='clientminprotocol=NT1' -m NT1 //127.0.0.1/IPC\$ -c 'open srvsvc' >/dev/null
# A client that opens \\srvsvc anew for every call: 25 connections in a few seconds
i=0
while [ $i -lt 25 ]; do
    run rpcclient $auth -c srvinfo 127.0.0.1 >/dev/null
    i=$((i + 1))
done
i=0
while [ $i -lt 30 ]; do
    run smbclient $auth //127.0.0.1/IPC\$ -c 'open nosuchpipe' >/dev/null 2>&1 || true
    i=$((i + 1))
done
run smbclient $auth --client-protection=encrypt //127.0.0.1/share -c 'ls' >/dev/null 2>&1 || true
sleep 2
kill "$(cat "$work/tcpdump.pid")"
sleep 1
cp "$work/cap.pcap" "$out"
write_key "$out"
echo "wrote $out and $key ($(($(wc -l <"$key") - 1)) pipe opens)"
