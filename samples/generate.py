#!/usr/bin/env python3
"""Generate ipcscope sample captures: real TCP traffic on a private loopback.

Run as root:   sudo python3 samples/generate.py [SCENARIO ...]

Every scenario runs in its own fresh network namespace (``unshare -n``) with
only ``lo`` up, so no packet can leave the machine.  Inside it the scenario
starts ``tcpdump -i lo``, runs real server processes and client sockets,
stops tcpdump with SIGINT and writes the client's log4net-style text log.
The parent then reads every pcap back, checks that it shows what the
scenario claims (and fails loudly if not) and writes ``scenarios.json``.

Python 3 standard library only.  Needs: tcpdump, iptables, ip, unshare, ethtool.
See samples/README.md for what each scenario contains.
"""

import datetime as _dt
import errno
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER_IP = "127.10.0.1"          # the "server host"
CLIENT_IP = "127.20.0.1"          # the client host whose log we write
OTHER_CLIENT_IPS = ["127.20.0.2", "127.20.0.3"]  # other client hosts (no log)
LOCAL_OFFSET_S = 3600.8           # UTC+01:00 and client clock 0.8 s fast

SCENARIOS = [
    # name, server port
    ("healthy", 5001),
    ("stale_connection", 5002),
    ("server_restart_refused", 5003),
    ("abortive_close", 5004),
    ("keepalive_timeout", 5005),
    ("keepalive_reset", 5006),
    ("port_exhaustion", 5007),
    ("port_reuse", 5008),
    ("idle_reset", 5009),
    ("connect_timeout", 5010),
    ("retransmission_timeout", 5011),
    # realism scenarios (issue 10): the detectors must not agree with themselves
    ("early_close", 5012),
    ("port_scan", 5013),
    ("zero_window_stall", 5014),
    ("parallel_ports", 5015),
    # late capture, capture loss, errors logged at the next call (issue 10)
    ("late_capture_stale", 5016),
    ("dropped_packets", 5017),
    ("stale_next_call", 5018),
    ("stale_next_call_local", 5019),
]
# Scenarios whose client log is also written in local time (LOCAL_OFFSET_S).
LOCAL_LOGS = {"stale_connection", "stale_next_call_local"}
# Scenarios that start tcpdump themselves (start_capture()), after their connections exist.
LATE_CAPTURE = {"late_capture_stale"}
# Long scenarios may exceed the usual 200 KB pcap limit.
MAX_PCAP = {"stale_next_call_local": 1024 * 1024}
PORTS = dict(SCENARIOS)

# Windows socket errors as a .NET client logs them.
WSA = {
    10048: ("WSAEADDRINUSE", "Only one usage of each socket address "
            "(protocol/network address/port) is normally permitted."),
    10054: ("WSAECONNRESET", "An existing connection was forcibly closed by "
            "the remote host."),
    10060: ("WSAETIMEDOUT", "A connection attempt failed because the connected "
            "party did not properly respond after a period of time, or "
            "established connection failed because connected host has failed "
            "to respond."),
    10061: ("WSAECONNREFUSED", "No connection could be made because the target "
            "machine actively refused it."),
}
# Linux errno -> the Winsock error a Windows client sees for the same event.
ERRNO_TO_WSA = {
    errno.ECONNRESET: 10054,
    errno.EPIPE: 10054,          # Linux: RST received in CLOSE_WAIT -> EPIPE
    errno.ECONNREFUSED: 10061,
    errno.ETIMEDOUT: 10060,
    errno.EADDRNOTAVAIL: 10048,  # ephemeral ports exhausted at connect()
    errno.EADDRINUSE: 10048,
}

IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)


# --------------------------------------------------------------------------
# client log (log4net pattern "%date %-5level [%thread] %logger - %message")
# --------------------------------------------------------------------------

def fmt_log_time(ts):
    ms_total = int(round(ts * 1000.0, 6) // 1)
    sec, ms = divmod(ms_total, 1000)
    d = _dt.datetime.fromtimestamp(sec, _dt.timezone.utc)
    return d.strftime("%Y-%m-%d %H:%M:%S") + ",%03d" % ms


def iso_utc(ts):
    sec = int(ts)
    us = int(round((ts - sec) * 1e6))
    if us >= 1000000:
        sec, us = sec + 1, us - 1000000
    d = _dt.datetime.fromtimestamp(sec, _dt.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%06dZ" % us


class ClientLog:
    def __init__(self):
        self.records = []   # (ts, level, thread, logger, message)

    def _add(self, level, tid, logger, msg):
        self.records.append((time.time(), level, tid, logger, msg))

    def debug(self, tid, logger, msg):
        self._add("DEBUG", tid, logger, msg)

    def info(self, tid, logger, msg):
        self._add("INFO", tid, logger, msg)

    def warn(self, tid, logger, msg):
        self._add("WARN", tid, logger, msg)

    def error(self, tid, logger, msg):
        self._add("ERROR", tid, logger, msg)

    def sock_error(self, tid, logger, op, exc, local=None, remote=None):
        code = ERRNO_TO_WSA.get(getattr(exc, "errno", None))
        if code is None:
            raise exc
        name, text = WSA[code]
        msg = "%s failed: %s (%s %d)" % (op, text, name, code)
        if local:
            msg += " local=%s" % local
        if remote:
            msg += " remote=%s" % remote
        self.error(tid, logger, msg)
        return code

    def write(self, path, offset=0.0):
        with open(path, "w", newline="\r\n") as f:
            for r in self.records:
                f.write(format_record(r, offset) + "\n")


def format_record(r, offset=0.0):
    ts, level, tid, logger, msg = r
    return "%s %-5s [%d] %s - %s" % (fmt_log_time(ts + offset), level, tid, logger, msg)


# --------------------------------------------------------------------------
# server process (run as: generate.py --serve HOST PORT MODE PARAM)
# --------------------------------------------------------------------------

def make_response(line):
    parts = line.split()
    seq = parts[1] if len(parts) > 1 else "00000"
    op = parts[2] if len(parts) > 2 else "?"
    return ("RSP %s %s OK status=200 server=ipcsrv build=4.2.17 "
            "payload=%s\n" % (seq, op, "x" * 48)).encode()


def serve_main(host, port, mode, param):
    """Tiny line-based request/response server.

    modes: echo                 answer each line, close after the client closes
           abort_after_response answer, wait PARAM s, close with SO_LINGER{1,0}
           idle_abort           answer; abort (SO_LINGER{1,0}) after PARAM s idle
    In every mode a request whose op is QUIT is answered and then the server
    closes first (graceful FIN), and SIGUSR1 aborts all connections silently.
    """
    param = float(param)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(128)
    abort_gen = [0]     # SIGUSR1 aborts the connections that exist right now

    def on_usr1(*a):
        abort_gen[0] += 1
    signal.signal(signal.SIGUSR1, on_usr1)
    out_lock = threading.Lock()

    def say(s):
        with out_lock:
            sys.stdout.write(s + "\n")
            sys.stdout.flush()

    def abort(c):
        c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()

    def handle(c):
        my_gen = abort_gen[0]
        buf = b""
        last = time.monotonic()
        try:
            while True:
                if abort_gen[0] != my_gen:
                    abort(c)
                    say("ABORTED")
                    return
                r, _, _ = select.select([c], [], [], 0.01)
                if not r:
                    if mode == "idle_abort" and time.monotonic() - last >= param:
                        abort(c)
                        say("IDLE_ABORTED")
                        return
                    continue
                data = c.recv(65536)
                if not data:
                    c.close()           # graceful: FIN after the client's FIN
                    return
                last = time.monotonic()
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    text = line.decode("ascii", "replace")
                    if mode != "sink":      # sink: one-way messages, no reply
                        c.sendall(make_response(text))
                    last = time.monotonic()
                    if " QUIT" in text:
                        c.close()       # server closes first
                        return
                    if mode == "abort_after_response":
                        time.sleep(param)
                        abort(c)
                        say("ABORTED")
                        return
        except OSError as e:
            say("HANDLER_ERROR %s" % e)
            try:
                c.close()
            except OSError:
                pass

    say("READY")
    while True:
        c, _ = ls.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


ALL_SERVERS = []


class Server:
    """A server *process* in the scenario's namespace (so kill -9 is real)."""

    def __init__(self, port, mode="echo", param=0.0, host=SERVER_IP):
        self.port = port
        ALL_SERVERS.append(self)
        self.proc = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve", host,
             str(port), mode, str(param)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.wait_line("READY")
        self.pid = self.proc.pid

    def wait_line(self, want, timeout=5.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.05)
            if r:
                line = self.proc.stdout.readline()
                if not line:
                    break
                if line.strip() == want:
                    return
        raise RuntimeError("server on port %d did not say %s" % (self.port, want))

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


# --------------------------------------------------------------------------
# client helpers
# --------------------------------------------------------------------------

def ep(addr):
    return "%s:%d" % addr


def new_socket(local_ip, bind_port=0, reuse=False, keepalive=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if reuse:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if bind_port == 0:
        # choose the port at connect() time like an unbound client would
        s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    s.bind((local_ip, bind_port))
    if keepalive:
        idle, intvl, cnt = keepalive
        s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, idle)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, intvl)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, cnt)
    return s


class Conn:
    def __init__(self, log, tid, port, local_ip=CLIENT_IP, bind_port=0,
                 reuse=False, keepalive=None, channel="main", quiet=False):
        self.log, self.tid, self.channel = log, tid, channel
        self.remote = (SERVER_IP, port)
        self.quiet = quiet
        self.sock = new_socket(local_ip, bind_port, reuse, keepalive)
        self.sock.settimeout(3.0)
        self.sock.connect(self.remote)
        self.local = self.sock.getsockname()
        if not quiet:
            extra = ""
            if keepalive:
                extra = " keepalive=on(idle=%ds,interval=%ds,count=%d)" % keepalive
            log.info(tid, "Client.Connection",
                     "connected channel=%s local=%s remote=%s%s"
                     % (channel, ep(self.local), ep(self.remote), extra))

    @property
    def endpoints(self):
        return {"client": ep(self.local), "server": ep(self.remote)}

    def send(self, seq, op, split=False):
        msg = ("REQ %05d %s client=ipcscope-sample ts=%d\n"
               % (seq, op, int(time.time() * 1000))).encode()
        if split:   # header and body as two writes (second write sees the RST)
            self.sock.send(msg[:10])
            time.sleep(0.002)  # the RST is back within microseconds on loopback
            self.sock.send(msg[10:])
        else:
            self.sock.sendall(msg)
        if not self.quiet:
            self.log.debug(self.tid, "Client.Sender",
                           "sent request #%d %s (%d bytes) channel=%s"
                           % (seq, op, len(msg), self.channel))

    def recv_line(self, timeout=3.0):
        self.sock.settimeout(timeout)
        buf = b""
        while not buf.endswith(b"\n"):
            d = self.sock.recv(4096)
            if not d:
                raise EOFError
            buf += d
        return buf

    def request(self, seq, op="GetStatus"):
        t0 = time.monotonic()
        self.send(seq, op)
        resp = self.recv_line()
        if not self.quiet:
            self.log.debug(self.tid, "Client.Receiver",
                           "response #%d received (%d bytes, %.1f ms) channel=%s"
                           % (seq, len(resp), (time.monotonic() - t0) * 1000,
                              self.channel))
        return resp

    def close(self):
        self.sock.close()
        if not self.quiet:
            self.log.info(self.tid, "Client.Connection",
                          "closed channel=%s local=%s remote=%s"
                          % (self.channel, ep(self.local), ep(self.remote)))


def iptables(*args):
    subprocess.run(["iptables", "-w"] + list(args), check=True)


# --------------------------------------------------------------------------
# scenarios (each runs inside its own network namespace)
# --------------------------------------------------------------------------

def sc_healthy(log, port):
    srv = Server(port)
    meta = {"conns": {}}
    p1 = Conn(log, 5, port, channel="orders")
    p2 = Conn(log, 6, port, channel="quotes")
    meta["conns"]["persistent_orders"] = p1.endpoints
    meta["conns"]["persistent_quotes"] = p2.endpoints
    seq = 0
    for rnd in range(3):
        seq += 1
        p1.request(seq, "PlaceOrder")
        seq += 1
        p2.request(seq, "GetQuote")
        # a short-lived connection per round (client closes first)
        s = Conn(log, 7, port, channel="poll")
        meta["conns"]["short_%d" % (rnd + 1)] = s.endpoints
        seq += 1
        s.request(seq, "Poll")
        s.close()
        time.sleep(0.15)
    # a short connection from another client host, closed by the server (QUIT)
    o = Conn(log, 0, port, local_ip=OTHER_CLIENT_IPS[0], quiet=True)
    meta["conns"]["other_host_quit"] = o.endpoints
    o.request(100, "QUIT")
    o.sock.settimeout(2)
    assert o.sock.recv(10) == b""
    o.sock.close()
    time.sleep(0.1)
    seq += 1
    p1.request(seq, "PlaceOrder")
    p1.close()
    p2.close()
    time.sleep(0.2)
    srv.stop()
    return meta


def sc_stale_connection(log, port):
    meta = {"conns": {}, "marks": {}}
    srv = Server(port)
    a = Conn(log, 7, port, channel="orders")
    b = Conn(log, 9, port, channel="quotes")
    meta["conns"]["stale_orders"] = a.endpoints
    meta["conns"]["stale_quotes"] = b.endpoints
    a.request(1, "Login")
    b.request(2, "Subscribe")
    time.sleep(0.3)
    a.request(3, "PlaceOrder")
    time.sleep(0.5)
    # the server process crashes: the kernel closes its sockets -> FIN to clients
    meta["marks"]["server_killed"] = time.time()
    srv.kill9()
    time.sleep(1.0)
    # server restarts on the same port, other client hosts connect to it
    srv = Server(port)
    meta["marks"]["server_restarted"] = time.time()
    time.sleep(0.3)
    c = Conn(log, 0, port, local_ip=OTHER_CLIENT_IPS[0], quiet=True)
    c.request(1, "Login")
    c.sock.close()
    d = Conn(log, 0, port, local_ip=OTHER_CLIENT_IPS[1], quiet=True)
    d.request(1, "Login")
    meta["conns"]["other_host_1"] = c.endpoints
    meta["conns"]["other_host_2"] = d.endpoints
    time.sleep(0.7)
    # the idle client finally sends on its old connection -> RST
    reconnected = {}
    for key, conn, seq, op in (("stale_orders", a, 4, "PlaceOrder"),
                               ("stale_quotes", b, 5, "GetQuote")):
        try:
            conn.send(seq, op, split=True)
            raise RuntimeError("stale send unexpectedly succeeded")
        except OSError as e:
            log.sock_error(conn.tid, "Client.Sender", "send", e,
                           ep(conn.local), ep(conn.remote))
        conn.sock.close()
        log.warn(conn.tid, "Client.Connection",
                 "connection lost channel=%s, reconnecting to %s"
                 % (conn.channel, ep(conn.remote)))
        n = Conn(log, conn.tid, port, channel=conn.channel)
        n.request(seq, op)
        log.info(conn.tid, "Client.Connection",
                 "request #%d re-sent on new connection, channel=%s recovered"
                 % (seq, conn.channel))
        reconnected[key + "_reconnect"] = n
        time.sleep(0.8)
    for k, n in reconnected.items():
        meta["conns"][k] = n.endpoints
    time.sleep(0.2)
    for n in reconnected.values():
        n.close()
    d.sock.close()
    time.sleep(0.2)
    srv.stop()
    return meta


def sc_server_restart_refused(log, port):
    meta = {"conns": {}, "marks": {}, "refused": []}
    srv = Server(port)
    a = Conn(log, 7, port, channel="events")
    meta["conns"]["initial"] = a.endpoints
    a.request(1, "Subscribe")
    time.sleep(0.5)
    meta["marks"]["server_killed"] = time.time()
    srv.kill9()
    try:
        a.recv_line(timeout=2.0)
        raise RuntimeError("expected EOF")
    except EOFError:
        log.warn(7, "Client.Receiver",
                 "connection closed by remote host (graceful close received) "
                 "channel=events local=%s remote=%s" % (ep(a.local), ep(a.remote)))
    a.sock.close()
    for attempt in range(1, 5):
        time.sleep(0.4)
        log.info(7, "Client.Connection", "connecting to %s (attempt %d)"
                 % (ep((SERVER_IP, port)), attempt))
        s = new_socket(CLIENT_IP)
        s.settimeout(3)
        try:
            s.connect((SERVER_IP, port))
            raise RuntimeError("connect unexpectedly succeeded")
        except OSError as e:
            if e.errno != errno.ECONNREFUSED:
                raise
            meta["refused"].append(time.time())
            log.sock_error(7, "Client.Connection", "connect", e,
                           remote=ep((SERVER_IP, port)))
            log.warn(7, "Client.Connection", "retrying in 400 ms")
        finally:
            s.close()
    time.sleep(0.1)
    srv = Server(port)
    meta["marks"]["server_restarted"] = time.time()
    time.sleep(0.3)
    log.info(7, "Client.Connection", "connecting to %s (attempt 5)"
             % ep((SERVER_IP, port)))
    b = Conn(log, 7, port, channel="events")
    meta["conns"]["after_restart"] = b.endpoints
    b.request(2, "Subscribe")
    log.info(7, "Client.Connection", "channel=events recovered after 4 failed attempts")
    time.sleep(0.3)
    b.close()
    time.sleep(0.2)
    srv.stop()
    return meta


def sc_abortive_close(log, port):
    meta = {"conns": {}}
    srv = Server(port, "abort_after_response", 0.15)
    for i in range(3):
        c = Conn(log, 7, port, channel="batch")
        meta["conns"]["abort_%d" % (i + 1)] = c.endpoints
        c.request(i + 1, "SubmitBatch")
        try:
            c.recv_line(timeout=2.0)      # wait for the next server message
            raise RuntimeError("expected reset")
        except OSError as e:
            log.sock_error(7, "Client.Receiver", "recv", e, ep(c.local), ep(c.remote))
        c.sock.close()
        time.sleep(0.3)
    srv.stop()
    return meta


def sc_keepalive_timeout(log, port):
    meta = {"conns": {}, "marks": {}}
    srv = Server(port)
    c = Conn(log, 7, port, keepalive=(1, 1, 3), channel="monitor")
    meta["conns"]["keepalive"] = c.endpoints
    c.request(1, "Subscribe")
    time.sleep(0.2)
    # the server host becomes unreachable: nothing from the client reaches it
    iptables("-A", "INPUT", "-p", "tcp", "-d", SERVER_IP, "--dport", str(port),
             "-j", "DROP")
    meta["marks"]["peer_unreachable"] = time.time()
    try:
        c.recv_line(timeout=15.0)
        raise RuntimeError("expected keep-alive timeout")
    except OSError as e:
        if e.errno != errno.ETIMEDOUT:
            raise
        log.sock_error(7, "Client.Receiver", "recv", e, ep(c.local), ep(c.remote))
    c.sock.close()
    time.sleep(0.3)
    return meta     # namespace is discarded with the rule and the server


def sc_keepalive_reset(log, port):
    meta = {"conns": {}, "marks": {}}
    srv = Server(port)
    c = Conn(log, 7, port, keepalive=(2, 1, 3), channel="monitor")
    meta["conns"]["keepalive"] = c.endpoints
    c.request(1, "Subscribe")
    time.sleep(0.3)
    # the server loses the connection state silently (host restore/reboot):
    # its RST is dropped on the way out, then the filter goes away again.
    iptables("-A", "OUTPUT", "-p", "tcp", "-s", SERVER_IP, "--sport", str(port),
             "-j", "DROP")
    srv.proc.send_signal(signal.SIGUSR1)
    srv.wait_line("ABORTED")
    time.sleep(0.05)
    iptables("-D", "OUTPUT", "-p", "tcp", "-s", SERVER_IP, "--sport", str(port),
             "-j", "DROP")
    meta["marks"]["server_state_lost"] = time.time()
    try:
        c.recv_line(timeout=10.0)
        raise RuntimeError("expected reset")
    except OSError as e:
        log.sock_error(7, "Client.Receiver", "recv", e, ep(c.local), ep(c.remote))
    c.sock.close()
    log.warn(7, "Client.Connection", "connection lost channel=monitor, reconnecting")
    n = Conn(log, 7, port, keepalive=(2, 1, 3), channel="monitor")
    meta["conns"]["reconnect"] = n.endpoints
    n.request(2, "Subscribe")
    time.sleep(0.3)
    n.close()
    time.sleep(0.2)
    srv.stop()
    return meta


def sc_port_exhaustion(log, port):
    meta = {"conns": {}, "marks": {}, "ok": 0, "failures": []}
    srv = Server(port)
    log.info(7, "Client.Uploader", "starting upload run: one connection per record")
    ok = 0
    while ok < 1000:
        try:
            c = Conn(log, 7, port, channel="upload", quiet=True)
        except OSError as e:
            if e.errno not in (errno.EADDRNOTAVAIL, errno.EADDRINUSE):
                raise
            meta["failures"].append(time.time())
            log.sock_error(7, "Client.Connection", "connect", e,
                           remote=ep((SERVER_IP, port)))
            if len(meta["failures"]) >= 3:
                log.error(7, "Client.Uploader",
                          "upload run aborted after %d records" % ok)
                break
            log.warn(7, "Client.Connection", "retrying in 500 ms")
            time.sleep(0.5)
            continue
        c.request(ok + 1, "UploadRecord")
        c.close()               # client closes first -> client TIME_WAIT
        ok += 1
        if ok % 25 == 0:
            log.debug(7, "Client.Uploader", "%d records uploaded" % ok)
        time.sleep(0.005)
    meta["ok"] = ok
    time.sleep(0.2)
    srv.stop()
    return meta


def sc_port_reuse(log, port):
    meta = {"conns": {}}
    srv = Server(port)
    # A: server closes first (QUIT) -> server holds TIME_WAIT; the client
    #    reconnects from the same fixed source port 0.5 s later.
    a = Conn(log, 7, port, bind_port=45000, reuse=True, channel="session")
    meta["conns"]["server_timewait_first"] = a.endpoints
    a.request(1, "QUIT")
    a.sock.settimeout(2)
    assert a.sock.recv(10) == b""
    a.close()
    time.sleep(0.5)
    a2 = Conn(log, 7, port, bind_port=45000, reuse=True, channel="session")
    meta["conns"]["server_timewait_reuse"] = a2.endpoints
    a2.request(2, "GetStatus")
    time.sleep(0.2)
    # B: client closes first -> client TIME_WAIT; reconnect from the same
    #    source port 1.2 s later (tcp_tw_reuse).
    b = Conn(log, 8, port, bind_port=45001, reuse=True, channel="report")
    meta["conns"]["client_timewait_first"] = b.endpoints
    b.request(3, "GetReport")
    b.close()
    time.sleep(1.2)
    b2 = Conn(log, 8, port, bind_port=45001, reuse=True, channel="report")
    meta["conns"]["client_timewait_reuse"] = b2.endpoints
    b2.request(4, "GetReport")
    time.sleep(0.2)
    b2.close()
    a2.request(5, "QUIT")
    a2.sock.settimeout(2)
    assert a2.sock.recv(10) == b""
    a2.close()
    time.sleep(0.2)
    srv.stop()
    return meta


def sc_idle_reset(log, port):
    meta = {"conns": {}}
    srv = Server(port, "idle_abort", 3.0)
    a = Conn(log, 7, port, channel="orders")
    meta["conns"]["idle_after_exchange"] = a.endpoints
    a.request(1, "Login")
    time.sleep(0.5)
    b = Conn(log, 8, port, channel="standby")
    meta["conns"]["idle_no_data"] = b.endpoints
    pending = {a.sock: a, b.sock: b}
    end = time.monotonic() + 8
    while pending and time.monotonic() < end:
        r, _, _ = select.select(list(pending), [], [], 0.5)
        for s in r:
            c = pending.pop(s)
            try:
                d = s.recv(4096)
                raise RuntimeError("expected reset, got %r" % d)
            except OSError as e:
                log.sock_error(c.tid, "Client.Receiver", "recv", e,
                               ep(c.local), ep(c.remote))
            s.close()
    assert not pending
    time.sleep(0.3)
    srv.stop()
    return meta


def sc_connect_timeout(log, port):
    """The server host drops every SYN (firewall): connect() retries and times out."""
    meta = {"conns": {}, "marks": {}}
    srv = Server(port)
    iptables("-A", "INPUT", "-p", "tcp", "-d", SERVER_IP, "--dport", str(port),
             "--syn", "-j", "DROP")
    s = new_socket(CLIENT_IP)
    s.settimeout(3.5)               # SYN at 0 s, retries at 1 s and 3 s
    meta["marks"]["connect_start"] = time.time()
    try:
        s.connect((SERVER_IP, port))
        raise RuntimeError("expected connect timeout")
    except (socket.timeout, TimeoutError):
        log.error(7, "Client.Connection",
                  "connect failed: %s (WSAETIMEDOUT 10060) remote=%s"
                  % (WSA[10060][1], ep((SERVER_IP, port))))
    meta["conns"]["attempt"] = {"client": ep(s.getsockname()), "server": ep((SERVER_IP, port))}
    s.close()
    return meta


def sc_retransmission_timeout(log, port):
    """The server host vanishes mid-exchange: the client's data is retransmitted unanswered."""
    meta = {"conns": {}, "marks": {}}
    srv = Server(port)
    c = Conn(log, 7, port, channel="orders")
    meta["conns"]["orders"] = c.endpoints
    c.request(1, "GetStatus")
    time.sleep(0.2)
    iptables("-A", "INPUT", "-p", "tcp", "-d", SERVER_IP, "--dport", str(port), "-j", "DROP")
    meta["marks"]["peer_unreachable"] = time.time()
    c.send(2, "PlaceOrder")
    try:
        c.recv_line(timeout=15.0)
        raise RuntimeError("expected retransmission timeout")
    except OSError as e:
        if e.errno != errno.ETIMEDOUT:
            raise
        log.sock_error(7, "Client.Receiver", "recv", e, ep(c.local), ep(c.remote))
    c.sock.close()
    return meta     # the server is stopped after the capture ends


# --------------------------------------------------------------------------
# realism scenarios (servers as threads in the namespace process)
# --------------------------------------------------------------------------

def thread_server(port, handler, host=SERVER_IP, backlog=64):
    """Listens on host:port and runs handler(conn) per accepted connection in a thread."""
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((host, port))
    ls.listen(backlog)

    def loop():
        while True:
            try:
                c, _ = ls.accept()
            except OSError:
                return
            threading.Thread(target=handler, args=(c,), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
    return ls


def sc_early_close(log, port):
    """Fire-and-forget clients (UPnP NOTIFY style): request, FIN at once, close before the
    reply arrives; the server's reply, sent 20 ms later, is reset by the client's stack."""
    def handler(c):
        buf = b""
        while b"\n" not in buf:
            d = c.recv(4096)
            if not d:
                break
            buf += d
        time.sleep(0.02)        # the reply is produced after the client's FIN
        try:
            c.sendall(make_response(buf.decode("ascii", "replace")))
            time.sleep(0.05)
            c.close()
        except OSError:
            pass
    ls = thread_server(port, handler)
    conns = {}
    for i in range(6):
        s = new_socket(CLIENT_IP)
        s.connect((SERVER_IP, port))
        local = s.getsockname()
        s.sendall(("NOTIFY %05d Alive client=ipcscope-sample\n" % i).encode())
        s.shutdown(socket.SHUT_WR)
        time.sleep(0.005)
        s.close()               # never reads: the late reply meets a closed socket -> RST
        conns["notify_%d" % i] = {"client": ep(local), "server": "%s:%d" % (SERVER_IP, port)}
        log.debug(7, "Client.Notifier", "sent NOTIFY #%d local=%s" % (i, ep(local)))
        time.sleep(0.3)
    time.sleep(0.3)
    ls.close()
    return {"conns": conns}


def sc_port_scan(log, port):
    """A SYN-style scan: one host connects to 40 ports of the server host, 3 of them open;
    open ports are closed at once without data (connect scan)."""
    listeners = [thread_server(p, lambda c: c.close()) for p in (port, port + 100, port + 200)]
    targets = list(range(port - 20, port + 20)) + [port + 100, port + 200]
    conns = {}
    for p in targets:
        s = new_socket("127.20.0.3")
        s.settimeout(1.0)
        try:
            s.connect((SERVER_IP, p))
            conns["open_%d" % p] = {"client": ep(s.getsockname()), "server": "%s:%d" % (SERVER_IP, p)}
        except OSError:
            pass
        s.close()
        time.sleep(0.01)
    for ls in listeners:
        ls.close()
    return {"conns": conns, "targets": len(targets)}


def sc_zero_window_stall(log, port):
    """The client's reader thread hangs: it stops reading while the server streams a
    report; the client's window falls to 0, the server probes, and after 8 s the client
    gives up and closes with unread data (RST)."""
    def handler(c):
        c.recv(4096)
        chunk = b"R" * 65536
        try:
            while True:
                c.sendall(chunk)
        except OSError:
            pass
    ls = thread_server(port, handler)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    s.bind((CLIENT_IP, 0))
    s.connect((SERVER_IP, port))
    local = s.getsockname()
    log.info(7, "Client.Connection", "connected channel=report local=%s remote=%s:%d" % (ep(local), SERVER_IP, port))
    s.sendall(b"REQ 00001 GetReport client=ipcscope-sample\n")
    log.debug(7, "Client.Sender", "sent request #1 GetReport channel=report")
    time.sleep(8.0)             # the reader is stuck: nothing is read
    log.error(7, "Client.Receiver", "report channel=report timed out after 8000 ms: closing local=%s" % ep(local))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    time.sleep(0.2)
    ls.close()
    return {"conns": {"report": {"client": ep(local), "server": "%s:%d" % (SERVER_IP, port)}}}


def sc_parallel_ports(log, port):
    """An SMB-style client tries two ports of the server at once (445 and 139 in real life):
    one listens, the other refuses; the client uses the one that answered."""
    def handler(c):
        try:
            while True:
                d = c.recv(4096)
                if not d:
                    break
                c.sendall(make_response(d.decode("ascii", "replace")))
        except OSError:
            pass
        c.close()
    ls = thread_server(port, handler)
    refused_port = port + 1
    a = new_socket(CLIENT_IP)
    b = new_socket(CLIENT_IP)
    b.setblocking(False)
    try:
        b.connect((SERVER_IP, refused_port))
    except (BlockingIOError, OSError):
        pass
    a.connect((SERVER_IP, port))
    local_a = a.getsockname()
    time.sleep(0.05)
    b.close()
    log.debug(7, "Client.Connection", "port %d refused, using %d local=%s" % (refused_port, port, ep(local_a)))
    a.sendall(b"REQ 00001 Negotiate client=ipcscope-sample\n")
    a.recv(4096)
    a.close()
    time.sleep(0.2)
    ls.close()
    return {"conns": {"used": {"client": ep(local_a), "server": "%s:%d" % (SERVER_IP, port)}}}


_CAPTURE = {}


def start_capture():
    """Starts tcpdump on lo (the file is set by in_netns_main); returns its first line."""
    td = subprocess.Popen(["tcpdump", "-i", "lo", "-w", _CAPTURE["pcap"], "-U", "-s", "262144",
                           "--immediate-mode", "-Z", "root", "-n", "tcp"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    line = td.stderr.readline()
    if "listening" not in line:
        raise RuntimeError("tcpdump did not start: %s" % line)
    time.sleep(0.3)
    _CAPTURE["td"], _CAPTURE["line"] = td, line
    return line


def sc_late_capture_stale(log, port):
    """The seed incident as a late-started capture sees it: the client's connections were
    opened (and used) before anyone started tcpdump, so no handshake is captured; then the
    server process crashes (its FINs are captured), restarts, and the client's next request
    on each old connection is reset."""
    meta = {"conns": {}, "marks": {}}
    srv = Server(port)
    a = Conn(log, 7, port, channel="orders")
    b = Conn(log, 9, port, channel="quotes")
    meta["conns"]["stale_orders"] = a.endpoints
    meta["conns"]["stale_quotes"] = b.endpoints
    a.request(1, "Login")
    b.request(2, "Subscribe")
    time.sleep(0.3)
    meta["marks"]["capture_started"] = time.time()
    start_capture()                  # the admin starts tcpdump once users complain
    a.request(3, "PlaceOrder")       # mid-connection traffic, no SYN in the capture
    b.request(4, "GetQuote")
    time.sleep(0.5)
    meta["marks"]["server_killed"] = time.time()
    srv.kill9()
    time.sleep(1.0)
    srv = Server(port)
    meta["marks"]["server_restarted"] = time.time()
    time.sleep(0.3)
    c = Conn(log, 0, port, local_ip=OTHER_CLIENT_IPS[0], quiet=True)
    c.request(1, "Login")
    meta["conns"]["other_host_1"] = c.endpoints
    time.sleep(0.5)
    reconnected = {}
    for key, conn, seq, op in (("stale_orders", a, 5, "PlaceOrder"), ("stale_quotes", b, 6, "GetQuote")):
        try:
            conn.send(seq, op, split=True)
            raise RuntimeError("stale send unexpectedly succeeded")
        except OSError as e:
            log.sock_error(conn.tid, "Client.Sender", "send", e, ep(conn.local), ep(conn.remote))
        conn.sock.close()
        log.warn(conn.tid, "Client.Connection",
                 "connection lost channel=%s, reconnecting to %s" % (conn.channel, ep(conn.remote)))
        n = Conn(log, conn.tid, port, channel=conn.channel)
        n.request(seq, op)
        reconnected[key + "_reconnect"] = n
        time.sleep(0.6)
    for k, n in reconnected.items():
        meta["conns"][k] = n.endpoints
        n.close()
    c.sock.close()
    time.sleep(0.2)
    srv.stop()
    return meta


def sc_dropped_packets(log, port):
    """A 150 KB download in Ethernet-size segments. Two kinds of loss: the path loses every
    40th full segment of the server AFTER the capture point (iptables INPUT on the client:
    the capture shows the segment, dup ACKs/SACKs, then its retransmission), and the capture
    misses packets the stacks did see (two server segments and two client ACKs removed from
    the file afterwards, as tcpdump's "dropped by kernel" loses them: Wireshark's "previous
    segment not captured" and "ACKed unseen segment"). netem/tc qdiscs are not available
    here, and an OUTPUT drop is reported to the sending stack, so true loss before a lo
    capture cannot be made. The transfer completes and the connection closes normally."""
    subprocess.run(["ip", "link", "set", "lo", "mtu", "1500"], check=True)
    # No segmentation offload: netfilter and tcpdump see wire-size segments (needs ethtool).
    subprocess.run(["ethtool", "-K", "lo", "tso", "off", "gso", "off", "gro", "off"], check=True,
                   stdout=subprocess.DEVNULL)
    iptables("-A", "INPUT", "-p", "tcp", "-s", SERVER_IP, "--sport", str(port), "-m", "length",
             "--length", "1400:1500", "-m", "statistic", "--mode", "nth", "--every", "40", "--packet", "7",
             "-j", "DROP")
    body = bytes((i * 7) & 0xFF for i in range(150 * 1024))

    def handler(c):
        buf = b""
        while b"\n" not in buf:
            d = c.recv(4096)
            if not d:
                return
            buf += d
        for i in range(0, len(body), 4096):   # paced, so tcpdump itself keeps up
            c.sendall(body[i:i + 4096])
            time.sleep(0.003)
        c.shutdown(socket.SHUT_WR)
        try:
            while c.recv(4096):
                pass
        except OSError:
            pass
        c.close()
    ls = thread_server(port, handler)
    ls.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1448)   # Ethernet-size segments
    s = new_socket(CLIENT_IP)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 1448)
    s.connect((SERVER_IP, port))
    local = s.getsockname()
    log.info(7, "Client.Connection", "connected channel=download local=%s remote=%s:%d" % (ep(local), SERVER_IP, port))
    s.sendall(b"REQ 00001 GetFile client=ipcscope-sample\n")
    got = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        got += d
    assert got == body, "download corrupted (%d of %d bytes)" % (len(got), len(body))
    log.info(7, "Client.Receiver", "download complete (%d bytes) channel=download" % len(got))
    s.close()
    time.sleep(0.3)
    ls.close()
    return {"conns": {"download": {"client": ep(local), "server": "%s:%d" % (SERVER_IP, port)}}}


def stale_next_call_client(log, port, meta, channels, duration_s, interval, restarts, rng):
    """Clients that only send (no reply is read): when the server process dies its FIN is
    ignored, the next send goes out and is reset, and the application learns it only at
    its NEXT send (interval later), which fails with 10054 and is logged then."""
    import random  # noqa: F401 (rng is a random.Random)
    srv = Server(port, "sink")
    conns = {}
    seqs = {}
    nexts = {}
    t_end = time.time() + duration_s
    restart_at = sorted(time.time() + duration_s * (i + 1) / (restarts + 1) for i in range(restarts))
    down_until = None
    n_conn = 0

    def restart_due():
        # The server comes back on its own schedule, also while a client waits to reconnect.
        nonlocal srv, down_until
        if down_until and time.time() >= down_until:
            srv = Server(port, "sink")
            meta["marks"].setdefault("server_restarted", []).append(time.time())
            down_until = None

    def connect(ch, tid):
        nonlocal n_conn
        while True:
            restart_due()
            try:
                c = Conn(log, tid, port, channel=ch)
                n_conn += 1
                meta["conns"]["%s_%d" % (ch, n_conn)] = c.endpoints
                return c
            except OSError as e:
                log.sock_error(tid, "Client.Connection", "connect", e, remote="%s:%d" % (SERVER_IP, port))
                log.warn(tid, "Client.Connection", "retrying in 300 ms")
                time.sleep(0.3)
    for i, ch in enumerate(channels):
        conns[ch] = connect(ch, 7 + i)
        seqs[ch] = 0
        nexts[ch] = time.time() + rng.uniform(*interval)
    while time.time() < t_end:
        now = time.time()
        if restart_at and now >= restart_at[0]:
            restart_at.pop(0)
            meta["marks"].setdefault("server_killed", []).append(time.time())
            srv.kill9()
            down_until = time.time() + 0.8
        restart_due()
        ch = min(nexts, key=nexts.get)
        wait = nexts[ch] - time.time()
        if down_until:
            wait = min(wait, down_until - time.time())
        if restart_at:
            wait = min(wait, restart_at[0] - time.time())
        if wait > 0:
            time.sleep(wait)
            continue
        c = conns[ch]
        seqs[ch] += 1
        try:
            c.send(seqs[ch], "Report")
        except OSError as e:
            log.sock_error(c.tid, "Client.Sender", "send", e, ep(c.local), ep(c.remote))
            meta.setdefault("send_errors", []).append(time.time())
            c.sock.close()
            log.warn(c.tid, "Client.Connection", "connection lost channel=%s, reconnecting" % ch)
            conns[ch] = connect(ch, c.tid)
        nexts[ch] = time.time() + rng.uniform(*interval)
    for c in conns.values():
        c.close()
    time.sleep(0.2)
    srv.stop()


def sc_stale_next_call(log, port):
    import random
    meta = {"conns": {}, "marks": {}}
    stale_next_call_client(log, port, meta, ["orders", "quotes", "audit"], 14.0, (0.1, 2.0), 1,
                           random.Random(18))
    return meta


def sc_stale_next_call_local(log, port):
    import random
    meta = {"conns": {}, "marks": {}}
    stale_next_call_client(log, port, meta, ["orders", "quotes"], 100.0, (0.05, 0.2), 4, random.Random(19))
    return meta


SCENARIO_FUNCS = {
    "healthy": sc_healthy,
    "stale_connection": sc_stale_connection,
    "server_restart_refused": sc_server_restart_refused,
    "abortive_close": sc_abortive_close,
    "keepalive_timeout": sc_keepalive_timeout,
    "keepalive_reset": sc_keepalive_reset,
    "port_exhaustion": sc_port_exhaustion,
    "port_reuse": sc_port_reuse,
    "idle_reset": sc_idle_reset,
    "connect_timeout": sc_connect_timeout,
    "retransmission_timeout": sc_retransmission_timeout,
    "early_close": sc_early_close,
    "port_scan": sc_port_scan,
    "zero_window_stall": sc_zero_window_stall,
    "parallel_ports": sc_parallel_ports,
    "late_capture_stale": sc_late_capture_stale,
    "dropped_packets": sc_dropped_packets,
    "stale_next_call": sc_stale_next_call,
    "stale_next_call_local": sc_stale_next_call_local,
}


def in_netns_main(name, outdir):
    """Runs inside a fresh network namespace created by `unshare -n`."""
    port = PORTS[name]
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)

    def sysctl(k, v):
        with open("/proc/sys/" + k.replace(".", "/"), "w") as f:
            f.write(v)
    if name == "port_exhaustion":
        sysctl("net.ipv4.ip_local_port_range", "40000 40099")
        sysctl("net.ipv4.tcp_tw_reuse", "0")
    elif name == "retransmission_timeout":
        # Give up after a few back-offs (about 3 s) instead of Linux's 15 minutes.
        sysctl("net.ipv4.ip_local_port_range", "49152 65535")
        sysctl("net.ipv4.tcp_retries2", "3")
    else:
        sysctl("net.ipv4.ip_local_port_range", "49152 65535")  # Windows range
    pcap = os.path.join(outdir, name + ".pcap")
    _CAPTURE["pcap"] = pcap
    if name not in LATE_CAPTURE:
        start_capture()
    log = ClientLog()
    t_start = time.time()
    try:
        meta = SCENARIO_FUNCS[name](log, port)
    finally:
        time.sleep(0.5)             # settle, then stop tcpdump cleanly
        td, line = _CAPTURE["td"], _CAPTURE["line"]
        td.send_signal(signal.SIGINT)
        err = td.communicate(timeout=10)[1]
        for srv in ALL_SERVERS:
            srv.stop()
    meta["tcpdump"] = (line + err).strip()
    meta["t_start"] = t_start
    meta["log"] = log.records
    log.write(os.path.join(outdir, name + "_client_utc.log"))
    if name in LOCAL_LOGS:
        log.write(os.path.join(outdir, name + "_client_local.log"), LOCAL_OFFSET_S)
    if name == "dropped_packets":
        drop_captured_acks(pcap, meta)
    with open(os.path.join(outdir, name + ".meta.json"), "w") as f:
        json.dump(meta, f)


# --------------------------------------------------------------------------
# pcap reading and checks (parent side)
# --------------------------------------------------------------------------

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def read_pcap(path):
    with open(path, "rb") as f:
        data = f.read()
    magic = struct.unpack("<I", data[:4])[0]
    if magic == 0xA1B2C3D4:
        e, div = "<", 1e6
    elif magic == 0xA1B23C4D:
        e, div = "<", 1e9
    elif magic == 0xD4C3B2A1:
        e, div = ">", 1e6
    else:
        raise ValueError("not a pcap file: %s" % path)
    linktype = struct.unpack(e + "I", data[20:24])[0]
    assert linktype == 1, "expected Ethernet link type, got %d" % linktype
    off, n, pkts = 24, 0, []
    while off + 16 <= len(data):
        sec, frac, incl, orig = struct.unpack(e + "IIII", data[off:off + 16])
        off += 16
        frame = data[off:off + incl]
        off += incl
        n += 1
        if len(frame) < 34 or struct.unpack("!H", frame[12:14])[0] != 0x0800:
            continue
        ip = frame[14:]
        ihl = (ip[0] & 0x0F) * 4
        tot = struct.unpack("!H", ip[2:4])[0]
        if ip[9] != 6:
            continue
        tcp = ip[ihl:]
        sport, dport, seq, ack = struct.unpack("!HHII", tcp[:12])
        doff = (tcp[12] >> 4) * 4
        flags = tcp[13]
        pkts.append({
            "frame": n, "ts": sec + frac / div,
            "src": "%s:%d" % (socket.inet_ntoa(ip[12:16]), sport),
            "dst": "%s:%d" % (socket.inet_ntoa(ip[16:20]), dport),
            "flags": flags, "seq": seq, "ack": ack,
            "len": tot - ihl - doff,
            "sport": sport, "dport": dport,
            "win": struct.unpack("!H", tcp[14:16])[0],
        })
    return pkts


def drop_captured_acks(path, meta, picks=(0.3, 0.6)):
    """Removes two of the client's pure ACKs and two of the server's segments from the middle
    of the download, as a capture that could not keep up would miss them (the stacks saw
    them; only the file lacks them)."""
    with open(path, "rb") as f:
        data = f.read()
    e = "<" if struct.unpack("<I", data[:4])[0] in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    recs, off = [], 24
    while off + 16 <= len(data):
        incl = struct.unpack(e + "I", data[off + 8:off + 12])[0]
        recs.append(data[off:off + 16 + incl])
        off += 16 + incl
    pkts = read_pcap(path)
    client = meta["conns"]["download"]["client"]
    acks = [p["frame"] for p in pkts if p["src"] == client and p["flags"] == ACK and p["len"] == 0]
    drop = {acks[int(len(acks) * x)] for x in picks}
    server = meta["conns"]["download"]["server"]
    seen, firsts = set(), []
    for p in pkts:
        if p["src"] == server and p["len"] > 0 and p["seq"] not in seen:
            seen.add(p["seq"])
            firsts.append(p)
    once = [p["frame"] for p in firsts if sum(q["seq"] == p["seq"] for q in pkts if q["src"] == server) == 1]
    drop |= {once[int(len(once) * x) + 3] for x in picks}
    meta["capture_dropped_frames"] = sorted(drop)
    with open(path, "wb") as f:
        f.write(data[:24])
        for i, r in enumerate(recs):
            if i + 1 not in drop:
                f.write(r)


def split_conns(pkts):
    """Group packets into connections; a new pure SYN starts a new one."""
    conns, current = [], {}
    for p in pkts:
        key = frozenset((p["src"], p["dst"]))
        c = current.get(key)
        pure_syn = p["flags"] & SYN and not p["flags"] & ACK
        if pure_syn and not (c and c["client"] == p["src"] and c["isn"] == p["seq"]):
            c = {"client": p["src"], "server": p["dst"], "isn": p["seq"], "pkts": []}
            conns.append(c)
            current[key] = c
        elif c is None:
            c = {"client": p["dst"], "server": p["src"], "isn": None, "pkts": []}
            conns.append(c)
            current[key] = c
        c["pkts"].append(p)
    return conns


def conn_for(conns, client, server, nth=0):
    found = [c for c in conns if c["client"] == client and c["server"] == server]
    if len(found) <= nth:
        raise AssertionError("no connection %s -> %s in capture" % (client, server))
    return found[nth]


def first(pkts, pred, what):
    for p in pkts:
        if pred(p):
            return p
    raise AssertionError("expected %s" % what)


def desc(p):
    names = [n for b, n in ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"), (ACK, "."))
             if p["flags"] & b]
    return "%s > %s [%s] len %d" % (p["src"], p["dst"], "".join(names), p["len"])


def ka_probes(c):
    """Keep-alive probes from the client: zero/one-byte ACK with seq = snd_nxt-1."""
    probes, nxt = [], None
    for p in c["pkts"]:
        if p["src"] != c["client"]:
            continue
        if p["flags"] & SYN:
            nxt = (p["seq"] + 1) & 0xFFFFFFFF
            continue
        if nxt is not None and p["flags"] == ACK and p["len"] <= 1 and \
                p["seq"] == (nxt - 1) & 0xFFFFFFFF:
            probes.append(p)
            continue
        end = (p["seq"] + p["len"] + (1 if p["flags"] & FIN else 0)) & 0xFFFFFFFF
        nxt = end
    return probes


def has_retransmission(c):
    seen = set()
    for p in c["pkts"]:
        if p["len"] > 0 or p["flags"] & (SYN | FIN):
            k = (p["src"], p["seq"], p["len"], p["flags"] & (SYN | FIN))
            if k in seen:
                return True
            seen.add(k)
    return False


def finding(kind, c, p, t0, **extra):
    d = {"kind": kind, "client": c["client"], "server": c["server"],
         "time_utc": iso_utc(p["ts"]), "t_rel_s": round(p["ts"] - t0, 3),
         "frame": p["frame"], "deciding_packet": desc(p)}
    d.update(extra)
    return d


def log_lines(meta, pred):
    return [r for r in meta["log"] if pred(r)]


def check_scenario(name, pkts, meta):
    """Assert the capture shows the scenario; return (findings, summary)."""
    t0 = pkts[0]["ts"]
    conns = split_conns(pkts)
    M = meta["conns"]
    port = PORTS[name]
    srv = "%s:%d" % (SERVER_IP, port)
    out = []
    rsts = [p for p in pkts if p["flags"] & RST]
    errors = log_lines(meta, lambda r: r[1] in ("ERROR", "WARN"))

    def C(role, nth=0):
        return conn_for(conns, M[role]["client"], M[role]["server"], nth)

    if name == "healthy":
        assert not rsts, "healthy capture has RSTs"
        assert not errors, "healthy log has warnings"
        for c in conns:
            fl = [p["flags"] for p in c["pkts"]]
            assert fl[0] == SYN and any(f == SYN | ACK for f in fl), desc(c["pkts"][0])
            assert sum(1 for p in c["pkts"] if p["flags"] & FIN) == 2, "missing FINs"
            assert not has_retransmission(c), "retransmission"
        return out, "%d connections, all SYN/SYN-ACK + FIN/FIN, no RST" % len(conns)

    if name == "stale_connection":
        for role in ("stale_orders", "stale_quotes"):
            c = C(role)
            fin = first(c["pkts"], lambda p: p["src"] == c["server"] and p["flags"] & FIN,
                        "server FIN (process exit)")
            assert abs(fin["ts"] - meta["marks"]["server_killed"]) < 0.5
            data = first(c["pkts"], lambda p: p["src"] == c["client"] and p["len"] > 0
                         and p["ts"] > fin["ts"], "client data after server FIN")
            assert not any(p["flags"] & FIN for p in c["pkts"] if p["src"] == c["client"]), \
                "client must not close (it did not notice)"
            rst = first(c["pkts"], lambda p: p["src"] == c["server"] and p["flags"] & RST
                        and p["ts"] >= data["ts"], "RST after stale send")
            restart_syn = first(pkts, lambda p: p["dst"] == srv and p["flags"] == SYN
                                and p["ts"] > fin["ts"], "SYN after restart")
            assert restart_syn["ts"] < data["ts"]
            rc = C(role + "_reconnect")
            assert any(p["flags"] == SYN | ACK for p in rc["pkts"])
            assert any(p["flags"] & FIN for p in rc["pkts"]), "capture incomplete"
            err = [r for r in meta["log"] if r[1] == "ERROR" and c["client"] in r[4]]
            assert err and "WSAECONNRESET 10054" in err[0][4]
            out.append(finding("stale_connection", c, rst, t0,
                               server_fin_time_utc=iso_utc(fin["ts"]),
                               stale_send_time_utc=iso_utc(data["ts"]),
                               seconds_since_server_fin=round(data["ts"] - fin["ts"], 3),
                               log_error_time_utc=iso_utc(err[0][0]),
                               log_error_line_contains="send failed"))
        first_fin = min(f["server_fin_time_utc"] for f in out)
        restart = first(pkts, lambda p: p["dst"] == srv and p["flags"] == SYN
                        and p["ts"] > meta["marks"]["server_restarted"] - 0.1,
                        "first SYN to restarted server")
        out.append({"kind": "server_restart", "server": srv,
                    "time_utc": iso_utc(restart["ts"]), "t_rel_s": round(restart["ts"] - t0, 3),
                    "frame": restart["frame"], "deciding_packet": desc(restart),
                    "server_down_since_utc": first_fin,
                    "note": "first new connection after the server's FINs"})
        return out, "%d connections; server FINs, restart, then data+RST on 2 old connections" % len(conns)

    if name == "server_restart_refused":
        c = C("initial")
        fin = first(c["pkts"], lambda p: p["src"] == c["server"] and p["flags"] & FIN,
                    "server FIN")
        refused = [x for x in conns if x["client"].startswith(CLIENT_IP + ":")
                   and len(x["pkts"]) == 2 and x["pkts"][0]["flags"] == SYN
                   and x["pkts"][1]["flags"] == RST | ACK]
        assert len(refused) == 4, "expected 4 refused SYNs, got %d" % len(refused)
        errs = log_lines(meta, lambda r: "WSAECONNREFUSED 10061" in r[4])
        assert len(errs) == 4
        for x, e in zip(refused, errs):
            out.append(finding("connection_refused", x, x["pkts"][1], t0,
                               log_error_time_utc=iso_utc(e[0])))
        ok = C("after_restart")
        synack = first(ok["pkts"], lambda p: p["flags"] == SYN | ACK, "SYN-ACK after restart")
        out.append({"kind": "server_restart", "server": srv,
                    "time_utc": iso_utc(synack["ts"]), "t_rel_s": round(synack["ts"] - t0, 3),
                    "frame": synack["frame"], "deciding_packet": desc(synack),
                    "server_down_since_utc": iso_utc(fin["ts"]),
                    "note": "first accepted connection after the refusals"})
        return out, "server FIN, 4x SYN -> RST/ACK (refused), then SYN/SYN-ACK ok"

    if name == "abortive_close":
        errs = log_lines(meta, lambda r: r[1] == "ERROR")
        for i in range(3):
            c = C("abort_%d" % (i + 1))
            data = [p for p in c["pkts"] if p["src"] == c["server"] and p["len"] > 0]
            rst = first(c["pkts"], lambda p: p["src"] == c["server"] and p["flags"] & RST,
                        "server RST")
            assert data and data[-1]["ts"] < rst["ts"]
            assert not any(p["flags"] & FIN for p in c["pkts"]), "abortive close has FIN"
            assert "recv failed" in errs[i][4] and "10054" in errs[i][4]
            out.append(finding("abortive_close", c, rst, t0,
                               ms_after_last_response=round((rst["ts"] - data[-1]["ts"]) * 1000, 1),
                               log_error_time_utc=iso_utc(errs[i][0])))
        return out, "3 connections: request/response then server RST (no FIN)"

    if name == "connect_timeout":
        syns = [p for p in pkts if p["flags"] & SYN and not p["flags"] & ACK]
        assert len(syns) >= 3, "expected >= 3 SYNs, got %d" % len(syns)
        assert not any(p["src"] != syns[0]["src"] for p in pkts), "the server answered"
        errs = log_lines(meta, lambda r: "WSAETIMEDOUT 10060" in r[4])
        assert errs
        c = C("attempt")
        out.append(finding("connect_timeout", c, syns[0], t0, syns=len(syns),
                           log_error_time_utc=iso_utc(errs[0][0]),
                           note="deciding packets = the unanswered SYN and its retries"))
        return out, "%d unanswered SYNs, connect() times out" % len(syns)

    if name == "retransmission_timeout":
        c = C("orders")
        mark = meta["marks"]["peer_unreachable"]
        data = [p for p in c["pkts"] if p["src"] == c["client"] and p["len"] > 0 and p["ts"] > mark]
        assert len(data) >= 4, "expected the request and >= 3 retransmissions, got %d" % len(data)
        assert len({p["seq"] for p in data}) == 1, "retransmissions carry the same data"
        after = [p for p in c["pkts"] if p["src"] == c["server"] and p["ts"] > data[0]["ts"]]
        assert not after, "the server answered"
        errs = log_lines(meta, lambda r: "WSAETIMEDOUT 10060" in r[4])
        assert errs
        out.append(finding("retransmission_timeout", c, data[1], t0, retransmissions=len(data) - 1,
                           log_error_time_utc=iso_utc(errs[0][0]),
                           note="deciding packet = the first retransmission of the unanswered request"))
        return out, "request retransmitted %d times unanswered, then the client gives up" % (len(data) - 1)

    if name == "keepalive_timeout":
        c = C("keepalive")
        probes = ka_probes(c)
        assert len(probes) >= 3, "expected >= 3 keep-alive probes, got %d" % len(probes)
        after = [p for p in c["pkts"] if p["ts"] > probes[0]["ts"] and p["src"] == c["server"]]
        assert not after, "probe was answered"
        assert not any(p["flags"] & FIN for p in c["pkts"])
        # Linux (like Windows) aborts the connection with an RST when the
        # keep-alive retries are exhausted; the peer never sees it here.
        rst = first(c["pkts"], lambda p: p["flags"] & RST, "client RST on give-up")
        assert rst["src"] == c["client"] and rst["ts"] > probes[-1]["ts"]
        errs = log_lines(meta, lambda r: "WSAETIMEDOUT 10060" in r[4])
        assert errs
        out.append(finding("keepalive_timeout", c, rst, t0,
                           probes=len(probes),
                           first_probe_time_utc=iso_utc(probes[0]["ts"]),
                           last_probe_time_utc=iso_utc(probes[-1]["ts"]),
                           last_server_packet_time_utc=iso_utc(
                               [p for p in c["pkts"] if p["src"] == c["server"]][-1]["ts"]),
                           log_error_time_utc=iso_utc(errs[0][0]),
                           note="deciding packet = the client's own RST when it gives up "
                                "after 3 unanswered keep-alive probes"))
        return out, "%d unanswered keep-alive probes, then client RST (gives up)" % len(probes)

    if name == "keepalive_reset":
        c = C("keepalive")
        probes = ka_probes(c)
        assert probes, "no keep-alive probe"
        rst = first(c["pkts"], lambda p: p["src"] == c["server"] and p["flags"] & RST,
                    "RST answering the probe")
        assert rst["ts"] >= probes[0]["ts"] and rst["frame"] == probes[0]["frame"] + 1
        assert not any(p["flags"] & FIN for p in c["pkts"])
        errs = log_lines(meta, lambda r: r[1] == "ERROR")
        assert errs and "10054" in errs[0][4]
        out.append(finding("keepalive_reset", c, rst, t0,
                           probe_time_utc=iso_utc(probes[0]["ts"]),
                           log_error_time_utc=iso_utc(errs[0][0])))
        return out, "idle, keep-alive probe -> RST from server, reconnect ok"

    if name == "port_exhaustion":
        ok = [x for x in conns if x["server"] == srv]
        ports = {x["client"] for x in ok}
        assert len(ok) == meta["ok"] == 100 == len(ports), (len(ok), meta["ok"], len(ports))
        for x in ok:
            fins = [p for p in x["pkts"] if p["flags"] & FIN]
            assert len(fins) == 2 and fins[0]["src"] == x["client"], "client must FIN first"
        assert not rsts
        last = ok[-1]["pkts"][0]
        errs = log_lines(meta, lambda r: "WSAEADDRINUSE 10048" in r[4])
        assert len(errs) == 3
        out.append({"kind": "port_exhaustion", "client": CLIENT_IP, "server": srv,
                    "time_utc": iso_utc(errs[0][0]), "t_rel_s": round(errs[0][0] - t0, 3),
                    "frame": None,
                    "deciding_packet": "none: the failing connect() sends no SYN; last SYN "
                                       "is frame %d at %s (%s)" % (last["frame"],
                                       iso_utc(last["ts"]), desc(last)),
                    "connections": len(ok), "distinct_client_ports": len(ports),
                    "client_port_range": "40000-40099",
                    "last_syn_time_utc": iso_utc(last["ts"]),
                    "log_error_time_utc": iso_utc(errs[0][0])})
        return out, "100 short connections from 100 ports (client FIN first), then nothing"

    if name == "port_reuse":
        for first_role, reuse_role, tw_side in (
                ("server_timewait_first", "server_timewait_reuse", "server"),
                ("client_timewait_first", "client_timewait_reuse", "client")):
            c1 = C(first_role)
            assert M[first_role] == M[reuse_role]
            c2 = C(reuse_role, 1)
            fins = [p for p in c1["pkts"] if p["flags"] & FIN]
            assert len(fins) == 2
            closer = "server" if fins[0]["src"] == c1["server"] else "client"
            assert closer == tw_side
            syn = c2["pkts"][0]
            assert syn["flags"] == SYN
            assert any(p["flags"] == SYN | ACK for p in c2["pkts"]), "reuse failed"
            out.append(finding("port_reuse", c2, syn, t0,
                               previous_fin_time_utc=iso_utc(fins[-1]["ts"]),
                               seconds_since_previous_close=round(syn["ts"] - fins[-1]["ts"], 3),
                               time_wait_holder=tw_side))
        assert not rsts
        return out, "two 4-tuples each used twice: FIN/FIN then SYN on same 4-tuple (<2 s)"

    if name == "idle_reset":
        errs = log_lines(meta, lambda r: r[1] == "ERROR")
        for role in ("idle_after_exchange", "idle_no_data"):
            c = C(role)
            rst = first(c["pkts"], lambda p: p["src"] == c["server"] and p["flags"] & RST,
                        "RST")
            before = [p for p in c["pkts"] if p["ts"] < rst["ts"]]
            idle = rst["ts"] - before[-1]["ts"]
            assert 2.9 < idle < 3.6, idle
            assert not any(p["flags"] & FIN for p in c["pkts"])
            e = [r for r in errs if c["client"] in r[4]]
            assert e and "recv failed" in e[0][4]
            out.append(finding("idle_reset", c, rst, t0, idle_before_reset_s=round(idle, 3),
                               data_bytes_before=sum(p["len"] for p in before),
                               log_error_time_utc=iso_utc(e[0][0])))
        return out, "2 connections idle 3 s then server RST (no FIN, no pending request)"

    if name == "early_close":
        resets = [p for p in rsts if p["src"].startswith(CLIENT_IP)]
        assert len(resets) >= 6, "each early-closing client resets the late reply"
        for c in conns:
            fin = first(c["pkts"], lambda p: p["src"] == c["client"] and p["flags"] & FIN, "client FIN")
            data = first(c["pkts"], lambda p: p["src"] == c["server"] and p["len"] > 0, "reply")
            assert data["ts"] > fin["ts"], "the reply must come after the client's FIN"
        return out, "6 clients send a request and FIN, close before the reply; each late reply is reset"

    if name == "port_scan":
        syns = [p for p in pkts if p["flags"] == SYN]
        assert len({p["dport"] for p in syns}) >= 40, "scan covers 40+ ports"
        return out, "one host connects to 42 ports of the server host: 3 open, 39 refused"

    if name == "zero_window_stall":
        c = C("report")
        zero = [p for p in c["pkts"] if p["src"] == c["client"] and p["win"] == 0 and not p["flags"] & RST]
        assert zero, "the client's window must reach 0"
        rst = first(c["pkts"], lambda p: p["src"] == c["client"] and p["flags"] & RST, "client RST")
        assert rst["ts"] - zero[0]["ts"] > 5, "the stall lasts several seconds"
        return out, "client stops reading a streamed reply: window 0 for ~8 s while the server probes, then client RST"

    if name == "parallel_ports":
        refused = [p for p in rsts if p["sport"] == port + 1]
        assert refused, "the second port refuses"
        return out, "client tries two ports at once: one refuses (RST), the other is used normally"

    if name == "late_capture_stale":
        assert not any(p["flags"] & SYN for p in pkts if p["dst"] in (M["stale_orders"]["server"],)
                       and p["src"] in (M["stale_orders"]["client"], M["stale_quotes"]["client"])), \
            "the stale connections' handshakes must not be captured"
        errs = log_lines(meta, lambda r: "10054" in r[4])
        assert len(errs) == 2
        for i, role in enumerate(("stale_orders", "stale_quotes")):
            own = [p for p in pkts if {p["src"], p["dst"]} == {M[role]["client"], M[role]["server"]}]
            assert own and not own[0]["flags"] & SYN, "capture starts mid-connection"
            fin = first(own, lambda p: p["src"] == M[role]["server"] and p["flags"] & FIN, "server FIN")
            rst = first(own, lambda p: p["src"] == M[role]["server"] and p["flags"] & RST, "server RST")
            assert rst["ts"] > fin["ts"]
            c = {"client": M[role]["client"], "server": M[role]["server"]}
            out.append(finding("stale_connection", c, rst, t0, log_error_time_utc=iso_utc(errs[i][0]),
                               note="no handshake captured: roles come from the ports and the restart"))
        return out, "capture starts after 2 connections exist; server crash (FIN), restart, old connections reset"

    if name == "dropped_packets":
        c = C("download")
        data = [p for p in c["pkts"] if p["src"] == c["server"] and p["len"] > 0]
        seqs = [p["seq"] for p in data]
        assert len(seqs) != len(set(seqs)), "segments lost after the capture point are retransmitted %s" % (
            [(p["frame"], p["seq"] - seqs[0], p["len"]) for p in data[:60]],)
        assert meta["capture_dropped_frames"], "two ACKs removed"
        assert not rsts, "the transfer recovers"
        fins = [p for p in c["pkts"] if p["flags"] & FIN]
        assert len(fins) == 2
        return out, "150 KB download: %d server segments lost after the capture point and retransmitted, " \
            "2 server segments and 2 client ACKs missing from the capture; normal close" % (len(seqs) - len(set(seqs)))

    if name in ("stale_next_call", "stale_next_call_local"):
        errs = log_lines(meta, lambda r: "10054" in r[4])
        kills = meta["marks"]["server_killed"]
        assert len(errs) >= len(kills), "every crash is found at a later send"
        server_rsts = [p for p in rsts if p["src"] == srv]
        lags = []
        for r in errs:
            before = [p for p in server_rsts if p["ts"] < r[0] and p["dst"] in r[4]]
            assert before, "each 10054 follows a server RST on that connection"
            lags.append(r[0] - before[-1]["ts"])
        meta["lags_s"] = lags
        return out, "%d crashes; %d send() 10054s logged %.2f-%.2f s after their RSTs (next call); %d log lines" % (
            len(kills), len(errs), min(lags), max(lags), len(meta["log"]))

    raise ValueError(name)


def attach_log_lines(name, findings, meta):
    """Add the exact client log line(s) that belong to each finding."""
    by_time = {iso_utc(r[0]): r for r in meta["log"] if r[1] == "ERROR"}
    for f in findings:
        r = by_time.get(f.get("log_error_time_utc"))
        if r is None:
            continue
        f["log_error_line"] = format_record(r)
        if name in LOCAL_LOGS:
            f["local_log_error_line"] = format_record(r, LOCAL_OFFSET_S)


# --------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------

def need(tool, pkg):
    if shutil.which(tool) is None:
        sys.exit("generate.py: '%s' is missing. Install it with:\n"
                 "    apt-get update && apt-get install -y %s" % (tool, pkg))


def main(argv):
    if os.geteuid() != 0:
        sys.exit("generate.py: must run as root (sudo python3 samples/generate.py)")
    need("tcpdump", "tcpdump")
    need("iptables", "iptables")
    need("unshare", "util-linux")
    need("ip", "iproute2")
    need("ethtool", "ethtool")
    names = argv or [n for n, _ in SCENARIOS]
    for n in names:
        if n not in PORTS:
            sys.exit("unknown scenario %s (known: %s)" % (n, ", ".join(PORTS)))
    manifest_path = os.path.join(HERE, "scenarios.json")
    manifest = {}
    if argv and os.path.exists(manifest_path):
        with open(manifest_path) as f:
            manifest = {s["name"]: s for s in json.load(f)["scenarios"]}
    t_all = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="ipcscope-samples-")
    try:
        for name in names:
            t = time.monotonic()
            r = subprocess.run(["unshare", "-n", "--", sys.executable,
                                os.path.abspath(__file__), "--in-netns", name, tmp])
            if r.returncode != 0:
                sys.exit("scenario %s failed (exit %d)" % (name, r.returncode))
            with open(os.path.join(tmp, name + ".meta.json")) as f:
                meta = json.load(f)
            pcap = os.path.join(tmp, name + ".pcap")
            pkts = read_pcap(pcap)
            findings, summary = check_scenario(name, pkts, meta)
            attach_log_lines(name, findings, meta)
            logs = [name + "_client_utc.log"]
            if name in LOCAL_LOGS:
                logs.append(name + "_client_local.log")
            for fn in [name + ".pcap"] + logs:
                shutil.move(os.path.join(tmp, fn), os.path.join(HERE, fn))
            size = os.path.getsize(os.path.join(HERE, name + ".pcap"))
            assert size < MAX_PCAP.get(name, 200 * 1024), "%s.pcap too large (%d bytes)" % (name, size)
            entry = {
                "name": name,
                "pcap": name + ".pcap",
                "logs": [{"file": logs[0], "timezone": "UTC", "clock_offset_s": 0.0}],
                "client_host": CLIENT_IP,
                "server_endpoints": ["%s:%d" % (SERVER_IP, PORTS[name])],
                "capture_start_utc": iso_utc(pkts[0]["ts"]),
                "capture_end_utc": iso_utc(pkts[-1]["ts"]),
                "packets": len(pkts),
                "connections": meta["conns"],
                "summary": summary,
                "expected_findings": findings,
            }
            if name in LOCAL_LOGS:
                entry["logs"].append({"file": logs[1], "timezone": "UTC+01:00",
                                      "clock_offset_s": LOCAL_OFFSET_S,
                                      "note": "local time (UTC+01:00) and client clock "
                                              "0.8 s fast: log time = UTC + 3600.8 s"})
            manifest[name] = entry
            print("%-24s %3d packets %7d bytes %5.1fs  %s"
                  % (name, len(pkts), size, time.monotonic() - t, summary))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    order = [n for n, _ in SCENARIOS if n in manifest]
    doc = {
        "generator": "samples/generate.py",
        "generated_utc": iso_utc(time.time()),
        "time_base": "t_rel_s is seconds after the first packet of the pcap",
        "server_ip": SERVER_IP,
        "client_ip": CLIENT_IP,
        "scenarios": [manifest[n] for n in order],
    }
    with open(manifest_path, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print("all done in %.1fs; wrote %s" % (time.monotonic() - t_all, manifest_path))


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "--serve":
        serve_main(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif len(sys.argv) >= 2 and sys.argv[1] == "--in-netns":
        in_netns_main(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1:])
