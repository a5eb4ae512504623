"""Test topologies made of network namespaces on one machine.

A :class:`Lab` builds "clouds" (hosts on a shared underlay bridge), NAT routers
in front of hosts, an office LAN behind a chosen host and an "internet"
namespace for scans. It never connects a namespace to the host's own
interfaces, tracks every process it starts by PID, and always tears down what
it built: on ``close()``, at interpreter exit, and through a reaper process
when its owner is killed. ``skylan lab clean`` removes leftovers matching only
the lab's own name prefix.
"""

from skylan.lab.errors import LabError
from skylan.lab.host import Host, RunResult
from skylan.lab.topology import Lab, Netem

__all__ = ["Host", "Lab", "LabError", "Netem", "RunResult"]
