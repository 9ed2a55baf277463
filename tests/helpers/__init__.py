"""Shared test helpers (fixtures, fake servers, reference implementations)."""
