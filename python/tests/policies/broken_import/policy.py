"""Fails at import time, as a policy with a missing dependency would."""

raise ImportError("tollgate_test_missing_dependency is not installed")
