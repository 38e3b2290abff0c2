"""Errors the engine reports to users as one clear line (never a traceback)."""


class ChoreoError(Exception):
    """A user-facing failure: bad input, missing file, unusable data.

    The CLI prints ``error: <message>`` and exits with ``exit_code``.
    """

    exit_code = 2
