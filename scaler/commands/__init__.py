"""One module per ``scaler`` command: ``add_parser(subparsers)`` registers it, ``run(args)``
runs it and returns the exit code."""
