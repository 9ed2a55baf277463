"""The generated corpora: the embedded sample and the realistic-text variant."""
