"""The action the deploy benchmark calls (``python -m bench.deploys``)."""
