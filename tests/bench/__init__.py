"""Tests of the benchmark (`bench/`), one file per module."""
