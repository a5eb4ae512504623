"""How many data-plane lanes a node may run: one per TAP queue, each with its
own UDP port. Its own module so that the CLI can bound ``--workers`` without
loading the netmap's models."""

MAX_LANES = 64
