# Deployed as /boot.py: counts this boot as "not yet healthy" before anything can crash.
# (Kept tiny: a bug here would be outside every safety net.)
try:
    import os
    try:
        os.stat("/lib/scanbridge_fw")
    except OSError:  # power cut inside a deploy's two-rename switch: take the verified new app,
        for _d in ("/lib/scanbridge_fw.new", "/lib/scanbridge_fw.old"):  # else the previous one
            try:
                os.stat(_d + "/DEPLOYED.json")  # only a verified copy carries it (tools/flashing/deploy.py)
                os.rename(_d, "/lib/scanbridge_fw")
                break
            except OSError:
                pass
    from scanbridge_fw import bootguard
    bootguard.on_boot()
except Exception as e:  # a missing or broken app must still leave the REPL usable
    print("boot:", repr(e))
