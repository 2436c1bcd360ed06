"""Graphs: ``.meta`` MetaGraphDefs, GraphDef ``.pb``/``.pbtxt``, SavedModels and the
``checkpoint`` state file, read natively with protobuf (no TensorFlow).

- ``load``: path resolution, message type from content, binary/text parsing
- ``textproto``: fast protobuf text parsing (``text_format`` as the fallback and error reporter)
- ``summary``: counts, inputs, outputs, variables, signatures, node lists, Graphviz DOT
- ``check``: what a graph restores vs what a checkpoint holds, with rename suggestions
- ``scan``: ops that touch files / the network, including inside library functions
- ``convert``: binary <-> text conversion with a round-trip check
"""

from __future__ import annotations

from tfckpt.graph.load import (
    ALL_TYPES,
    GRAPH_TYPES,
    LoadedMessage,
    load_graph,
    load_message,
    parse_type_option,
)

__all__ = [
    "ALL_TYPES",
    "GRAPH_TYPES",
    "LoadedMessage",
    "load_graph",
    "load_message",
    "parse_type_option",
]
