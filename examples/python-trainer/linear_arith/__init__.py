"""linear_arith: an example trainer for tunix-rt's ``backend: python`` (see README.md)."""
