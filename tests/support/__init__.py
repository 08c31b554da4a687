"""Helpers shared by the test suite: real services, free ports, a running adtrack server."""
