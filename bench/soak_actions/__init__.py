"""The action the soak test calls (``python -m bench.soak``)."""
