"""flokoa-controller: a Kubernetes operator for ModelProvider and Model resources."""

__version__ = "0.1.0"
