"""Tests of the core package in core/."""
