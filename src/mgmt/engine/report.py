"""The ``--json`` document: what one agent's run did to each resource.

One JSON object, printed on stdout when the run ends (log lines stay on
stderr), stable so that scripts and the remote initiator can rely on it; a
remote run will embed one such document per host under ``hosts``. Shape
(version 1)::

    {
      "version": 1,
      "host": "web1",                 # the agent's --hostname
      "noop": false,                  # --noop: nothing was changed
      "converged": true,              # was converged when it ended (see below)
      "status": "ok",                 # "failed" when any resource failed (or "errors")
      "errors": ["..."],              # only when the graph itself failed to run whole
                                      # (collected resources that close a cycle), or
                                      # the run never started (bad input, exit 2: the
                                      # message on stderr; no resources)
      "summary": {"changed": 1, "unchanged": 2, "would-change": 0,
                  "failed": 0, "pending": 0},
      "resources": [
        {
          "kind": "file", "name": "/etc/motd",
          "result": "changed",        # unchanged | changed | would-change | failed | pending
          "changes": [                # what differed, in the order found
            {"field": "content", "wanted": "...", "actual": "...",
             "path": "/srv/www/a",    # only in a tree copy: the entry that differed
             "diff": "--- ...",       # file content only, bounded
             "applied": true}         # false under noop
          ],
          "errors": ["..."],          # the last errors, also of retries that succeeded
          "group": "a (+1 grouped)"  # only for autogrouped resources: the shared run
        }
      ]
    }

``converged`` says whether the agent was converged when it ended, however it
ended: its engine idle (every resource checked; nothing queued, running or
waiting for a retry; no graph reload pending), which is the state it reports
as converged to the world or, in a remote run, to the initiator. True when its
own --converged-timeout ended the run, and when it was stopped (^C, SIGTERM,
the initiator's stop) while idle; false when stopped while still at work. A
failed resource that is no longer retried does not keep an agent from
converging: ``status`` reports it. Why the run ended is not part of this
document: a remote run's host row says it (``converged``, ``stopped``).

Resources come sorted by kind and name. A value the graph does not manage is
never listed; ``wanted``/``actual`` are strings, numbers or null.
"""

import json
import sys
from typing import Any, Dict, Iterable, List, Tuple

from mgmt.engine.autogroup import GroupSpec
from mgmt.engine.outcome import CHANGED, FAILED, PENDING, UNCHANGED, WOULD_CHANGE, Outcome
from mgmt.graph.model import ResourceSpec

VERSION = 1
RESULTS = (UNCHANGED, CHANGED, WOULD_CHANGE, FAILED, PENDING)


def _member_entry(spec: ResourceSpec, outcome: Outcome, group: str) -> Dict[str, Any]:
    changes = []
    for change in outcome.changes:
        if group and change.get("resource", spec.name) != spec.name:
            continue
        changes.append({k: v for k, v in change.items() if k != "resource"})
    result = outcome.final_of(spec.name) if group else outcome.final
    if group and result in (CHANGED, WOULD_CHANGE) and not changes:
        result = UNCHANGED  # the group changed, this member was already right
    entry: Dict[str, Any] = {
        "kind": spec.kind,
        "name": spec.name,
        "result": result,
        "changes": changes,
        "errors": outcome.errors_of(spec.name) if group else list(outcome.errors),
    }
    if group:
        entry["group"] = group
    return entry


def resource_entries(outcomes: Iterable[Tuple[ResourceSpec, Outcome]]) -> List[Dict[str, Any]]:
    """One entry per resource of the graph, a group split back into its members."""
    entries = []
    for spec, outcome in outcomes:
        if isinstance(spec, GroupSpec):
            entries += [_member_entry(m, outcome, spec.name) for m in spec.members]
        else:
            entries.append(_member_entry(spec, outcome, ""))
    return sorted(entries, key=lambda e: (e["kind"], e["name"]))


def document(
    host: str,
    noop: bool,
    converged: bool,
    outcomes: Iterable[Tuple[ResourceSpec, Outcome]],
    errors: Iterable[str] = (),
) -> Dict[str, Any]:
    """The run's document (see the module docstring for its shape); ``errors``:
    what kept the graph from running whole."""
    resources = resource_entries(outcomes)
    summary = {result: 0 for result in RESULTS}
    for entry in resources:
        summary[entry["result"]] += 1
    errors = list(errors)
    doc: Dict[str, Any] = {
        "version": VERSION,
        "host": host,
        "noop": noop,
        "converged": converged,
        "status": "failed" if summary[FAILED] or errors else "ok",
    }
    if errors:
        doc["errors"] = errors
    doc.update(summary=summary, resources=resources)
    return doc


def dumps(doc: Dict[str, Any]) -> str:
    """The document as one line of JSON (values the encoder does not know become strings)."""
    return json.dumps(doc, ensure_ascii=False, default=str)


def print_document(doc: Dict[str, Any], to_initiator: bool = False) -> None:
    """``doc`` on stdout, one line; ``to_initiator``: as a remote run's agent
    sends it (mgmt.remote.protocol.report_line), for its initiator to collect."""
    text = dumps(doc)
    if to_initiator:
        from mgmt.remote.protocol import report_line

        text = report_line(text)  # dumps() writes one line
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
