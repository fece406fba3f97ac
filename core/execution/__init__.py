"""Request execution: validation, limits, time limits and the status codes of the answers."""
