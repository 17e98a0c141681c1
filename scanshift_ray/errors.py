"""The one exception type the command line turns into a one-line message."""


class ScanshiftError(Exception):
    """A user-facing error: bad input, missing file, invalid shard. Printed as one line, no traceback."""
