"""Self-test for fake_namerd.py: byte-level checks against namerd-api.md.

Run: /usr/bin/python3 tests/lib/test_fake_namerd.py
Prints TAP (`ok N - ...`, the plan `1..N` at the end); exits non-zero on a
failure.  Uses raw sockets, a hand-written chunked decoder and curl.
"""

import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import fake_namerd as fn  # noqa: E402
from fake_namerd import FakeNamerd  # noqa: E402
from ltcptest import Tap  # noqa: E402

HOST = "127.0.0.1"
NS = "default"
RESOLVE = "/api/1/resolve/default?path=%2Fsvc%2Fdefault"
WATCH = RESOLVE + "&watch=1"

# §4.1 literal bodies.
ONE = b'{"type":"bound","addrs":[{"ip":"127.0.0.1","port":9990,"meta":{}}],"meta":{}}\n'
TWO = (b'{"type":"bound","addrs":[{"ip":"127.0.0.1","port":9990,"meta":{}},'
       b'{"ip":"127.0.0.2","port":9990,"meta":{}}],"meta":{}}\n')
WEIGHTED = (b'{"type":"bound","addrs":[{"ip":"10.0.0.5","port":8080,"meta":{"endpoint_addr_weight":3.0,'
            b'"nodeName":"node-a"}},{"ip":"10.0.0.6","port":8080,"meta":{"endpoint_addr_weight":1.0}}],'
            b'"meta":{"authority":"web.service.dc1.consul"}}\n')
EMPTY = b'{"type":"bound","addrs":[],"meta":{}}\n'
NEG = b'{"type":"neg"}\n'
FAILED = b'{"type":"failed","cause":"malformed address: 10.0.0.7"}\n'
BARE_500 = b"HTTP/1.1 500 Internal Server Error\r\nConnection: close\r\n\r\n"
INVALID_400 = b"Invalid path: invalid / '/' expected but 'i' found at '[i]nvalid'"


t = Tap()


# ---------------------------------------------------------------------------
# A raw HTTP/1.1 client that shows every byte.

class Head:
    def __init__(self, raw):
        self.raw = raw
        lines = raw.decode("latin-1").split("\r\n")
        self.status_line = lines[0]
        self.status = int(lines[0].split()[1])
        self.fields = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:] if line]

    def get(self, name):
        for k, v in self.fields:
            if k.lower() == name.lower():
                return v
        return None

    def has(self, name):
        return self.get(name) is not None


OPEN_CLIENTS = []


class Client:
    def __init__(self, port, timeout=3.0):
        self.sock = socket.create_connection((HOST, port), timeout=timeout)
        self.buf = b""
        OPEN_CLIENTS.append(self)

    def send(self, data):
        self.sock.sendall(data)

    def request(self, target, method="GET", version="HTTP/1.1", headers=b"", body=b""):
        self.send(b"%s %s %s\r\nHost: 127.0.0.1\r\n%s\r\n%s"
                  % (method.encode(), target.encode(), version.encode(), headers, body))

    def _fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("EOF with %r buffered" % self.buf)
        self.buf += data

    def read_until(self, sep):
        while sep not in self.buf:
            self._fill()
        i = self.buf.index(sep) + len(sep)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_head(self):
        return Head(self.read_until(b"\r\n\r\n"))

    def read_response(self):
        """A Content-Length response: (head, body)."""
        head = self.read_head()
        return head, self.read_exact(int(head.get("Content-Length")))

    def read_to_eof(self):
        while True:
            try:
                self._fill()
            except EOFError:
                out, self.buf = self.buf, b""
                return out

    def read_chunk(self):
        """One chunk's data, or None for the terminator.  Checks the framing:
        lowercase hex with no padding, CRLFs, no trailers."""
        size_line = self.read_until(b"\r\n")[:-2]
        size = int(size_line, 16)
        assert size_line == b"%x" % size, "chunk size line %r is not lowercase unpadded hex" % size_line
        if size == 0:
            assert self.read_exact(2) == b"\r\n", "trailers after the last chunk"
            return None
        data = self.read_exact(size)
        assert self.read_exact(2) == b"\r\n", "chunk data not followed by CRLF"
        return data

    def silent_for(self, seconds):
        """True if no byte arrives within `seconds` (and the peer did not close)."""
        if self.buf:
            return False
        ready, _, _ = select.select([self.sock], [], [], seconds)
        return not ready

    def close(self):
        self.sock.close()


def curl(*args):
    r = subprocess.run(["curl", "-sS", *args], capture_output=True, timeout=10)
    return r.returncode, r.stdout, r.stderr


def set_one(n):
    n.set_bound(NS, "/svc/default", [("127.0.0.1", 9990)])


def set_two(n, order=(1, 2)):
    n.set_bound(NS, "/svc/default", [("127.0.0.%d" % i, 9990) for i in order])


def poll(n, target, **kw):
    c = Client(n.port)
    try:
        c.request(target, **kw)
        return c.read_response()
    finally:
        c.close()


# ---------------------------------------------------------------------------
# Unit checks of the syntax helpers.

def test_helpers(n):
    t.eq([fn.java_double(x) for x in (3.0, 1.0, 1e-4, 0.001, 1e7, 123.5, 2.5e-5)],
         ["3.0", "1.0", "1.0E-4", "0.001", "1.0E7", "123.5", "2.5E-5"],
         "doubles are written as Java's Double.toString")
    cases = {
        "invalid": "'/' expected but 'i' found at '[i]nvalid'",
        "": "'/' expected but end of input found at '[]'",
        "/a/": "label char expected but end of input found at '/a/[]'",
        "/a b": "end of input expected but 'b' found at '/a [b]'",
        "/a//b": "label char expected but '/' found at '/a/[/]b'",
    }
    got = {}
    for text in cases:
        try:
            fn.parse_path(text)
            got[text] = None
        except fn.PathError as e:
            got[text] = str(e)
    t.eq(got, cases, "path parse errors carry Finagle's messages")
    t.eq([fn.normalize_path(p) for p in ("/", "  /svc/a  ", "/svc/\\x61", "/#/io.l5d.fs/x")],
         ["/", "/svc/a", "/svc/a", "/#/io.l5d.fs/x"], "valid paths: root, whitespace, \\xHH escapes, #")
    t.eq(fn.decode_query("/r?a=1;b=x+y&path=%2Fsvc%2Fa&a=2&=c&d"),
         {"a": ["1", "2"], "b": ["x y"], "path": ["/svc/a"], "c": [""], "d": [""]},
         "query: & and ; separate, + is space, %HH, name-only and =value forms")
    t.eq([fn.decode_query(q) for q in ("/r?path=%2", "/r?x=%zz&path=/a")], [None, None],
         "query: a malformed % escape drops every parameter")
    t.eq([fn.java_host_address(a) for a in ("::1", "::ffff:10.1.2.3", "10.0.0.1")],
         ["0:0:0:0:0:0:0:1", "10.1.2.3", "10.0.0.1"], "IPv6 is written in Java's uncompressed form")


# ---------------------------------------------------------------------------
# Polling.

def test_poll_bound_exact(n):
    set_one(n)
    c = Client(n.port)
    c.request(RESOLVE)
    head, body = c.read_response()
    t.eq(head.raw + body,
         b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 78\r\n\r\n" + ONE,
         "poll bound: status, application/json, Content-Length, one line + \\n (§4.1)")
    c.close()


def test_poll_bodies(n):
    set_two(n)
    t.eq(poll(n, RESOLVE)[1], TWO, "poll bound, two endpoints: exact §4.1 body")
    n.set_bound(NS, "/svc/w", [("10.0.0.5", 8080, {"endpoint_addr_weight": 3.0, "nodeName": "node-a"}),
                               ("10.0.0.6", 8080, {"endpoint_addr_weight": 1.0})],
                meta={"authority": "web.service.dc1.consul"})
    t.eq(poll(n, "/api/1/resolve/default?path=/svc/w")[1], WEIGHTED, "poll bound with weights/nodeName/authority")
    n.set_bound(NS, "/svc/e", [])
    t.eq(poll(n, "/api/1/resolve/default?path=/svc/e")[1], EMPTY, "poll empty bound")
    n.set_neg(NS, "/svc/n")
    head, body = poll(n, "/api/1/resolve/default?path=/svc/n")
    t.ok(head.status == 200 and body == NEG, "poll neg: 200 {\"type\":\"neg\"}")
    head, body = poll(n, "/api/1/resolve/no-such-ns?path=%2Fsvc%2Fdefault")
    t.ok(head.status == 200 and body == NEG and head.get("Content-Type") == "application/json",
         "unknown namespace: 200 neg, not 404 (§6)")
    head, body = poll(n, "/api/1/resolve/a/b?path=/svc/x")
    t.ok(head.status == 200 and n.request_count("a/b", "/svc/x") == 1, "namespace keeps its slashes (a/b)")
    n.set_failed(NS, "/svc/f", "malformed address: 10.0.0.7")
    t.eq(poll(n, "/api/1/resolve/default?path=/svc/f")[1], FAILED, "poll failed: exact §4.1 body")
    n.set_raw(NS, "/svc/r", '{"type":"bound","addrs":[{"ip"')
    t.eq(poll(n, "/api/1/resolve/default?path=/svc/r")[1], b'{"type":"bound","addrs":[{"ip"\n',
         "set_raw: the body is the given text + \\n")


def test_poll_400(n):
    head, body = poll(n, "/api/1/resolve/default?path=invalid")
    t.eq(body, INVALID_400, "path=invalid: the exact 400 text, no newline")
    t.ok(head.status_line == "HTTP/1.1 400 Bad Request" and head.get("Content-Length") == str(len(body))
         and not head.has("Content-Type"), "400 has Content-Length and no Content-Type")


def test_poll_404(n):
    for target, what in (("/api/1/resolve?path=/svc/a", "resolve without namespace"),
                         ("/api/1/nope?path=/svc/a", "unknown route"),
                         ("/", "root")):
        head, body = poll(n, target)
        t.ok(head.status_line == "HTTP/1.1 404 Not Found" and head.get("Content-Length") == "0" and body == b"",
             "404 with Content-Length: 0 and empty body: " + what)
    c = Client(n.port)
    c.request("/api/1/resolve")
    t.eq(c.read_to_eof(), BARE_500, "no namespace and no path: path is checked first (500)")


def test_bare_500(n):
    for target, what in (("/api/1/resolve/default", "missing path"),
                         ("/api/1/resolve/default?path=%2Fsvc%2", "malformed % escape"),
                         ("/api/1/resolve/default?path=/svc/a&dtab=garbage", "malformed dtab")):
        c = Client(n.port)
        c.request(target)
        t.eq(c.read_to_eof(), BARE_500, "bare 500, close-delimited, no Content-Length: " + what)
        c.close()
    n.set_error(NS, "/svc/default", "boom")
    c = Client(n.port)
    c.request(RESOLVE)
    t.eq(c.read_to_eof(), BARE_500, "set_error while polling: bare 500 then EOF")
    c = Client(n.port)
    c.request("/api/1/resolve/x", version="HTTP/1.0")
    t.eq(c.read_to_eof(), b"HTTP/1.0 500 Internal Server Error\r\nConnection: close\r\n\r\n",
         "HTTP/1.0 request: the bare 500 is HTTP/1.0")
    c = Client(n.port)
    c.request(RESOLVE.replace("default?", "x?"), version="HTTP/1.0")
    t.eq(c.read_to_eof(), b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n"
         b"Connection: close\r\n\r\n" + NEG, "HTTP/1.0 without keep-alive: Connection: close, then EOF")


def test_separators_and_watch_values(n):
    set_one(n)
    t.eq(poll(n, "/api/1/resolve/default?watch=0;path=%2Fsvc%2Fdefault")[1], ONE, "; separates parameters")
    t.eq(poll(n, "/api/1/resolve/default?path=/svc/default&path=/svc/other")[1], ONE, "first repeated value wins")
    head, _ = poll(n, RESOLVE + "&watch=yes")
    t.ok(head.has("Content-Length"), "watch=yes is not streaming")
    for value in ("1", "t", "TRUE", "True"):
        c = Client(n.port)
        c.request(RESOLVE + "&watch=" + value)
        head = c.read_head()
        ok = head.get("Transfer-Encoding") == "chunked" and c.read_chunk() == ONE
        c.close()
        if not ok:
            break
    t.ok(ok, "watch=1, t, TRUE and True all stream")
    c = Client(n.port)
    body = b"path=%2Fsvc%2Fdefault"
    c.request("/api/1/resolve/default", method="POST",
              headers=b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n" % len(body),
              body=body)
    t.eq(c.read_response()[1], ONE, "method not checked; a form-encoded body supplies path (Finagle params)")
    c.close()


def test_keepalive(n):
    set_one(n)
    c = Client(n.port)
    c.request(RESOLVE)
    c.request("/api/1/resolve/default?path=/nothing")  # pipelined
    r1 = c.read_response()
    r2 = c.read_response()
    c.request(RESOLVE, method="HEAD")
    h3 = c.read_head()
    c.request(RESOLVE)
    r4 = c.read_response()
    t.ok(r1[1] == ONE and r2[1] == NEG and r4[1] == ONE, "keep-alive: several polls on one connection")
    t.ok(h3.get("Content-Length") == "78" and h3.status == 200, "HEAD: the GET headers and no body")
    t.ok(c.silent_for(0.05), "connection still open and idle after the polls")
    c.close()


def test_counters_and_log(n):
    set_one(n)
    poll(n, RESOLVE)
    poll(n, "/api/1/resolve/default?path=/svc/default")
    c = Client(n.port)
    c.request(WATCH)
    c.read_head()
    c.read_chunk()
    c.close()
    t.eq((n.request_count(NS, "/svc/default", watch=False), n.request_count(NS, "/svc/default", watch=True),
          n.request_count(NS, "/svc/default")), (2, 1, 3), "request counts per (namespace, path, watch)")
    t.eq(n.request_lines()[0], "GET /api/1/resolve/default?path=%2Fsvc%2Fdefault HTTP/1.1",
         "the log keeps the raw request line (percent-encoding visible)")
    t.ok(n.requests()[2].watch is True and n.requests()[0].path == "/svc/default", "log records carry path and watch")


def test_fail_next(n):
    set_one(n)
    n.fail_next(2, 503, b"down")
    c = Client(n.port)
    c.request(RESOLVE)
    h1, b1 = c.read_response()
    c.request(RESOLVE)
    h2, _ = c.read_response()
    c.request(RESOLVE)
    h3, b3 = c.read_response()
    c.close()
    t.ok(h1.status_line == "HTTP/1.1 503 Service Unavailable" and b1 == b"down" and h2.status == 503
         and h3.status == 200 and b3 == ONE, "fail_next(2, 503): two 503s with Content-Length, then normal")


def test_fail_next_drip(n):
    set_one(n)
    n.fail_next(1, 503, b"overloaded\n", drip=0.05)
    c = Client(n.port)
    c.request(WATCH)
    head = c.read_head()
    chunks = [c.read_chunk() for _ in range(3)]
    t.ok(head.status_line == "HTTP/1.1 503 Service Unavailable" and head.get("Transfer-Encoding") == "chunked"
         and not head.has("Content-Length") and chunks == [b"overloaded\n"] * 3,
         "fail_next(drip=): a chunked 503 whose body keeps coming")
    c.close()
    t.ok(n.wait_until(lambda: n.connections() == 0, 3), "drip: the server stops when the client leaves")
    w, head = open_watch(n)
    t.ok(head.status == 200 and w.read_chunk() == ONE, "drip: the next request is served normally")
    w.close()


def test_hang(n):
    set_one(n)
    n.hang(True)
    c = Client(n.port)
    c.request(RESOLVE)
    w = Client(n.port)
    w.request(WATCH)
    n.wait_requests(2)
    t.ok(c.silent_for(0.2) and w.silent_for(0.0), "hang: neither the poll nor the new stream gets a byte")
    n.hang(False)
    t.eq(c.read_response()[1], ONE, "un-hung: the poll is answered")
    t.ok(w.read_head().status == 200 and w.read_chunk() == ONE, "un-hung: the stream starts with its snapshot")
    c.close()
    w.close()


def test_pending(n):
    n.set_pending(NS, "/svc/default")
    w = Client(n.port)
    w.request(WATCH)
    head = w.read_head()
    t.ok(head.status == 200 and w.silent_for(0.1), "pending watch: headers at once, then silence")
    c = Client(n.port)
    c.request(RESOLVE)
    set_one(n)
    t.ok(w.read_chunk() == ONE and c.read_response()[1] == ONE, "pending resolves: stream and held poll both answered")
    w.close()
    c.close()


# ---------------------------------------------------------------------------
# Watch streams.

def open_watch(n, target=WATCH):
    c = Client(n.port)
    c.request(target)
    return c, c.read_head()


def test_watch_framing(n):
    set_one(n)
    c, head = open_watch(n)
    t.eq(head.raw, b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
         "watch headers: application/json, chunked, no Content-Length")
    t.eq(c.read_until(b"\r\n"), b"4e\r\n", "first chunk size is lowercase hex 4e (78 bytes)")
    c.buf = b"4e\r\n" + c.buf
    t.eq(c.read_chunk(), ONE, "first chunk is exactly one snapshot line")
    set_two(n, order=(1, 2))
    t.eq(c.read_chunk(), TWO, "a change sends one chunk with the full new snapshot")
    set_two(n, order=(2, 1))  # same set, re-ordered: suppressed
    set_two(n, order=(1, 2))
    n.set_neg(NS, "/svc/default")
    t.eq(c.read_chunk(), NEG, "re-ordered and identical sets are not re-sent; neg is sent")
    set_one(n)
    t.eq(c.read_chunk(), ONE, "neg does not end the stream")
    n.set_failed(NS, "/svc/default", "x")
    n.set_raw(NS, "/svc/default", "garbage")
    t.eq((c.read_chunk(), c.read_chunk()), (b'{"type":"failed","cause":"x"}\n', b"garbage\n"),
         "failed and raw lines are one chunk each")
    n.set_error(NS, "/svc/default", "name tree failed")
    t.eq(c.read_chunk(), b"name tree failed\n", "error: the message as a plain-text line")
    t.eq(c.read_chunk(), None, "error: then the 0-size terminator")
    set_one(n)
    c.request(RESOLVE)
    t.eq(c.read_response()[1], ONE, "after the terminator the connection is reused for a poll")
    t.ok(n.wait_streams(0), "the stream is no longer counted as open")
    c.close()


def test_watch_error_at_start(n):
    n.set_error(NS, "/svc/default", "error")
    c, head = open_watch(n)
    t.ok(head.status == 200 and c.read_chunk() == b"error\n" and c.read_chunk() is None,
         "stream opened on an error: 200, `error\\n`, terminator (namerd's 'errors are printed')")
    c.close()


def test_watch_cut(n):
    set_one(n)
    c, _ = open_watch(n)
    c.read_chunk()
    w2, _ = open_watch(n)
    w2.read_chunk()
    t.eq(n.cut_streams(), 2, "cut_streams reports the streams it cut")
    try:
        c.read_chunk()
        cut_clean = False
    except EOFError:
        cut_clean = c.buf == b""
    t.ok(cut_clean, "cut: EOF with no terminating chunk")
    r, _ = open_watch(n)
    r.read_chunk()
    n.cut_streams(rst=True)
    try:
        r.read_chunk()
        reset = False
    except ConnectionResetError:
        reset = True
    except EOFError:
        reset = False
    t.ok(reset, "cut_streams(rst=True): the client sees a reset")
    c.close()
    w2.close()
    r.close()


def test_watch_fanout_and_split(n):
    set_one(n)
    a, _ = open_watch(n)
    b, _ = open_watch(n)
    a.read_chunk()
    b.read_chunk()
    set_two(n)
    t.ok(a.read_chunk() == TWO and b.read_chunk() == TWO, "two streams on one name both get the update")
    n.max_chunk_size = 50
    set_one(n)
    parts = [a.read_chunk(), a.read_chunk()]
    t.ok(parts == [ONE[:50], ONE[50:]], "max_chunk_size splits one line across chunks")
    n.max_chunk_size = None
    a.close()
    b.close()
    t.ok(n.wait_streams(0), "client close ends the server's streams")


def test_watch_stream_messages(n):
    set_one(n)
    n.stream_messages = 1
    c, head = open_watch(n)
    t.ok(head.status == 200 and c.read_chunk() == ONE and c.read_chunk() is None,
         "stream_messages=1: one snapshot, then the terminator")
    t.ok(n.wait_streams(0), "stream_messages: the stream is no longer open")
    c.request(WATCH)
    t.ok(c.read_head().status == 200 and c.read_chunk() == ONE and c.read_chunk() is None,
         "stream_messages: the connection is reused for the next stream")
    n.stream_messages = None
    c.close()


def test_stop_start(n):
    set_one(n)
    port = n.port
    c, _ = open_watch(n)
    c.read_chunk()
    n.stop()
    try:
        c.read_chunk()
        cut = False
    except (EOFError, ConnectionResetError):
        cut = True
    t.ok(cut, "stop(): an open stream is cut without terminator")
    try:
        socket.create_connection((HOST, port), timeout=1).close()
        refused = False
    except ConnectionRefusedError:
        refused = True
    t.ok(refused, "stop(): connections are refused")
    n.start()
    d, _ = open_watch(n)
    t.ok(n.port == port and d.read_chunk() == ONE, "start(): same port, a new stream gets the full snapshot")
    c.close()
    d.close()


# ---------------------------------------------------------------------------
# curl.

def test_curl(n):
    set_one(n)
    rc, out, _ = curl("-i", n.url + RESOLVE)
    t.ok(rc == 0 and out.endswith(b"Content-Length: 78\r\n\r\n" + ONE), "curl -i: polling bound")
    rc, out, _ = curl("-i", "-w", "%{http_code}", n.url + "/api/1/resolve/default")
    t.eq((rc, out), (0, BARE_500 + b"500"), "curl accepts the close-delimited bare 500")
    rc, out, _ = curl("-G", "--data-urlencode", "path=/svc/default", n.url + "/api/1/resolve/default")
    t.ok(rc == 0 and out == ONE and n.request_lines()[-1].startswith("GET /api/1/resolve/default?path=%2fsvc%2fdefault "),
         "curl --data-urlencode: lowercase %2f escapes decode too")
    rc, out, _ = curl("-i", n.url + "/api/1/resolve/default?path=invalid")
    t.ok(out.endswith(b"\r\n\r\n" + INVALID_400) and b"Content-Type" not in out, "curl: the 400 text")
    proc = subprocess.Popen(["curl", "-sS", "--raw", "-N", n.url + WATCH], stdout=subprocess.PIPE)
    ok = n.wait_streams(1)
    set_two(n)
    n.set_error(NS, "/svc/default", "boom")
    out, _ = proc.communicate(timeout=5)
    t.ok(ok and proc.returncode == 0 and out == b"4e\r\n" + ONE + b"\r\n77\r\n" + TWO + b"\r\n5\r\nboom\n\r\n0\r\n\r\n",
         "curl --raw: exact chunk framing, error line, clean terminator")


# ---------------------------------------------------------------------------
# Script mode.

def test_script(n):
    n.stop()
    with tempfile.TemporaryDirectory() as tmp:
        state = os.path.join(tmp, "state.json")

        def write(doc, stamp):
            with open(state, "w") as f:
                json.dump(doc, f)
            os.utime(state, ns=(stamp, stamp))

        write({"default /svc/default": {"type": "bound", "addrs": [["127.0.0.1", 9990]]}}, 10 ** 18)
        proc = subprocess.Popen([sys.executable, os.path.join(HERE, "fake_namerd.py"), "--port", "0",
                                 "--state", state], stdout=subprocess.PIPE, text=True)
        try:
            ready, _, _ = select.select([proc.stdout], [], [], 5)
            line = proc.stdout.readline() if ready else ""
            t.ok(line.startswith("listening on 127.0.0.1:"), "script prints `listening on 127.0.0.1:PORT`")
            url = "http://" + line.split()[-1]
            t.eq(curl(url + RESOLVE)[1], ONE, "script serves the state file")

            # Same size, same mtime: only SIGHUP can make it reload.
            write({"default /svc/default": {"type": "bound", "addrs": [["127.0.0.2", 9990]]}}, 10 ** 18)
            proc.send_signal(signal.SIGHUP)
            t.ok(wait_for(lambda: b"127.0.0.2" in curl(url + RESOLVE)[1]), "SIGHUP reloads the state file")

            write({"default /svc/other": {"type": "failed", "cause": "c"}}, 2 * 10 ** 18)
            t.ok(wait_for(lambda: curl(url + RESOLVE)[1] == NEG), "mtime change reloads; dropped names become neg")
            t.eq(curl(url + "/api/1/resolve/default?path=/svc/other")[1], b'{"type":"failed","cause":"c"}\n',
                 "reloaded state is served")
        finally:
            proc.terminate()
            proc.wait(5)
            proc.stdout.close()
        t.eq(proc.returncode, 0, "script exits 0 on SIGTERM")


def wait_for(pred, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


# ---------------------------------------------------------------------------

TESTS = [
    test_helpers, test_poll_bound_exact, test_poll_bodies, test_poll_400, test_poll_404, test_bare_500,
    test_separators_and_watch_values, test_keepalive, test_counters_and_log, test_fail_next,
    test_fail_next_drip, test_hang, test_pending, test_watch_framing, test_watch_error_at_start, test_watch_cut,
    test_watch_fanout_and_split, test_watch_stream_messages,
    test_stop_start, test_curl, test_script,
]


def main():
    started = time.monotonic()
    for test in TESTS:
        n = FakeNamerd().start()
        try:
            test(n)
        except Exception:
            t.ok(False, "%s raised" % test.__name__)
            t.diag(traceback.format_exc())
        finally:
            n.stop()
            while OPEN_CLIENTS:
                OPEN_CLIENTS.pop().close()
    t.diag("%.2f s" % (time.monotonic() - started))
    t.done()


if __name__ == "__main__":
    main()
