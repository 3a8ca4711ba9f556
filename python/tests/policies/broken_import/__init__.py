"""A policy whose module cannot be imported."""
