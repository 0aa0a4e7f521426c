# Deployed as /boot.py: counts this boot as "not yet healthy" before anything can crash.
# (Kept tiny: a bug here would be outside every safety net.)
try:
    from scanbridge_fw import bootguard
    bootguard.on_boot()
except Exception as e:  # a missing or broken app must still leave the REPL usable
    print("boot:", repr(e))
