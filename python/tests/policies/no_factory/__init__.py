"""A policy module without get_policy."""
