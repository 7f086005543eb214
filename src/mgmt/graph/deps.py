"""Dependencies between resources: explicit edges plus autoedges, cycle finding, and
what an edge's ``notify`` can ask of them."""

from typing import Any, Dict, Iterable, List, Mapping, Optional, Set

from mgmt.graph.model import Edge, ResourceKey, ResourceSpec, key_str
from mgmt.resources.base import kind_class
from mgmt.resources.fields import describe

# What mgmt does on a refresh that this agent does not: kinds refused as notify's target.
NO_REFRESH = {"svc": "be restarted", "msg": "be sent again", "timer": "restart"}

Parents = Dict[ResourceKey, Set[ResourceKey]]


def dependencies(resources: Mapping[ResourceKey, ResourceSpec], edges: Iterable[Edge]) -> Parents:
    """For each resource, the resources that must be fine before it runs.

    Edges naming resources that are not in ``resources`` are skipped (the
    parser rejects them in files; at run time a collected resource may vanish).
    An edge from a resource to itself is kept: it is a cycle, and
    :func:`find_cycle` reports it as one.
    """
    parents: Parents = {key: set() for key in resources}
    for edge in edges:
        if edge.from_ in parents and edge.to in parents:
            parents[edge.to].add(edge.from_)
    providers: Dict[str, List[ResourceKey]] = {}
    needs: Dict[ResourceKey, List[str]] = {}
    for key, spec in resources.items():
        if spec.auto is None:
            spec.auto = kind_class(spec.kind).autoedges(spec.name, spec.params)
        provided, needed = spec.auto
        for ident in provided:
            providers.setdefault(ident, []).append(key)
        if spec.meta.autoedge and needed:
            needs[key] = needed
    for key, needed in needs.items():
        for ident in needed:
            for provider in providers.get(ident, ()):
                if provider != key:
                    parents[key].add(provider)
    return parents


def find_cycle(parents: Mapping[ResourceKey, Set[ResourceKey]]) -> Optional[List[ResourceKey]]:
    """One dependency cycle as [a, b, ..., a] in run order, or None (iterative DFS)."""
    WHITE, GREY, BLACK = 0, 1, 2
    color = dict.fromkeys(parents, WHITE)
    for root in parents:
        if color[root] != WHITE:
            continue
        color[root] = GREY
        path = [root]
        stack = [iter(sorted(parents[root]))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                color[path.pop()] = BLACK
                stack.pop()
                continue
            state = color.get(nxt, BLACK)
            if state == GREY:
                cycle = [*path[path.index(nxt) :], nxt]
                cycle.reverse()  # we walked child -> parent; report parent -> child
                return cycle
            if state == WHITE:
                color[nxt] = GREY
                path.append(nxt)
                stack.append(iter(sorted(parents[nxt])))
    return None


# A cycle longer than this is shown by its ends: a chain of 10,000 resources
# closed by one edge made a 150 KB error line.
SHOWN_IN_CYCLE = 12


def cycle_text(cycle: List[ResourceKey]) -> str:
    """``a -> b -> a``; a long cycle as its first and last steps and how many between."""
    names = [key_str(key) for key in cycle]
    if len(names) > SHOWN_IN_CYCLE:
        half = SHOWN_IN_CYCLE // 2
        hidden = len(names) - 2 * half
        names = [*names[:half], f"({hidden} more)", *names[-half:]]
    return " -> ".join(names)


def notify_problem(value: Any, to: ResourceKey) -> Optional[str]:
    """Why an edge's ``notify: value`` to ``to`` is refused (mgmt's, 0.0.9 on), or None.

    Here, as in mgmt 0.0.5, a resource that changed something has every
    resource after it checked again, and an exec runs its cmd at each check
    (ifcmd guarding it): that is a refresh for an exec, and for a kind that
    does nothing with one (file, pkg, noop, ...) a re-check is all mgmt does
    too. What this engine cannot do is refused rather than ignored: restart
    a service, send a message again or restart a timer on a refresh, and
    keep an exec from running after a change before it.
    """
    if not isinstance(value, bool):
        return f"an edge: 'notify' must be true or false, got {describe(value)}"
    if value and to[0] in NO_REFRESH:
        return (
            f"notify: {key_str(to)} would not {NO_REFRESH[to[0]]} on a refresh: this "
            "agent only checks it again (leave notify out)"
        )
    if not value and to[0] == "exec":
        return (
            f"notify: false cannot hold for {key_str(to)}: here an exec runs again after "
            "a change of any resource before it, as in mgmt 0.0.5 (leave notify out; "
            "an ifcmd can keep cmd from running)"
        )
    return None
