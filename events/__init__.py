"""Handlers for the hub's events, one module per event, discovered at start-up."""
