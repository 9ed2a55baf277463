"""Inference: a trained model on new paintings and texts (API, collections, web app)."""
