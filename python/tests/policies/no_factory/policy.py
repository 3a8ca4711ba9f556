"""Imports fine but forgets the get_policy factory."""

from sdk.policy import Policy

__all__ = ["Policy"]
