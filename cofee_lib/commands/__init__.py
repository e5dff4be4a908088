"""One module per ``cofee`` subcommand; see :mod:`cofee_lib.cli`."""
