"""Where an agent keeps its key, enrolment and status unless told otherwise.
Apart from :mod:`skylan.agent.state` so that every ``skylan`` command, which
shows it as an option's default, need not load what reads the files."""

from pathlib import Path

DEFAULT_STATE_DIR = Path("/var/lib/skylan/agent")
