"""The include graph of src/ against the layer order in doc/architecture.md: a module
(foo.c and foo.h) may include only headers of modules in lower layers. An include that
points up or sideways fails, and so does a module the document does not place, so no
cycle can form. The checker is first shown to catch an upward include added by hand."""

import os
import re

from ltcptest import Tap, SRCDIR

t = Tap()


def read_layers(text):
    """{file stem: (module, depth)}.  A line lists the modules of one layer; a module
    written as name(part part) is made of several files: name.[ch] and part.[ch]."""
    block = re.search(r"```layers\n(.*?)```", text, re.S)
    layers = {}
    for depth, line in enumerate((block.group(1) if block else "").splitlines()):
        for module, parts in re.findall(r"([a-z_]+)(?:\(([a-z_ ]+)\))?", line):
            for stem in [module] + parts.split():
                layers[stem] = (module, depth)
    return layers


def read_includes(srcdir):
    """{module: {(included module, file)}} for the project's own headers."""
    graph = {}
    for name in sorted(os.listdir(srcdir)):
        if not re.search(r"\.[ch]$", name):
            continue
        module = name[:-2]
        with open(os.path.join(srcdir, name)) as f:
            for dep in re.findall(r'^#include "([a-z_]+)\.h"', f.read(), re.M):
                if dep != module and dep != "auto-config":
                    graph.setdefault(module, set()).add((dep, name))
        graph.setdefault(module, set())
    return graph


def violations(layers, graph):
    bad = []
    for stem, deps in sorted(graph.items()):
        if stem not in layers:
            bad.append("%s is not placed in doc/architecture.md" % stem)
            continue
        module, depth = layers[stem]
        for dep, where in sorted(deps):
            if dep not in layers:
                bad.append("%s includes %s.h, which is not placed" % (where, dep))
            elif layers[dep][0] != module and layers[dep][1] <= depth:
                bad.append("%s includes %s.h: %s is not below %s" % (where, dep, layers[dep][0], module))
    return bad


with open(os.path.join(SRCDIR, "doc", "architecture.md")) as f:
    layers = read_layers(f.read())
graph = read_includes(os.path.join(SRCDIR, "src"))
modules = {m for m, _ in layers.values()}
t.ok(len(modules) >= 15 and "main" in modules and "util" in modules,
     "doc/architecture.md declares the layers (%d modules)" % len(modules))

# The checker catches a cycle added by hand: util.h including log.h (log includes util).
forged = {m: set(d) for m, d in graph.items()}
forged["util"].add(("log", "util.h"))
t.ok(any("util.h includes log.h" in v for v in violations(layers, forged)),
     "an include added by hand against the order (util.h -> log.h) is reported")
forged = {m: set(d) for m, d in graph.items()}
forged["frob"] = set()
t.ok(any("frob is not placed" in v for v in violations(layers, forged)),
     "a module missing from the document is reported")

found = violations(layers, graph)
for v in found:
    t.diag(v)
t.ok(not found, "every include in src/ points down the layers (%d modules)" % len(graph))
t.done()
