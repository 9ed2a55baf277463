"""Model: painting and text encoders, region-word scorers, pretrained-weight importers."""
