#!/usr/bin/python3
"""An echo server for thousands of connections in one thread (selectors/epoll):
echoes every byte, half-closes after the client's EOF.  Prints its port, then
serves until stdin closes.  Used where a thread per connection would not do."""

import os
import resource
import selectors
import socket
import sys
import threading


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
    ls.listen(4096)
    ls.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(ls, selectors.EVENT_READ, None)
    print(ls.getsockname()[1], flush=True)
    # Exit when the test goes away.
    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    pending = {}
    while True:
        for key, ev in sel.select():
            s = key.fileobj
            if s is ls:
                while True:
                    try:
                        c, _ = ls.accept()
                    except BlockingIOError:
                        break
                    c.setblocking(False)
                    pending[c] = b""
                    sel.register(c, selectors.EVENT_READ, None)
                continue
            if ev & selectors.EVENT_READ:
                try:
                    data = s.recv(65536)
                except OSError:
                    data = b""
                if not data:
                    sel.unregister(s)
                    try:
                        if pending[s]:
                            s.setblocking(True)
                            s.sendall(pending[s])
                        s.shutdown(socket.SHUT_WR)
                    except OSError:
                        pass
                    pending.pop(s, None)
                    s.close()
                    continue
                pending[s] += data
            if pending.get(s):
                try:
                    n = s.send(pending[s])
                    pending[s] = pending[s][n:]
                except BlockingIOError:
                    pass
                except OSError:
                    pass
                mask = selectors.EVENT_READ | (selectors.EVENT_WRITE if pending[s] else 0)
                sel.modify(s, mask, None)


if __name__ == "__main__":
    main()
