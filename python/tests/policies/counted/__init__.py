"""A policy whose factory records each call, for instance-cache tests."""
