r"""Fetches Artpedia painting images from their `img_url` into `DIR/images/<id>.<ext>`.

  python -m tfds_artpedia.download --json=artpedia.json --out=DIR [--workers=4]

Artpedia ships annotations only, so every user downloads about 3,000 images from
Wikimedia. That server asks for a descriptive User-Agent and a modest request rate, and a
few percent of the URLs are dead, so this tool:

- sends `USER_AGENT`, limits the request rate across all workers, and honours
  `Retry-After` on 429/503 (the wait also pauses the other workers);
- retries transient failures (5xx, 408, 429, timeouts, dropped or truncated transfers)
  with exponential back-off and jitter, at most `max_attempts` times per image;
- records permanent failures (404, 410, other 4xx, refused redirects, non-image
  content, oversized files) in `DIR/download_report.json` and moves on;
- writes each image to a temporary file in `DIR/images/` and renames it only when the
  body matched its Content-Length, so a file named `<id>.<ext>` is always complete:
  a re-run skips those and cleans up temporary files left by an interrupted run;
- fetches only http(s) URLs, also after redirects, and names files after the painting
  id alone (ASCII digits), so nothing in the JSON can write outside `DIR`.

Images are stored as served, or with `max_side` downsized in their own format (reduced
while decoding), which keeps a full Artpedia download at a few hundred MB.
"""

from collections.abc import Mapping
import concurrent.futures
import contextlib
import dataclasses
import email.utils
import http.client
import itertools
import json
import os
import pathlib
import random
import re
import ssl
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

from absl import app
from absl import flags
from absl import logging
from PIL import Image
import tqdm

from tfds_artpedia import annotations as annotations_lib
from tfds_artpedia import cli
from tfds_artpedia import errors

USER_AGENT = (
    'artpedia-jax/0.1 (https://github.com/artpedia-jax; artpedia-jax@example.org) '
    f'python-urllib/{sys.version_info.major}.{sys.version_info.minor}'
)
REPORT_NAME = 'download_report.json'
IMAGES_DIR = 'images'

DOWNLOADED = 'downloaded'
SKIPPED_EXISTING = 'skipped_existing'
FAILED_PERMANENTLY = 'failed_permanently'
FAILED_TRANSIENTLY = 'failed_transiently'
STATUSES = (DOWNLOADED, SKIPPED_EXISTING, FAILED_PERMANENTLY, FAILED_TRANSIENTLY)
FAILED = (FAILED_PERMANENTLY, FAILED_TRANSIENTLY)
# Fraction of images that may fail (dead URLs) before the command reports a failure.
DEFAULT_MAX_FAILURES = 0.05

_EXTENSION_BY_CONTENT_TYPE = {
    'image/jpeg': 'jpg',
    'image/png': 'png',
    'image/gif': 'gif',
    'image/tiff': 'tif',
    'image/webp': 'webp',
}
_EXTENSION_BY_SUFFIX = {
    '.jpg': 'jpg',
    '.jpeg': 'jpg',
    '.png': 'png',
    '.gif': 'gif',
    '.tif': 'tif',
    '.tiff': 'tif',
    '.webp': 'webp',
}
_EXTENSIONS = frozenset(_EXTENSION_BY_CONTENT_TYPE.values())
# Content types that say nothing about the format: the URL's suffix decides.
_UNTYPED = frozenset({None, 'application/octet-stream', 'binary/octet-stream'})
_ID_PATTERN = re.compile(r'[0-9]{1,20}')
_TEMP_SUFFIX = '.part'
_TEMP_PATTERN = re.compile(r'\.[0-9]{1,20}\..*' + re.escape(_TEMP_SUFFIX))
_CHUNK_BYTES = 1 << 16
_SAVE_OPTIONS = {'JPEG': {'quality': 95}, 'WEBP': {'quality': 95}}
_KEPT_METADATA = ('exif', 'icc_profile')
_EXTENSION_BY_FORMAT = {'JPEG': 'jpg', 'PNG': 'png', 'GIF': 'gif', 'TIFF': 'tif',
                        'WEBP': 'webp'}


def _umask() -> int:
  mask = os.umask(0)
  os.umask(mask)
  return mask


# Mode of the files written, as `open` would give them (read once, before any thread).
_FILE_MODE = 0o666 & ~_umask()


class DownloadFailedError(errors.UserError):
  """Too many images failed: the folder is not ready for a build."""


class PermanentError(Exception):
  """A failure that retrying cannot fix (dead URL, refused content)."""


class TransientError(Exception):
  """A failure worth retrying later; `retry_after` is the server's wait, if it gave one."""

  def __init__(self, message: str, retry_after: float | None = None):
    super().__init__(message)
    self.retry_after = retry_after


@dataclasses.dataclass(frozen=True)
class ImageResult:
  status: str  # one of STATUSES
  attempts: int = 0  # requests made for this image in this run
  error: str | None = None
  file: str | None = None  # name under DIR/images/


@dataclasses.dataclass(frozen=True)
class Summary:
  results: Mapping[str, ImageResult]  # by painting id
  report_path: pathlib.Path

  def count(self, status: str) -> int:
    return sum(result.status == status for result in self.results.values())

  @property
  def counts(self) -> dict[str, int]:
    return {status: self.count(status) for status in STATUSES}

  def describe(self) -> str:
    counts = ', '.join(f'{n} {status}' for status, n in self.counts.items())
    return f'{len(self.results)} images: {counts}. Details: {self.report_path}'

  def check(self, max_failures: float) -> None:
    """Raises DownloadFailedError when no image is on disk, or when more than the
    fraction `max_failures` of the images failed."""
    failed = sum(self.count(status) for status in FAILED)
    on_disk = self.count(DOWNLOADED) + self.count(SKIPPED_EXISTING)
    if self.results and not on_disk:
      raise DownloadFailedError(
          f'none of the {len(self.results)} images could be downloaded (reasons in '
          f'{self.report_path}): check the network and the URLs, then run again.')
    if failed > max_failures * len(self.results):
      raise DownloadFailedError(
          f'{failed} of {len(self.results)} images failed, more than --max_failures='
          f'{max_failures:g} (reasons in {self.report_path}); run again to retry them, '
          'or raise --max_failures to accept the gaps.')


@dataclasses.dataclass(frozen=True)
class _Options:
  timeout_s: float
  max_attempts: int
  backoff_s: float
  max_backoff_s: float
  max_retry_after_s: float
  max_bytes: int
  max_side: int | None


class RateLimiter:
  """Spaces request starts at least 1/rate apart across all threads.

  A server's Retry-After concerns the whole client, not one URL, so `pause_for` holds
  every thread back.
  """

  def __init__(self, max_per_second: float | None, clock=time.monotonic, sleep=time.sleep):
    self._interval = 1.0 / max_per_second if max_per_second else 0.0
    self._clock = clock
    self._sleep = sleep
    self._next_start = clock()
    self._lock = threading.Lock()

  def wait(self) -> None:
    with self._lock:
      now = self._clock()
      start = max(now, self._next_start)
      self._next_start = start + self._interval
    if start > now:
      self._sleep(start - now)

  def pause_for(self, seconds: float) -> None:
    with self._lock:
      self._next_start = max(self._next_start, self._clock() + seconds)


def read_image_urls(json_path: str | os.PathLike[str]) -> dict[str, str]:
  """Reads only `id -> img_url` from `artpedia.json`; ids are checked by `download_images`."""
  urls = {}
  for painting_id, entry in annotations_lib.read_json(json_path).items():
    url = entry.get('img_url') if isinstance(entry, dict) else None
    if not isinstance(url, str):
      raise annotations_lib.AnnotationError(
          f'{json_path}: entry {painting_id!r} has no string "img_url"; fix or remove '
          'that entry.')
    urls[painting_id] = url
  return urls


def download_images(
    annotations: Mapping[str, str],
    out_dir: str | os.PathLike[str],
    *,
    workers: int = 4,
    max_requests_per_second: float | None = 5.0,
    timeout_s: float = 30.0,
    max_attempts: int = 5,
    backoff_s: float = 1.0,
    max_backoff_s: float = 60.0,
    max_retry_after_s: float = 300.0,
    max_bytes: int = 200 * 2**20,
    max_side: int | None = None,
    progress: bool = True,
) -> Summary:
  """Downloads `{painting id: image URL}` into `out_dir/images/` and writes the report.

  Images already present are skipped without a request; failures are recorded, never
  raised. Only errors of the local machine (e.g. a full disk) propagate.
  """
  if workers < 1 or max_attempts < 1:
    raise ValueError(f'workers ({workers}) and max_attempts ({max_attempts}) must be >= 1.')
  images_dir = pathlib.Path(out_dir) / IMAGES_DIR
  images_dir.mkdir(parents=True, exist_ok=True)
  _remove_temp_files(images_dir)
  options = _Options(
      timeout_s=timeout_s, max_attempts=max_attempts, backoff_s=backoff_s,
      max_backoff_s=max_backoff_s, max_retry_after_s=max_retry_after_s,
      max_bytes=max_bytes, max_side=max_side)
  fetcher = _Fetcher(images_dir, options, RateLimiter(max_requests_per_second))

  results, to_fetch = _triage(annotations, _complete_files(images_dir))
  with tqdm.tqdm(total=len(annotations), initial=len(results), unit='img',
                 desc='download', disable=not progress) as bar:
    for painting_id, result in _run_parallel(fetcher.fetch, to_fetch, workers):
      results[painting_id] = result
      bar.update()
  summary = Summary(results, pathlib.Path(out_dir) / REPORT_NAME)
  _write_report(summary)
  return summary


def _triage(annotations: Mapping[str, str], existing: Mapping[str, str]):
  """Settles invalid ids and images on disk without a request; returns the rest to fetch."""
  results = {}
  to_fetch = {}
  for painting_id, url in annotations.items():
    if not isinstance(painting_id, str) or not _ID_PATTERN.fullmatch(painting_id):
      error = (f'painting id {painting_id!r} is not a string of 1-20 ASCII digits; image '
               'files are named after the id, so fix the id in the JSON.')
      logging.warning('Skipping: %s', error)
      results[painting_id] = ImageResult(FAILED_PERMANENTLY, error=error)
    elif painting_id in existing:
      results[painting_id] = ImageResult(SKIPPED_EXISTING, file=existing[painting_id])
    else:
      to_fetch[painting_id] = url
  return results, to_fetch


def _run_parallel(fetch, to_fetch: Mapping[str, str], workers: int):
  """Yields `(id, fetch(id, url))` as they finish; on an error, cancels what has not started."""
  with concurrent.futures.ThreadPoolExecutor(workers) as pool:
    futures = {pool.submit(fetch, pid, url): pid for pid, url in to_fetch.items()}
    try:
      for future in concurrent.futures.as_completed(futures):
        yield futures[future], future.result()
    except BaseException:
      pool.shutdown(wait=False, cancel_futures=True)
      raise


class _Fetcher:
  """Downloads one image with retries; shared by all worker threads."""

  def __init__(self, images_dir: pathlib.Path, options: _Options, limiter: RateLimiter):
    self._images_dir = images_dir
    self._options = options
    self._limiter = limiter
    self._opener = urllib.request.build_opener(_HttpOnlyRedirectHandler)

  def fetch(self, painting_id: str, url: str) -> ImageResult:
    for attempt in itertools.count(1):
      self._limiter.wait()
      try:
        return ImageResult(DOWNLOADED, attempt, file=self._fetch_once(painting_id, url))
      except PermanentError as e:
        return _failed(painting_id, FAILED_PERMANENTLY, attempt, str(e))
      except TransientError as e:
        wait = e.retry_after or 0.0
        if wait > self._options.max_retry_after_s:
          return _failed(painting_id, FAILED_TRANSIENTLY, attempt,
                         f'{e}; the server asked to wait {wait:.0f} s, more than '
                         f'--max_retry_after={self._options.max_retry_after_s:.0f}')
        if attempt == self._options.max_attempts:
          return _failed(painting_id, FAILED_TRANSIENTLY, attempt, str(e))
        self._limiter.pause_for(wait)
        time.sleep(max(wait, self._backoff(attempt)))

  def _backoff(self, attempt: int) -> float:
    """Exponential back-off with jitter, so that the retries of many workers spread out."""
    ceiling = min(self._options.max_backoff_s, self._options.backoff_s * 2**(attempt - 1))
    return random.uniform(ceiling / 2, ceiling)

  def _fetch_once(self, painting_id: str, url: str) -> str:
    """Downloads `url` to `<id>.<ext>` atomically and returns that name."""
    _require_http(url)
    with self._open(url) as response:
      extension = _extension(response)
      declared = _content_length(response)
      if declared is not None and declared > self._options.max_bytes:
        raise PermanentError(self._too_large(f'{declared} bytes'))
      with _temp_path(self._images_dir, painting_id) as temp:
        with open(temp, 'wb') as f:
          received = self._stream(response, f)
          f.flush()
          os.fsync(f.fileno())
        if declared is not None and received != declared:
          raise TransientError(f'truncated transfer: {received} of {declared} bytes')
        extension = _image_extension(temp, extension)
        if self._options.max_side:
          _downsize(temp, self._options.max_side, painting_id)
        name = f'{painting_id}.{extension}'
        os.replace(temp, self._images_dir / name)
    return name

  def _open(self, url: str) -> http.client.HTTPResponse:
    request = urllib.request.Request(url, headers={'User-Agent': USER_AGENT})
    try:
      return self._opener.open(request, timeout=self._options.timeout_s)
    except urllib.error.HTTPError as e:
      with e:
        raise _http_failure(e) from None
    except urllib.error.URLError as e:
      if isinstance(e.reason, ssl.CertificateError):
        raise PermanentError(f'TLS certificate rejected: {e.reason}') from None
      raise TransientError(f'connection failed: {e.reason}') from None
    except (OSError, http.client.HTTPException) as e:
      raise TransientError(f'connection failed: {e!r}') from None

  def _stream(self, response, out) -> int:
    received = 0
    while chunk := _read_chunk(response):
      received += len(chunk)
      if received > self._options.max_bytes:
        raise PermanentError(self._too_large(f'more than {self._options.max_bytes} bytes'))
      out.write(chunk)
    return received

  def _too_large(self, size: str) -> str:
    return (f'image is {size}, over --max_bytes={self._options.max_bytes}; raise the '
            'limit to fetch it.')


def _failed(painting_id: str, status: str, attempts: int, error: str) -> ImageResult:
  logging.debug('%s: %s after %d attempt(s): %s', painting_id, status, attempts, error)
  return ImageResult(status, attempts, error=error)


class _HttpOnlyRedirectHandler(urllib.request.HTTPRedirectHandler):
  """Follows redirects to http(s) only (urllib alone would also follow ftp://)."""

  def redirect_request(self, req, fp, code, msg, headers, newurl):
    try:
      _require_http(newurl)
    except PermanentError as e:
      fp.close()
      raise PermanentError(f'refused redirect from {req.full_url}: {e}') from None
    return super().redirect_request(req, fp, code, msg, headers, newurl)


def _require_http(url: str) -> None:
  if urllib.parse.urlsplit(url).scheme not in ('http', 'https'):
    raise PermanentError(f'{url!r} is not an http(s) URL; only http and https are fetched.')


def _http_failure(error: urllib.error.HTTPError) -> Exception:
  message = f'HTTP {error.code}: {error.reason}'
  if error.code in (408, 429) or error.code >= 500:
    return TransientError(message, _retry_after(error.headers.get('Retry-After')))
  # 4xx, and 3xx that urllib would not follow (e.g. to file://, or a redirect loop).
  return PermanentError(message)


def _retry_after(value: str | None) -> float | None:
  """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date."""
  if value is None:
    return None
  value = value.strip()
  if value.isascii() and value.isdigit():
    return float(value)
  try:
    when = email.utils.parsedate_to_datetime(value)
  except (TypeError, ValueError):
    return None
  return max(0.0, when.timestamp() - time.time())


def _read_chunk(response) -> bytes:
  try:
    return response.read(_CHUNK_BYTES)
  except (OSError, http.client.HTTPException) as e:
    raise TransientError(f'connection lost mid-transfer: {e!r}') from None


def _content_length(response) -> int | None:
  value = response.headers.get('Content-Length', '').strip()
  return int(value) if value.isascii() and value.isdigit() else None


def _extension(response) -> str:
  """The file extension from the Content-Type, or from the URL when the type is generic."""
  content_type = (response.headers.get_content_type()
                  if 'Content-Type' in response.headers else None)
  if content_type in _EXTENSION_BY_CONTENT_TYPE:
    return _EXTENSION_BY_CONTENT_TYPE[content_type]
  path = urllib.parse.unquote(urllib.parse.urlsplit(response.geturl()).path)
  suffix = pathlib.PurePosixPath(path).suffix.lower()
  if content_type in _UNTYPED and suffix in _EXTENSION_BY_SUFFIX:
    return _EXTENSION_BY_SUFFIX[suffix]
  raise PermanentError(
      f'unsupported content (Content-Type {content_type}, URL suffix {suffix!r}); '
      f'accepted formats: {", ".join(sorted(_EXTENSIONS))}.')


def _image_extension(path: pathlib.Path, served_as: str) -> str:
  """The extension of the image format in the file's header; not an image: PermanentError.

  A server may answer with an HTML page (an error or a login page) under an image type.
  """
  try:
    with Image.open(path) as image:  # reads the header only
      image_format = image.format
  except Image.DecompressionBombError:
    return served_as  # a header Pillow parsed, of a huge image: the builder decides
  except (OSError, ValueError) as e:
    raise PermanentError(f'the body served as {served_as} is not an image ({e}).') from None
  if image_format not in _EXTENSION_BY_FORMAT:
    raise PermanentError(f'{image_format} images are not accepted; accepted: '
                         f'{", ".join(sorted(_EXTENSION_BY_FORMAT))}.')
  return _EXTENSION_BY_FORMAT[image_format]


@contextlib.contextmanager
def _temp_path(directory: pathlib.Path, label: str):
  """A fresh file in `directory` (same file system, so os.replace is atomic), always removed."""
  fd, name = tempfile.mkstemp(prefix=f'.{label}.', suffix=_TEMP_SUFFIX, dir=directory)
  os.close(fd)
  os.chmod(name, _FILE_MODE)  # mkstemp's 0600 would hide the files from other users
  try:
    yield pathlib.Path(name)
  finally:
    pathlib.Path(name).unlink(missing_ok=True)


def _downsize(path: pathlib.Path, max_side: int, painting_id: str) -> None:
  """Shrinks the image at `path` in place to `max_side`, keeping its format and metadata."""
  try:
    with Image.open(path) as image:
      if max(image.size) <= max_side:
        return
      image_format = image.format
      metadata = {key: image.info[key] for key in _KEPT_METADATA if key in image.info}
      image.thumbnail((max_side, max_side))  # draft(): JPEGs decode at a reduced scale.
      with _temp_path(path.parent, painting_id) as smaller:
        image.save(smaller, format=image_format, **metadata,
                   **_SAVE_OPTIONS.get(image_format, {}))
        os.replace(smaller, path)
  except (OSError, ValueError, Image.DecompressionBombError) as e:
    raise PermanentError(f'cannot downsize the image: {e}') from None


def _remove_temp_files(images_dir: pathlib.Path) -> None:
  """Removes partial downloads of an interrupted run."""
  for path in images_dir.iterdir():
    if _TEMP_PATTERN.fullmatch(path.name):
      path.unlink(missing_ok=True)


def _complete_files(images_dir: pathlib.Path) -> dict[str, str]:
  """`{id: file name}` of images on disk; complete, since they appear only by rename."""
  files = {}
  for path in images_dir.iterdir():
    if (path.suffix[1:] in _EXTENSIONS and _ID_PATTERN.fullmatch(path.stem)
        and path.is_file() and path.stat().st_size > 0):
      files[path.stem] = path.name
  return files


def _write_report(summary: Summary) -> None:
  report = {
      'summary': {'total': len(summary.results), **summary.counts},
      'images': {str(pid): dataclasses.asdict(r) for pid, r in summary.results.items()},
  }
  path = summary.report_path
  with _temp_path(path.parent, 'report') as temp:
    temp.write_text(json.dumps(report, indent=1, sort_keys=True), encoding='utf-8')
    os.replace(temp, path)


def _define_flags() -> None:
  """Flags exist only when this module runs as the program, not when it is imported."""
  flags.DEFINE_string('json', None, 'Path of artpedia.json.', required=True)
  flags.DEFINE_string('out', None, 'Output folder; images go to OUT/images/.',
                      required=True)
  flags.DEFINE_integer('workers', 4, 'Concurrent downloads.')
  flags.DEFINE_float('max_requests_per_second', 5.0,
                     'Request rate limit over all workers (0: none).')
  flags.DEFINE_float('timeout', 30.0, 'Seconds of network silence before retrying.')
  flags.DEFINE_integer('max_attempts', 5, 'Requests per image at most.')
  flags.DEFINE_float('max_retry_after', 300.0,
                     'Longest Retry-After (s) to wait; longer ones fail the image.')
  flags.DEFINE_integer('max_bytes', 200 * 2**20, 'Largest image file, in bytes.')
  flags.DEFINE_integer('max_side', None, 'If set, store copies whose longer side is at '
                       'most this many pixels.')
  flags.DEFINE_float('max_failures', DEFAULT_MAX_FAILURES,
                     'Largest fraction of images that may fail before the command exits '
                     'with status 1 (Artpedia has a few dead URLs).')


def main(argv: list[str]) -> int:
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {argv[1:]}')
  args = flags.FLAGS
  if not os.path.isfile(args.json):
    raise errors.UsageError(f'--json={args.json}: no such file; pass the path of '
                            'artpedia.json (from the Artpedia page of AImageLab).')
  urls = read_image_urls(args.json)
  if not urls:
    raise errors.UserError(f'--json={args.json} lists no painting: pass the original '
                           'artpedia.json.')
  summary = download_images(
      urls, cli.writable_folder(args.out, '--out'), workers=args.workers,
      max_requests_per_second=args.max_requests_per_second, timeout_s=args.timeout,
      max_attempts=args.max_attempts, max_retry_after_s=args.max_retry_after,
      max_bytes=args.max_bytes, max_side=args.max_side)
  print(summary.describe())
  summary.check(args.max_failures)
  return 0


if __name__ == '__main__':
  _define_flags()
  cli.run(main)
