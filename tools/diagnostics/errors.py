"""DiagError: a diagnostic could not be run (not: the scanner is faulty). Reason code + fix."""


class DiagError(Exception):
    def __init__(self, code, message, fix=""):
        super().__init__(code, message)
        self.code = code
        self.message = message
        self.fix = fix

    def __str__(self):
        return "%s: %s" % (self.code, self.message) + ("\n  fix: " + self.fix if self.fix else "")

    def as_dict(self):
        return {"code": self.code, "message": self.message, "fix": self.fix}
