# The one exception shape of the firmware: a stable reason code (what the user and the bridge
# see) plus a human message. WireError, MQTTError, SnapshotError... are its named kinds.


class CodedError(Exception):
    """A failure with a stable reason code `code` and a human `message`."""

    def __init__(self, code, message=""):
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self):
        return self.code + (": " + self.message if self.message else "")
