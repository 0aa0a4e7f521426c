"""`scanbridge diag` internals: transports to the scanner, known-failure table, snapshot analysis."""
