#!/usr/bin/env python3
"""Reports import cycles between the source files of a Rust crate.

A file depends on another when it names an item of it: `use crate::x::…`, a path such as
`crate::x::f()` or `super::y::Z`, or (from a parent) `child::f()`. Names re-exported by a
module (`pub use x::Item;` in lib.rs or a mod.rs) are followed to the file that defines them.
Declaring a child (`mod child;`) is not a dependency. Test modules (`#[cfg(test)] mod …`) are left
out: tests may reach across modules without tying the modules themselves together.

Usage: scripts/module-cycles.py [--list] [CRATE_DIR…]   (default: every crates/*)
  --list   also print each file's dependencies, with the paths that make them.
Exit status 1 when any crate has a cycle.

The parser is lexical (comments and literals stripped, braces counted), which is enough for
this code base's style; it does not expand macros.
"""

import os
import re
import sys
from collections import defaultdict

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip(text):
    """Blanks comments, string and char literals, keeping offsets and newlines."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:]) and not re.match(r"\w", text[i - 1 : i] or " "):
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            j = n if end < 0 else end + 1 + len(hashes)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(re.sub(r"[^\n]", " ", text[i : j + 1]))
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{..}') but not a lifetime ('a without a closing quote).
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand_use(tree):
    """`a::{b, c::{d as e}}` -> [a::b, a::c::d] (as lists of segments)."""
    tree = re.sub(r"\s+as\s+", "@", tree)
    tree = re.sub(r"\s+", "", tree)

    def split_top(s):
        parts, depth, cur = [], 0, ""
        for ch in s:
            if ch == "{":
                depth += 1
            elif ch == "}":
                depth -= 1
            if ch == "," and depth == 0:
                parts.append(cur)
                cur = ""
            else:
                cur += ch
        if cur:
            parts.append(cur)
        return parts

    def go(prefix, s):
        if not s:
            return []
        if "{" in s and s.endswith("}"):
            head, body = s[: s.index("{")], s[s.index("{") + 1 : -1]
            head = [p for p in head.split("::") if p]
            out = []
            for part in split_top(body):
                out += go(prefix + head, part)
            return out
        segs = prefix + [p.split("@")[0] for p in s.split("::") if p]
        # `use a::{self, …}` names the module `a` itself.
        if len(segs) > 1 and segs[-1] == "self":
            segs = segs[:-1]
        return [segs]

    return go([], tree)


class Crate:
    def __init__(self, src):
        self.src = src
        self.files = {}  # module path (tuple) -> file
        self.children = defaultdict(set)  # module path -> child names (file or inline)
        self.test_files = set()
        for root, _, names in os.walk(src):
            for name in names:
                if name.endswith(".rs"):
                    self.add_file(os.path.join(root, name))
        self.texts = {f: strip(open(f, encoding="utf-8").read()) for f in self.files.values()}
        self.inline = {}  # file -> list of (start, end, module path, is_test)
        for mod, f in self.files.items():
            self.scan_inline(mod, f)
        for mod, f in list(self.files.items()):
            for m in re.finditer(r"(#\[cfg\(test\)\]\s*)?(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*;", self.texts[f]):
                child = mod + (m.group(2),)
                self.children[mod].add(m.group(2))
                if m.group(1) and child in self.files:
                    self.test_files.add(self.files[child])
        # A file declared under a test module is a test file too.
        changed = True
        while changed:
            changed = False
            for mod, f in self.files.items():
                parent = self.files.get(mod[:-1])
                if mod and parent in self.test_files and f not in self.test_files:
                    self.test_files.add(f)
                    changed = True
        self.reexports = self.scan_reexports()

    def add_file(self, path):
        rel = os.path.relpath(path, self.src)[:-3].split(os.sep)
        if rel in (["lib"], ["main"]):
            mod = ()
        elif rel[-1] == "mod":
            mod = tuple(rel[:-1])
        else:
            mod = tuple(rel)
        if mod == () and () in self.files:
            # A crate with both lib.rs and main.rs: main.rs is a crate of its own (it names
            # the library by the package name), so only the library is examined.
            if path.endswith("main.rs"):
                return
        self.files[mod] = path

    def scan_inline(self, mod, f):
        text = self.texts[f]
        spans = []
        for m in re.finditer(r"(#\[cfg\(test\)\]\s*)?(?:pub(?:\([^)]*\))?\s+)?mod\s+(" + IDENT + r")\s*\{", text):
            start = m.end() - 1
            depth, j = 0, start
            while j < len(text):
                if text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            spans.append((start, j, m.group(2), bool(m.group(1))))
        # Nesting: an inline module's path is its file's plus the inline modules around it.
        out = []
        for s, e, name, test in spans:
            path = list(mod)
            is_test = test
            for s2, e2, name2, test2 in spans:
                if s2 < s and e <= e2:
                    path.append(name2)
                    is_test = is_test or test2
            path.append(name)
            out.append((s, e, tuple(path), is_test))
            self.children[tuple(path[:-1])].add(name)
        self.inline[f] = out

    def module_at(self, mod, f, pos):
        """The module path at offset `pos` of `f` and whether it is test code."""
        best, test = mod, f in self.test_files
        for s, e, path, is_test in self.inline.get(f, []):
            if s <= pos <= e and len(path) > len(best):
                best = path
            if s <= pos <= e and is_test:
                test = True
        return best, test

    def scan_reexports(self):
        table = {}  # (module, name) -> absolute segments
        for mod, f in self.files.items():
            for m in re.finditer(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", self.texts[f]):
                here, _ = self.module_at(mod, f, m.start())
                for segs in expand_use(m.group(1)):
                    absolute = self.absolute(here, segs)
                    if absolute is not None and segs[-1] != "*":
                        table[(here, segs[-1])] = absolute
        return table

    def absolute(self, here, segs):
        """Segments of a path written in module `here`, made absolute (None: not this crate's)."""
        segs = list(segs)
        if not segs:
            return None
        base = list(here)
        if segs[0] == "crate":
            base, segs = [], segs[1:]
        elif segs[0] == "self":
            segs = segs[1:]
        elif segs[0] == "super":
            while segs and segs[0] == "super":
                base = base[:-1]
                segs = segs[1:]
        elif segs[0] in self.children.get(tuple(here), ()):
            pass
        else:
            return None
        return tuple(base) + tuple(segs)

    def file_of(self, absolute, depth=0):
        """The file defining the item (or module) at an absolute path."""
        path = tuple(absolute)
        for cut in range(len(path), -1, -1):
            prefix = path[:cut]
            if prefix in self.files:
                rest = path[cut:]
                # A name the module re-exports leads on to where it comes from.
                if rest and (prefix, rest[0]) in self.reexports and depth < 10:
                    target = self.reexports[(prefix, rest[0])] + rest[1:]
                    if target != path:
                        return self.file_of(target, depth + 1)
                return self.files[prefix]
        return None

    def edges(self):
        """file -> {file: [paths that make the dependency]} for non-test code."""
        out = defaultdict(lambda: defaultdict(list))
        for mod, f in self.files.items():
            if f in self.test_files:
                continue
            text = self.texts[f]
            uses = []
            for m in re.finditer(r"(?<![A-Za-z0-9_])use\s+([^;]+);", text):
                here, test = self.module_at(mod, f, m.start())
                if not test:
                    uses += [(here, segs) for segs in expand_use(m.group(1))]
                # Blank the statement so its paths are not counted again below.
                text = text[: m.start()] + " " * (m.end() - m.start()) + text[m.end() :]
            for m in re.finditer(r"(?<![A-Za-z0-9_:])((?:" + IDENT + r"::)+" + IDENT + r")", text):
                here, test = self.module_at(mod, f, m.start())
                if not test:
                    uses.append((here, m.group(1).split("::")))
            for here, segs in uses:
                absolute = self.absolute(here, segs)
                if absolute is None:
                    continue
                target = self.file_of(absolute)
                if target and target != f:
                    out[f][target].append("::".join(segs))
        return out


def sccs(nodes, graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in nodes:
        if v not in index:
            visit(v)
    return out


def shortest_cycle(comp, graph, start):
    """A shortest cycle through `start` inside the component."""
    from collections import deque

    inside = set(comp)
    prev = {start: None}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in sorted(graph.get(v, ())):
            if w not in inside:
                continue
            if w == start:
                path = [v]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w not in prev:
                prev[w] = v
                queue.append(w)
    return [start]


def main(argv):
    listing = "--list" in argv
    dirs = [a for a in argv if not a.startswith("--")]
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if not dirs:
        crates = os.path.join(root, "crates")
        dirs = sorted(os.path.join(crates, d) for d in os.listdir(crates))
    found = False
    for d in dirs:
        src = os.path.join(d, "src")
        if not os.path.isdir(src):
            continue
        crate = Crate(src)
        edges = crate.edges()
        short = lambda f: os.path.relpath(f, src)
        graph = {f: set(t) for f, t in edges.items()}
        nodes = sorted(set(crate.files.values()) - crate.test_files)
        n_edges = sum(len(t) for t in graph.values())
        print(f"{os.path.basename(d)}: {len(nodes)} files, {n_edges} file dependencies")
        if listing:
            for f in nodes:
                deps = edges.get(f, {})
                print(f"  {short(f)}")
                for t in sorted(deps):
                    uses = sorted(set(deps[t]))
                    more = f" (+{len(uses) - 3})" if len(uses) > 3 else ""
                    print(f"    -> {short(t)}: {', '.join(uses[:3])}{more}")
        comps = [sorted(c) for c in sccs(nodes, graph) if len(c) > 1]
        if not comps:
            print("  no cycles")
        for comp in sorted(comps):
            found = True
            print(f"  cycle among {len(comp)} files: {', '.join(short(f) for f in comp)}")
            mutual = [
                (a, b)
                for a in comp
                for b in comp
                if a < b and b in graph.get(a, ()) and a in graph.get(b, ())
            ]
            for a, b in mutual:
                why_ab = sorted(set(edges[a][b]))[0]
                why_ba = sorted(set(edges[b][a]))[0]
                print(f"    mutual: {short(a)} <-> {short(b)} ({why_ab}; {why_ba})")
            covered = set()
            for f in comp:
                if f in covered:
                    continue
                cyc = shortest_cycle(comp, graph, f)
                covered.update(cyc)
                steps = []
                for a, b in zip(cyc, cyc[1:]):
                    steps.append(f"{short(a)} -> {short(b)} ({sorted(set(edges[a][b]))[0]})")
                print("    " + "; ".join(steps))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
