"""Tests of core/ops/."""
