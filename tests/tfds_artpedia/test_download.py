"""Tests of the image downloader against a local server that injects faults."""

import io
import json
import os
import pathlib
import stat
import subprocess
import sys

from PIL import Image
import pytest

from tests.helpers import fault_server
from tests.helpers.fault_server import Reply
from tfds_artpedia import annotations
from tfds_artpedia import download

REPO = pathlib.Path(__file__).resolve().parents[2]

# Small timeouts and back-offs keep every test within about a second (Retry-After: 1 s).
FAST = dict(workers=4, max_requests_per_second=None, timeout_s=0.3, max_attempts=3,
            backoff_s=0.01, max_backoff_s=0.05, progress=False)
_PROXY_VARIABLES = ('http_proxy', 'https_proxy', 'all_proxy', 'HTTP_PROXY', 'HTTPS_PROXY',
                    'ALL_PROXY')


def _encode(image_format: str, size=(64, 32)) -> bytes:
  buffer = io.BytesIO()
  Image.new('RGB', size, (200, 30, 60)).save(buffer, format=image_format)
  return buffer.getvalue()


PNG = _encode('PNG')
JPEG = _encode('JPEG')


def _png_reply(**kwargs) -> Reply:
  return Reply(200, PNG, {'Content-Type': 'image/png'}, **kwargs)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
  """Keeps all traffic on 127.0.0.1 whatever proxy the environment names."""
  for name in _PROXY_VARIABLES:
    monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server():
  with fault_server.FaultServer() as s:
    yield s


def _report(out_dir) -> dict:
  return json.loads((out_dir / download.REPORT_NAME).read_text())


def _stored(out_dir) -> set[str]:
  """Every name under images/, temporary files included."""
  return {p.name for p in (out_dir / download.IMAGES_DIR).iterdir()}


def test_downloads_images_named_by_id_with_extension_from_type_or_url(server, tmp_path):
  urls = {
      '1': server.route('/a', _png_reply()),
      '2': server.route('/b', Reply(200, JPEG, {'Content-Type': 'image/jpeg; charset=x'})),
      '3': server.route('/c.JPEG', Reply(200, JPEG,
                                         {'Content-Type': 'application/octet-stream'})),
  }
  summary = download.download_images(urls, tmp_path, **FAST)

  assert summary.counts[download.DOWNLOADED] == 3
  images = tmp_path / 'images'
  assert _stored(tmp_path) == {'1.png', '2.jpg', '3.jpg'}
  assert (images / '1.png').read_bytes() == PNG
  assert (images / '3.jpg').read_bytes() == JPEG
  report = _report(tmp_path)
  assert report['summary'] == {'total': 3, 'downloaded': 3, 'skipped_existing': 0,
                               'failed_permanently': 0, 'failed_transiently': 0}
  assert report['images']['2'] == {'status': 'downloaded', 'attempts': 1, 'error': None,
                                   'file': '2.jpg'}
  user_agents = {r.user_agent for r in server.requests}
  assert user_agents == {download.USER_AGENT}
  assert 'artpedia-jax' in download.USER_AGENT and '@' in download.USER_AGENT


@pytest.mark.parametrize('reply, error', [
    (Reply(404), 'HTTP 404'),
    (Reply(410), 'HTTP 410'),
    (Reply(403), 'HTTP 403'),
    (Reply(200, b'<html>', {'Content-Type': 'text/html'}), 'unsupported content'),
])
def test_permanent_failures_are_reported_without_retry(server, tmp_path, reply, error):
  urls = {'1': server.route('/x.jpg', reply), '2': server.route('/ok', _png_reply())}
  summary = download.download_images(urls, tmp_path, **FAST)

  result = summary.results['1']
  assert (result.status, result.attempts) == (download.FAILED_PERMANENTLY, 1)
  assert error in result.error
  assert len(server.times('/x.jpg')) == 1
  assert _stored(tmp_path) == {'2.png'}
  assert _report(tmp_path)['images']['1']['error'] == result.error


@pytest.mark.parametrize('status', [429, 503])
def test_retry_after_is_waited_before_the_next_request(server, tmp_path, status):
  url = server.route('/busy', Reply(status, headers={'Retry-After': '1'}), _png_reply())
  summary = download.download_images({'7': url}, tmp_path, **FAST)

  assert summary.results['7'].status == download.DOWNLOADED
  assert summary.results['7'].attempts == 2
  first, second = server.times('/busy')
  assert second - first >= 1.0


def test_retry_after_beyond_the_limit_gives_up(server, tmp_path):
  url = server.route('/busy', Reply(429, headers={'Retry-After': '3600'}))
  summary = download.download_images({'7': url}, tmp_path, **FAST, max_retry_after_s=2)

  result = summary.results['7']
  assert (result.status, result.attempts) == (download.FAILED_TRANSIENTLY, 1)
  assert 'max_retry_after' in result.error


TRANSIENT_FAULTS = {
    'server_error': Reply(500),
    'dropped_mid_body': _png_reply(reset_after=20),
    'slower_than_timeout': _png_reply(delay_s=0.6),
    'shorter_than_content_length': _png_reply(content_length=len(PNG) + 100),
}


@pytest.mark.parametrize('fault', TRANSIENT_FAULTS.values(), ids=TRANSIENT_FAULTS.keys())
def test_transient_fault_is_retried_until_success(server, tmp_path, fault):
  url = server.route('/img', fault, _png_reply())
  summary = download.download_images({'5': url}, tmp_path, **FAST)

  assert summary.results['5'].status == download.DOWNLOADED
  assert summary.results['5'].attempts == 2
  assert (tmp_path / 'images' / '5.png').read_bytes() == PNG


@pytest.mark.parametrize('fault_name', ['server_error', 'dropped_mid_body',
                                        'shorter_than_content_length'])
def test_retries_are_bounded_and_leave_no_partial_file(server, tmp_path, fault_name):
  url = server.route('/img', TRANSIENT_FAULTS[fault_name])
  summary = download.download_images({'5': url}, tmp_path, **FAST)

  result = summary.results['5']
  assert (result.status, result.attempts) == (download.FAILED_TRANSIENTLY, 3)
  assert len(server.times('/img')) == 3
  assert _stored(tmp_path) == set()
  assert _report(tmp_path)['summary']['failed_transiently'] == 1


def test_follows_http_redirects(server, tmp_path):
  server.route('/final.png', _png_reply())
  url = server.route('/moved', Reply(301, headers={'Location': '/hop'}))
  server.route('/hop', Reply(302, headers={'Location': server.url('/final.png')}))
  summary = download.download_images({'4': url}, tmp_path, **FAST)

  assert summary.results['4'].status == download.DOWNLOADED
  assert [r.path for r in server.requests] == ['/moved', '/hop', '/final.png']
  assert _stored(tmp_path) == {'4.png'}


@pytest.mark.parametrize('target', ['file:///etc/hostname', 'ftp://127.0.0.1/x.jpg',
                                    'data:image/png;base64,AAAA'])
def test_refuses_non_http_urls_and_redirects(server, tmp_path, target):
  urls = {'1': target, '2': server.route('/moved', Reply(302, headers={'Location': target}))}
  summary = download.download_images(urls, tmp_path, **FAST)

  for painting_id in urls:
    result = summary.results[painting_id]
    assert (result.status, result.attempts) == (download.FAILED_PERMANENTLY, 1)
    assert target.split(':')[0] in result.error
  assert [r.path for r in server.requests] == ['/moved']
  assert _stored(tmp_path) == set()


def test_rerun_requests_only_missing_images_and_cleans_temp_files(server, tmp_path):
  urls = {'1': server.route('/a', _png_reply()),
          '2': server.route('/b', Reply(200, JPEG, {'Content-Type': 'image/jpeg'})),
          '3': server.route('/c', Reply(503), _png_reply())}
  first = download.download_images(urls, tmp_path, **{**FAST, 'max_attempts': 1})
  assert first.results['3'].status == download.FAILED_TRANSIENTLY
  leftover = tmp_path / 'images' / '.3.interrupted.part'
  leftover.write_bytes(PNG[:10])
  server.requests.clear()

  second = download.download_images(urls, tmp_path, **FAST)

  assert [r.path for r in server.requests] == ['/c']
  assert second.counts == {'downloaded': 1, 'skipped_existing': 2,
                           'failed_permanently': 0, 'failed_transiently': 0}
  assert second.results['1'].file == '1.png'
  assert _stored(tmp_path) == {'1.png', '2.jpg', '3.png'}


@pytest.mark.parametrize('bad_id', ['../x', '/tmp/x', '1/../../x', '..', '', '1.png',
                                    '\u0661\u0662', ' 12'])
def test_ids_that_are_not_digits_are_refused_and_write_nothing(server, tmp_path, bad_id):
  out_dir = tmp_path / 'out'
  urls = {bad_id: server.route('/a.png', _png_reply()), '9': server.url('/a.png')}
  summary = download.download_images(urls, out_dir, **FAST)

  result = summary.results[bad_id]
  assert result.status == download.FAILED_PERMANENTLY
  assert repr(bad_id) in result.error
  assert len(server.requests) == 1  # for id '9' only
  written = {p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob('*')}
  assert written == {'out', 'out/images', 'out/images/9.png', 'out/download_report.json'}


@pytest.mark.parametrize('content_length', [fault_server.AUTO, None],
                         ids=['declared', 'undeclared'])
def test_size_cap_aborts_large_images(server, tmp_path, content_length):
  big = Reply(200, bytes(5000), {'Content-Type': 'image/png'}, content_length=content_length)
  urls = {'1': server.route('/big', big), '2': server.route('/small', _png_reply())}
  summary = download.download_images(urls, tmp_path, **FAST, max_bytes=len(PNG))

  result = summary.results['1']
  assert (result.status, result.attempts) == (download.FAILED_PERMANENTLY, 1)
  assert 'max_bytes' in result.error
  assert summary.results['2'].status == download.DOWNLOADED
  assert _stored(tmp_path) == {'2.png'}


def test_max_side_stores_downsized_copies_in_their_own_format(server, tmp_path):
  tiny_png = _encode('PNG', size=(8, 4))
  urls = {'1': server.route('/a', Reply(200, JPEG, {'Content-Type': 'image/jpeg'})),
          '2': server.route('/b', _png_reply()),
          '3': server.route('/c', Reply(200, tiny_png, {'Content-Type': 'image/png'}))}
  summary = download.download_images(urls, tmp_path, **FAST, max_side=16)

  assert summary.counts[download.DOWNLOADED] == 3
  images = tmp_path / 'images'
  for name, image_format in [('1.jpg', 'JPEG'), ('2.png', 'PNG')]:
    with Image.open(images / name) as image:
      assert (image.format, image.size) == (image_format, (16, 8))
  assert (images / '3.png').read_bytes() == tiny_png
  assert _stored(tmp_path) == {'1.jpg', '2.png', '3.png'}


class _FakeClock:

  def __init__(self):
    self.now = 0.0

  def __call__(self) -> float:
    return self.now

  def sleep(self, seconds: float) -> None:
    self.now += seconds


def test_rate_limiter_spaces_starts_and_pauses_for_retry_after():
  clock = _FakeClock()
  limiter = download.RateLimiter(4.0, clock=clock, sleep=clock.sleep)
  starts = []
  for _ in range(3):
    limiter.wait()
    starts.append(clock.now)
  limiter.pause_for(10.0)
  limiter.wait()
  starts.append(clock.now)
  assert starts == pytest.approx([0.0, 0.25, 0.5, 10.5])


def test_read_image_urls_keeps_only_urls_and_names_bad_entries(tmp_path):
  path = tmp_path / 'artpedia.json'
  path.write_text(json.dumps({'12': {'title': 't', 'img_url': 'http://h/a.jpg', 'year': 1}}))
  assert download.read_image_urls(path) == {'12': 'http://h/a.jpg'}
  path.write_text(json.dumps({'12': {'title': 't'}}))
  with pytest.raises(ValueError, match="'12'"):
    download.read_image_urls(path)


def _command(*args, umask=0o022):
  return subprocess.run(
      [sys.executable, '-m', 'tfds_artpedia.download', '--max_requests_per_second=0',
       '--timeout=0.3', '--max_attempts=1', *args],
      cwd=REPO, capture_output=True, text=True, timeout=300, umask=umask,
      env={**os.environ, 'PYTHONPATH': str(REPO)})


@pytest.mark.parametrize('max_failures, status', [(None, 1), (0.6, 0)])
def test_command_line_fails_after_the_report_when_too_many_images_fail(
    server, tmp_path, max_failures, status):
  json_path = tmp_path / 'artpedia.json'
  json_path.write_text(json.dumps({
      '1': {'img_url': server.route('/a.png', _png_reply()), 'split': 'train'},
      '2': {'img_url': server.route('/gone.png', Reply(404)), 'split': 'val'},
  }))
  out_dir = tmp_path / 'out'
  flags = [] if max_failures is None else [f'--max_failures={max_failures}']
  result = _command(f'--json={json_path}', f'--out={out_dir}', *flags)

  assert result.returncode == status, result.stderr
  assert _stored(out_dir) == {'1.png'}
  assert _report(out_dir)['summary']['failed_permanently'] == 1
  assert '1 downloaded' in result.stdout and '1 failed_permanently' in result.stdout
  errors = [line for line in result.stderr.splitlines() if line.startswith('error:')]
  assert errors == ([] if status == 0 else [
      f'error: 1 of 2 images failed, more than --max_failures=0.05 (reasons in '
      f'{out_dir / download.REPORT_NAME}); run again to retry them, or raise '
      '--max_failures to accept the gaps.'])


def test_command_line_fails_when_no_image_was_downloaded(server, tmp_path):
  json_path = tmp_path / 'artpedia.json'
  json_path.write_text(json.dumps(
      {'1': {'img_url': server.route('/gone.png', Reply(404)), 'split': 'train'}}))
  result = _command(f'--json={json_path}', f'--out={tmp_path / "out"}',
                    '--max_failures=1')
  assert result.returncode == 1
  assert 'error: none of the 1 images could be downloaded' in result.stderr
  assert _report(tmp_path / 'out')['summary']['failed_permanently'] == 1


def test_html_served_as_an_image_is_a_failure_and_is_fetched_again(server, tmp_path):
  html = Reply(200, b'<html><body>Please log in</body></html>',
               {'Content-Type': 'image/jpeg'})
  annotations = {'1': server.route('/a.jpg', html)}
  summary = download.download_images(annotations, tmp_path, **FAST)
  assert summary.results['1'].status == download.FAILED_PERMANENTLY
  assert 'is not an image' in summary.results['1'].error
  assert _stored(tmp_path) == set()
  server.route('/a.jpg', Reply(200, JPEG, {'Content-Type': 'image/jpeg'}))
  summary = download.download_images(annotations, tmp_path, **FAST)
  assert summary.results['1'].status == download.DOWNLOADED
  assert _stored(tmp_path) == {'1.jpg'}


def test_extension_follows_the_format_in_the_file(server, tmp_path):
  png_as_jpeg = Reply(200, PNG, {'Content-Type': 'image/jpeg'})
  download.download_images({'1': server.route('/a.jpg', png_as_jpeg)}, tmp_path, **FAST)
  assert _stored(tmp_path) == {'1.png'}


@pytest.mark.parametrize('umask, mode', [(0o022, 0o644), (0o007, 0o660)])
def test_files_get_the_mode_the_umask_gives(server, tmp_path, umask, mode):
  json_path = tmp_path / 'artpedia.json'
  json_path.write_text(json.dumps({'1': {'img_url': server.route('/a.png', _png_reply())}}))
  result = _command(f'--json={json_path}', f'--out={tmp_path}', umask=umask)
  assert result.returncode == 0, result.stderr
  assert stat.S_IMODE((tmp_path / 'images' / '1.png').stat().st_mode) == mode
  assert stat.S_IMODE((tmp_path / download.REPORT_NAME).stat().st_mode) == mode


def test_duplicate_ids_in_the_json_are_refused_up_front(tmp_path):
  path = tmp_path / 'artpedia.json'
  path.write_text('{"7": {"img_url": "http://h/a.jpg"}, "7": {"img_url": "http://h/b.jpg"}}')
  with pytest.raises(annotations.AnnotationError, match=r"duplicate painting ids \['7'\]"):
    download.read_image_urls(path)
