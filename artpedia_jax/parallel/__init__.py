"""Parallelism: the device mesh, batch shardings and multi-process start-up."""
