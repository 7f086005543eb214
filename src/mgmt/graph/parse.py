"""Graph file -> validated :class:`Graph`, every error naming the file and line."""

import os
import stat
from typing import Any, List, Optional, Tuple, Union

from mgmt.errors import GraphError
from mgmt.graph.clash import find_clash
from mgmt.graph.deps import cycle_text, dependencies, find_cycle, notify_problem
from mgmt.graph.limits import MAX_BYTES, MAX_RESOURCES, name_problem
from mgmt.graph.located import load_located
from mgmt.graph.model import (
    EXPORT_MARK,
    RELATIVE_PYTHON,
    Collect,
    Edge,
    Graph,
    ResourceKey,
    ResourceSpec,
    key_str,
    relative_path,
)
from mgmt.graph.values import LocDict, LocList, new_dict, new_list
from mgmt.resources.base import META_FIELDS, FieldError, Meta, fill_params, kind_class, known_kinds
from mgmt.resources.fields import describe, shown

# Kinds mgmt's refresh (an edge's notify) makes act, which this engine only re-checks.
TOP_KEYS = ("graph", "comment", "resources", "edges", "collect", "remote", "via", "sudo", "python")


class _Parser:
    def __init__(self, path: Optional[str], real_paths: bool = False):
        self.path = path
        self.real_paths = real_paths  # on the host that runs it (see graph.clash)

    def fail(self, message: str, line: Optional[int]) -> GraphError:
        return GraphError(message, self.path, line)

    def mapping(self, value: Any, what: str, line: int) -> LocDict:
        if not isinstance(value, LocDict):
            raise self.fail(f"{what} must be a mapping, got {describe(value)}", line)
        return value

    def sequence(self, value: Any, what: str, line: int) -> LocList:
        if value is None:
            return new_list(line)
        if not isinstance(value, LocList):
            raise self.fail(f"{what} must be a list, got {describe(value)}", line)
        return value

    def only_keys(self, data: LocDict, allowed, what: str) -> None:
        for key in data:
            if key not in allowed:
                known = ", ".join(allowed)
                line = data.line_of(key)
                raise self.fail(f"unknown key {shown(key)} in {what} (known: {known})", line)

    def string(self, data: LocDict, key: str, what: str, required: bool = False) -> str:
        value = data.get(key)
        if value is None:
            if required:
                raise self.fail(f"{what} needs {key!r}", data.line)
            return ""
        if not isinstance(value, str):
            line = data.line_of(key)
            raise self.fail(f"{what}: {key!r} must be a string, got {describe(value)}", line)
        return value

    def graph(self, doc: Any) -> Graph:
        if doc is None:
            raise self.fail("the graph file is empty", 1)
        doc = self.mapping(doc, "the graph file", 1)
        self.only_keys(doc, TOP_KEYS, "the graph file")
        name = self.string(doc, "graph", "the graph file", required=True)
        self.check_name(name, "the graph file: 'graph'", doc.line_of("graph"))
        graph = Graph(name=name, path=self.path)
        graph.comment = self.string(doc, "comment", "the graph file")
        remote = self.string(doc, "remote", "the graph file")
        graph.remote = remote or None
        graph.remote_line = doc.line_of("remote") if "remote" in doc else None
        if doc.get("remote") is not None and not remote.strip():  # `remote: "$HOST"`, unset
            why = "the graph file: 'remote' is empty (give the host, or leave it out"
            raise self.fail(f"{why} for a graph that runs here)", graph.remote_line)
        graph.sudo = self.sudo(doc)
        python = self.string(doc, "python", "the graph file")
        graph.python = python or None
        if doc.get("python") is not None and not python.strip():  # not "find one" silently
            raise self.fail(
                "the graph file: 'python' is empty (leave it out to find one)",
                doc.line_of("python"),
            )
        if python and (python.startswith("-") or "\n" in python):  # as --python
            raise self.fail(
                f"the graph file: 'python' must be a name or path, got {shown(python)}",
                doc.line_of("python"),
            )
        if python and relative_path(python):
            why = f"the graph file: 'python' {shown(python)} {RELATIVE_PYTHON}"
            raise self.fail(why, doc.line_of("python"))
        if "via" in doc:
            graph.via, graph.via_line = self.via(doc.get("via"), doc.line_of("via"))
        line = doc.line_of("resources")
        # Absent or null is no resources, as for edges and collect; 0, "" or []
        # is a mistake to point at, not an empty graph to run.
        value = doc.get("resources")
        resources = _empty(line) if value is None else self.mapping(value, "resources", line)
        for kind, items in resources.items():
            self.resources(graph, kind, items, resources.line_of(kind))
        self.check_clashes(graph)
        line = doc.line_of("collect")
        for item, item_line in _items(self.sequence(doc.get("collect"), "collect", line)):
            entry = self.collect(self.mapping(item, "a collect entry", item_line))
            if any(other.kind == entry.kind for other in graph.collect):
                # Only one pattern can say where a kind's collected resources go.
                raise self.fail(f"collect: {entry.kind} is collected twice", item_line)
            graph.collect.append(entry)
        line = doc.line_of("edges")
        for item, item_line in _items(self.sequence(doc.get("edges"), "edges", line)):
            graph.edges.append(self.edge(graph, self.mapping(item, "an edge", item_line)))
        self.check_cycles(graph)
        return graph

    def sudo(self, doc: LocDict) -> Union[bool, str, None]:
        """``sudo: true`` (root), ``sudo: USER`` or ``sudo: false``; None when absent."""
        value = doc.get("sudo")
        if value is None or isinstance(value, bool):
            return value
        # One word, as --sudo-user: it goes on the host's command line (quoted).
        one_word = isinstance(value, str) and not any(c.isspace() for c in value)
        if one_word and value and not value.startswith("-"):
            return value
        what = "'sudo' must be true, false or a user name (one word)"
        raise self.fail(f"the graph file: {what}, got {shown(value)}", doc.line_of("sudo"))

    def via(self, value: Any, line: int) -> Tuple[List[str], int]:
        """``via:``: one hop (a string) or the hops in order (a list of strings);
        what each hop may be is mgmt.remote.hostspec's to say."""
        if isinstance(value, str):
            hops = [(value, line)]
        elif isinstance(value, LocList):
            hops = list(_items(value))
        else:
            wanted = "a string or a list of strings"
            raise self.fail(f"via: must be {wanted}, got {describe(value)}", line)
        if not hops:
            raise self.fail("via: is an empty list (leave it out to reach the host directly)", line)
        for hop, hop_line in hops:
            if not isinstance(hop, str) or not hop.strip():
                what = f"via: each hop must be a non-empty string, got {describe(hop)}"
                raise self.fail(what, hop_line)
        return [hop for hop, _ in hops], line

    def resources(self, graph: Graph, kind: Any, items: Any, line: int) -> None:
        if not isinstance(kind, str) or kind not in known_kinds():
            known = ", ".join(known_kinds())
            raise self.fail(f"unknown resource kind {shown(kind)} (known: {known})", line)
        try:
            cls = kind_class(kind)
        except ImportError as err:
            raise self.fail(f"resource kind {kind!r} is not available: {err}", line) from None
        for item, item_line in _items(self.sequence(items, f"resources {kind!r}", line)):
            spec = self.resource(cls, kind, self.mapping(item, f"a {kind} resource", item_line))
            if spec.key in graph.resources:
                first = graph.resources[spec.key].line
                what = f"duplicate resource {key_str(spec.key)}"
                if first is not None:  # a JSON graph has no lines
                    what += f" (first on line {first})"
                raise self.fail(what, spec.line)
            graph.resources[spec.key] = spec
            if len(graph.resources) > MAX_RESOURCES:
                message = f"the graph has more than {MAX_RESOURCES} resources"
                raise self.fail(message, spec.line)

    def resource(self, cls: type, kind: str, data: LocDict) -> ResourceSpec:
        what = f"a {kind} resource"
        name = data.get("name")
        if name is None:
            raise self.fail(f"{what} needs 'name'", data.line)
        if not isinstance(name, str):
            message = f"{what}: 'name' must be a string, got {describe(name)}"
            raise self.fail(message, data.line_of("name"))
        exported = name.startswith(EXPORT_MARK)
        name = name[len(EXPORT_MARK) :] if exported else name
        self.check_name(name, f"{what}: 'name'", data.line_of("name"))
        meta = self.meta(data.get("meta"), data.line_of("meta"), key_str((kind, name)))
        params = {k: v for k, v in data.items() if k not in ("name", "meta")}
        try:
            params = fill_params(cls, params)
            cls(name, params, meta)  # checks that need the name (see resources.base)
            if self.real_paths and not exported:  # an export is applied elsewhere
                cls.check_here(name, params)
        except FieldError as err:
            at = data.line_of(err.field) if err.field in data else data.line
            raise self.fail(f"{key_str((kind, name))}: {err}", at) from None
        return ResourceSpec(kind, name, params, meta, data.line, exported)

    def meta(self, value: Any, line: int, what: str) -> Meta:
        if value is None:
            return Meta()
        data = self.mapping(value, f"{what}: meta", line)
        self.only_keys(data, tuple(META_FIELDS), f"{what}: meta")
        for key, field in META_FIELDS.items():
            got = data.get(key)
            if got is None:
                continue
            if type(got) is not field.types:
                message = f"{what}: meta {key} must be {field.types.__name__}, got {describe(got)}"
                raise self.fail(message, data.line_of(key))
            try:
                field.check(key, got)
            except FieldError as err:
                raise self.fail(f"{what}: meta {err}", data.line_of(key)) from None
        return Meta(**{k: v for k, v in data.items() if v is not None})

    def check_name(self, name: str, what: str, line: Optional[int]) -> None:
        """A name is shown in logs and is a key in the world: visible text on one line."""
        problem = name_problem(name)
        if problem is not None:
            raise self.fail(f"{what} {problem}, got {shown(name)}", line)

    def check_clashes(self, graph: Graph) -> None:
        clash = find_clash(graph.local().values(), self.real_paths)
        if clash is None:
            return
        first, second, ident = clash
        where = f" (line {first.line})" if first.line is not None else ""
        # On the host, one of them may name it through a symlinked folder: say how.
        named = [
            f"{key_str(spec.key)} as {own}"
            for spec in (second, first)
            for own in (spec.auto or ((), ()))[0][:1]
            if own != ident and not ident.startswith(own.rstrip("/") + "/")
        ]
        aka = f" ({', '.join(named)})" if named else ""
        message = (
            f"{key_str(second.key)} and {key_str(first.key)}{where} both manage {ident}{aka}: "
            "they would undo each other's changes forever; keep one"
        )
        raise self.fail(message, second.line)

    def collect(self, data: LocDict) -> Collect:
        self.only_keys(data, ("kind", "pattern"), "a collect entry")
        # mgmt reads a collect's and an edge's kind without regard to case
        # (``kind: File``, as its logs name kinds); resources: keys are exact.
        kind = self.string(data, "kind", "a collect entry", required=True).lower()
        if kind not in known_kinds():
            raise self.fail(f"collect: unknown resource kind {shown(kind)}", data.line_of("kind"))
        pattern = self.string(data, "pattern", "a collect entry")
        try:
            kind_class(kind).check_collect_pattern(pattern or "")
        except FieldError as err:
            raise self.fail(f"collect: pattern: {err.message}", data.line_of("pattern")) from None
        return Collect(kind, pattern)

    def edge(self, graph: Graph, data: LocDict) -> Edge:
        self.only_keys(data, ("name", "from", "to", "notify"), "an edge")
        ends: List[ResourceKey] = []
        for end in ("from", "to"):
            if end not in data:
                raise self.fail(f"an edge needs {end!r}", data.line)
            ref = self.mapping(data[end], f"edge {end!r}", data.line_of(end))
            self.only_keys(ref, ("kind", "name"), f"edge {end!r}")
            what = f"edge {end!r}"
            kind = self.string(ref, "kind", what, True).lower()  # as a collect's
            key = (kind, self.string(ref, "name", what, True))
            marked = key[1].startswith(EXPORT_MARK)  # "@@a" in an edge: the exported a
            spec = graph.resources.get((key[0], key[1][len(EXPORT_MARK) :]) if marked else key)
            if spec is None or (marked and not spec.exported):
                message = f"edge {end!r} names a missing resource {key_str(key)}"
                if any(entry.kind == kind for entry in graph.collect):
                    # mgmt orders collected resources by edges; this agent cannot
                    # (they come and go while it runs): say so, not just "missing".
                    message += (
                        f" (the graph collects {kind}, but an edge can only name a "
                        "resource of this graph, not one collected from another host)"
                    )
                raise self.fail(message, ref.line)
            key = spec.key
            if spec.exported:
                # As mgmt: an exported resource is published for other hosts,
                # never run here, so nothing here can run before or after it.
                message = (
                    f"edge {end!r} names {key_str(key)}, which is exported (@@): "
                    "it is not run on this host, so no edge can order it"
                )
                raise self.fail(message, ref.line)
            ends.append(key)
        if data.get("notify") is not None:
            problem = notify_problem(data["notify"], ends[1])
            if problem:
                raise self.fail(problem, data.line_of("notify"))
        name = data.get("name")
        if isinstance(name, (dict, list)):  # a scalar is its text, as mgmt reads it
            message = f"an edge: 'name' must be a string, got {describe(name)}"
            raise self.fail(message, data.line_of("name"))
        return Edge(ends[0], ends[1], "" if name is None else str(name), data.line)

    def check_cycles(self, graph: Graph) -> None:
        cycle = find_cycle(dependencies(graph.resources, graph.edges))
        if cycle is None:
            return
        steps = list(zip(cycle, cycle[1:]))
        in_cycle = set(steps)  # once: made per edge, 20,000 edges in a cycle took 80 s
        lines = [e.line for e in graph.edges if (e.from_, e.to) in in_cycle and e.line]
        text = cycle_text(cycle)
        # A step no edge of the file makes is an autoedge (a folder before its
        # files, a package before its files...): the file alone would not show it.
        explicit = {(e.from_, e.to) for e in graph.edges}
        automatic = [(a, b) for a, b in steps if (a, b) not in explicit]
        if automatic:
            a, b = automatic[0]
            more = f" (and {len(automatic) - 1} more)" if len(automatic) > 1 else ""
            text += (
                f"; {key_str(a)} -> {key_str(b)} is an automatic edge{more}:"
                f" meta: {{autoedge: false}} on {key_str(b)} drops it"
            )
        line = min(lines) if lines else graph.resources[cycle[0]].line
        raise self.fail(f"dependency cycle: {text}", line)


def _empty(line: int) -> LocDict:
    return new_dict(line)


def _items(seq: LocList):
    return zip(seq, seq.item_lines)


def parse_graph(text: str, path: Optional[str] = None, real_paths: bool = False) -> Graph:
    """Validate graph text; raises GraphError with ``path:line``. ``real_paths``:
    read on the host that runs it, where two names of one file clash too.

    JSON is read without lines (the standard library's reader, for the agent's
    start); a JSON graph that reads but fails a check is read again as YAML,
    which JSON is, for the line of its error. (One refused as it was read, over
    a bound for one, is not read twice.)
    """
    return parse_document(load_located(text, path), text, path, real_paths)


def parse_document(
    document: Any, text: str, path: Optional[str] = None, real_paths: bool = False
) -> Graph:
    """:func:`parse_graph` of what :func:`load_located` read of ``text``."""
    try:
        return _Parser(path, real_paths).graph(document)
    except GraphError as err:
        if err.line is not None or text.lstrip()[:1] != "{":
            raise
        located = _with_line(text, path, real_paths)
        # YAML reads some JSON otherwise (1e3 is a string there): only the same error
        # (its line may add where the first one was) is taken, another stands.
        same = located is not None and located.message.startswith(err.message)
        raise located if same else err from None


def _with_line(text: str, path: Optional[str], real_paths: bool) -> Optional[GraphError]:
    """The error of JSON graph ``text`` read as YAML, if that tells its line; None
    if YAML reads it otherwise (PyYAML refuses some of JSON's escapes)."""
    from mgmt.graph.yamlload import load_yaml

    try:
        document = load_yaml(text, path, json_numbers=True)  # 1e5 as JSON reads it
    except GraphError:
        return None
    try:
        _Parser(path, real_paths).graph(document)
    except GraphError as err:
        return err if err.line is not None else None
    return None


def read_graph_text(path: "Union[str, os.PathLike[str]]") -> str:
    """A graph file's text, reading no more than the largest graph allowed.

    Reading a whole multi-gigabyte file before checking its size would be the
    exhaustion the size bound is there to prevent. Only a regular file is read:
    opening a FIFO without O_NONBLOCK waits for a writer (for ever, for a graph
    file replaced by one), and a device such as /dev/zero is no graph.
    """
    try:
        fd = os.open(str(path), os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise GraphError("the graph file does not exist", str(path)) from None
    except OSError as err:
        raise GraphError(f"cannot read the graph file: {err.strerror}", str(path)) from None
    # The type before fdopen, which refuses a directory with an exception of its own.
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode):
        os.close(fd)
        raise GraphError("not a regular file; expected a graph file", str(path))
    with os.fdopen(fd, "rb") as stream:
        try:
            # As much as the file holds and a byte more, not the bound's 4 MiB buffer
            # for each read (the agent's of every edit); on to the bound if it grew.
            want = min(status.st_size, MAX_BYTES) + 1
            data = stream.read(want)
            if len(data) == want <= MAX_BYTES:
                data += stream.read(MAX_BYTES + 1 - want)
        except OSError as err:
            raise GraphError(f"cannot read the graph file: {err.strerror}", str(path)) from None
    if len(data) > MAX_BYTES:
        raise GraphError(f"the graph is larger than {MAX_BYTES // (1024 * 1024)} MiB", str(path))
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise GraphError("the graph file is not UTF-8 text", str(path), line) from None


def load_graph(path: "Union[str, os.PathLike[str]]") -> Graph:
    """Read and validate a graph file."""
    return parse_graph(read_graph_text(path), str(path))
