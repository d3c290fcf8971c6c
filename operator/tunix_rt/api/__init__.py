"""API types: the pydantic models behind the CRDs, the trainer config and the trial record."""
