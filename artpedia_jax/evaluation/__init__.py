"""Evaluation: scoring a split on the devices, metrics, baselines and the report."""
