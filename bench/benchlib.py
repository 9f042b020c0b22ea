"""The benchmark suite behind bench/run (and bench/profile).

linkerd-tcp against HAProxy (TCP mode, without and with forced splice), nginx
stream, socat and, for TLS, stunnel (and, for TLS passthrough by SNI, HAProxy
req.ssl_sni and nginx ssl_preread), all on loopback, all running at once on
their own ports, measured interleaved (round-robin over the peers, the order
rotated every round, repeated N times; medians reported) so that drift of the
machine hits every peer alike.  See doc/performance.md for what is measured and
how to read the table.

Runs with Debian's /usr/bin/python3 and the standard library only.
"""

import argparse
import csv
import datetime
import json
import os
import platform
import pwd
import re
import resource
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
RESULTS = os.path.join(BENCH, "results")
BUILD = os.path.join(BENCH, ".build")

# Debian packages and the command that shows each is there.
PACKAGES = [
    ("haproxy", "haproxy"),
    ("nginx", "nginx"),
    ("/usr/lib/nginx/modules/ngx_stream_module.so", "libnginx-mod-stream"),
    ("socat", "socat"),
    ("iperf3", "iperf3"),
    ("wrk", "wrk"),
    ("sockperf", "sockperf"),
    ("stunnel4", "stunnel4"),
    ("openssl", "openssl"),
    ("gcc", "gcc"),
    ("pkg-config", "pkg-config"),
    ("/usr/include/gnutls/gnutls.h", "libgnutls28-dev"),
]
OPTIONAL_PACKAGES = [("gnuplot", "gnuplot-nox")]
# The servers and clients of the real-client rows (redis, pg): installed in every mode when
# those rows are selected; if they cannot be, the rows read "n/a" and the run goes on.
PG_BIN = "/usr/lib/postgresql/15/bin"
PG_DB = "bench"
REDIS_PACKAGES = [("redis-server", "redis-server"), ("redis-benchmark", "redis-tools")]
PG_PACKAGES = [(PG_BIN + "/postgres", "postgresql-15"), (PG_BIN + "/initdb", "postgresql-15"),
               (PG_BIN + "/pg_ctl", "postgresql-15"), (PG_BIN + "/pgbench", "postgresql-15"),
               (PG_BIN + "/createdb", "postgresql-client-15"),
               (PG_BIN + "/pg_isready", "postgresql-client-15")]

MODES = {
    # reps: rounds over all peers; t_*: seconds per measurement; idle: connection counts;
    # idle_reps: rounds of the idle-memory measurement (each restarts every peer);
    # settle_max: seconds to wait at most for the kernel's memory to stop moving before one;
    # wake_n: connections of the wake-latency measurement, wake_pause_ms its silence;
    # redis_n / redis_pn: requests per redis-benchmark test (SET, GET) without / with -P 16;
    # t_pg: seconds of each pgbench run;
    # budget: seconds after which no further measurement starts
    "full": dict(reps=3, t_tput=2, tput_bytes=None, t_wrk=2, wrk_conc=50, t_lat=2, mps=10000,
                 redis_n=40000, redis_pn=400000, t_pg=3,
                 t_tls=2, tls_conc=50, idle=[1000, 9000], socat_idle_max=9000, idle_reps=3,
                 settle_max=8, wake_n=1000, wake_pause_ms=1500, budget=1200,
                 conn_nb=[1, 4], ka_nb=[1, 4], warmup=True, plot=True),
    "quick": dict(reps=2, t_tput=1, tput_bytes=None, t_wrk=1, wrk_conc=50, t_lat=1.5,
                  mps=10000, redis_n=25000, redis_pn=250000, t_pg=2,
                  t_tls=1, tls_conc=50, idle=[1000, 9000], socat_idle_max=1000,
                  idle_reps=3, settle_max=4, wake_n=1000, wake_pause_ms=1500, budget=640,
                  conn_nb=[1, 4], ka_nb=[1, 4], warmup=True, plot=True),
    "smoke": dict(reps=1, t_tput=1, tput_bytes="8M", t_wrk=1, wrk_conc=10, t_lat=1, mps=2000,
                  redis_n=2000, redis_pn=2000, t_pg=1,
                  t_tls=0.3, tls_conc=4, idle=[20], socat_idle_max=20, idle_reps=1,
                  settle_max=1, wake_n=20, wake_pause_ms=1500, budget=150,
                  conn_nb=[1], ka_nb=[4], warmup=False, plot=False),
}

# What --only can select, in the order they run.
TESTS = ["tput", "conn", "ka", "lat", "redis", "pg", "tls", "pt", "wake", "idle"]

# Peers: what each takes part in.  "direct" is the backend without a proxy: a reference.
PLAIN_PEERS = ["direct", "linkerd-tcp", "haproxy", "haproxy-splice", "nginx", "socat"]
TLS_PEERS = ["linkerd-tcp", "haproxy", "nginx", "stunnel"]
# TLS passthrough routed by SNI: the proxy reads the ClientHello's server name and forwards
# the TLS bytes untouched to a backend that terminates TLS ("direct": that backend itself).
PT_PEERS = ["direct", "linkerd-tcp", "haproxy", "nginx"]
PT_SNI = "bench.example.com"
PROXIES = [p for p in PLAIN_PEERS if p != "direct"]

BODY64 = "x" * 63 + "\n"

# Metrics: key -> (title, unit, better, target peer for SPEC section 11 or None)
METRICS = {}


def metric(key, title, unit, better, target=None):
    METRICS[key] = dict(key=key, title=title, unit=unit, better=better, target=target)


metric("tput1", "bulk throughput, 1 stream (iperf3)", "Gbit/s", "high", "haproxy-splice")
metric("tput8", "bulk throughput, 8 streams (iperf3)", "Gbit/s", "high", "haproxy-splice")
metric("tput1_cpu", "proxy CPU during 1-stream bulk", "% of a core", "low")
metric("tput8_cpu", "proxy CPU during 8-stream bulk", "% of a core", "low")
metric("tput1_cpu_gb", "proxy CPU per GB, 1 stream", "ms/GB", "low")
metric("conn1", "short connections/s, c=50, 1 backend (wrk, Connection: close)", "conn/s",
       "high", "haproxy")
metric("conn4", "short connections/s, c=50, 4 backends", "conn/s", "high", "haproxy")
metric("conn1_cpu", "proxy CPU per short connection, 1 backend", "us/conn", "low")
metric("ka1", "keep-alive requests/s, c=50, 1 backend (wrk)", "req/s", "high", "haproxy")
metric("ka4", "keep-alive requests/s, c=50, 4 backends", "req/s", "high", "haproxy")
metric("ka1_cpu", "proxy CPU per keep-alive request, 1 backend", "us/req", "low")
metric("lat_p50", "ping-pong 64 B RTT p50 (sockperf, fixed rate)", "us", "low")
metric("lat_p99", "ping-pong 64 B RTT p99", "us", "low", "haproxy")
metric("lat_p999", "ping-pong 64 B RTT p99.9", "us", "low")
metric("redis_set", "redis SET req/s, c=50 (redis-benchmark)", "req/s", "high", "haproxy")
metric("redis_get", "redis GET req/s, c=50 (redis-benchmark)", "req/s", "high", "haproxy")
metric("redis_set_p16", "redis SET req/s, c=50, pipeline 16", "req/s", "high")
metric("redis_get_p16", "redis GET req/s, c=50, pipeline 16", "req/s", "high")
metric("redis_cpu", "proxy CPU per redis request (SET+GET, no pipeline)", "us/req", "low")
metric("pg_tps", "PostgreSQL select-only tps, 16 clients (pgbench -S)", "tx/s", "high",
       "haproxy")
metric("pg_cpu", "proxy CPU per pgbench transaction", "us/tx", "low")
REDIS_METRICS = ["redis_set", "redis_get", "redis_set_p16", "redis_get_p16", "redis_cpu"]
PG_METRICS = ["pg_tps", "pg_cpu"]
metric("tls_hs", "TLS handshakes/s (+1 request), c=50", "hs/s", "high", "haproxy")
metric("tls_hs_cpu", "proxy CPU per TLS handshake", "us/hs", "low")
metric("tls_bulk", "TLS bulk throughput, 1 stream", "Gbit/s", "high")
metric("tls_bulk_cpu", "proxy CPU during TLS bulk", "% of a core", "low")
metric("pt_hs", "TLS passthrough handshakes/s (SNI routed), c=50", "hs/s", "high")
metric("pt_hs_cpu", "proxy CPU per passthrough handshake", "us/hs", "low")
metric("pt_bulk", "TLS passthrough bulk, 1 stream", "Gbit/s", "high")
metric("pt_bulk_cpu", "proxy CPU during passthrough bulk", "% of a core", "low")
metric("wake_unparked_p50", "64 B echo RTT p50, busy connection (loadgen wake)", "us", "low")
metric("wake_unparked_p99", "64 B echo RTT p99, busy connection", "us", "low")
metric("wake_p50", "64 B echo RTT p50, first after 1.5 s silence (woken)", "us", "low")
metric("wake_p99", "64 B echo RTT p99, first after 1.5 s silence (woken)", "us", "low")
metric("wake_delta_p50", "woken p50 minus busy p50", "us", "low")
metric("wake_delta_p99", "woken p99 minus busy p99 (issue 13: <= 100 us)", "us", "low",
       "max100")
# idle metrics are added per connection count at run time (idle_metrics)


def idle_metrics(n):
    """The idle-connection rows for n connections held; returns their keys."""
    keys = dict(mem="idle_mem%d" % n, own="idle_own%d" % n, attr="idle_attr%d" % n,
                avail="idle_avail%d" % n, pss="idle_pss%d" % n)
    if keys["mem"] not in METRICS:
        metric(keys["mem"], "whole memory per idle connection, %d held (kernel + PSS)" % n,
               "KiB/conn", "low")
        metric(keys["own"], "whole memory per idle connection, %d held, minus direct" % n,
               "KiB/conn", "low", "haproxy")
        metric(keys["attr"], "the same, kernel stacks and page tables per process, %d held" % n,
               "KiB/conn", "low")
        metric(keys["avail"], "MemAvailable drop per idle connection, %d held" % n,
               "KiB/conn", "low")
        metric(keys["pss"], "user-space PSS only per idle connection, %d held" % n,
               "KiB/conn", "low", "budget16" if n >= 9000 else None)
    return keys


def log(msg):
    print(msg, flush=True)


def which(cmd):
    if cmd.startswith("/"):
        return os.path.exists(cmd)
    return shutil.which(cmd, path="/usr/sbin:/usr/bin:/sbin:/bin:" + os.environ.get("PATH", ""))


# ------------------------------------------------------------------ setup


def ensure_packages(optional=True, only=()):
    """The required packages (the run stops without them), the real-client rows' ones for
    the tests in only (their rows read "n/a" without them) and, if optional, gnuplot."""
    missing = [pkg for path, pkg in PACKAGES if not which(path)]
    soft = (REDIS_PACKAGES if "redis" in only else []) + (PG_PACKAGES if "pg" in only else [])
    opt = [pkg for path, pkg in OPTIONAL_PACKAGES if not which(path)] if optional else []
    opt = list(dict.fromkeys([pkg for path, pkg in soft if not which(path)] + opt))
    if not missing and not opt:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    log("installing from Debian: " + " ".join(missing + opt))

    def install(pkgs):
        return subprocess.run(sudo + ["apt-get", "install", "-y", "-q"] + pkgs, env=env,
                              stdout=subprocess.DEVNULL).returncode == 0

    if not install(missing + opt):
        subprocess.run(sudo + ["apt-get", "update", "-q"], env=env, stdout=subprocess.DEVNULL)
        if missing and not install(missing):
            sys.exit("bench: cannot install " + " ".join(missing))
        if opt and not install(opt):
            for pkg in opt:  # one by one: what can be installed is
                install([pkg])
    still = [pkg for path, pkg in PACKAGES if not which(path)]
    if still:
        sys.exit("bench: still missing after install: " + " ".join(still))


def find_linkerd_tcp():
    """LTCP_BIN, else an in-tree build, else an out-of-tree build in bench/.build.

    The out-of-tree build keeps the source tree unconfigured, so that the VPATH
    builds of .ci/run and of other developers keep working."""
    env = os.environ.get("LTCP_BIN")
    if env:
        if not os.access(env, os.X_OK):
            sys.exit("bench: LTCP_BIN=%s is not executable" % env)
        return env
    intree = os.path.join(ROOT, "src", "linkerd-tcp")
    if os.access(intree, os.X_OK):
        return intree
    out = os.path.join(BUILD, "src", "linkerd-tcp")
    os.makedirs(BUILD, exist_ok=True)
    blog = os.path.join(BUILD, "build.log")
    with open(blog, "w") as f:
        if not os.path.exists(os.path.join(ROOT, "configure")):
            log("building linkerd-tcp: ./autogen.sh")
            subprocess.run(["./autogen.sh"], cwd=ROOT, stdout=f, stderr=f, check=False)
        if not os.path.exists(os.path.join(BUILD, "Makefile")):
            log("building linkerd-tcp: configure (in bench/.build)")
            subprocess.run([os.path.join(ROOT, "configure")], cwd=BUILD, stdout=f, stderr=f,
                           check=False)
        log("building linkerd-tcp: make (in bench/.build)")
        rc = subprocess.run(["make", "-j%d" % (os.cpu_count() or 2), "src/linkerd-tcp"],
                            cwd=BUILD, stdout=f, stderr=f).returncode
    if rc != 0:
        if os.access(out, os.X_OK):
            log("bench: make failed (see %s); using the previous build" % blog)
        else:
            sys.exit("bench: cannot build linkerd-tcp, see %s" % blog)
    return out


def build_loadgen():
    src = os.path.join(BENCH, "loadgen.c")
    out = os.path.join(BUILD, "loadgen")
    os.makedirs(BUILD, exist_ok=True)
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(src):
        return out
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "gnutls"], capture_output=True,
                           text=True, check=True).stdout.split()
    subprocess.run(["gcc", "-O2", "-Wall", "-pthread", src, "-o", out] + flags, check=True)
    return out


def make_cert(work):
    key, cert = os.path.join(work, "key.pem"), os.path.join(work, "cert.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "7", "-subj", "/CN=bench.test", "-addext",
                    "subjectAltName=DNS:bench.test,DNS:" + PT_SNI], check=True, capture_output=True)
    combined = os.path.join(work, "combined.pem")
    with open(combined, "w") as f:
        f.write(open(cert).read() + open(key).read())
    return key, cert, combined


def port_free(port):
    s = socket.socket()
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def choose_base(first):
    """A base port whose range (base .. base+999) is free on 127.0.0.1."""
    for base in range(first, 60000, 1000):
        if all(port_free(p) for p in range(base, base + 1000, 1) if p % 100 < 17):
            return base
    sys.exit("bench: no free port range")


# ------------------------------------------------------------------ processes


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class Proc:
    """A process this run started, in its own process group (its children too)."""

    def __init__(self, name, argv, work, env=None, append=False):
        self.name = name
        self.logpath = os.path.join(work, name + ".log")
        self.logf = open(self.logpath, "a" if append else "w")
        e = dict(os.environ)
        e.update(env or {})
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logf,
                                  stderr=subprocess.STDOUT, env=e, start_new_session=True,
                                  preexec_fn=raise_nofile)
        self.pgid = self.p.pid

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.p.poll() is None:
            try:
                os.killpg(self.pgid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        # children left in the group (socat forks, nginx workers)
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self.logf.close()

    def tail(self, n=15):
        try:
            return "".join(open(self.logpath).readlines()[-n:])
        except OSError:
            return ""


def group_pids(pgids):
    """PIDs of every process in the given process groups."""
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            st = open("/proc/%s/stat" % d).read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if int(fields[2]) in pgids:  # pgrp
            pids.append(int(d))
    return pids


CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pgids):
    """utime+stime of the groups' processes, plus that of their reaped children."""
    total = 0
    for pid in group_pids(pgids):
        try:
            st = open("/proc/%d/stat" % pid).read()
        except OSError:
            continue
        f = st[st.rindex(")") + 2:].split()
        total += int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])
    return total / CLK


def ctx_switches(pids):
    """Voluntary + involuntary context switches of all threads of pids (/proc)."""
    n = 0
    for pid in pids:
        try:
            tasks = os.listdir("/proc/%d/task" % pid)
        except OSError:
            continue
        for t in tasks:
            try:
                for line in open("/proc/%d/task/%s/status" % (pid, t)):
                    if "ctxt_switches" in line:
                        n += int(line.split()[1])
            except OSError:
                pass
    return n


def pss_kib(pgids):
    total = 0
    for pid in group_pids(pgids):
        try:
            for line in open("/proc/%d/smaps_rollup" % pid):
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
                    break
        except OSError:
            continue
    return total


KERNEL_MEM = ("KernelStack", "PageTables", "Slab")


def meminfo():
    """/proc/meminfo in KiB."""
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            k, v = line.split(":", 1)
            out[k] = int(v.split()[0])
    return out


def kernel_kib(m):
    """The kernel memory that connections and threads cost: kernel stacks, page tables, slab."""
    return sum(m[k] for k in KERNEL_MEM)


def kernel_stack_kib():
    """The kernel stack of one thread (THREAD_SIZE): KernelStack over the threads on the
    machine, rounded to a power of two (16 KiB on x86-64)."""
    threads = 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                threads += len(os.listdir("/proc/%s/task" % d))
            except OSError:
                pass
    per = meminfo()["KernelStack"] / max(threads, 1)
    return min((4, 8, 16, 32, 64), key=lambda x: abs(x - per))


def threads_pte_kib(pgids):
    """Threads and page tables (VmPTE, KiB) of the processes in the given groups."""
    threads = pte = 0
    for pid in group_pids(pgids):
        try:
            for line in open("/proc/%d/status" % pid):
                if line.startswith("Threads:"):
                    threads += int(line.split()[1])
                elif line.startswith("VmPTE:"):
                    pte += int(line.split()[1])
        except OSError:
            continue
    return threads, pte


def wait_port(port, secs=10, proc=None):
    end = time.time() + secs
    while time.time() < end:
        if proc is not None and not proc.alive():
            return False
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def established_to(port):
    """Established TCP sockets on this host whose remote port is `port`."""
    n = 0
    hexport = ":%04X" % port
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split(None, 4)
                    if parts[3] == "01" and parts[2].endswith(hexport):
                        n += 1
        except OSError:
            pass
    return n


def busy_seconds():
    """CPU seconds the whole machine spent outside idle and iowait (/proc/stat)."""
    f = open("/proc/stat").readline().split()[1:]
    v = [int(x) for x in f]
    return (sum(v[:8]) - v[3] - v[4]) / CLK


def version(argv, pattern=None):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        out = (r.stdout + r.stderr).strip().splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    for line in out:
        if pattern is None or re.search(pattern, line):
            return line.strip()
    return out[0].strip() if out else "?"


def debver(pkg):
    r = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
    return r.stdout.strip() or "?"


# ------------------------------------------------------------------ the bench


class Bench:
    def __init__(self, args):
        self.args = args
        self.mode = args.mode
        self.cfg = dict(MODES[args.mode])
        if args.reps:
            self.cfg["reps"] = self.cfg["idle_reps"] = args.reps
        if args.idle:
            self.cfg["idle"] = [int(x) for x in args.idle.split(",")]
        if args.conc:
            self.cfg["wrk_conc"] = args.conc
        self.work = tempfile.mkdtemp(prefix="ltcp-bench-")
        self.procs = []
        self.peer_procs = {}  # peer -> [Proc]
        self.samples = []  # dicts: metric, peer, value, rep, extra
        self.errors = []
        self.notes = {}  # (metric, peer) -> note shown instead of a number
        self.t0 = time.time()
        self.load0 = list(os.getloadavg())
        self.busy0 = busy_seconds()
        self.own0 = self.own_cpu()
        self.ltcp = None
        self.loadgen = None
        self.gone_cpu = 0.0  # CPU seconds of peer processes stopped during the run
        self.idle_whole = {}  # (n, rep, peer) -> whole memory per idle connection, KiB
        self.idle_partial = []  # idle measurements that did not hold every connection
        self.only = set(args.only.split(",")) if args.only else set(TESTS)
        # the real-client rows' servers (start_redis, start_pg): why their rows read n/a
        self.redis_why = self.pg_why = self.pg_data = None

    # ---- ports: backends at base+0..; peer i fronts at base+100*(i+1)+k
    def ports(self):
        b = self.base
        self.p_http = [b + 1, b + 2, b + 3, b + 4]
        self.p_status = b + 5
        self.p_iperf = b + 6
        self.p_sockperf = b + 7
        self.p_sink = b + 8
        self.p_admin = b + 9
        self.p_admin_tls = b + 10
        self.p_echo = b + 11
        self.p_tls_http = b + 12  # the backend nginx terminating TLS: /64 (passthrough rows)
        self.p_tls_sink = b + 13  # the backend nginx terminating TLS, on to the sink
        self.p_admin_pt = b + 14
        self.p_redis = b + 15  # redis-server (the redis rows)
        self.p_pg = b + 16  # PostgreSQL (the pg rows)
        self.fronts = {}
        for i, peer in enumerate(PLAIN_PEERS + ["stunnel"]):
            f = b + 100 * (i + 1)
            self.fronts[peer] = dict(http1=f + 1, http4=f + 2, iperf=f + 3, sockperf=f + 4,
                                     tlshttp=f + 5, tlssink=f + 6, echo=f + 7,
                                     pthttp=f + 8, ptsink=f + 9, redis=f + 10, pg=f + 11)
        self.fronts["direct"] = dict(http1=self.p_http[0], http4=None, iperf=self.p_iperf,
                                     sockperf=self.p_sockperf, echo=self.p_echo,
                                     pthttp=self.p_tls_http, ptsink=self.p_tls_sink,
                                     redis=self.p_redis, pg=self.p_pg)

    def start(self, name, argv, env=None, peer=None, append=False):
        p = Proc(name, argv, self.work, env, append)
        self.procs.append(p)
        if peer:
            self.peer_procs.setdefault(peer, []).append(p)
        return p

    def own_cpu(self):
        """CPU seconds of this run: this process, its reaped children (load tools)
        and every process group it started (peers, backends)."""
        t = os.times()
        return (t.user + t.system + t.children_user + t.children_system + getattr(self, "gone_cpu", 0.0) +
                cpu_seconds([p.pgid for p in getattr(self, "procs", [])]))

    def foreign_cpu(self):
        """Share of the machine's CPU that other processes used since the start."""
        wall = time.time() - self.t0
        other = (busy_seconds() - self.busy0) - (self.own_cpu() - self.own0)
        return max(0.0, other) / (wall * (os.cpu_count() or 1))

    def pgids(self, peer):
        return [p.pgid for p in self.peer_procs.get(peer, [])]

    def over_budget(self):
        return time.time() - self.t0 > self.cfg["budget"]

    def note(self, key, peer, text):
        self.notes[(key, peer)] = text

    def error(self, what):
        log("  ERROR: " + what)
        self.errors.append(what)

    def sample(self, key, peer, value, rep, **extra):
        self.samples.append(dict(metric=key, peer=peer, value=value, rep=rep, **extra))

    # ---- configs
    def write(self, name, text):
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def start_backends(self):
        w = self.work
        os.makedirs(os.path.join(w, "nginx-backend"), exist_ok=True)
        listens = "".join("    listen 127.0.0.1:%d backlog=4096;\n" % p for p in self.p_http)
        conf = self.write("nginx-backend.conf", f"""
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
master_process on;
worker_processes 2;
worker_rlimit_nofile 20000;
pid {w}/nginx-backend.pid;
error_log {w}/nginx-backend.err warn;
events {{ worker_connections 19500; }}
http {{
  access_log off;
  default_type text/plain;
  client_body_temp_path {w}/nginx-backend;
  proxy_temp_path {w}/nginx-backend;
  fastcgi_temp_path {w}/nginx-backend;
  uwsgi_temp_path {w}/nginx-backend;
  scgi_temp_path {w}/nginx-backend;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_header_timeout 300s;
  tcp_nodelay on;
  server {{
{listens}    location = /64 {{ return 200 "{BODY64[:-1]}\\n"; }}
  }}
  server {{
    listen 127.0.0.1:{self.p_status};
    location = /status {{ stub_status; }}
  }}
  server {{
    listen 127.0.0.1:{self.p_tls_http} ssl backlog=4096;
    ssl_certificate {self.cert};
    ssl_certificate_key {self.key};
    location = /64 {{ return 200 "{BODY64[:-1]}\\n"; }}
  }}
}}
stream {{
  server {{
    listen 127.0.0.1:{self.p_tls_sink} ssl backlog=4096;
    ssl_certificate {self.cert};
    ssl_certificate_key {self.key};
    proxy_pass 127.0.0.1:{self.p_sink};
  }}
}}
""")
        self.start("backend-nginx", ["nginx", "-e", w + "/nginx-backend.err", "-p", w, "-c",
                                     conf])
        self.start("backend-iperf3", ["iperf3", "-s", "-B", "127.0.0.1", "-p",
                                      str(self.p_iperf)])
        self.start("backend-sockperf", ["sockperf", "server", "--tcp", "-i", "127.0.0.1", "-p",
                                        str(self.p_sockperf)])
        self.start("backend-sink", [self.loadgen, "sink", str(self.p_sink),
                                    str(self.cfg["budget"] + 300)])
        self.start("backend-echo", [self.loadgen, "echo", str(self.p_echo),
                                    str(self.cfg["budget"] + 300)])
        for port in self.p_http + [self.p_status, self.p_iperf, self.p_sockperf, self.p_sink,
                                   self.p_echo, self.p_tls_http, self.p_tls_sink]:
            if not wait_port(port):
                sys.exit("bench: backend on port %d did not start:\n%s" % (
                    port, "\n".join(p.name + ":\n" + p.tail() for p in self.procs)))

    def start_redis(self):
        """redis-server for the redis rows, only if they are selected: in memory only (no
        snapshots, no append-only file).  If it is missing or does not start, self.redis_why
        says why (the rows then read "n/a")."""
        self.redis_why = None
        if "redis" not in self.only:
            return
        missing = [pkg for path, pkg in REDIS_PACKAGES if not which(path)]
        if missing:
            self.redis_why = "not installed: " + " ".join(missing)
            return
        d = os.path.join(self.work, "redis")
        os.makedirs(d, exist_ok=True)
        p = self.start("backend-redis", ["redis-server", "--port", str(self.p_redis), "--bind",
                                         "127.0.0.1", "--protected-mode", "no", "--save", "",
                                         "--appendonly", "no", "--dir", d, "--daemonize", "no",
                                         "--logfile", "", "--loglevel", "warning"])
        if not wait_port(self.p_redis, 10, p):
            self.redis_why = "redis-server did not start: " + p.tail(3).strip()

    def pg_user(self):
        """The argv prefix that runs a PostgreSQL server program: as the postgres user when
        this runs as root (the server refuses root), else as this user."""
        if os.geteuid() != 0:
            return []
        pw = pwd.getpwnam("postgres")
        return ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid,
                "--init-groups", "--"]

    def start_pg(self):
        """A PostgreSQL 15 cluster of its own for the pg rows, only if they are selected:
        initdb in the work directory (trust authentication), the server listening on
        127.0.0.1:p_pg only, its unix socket in the work directory, fsync off; a database
        filled by pgbench -i -s 1, straight to the server.  If any of it fails,
        self.pg_why says why (the rows then read "n/a")."""
        self.pg_why = None
        self.pg_data = None
        if "pg" not in self.only:
            return
        missing = sorted({pkg for path, pkg in PG_PACKAGES if not which(path)})
        if missing:
            self.pg_why = "not installed: " + " ".join(missing)
            return
        try:
            asuser = self.pg_user()
        except KeyError:
            self.pg_why = "no postgres user to run the server as"
            return
        d = os.path.join(self.work, "pg")
        os.makedirs(d, mode=0o700, exist_ok=True)
        if asuser:
            pw = pwd.getpwnam("postgres")
            os.chmod(self.work, 0o711)  # the server's user passes through to its directory
            os.chown(d, pw.pw_uid, pw.pw_gid)
        data = os.path.join(d, "data")
        r = subprocess.run(asuser + [PG_BIN + "/initdb", "-D", data, "-U", "postgres", "-A",
                                     "trust", "-E", "UTF8", "--locale=C", "--no-sync"],
                           cwd=d, capture_output=True, text=True)
        if r.returncode != 0:
            self.pg_why = "initdb failed: " + (r.stderr or r.stdout).strip()[-300:]
            return
        self.pg_data = data
        p = self.start("backend-postgres", asuser + [
            PG_BIN + "/postgres", "-D", data, "-p", str(self.p_pg),
            "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=" + d,
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=100"])
        end = time.time() + 30
        while True:
            r = subprocess.run([PG_BIN + "/pg_isready", "-q", "-h", "127.0.0.1", "-p",
                                str(self.p_pg), "-U", "postgres", "-d", "postgres"],
                               capture_output=True)
            if r.returncode == 0:
                break
            if not p.alive() or time.time() > end:
                self.pg_why = "postgres did not start: " + p.tail(3).strip()
                return
            time.sleep(0.2)
        conn = ["-h", "127.0.0.1", "-p", str(self.p_pg), "-U", "postgres"]
        for argv in ([PG_BIN + "/createdb"] + conn + [PG_DB],
                     [PG_BIN + "/pgbench", "-i", "-s", "1", "-q"] + conn + [PG_DB]):
            rc, out, err = self.run(argv, 120)
            if rc != 0:
                self.pg_why = "%s failed: %s" % (os.path.basename(argv[0]),
                                                 (err or out).strip()[-300:])
                return

    def stop_pg(self):
        """pg_ctl stop -m immediate (the server and its backends quit at once); the process
        group is killed afterwards anyway (cleanup)."""
        if not self.pg_data:
            return
        try:
            subprocess.run(self.pg_user() + [PG_BIN + "/pg_ctl", "stop", "-D", self.pg_data,
                                              "-m", "immediate", "-w", "-t", "10"],
                           cwd=os.path.dirname(self.pg_data), capture_output=True, timeout=20)
        except (OSError, KeyError, subprocess.TimeoutExpired):
            pass
        self.pg_data = None

    def ltcp_config(self, tls=False, relay_threads=None, idle=False, pt=False):
        """linkerd-tcp with its defaults: no relay_threads (SPEC section 11 compares the
        default pool; idle connections park) unless relay_threads is given (bench/profile).
        idle: only the http1 listener (the idle-memory measurement).  pt: the TLS
        passthrough listeners (SNI routed to the backend that terminates TLS)."""
        f = self.fronts["linkerd-tcp"]
        if pt:
            x = "\n        server_names: [%s]\n        sni_passthrough: true" % PT_SNI
            proxies = [("pthttp", f["pthttp"], [self.p_tls_http], x),
                       ("ptsink", f["ptsink"], [self.p_tls_sink], x)]
            admin = self.p_admin_pt
        elif not tls:
            proxies = [("http1", f["http1"], self.p_http[:1], ""),
                       ("http4", f["http4"], self.p_http, ""),
                       ("iperf", f["iperf"], [self.p_iperf], ""),
                       ("sockperf", f["sockperf"], [self.p_sockperf], ""),
                       ("echo", f["echo"], [self.p_echo], ""),
                       ("redis", f["redis"], [self.p_redis], ""),
                       ("pg", f["pg"], [self.p_pg], "")]
            admin = self.p_admin
        else:
            t = ("\n        tls:\n          private_key_path: %s\n          cert_paths: [%s]"
                 % (self.key, self.cert))
            proxies = [("tlshttp", f["tlshttp"], self.p_http[:1], t),
                       ("tlssink", f["tlssink"], [self.p_sink], t)]
            admin = self.p_admin_tls
        text = "admin:\n  addr: 127.0.0.1:%d\n" % admin
        relay_threads = relay_threads or self.args.relay_threads
        if relay_threads:
            text += "relay_threads: %d\n" % relay_threads
        if self.args.park_idle_ms is not None:
            text += "park_idle_ms: %d\n" % self.args.park_idle_ms
        text += "buffer_size: 16384\nproxies:\n"
        if idle:
            proxies = proxies[:1]
        for label, front, eps, extra in proxies:
            text += "  - label: %s\n    servers:\n      - addr: 127.0.0.1:%d%s\n    endpoints:\n" % (
                label, front, extra)
            for e in eps:
                text += "      - addr: 127.0.0.1:%d\n" % e
        return self.write("linkerd-tcp%s.yml" % ("-pt" if pt else "-tls" if tls else
                                                 "-idle" if idle else ""), text)

    def haproxy_config(self, peer, splice, idle=False):
        f = self.fronts[peer]
        maxconn = max(self.cfg["idle"]) + 300
        lines = ["global", "  maxconn %d" % maxconn, "  maxpipes 256", "  nbthread 2",
                 "  ssl-server-verify none", "defaults", "  mode tcp", "  maxconn %d" % maxconn,
                 "  timeout connect 5s", "  timeout client 300s", "  timeout server 300s"]
        if splice:
            lines += ["  option splice-request", "  option splice-response"]

        def listen(name, port, servers, ssl_bind=False):
            out = ["listen %s" % name,
                   "  bind 127.0.0.1:%d%s" % (port, " ssl crt %s" % self.combined if ssl_bind
                                              else "") + " backlog 4096",
                   "  balance leastconn"]
            out += ["  server s%d 127.0.0.1:%d" % (i, s) for i, s in enumerate(servers)]
            return out

        lines += listen("http1", f["http1"], self.p_http[:1])
        if idle:
            return self.write(peer + "-idle.cfg", "\n".join(lines) + "\n")
        lines += listen("http4", f["http4"], self.p_http)
        lines += listen("iperf", f["iperf"], [self.p_iperf])
        lines += listen("sockperf", f["sockperf"], [self.p_sockperf])
        lines += listen("echo", f["echo"], [self.p_echo])
        lines += listen("redis", f["redis"], [self.p_redis])
        lines += listen("pg", f["pg"], [self.p_pg])
        if not splice:
            lines += listen("tlshttp", f["tlshttp"], self.p_http[:1], True)
            lines += listen("tlssink", f["tlssink"], [self.p_sink], True)
            for name, port, to in (("pthttp", f["pthttp"], self.p_tls_http),
                                   ("ptsink", f["ptsink"], self.p_tls_sink)):
                lines += ["frontend %s" % name, "  bind 127.0.0.1:%d backlog 4096" % port,
                          "  tcp-request inspect-delay 5s",
                          "  tcp-request content accept if { req.ssl_hello_type 1 }",
                          "  use_backend %s_be if { req.ssl_sni -i %s }" % (name, PT_SNI),
                          "backend %s_be" % name, "  server s0 127.0.0.1:%d" % to]
        return self.write(peer + ".cfg", "\n".join(lines) + "\n")

    def nginx_config(self, idle=False):
        f, w = self.fronts["nginx"], self.work
        ups = "    upstream h4 {\n      least_conn;\n%s    }\n" % "".join(
            "      server 127.0.0.1:%d;\n" % p for p in self.p_http)
        ssl_ = "ssl_certificate %s; ssl_certificate_key %s;" % (self.cert, self.key)

        def srv(port, to, tls=False):
            return "    server { listen 127.0.0.1:%d%s backlog=4096; %s proxy_pass %s; }\n" % (
                port, " ssl" if tls else "", ssl_ if tls else "", to)

        servers = srv(f["http1"], "127.0.0.1:%d" % self.p_http[0])
        if not idle:
            servers = ups + servers + "".join((
                srv(f["http4"], "h4"), srv(f["iperf"], "127.0.0.1:%d" % self.p_iperf),
                srv(f["sockperf"], "127.0.0.1:%d" % self.p_sockperf),
                srv(f["echo"], "127.0.0.1:%d" % self.p_echo),
                srv(f["redis"], "127.0.0.1:%d" % self.p_redis),
                srv(f["pg"], "127.0.0.1:%d" % self.p_pg),
                srv(f["tlshttp"], "127.0.0.1:%d" % self.p_http[0], True),
                srv(f["tlssink"], "127.0.0.1:%d" % self.p_sink, True)))
            for name, to in (("pthttp", self.p_tls_http), ("ptsink", self.p_tls_sink)):
                servers += ("    upstream %s_be { server 127.0.0.1:%d; }\n"
                            "    map $ssl_preread_server_name $%s { %s %s_be; }\n"
                            "    server { listen 127.0.0.1:%d backlog=4096; ssl_preread on;"
                            " proxy_pass $%s; }\n" % (name, to, name, PT_SNI, name,
                                                      f[name], name))
        return self.write("nginx-proxy%s.conf" % ("-idle" if idle else ""), f"""
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
master_process on;
worker_processes 2;
worker_rlimit_nofile 20000;
pid {w}/nginx-proxy.pid;
error_log {w}/nginx-proxy.err warn;
events {{ worker_connections 19500; }}
stream {{
{servers}}}
""")

    def stunnel_config(self):
        f = self.fronts["stunnel"]
        return self.write("stunnel.conf", f"""foreground = yes
pid =
debug = 4
[tlshttp]
accept = 127.0.0.1:{f["tlshttp"]}
connect = 127.0.0.1:{self.p_http[0]}
cert = {self.cert}
key = {self.key}
[tlssink]
accept = 127.0.0.1:{f["tlssink"]}
connect = 127.0.0.1:{self.p_sink}
cert = {self.cert}
key = {self.key}
""")

    def start_peer(self, peer, restart=False, idle=False):
        """Starts one plain peer (a proxy of PROXIES) with its configuration, or with only
        its http1 listener (idle)."""
        a = restart  # a restart appends to the log of the first start
        if peer == "linkerd-tcp":
            self.start("linkerd-tcp", [self.ltcp, self.ltcp_config(idle=idle)],
                       {"LINKERD_TCP_LOG": "warn"}, peer="linkerd-tcp", append=a)
        elif peer in ("haproxy", "haproxy-splice"):
            self.start(peer, ["haproxy", "-db", "-f",
                              self.haproxy_config(peer, peer == "haproxy-splice", idle)],
                       peer=peer, append=a)
        elif peer == "nginx":
            self.start("nginx", ["nginx", "-e", self.work + "/nginx-proxy.err", "-p", self.work,
                                 "-c", self.nginx_config(idle)], peer="nginx", append=a)
        elif peer == "socat":
            f = self.fronts["socat"]
            kinds = (("http1", self.p_http[0]), ("iperf", self.p_iperf),
                     ("sockperf", self.p_sockperf), ("echo", self.p_echo),
                     ("redis", self.p_redis), ("pg", self.p_pg))
            for kind, to in kinds[:1] if idle else kinds:
                self.start("socat-" + kind,
                           ["socat", "TCP-LISTEN:%d,bind=127.0.0.1,fork,reuseaddr,backlog=4096,"
                            "nodelay" % f[kind], "TCP:127.0.0.1:%d,nodelay" % to],
                           peer="socat", append=a)
        else:
            raise ValueError(peer)

    def stop_peer(self, peer):
        """Stops every process of a peer (its CPU time stays counted as the bench's own)."""
        procs = self.peer_procs.pop(peer, [])
        self.gone_cpu += cpu_seconds([p.pgid for p in procs])
        for p in procs:
            p.stop()
            self.procs.remove(p)

    @staticmethod
    def peer_kinds(peer):
        """The listeners (keys of fronts) a peer serves."""
        if peer == "stunnel":
            return ["tlshttp", "tlssink"]
        if peer == "socat":
            return ["http1", "iperf", "sockperf", "echo", "redis", "pg"]
        kinds = ["http1", "http4", "iperf", "sockperf", "echo", "redis", "pg"]
        if peer in ("haproxy", "nginx"):
            kinds += ["pthttp", "ptsink"]
        return kinds if peer == "haproxy-splice" else kinds + ["tlshttp", "tlssink"]

    def start_peers(self):
        env = {"LINKERD_TCP_LOG": "warn"}
        for peer in PROXIES:
            self.start_peer(peer)
        self.start("stunnel", ["stunnel4", self.stunnel_config()], peer="stunnel")
        self.tls_ok = {"haproxy": True, "nginx": True, "stunnel": True}
        # linkerd-tcp's TLS listener runs in its own process: a configuration it
        # cannot load yet must not keep the plain measurements from running.
        tcfg = self.ltcp_config(tls=True)
        chk = subprocess.run([self.ltcp, "-n", tcfg], capture_output=True, text=True)
        if chk.returncode == 0:
            p = self.start("linkerd-tcp-tls", [self.ltcp, tcfg], env, peer="linkerd-tcp-tls")
            self.tls_ok["linkerd-tcp"] = wait_port(self.fronts["linkerd-tcp"]["tlshttp"], 5, p) \
                and self.tls_probe(self.fronts["linkerd-tcp"]["tlshttp"])
            if not self.tls_ok["linkerd-tcp"]:
                self.ltcp_tls_why = "TLS listener does not handshake"
        else:
            self.tls_ok["linkerd-tcp"] = False
            self.ltcp_tls_why = (chk.stdout + chk.stderr).strip().splitlines()[-1:] or ["?"]
            self.ltcp_tls_why = "config rejected: " + self.ltcp_tls_why[0]
        if not self.tls_ok["linkerd-tcp"]:
            log("linkerd-tcp TLS: n/a (not implemented: %s)" % self.ltcp_tls_why)
        failed = []
        for peer in PROXIES + ["stunnel"]:
            for kind in self.peer_kinds(peer):
                procs = self.peer_procs[peer]
                if not wait_port(self.fronts[peer][kind], 10):
                    failed.append("%s %s (port %d)" % (peer, kind, self.fronts[peer][kind]))
                    for p in procs:
                        log("--- %s log:\n%s" % (p.name, p.tail()))
        if failed:
            self.error("peers did not start: " + ", ".join(failed))
        for peer in ("haproxy", "nginx", "stunnel"):
            if not self.tls_probe(self.fronts[peer]["tlshttp"]):
                self.error("%s: TLS probe failed" % peer)
        self.start_pt()

    def start_pt(self):
        """linkerd-tcp's passthrough listeners, in a process of their own (their CPU apart;
        a configuration this build rejects leaves the other rows alone), then a probe of
        every passthrough front: a TLS request with the SNI name that the backend answers."""
        self.pt_ok, self.pt_why = {}, {}
        pcfg = self.ltcp_config(pt=True)
        chk = subprocess.run([self.ltcp, "-n", pcfg], capture_output=True, text=True)
        if chk.returncode == 0:
            p = self.start("linkerd-tcp-pt", [self.ltcp, pcfg], {"LINKERD_TCP_LOG": "warn"},
                           peer="linkerd-tcp-pt")
            for kind in ("pthttp", "ptsink"):
                if not wait_port(self.fronts["linkerd-tcp"][kind], 10, p):
                    self.pt_why["linkerd-tcp"] = "did not start: " + p.tail(3).strip()
        else:
            why = ((chk.stdout + chk.stderr).strip().splitlines() or ["?"])[-1]
            self.pt_why["linkerd-tcp"] = "config rejected: " + why
        for peer in PT_PEERS:
            if peer not in self.pt_why and not self.tls_probe(self.fronts[peer]["pthttp"],
                                                              PT_SNI):
                self.pt_why[peer] = "TLS passthrough probe failed"
            self.pt_ok[peer] = peer not in self.pt_why
            if not self.pt_ok[peer]:
                if peer == "linkerd-tcp":
                    log("linkerd-tcp TLS passthrough: n/a (%s)" % self.pt_why[peer])
                else:
                    self.error("%s: %s" % (peer, self.pt_why[peer]))

    def tls_probe(self, port, sni="bench.test"):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=3) as s:
                with ctx.wrap_socket(s, server_hostname=sni) as t:
                    t.sendall(b"GET /64 HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n")
                    data = b""
                    while True:
                        try:
                            d = t.recv(4096)
                        except (ssl.SSLError, OSError):
                            break
                        if not d:
                            break
                        data += d
            return data.startswith(b"HTTP/1.1 200")
        except (OSError, ssl.SSLError):
            return False

    # ---- measurements
    def run(self, argv, timeout):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
            return r.returncode, r.stdout, r.stderr
        except subprocess.TimeoutExpired:
            return -1, "", "timed out after %ss" % timeout

    def measure(self, peer, fn):
        """Runs fn(), returning (wall seconds, the peer's CPU seconds, fn's result)."""
        g = self.pgids(peer)
        c0, t0 = cpu_seconds(g), time.time()
        r = fn()
        return time.time() - t0, cpu_seconds(g) - c0, r

    def backend_accepts(self):
        try:
            with socket.create_connection(("127.0.0.1", self.p_status), timeout=2) as s:
                s.sendall(b"GET /status HTTP/1.0\r\n\r\n")
                data = b""
                while True:
                    d = s.recv(4096)
                    if not d:
                        break
                    data += d
            m = re.search(rb"\n\s*(\d+)\s+(\d+)\s+(\d+)", data)
            return int(m.group(1)) - 1 if m else None  # minus this request's own
        except OSError:
            return None

    def t_tput(self, peer, rep, streams):
        c = self.cfg
        port = self.fronts[peer]["iperf"]
        argv = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-P", str(streams), "-J"]
        argv += ["-n", c["tput_bytes"]] if c["tput_bytes"] else ["-t", str(c["t_tput"])]
        wall, cpu, (rc, out, err) = self.measure(peer, lambda: self.run(argv, c["t_tput"] + 30))
        try:
            j = json.loads(out)
            bps = j["end"]["sum_received"]["bits_per_second"]
            secs = j["end"]["sum_received"]["seconds"]
            nbytes = j["end"]["sum_received"]["bytes"]
        except (ValueError, KeyError, TypeError):
            self.error("%s iperf3 -P %d: rc=%s %s" % (peer, streams, rc, (err or out)[-300:]))
            return
        key = "tput%d" % streams
        self.sample(key, peer, bps / 1e9, rep)
        if peer != "direct":
            self.sample(key + "_cpu", peer, 100.0 * cpu / max(secs, 1e-3), rep)
            if streams == 1:
                self.sample("tput1_cpu_gb", peer, 1000.0 * cpu / max(nbytes / 1e9, 1e-9), rep)

    def t_wrk(self, peer, rep, close, nb):
        c = self.cfg
        port = self.fronts[peer]["http%d" % nb]
        argv = ["wrk", "-t1", "-c%d" % c["wrk_conc"], "-d%ds" % c["t_wrk"], "--timeout", "5s"]
        if close:
            argv += ["-H", "Connection: close"]
        argv.append("http://127.0.0.1:%d/64" % port)
        a0 = self.backend_accepts()
        wall, cpu, (rc, out, err) = self.measure(peer, lambda: self.run(argv, c["t_wrk"] + 30))
        a1 = self.backend_accepts()
        m = re.search(r"Requests/sec:\s+([\d.]+)", out)
        tot = re.search(r"(\d+) requests in ([\d.]+)(\w+)", out)
        if rc != 0 or not m or not tot:
            self.error("%s wrk: rc=%s %s" % (peer, rc, (err or out)[-300:]))
            return
        nreq = int(tot.group(1))
        errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                         out)
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        nerr = (sum(int(x) for x in errs.groups()) if errs else 0) + (
            int(non2xx.group(1)) if non2xx else 0)
        key = ("conn%d" if close else "ka%d") % nb
        accepts = (a1 - a0) if a0 is not None and a1 is not None else None
        self.sample(key, peer, float(m.group(1)), rep, requests=nreq, errors=nerr,
                    backend_accepts=accepts)
        if nerr and (not close or nerr > nreq * 0.01):
            self.note_err(key, peer, "%d errors of %d" % (nerr, nreq))
        if nb == 1 and peer != "direct" and nreq:
            self.sample(key + "_cpu", peer, 1e6 * cpu / nreq, rep)

    def note_err(self, key, peer, text):
        log("  note: %s %s: %s" % (peer, key, text))
        self.samples[-1]["note"] = text

    def t_lat(self, peer, rep):
        c = self.cfg
        port = self.fronts[peer]["sockperf"]
        argv = ["sockperf", "ping-pong", "--tcp", "-i", "127.0.0.1", "-p", str(port), "-m", "64",
                "-t", str(c["t_lat"]), "--mps", str(c["mps"]), "--full-rtt"]
        if not c["warmup"]:
            argv.append("--dontwarmup")
        rc, out, err = self.run(argv, c["t_lat"] + 30)
        text = re.sub(r"\x1b\[[0-9;]*m", "", out + err)
        pct = dict(re.findall(r"percentile (\d+\.\d+) =\s+([\d.]+)", text))
        if rc != 0 or "50.000" not in pct:
            self.error("%s sockperf: rc=%s %s" % (peer, rc, text[-300:]))
            return
        self.sample("lat_p50", peer, float(pct["50.000"]), rep)
        self.sample("lat_p99", peer, float(pct["99.000"]), rep)
        self.sample("lat_p999", peer, float(pct["99.900"]), rep)

    def t_redis(self, peer, rep):
        """redis-benchmark -t set,get -c 50 through the peer to redis-server, once without
        pipelining and once with -P 16; req/s of each test, and the proxy's CPU over the
        run without pipelining per request (SET and GET together)."""
        c = self.cfg
        port = self.fronts[peer]["redis"]
        for pipe, n in ((1, c["redis_n"]), (16, c["redis_pn"])):
            argv = ["redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", "set,get",
                    "-c", "50", "-n", str(n), "--csv"]
            if pipe > 1:
                argv += ["-P", str(pipe)]
            wall, cpu, (rc, out, err) = self.measure(peer, lambda: self.run(argv, 90))
            rps = {}
            for row in csv.reader(out.splitlines()):
                if len(row) >= 2 and row[0] in ("SET", "GET"):
                    try:
                        rps[row[0]] = float(row[1])
                    except ValueError:
                        pass
            if rc != 0 or len(rps) != 2:
                self.error("%s redis-benchmark%s: rc=%s %s" % (
                    peer, " -P %d" % pipe if pipe > 1 else "", rc, (err or out).strip()[-300:]))
                continue
            sfx = "_p%d" % pipe if pipe > 1 else ""
            self.sample("redis_set" + sfx, peer, rps["SET"], rep, requests=n)
            self.sample("redis_get" + sfx, peer, rps["GET"], rep, requests=n)
            if pipe == 1 and peer != "direct":
                self.sample("redis_cpu", peer, 1e6 * cpu / (2 * n), rep, secs=round(wall, 3))

    def t_pg(self, peer, rep):
        """pgbench -S (select-only: one primary-key SELECT per transaction) with 16
        persistent connections through the peer to PostgreSQL; tps, and the proxy's CPU
        per transaction."""
        c = self.cfg
        port = self.fronts[peer]["pg"]
        argv = [PG_BIN + "/pgbench", "-S", "-c", "16", "-j", "2", "-T", str(c["t_pg"]),
                "-h", "127.0.0.1", "-p", str(port), "-n", "-U", "postgres", PG_DB]
        wall, cpu, (rc, out, err) = self.measure(peer, lambda: self.run(argv, c["t_pg"] + 60))
        tps = re.search(r"^tps = ([\d.]+)", out, re.M)
        ntx = re.search(r"number of transactions actually processed: (\d+)", out)
        nfail = re.search(r"number of failed transactions: (\d+)", out)
        if rc != 0 or not tps or not ntx or not int(ntx.group(1)):
            self.error("%s pgbench: rc=%s %s" % (peer, rc, (err or out).strip()[-300:]))
            return
        ntx = int(ntx.group(1))
        nfail = int(nfail.group(1)) if nfail else 0
        self.sample("pg_tps", peer, float(tps.group(1)), rep, transactions=ntx, failed=nfail)
        if nfail:
            self.note_err("pg_tps", peer, "%d failed of %d" % (nfail, ntx + nfail))
        if peer != "direct":
            self.sample("pg_cpu", peer, 1e6 * cpu / ntx, rep)

    def t_tls(self, peer, rep, bulk):
        c = self.cfg
        f = self.fronts[peer]
        if bulk:
            argv = [self.loadgen, "tlsbulk", "127.0.0.1", str(f["tlssink"]), "1", str(c["t_tls"])]
        else:
            argv = [self.loadgen, "tlsconn", "127.0.0.1", str(f["tlshttp"]),
                    str(c["tls_conc"]), str(c["t_tls"])]
        gpeer = "linkerd-tcp-tls" if peer == "linkerd-tcp" else peer
        wall, cpu, (rc, out, err) = self.measure(gpeer, lambda: self.run(argv, c["t_tls"] + 30))
        try:
            j = json.loads(out)
        except ValueError:
            self.error("%s loadgen %s: rc=%s %s" % (peer, argv[1], rc, err[-300:]))
            return
        if bulk:
            if j["errors"]:
                self.error("%s TLS bulk: %d stream errors" % (peer, j["errors"]))
            self.sample("tls_bulk", peer, j["gbit_s"], rep)
            self.sample("tls_bulk_cpu", peer, 100.0 * cpu / max(j["secs"], 1e-3), rep)
        else:
            if not j["ok"]:
                self.error("%s TLS handshakes: none succeeded (%d errors)" % (peer, j["errors"]))
                return
            self.sample("tls_hs", peer, j["per_sec"], rep, ok=j["ok"], errors=j["errors"])
            if j["errors"] > j["ok"] * 0.01:
                self.note_err("tls_hs", peer, "%d errors of %d" % (j["errors"], j["ok"]))
            self.sample("tls_hs_cpu", peer, 1e6 * cpu / j["ok"], rep)

    def t_pt(self, peer, rep, bulk):
        """TLS through a passthrough front: the client's ClientHello carries PT_SNI, the
        proxy routes by it and forwards the TLS bytes; the backend nginx terminates TLS
        (for bulk, and proxies the plaintext on to the sink).  Proxy CPU as for t_tls."""
        c = self.cfg
        f = self.fronts[peer]
        if bulk:
            argv = [self.loadgen, "tlsbulk", "127.0.0.1", str(f["ptsink"]), "1", str(c["t_tls"]),
                    PT_SNI]
        else:
            argv = [self.loadgen, "tlsconn", "127.0.0.1", str(f["pthttp"]), str(c["tls_conc"]),
                    str(c["t_tls"]), PT_SNI]
        gpeer = "linkerd-tcp-pt" if peer == "linkerd-tcp" else peer
        wall, cpu, (rc, out, err) = self.measure(gpeer, lambda: self.run(argv, c["t_tls"] + 30))
        try:
            j = json.loads(out)
        except ValueError:
            self.error("%s loadgen %s (passthrough): rc=%s %s" % (peer, argv[1], rc, err[-300:]))
            return
        proxy = peer != "direct"
        if bulk:
            if j["errors"]:
                self.error("%s TLS passthrough bulk: %d stream errors" % (peer, j["errors"]))
            self.sample("pt_bulk", peer, j["gbit_s"], rep)
            if proxy:
                self.sample("pt_bulk_cpu", peer, 100.0 * cpu / max(j["secs"], 1e-3), rep)
        else:
            if not j["ok"]:
                self.error("%s TLS passthrough handshakes: none succeeded (%d errors)"
                           % (peer, j["errors"]))
                return
            self.sample("pt_hs", peer, j["per_sec"], rep, ok=j["ok"], errors=j["errors"])
            if j["errors"] > j["ok"] * 0.01:
                self.note_err("pt_hs", peer, "%d errors of %d" % (j["errors"], j["ok"]))
            if proxy:
                self.sample("pt_hs_cpu", peer, 1e6 * cpu / j["ok"], rep)

    def t_wake(self, peer, rep):
        """Echo round trips on busy connections, then after a silence longer than
        park_idle_ms (the first bytes on a parked connection wake it)."""
        c = self.cfg
        n = c["wake_n"]
        if peer == "socat" and n > c["socat_idle_max"]:
            for k in ("wake_unparked_p50", "wake_unparked_p99", "wake_p50", "wake_p99",
                      "wake_delta_p50", "wake_delta_p99"):
                self.note(k, peer, "skipped (fork per connection)")
            return
        argv = [self.loadgen, "wake", "127.0.0.1", str(self.fronts[peer]["echo"]), str(n),
                str(c["wake_pause_ms"])]
        rc, out, err = self.run(argv, c["wake_pause_ms"] / 1000 + 60 + n * 0.01)
        try:
            j = json.loads(out)
        except ValueError:
            self.error("%s loadgen wake: rc=%s %s" % (peer, rc, (err or out)[-300:]))
            return
        if not j["woken"] or not j["unparked"]:
            self.error("%s wake: %d connected of %d, %d errors" % (peer, j["connected"], n,
                                                                  j["errors"]))
            return
        extra = dict(connected=j["connected"], errors=j["errors"], n=n,
                     first_pass_secs=j["first_pass_secs"])
        self.sample("wake_unparked_p50", peer, j["unparked_p50_us"], rep, **extra)
        self.sample("wake_unparked_p99", peer, j["unparked_p99_us"], rep, **extra)
        self.sample("wake_p50", peer, j["woken_p50_us"], rep, **extra)
        self.sample("wake_p99", peer, j["woken_p99_us"], rep, max_us=j["woken_max_us"],
                    **extra)
        self.sample("wake_delta_p50", peer, j["woken_p50_us"] - j["unparked_p50_us"], rep,
                    **extra)
        self.sample("wake_delta_p99", peer, j["woken_p99_us"] - j["unparked_p99_us"], rep,
                    **extra)
        if j["connected"] < n or j["errors"]:
            self.note_err("wake_p99", peer, "%d of %d connected, %d errors" % (
                j["connected"], n, j["errors"]))

    def settle(self):
        """Waits, at most settle_max seconds, until the kernel's memory stops moving (two
        readings 0.5 s apart within 256 KiB); returns the last /proc/meminfo reading and
        how long it took (negative when it did not settle).  Nothing is dropped from the
        caches: what other processes do meanwhile is noise, hence the rounds."""
        t0 = time.time()
        prev = meminfo()
        while True:
            time.sleep(0.5)
            cur = meminfo()
            if abs(kernel_kib(cur) - kernel_kib(prev)) <= 256:
                return cur, time.time() - t0
            if time.time() - t0 >= self.cfg["settle_max"]:
                return cur, -(time.time() - t0)
            prev = cur

    def settle_pss(self, peer):
        """A peer that just started may still be starting (threads, worker processes) when
        its ports answer: waits, at most settle_max + 2 seconds, until its PSS stays within
        1 % over half a second, and returns it."""
        end = time.time() + self.cfg["settle_max"] + 2
        prev = pss_kib(self.pgids(peer))
        while time.time() < end:
            time.sleep(0.5)
            cur = pss_kib(self.pgids(peer))
            if abs(cur - prev) <= max(64, prev // 100):
                return cur
            prev = cur
        return prev

    def hold_idle(self, port, n, backend, before_est):
        """Opens n idle connections to port and waits until the backend sees them (or no
        more arrive for 5 s).  Returns (holder process, connected, reached)."""
        holder = subprocess.Popen([self.loadgen, "idle", "127.0.0.1", str(port), str(n), "5"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  start_new_session=True)
        line = holder.stdout.readline()
        m = re.match(r"connected (\d+) failed (\d+)", line)
        connected = int(m.group(1)) if m else 0
        if not m:
            log("  loadgen idle: %s" % (line.strip() or "no answer"))
        end, last, seen = time.time() + 60, time.time(), -1
        while time.time() < end:
            reached = established_to(backend) - before_est
            if reached >= n:
                break
            if reached != seen:
                seen, last = reached, time.time()
            elif time.time() - last > 5:
                break  # the proxy stopped connecting: it holds no more
            time.sleep(0.2)
        return holder, connected, established_to(backend) - before_est

    def release_idle(self, holder, backend, before_est):
        try:
            holder.stdin.write("quit\n")
            holder.stdin.close()
        except OSError:
            pass
        try:
            holder.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(holder.pid, signal.SIGKILL)
            holder.wait()
        # Until the backend's connections are gone and stay gone for a second (a proxy
        # may still accept connections that waited in its backlog, and close them).
        end, calm = time.time() + 30, None
        while time.time() < end:
            if established_to(backend) > before_est:
                calm = None
            elif calm is None:
                calm = time.time()
            elif time.time() - calm >= 1:
                break
            time.sleep(0.2)

    def t_idle(self, peer, n, rep):
        """The whole cost of n idle connections (SPEC section 11, issue 13): the peer is
        stopped, memory settles, /proc/meminfo is read, the peer is started (with only the
        listener this measurement uses, the same for every peer: no TLS contexts), n idle
        connections are opened and held end to end (the backend sees n established from
        the proxy), /proc/meminfo and the peer's PSS are read again.  Whole = the rise
        of KernelStack + PageTables + Slab plus the peer's PSS, per connection; also the
        drop of MemAvailable, and the PSS rise from the started peer to n held (PSS only).
        "direct": n connections straight to the backend, no proxy."""
        k = idle_metrics(n)
        if not hasattr(self, "kstack"):
            self.kstack = kernel_stack_kib()
        if peer == "socat" and n > self.cfg["socat_idle_max"]:
            for key in k.values():
                self.note(key, peer, "skipped (fork per connection)")
            return
        backend = self.p_http[0]
        before_est = established_to(backend)
        proxy = peer != "direct"
        if proxy:
            self.stop_peer(peer)
        m0, settled = self.settle()
        pss0 = 0
        if proxy:
            self.start_peer(peer, restart=True, idle=True)
            if not wait_port(self.fronts[peer]["http1"], 15):
                self.error("%s idle %d: did not start again:\n%s" % (
                    peer, n, "\n".join(p.tail() for p in self.peer_procs.get(peer, []))))
                return
            pss0 = self.settle_pss(peer)
        holder, connected, reached = self.hold_idle(self.fronts[peer]["http1"], n, backend,
                                                    before_est)
        try:
            time.sleep(1.0)
            m1 = meminfo()
            pss1 = pss_kib(self.pgids(peer)) if proxy else 0
            threads, pte = threads_pte_kib(self.pgids(peer)) if proxy else (0, 0)
            alive = -1
            try:
                holder.stdin.write("check\n")
                holder.stdin.flush()
                alive = int((holder.stdout.readline().split() or ["", "-1"])[1])
            except (OSError, ValueError):
                pass
        finally:
            self.release_idle(holder, backend, before_est)
        held = min(reached, alive, connected)
        dk = {x: m1[x] - m0[x] for x in KERNEL_MEM + ("SReclaimable", "SUnreclaim")}
        kern = kernel_kib(m1) - kernel_kib(m0)
        avail = m0["MemAvailable"] - m1["MemAvailable"]
        whole = (kern + pss1) / n
        # The same with the kernel stacks and page tables of the peer's own processes
        # instead of the machine's rise (other processes' threads come and go); only the
        # slab is the machine's.
        attr = (threads * self.kstack + pte + dk["Slab"] + pss1) / n
        log("  %-15s %5d idle: %s; kernel %+d KiB (stack %+d, page tables %+d, slab %+d),"
            " PSS %d -> %d KiB; whole %.2f KiB/conn (per process: %d threads, %d KiB page tables:"
            " %.2f), MemAvailable drop %.2f KiB/conn%s"
            % (peer, n, "held" if held >= n else "ONLY %d of %d held" % (max(held, 0), n),
               kern, dk["KernelStack"], dk["PageTables"], dk["Slab"], pss0, pss1, whole,
               threads, pte, attr, avail / n, "" if settled >= 0 else " (memory had not settled)"))
        if held < n:
            text = "only %d/%d held" % (max(held, 0), n)  # fits the table's cells
            for key in k.values():
                self.note(key, peer, text)
            self.idle_partial.append(dict(peer=peer, n=n, rep=rep, connected=connected,
                                          reached=reached, alive=alive, kernel_kib=kern,
                                          pss_kib=pss1))
            return
        extra = dict(kernel_kib=kern, pss_before_kib=pss0, pss_kib=pss1, threads=threads,
                     vmpte_kib=pte, attributed=attr,
                     memavailable_drop_kib=avail, settle_s=round(settled, 2),
                     backend_conns=reached, alive=alive,
                     **{"d_" + x: v for x, v in dk.items()})
        self.sample(k["mem"], peer, whole, rep, **extra)
        self.sample(k["avail"], peer, avail / n, rep)
        if proxy:
            self.sample(k["pss"], peer, (pss1 - pss0) / n, rep)
        self.idle_whole[(n, rep, peer)] = (whole, attr)

    def idle_own(self):
        """Each round's whole memory per connection minus that of direct in the same round."""
        for (n, rep, peer), (v, a) in sorted(self.idle_whole.items()):
            d = self.idle_whole.get((n, rep, "direct"))
            if peer != "direct" and d is not None:
                self.sample(idle_metrics(n)["own"], peer, v - d[0], rep)
                self.sample(idle_metrics(n)["attr"], peer, a - d[1], rep)

    # ---- the schedule
    def rounds(self, peers, fn, label, reps=None, skipped=()):
        """Interleaved: every rep visits every peer, the starting peer rotating.  Past the
        time budget the rest is skipped; the metrics in skipped then say so."""
        reps = reps or self.cfg["reps"]
        for rep in range(reps):
            if self.over_budget():
                log("  time budget spent: skipping the rest of %s" % label)
                for key in skipped:
                    for peer in peers:
                        if not any(s["metric"] == key and s["peer"] == peer
                                   for s in self.samples):
                            self.note(key, peer, "skipped (time budget)")
                return
            order = peers[rep % len(peers):] + peers[:rep % len(peers)]
            for peer in order:
                fn(peer, rep)
        log("  %s done at %.0fs" % (label, time.time() - self.t0))

    def run_all(self):
        c = self.cfg
        if "tput" in self.only:
            log("throughput (iperf3)")
            self.rounds(PLAIN_PEERS, lambda p, r: (self.t_tput(p, r, 1), self.t_tput(p, r, 8)),
                        "throughput")
        for close, label in ((True, "conn"), (False, "ka")):
            if label not in self.only:
                continue
            log("short connections/s (wrk, Connection: close)" if close else
                "keep-alive requests/s (wrk)")
            for nb in c[label + "_nb"]:
                peers = PLAIN_PEERS if nb == 1 else [p for p in PROXIES if p != "socat"]
                self.rounds(peers, lambda p, r: self.t_wrk(p, r, close, nb), "%s%d" % (label, nb))
        if "lat" in self.only:
            log("ping-pong latency (sockperf)")
            self.rounds(PLAIN_PEERS, self.t_lat, "latency")
        for test, why, keys, fn, what in (
                ("redis", self.redis_why, REDIS_METRICS, self.t_redis,
                 "redis (redis-benchmark -t set,get -c 50 -n %d, then -P 16 -n %d)"
                 % (c["redis_n"], c["redis_pn"])),
                ("pg", self.pg_why, PG_METRICS, self.t_pg,
                 "PostgreSQL (pgbench -S -c 16 -j 2 -T %s)" % c["t_pg"])):
            if test not in self.only:
                continue
            if why:
                log("%s: n/a (%s)" % (test, why))
                for k in keys:
                    for p in PLAIN_PEERS:
                        if p != "direct" or not k.endswith("_cpu"):
                            self.note(k, p, "n/a")
                continue
            log(what)
            self.rounds(PLAIN_PEERS, fn, test, skipped=keys)
        if "tls" in self.only:
            tls = [p for p in TLS_PEERS if self.tls_ok.get(p)]
            for p in TLS_PEERS:
                if not self.tls_ok.get(p):
                    for k in ("tls_hs", "tls_hs_cpu", "tls_bulk", "tls_bulk_cpu"):
                        self.note(k, p, "n/a (not implemented)" if p == "linkerd-tcp" else "n/a")
            log("TLS handshakes and bulk (loadgen)")
            self.rounds(tls, lambda p, r: (self.t_tls(p, r, False), self.t_tls(p, r, True)),
                        "tls")
        if "pt" in self.only:
            pt = [p for p in PT_PEERS if self.pt_ok.get(p)]
            for p in PT_PEERS:
                if not self.pt_ok.get(p):
                    for k in ("pt_hs", "pt_hs_cpu", "pt_bulk", "pt_bulk_cpu"):
                        self.note(k, p, "n/a")
            log("TLS passthrough by SNI %s: handshakes and bulk (loadgen; the backend nginx"
                " terminates TLS)" % PT_SNI)
            self.rounds(pt, lambda p, r: (self.t_pt(p, r, False), self.t_pt(p, r, True)),
                        "pt", skipped=[k for k in METRICS if k.startswith("pt_")])
        if "wake" in self.only:
            log("wake latency: %d connections, 64 B echo round trips before and after %d ms of"
                " silence (loadgen wake)" % (c["wake_n"], c["wake_pause_ms"]))
            self.rounds(PLAIN_PEERS, self.t_wake, "wake",
                        skipped=[k for k in METRICS if k.startswith("wake_")])
        if "idle" in self.only:
            log("idle connections: whole memory from before each peer starts to N held "
                "(every peer restarted for each measurement; %d rounds, medians)"
                % c["idle_reps"])
            for n in c["idle"]:
                self.rounds(PLAIN_PEERS, lambda p, r: self.t_idle(p, n, r), "idle %d" % n,
                            reps=c["idle_reps"], skipped=idle_metrics(n).values())
            self.idle_own()

    # ---- results
    def medians(self):
        res = {}
        for s in self.samples:
            res.setdefault((s["metric"], s["peer"]), []).append(s["value"])
        return {k: (statistics.median(v), v) for k, v in res.items()}

    def table(self, med):
        peers = PLAIN_PEERS + ["stunnel"]
        rows = []
        for key, m in METRICS.items():
            vals = {p: med[(key, p)][0] for p in peers if (key, p) in med}
            if not vals and not any((key, p) in self.notes for p in peers):
                continue
            cands = {p: v for p, v in vals.items() if p != "direct"}
            best = None
            if cands:
                best = (max if m["better"] == "high" else min)(cands, key=cands.get)
            row = dict(metric=key, title=m["title"], unit=m["unit"], better=m["better"],
                       best=best, values={}, ratios={}, notes={}, samples={})
            for p in peers:
                if p in vals:
                    row["values"][p] = vals[p]
                    row["samples"][p] = med[(key, p)][1]
                    bv = cands.get(best)
                    if bv and bv > 0:  # differences (wake_delta_*) can be negative
                        row["ratios"][p] = vals[p] / bv
                if (key, p) in self.notes:
                    row["notes"][p] = self.notes[(key, p)]
            rows.append(row)
        return rows

    def print_table(self, rows):
        peers = [p for p in PLAIN_PEERS + ["stunnel"]
                 if any(p in r["values"] or p in r["notes"] for r in rows)]
        w0 = max(len(r["title"]) for r in rows) if rows else 10
        hdr = "%-*s %-11s" % (w0, "metric", "unit") + "".join("%17s" % p for p in peers)
        lines = [hdr, "-" * len(hdr)]
        for r in rows:
            cells = []
            for p in peers:
                if p in r["values"]:
                    v = r["values"][p]
                    txt = fmt(v)
                    if p in r["ratios"] and p != "direct":
                        txt += " (%s)" % ("best" if p == r["best"] else "%.2f" % r["ratios"][p])
                    cells.append("%17s" % txt)
                elif p in r["notes"]:
                    cells.append("%17s" % r["notes"][p][:16])
                else:
                    cells.append("%17s" % "-")
            lines.append("%-*s %-11s" % (w0, r["title"], r["unit"]) + "".join(cells))
        return "\n".join(lines)

    def targets(self, rows):
        out = []
        by = {r["metric"]: r for r in rows}
        for key, m in METRICS.items():
            t = m.get("target")
            r = by.get(key)
            if not t or not r:
                continue
            lv = r["values"].get("linkerd-tcp")
            if lv is None:
                out.append(dict(metric=key, title=m["title"], target=t, status="n/a",
                                text=r["notes"].get("linkerd-tcp", "no value")))
                continue
            if t == "max100":
                ok = lv <= 100
                out.append(dict(metric=key, title=m["title"], target="<= 100 us",
                                linkerd=lv, ratio=lv / 100, status="met" if ok else "not met"))
                continue
            if t == "budget16":
                ok = lv <= 16
                out.append(dict(metric=key, title=m["title"], target="<= 16 KiB/conn",
                                linkerd=lv, ratio=lv / 16, status="met" if ok else "not met"))
                continue
            tv = r["values"].get(t)
            if not tv:
                out.append(dict(metric=key, title=m["title"], target=t, status="n/a",
                                text="no value for " + t))
                continue
            if tv < 0 or lv < 0:
                out.append(dict(metric=key, title=m["title"], target=t, status="n/a",
                                text="a negative value (noise): linkerd-tcp %.3g, %s %.3g"
                                % (lv, t, tv)))
                continue
            ratio = lv / tv
            ok = ratio >= 1 if m["better"] == "high" else ratio <= 1
            out.append(dict(metric=key, title=m["title"], target=t, linkerd=lv, other=tv,
                            ratio=ratio, status="met" if ok else "not met"))
        return out

    def meta(self):
        cpu = "?"
        try:
            for line in open("/proc/cpuinfo"):
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        return dict(
            date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            mode=self.mode, reps=self.cfg["reps"], config=self.cfg, nproc=os.cpu_count(),
            only=sorted(self.only, key=TESTS.index),
            cpu=cpu, kernel=platform.release(),
            debian=open("/etc/debian_version").read().strip()
            if os.path.exists("/etc/debian_version") else "?",
            tree_git=subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                                    capture_output=True, text=True).stdout.strip(),
            linkerd_tcp_bin=self.ltcp,
            linkerd_tcp_bin_mtime=datetime.datetime.fromtimestamp(
                os.path.getmtime(self.ltcp)).isoformat(timespec="seconds"),
            linkerd_tcp_commit=os.environ.get("LTCP_COMMIT", ""),
            versions={
                "linkerd-tcp": version([self.ltcp, "-V"]) + " (" + self.ltcp + ")",
                "haproxy": version(["haproxy", "-v"], "version"),
                "nginx": version(["nginx", "-v"]),
                "socat": version(["socat", "-V"], "socat version"),
                "stunnel": version(["stunnel4", "-version"], r"stunnel \d"),
                "iperf3": version(["iperf3", "-v"]),
                "wrk": "wrk " + debver("wrk"),
                "sockperf": "sockperf " + debver("sockperf"),
                "openssl": version(["openssl", "version"]),
                "redis": version(["redis-server", "--version"]),
                "redis-benchmark": version(["redis-benchmark", "--version"]),
                "postgresql": version([PG_BIN + "/postgres", "-V"]),
                "pgbench": version([PG_BIN + "/pgbench", "-V"]),
                "gnutls (loadgen, linkerd-tcp)": "libgnutls30 " + debver("libgnutls30"),
            },
            ports_base=self.base,
            # why the redis or pg rows read "n/a" (server or client missing, failed to start)
            unavailable={k: v for k, v in (("redis", self.redis_why), ("pg", self.pg_why)) if v},
            loadavg_start=self.load0,
            loadavg_end=list(os.getloadavg()),
            other_processes_cpu_share=round(getattr(self, "foreign", 0.0), 3),
        )

    def save(self, rows, targets, elapsed):
        os.makedirs(RESULTS, exist_ok=True)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        if self.mode != "full":
            stamp += "-" + self.mode
        base = os.path.join(RESULTS, stamp)
        meta = self.meta()
        meta["elapsed_s"] = round(elapsed, 1)
        with open(base + ".json", "w") as f:
            json.dump(dict(meta=meta, table=rows, targets=targets, samples=self.samples,
                           idle_partial=self.idle_partial, errors=self.errors), f, indent=1)
        with open(base + ".csv", "w", newline="") as f:
            wr = csv.writer(f)
            wr.writerow(["metric", "title", "unit", "better", "peer", "median", "ratio_to_best",
                         "is_best", "n", "samples", "note"])
            for r in rows:
                for p in PLAIN_PEERS + ["stunnel"]:
                    if p in r["values"]:
                        wr.writerow([r["metric"], r["title"], r["unit"], r["better"], p,
                                     "%.6g" % r["values"][p],
                                     "%.4f" % r["ratios"][p] if p in r["ratios"] else "",
                                     int(p == r["best"]), len(r["samples"][p]),
                                     " ".join("%.6g" % x for x in r["samples"][p]),
                                     r["notes"].get(p, "")])
                    elif p in r["notes"]:
                        wr.writerow([r["metric"], r["title"], r["unit"], r["better"], p, "", "",
                                     0, 0, "", r["notes"][p]])
        return base

    def plot(self, rows, base):
        if not which("gnuplot"):
            return None
        peers = [p for p in PROXIES + ["stunnel"] if any(p in r["values"] for r in rows)]
        dat = base + ".plot.dat"
        with open(dat, "w") as f:
            f.write("metric " + " ".join('"%s"' % p for p in peers) + "\n")
            for r in rows:
                if not r["best"]:
                    continue
                bv = r["values"][r["best"]]
                cells = []
                for p in peers:
                    v = r["values"].get(p)
                    if v is None or v <= 0 or p == "direct":
                        cells.append("NaN")
                    else:  # 1.0 = best; lower-is-better metrics inverted
                        cells.append("%.4f" % (v / bv if r["better"] == "high" else bv / v))
                f.write('"%s" %s\n' % (r["metric"], " ".join(cells)))
        png = base + ".png"
        gp = f"""set terminal pngcairo size 1400,600 font ",9"
set output "{png}"
set title "linkerd-tcp bench: each peer relative to the best proxy (1.0 = best; lower-is-better metrics inverted)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set yrange [0:1.1]
set grid ytics
set xtics rotate by -35 noenhance
set key outside right top noenhance
plot for [i=2:{len(peers) + 1}] "{dat}" using i:xtic(1) title columnheader(i)
"""
        r = subprocess.run(["gnuplot"], input=gp, text=True, capture_output=True)
        os.unlink(dat)
        return png if r.returncode == 0 and os.path.exists(png) else None

    def cleanup(self):
        self.stop_pg()
        for p in reversed(self.procs):
            p.stop()
        if not self.args.keep:
            shutil.rmtree(self.work, ignore_errors=True)


def fmt(v):
    if v >= 1000:
        return "%.0f" % v
    if v >= 100:
        return "%.1f" % v
    if v >= 10:
        return "%.2f" % v
    return "%.3g" % v


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="bench/run", description=(
        "Benchmark linkerd-tcp against HAProxy, nginx, socat and stunnel on loopback."))
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--quick", dest="mode", action="store_const", const="quick",
                   help="fewer rounds, shorter measurements (~2.5 minutes)")
    g.add_argument("--smoke", dest="mode", action="store_const", const="smoke",
                   help="every peer starts and one tiny measurement of each kind runs")
    ap.set_defaults(mode="full")
    ap.add_argument("--reps", type=int, help="rounds over all peers (default by mode)")
    ap.add_argument("--idle", metavar="N,N", help="idle connection counts (default 1000,9000;"
                    " 20 with --smoke)")
    ap.add_argument("--port-base", type=int, default=int(os.environ.get("BENCH_PORT_BASE", 21000)),
                    help="first port of the loopback ports used (default 21000)")
    ap.add_argument("--no-install", action="store_true", help="do not apt-get install")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (configs, logs)")
    ap.add_argument("--relay-threads", type=int, metavar="N",
                    help="give linkerd-tcp this pool instead of its default (experiments)")
    ap.add_argument("--park-idle-ms", type=int, metavar="MS",
                    help="give linkerd-tcp this park_idle_ms instead of its default (experiments)")
    ap.add_argument("--conc", type=int, metavar="N",
                    help="wrk connections for the short and keep-alive measurements (default 50)")
    ap.add_argument("--only", metavar="TESTS", help="run only these, comma-separated, of: " +
                    ",".join(TESTS))
    args = ap.parse_args(argv)
    if args.only:
        bad = [t for t in args.only.split(",") if t not in TESTS]
        if bad:
            ap.error("--only: unknown %s (known: %s)" % (",".join(bad), ",".join(TESTS)))
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    raise_nofile()
    if not args.no_install:
        ensure_packages(optional=args.mode != "smoke",
                        only=args.only.split(",") if args.only else TESTS)
    b = Bench(args)
    b.ltcp = find_linkerd_tcp()
    b.loadgen = build_loadgen()
    b.base = choose_base(args.port_base)
    b.ports()
    b.key, b.cert, b.combined = make_cert(b.work)

    def on_signal(sig, frame):
        b.cleanup()
        sys.exit(130)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        log("bench: mode %s, %d rounds, ports %d.., work dir %s" % (
            b.mode, b.cfg["reps"], b.base, b.work))
        b.start_backends()
        b.start_redis()
        b.start_pg()
        b.start_peers()
        b.run_all()
        died = [p.name for p in b.procs if not p.alive()]
        if died:
            b.error("died during the run: " + ", ".join(died))
            for p in b.procs:
                if not p.alive():
                    log("--- %s:\n%s" % (p.name, p.tail()))
    finally:
        b.foreign = b.foreign_cpu()  # before the peers stop: their CPU must still count
        b.cleanup()
    elapsed = time.time() - b.t0
    med = b.medians()
    rows = b.table(med)
    targets = b.targets(rows)
    log("")
    log(b.print_table(rows))
    log("")
    log("(value (ratio to the best proxy); higher-is-better rows: ratio <= 1, lower-is-better:"
        " ratio >= 1; 'direct' = no proxy, a reference)")
    log("")
    log("SPEC section 11 targets for linkerd-tcp (informative, never asserted):")
    for t in targets:
        if "linkerd" in t:
            log("  %-62s %-9s vs %-15s ratio %.2f" % (t["title"], t["status"], t["target"],
                                                      t["ratio"]))
        else:
            log("  %-62s %-9s (%s)" % (t["title"], t["status"], t.get("text", "")))
    base = b.save(rows, targets, elapsed)
    png = b.plot(rows, base) if b.cfg["plot"] else None
    log("")
    log("results: %s.json %s.csv%s" % (base, base, (" " + png) if png else ""))
    log("elapsed: %.0f s; load average at start %.2f, at end %.2f; processes outside the bench"
        " used %.0f %% of the %d CPUs%s" % (
            elapsed, b.load0[0], os.getloadavg()[0], 100 * b.foreign, os.cpu_count(),
            " (numbers are noisy)" if b.foreign > 0.05 else ""))
    if b.errors:
        log("%d error(s):" % len(b.errors))
        for e in b.errors:
            log("  " + e)
        return 1
    return 0
