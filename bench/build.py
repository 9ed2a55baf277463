"""Dataset build throughput (paintings/s) and peak memory, `sample` and `images` configs.

  python bench/build.py [--num_paintings=500] [--max_image_side=512]

Each build runs as `python -m tfds_artpedia build` in its own process, so the figures are
those of the real command (process start-up included) and the peak resident memory is
that build's alone (`os.wait4` returns the child's own resource usage). The `images`
build reads a folder that the sample generator writes first (not timed).
"""

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time

from tfds_artpedia.sample import corpus as sample_corpus
from tfds_artpedia.sample import folder as sample_folder


def _build(config: str, data_dir: pathlib.Path, *options: str) -> tuple[float, float]:
  """(seconds, peak resident MiB) of one build in a child process."""
  command = [sys.executable, '-m', 'tfds_artpedia', 'build', f'--config={config}',
             f'--data_dir={data_dir}', *options]
  start = time.perf_counter()
  child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  _, status, usage = os.wait4(child.pid, 0)
  seconds = time.perf_counter() - start
  if os.waitstatus_to_exitcode(status) != 0:
    raise RuntimeError(f'{" ".join(command)} failed:\n{child.stderr.read().decode()}')
  child.stderr.close()
  return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument('--num_paintings', type=int, default=500)
  parser.add_argument('--max_image_side', type=int, default=512)
  args = parser.parse_args()
  with tempfile.TemporaryDirectory() as tmp:
    tmp = pathlib.Path(tmp)
    sample_folder.write_folder(str(tmp / 'manual'), sample_corpus.generate(args.num_paintings))
    runs = {
        'sample': _build('sample', tmp / 'data', f'--num_paintings={args.num_paintings}',
                         f'--max_image_side={args.max_image_side}'),
        'images': _build('images', tmp / 'data', f'--manual_dir={tmp / "manual"}',
                         f'--max_image_side={args.max_image_side}'),
    }
  print(f'{args.num_paintings} paintings, max_image_side {args.max_image_side}, '
        f'{os.cpu_count()} CPUs')
  for config, (seconds, peak_mib) in runs.items():
    print(f'{config:8s} {args.num_paintings / seconds:7.1f} paintings/s  '
          f'({seconds:.1f} s)  peak RSS {peak_mib:.0f} MiB')


if __name__ == '__main__':
  main()
