"""The service's benchmark: ``python -m bench.run`` (the module's docstring explains it)."""
