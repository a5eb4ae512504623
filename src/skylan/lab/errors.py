"""The lab's one exception type, so callers can tell lab failures from bugs."""


class LabError(RuntimeError):
    """A lab operation failed; the message names the command and its stderr."""
