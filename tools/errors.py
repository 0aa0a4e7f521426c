"""The technician tools' error: a reason code, what went wrong, and the fix to try."""


class FixableError(Exception):
    def __init__(self, code, message, fix=""):
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.fix = fix

    def __str__(self):
        return "%s: %s" % (self.code, self.message) + ("\n  fix: " + self.fix if self.fix else "")

    def as_dict(self):
        return {"code": self.code, "message": self.message, "fix": self.fix}
