"""Policies the tests load into a real executor (each directory is one policy)."""
