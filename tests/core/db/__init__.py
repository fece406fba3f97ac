"""Tests of core/db/."""
