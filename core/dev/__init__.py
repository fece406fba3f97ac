"""Developer tools: the command line's sub-commands, scaffolding, exporters and the local hub."""
