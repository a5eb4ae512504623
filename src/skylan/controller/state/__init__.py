"""The controller's authoritative state, held in memory.

Loaded from the database at start and then changed only by the change feed
(:mod:`skylan.controller.feed`), on the event loop, in change-id order: a write
commits to the database and records a change; every replica's feed reads the
change and reloads what it names. Reads, netmaps and authentication are
answered from here, never by waiting on the database.
"""
