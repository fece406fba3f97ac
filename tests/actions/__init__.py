"""Tests of the actions in actions/."""
