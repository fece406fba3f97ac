"""Tests of core/dev/."""
