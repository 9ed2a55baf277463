"""`InputSpec`: what the input pipeline needs of a run's config, built once from it.

The pipeline, the evaluation split and the painting transforms take this frozen spec
instead of the ConfigDict, so their inputs are explicit, hashable and picklable (grain
workers receive it), and a restored run builds it from the config saved in its checkpoint.
"""

import dataclasses

import ml_collections

from artpedia_jax.data import length_buckets


@dataclasses.dataclass(frozen=True)
class InputSpec:
  """Dataset, batch and padding sizes, and how paintings enter the model."""
  dataset_name: str
  data_dir: str | None
  batch_size: int  # global pairs per training batch
  max_regions: int
  max_words: int  # tokens a sentence keeps (words, or word pieces for BERT)
  cls_sentences: int  # classifier sentences per painting and step (C)
  bucket_widths: tuple[int, ...]  # padded sentence lengths, clipped to max_words
  num_workers: int
  prefetch_batches: int
  backbone: str  # the pixel backbone ('resnet50', ...); '': precomputed region features
  image_size: int
  crop_min_scale: float
  random_flip: bool

  @property
  def pixels(self) -> bool:
    """Whether paintings enter the model as images (a backbone) or as region features."""
    return bool(self.backbone)

  @classmethod
  def from_config(cls, config: ml_collections.ConfigDict) -> 'InputSpec':
    data = config.dataset
    return cls(
        dataset_name=data.name, data_dir=data.data_dir, batch_size=config.batch_size,
        max_regions=data.max_regions, max_words=data.max_words,
        cls_sentences=data.cls_sentences,
        bucket_widths=length_buckets.widths(data.length_buckets, data.max_words),
        num_workers=data.num_workers, prefetch_batches=data.prefetch_batches,
        backbone=config.model.backbone, image_size=data.image_size,
        crop_min_scale=data.crop_min_scale, random_flip=data.random_flip)
