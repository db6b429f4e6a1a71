"""The core's thin command lines: each parses its arguments, calls the core, prints and picks
the exit code. Nothing else in the core imports them."""
