"""The LSB init script, run from a make install DESTDIR tree with its own
defaults file (test pidfile and configuration on loopback ports): start
detaches the daemon, status reports it, reload applies a new configuration,
restart replaces the process, stop stops it and removes the pidfile."""

import os
import shutil
import socket
import subprocess
import tempfile

from ltcptest import *

t = Tap()

if not shutil.which("start-stop-daemon", path=os.environ.get("PATH", "") + ":/sbin:/usr/sbin"):
    t.ok(True, "the init script # SKIP start-stop-daemon is not installed")
    t.done()

tmp = tempfile.mkdtemp(prefix="ltcp-init-")
t.cleanup(lambda: shutil.rmtree(tmp, ignore_errors=True))
dest = os.path.join(tmp, "root")
rc, out, err = make("install", "DESTDIR=" + dest)
if not t.ok(rc == 0, "make install DESTDIR=... for the init script test"):
    t.diag(out + err)
    t.done()
sbindir, sysconfdir = make_var("sbindir"), make_var("sysconfdir")
script = dest + sysconfdir + "/init.d/linkerd-tcp"
daemon = dest + sbindir + "/linkerd-tcp"

conf = os.path.join(tmp, "linkerd-tcp.yml")
pidfile = os.path.join(tmp, "run", "linkerd-tcp.pid")
defaults = os.path.join(tmp, "default")
with open(defaults, "w") as f:
    f.write("DAEMON=%s\nCONFIG=%s\nPIDFILE=%s\nLINKERD_TCP_LOG=info\nLINKERD_TCP_OPTS=\n" % (daemon, conf, pidfile))
ENV = dict(os.environ, LINKERD_TCP_DEFAULTS=defaults, SYSTEMCTL_SKIP_REDIRECT="1",
           PATH="/sbin:/usr/sbin:/bin:/usr/bin")

a = t.backend(IdBackend, "backend-a")
b = t.backend(IdBackend, "backend-b")
port = free_port()


def config(backend):
    return static_config(["127.0.0.1:%d" % port], [backend.addr], top="relay_threads: 8\nadmin:\n  addr: 127.0.0.1:0\n")


def write(text):
    write_atomic(conf, text)


def pid_now():
    return read_pidfile(pidfile)


running = pid_alive


def init(action):
    """Runs the init script; a daemon it leaves running is stopped when the script ends."""
    p = subprocess.run(["sh", script, action], capture_output=True, timeout=90, env=ENV, stdin=subprocess.DEVNULL)
    t.detached(pid_now())
    return p.returncode, (p.stdout + p.stderr).decode(errors="replace")


def through(timeout=2):
    return first_line(port, timeout)


def test_start_and_status():
    write(config(a))
    rc, out = init("status")
    t.ok(rc == 3, "status before start: exit 3 (not running)")
    rc, out = init("start")
    pid = pid_now()
    if not t.ok(rc == 0 and pid > 0 and running(pid), "start: exit 0, the daemon runs and wrote the pidfile"):
        t.diag(out)
    t.ok(pid and os.getsid(pid) != os.getsid(0), "start: the daemon is detached (a session of its own)")
    t.eq(through(), b"backend-a", "start: the daemon proxies to the configured backend")
    rc, out = init("status")
    t.ok(rc == 0 and "is running" in out, "status: exit 0, running")
    rc, out = init("start")
    t.ok(rc == 0 and pid_now() == pid, "start again: exit 0, the same process keeps running")


def test_reload():
    pid = pid_now()
    write(config(b))
    rc, out = init("reload")
    t.ok(rc == 0, "reload: exit 0")
    t.ok(wait_until(lambda: through() == b"backend-b", 10), "reload: new connections go to the new backend")
    t.eq(pid_now(), pid, "reload: the same process")

    write("proxies: [\n")
    rc, out = init("reload")
    t.ok(rc != 0 and "<stdin>" not in out and conf in out, "reload with a broken configuration fails and says where")
    t.eq(through(), b"backend-b", "the running configuration stays after a refused reload")
    write(config(a))
    rc, out = init("force-reload")
    t.ok(rc == 0 and wait_until(lambda: through() == b"backend-a", 10), "force-reload applies the configuration too")


def test_restart():
    pid = pid_now()
    rc, out = init("restart")
    pid2 = pid_now()
    t.ok(rc == 0 and pid2 and pid2 != pid and running(pid2) and not running(pid), "restart: a new process")
    t.eq(through(), b"backend-a", "restart: it serves")


def test_stop():
    pid2 = pid_now()
    rc, out = init("stop")
    t.ok(rc == 0 and wait_until(lambda: not running(pid2), 5), "stop: exit 0, the daemon is gone")
    t.ok(not os.path.exists(pidfile), "stop: the pidfile is removed")
    rc, out = init("status")
    t.ok(rc == 3 and "not running" in out, "status after stop: exit 3")
    rc, out = init("stop")
    t.ok(rc == 0, "stop when not running: exit 0")
    rc, out = init("reload")
    t.ok(rc == 7, "reload when not running: exit 7 (program is not running)")


def test_failed_start():
    # A start that fails (the listen address is taken) reports the failure.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", port))
        busy.listen(1)
        rc, out = init("start")
        t.ok(rc != 0 and "Address already in use" in out and not os.path.exists(pidfile),
             "start with the listen address in use: failure, the reason, no pidfile")


def test_unknown_action():
    rc, out = init("bogus")
    t.ok(rc == 3 and "Usage:" in out, "an unknown action: usage, exit 3")


t.run(
    test_start_and_status,
    test_reload,
    test_restart,
    test_stop,
    test_failed_start,
    test_unknown_action,
)
