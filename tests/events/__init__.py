"""Tests of the event handlers in events/."""
