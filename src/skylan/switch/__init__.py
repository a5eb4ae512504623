"""The sans-I/O layer-2 switch: FDB with learning and ageing, flooding by
head-end replication, storm control and per-network isolation.

Kept pure so forwarding decisions can be unit- and property-tested without TAP
devices.
"""
