"""Checkpoints: the Orbax manager, file checksums, and restoring a trained model."""
