"""FlashError: every failure of flash/deploy/provision, with a reason code and the fix to try."""

from scanbridge_tools.errors import FixableError


class FlashError(FixableError):
    pass
