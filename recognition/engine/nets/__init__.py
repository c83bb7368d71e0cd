"""Hand-written PyTorch networks for the embedders (no third-party model code)."""
