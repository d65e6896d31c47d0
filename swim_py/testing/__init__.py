"""Test support that ships with swim_py: an in-memory cluster simulator."""
