"""The ``pgwarden`` commands, one module each: parse options, call the core, write outputs."""
