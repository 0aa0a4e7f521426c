"""DiagError: a diagnostic could not be run (not: the scanner is faulty). Reason code + fix."""

from scanbridge_tools.errors import FixableError


class DiagError(FixableError):
    pass
