"""Data: the built dataset, tokenizers, and the host pipeline that makes batches."""
