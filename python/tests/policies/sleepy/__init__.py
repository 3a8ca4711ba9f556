"""A slow policy for concurrency tests."""
