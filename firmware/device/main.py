# Deployed as /main.py: starts the scanner app unless asked not to (/noapp, safe-boot pin,
# a crash loop). Ctrl-C (mpremote) or the `repl` command leave it for the REPL.
try:
    from scanbridge_fw import start
    start.main()
except KeyboardInterrupt:
    print("scanbridge: stopped by Ctrl-C; REPL")
except Exception as e:  # stay at the REPL; the boot counter makes the next boots skip the app
    import sys
    sys.print_exception(e)  # pyright: ignore[reportAttributeAccessIssue]
