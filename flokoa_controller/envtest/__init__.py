"""envtest."""
