"""Running as a system daemon: -d detaches (new session, cwd /, stdio on
/dev/null, log to syslog) and returns the startup status; -p writes, locks
and removes the pidfile, refuses a second instance and takes over a stale
pidfile, and refuses a pidfile that is a symlink, a hard link or not a
regular file; sd_notify READY/RELOADING/STOPPING/STATUS to a path or an
abstract NOTIFY_SOCKET, without libsystemd, and an unusable NOTIFY_SOCKET
ignored; the user/group privilege drop after binding; the open-file limit
raised at startup."""

import atexit
import grp
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from ltcptest import *

t = Tap()
tmp = tempfile.mkdtemp(prefix="ltcp-daemon-")
t.cleanup(lambda: shutil.rmtree(tmp, ignore_errors=True))
RUN = os.path.join(tmp, "run")
os.makedirs(RUN)
ENV = dict(os.environ, LINKERD_TCP_LOG="info")
ROOT = os.geteuid() == 0
a = t.backend(IdBackend, "backend-a")
b = t.backend(IdBackend, "backend-b")


def config(port, backend, top="relay_threads: 8\nadmin:\n  addr: 127.0.0.1:0\n"):
    return static_config(["127.0.0.1:%d" % port], [backend.addr], top=top)


def config_file(name, port, backend):
    """A configuration file in the temporary directory; its path."""
    path = os.path.join(tmp, name)
    write_atomic(path, config(port, backend))
    return path


alive = pid_alive
read_pid = read_pidfile


def stat_fields(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def start_detached(cfg_path, pidfile, cwd=None, env=None):
    """linkerd-tcp -d -p pidfile; whatever it leaves running is stopped at the end."""
    p = subprocess.run([BIN, "-d", "-p", pidfile, cfg_path], capture_output=True, timeout=30,
                       cwd=cwd, env=env or ENV, stdin=subprocess.DEVNULL)
    if os.path.isfile(pidfile):  # not a FIFO: reading one would block
        t.detached(read_pid(pidfile))
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


through = first_line


# ------------------------------------------------------------------ syslog sink
# Without a syslog daemon nothing listens on /dev/log; as root this test
# listens there itself for as long as it runs, to read what the daemon logs.
syslog_sock = None
syslog_note = None
if os.path.exists("/dev/log"):
    syslog_note = "a syslog daemon owns /dev/log; its log is not read here"
elif not ROOT:
    syslog_note = "/dev/log is missing and only root may create it"
else:
    try:
        syslog_sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        syslog_sock.bind("/dev/log")
        syslog_sock.settimeout(0.2)

        def _rm_devlog():
            syslog_sock.close()
            if os.path.exists("/dev/log"):
                os.unlink("/dev/log")

        # Also when the script dies halfway: /dev/log must not outlive it.
        atexit.register(_rm_devlog)
    except OSError as e:
        syslog_note = "cannot listen on /dev/log: %s" % e
        syslog_sock = None
syslog_lines = []


def _syslog_drain():
    # Read all the time: a syslog socket whose queue is full (only 10
    # datagrams by default) blocks every process that logs to it.
    while True:
        try:
            data = syslog_sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            return
        syslog_lines.append(data.decode(errors="replace"))


if syslog_sock:
    threading.Thread(target=_syslog_drain, daemon=True).start()


def syslog_read(until=None, timeout=5.0):
    """What arrived on /dev/log, once `until` is in a line (or after timeout)."""
    if syslog_sock and until:
        wait_until(lambda: any(until in l for l in list(syslog_lines)), timeout)
    return list(syslog_lines)


# ------------------------------------------------------------------ -d and -p


def test_detach_and_pidfile():
    port = free_port()
    cfgdir = os.path.join(tmp, "conf")
    os.makedirs(cfgdir)
    write_atomic(os.path.join(cfgdir, "lt.yml"), config(port, a))
    pidfile = os.path.join(RUN, "linkerd-tcp.pid")

    # Started from the temporary directory with a relative configuration path:
    # the daemon runs in /, so reloads must still find the file.
    rc, out, err = start_detached("conf/lt.yml", pidfile, cwd=tmp)
    t.ok(rc == 0, "-d returns 0 once the daemon has started")
    t.ok(out == "" and err == "", "-d writes nothing to stdout or stderr after a clean start")
    if err:
        t.diag(err)
    pid = read_pid(pidfile)
    t.ok(pid > 0 and alive(pid), "-p writes the daemon's pid to the pidfile")
    if pid and alive(pid):
        f = stat_fields(pid)
        ppid, pgrp, sid = int(f[1]), int(f[2]), int(f[3])
        t.ok(ppid != os.getpid() and sid != os.getsid(0), "the daemon is detached: another parent, a new session")
        t.ok(sid != pid, "the daemon does not lead its session (it can never get a terminal again)")
        t.ok(os.readlink("/proc/%d/cwd" % pid) == "/", "the daemon runs in /")
        t.ok(all(os.readlink("/proc/%d/fd/%d" % (pid, fd)) == "/dev/null" for fd in (0, 1, 2)),
             "the daemon's stdin, stdout and stderr are /dev/null")

        def pipes():
            out = []
            for fd in os.listdir("/proc/%d/fd" % pid):
                try:
                    target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
                except OSError:
                    continue
                if target.startswith("pipe:"):
                    out.append(target)
            return out

        # The end of the startup pipe is closed just after the status byte that
        # lets `linkerd-tcp -d` return: allow it that moment.
        t.ok(wait_until(lambda: not pipes(), 2), "the daemon holds no pipe inherited from whoever started it")
    else:
        t.ok(False, "the daemon is running")
    t.eq(through(port), b"backend-a", "the detached daemon proxies connections")

    if syslog_sock:
        lines = syslog_read(until="running (pid %d)" % pid)
        t.ok(any("linkerd-tcp[%d]: linkerd-tcp " % pid in l and "running (pid %d)" % pid in l for l in lines),
             "the detached daemon logs to syslog")
        t.ok(any("listening on 127.0.0.1:%d" % port in l for l in lines), "startup lines go to syslog too")
    else:
        t.ok(True, "the detached daemon logs to syslog # SKIP %s" % syslog_note)

    # A second instance with the same pidfile refuses, detached or not.
    rc, out, err = start_detached(os.path.join(cfgdir, "lt.yml"), pidfile)
    t.ok(rc == 1 and "already running as pid %d" % pid in err, "a second -d instance with the same pidfile exits 1")
    if rc != 1:
        t.diag(err)
    p = subprocess.run([BIN, "-p", pidfile, os.path.join(cfgdir, "lt.yml")], capture_output=True, timeout=30,
                       env=ENV, stdin=subprocess.DEVNULL)
    t.ok(p.returncode == 1 and b"already running" in p.stderr, "a foreground instance with the same pidfile exits 1")
    t.eq(read_pid(pidfile), pid, "the refused instances leave the pidfile alone")

    # SIGHUP reloads the relative configuration path from /.
    write_atomic(os.path.join(cfgdir, "lt.yml"), config(port, b))
    os.kill(pid, signal.SIGHUP)
    t.ok(wait_until(lambda: through(port, 2) == b"backend-b", 10), "SIGHUP reloads the configuration in daemon mode")
    if syslog_sock:
        t.ok(any("reload: configuration applied" in l for l in syslog_read(until="reload: configuration applied")),
             "the reload is logged to syslog")

    # SIGTERM: the daemon stops and removes its pidfile.
    os.kill(pid, signal.SIGTERM)
    t.ok(wait_until(lambda: not alive(pid), 15), "SIGTERM stops the detached daemon")
    t.ok(wait_until(lambda: not os.path.exists(pidfile), 5), "the pidfile is removed at exit")


def test_stale_pidfile():
    # A stale pidfile (its process is gone, nothing holds its lock) is taken over.
    pidfile = os.path.join(RUN, "stale.pid")
    dead = subprocess.Popen(["true"])
    dead.wait()
    write_atomic(pidfile, "%d\n" % dead.pid)
    rc, out, err = start_detached(config_file("stale.yml", free_port(), a), pidfile)
    pid2 = read_pid(pidfile)
    t.ok(rc == 0 and pid2 not in (0, dead.pid) and alive(pid2), "a stale pidfile is replaced")
    t.ok(stop_pid(pid2) and wait_until(lambda: not os.path.exists(pidfile), 5), "and removed again at exit")


def test_failed_start():
    # A startup failure after detaching: exit 1, the reason on stderr, no pidfile.
    pidfile = os.path.join(RUN, "failed.pid")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        busy_cfg = config_file("busy.yml", busy.getsockname()[1], a)
        rc, out, err = start_detached(busy_cfg, pidfile)
        t.ok(rc == 1 and "Address already in use" in err,
             "-d with a listen address in use: exit 1 with the reason on stderr")
        t.ok(not os.path.exists(pidfile), "a failed start leaves no pidfile")

    rc, out, err = run_cli("-d", "-p", os.path.join(tmp, "nodir", "x.pid"), busy_cfg)
    t.ok(rc == 1 and "cannot open the pidfile" in err, "an unwritable pidfile location: exit 1 with the reason")
    rc, out, err = run_cli("-p")
    t.ok(rc == 2, "-p without a path is a usage error")


def test_refused_pidfiles():
    # A pidfile that is not a regular file with a single link is refused before
    # anything is truncated: whatever it points at is left untouched.
    victim = os.path.join(tmp, "victim")
    write_atomic(victim, "precious\n")
    cfg = config_file("refused.yml", 0, a)

    def refused_pidfile(path, reason, name):
        rc, out, err = start_detached(cfg, path)
        if rc == 0:
            t.detached(read_pid(victim))
        t.ok(rc == 1 and "refusing the pidfile %s: %s" % (path, reason) in err, "%s: exit 1 with the reason" % name)
        if rc != 1:
            t.diag(err)
        with open(victim) as f:
            t.eq(f.read(), "precious\n", "%s: the file it names is left untouched" % name)

    symlink = os.path.join(RUN, "symlink.pid")
    os.symlink(victim, symlink)
    refused_pidfile(symlink, "it is a symbolic link", "a pidfile that is a symbolic link")
    t.ok(os.path.islink(symlink), "and the link stays")
    dangling = os.path.join(RUN, "dangling.pid")
    os.symlink(os.path.join(tmp, "created-through-link"), dangling)
    rc, out, err = start_detached(cfg, dangling)
    t.ok(rc == 1 and "symbolic link" in err and not os.path.exists(os.path.join(tmp, "created-through-link")),
         "a dangling symbolic link as pidfile: refused, nothing created through it")
    hardlink = os.path.join(RUN, "hardlink.pid")
    os.link(victim, hardlink)
    refused_pidfile(hardlink, "it has 2 hard links, not 1", "a pidfile hard-linked to another file")
    fifo = os.path.join(RUN, "fifo.pid")
    os.mkfifo(fifo)
    rc, out, err = start_detached(cfg, fifo)
    t.ok(rc == 1 and "refusing the pidfile %s: it is not a regular file" % fifo in err,
         "a pidfile that is a FIFO: refused without blocking")


# ------------------------------------------------------------------ sd_notify


def test_no_libsystemd():
    # The protocol is spoken without libsystemd, so that every build notifies:
    # the binary must neither link libsystemd nor import its sd_notify.
    dyn = subprocess.run(["readelf", "-d", "--dyn-syms", "-W", BIN], capture_output=True, text=True)
    t.ok(dyn.returncode == 0 and "(NEEDED)" in dyn.stdout and "libc.so" in dyn.stdout, "readelf -d reads the binary")
    t.ok("libsystemd" not in dyn.stdout, "the binary does not link libsystemd (readelf -d)")
    t.ok(not re.search(r"\bsd_notify", dyn.stdout), "nor import sd_notify from anywhere")
    ldd = subprocess.run(["ldd", BIN], capture_output=True, text=True)
    t.ok(ldd.returncode == 0 and "libsystemd" not in ldd.stdout, "ldd: libsystemd is not loaded")


class NotifySocket:
    """A datagram socket standing in for systemd's: address is what goes in
    NOTIFY_SOCKET ('/path' or '@abstract')."""

    def __init__(self, address):
        self.address = address
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + address[1:] if address.startswith("@") else address)
        self.sock.settimeout(0.2)
        self.msgs = []

    def notes(self, until, timeout=10.0):
        """The messages received so far that contain `until`, once one has."""
        end = time.monotonic() + timeout
        while time.monotonic() < end and not any(until in m for m in self.msgs):
            try:
                self.msgs.append(self.sock.recv(4096).decode())
            except socket.timeout:
                pass
        return [m for m in self.msgs if until in m]

    def index(self, needle):
        return next((i for i, m in enumerate(self.msgs) if needle in m), -1)


def monotonic_usec(msg):
    m = re.search(r"^MONOTONIC_USEC=(\d+)$", msg, re.M)
    return int(m.group(1)) if m else None


def started(cfg, env):
    """A daemon started without waiting for it (the test waits for what it
    announces), stopped at the end if it still runs then."""
    d = Daemon(cfg, env=env)
    t.cleanup(d.stop)
    return d


def test_notify(address, kind):
    ns = NotifySocket(address)
    t.cleanup(ns.sock.close)
    nport = free_port()
    d = started(config(nport, a), {"NOTIFY_SOCKET": address, "LINKERD_TCP_LOG": "info"})
    ready = ns.notes("READY=1")
    t.ok(ready and d.wait_log(r"running \(pid"), "%s: READY=1 is sent once the daemon runs" % kind)
    t.ok(ready and through(nport) == b"backend-a", "%s: the listeners accept when READY=1 arrives" % kind)
    t.ok(any("STATUS=running 1 proxy" in m for m in ns.msgs), "%s: a STATUS= line comes with READY=1" % kind)
    del ns.msgs[:]
    before = time.monotonic_ns() // 1000
    d.reload(config(nport, b))
    rel = ns.notes("RELOADING=1")
    usec = monotonic_usec(rel[0]) if rel else None
    t.ok(usec is not None and before <= usec <= time.monotonic_ns() // 1000,
         "%s: RELOADING=1 on SIGHUP, with MONOTONIC_USEC= read from CLOCK_MONOTONIC" % kind)
    t.ok(ns.notes("READY=1") and ns.index("READY=1") > ns.index("RELOADING=1")
         and any("configuration reloaded" in m for m in ns.msgs), "%s: READY=1 again after the reload" % kind)
    del ns.msgs[:]
    d.write_config("proxies: [\n")
    d.signal(signal.SIGHUP)
    t.ok(ns.notes("READY=1") and any("last reload failed" in m for m in ns.msgs),
         "%s: a failed reload sends READY=1 with a STATUS saying so" % kind)
    d.signal(signal.SIGTERM)
    t.ok(ns.notes("STOPPING=1"), "%s: STOPPING=1 at shutdown" % kind)
    t.eq(d.wait(), 0, "%s: and the daemon exits 0" % kind)
    t.ok("cannot notify systemd" not in d.log(), "%s: no notification failed" % kind)
    ns.sock.close()


def test_unusable_notify_socket():
    # A NOTIFY_SOCKET that cannot be used is logged once and ignored: the daemon
    # starts, reloads and stops as usual.
    for value, why, kind in (
        ("/" + "x" * 120, "too long", "a path longer than sun_path"),
        ("@" + "x" * 120, "too long", "an abstract name longer than sun_path"),
        (os.path.join(tmp, "nobody-listens.sock"), "No such file", "a socket nobody listens on"),
        ("relative.sock", "not an absolute path", "a relative path"),
    ):
        nport = free_port()
        d = started(config(nport, a), {"NOTIFY_SOCKET": value, "LINKERD_TCP_LOG": "info"})
        ok = d.wait_log(r"running \(pid", 10) and through(nport) == b"backend-a" and d.reload(config(nport, b))
        warnings = re.findall(r"cannot notify systemd at NOTIFY_SOCKET=.*", d.log())
        t.ok(ok and d.stop() == 0, "NOTIFY_SOCKET set to %s: the daemon runs, reloads and stops as usual" % kind)
        t.ok(len(warnings) == 1 and why in warnings[0], "NOTIFY_SOCKET set to %s: one warning with the reason" % kind)
        if len(warnings) != 1:
            t.diag(d.log())


# ------------------------------------------------------------------ user/group


def test_privilege_drop():
    me = pwd.getpwuid(os.geteuid())
    if ROOT:
        try:
            nobody = pwd.getpwnam("nobody")
        except KeyError:
            nobody = None
        if not nobody:
            t.ok(True, "privilege drop # SKIP there is no user 'nobody'")
            return
        gname = grp.getgrgid(nobody.pw_gid).gr_name
        # A privileged port, bound as root before the drop.
        lowport = None
        for cand in range(1023, 900, -1):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", cand))
                    lowport = cand
                    break
                except OSError:
                    continue
        top = "user: nobody\ngroup: %s\nrelay_threads: 8\nadmin:\n  addr: 127.0.0.1:0\n" % gname
        d = t.daemon(config(lowport, a, top=top))
        with open("/proc/%d/status" % d.proc.pid) as f:
            status = f.read()
        ids = {l.split(":")[0]: l.split()[1:] for l in status.splitlines() if l.startswith(("Uid", "Gid", "Groups"))}
        t.ok(ids["Uid"] == [str(nobody.pw_uid)] * 4, "user: nobody sets every uid (real, effective, saved, fs)")
        t.ok(ids["Gid"] == [str(nobody.pw_gid)] * 4, "group: sets every gid")
        t.ok(set(ids.get("Groups", [])) <= {str(g) for g in os.getgrouplist("nobody", nobody.pw_gid)},
             "the supplementary groups are the user's, root's are gone")
        t.eq(through(lowport), b"backend-a", "port %d, bound as root before the drop, still serves" % lowport)
        t.ok("running as uid %d (nobody)" % nobody.pw_uid in d.log(), "the drop is logged")
        t.eq(d.stop(), 0, "the unprivileged daemon stops cleanly")
    else:
        top = "user: %s\nrelay_threads: 8\n" % me.pw_name
        d = t.daemon(config(free_port(), a, top=top))
        t.ok(True, "user: set to the user already running it is accepted")
        d.stop()
        d = started(config(free_port(), a, top="user: root\n"), None)
        t.ok(d.wait(10) == 1 and "not running as root" in d.log(), "user: root when not root: exit 1")


def test_unknown_user_and_group():
    d = started(config(free_port(), a, top="user: no-such-user-ltcp\n"), None)
    t.ok(d.wait(10) == 1 and "user 'no-such-user-ltcp' does not exist" in d.log() and "refusing to run" in d.log(),
         "an unknown user: exit 1, refusing to run with the starting privileges")
    d = started(config(free_port(), a, top="group: no-such-group-ltcp\n"), None)
    t.ok(d.wait(10) == 1 and "group 'no-such-group-ltcp' does not exist" in d.log(), "an unknown group: exit 1")


# ------------------------------------------------------------------ RLIMIT_NOFILE


def with_nofile(soft, hard):
    return lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def nofile_of(pid):
    with open("/proc/%d/limits" % pid) as f:
        for line in f:
            if line.startswith("Max open files"):
                return tuple(int(x) for x in line.split()[3:5])
    return None


def run_with_limits(soft, hard, threads):
    """(soft, hard) open-file limits of a daemon started under these limits, and its log."""
    d = Daemon(config(free_port(), a, top="relay_threads: %d\nadmin:\n  addr: 127.0.0.1:0\n" % threads),
               env={"LINKERD_TCP_LOG": "info"}, preexec_fn=with_nofile(soft, hard))
    t.cleanup(d.stop)
    limits = nofile_of(d.proc.pid) if d.wait_log(r"running \(pid", 10) else None
    d.stop()
    return limits, d.log()


def test_nofile_limit():
    hard_now = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard_now != resource.RLIM_INFINITY and hard_now < 2048:
        t.ok(True, "the soft limit is raised toward the hard limit # SKIP the hard limit here is only %d" % hard_now)
        return
    # Open connections are bounded by descriptors, not threads: the soft limit goes to the hard one.
    limits, log = run_with_limits(256, 2048, 200)
    t.eq(limits, (2048, 2048), "a low soft open-file limit is raised to the hard limit")
    t.ok(re.search(r"the open file limit \(2048\) allows 4\d\d open connections \(200 relay threads, "
                   r"up to \d+ splice pipes\)", log), "the resulting ceiling of open connections is logged")
    # Raising a hard limit takes CAP_SYS_RESOURCE, which a container's root may lack.
    may_raise = subprocess.run(
        ["/usr/bin/python3", "-c", "import resource as r; r.setrlimit(r.RLIMIT_NOFILE, (128, 128)); "
         "r.setrlimit(r.RLIMIT_NOFILE, (264, 264))"], capture_output=True).returncode == 0
    limits, log = run_with_limits(128, 128, 100)
    if may_raise:
        t.ok(limits and limits[0] >= 264 and "raised the open file limit" in log,
             "where allowed (CAP_SYS_RESOURCE), a hard limit below the minimum is raised too")
    else:
        t.ok(limits == (128, 128) and "the open file limit (128) is below" in log,
             "a hard limit below the minimum that cannot be raised: a warning")


t.run(
    test_detach_and_pidfile,
    test_stale_pidfile,
    test_failed_start,
    test_refused_pidfiles,
    test_no_libsystemd,
    (test_notify, (os.path.join(tmp, "notify.sock"), "NOTIFY_SOCKET=/path")),
    (test_notify, ("@ltcp-notify-%d" % os.getpid(), "NOTIFY_SOCKET=@abstract")),
    test_unusable_notify_socket,
    test_privilege_drop,
    test_unknown_user_and_group,
    test_nofile_limit,
)
