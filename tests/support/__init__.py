"""Test helpers that are not fixtures: real server processes and the like."""
