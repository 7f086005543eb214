"""examples/webserver.yaml is a valid graph that uses the kinds it means to."""

from __future__ import annotations

from pathlib import Path

from mgmt.graph.parse import parse_graph

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "webserver.yaml"


def test_the_web_server_example_validates_with_pkg_file_svc_and_msg():
    graph = parse_graph(EXAMPLE.read_text(), str(EXAMPLE))
    kinds = {kind for kind, _ in graph.resources}
    assert kinds == {"pkg", "file", "svc", "msg"}
    svc = graph.resources[("svc", "nginx")]
    assert (svc.params["state"], svc.params["startup"]) == ("running", "enabled")
    # The service comes after its configuration, which comes after the package.
    edges = {(e.from_, e.to) for e in graph.edges}
    assert (("pkg", "nginx"), ("file", "/etc/nginx/conf.d/mgmt-site.conf")) in edges
    assert (("file", "/etc/nginx/conf.d/mgmt-site.conf"), ("svc", "nginx")) in edges
