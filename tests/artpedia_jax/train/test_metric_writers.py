"""The loop's scalars: a JSON-lines file and TensorBoard events, locally and on gs://."""

import json
import os
import struct

from etils import epath
from tensorboardX.proto import event_pb2

from artpedia_jax.train import metric_writers
from tests.helpers import fake_gcs


def _events(path) -> list[event_pb2.Event]:
  """The records of a TensorBoard event file (length, crc, data, crc each)."""
  data, events, at = epath.Path(path).read_bytes(), [], 0
  while at < len(data):
    (length,) = struct.unpack('Q', data[at:at + 8])
    events.append(event_pb2.Event.FromString(data[at + 12:at + 12 + length]))
    at += 12 + length + 4
  return events


def _write_a_run(workdir):
  writer = metric_writers.MetricWriter(workdir)
  writer.write_train(10, {'loss': 0.5, 'skipped': 0})
  writer.write_validation(10, {'rsum': 300.0, 'i2t': {'R@1': 20.0}, 'split': 'validation'})
  writer.close()
  resumed = metric_writers.MetricWriter(workdir)
  resumed.write_train(20, {'loss': 0.25, 'skipped': 1})
  resumed.close()


def _check_the_run(workdir):
  workdir = epath.Path(workdir)
  lines = (workdir / metric_writers.TRAIN_METRICS_FILE).read_text().splitlines()
  assert [json.loads(line) for line in lines] == [
      {'loss': 0.5, 'skipped': 0, 'step': 10}, {'loss': 0.25, 'skipped': 1, 'step': 20}]
  event_files = sorted((workdir / metric_writers.TENSORBOARD_DIR).iterdir())
  assert len(event_files) == 2  # one per writer: the resumed run adds its own
  scalars = {}
  for event_file in event_files:
    for event in _events(event_file):
      for value in event.summary.value:
        scalars.setdefault(value.tag, []).append((event.step, value.simple_value))
  scalars = {tag: sorted(values) for tag, values in scalars.items()}
  assert scalars == {'train/loss': [(10, 0.5), (20, 0.25)],
                     'train/skipped': [(10, 0.0), (20, 1.0)],
                     'validation/rsum': [(10, 300.0)],
                     'validation/i2t/R_at_1': [(10, 20.0)]}


def test_scalars_go_to_json_lines_and_tensorboard(tmp_path):
  _write_a_run(tmp_path)
  _check_the_run(tmp_path)


def test_a_gs_workdir_gets_the_same_files_through_epath(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  fake = fake_gcs.fake_gcs(tmp_path / 'bucket_root', monkeypatch)
  _write_a_run('gs://bucket/w')
  _check_the_run('gs://bucket/w')
  assert 'gs://bucket/w/train_metrics.jsonl' in fake.written
  assert any(p.startswith('gs://bucket/w/tensorboard/events.out.tfevents')
             for p in fake.written)
  assert not (tmp_path / 'gs:').exists()  # nothing went to the local disk by name


def test_a_disabled_writer_writes_nothing(tmp_path):
  writer = metric_writers.MetricWriter(tmp_path, enabled=False)
  writer.write_train(10, {'loss': 0.5})
  writer.write_validation(10, {'rsum': 1.0})
  writer.close()
  assert not os.listdir(tmp_path)
