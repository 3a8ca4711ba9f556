"""A policy whose behaviour is given by its parameters, for batch and error tests."""
