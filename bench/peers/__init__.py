"""One module per tool: its configuration (recorded in the results), how it is started,
driven and stopped. Each keeps to loopback and to directories below the run's workdir."""
