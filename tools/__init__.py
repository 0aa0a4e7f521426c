"""scanbridge_tools: what builders and technicians run (flash, provision, diagnose, mint, bench)."""
