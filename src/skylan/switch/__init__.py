"""The sans-I/O layer-2 switch: FDB with learning and ageing, flooding by
head-end replication, storm control, ARP suppression and per-network
isolation. Kept pure so forwarding decisions can be unit- and
property-tested without TAP devices.
"""

from skylan.switch.switch import LocalDecision, Member, Switch

__all__ = ["LocalDecision", "Member", "Switch"]
