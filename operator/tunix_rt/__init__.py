"""tunix-rt: Kubernetes-native sweeps and rehearsals for trace-first LLM post-training."""

__version__ = "0.1.0"
