"""Tests of core/dev/local_hub/."""
