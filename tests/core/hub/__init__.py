"""Tests of core/hub/."""
