"""Tests of the Python SDK and of a real executor process."""
