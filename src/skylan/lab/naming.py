"""Names of everything the lab creates.

Every namespace starts with :data:`PREFIX` so that clean-up can match the
lab's own objects and nothing else; interface names live inside namespaces, so
they can be short and fixed (Linux limits them to 15 bytes).
"""

import secrets
from pathlib import Path

PREFIX = "skl-"
STATE_DIR = Path("/run/skylan-lab")


def new_lab_id() -> str:
    return secrets.token_hex(3)


def netns_name(lab_id: str, role: str) -> str:
    return f"{PREFIX}{lab_id}-{role}"


def lab_id_of(netns: str) -> str | None:
    """The lab id encoded in a namespace name, or None if it is not ours."""
    if not netns.startswith(PREFIX):
        return None
    rest = netns[len(PREFIX) :]
    lab_id, sep, _role = rest.partition("-")
    return lab_id if sep and lab_id else None


def state_file(lab_id: str) -> Path:
    return STATE_DIR / f"{lab_id}.json"
