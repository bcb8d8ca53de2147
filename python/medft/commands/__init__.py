"""One module per ``medft`` subcommand.

Each module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
Modules only parse arguments and call typed functions of the package, so every stage is
scriptable from Python too.
"""
