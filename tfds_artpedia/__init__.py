"""Artpedia as a TFDS dataset (`artpedia`: configs `sample`, `images`, `regions`).

The builder lives in `tfds_artpedia_dataset_builder` (the layout `tfds new` creates);
importing that module registers `artpedia` with TFDS. This package file imports nothing,
so that the generator and download tools run without loading TFDS.
"""
