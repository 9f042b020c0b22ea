"""The command line: help, versions, -n, exit codes, config from stdin,
logging levels, and the startup failures an operator meets first."""

import glob
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from ltcptest import *
from tlsgen import CA

t = Tap()
CONFIGS = os.path.join(SRCDIR, "tests", "unit", "configs")


def test_usage_and_version():
    rc, out, err = run_cli("-h")
    t.ok(rc == 0 and "Usage: linkerd-tcp [OPTIONS] <PATH>" in out, "-h prints usage and exits 0")
    rc, out, err = run_cli("--help")
    t.ok(rc == 0 and "--check-config" in out, "--help lists --check-config")

    rc, out, err = run_cli("-V")
    t.ok(rc == 0 and re.match(r"linkerd-tcp \d+\.\d+\.\d+\n", out), "-V prints the version")
    for lib in ["GnuTLS 3.", "libyaml 0.", "libcurl 7.", "json-c 0."]:
        t.ok(lib in out, "-V names the %s version in use" % lib.split()[0])

    rc, out, err = run_cli()
    t.ok(rc == 2 and "missing configuration PATH" in err, "no PATH: exit 2 with a reason")
    rc, out, err = run_cli("--bogus", "x.yml")
    t.ok(rc == 2 and "Usage" in err, "an unknown option: exit 2 with usage")
    rc, out, err = run_cli("a.yml", "b.yml")
    t.ok(rc == 2 and "too many arguments" in err, "two PATHs: exit 2")


def test_config_checks():
    # The original README example, verbatim, next to the files it names (-n loads them).
    readme = os.path.join(CONFIGS, "good", "readme.yml")
    top = tempfile.mkdtemp(prefix="ltcp-readme-")
    t.cleanup(lambda: shutil.rmtree(top, ignore_errors=True))
    conf = os.path.join(top, "conf")
    chain_dir = os.path.join(top, "eg-ca", "ca", "intermediate", "certs")
    os.makedirs(chain_dir)
    ca = CA(chain_dir, "intermediate")
    shutil.copy(ca.cert, os.path.join(chain_dir, "ca-chain.cert.pem"))
    os.makedirs(conf)
    key, crt = ca.issue("server", ["www.google.com"], out=conf)
    os.rename(key, os.path.join(conf, "private.pem"))
    os.rename(crt, os.path.join(conf, "cert.pem"))
    shutil.copy(readme, os.path.join(conf, "linkerd-tcp.yml"))
    rc, out, err = run_cli("-n", os.path.join(conf, "linkerd-tcp.yml"))
    t.ok(rc == 0 and out == "configuration OK\n", "the original README example passes -n with its files present")
    t.ok("/usr/local/etc/openssl/cert.pem" in err and "skipped" in err,
         "... the missing macOS trust path is a warning, not an error")
    os.unlink(os.path.join(conf, "private.pem"))
    rc, out, err = run_cli("-n", os.path.join(conf, "linkerd-tcp.yml"))
    t.ok(rc == 2 and re.search(r"linkerd-tcp\.yml:6:11: tls: cannot read \S*private\.pem: No such file", err),
         "a missing key file: exit 2 with FILE:LINE:COL")
    rc, out, err = run_cli("--check-config", os.path.join(CONFIGS, "good", "static.json"))
    t.ok(rc == 0 and out == "configuration OK\n", "a JSON configuration passes --check-config")

    with open(os.path.join(CONFIGS, "good", "static.json"), "rb") as f:
        rc, out, err = run_cli("-n", "-", stdin=f.read())
    t.ok(rc == 0 and out == "configuration OK\n", "PATH '-' reads the configuration from stdin")
    rc, out, err = run_cli("-n", "-", stdin=b"proxies: [\n")
    t.ok(rc == 2 and err.startswith("<stdin>:"), "errors in stdin input are reported as <stdin>:LINE:COL")

    rc, out, err = run_cli("-n", os.path.join(CONFIGS, "good", "compat-0.1-empty-admin.yml"))
    t.ok(rc == 0 and out == "configuration OK\n", "a 0.1.x admin section holding only a comment loads (once SIGSEGV)")

    rc, out, err = run_cli("-n", "/nonexistent/linkerd-tcp.yml")
    t.ok(rc == 2 and "cannot read configuration: No such file or directory" in err,
         "a missing file: exit 2 with the reason")


def test_bad_configs():
    # Every broken config in the unit-test corpus: exit 2 and every expected message, in order.
    bad = sorted(glob.glob(os.path.join(CONFIGS, "bad", "*")))
    t.ok(len(bad) >= 12, "at least a dozen broken configurations to try (%d)" % len(bad))
    for path in bad:
        with open(path) as f:
            expects = re.findall(r"# expect: (\d+:\d+): (.*)", f.read())
        rc, out, err = run_cli("-n", path)
        lines = [l for l in err.splitlines() if l.startswith(path + ":")]
        good = rc == 2 and out == "" and len(lines) == len(expects)
        for (pos, text), line in zip(expects, lines):
            good = good and line.startswith("%s:%s: " % (path, pos)) and text in line
        if not t.ok(good, "%s: exit 2 with %d FILE:LINE:COL message(s)" % (os.path.basename(path), len(expects))):
            t.diag(err)


_bombs = []


def bombs():
    """The folder holding the two alias bombs (written once).

    YAML aliases may not multiply work: a 2,000-key anchored proxy referenced 2,000 times once
    produced 4 million errors and 284 MB; a 1 MB string referenced 3,000 times would be 3 GB."""
    if not _bombs:
        d = tempfile.mkdtemp(prefix="ltcp-bomb-")
        t.cleanup(lambda: shutil.rmtree(d, ignore_errors=True))
        keys = ", ".join("k%d: %d" % (i, i) for i in range(2000))
        with open(os.path.join(d, "keys.yml"), "w") as f:
            f.write("proxies:\n  - &a {%s}\n%s" % (keys, "  - *a\n" * 2000))
        with open(os.path.join(d, "text.yml"), "w") as f:
            f.write('x: &s "%s"\nproxies:\n  - servers: [{addr: 127.0.0.1:1, tls: {private_key_path: k, '
                    'cert_paths: [%s]}}]\n    endpoints: [{addr: 127.0.0.1:2}]\n'
                    % ("x" * 1000000, ", ".join(["*s"] * 3000)))
        _bombs.append(d)
    return _bombs[0]


def test_alias_bombs():
    for name in ["keys.yml", "text.yml"]:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.monotonic()
        rc, out, err = run_cli("-n", os.path.join(bombs(), name), timeout=60)
        took = time.monotonic() - start
        rss_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        lines = err.splitlines()
        t.ok(rc == 2 and "too large once aliases are expanded" in err, "alias bomb %s: exit 2, named as such" % name)
        t.ok(len(lines) <= 102 and len(err) < 64 * 1024,
             "... at most 100 errors listed and a count of the rest (%d lines)" % len(lines))
        t.ok(took < 5 and rss_mib < 400, "... in %.2f s with %.0f MiB at most" % (took, rss_mib))


def test_alias_bomb_reload():
    # A SIGHUP reload of such a file fails fast and leaves SIGTERM its meaning.
    d = t.daemon(static_config(["127.0.0.1:0"], [("127.0.0.1:1", 1)]))
    with open(os.path.join(bombs(), "keys.yml")) as f:
        d.reload(f.read(), expect="reload failed")
    t.ok(d.alive() and "too large once aliases are expanded" in d.log(),
         "SIGHUP with the alias bomb: the reload fails, the daemon runs")
    start = time.monotonic()
    d.signal(signal.SIGTERM)
    rc = d.wait(10)
    t.ok(rc == 0 and time.monotonic() - start < 3, "... and SIGTERM right after stops it (exit %s)" % rc)


def _try_connect(port):
    try:
        return connect(port, 1)
    except OSError:
        return None


def first_lines(env):
    """Runs one connection through a daemon with this environment; returns (rc, log).
    The port is fixed in advance: at level warn there is no "listening" line (nor a
    "running" one for t.daemon to wait for)."""
    b = t.backend(EchoBackend)
    port = free_port()
    d = Daemon(static_config(["127.0.0.1:%d" % port], [b.addr]), env=env)
    t.cleanup(d.stop)
    s = wait_until(lambda: _try_connect(port), 10)
    if s is None:
        raise RuntimeError("nothing listens on port %d:\n%s" % (port, d.log()))
    with s:
        s.sendall(b"hi")
        s.shutdown(socket.SHUT_WR)
        recv_all(s, 5)
    wait_until(lambda: b.accepted == 1 and b.open == 0, 5)
    rc = d.stop()
    b.close()
    return rc, d.log()


def test_logging_levels():
    # Logging levels from the environment.
    rc, out, err = run_cli("-n", os.path.join(CONFIGS, "good", "static.json"), env={"LINKERD_TCP_LOG": "loud"})
    t.ok(rc == 2 and "LINKERD_TCP_LOG must be one of" in err, "a bad LINKERD_TCP_LOG value: exit 2")

    rc, log = first_lines({"LINKERD_TCP_LOG": "info"})
    t.ok(rc == 0 and "INFO  conn 1 " in log and "DEBUG" not in log, "LINKERD_TCP_LOG=info: summary lines, no debug")
    rc, log = first_lines({"LINKERD_TCP_LOG": "warn"})
    t.ok(rc == 0 and "INFO" not in log, "LINKERD_TCP_LOG=warn hides info lines")
    rc, log = first_lines({"LINKERD_TCP_LOG": "", "RUST_LOG": "linkerd_tcp=debug"})
    t.ok("DEBUG conn 1 accepted" in log, "RUST_LOG=linkerd_tcp=debug is honoured")
    rc, log = first_lines({"LINKERD_TCP_LOG": "", "RUST_LOG": "trace"})
    t.ok("DEBUG conn 1 accepted" in log, "RUST_LOG=trace is honoured")


def test_startup_failures():
    # A listen address already in use is a runtime failure: exit 1, nothing left running.
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        d = Daemon(static_config(["127.0.0.1:%d" % port], []))
        t.cleanup(d.stop)
        rc = d.wait(10)
        t.ok(rc == 1 and "cannot listen on 127.0.0.1:%d: Address already in use" % port in d.log(),
             "a listen address in use: exit 1 with the reason")

    # An endpoint host name that does not resolve is a startup error too.
    d = Daemon(static_config(["127.0.0.1:0"], ["no-such-host.invalid:80"]))
    t.cleanup(d.stop)
    rc = d.wait(15)
    t.ok(rc == 1 and "no-such-host.invalid" in d.log(), "an unresolvable endpoint name: exit 1 naming it")


def test_demo():
    # The README's first command ends with examples/demo: it must work as shipped.
    demo = subprocess.run([os.path.join(SRCDIR, "examples", "demo"), "--once"], capture_output=True,
                          env=dict(os.environ, LTCP_BIN=BIN), timeout=60)
    out = demo.stdout.decode(errors="replace")
    t.ok(demo.returncode == 0 and "hello from backend 8081" in out and "hello from backend 8082" in out,
         "examples/demo serves requests from both backends through the proxy")
    if demo.returncode != 0:
        t.diag(out + demo.stderr.decode(errors="replace"))


t.run(
    test_usage_and_version,
    test_config_checks,
    test_bad_configs,
    test_alias_bombs,
    test_alias_bomb_reload,
    test_logging_levels,
    test_startup_failures,
    test_demo,
)
