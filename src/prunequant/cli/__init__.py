"""The `prunequant` command line: one module per subcommand, each thin over the Python API."""
