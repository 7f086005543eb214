"""Graph files: YAML with line numbers -> a validated :class:`Graph`; the diff of two graphs."""

from mgmt.graph.diff import GraphDiff, diff_resources
from mgmt.graph.model import Collect, Edge, Graph, ResourceKey, ResourceSpec
from mgmt.graph.parse import load_graph, parse_graph

__all__ = [
    "Collect",
    "Edge",
    "Graph",
    "GraphDiff",
    "ResourceKey",
    "ResourceSpec",
    "diff_resources",
    "load_graph",
    "parse_graph",
]
