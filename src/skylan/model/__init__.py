"""Plain data types shared by every layer: networks, nodes, ports, routes,
cloak rules and the per-node netmap.

Nothing here performs I/O, so the sans-I/O layers, the controller and the agent
can all agree on one vocabulary without importing each other.
"""
