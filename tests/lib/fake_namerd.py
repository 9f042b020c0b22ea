"""A fake namerd: the `io.l5d.httpController` resolve endpoint, byte for byte.

Test tool for linkerd-tcp's namerd client (not shipped).  It follows
/work/shared/reference/namerd-api.md, which was worked out from the namerd
1.7.5 and Finagle 21.4 sources.  Run it with /usr/bin/python3 (standard
library only).

What it emulates
----------------
* A Finagle HTTP/1.1 server on 127.0.0.1 (port 0, meaning ephemeral, by
  default).  It keeps connections alive, serves several requests per
  connection one after the other, reads Content-Length or chunked request
  bodies, and applies Finagle's response conformance and connection
  management:
  - Content-Length on every fully buffered response (200, 400, 404, ...).
  - The "bare 500" for a failed request: no Content-Length, no
    Transfer-Encoding, `Connection: close`, an EOF-delimited empty body.
  - `Connection: close` and a close after the response when the request is
    not keep-alive (HTTP/1.0 without keep-alive, or `Connection: close`).
  - HEAD: the headers of the GET response, with no body.
  - 414 for a request line over 4 KiB, 431 for headers over 8 KiB, 400 for a
    malformed request; all three close the connection.
* Routing as in namerd (§2):
  - only the raw request path before `?` is used, and it is not decoded;
  - `/api/1/resolve<anything>` is the resolve route; `path` is parsed first,
    then the namespace (everything after `/api/1/resolve/`, slashes
    included) is checked;
  - the method is not checked;
  - every other path gives 404 with an empty body.
* Query decoding like Finagle's QueryParamDecoder with Netty's
  decodeComponent (§2.6):
  - `&` and `;` both separate parameters, the first `=` splits name from
    value, and the first value of a repeated name wins;
  - `+` is a space and `%HH` runs decode as UTF-8;
  - a malformed `%` escape makes every parameter absent;
  - a form-encoded request body is consulted before the query string, as in
    Finagle's RequestParamMap.
* `path` is parsed with Finagle's Path syntax and Finagle's error messages:
  missing gives the bare 500, malformed gives 400
  `Invalid path: <raw> / <message>` with no Content-Type.  A `dtab` parameter
  is checked with Finagle's dtab grammar (a bad one gives the bare 500) and is
  otherwise ignored.  `watch` is on for `1`, `t` or `true`, case-insensitive.
* Resolve answers (§3.1, §4.1, §5, §6):
  - compact one-line JSON plus "\\n" with `Content-Type: application/json`;
  - polling answers carry Content-Length;
  - watch answers are chunked, one chunk per line (lowercase hex size).  The
    first chunk is the full snapshot, then a chunk is sent only on a
    structural change, with no heartbeats; neg and failed keep the stream
    open; an error writes `<message>\\n` and then `0\\r\\n\\r\\n`, and the
    connection stays reusable;
  - unknown namespaces and names are `{"type":"neg"}` with status 200;
  - doubles in meta are printed as Java prints them (`3.0`, `1.0E-4`), and
    IPv6 addresses in Java's uncompressed form.

Controls for tests (thread-safe): see the FakeNamerd class.  There are
setters per name, `hang`, `cut_streams`, `stop`/`start` on the same port,
`fail_next` (also with a body that never ends), `stream_messages` (end
every watch stream cleanly after N messages), request counters and a
request log.

What it deliberately does not emulate
-------------------------------------
* The bind, addr, delegate, dtabs and bound-names endpoints: they are 404
  here.  There are no dtabs or namers either.  Each (namespace, path) is
  looked up directly in a table that the test fills, so `dtab=` never changes
  an answer.
* Weighted-union random draws, TLS, admin port, Finagle's 5 MiB body limit
  and `Expect: 100-continue`.
* Header order and spelling were never observed on a live namerd.  This fake
  writes Content-Type, then Content-Length or Transfer-Encoding, then
  Connection, in the spelling the reference uses.  Clients must not depend
  on it.

Script use:
    /usr/bin/python3 tests/lib/fake_namerd.py --port 4180 --state state.json
The state file maps "<namespace> <path>" to a state object (see
`state_from_json`).  It is re-read on SIGHUP or when the file changes, and
names it no longer lists become neg.  The script prints
`listening on 127.0.0.1:PORT` on stdout.
"""

import argparse
import decimal
import http
import ipaddress
import json
import math
import os
import select
import signal
import socket
import struct
import sys
import threading
import unicodedata
from collections import namedtuple

HOST = "127.0.0.1"
RESOLVE_PREFIX = "/api/1/resolve"
MAX_REQUEST_LINE = 4096
MAX_HEADERS = 8192
JSON_TYPE = "application/json"

# Reason phrases as Finagle/Netty spell them.
REASONS = {
    200: "OK",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def reason_phrase(status):
    """The reason phrase for an HTTP status code."""
    if status in REASONS:
        return REASONS[status]
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown Status"


# ---------------------------------------------------------------------------
# Finagle Path / Dtab syntax (NameTreeParsers), with its error messages.
# Java strings are UTF-16, so the parser walks UTF-16 code units.  This
# matters only for the text of error messages about non-BMP characters.

class PathError(ValueError):
    """A Finagle IllegalArgumentException from the name parsers."""


_EOI = None  # the parser's end-of-input marker
_SHOWABLE = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_:.#$%-")
_HEX = frozenset("0123456789abcdefABCDEF")
_JAVA_EXTRA_SPACE = frozenset("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f")


def _utf16_units(s):
    data = s.encode("utf-16-le", "surrogatepass")
    return [chr(int.from_bytes(data[i:i + 2], "little")) for i in range(0, len(data), 2)]


def _from_units(text):
    """Join UTF-16 code units back into a Python string (lone surrogates kept)."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def java_is_whitespace(c):
    """java.lang.Character.isWhitespace for one UTF-16 code unit."""
    if c in _JAVA_EXTRA_SPACE:
        return True
    if c in ("\u00a0", "\u2007", "\u202f"):
        return False
    return unicodedata.category(c) in ("Zs", "Zl", "Zp")


class _NameParser:
    """A port of com.twitter.finagle.NameTreeParsers (Finagle 21.4)."""

    def __init__(self, text):
        self.units = _utf16_units(text)
        self.idx = 0

    # -- primitives --------------------------------------------------------
    def at_end(self):
        return self.idx >= len(self.units)

    def peek(self):
        return _EOI if self.at_end() else self.units[self.idx]

    def next(self):
        self.idx += 1

    def illegal(self, expected, found):
        """Raise with Finagle's message; expected/found are chars, _EOI or words."""
        exp = self._describe(expected)
        fnd = self._describe(found)
        u = self.units
        if self.at_end():
            shown = "".join(u) + "[]"
        else:
            shown = "%s[%s]%s" % ("".join(u[:self.idx]), u[self.idx], "".join(u[self.idx + 1:]))
        raise PathError(_from_units("%s expected but %s found at '%s'" % (exp, fnd, shown)))

    @staticmethod
    def _describe(what):
        if what is _EOI:
            return "end of input"
        if isinstance(what, tuple):  # a word such as ("label char",)
            return what[0]
        return "'%s'" % what

    def maybe_eat(self, c):
        if self.peek() != c:
            return False
        self.next()
        return True

    def eat(self, c):
        if not self.maybe_eat(c):
            self.illegal(c, self.peek())

    def eat_whitespace(self):
        while not self.at_end() and (java_is_whitespace(self.units[self.idx]) or self.units[self.idx] == "#"):
            if self.units[self.idx] == "#":
                self.eat_line()
            else:
                self.next()

    def eat_line(self):
        while not self.at_end() and self.units[self.idx] != "\n":
            self.next()
        if not self.at_end():
            self.eat("\n")

    def ensure_end(self):
        if not self.at_end():
            self.illegal(_EOI, self.peek())

    # -- paths -------------------------------------------------------------
    @staticmethod
    def is_label_char(c):
        return c is not _EOI and (c in _SHOWABLE or c == "\\")

    def parse_hex_char(self):
        c = self.peek()
        if c is not _EOI and c in _HEX:
            self.next()
            return c
        self.illegal(("hex char",), c)

    def parse_label(self):
        out = bytearray()
        while True:
            c = self.peek()
            if c is not _EOI and c in _SHOWABLE:
                self.next()
                out.append(ord(c))
            elif c == "\\":
                self.next()
                self.eat("x")
                hi = self.parse_hex_char()
                lo = self.parse_hex_char()
                out.append(int(hi + lo, 16))
            else:
                self.illegal(("label char",), c)
            if not self.is_label_char(self.peek()):
                return bytes(out)

    def parse_path(self):
        self.eat_whitespace()
        self.eat("/")
        labels = []
        if self.is_label_char(self.peek()):
            labels.append(self.parse_label())
            while self.maybe_eat("/"):
                labels.append(self.parse_label())
        return tuple(labels)

    def parse_all_path(self):
        path = self.parse_path()
        self.eat_whitespace()
        self.ensure_end()
        return path

    # -- dtabs (syntax check only) -----------------------------------------
    def parse_prefix(self):
        self.eat_whitespace()
        self.eat("/")
        if self.peek() == "*" or self.is_label_char(self.peek()):
            self.parse_prefix_elem()
            while self.maybe_eat("/"):
                self.parse_prefix_elem()

    def parse_prefix_elem(self):
        if self.peek() == "*":
            self.next()
        else:
            self.parse_label()

    @staticmethod
    def is_number_char(c):
        return c is not _EOI and (c == "." or unicodedata.category(c) == "Nd")

    def parse_number(self):
        text = ""
        seen_dot = False
        while self.is_number_char(self.peek()):
            if self.peek() == ".":
                if seen_dot:
                    self.illegal(("number char",), self.peek())
                seen_dot = True
            text += self.peek()
            self.next()
        if text == ".":
            self.illegal(("weight",), ".")
        if not text.isascii():  # Java's toDouble rejects non-ASCII digits
            raise PathError("For input string: \"%s\"" % text)

    def parse_tree(self):
        self.parse_tree1()
        self.eat_whitespace()
        while self.maybe_eat("|"):
            self.parse_tree1()
            self.eat_whitespace()

    def parse_tree1(self):
        self.parse_weighted()
        self.eat_whitespace()
        while self.maybe_eat("&"):
            self.parse_weighted()
            self.eat_whitespace()

    def parse_simple(self):
        self.eat_whitespace()
        c = self.peek()
        if c == "(":
            self.next()
            self.parse_tree()
            self.eat_whitespace()
            self.eat(")")
        elif c == "/":
            self.parse_path()
        elif c in ("!", "~", "$"):
            self.next()
        else:
            self.illegal(("simple",), c)

    def parse_weighted(self):
        self.eat_whitespace()
        if self.is_number_char(self.peek()):
            self.parse_number()
            self.eat_whitespace()
            self.eat("*")
            self.eat_whitespace()
        self.parse_simple()

    def parse_dentry(self):
        self.parse_prefix()
        self.eat_whitespace()
        self.eat("=")
        self.eat(">")
        self.parse_tree()

    def parse_all_dtab(self):
        while True:
            self.eat_whitespace()
            if not self.at_end():
                self.parse_dentry()
                self.eat_whitespace()
            if not self.maybe_eat(";"):
                break
        self.eat_whitespace()
        self.ensure_end()


def parse_path(text):
    """Finagle Path.read: a tuple of label bytes, or PathError with Finagle's message."""
    return _NameParser(text).parse_all_path()


def check_dtab(text):
    """Finagle Dtab.read, as a syntax check only: raises PathError if it does not parse."""
    _NameParser(text).parse_all_dtab()


def show_path(labels):
    """Finagle Path.show: `/a/b`; a label with unshowable bytes is all `\\xhh`."""
    shown = []
    for label in labels:
        if all(chr(b) in _SHOWABLE for b in label):
            shown.append(label.decode("ascii"))
        else:
            shown.append("".join("\\x%x%x" % (b >> 4, b & 15) for b in label))
    return "/" + "/".join(shown)


def normalize_path(text):
    """The table key for a logical name: the shown form of the parsed path."""
    return show_path(parse_path(text))


# ---------------------------------------------------------------------------
# Query strings: Finagle QueryParamDecoder + Netty QueryStringDecoder.decodeComponent.

class QueryError(ValueError):
    """Netty's IllegalArgumentException for a malformed % escape."""


def _hex_nibble(c):
    return int(c, 16) if c in _HEX else -1


def decode_component(s):
    """Netty decodeComponent: `+` is a space, %HH runs are UTF-8 (bad bytes become U+FFFD)."""
    if "%" not in s and "+" not in s:
        return s
    out = []
    i = 0
    n = len(s)
    while i < n:
        c = s[i]
        if c != "%":
            out.append(" " if c == "+" else c)
            i += 1
            continue
        raw = bytearray()
        while i < n and s[i] == "%":
            if i + 3 > n:
                raise QueryError("unterminated escape sequence at index %d of: %s" % (i, s))
            hi, lo = _hex_nibble(s[i + 1]), _hex_nibble(s[i + 2])
            if hi < 0 or lo < 0:
                raise QueryError("invalid hex byte '%s' at index %d of '%s'" % (s[i + 1:i + 3], i + 1, s))
            raw.append(hi << 4 | lo)
            i += 3
        out.append(raw.decode("utf-8", "replace"))
    return "".join(out)


def decode_params(s):
    """QueryParamDecoder.decodeParams: an ordered dict of name -> [values]."""
    params = {}
    name = None
    mark = 0
    for i, c in enumerate(s):
        if c == "=" and name is None:
            if mark != i:
                name = decode_component(s[mark:i])
            mark = i + 1
        elif c in "&;":
            if name is None and mark != i:
                params.setdefault(decode_component(s[mark:i]), []).append("")
            elif name is not None:
                params.setdefault(name, []).append(decode_component(s[mark:i]))
                name = None
            mark = i + 1
    if mark != len(s):
        if name is None:
            params.setdefault(decode_component(s[mark:]), []).append("")
        else:
            params.setdefault(name, []).append(decode_component(s[mark:]))
    elif name is not None:
        params.setdefault(name, []).append("")
    return params


def decode_query(target):
    """The query parameters of a request target, or None if an escape is malformed
    (Finagle then treats every parameter as absent)."""
    q = target.find("?")
    if q < 0 or q == len(target) - 1:
        return {}
    try:
        return decode_params(target[q + 1:])
    except QueryError:
        return None


def is_true(value):
    """Finagle StringUtil.toBoolean, as used by getBooleanParam("watch")."""
    return value is not None and value.lower() in ("1", "t", "true")


# ---------------------------------------------------------------------------
# JSON as Jackson writes it: compact, keys in the given order, Java doubles.

class RawJson:
    """A value written verbatim into the JSON output (e.g. RawJson("1.0E-4"))."""

    def __init__(self, text):
        self.text = text

    def __eq__(self, other):
        return isinstance(other, RawJson) and other.text == self.text

    def __hash__(self):
        return hash(self.text)

    def __repr__(self):
        return "RawJson(%r)" % self.text


def java_double(x):
    """java.lang.Double.toString (shortest digits): 3.0, 0.001, 1.0E-4, 1.0E7."""
    if math.isnan(x):
        return '"NaN"'
    if math.isinf(x):
        return '"Infinity"' if x > 0 else '"-Infinity"'
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    sign = "-" if x < 0 else ""
    d = decimal.Decimal(repr(abs(x))).normalize()
    _, digits, exp = d.as_tuple()
    ds = "".join(map(str, digits))
    if 1e-3 <= abs(x) < 1e7:
        if exp >= 0:
            return sign + ds + "0" * exp + ".0"
        point = len(ds) + exp
        if point <= 0:
            return sign + "0." + "0" * -point + ds
        return sign + ds[:point] + "." + ds[point:]
    sci = len(ds) + exp - 1
    return "%s%s.%sE%d" % (sign, ds[0], ds[1:] or "0", sci)


_JSON_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _json_string(s):
    out = ['"']
    for c in s:
        if c in _JSON_SHORT_ESCAPES:
            out.append(_JSON_SHORT_ESCAPES[c])
        elif c < " ":
            out.append("\\u%04X" % ord(c))
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def to_json(value):
    """Compact JSON like Jackson's: no whitespace, dict order kept, no ASCII escaping."""
    if isinstance(value, RawJson):
        return value.text
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return java_double(value)
    if isinstance(value, str):
        return _json_string(value)
    if isinstance(value, dict):
        return "{" + ",".join(_json_string(str(k)) + ":" + to_json(v) for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(to_json(v) for v in value) + "]"
    raise TypeError("not JSON-serialisable: %r" % (value,))


def _canonical(value):
    """A hashable form for structural equality (dict key order ignored)."""
    if isinstance(value, dict):
        return ("{}", frozenset((str(k), _canonical(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return ("[]", tuple(_canonical(v) for v in value))
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, float):
        return ("f", java_double(value))
    return (type(value).__name__, value)


def java_host_address(ip):
    """InetAddress.getHostAddress: IPv6 uncompressed (`0:0:0:0:0:0:0:1`), IPv4-mapped
    addresses as IPv4.  Text that is not an IP literal is returned unchanged."""
    text, _, scope = str(ip).partition("%")
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return ip
    if addr.version == 4:
        return str(addr)
    if addr.ipv4_mapped is not None:
        return str(addr.ipv4_mapped)
    groups = ":".join("%x" % int(g, 16) for g in addr.exploded.split(":"))
    return groups + ("%" + scope if scope else "")


# ---------------------------------------------------------------------------
# Name states.

class State:
    """One resolution state.  `kind` is bound, neg, failed, raw, error or pending."""

    kind = None

    def line(self):
        """The bytes one message carries (polling body or one watch chunk)."""
        raise NotImplementedError

    def _key(self):
        return ()

    def __eq__(self, other):
        return type(self) is type(other) and self._key() == other._key()

    def __hash__(self):
        return hash((self.kind, self._key()))

    def __repr__(self):
        return "%s%r" % (type(self).__name__, self._key())


class Bound(State):
    """`{"type":"bound","addrs":[...],"meta":{...}}`.  Addresses form a set."""

    kind = "bound"

    def __init__(self, addrs, meta=None, raw_ips=False):
        self.addrs = []
        seen = set()
        for a in addrs:
            ip, port, ameta = _address_tuple(a)
            if not raw_ips:
                ip = java_host_address(ip)
            key = (ip, port, _canonical(ameta))
            if key not in seen:  # a set: duplicates are impossible
                seen.add(key)
                self.addrs.append((ip, port, ameta))
        self.meta = dict(meta or {})

    def line(self):
        addrs = [{"ip": ip, "port": port, "meta": m} for ip, port, m in self.addrs]
        return (to_json({"type": "bound", "addrs": addrs, "meta": self.meta}) + "\n").encode()

    def _key(self):
        return (frozenset((ip, port, _canonical(m)) for ip, port, m in self.addrs), _canonical(self.meta))


def _address_tuple(a):
    if isinstance(a, dict):
        return a["ip"], a["port"], dict(a.get("meta") or {})
    if len(a) == 2:
        return a[0], a[1], {}
    if len(a) == 3:
        return a[0], a[1], dict(a[2] or {})
    raise ValueError("an address is (ip, port) or (ip, port, meta): %r" % (a,))


class Neg(State):
    kind = "neg"

    def line(self):
        return b'{"type":"neg"}\n'


class Failed(State):
    """`{"type":"failed","cause":...}`; the cause is left out when None."""

    kind = "failed"

    def __init__(self, cause=None):
        self.cause = cause

    def line(self):
        obj = {"type": "failed"}
        if self.cause is not None:
            obj["cause"] = self.cause
        return (to_json(obj) + "\n").encode()

    def _key(self):
        return (self.cause,)


class Raw(State):
    """An arbitrary body line (garbage, truncated JSON...), sent as given."""

    kind = "raw"

    def __init__(self, text, newline=True):
        data = text.encode() if isinstance(text, str) else bytes(text)
        self.data = data + b"\n" if newline else data

    def line(self):
        return self.data

    def _key(self):
        return (self.data,)


class Error(State):
    """Resolution throws: polling gets the bare 500; a stream gets `message\\n` and ends."""

    kind = "error"

    def __init__(self, message):
        self.message = message

    def line(self):
        return (str(self.message) + "\n").encode()

    def _key(self):
        return (self.message,)


class Pending(State):
    """No answer yet: polling waits, a stream stays silent."""

    kind = "pending"


NEG = Neg()
PENDING = Pending()


def state_from_json(obj):
    """A State from its JSON form, as used in state files:
    {"type":"bound","addrs":[{"ip":..,"port":..,"meta":{..}} or [ip, port(, meta)]],"meta":{..}},
    {"type":"neg"}, {"type":"failed"(,"cause":..)}, {"type":"raw","text":..(,"newline":false)},
    {"type":"error","message":..}, {"type":"pending"}."""
    kind = obj.get("type")
    if kind == "bound":
        return Bound(obj.get("addrs", []), obj.get("meta"), raw_ips=obj.get("raw_ips", False))
    if kind == "neg":
        return NEG
    if kind == "failed":
        return Failed(obj.get("cause"))
    if kind == "raw":
        return Raw(obj["text"], obj.get("newline", True))
    if kind == "error":
        return Error(obj.get("message", "error"))
    if kind == "pending":
        return PENDING
    raise ValueError("unknown state type %r" % (kind,))


# ---------------------------------------------------------------------------
# HTTP plumbing.

Request = namedtuple("Request", "line method target version headers body namespace path watch")
Request.__doc__ = """One request as received.  `line` is the raw request line (str, Latin-1);
`headers` a list of (name, value); `namespace`/`path`/`watch` are set for resolve
requests that got past path parsing (path is the normalised form), else None."""


class _Response:
    """A response before Finagle's conformance filter and connection manager."""

    def __init__(self, status, headers=(), body=b"", chunked=False, reason=None):
        self.status = status
        self.reason = reason or reason_phrase(status)
        self.headers = list(headers)
        self.body = body
        self.chunked = chunked

    def has(self, name):
        return any(k.lower() == name.lower() for k, _ in self.headers)

    def remove(self, name):
        self.headers = [(k, v) for k, v in self.headers if k.lower() != name.lower()]


def _conform(method, rep):
    """Finagle's ResponseConformanceFilter."""
    if method == "HEAD":
        rep.remove("Transfer-Encoding")
        rep.chunked = False
        if rep.body:
            if not rep.has("Content-Length"):
                rep.headers.append(("Content-Length", str(len(rep.body))))
            rep.body = b""
    elif rep.status in (204, 304) or 100 <= rep.status < 200:
        rep.body = b""
        if rep.status != 304:
            rep.remove("Content-Length")
    elif rep.chunked:
        if not rep.has("Content-Length"):
            rep.headers.append(("Transfer-Encoding", "chunked"))
    elif not rep.has("Content-Length"):
        rep.headers.append(("Content-Length", str(len(rep.body))))


def _must_close(rep, keep_alive):
    """Finagle's Http1ConnectionManager: close after this response?"""
    may_have_content = not (100 <= rep.status < 200 or rep.status in (204, 304))
    close_delimited = may_have_content and not rep.chunked and not rep.has("Content-Length")
    return not keep_alive or close_delimited


def _head_bytes(version, rep):
    lines = ["%s %d %s" % (version, rep.status, rep.reason)]
    lines += ["%s: %s" % kv for kv in rep.headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def chunk(data):
    """One HTTP chunk as Netty writes it: lowercase hex size, CRLF, data, CRLF."""
    return b"%x\r\n" % len(data) + data + b"\r\n"


LAST_CHUNK = b"0\r\n\r\n"


class _BadRequest(Exception):
    def __init__(self, status):
        super().__init__(status)
        self.status = status


class _Gone(Exception):
    """The connection ended (client EOF, or the server cut it)."""


class _Conn:
    """One accepted connection, owned by its own thread.  Other threads only set
    `abort` and wake it; the owner thread does all reads and the close."""

    def __init__(self, server, sock):
        self.server = server
        self.sock = sock
        self.rbuf = bytearray()
        self.eof = False
        self.abort = None  # None, "fin" or "rst"
        self.closing = False  # set (under the server lock) just before the close
        self.streaming = False
        self.wake_r, self.wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self.wake_w.setblocking(False)

    # -- waking ------------------------------------------------------------
    def wake(self):
        try:
            self.wake_w.send(b"x")
        except OSError:
            pass  # buffer full (already woken) or closed

    def wait_event(self, timeout=None):
        """Block until woken or the socket is readable (or timeout seconds
        passed); read what arrived.  Raises _Gone on client EOF or when aborted."""
        if self.abort:
            raise _Gone()
        watch = [self.wake_r] if self.eof else [self.sock, self.wake_r]
        ready, _, _ = select.select(watch, [], [], timeout)
        if self.wake_r in ready:
            try:
                while self.wake_r.recv(4096):
                    pass
            except OSError:
                pass
        if self.abort:
            raise _Gone()
        if self.sock in ready:
            try:
                data = self.sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                self.eof = True
                raise _Gone()
            self.rbuf += data

    # -- reading requests --------------------------------------------------
    def _need_more(self):
        if self.eof:
            raise _Gone()
        self.wait_event()

    def read_line(self, limit):
        """One line (without CR LF); _BadRequest(limit status) if too long."""
        while True:
            nl = self.rbuf.find(b"\n")
            if nl >= 0:
                line = bytes(self.rbuf[:nl])
                del self.rbuf[:nl + 1]
                return line[:-1] if line.endswith(b"\r") else line
            if limit is not None and len(self.rbuf) > limit[0]:
                raise _BadRequest(limit[1])
            self._need_more()

    def read_exact(self, n):
        while len(self.rbuf) < n:
            self._need_more()
        data = bytes(self.rbuf[:n])
        del self.rbuf[:n]
        return data

    def read_request(self):
        """Parse one request.  Raises _Gone at EOF, _BadRequest when malformed."""
        while True:  # Netty skips control characters and blank lines first
            while self.rbuf and (self.rbuf[0] < 0x21 or self.rbuf[0] == 0x7f):
                del self.rbuf[0]
            if self.rbuf:
                break
            self._need_more()
        raw_line = self.read_line((MAX_REQUEST_LINE, 414)).decode("latin-1")
        if len(raw_line) > MAX_REQUEST_LINE:
            raise _BadRequest(414)
        parts = raw_line.split()
        if len(parts) != 3 or not _valid_version(parts[2]):
            raise _BadRequest(400)
        headers = self._read_headers()
        body = self._read_body(headers)
        return raw_line, parts[0], parts[1], parts[2], headers, body

    def _read_headers(self):
        headers = []
        size = 0
        while True:
            line = self.read_line((MAX_HEADERS, 431)).decode("latin-1")
            size += len(line)
            if size > MAX_HEADERS:
                raise _BadRequest(431)
            if not line:
                return headers
            if line[0] in " \t" and headers:
                name, value = headers[-1]
                headers[-1] = (name, value + " " + line.strip())
                continue
            name, sep, value = line.partition(":")
            if not sep or not name.strip():
                raise _BadRequest(400)
            headers.append((name.strip(), value.strip()))

    def _read_body(self, headers):
        te = _header(headers, "transfer-encoding")
        if te is not None and "chunked" in te.lower():
            return self._read_chunked_body()
        cl = _header(headers, "content-length")
        if cl is None:
            return b""
        if not cl.strip().isdigit():
            raise _BadRequest(400)
        return self.read_exact(int(cl))

    def _read_chunked_body(self):
        body = bytearray()
        while True:
            size_text = self.read_line(None).split(b";")[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise _BadRequest(400)
            if size == 0:
                while self.read_line(None):  # trailers
                    pass
                return bytes(body)
            body += self.read_exact(size)
            self.read_line(None)

    # -- writing and closing -----------------------------------------------
    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError:
            raise _Gone()

    def close(self, graceful):
        """Close the socket: graceful (FIN, drain briefly so the client reads the
        response), or per `abort` (fin, or rst via SO_LINGER 0)."""
        try:
            if self.abort == "rst":
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif graceful and not self.abort:
                self._lingering_shutdown()
            else:
                self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        for s in (self.sock, self.wake_r, self.wake_w):
            try:
                s.close()
            except OSError:
                pass

    def _lingering_shutdown(self):
        self.sock.shutdown(socket.SHUT_WR)
        deadline = 20  # x 0.1 s: wait for the client's FIN, as a lingering close does
        while deadline and not self.eof and not self.abort:
            ready, _, _ = select.select([self.sock, self.wake_r], [], [], 0.1)
            deadline -= 1
            if self.sock in ready:
                try:
                    if not self.sock.recv(65536):
                        return
                except OSError:
                    return


def _valid_version(v):
    if not v.startswith("HTTP/"):
        return False
    major, dot, minor = v[5:].partition(".")
    return bool(dot) and major.isdigit() and minor.isdigit()


def _header(headers, name):
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def _header_tokens(headers, name):
    tokens = []
    for k, v in headers:
        if k.lower() == name:
            tokens += [t.strip().lower() for t in v.split(",")]
    return tokens


def _keep_alive(version, headers):
    """Netty HttpUtil.isKeepAlive."""
    conn = _header_tokens(headers, "connection")
    if "close" in conn:
        return False
    return version != "HTTP/1.0" or "keep-alive" in conn


def _request_params(method, target, headers, body):
    """Finagle RequestParamMap.get: form-encoded body params first, then the query."""
    query = decode_query(target) or {}
    ctype = (_header(headers, "content-type") or "").split(";")[0].strip().lower()
    if method != "TRACE" and ctype == "application/x-www-form-urlencoded" and body:
        form = decode_query("?" + body.decode("utf-8", "replace")) or {}
        merged = dict(query)
        merged.update(form)
        return merged
    return query


def _first(params, name):
    values = params.get(name)
    return values[0] if values else None


class _Stream:
    """A live watch stream: the states queued for it, in order."""

    def __init__(self, conn, namespace, key):
        self.conn = conn
        self.namespace = namespace
        self.key = key
        self.queue = []


# ---------------------------------------------------------------------------
# The server.

class FakeNamerd:
    """A namerd-compatible HTTP server for tests.

    n = FakeNamerd()            # port=0: ephemeral; or FakeNamerd(port=4180)
    n.start()                   # returns self; n.port is the real port
    n.set_bound("default", "/svc/web", [("127.0.0.1", 9990)])
    ...
    n.stop()

    Names are keyed by (namespace, path).  The namespace is the raw URL segment
    and the path is normalised as Finagle parses it.  Unknown names are neg.
    """

    def __init__(self, port=0, host=HOST):
        if host != HOST:
            raise ValueError("the fake namerd only binds to %s" % HOST)
        self.host = host
        self.port = port
        self.max_chunk_size = None  # split each watch message into chunks of at most N bytes
        self.stream_messages = None  # end each watch stream cleanly after N messages (None: never)
        self._cond = threading.Condition(threading.RLock())
        self._states = {}
        self._streams = []
        self._conns = set()
        self._threads = set()
        self._counts = {}
        self._log = []
        self._hung = False
        self._fail = []  # queued canned responses for fail_next
        self._listener = None
        self._accept_thread = None
        self._accept_wake = None

    # -- lifecycle ---------------------------------------------------------
    def start(self):
        """Listen on 127.0.0.1:port (the same port again after stop()).  Returns self."""
        with self._cond:
            if self._listener is not None:
                return self
            lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            lsock.bind((self.host, self.port))
            lsock.listen(128)
            self.port = lsock.getsockname()[1]
            self._listener = lsock
            wake_r, self._accept_wake = socket.socketpair()
            self._accept_thread = threading.Thread(
                target=self._accept_loop, args=(lsock, wake_r), name="fake-namerd-accept", daemon=True)
            self._accept_thread.start()
        return self

    def stop(self, rst=False):
        """Simulate namerd going down: stop listening (connects are refused), then
        cut every connection abruptly: open streams get no terminator.  FIN by
        default, RST with rst=True.  Returns when all are closed."""
        with self._cond:
            listener, wake, thread = self._listener, self._accept_wake, self._accept_thread
            self._listener = self._accept_wake = self._accept_thread = None
        if listener is not None:
            wake.send(b"x")
            thread.join()
            wake.close()
        self._abort(lambda c: True, "rst" if rst else "fin")
        with self._cond:
            threads = list(self._threads)
        for t in threads:
            t.join(5)

    close = stop

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        return "http://%s:%d" % (self.host, self.port)

    def is_running(self):
        return self._listener is not None

    # -- state setters -----------------------------------------------------
    def set_state(self, namespace, path, state):
        """Set a name's State (Bound, Neg, Failed, Raw, Error or Pending).  Open
        streams on that name get it queued; pending polls re-check."""
        key = normalize_path(path)
        with self._cond:
            self._states[(namespace, key)] = state
            for s in self._streams:
                if s.namespace == namespace and s.key == key:
                    s.queue.append(state)
            self._wake_all()

    def set_bound(self, namespace, path, addrs, meta=None, raw_ips=False):
        """bound: addrs is a list of (ip, port) or (ip, port, meta).  IPv6 is written
        Java-style unless raw_ips; meta values may be any JSON (floats as Java)."""
        self.set_state(namespace, path, Bound(addrs, meta, raw_ips))

    def set_neg(self, namespace, path):
        """neg: `{"type":"neg"}`."""
        self.set_state(namespace, path, NEG)

    def set_failed(self, namespace, path, cause=None):
        """failed: `{"type":"failed","cause":...}` (no cause field when None)."""
        self.set_state(namespace, path, Failed(cause))

    def set_raw(self, namespace, path, text, newline=True):
        """Send `text` (+ "\\n" unless newline=False) as the body / one chunk, verbatim."""
        self.set_state(namespace, path, Raw(text, newline))

    def set_error(self, namespace, path, message):
        """Resolution throws: polling -> bare 500; watch -> `message\\n` then `0\\r\\n\\r\\n`."""
        self.set_state(namespace, path, Error(message))

    def set_pending(self, namespace, path):
        """No answer yet: polling hangs, a watch stream sends headers then nothing."""
        self.set_state(namespace, path, PENDING)

    def clear(self, namespace, path):
        """Forget a name: it is unknown again, i.e. neg (streams get a neg line)."""
        key = normalize_path(path)
        with self._cond:
            self._states.pop((namespace, key), None)
            for s in self._streams:
                if s.namespace == namespace and s.key == key:
                    s.queue.append(NEG)
            self._wake_all()

    def replace_states(self, states):
        """Replace the whole table with {(namespace, path): State}; missing names become neg."""
        new = {(ns, normalize_path(p)): st for (ns, p), st in states.items()}
        with self._cond:
            for (ns, key) in set(self._states) | set(new):
                state = new.get((ns, key), NEG)
                if self._states.get((ns, key), NEG) != state:
                    self.set_state(ns, key, state)
            self._states = new

    def get_state(self, namespace, path):
        """The State a request for (namespace, path) would see now."""
        with self._cond:
            return self._states.get((namespace, normalize_path(path)), NEG)

    def reset(self):
        """Forget all names, counters and the log; un-hang; drop queued fail_next answers."""
        with self._cond:
            for ns, key in list(self._states):
                self.clear(ns, key)
            self._counts.clear()
            del self._log[:]
            del self._fail[:]
            self._hung = False
            self._wake_all()

    # -- fault knobs -------------------------------------------------------
    def hang(self, on=True):
        """While on, every new request (poll or watch) gets no response at all, not
        even headers, until hang(False).  Open streams keep flowing."""
        with self._cond:
            self._hung = bool(on)
            self._wake_all()

    def cut_streams(self, rst=False):
        """Abruptly close every open watch stream (FIN, or RST with rst=True),
        without the terminating chunk.  Returns how many were cut."""
        return self._abort(lambda c: c.streaming, "rst" if rst else "fin")

    def fail_next(self, n=1, status=503, body=b"", reason=None, close_delimited=False, drip=None):
        """Answer the next n requests (any route) with `status` and `body`, with a
        Content-Length, or close-delimited like the bare 500 if close_delimited.
        With drip=SECONDS the body is chunked and never ends: `body` is sent as
        one chunk every SECONDS until the client goes away or the server stops."""
        if isinstance(body, str):
            body = body.encode()
        with self._cond:
            self._fail += [(status, body, reason, close_delimited, drip)] * n

    # -- observation -------------------------------------------------------
    def requests(self):
        """A copy of the request log (Request tuples, oldest first)."""
        with self._cond:
            return list(self._log)

    def request_lines(self):
        """The raw request lines received, e.g. 'GET /api/1/resolve/default?path=%2Fsvc HTTP/1.1'."""
        with self._cond:
            return [r.line for r in self._log]

    def request_count(self, namespace, path, watch=None):
        """Resolve requests seen for (namespace, path); watch=None counts both kinds."""
        key = normalize_path(path)
        with self._cond:
            kinds = (False, True) if watch is None else (bool(watch),)
            return sum(self._counts.get((namespace, key, w), 0) for w in kinds)

    def open_streams(self):
        """How many watch streams are open (headers sent, not ended)."""
        with self._cond:
            return len(self._streams)

    def connections(self):
        """How many client connections are open."""
        with self._cond:
            return len(self._conns)

    def wait_until(self, predicate, timeout=5.0):
        """Wait until predicate() is true (re-checked on every server event)."""
        with self._cond:
            return self._cond.wait_for(predicate, timeout)

    def wait_requests(self, n, timeout=5.0):
        """Wait until at least n requests have been logged.  True if so."""
        return self.wait_until(lambda: len(self._log) >= n, timeout)

    def wait_streams(self, n, timeout=5.0):
        """Wait until exactly n watch streams are open.  True if so."""
        return self.wait_until(lambda: len(self._streams) == n, timeout)

    # -- internals: connections --------------------------------------------
    def _wake_all(self):
        for c in self._conns:
            c.wake()
        self._cond.notify_all()

    def _abort(self, which, mode):
        with self._cond:
            victims = [c for c in self._conns if which(c)]
            for c in victims:
                c.abort = mode
                c.wake()
                if mode == "fin" and not c.closing:
                    try:  # also unblocks a sendall to a client that stopped reading
                        c.sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
        for c in victims:
            self.wait_until(lambda c=c: c not in self._conns, 5)
        return len(victims)

    def _accept_loop(self, lsock, wake_r):
        try:
            while True:
                ready, _, _ = select.select([lsock, wake_r], [], [])
                if wake_r in ready:
                    return
                try:
                    sock, _ = lsock.accept()
                except OSError:
                    continue
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn = _Conn(self, sock)
                t = threading.Thread(target=self._serve, args=(conn,), name="fake-namerd-conn", daemon=True)
                with self._cond:
                    self._conns.add(conn)
                    self._threads.add(t)
                t.start()
        finally:
            lsock.close()
            wake_r.close()

    def _serve(self, conn):
        graceful = True
        try:
            while True:
                try:
                    raw = conn.read_request()
                except _BadRequest as e:
                    rep = _Response(e.status, [("Content-Length", "0"), ("Connection", "close")])
                    conn.send(_head_bytes("HTTP/1.1", rep))
                    break
                if not self._handle(conn, *raw):
                    break
        except _Gone:
            graceful = False
        except Exception as e:  # a bug here must not kill the test process
            sys.stderr.write("fake_namerd: %r\n" % (e,))
            graceful = False
        finally:
            with self._cond:
                self._streams = [s for s in self._streams if s.conn is not conn]
                conn.closing = True
            conn.close(graceful)
            with self._cond:
                self._conns.discard(conn)
                self._threads.discard(threading.current_thread())
                self._cond.notify_all()

    # -- internals: one request --------------------------------------------
    def _handle(self, conn, line, method, target, version, headers, body):
        """Serve one request.  Returns True to keep the connection open."""
        keep_alive = _keep_alive(version, headers)
        ctx = (conn, method, version, keep_alive)
        route = self._route(method, target, headers, body)
        with self._cond:
            self._log.append(Request(line, method, target, version, headers, body, *route[1:4]))
            if route[1] is not None:
                k = tuple(route[1:4])
                self._counts[k] = self._counts.get(k, 0) + 1
            canned = self._fail.pop(0) if self._fail else None
            self._cond.notify_all()
        if canned is not None:
            return self._send_canned(ctx, *canned)
        self._wait_while(conn, lambda: self._hung)
        kind = route[0]
        if kind == "500":
            return self._send_bare_500(ctx)
        if kind == "resolve":
            return self._resolve(ctx, *route[1:4])
        return self._send(ctx, route[4])

    def _route(self, method, target, headers, body):
        """(kind, namespace, path, watch, response): kind is resolve, 500 or plain."""
        plain_404 = _Response(404)
        raw_path = target.split("?", 1)[0]
        if not raw_path.startswith(RESOLVE_PREFIX):
            return ("plain", None, None, None, plain_404)
        params = _request_params(method, target, headers, body)
        path = _first(params, "path")
        if path is None:  # NPE in Path.read(null)
            return ("500", None, None, None, None)
        try:
            key = show_path(parse_path(path))
        except PathError as e:
            text = "Invalid path: %s / %s" % (path, e)
            return ("plain", None, None, None, _Response(400, body=text.encode("utf-8", "replace")))
        if not raw_path.startswith(RESOLVE_PREFIX + "/"):
            return ("plain", None, None, None, plain_404)
        namespace = raw_path[len(RESOLVE_PREFIX) + 1:]
        dtab = _first(params, "dtab")
        if dtab is not None:
            try:
                check_dtab(dtab)
            except PathError:
                return ("500", None, None, None, None)
        return ("resolve", namespace, key, is_true(_first(params, "watch")), None)

    def _wait_while(self, conn, predicate):
        """Block this connection while predicate() holds (re-checked on wake-ups)."""
        while True:
            with self._cond:
                if not predicate():
                    return
            conn.wait_event()

    def _resolve(self, ctx, namespace, key, watch):
        conn = ctx[0]
        if watch:
            return self._watch(ctx, namespace, key)
        self._wait_while(conn, lambda: self._hung or self._states.get((namespace, key), NEG).kind == "pending")
        with self._cond:
            state = self._states.get((namespace, key), NEG)
        if state.kind == "error":
            return self._send_bare_500(ctx)
        return self._send(ctx, _Response(200, [("Content-Type", JSON_TYPE)], state.line()))

    def _watch(self, ctx, namespace, key):
        conn, method, version, keep_alive = ctx
        rep = _Response(200, [("Content-Type", JSON_TYPE)], chunked=True)
        if method == "HEAD":
            return self._send(ctx, rep)
        stream = _Stream(conn, namespace, key)
        with self._cond:
            stream.queue.append(self._states.get((namespace, key), NEG))
            self._streams.append(stream)
            conn.streaming = True
            self._cond.notify_all()
        try:
            self._send(ctx, rep)
            self._pump(conn, stream)
        finally:
            with self._cond:
                if stream in self._streams:
                    self._streams.remove(stream)
                conn.streaming = False
                self._cond.notify_all()
        conn.send(LAST_CHUNK)
        return keep_alive

    def _pump(self, conn, stream):
        """Write the stream's queued states until an error state ends it
        (or, with stream_messages set, until that many were sent)."""
        last = None
        sent = 0
        while True:
            if self.stream_messages is not None and sent >= self.stream_messages:
                return
            with self._cond:
                state = stream.queue.pop(0) if stream.queue else None
            if state is None:
                conn.wait_event()
                continue
            if state.kind == "pending" or state == last:
                continue
            self._send_message(conn, state.line())
            sent += 1
            if state.kind == "error":
                return
            last = state

    def _send_message(self, conn, data):
        size = self.max_chunk_size or len(data)
        conn.send(b"".join(chunk(data[i:i + size]) for i in range(0, len(data), size)))

    def _send(self, ctx, rep):
        """Send a response through conformance and connection management.
        Returns True to keep the connection (for a chunked one: the headers only)."""
        conn, method, version, keep_alive = ctx
        _conform(method, rep)
        close = _must_close(rep, keep_alive)
        if close:
            rep.remove("Connection")
            rep.headers.append(("Connection", "close"))
        conn.send(_head_bytes("HTTP/1.1", rep) + rep.body)
        return not close

    def _send_bare_500(self, ctx):
        """The failed-future 500: no Content-Length, `Connection: close`, EOF body."""
        conn, _, version, _ = ctx
        v = "HTTP/1.0" if version == "HTTP/1.0" else "HTTP/1.1"
        conn.send(_head_bytes(v, _Response(500, [("Connection", "close")])))
        return False

    def _send_canned(self, ctx, status, body, reason, close_delimited, drip):
        if drip is not None:
            return self._send_dripping(ctx[0], status, body, reason, drip)
        if close_delimited:
            rep = _Response(status, [("Connection", "close")], reason=reason)
            ctx[0].send(_head_bytes("HTTP/1.1", rep) + body)
            return False
        return self._send(ctx, _Response(status, body=body, reason=reason))

    def _send_dripping(self, conn, status, body, reason, every):
        """A chunked response whose body never ends; returns when the client leaves."""
        rep = _Response(status, [("Transfer-Encoding", "chunked")], reason=reason)
        conn.send(_head_bytes("HTTP/1.1", rep))
        while True:
            if body:
                conn.send(chunk(body))
            conn.wait_event(every)


# ---------------------------------------------------------------------------
# Script mode.

def load_state_file(path):
    """{(namespace, path): State} from a JSON file mapping "ns path" to a state."""
    with open(path, "rb") as f:
        doc = json.load(f)
    if not isinstance(doc, dict):
        raise ValueError("the state file must hold a JSON object")
    states = {}
    for name, obj in doc.items():
        parts = name.split(None, 1)
        if len(parts) != 2:
            raise ValueError("state key %r is not \"<namespace> <path>\"" % name)
        states[(parts[0], parts[1].strip())] = state_from_json(obj)
    return states


def _file_stamp(path):
    try:
        st = os.stat(path)
        return (st.st_mtime_ns, st.st_size, st.st_ino)
    except OSError:
        return None


def main(argv=None):
    ap = argparse.ArgumentParser(description="A fake namerd (io.l5d.httpController resolve API).")
    ap.add_argument("--port", type=int, default=4180, help="port on 127.0.0.1 (0: ephemeral; default 4180)")
    ap.add_argument("--state", help='JSON file mapping "<namespace> <path>" to a state; reloaded on SIGHUP or change')
    args = ap.parse_args(argv)

    server = FakeNamerd(port=args.port)
    reload_now = threading.Event()
    stop_now = threading.Event()

    def reload():
        try:
            server.replace_states(load_state_file(args.state))
        except (OSError, ValueError) as e:
            sys.stderr.write("fake_namerd: cannot load %s: %s (keeping the old state)\n" % (args.state, e))
            sys.stderr.flush()

    stamp = None
    if args.state:
        stamp = _file_stamp(args.state)
        reload()
    server.start()
    signal.signal(signal.SIGHUP, lambda *_: reload_now.set())
    signal.signal(signal.SIGTERM, lambda *_: stop_now.set())
    signal.signal(signal.SIGINT, lambda *_: stop_now.set())
    print("listening on %s:%d" % (server.host, server.port), flush=True)
    while not stop_now.is_set():
        reload_now.wait(0.1)
        if not args.state:
            reload_now.clear()
            continue
        now = _file_stamp(args.state)
        if reload_now.is_set() or now != stamp:
            reload_now.clear()
            stamp = now
            reload()
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
