"""`python -m tfds_artpedia.sample --out=DIR [--realistic]`: a sample corpus as a folder.

The folder (`artpedia.json`, `images/`, `regions/`) is what the `images` and `regions`
builder configs read, so they can be tried without the real data. Prints the corpus
statistics afterwards.
"""

import json

from absl import app
from absl import flags

from tfds_artpedia import cli
from tfds_artpedia.sample import corpus as sample_corpus
from tfds_artpedia.sample import folder as sample_folder
from tfds_artpedia.sample import statistics as sample_statistics

_OUT = flags.DEFINE_string('out', None,
                           'Folder to write artpedia.json, images/ and regions/ into.',
                           required=True)
_NUM_PAINTINGS = flags.DEFINE_integer('num_paintings', 1000, 'Number of paintings to generate.')
_SEED = flags.DEFINE_integer('seed', 0, 'Seed: the same seed writes the same bytes.')
_REALISTIC = flags.DEFINE_bool('realistic', False,
                               "Write the sample_realistic corpus: real Artpedia's sentence "
                               'lengths, long-tail vocabulary and label noise.')
_REGION_FORMAT = flags.DEFINE_enum('region_format', 'npz', sample_folder.REGION_FORMATS,
                                   'npz: one regions/<id>.npz per image; tsv: one '
                                   'bottom-up-attention regions/features.tsv.')


def main(argv: list[str]) -> None:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  paintings = sample_corpus.generate(_NUM_PAINTINGS.value, _SEED.value, _REALISTIC.value)
  sample_folder.write_folder(_OUT.value, paintings, _REGION_FORMAT.value)
  statistics = sample_statistics.corpus_statistics(
      sample_corpus.generate(_NUM_PAINTINGS.value, _SEED.value, _REALISTIC.value))
  print(f'Wrote {_NUM_PAINTINGS.value} paintings to {_OUT.value}')
  print(json.dumps(statistics, indent=2))


if __name__ == '__main__':
  cli.run(main)
