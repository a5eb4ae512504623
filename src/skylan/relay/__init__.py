"""``skylan relay serve``: forwards nodes' tunnel datagrams, unread, between
nodes that no direct path joins (see :mod:`skylan.relay.forwarder`)."""
