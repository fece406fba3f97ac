"""Tests of core/execution/."""
