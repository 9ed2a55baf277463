"""The local web page over HTTP on an ephemeral 127.0.0.1 port, and in a real browser."""

import io
import os
import re
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid

from PIL import Image
import pytest

from artpedia_jax.inference import predictor as inference
from artpedia_jax.inference import web_app as web

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group('trained_model')]

MAX_UPLOAD = 64 * 1024
MAX_TEXT = 2_000


@pytest.fixture(scope='module')
def predictors(region_workdir, pixel_workdir, tmp_path_factory):
  cache = str(tmp_path_factory.mktemp('cache'))
  return {kind: inference.Predictor.from_workdir(str(workdir), 'latest', cache_dir=cache)
          for kind, workdir in (('regions', region_workdir), ('pixels', pixel_workdir))}


def _serve(predictor):
  collection = predictor.open_split('test')
  server = web.make_server(
      web.create_app(predictor, collection, max_upload_bytes=MAX_UPLOAD,
                     max_text_chars=MAX_TEXT), '127.0.0.1', 0)
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  thread.start()
  return server, collection


@pytest.fixture(scope='module')
def site(predictors):
  """(base URL, collection) of the region model's page."""
  server, collection = _serve(predictors['regions'])
  yield f'http://127.0.0.1:{server.port}', collection
  server.shutdown()


@pytest.fixture(scope='module')
def pixel_site(predictors):
  server, collection = _serve(predictors['pixels'])
  yield f'http://127.0.0.1:{server.port}', collection
  server.shutdown()


def _get(url: str) -> tuple[int, str, bytes]:
  try:
    with urllib.request.urlopen(url, timeout=300) as response:
      return response.status, response.headers['Content-Type'], response.read()
  except urllib.error.HTTPError as error:
    return error.code, error.headers['Content-Type'], error.read()


def _post(url: str, fields: dict[str, str], files: dict[str, bytes] | None = None
          ) -> tuple[int, str]:
  """A multipart/form-data POST, as a browser's form sends it."""
  boundary = uuid.uuid4().hex
  body = io.BytesIO()
  for name, value in fields.items():
    body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
               f'{value}\r\n'.encode())
  for name, data in (files or {}).items():
    body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
               f'filename="upload.bin"\r\nContent-Type: application/octet-stream\r\n\r\n'
               .encode() + data + b'\r\n')
  body.write(f'--{boundary}--\r\n'.encode())
  request = urllib.request.Request(
      url, data=body.getvalue(), method='POST',
      headers={'Content-Type': f'multipart/form-data; boundary={boundary}'})
  try:
    with urllib.request.urlopen(request, timeout=300) as response:
      return response.status, response.read().decode()
  except urllib.error.HTTPError as error:
    return error.code, error.read().decode()


def _errors(page: str) -> list[str]:
  return re.findall(r'class="error">([^<]*)<', page)


def test_search_lists_top_paintings_with_thumbnails(site):
  base, collection = site
  status, kind, body = _get(base + '/')
  assert status == 200 and 'text/html' in kind and b'id="query"' in body
  query = str(collection.split.sentence_texts[0])
  status, _, body = _get(base + '/?' + urllib.parse.urlencode({'q': query}))
  page = body.decode()
  assert status == 200
  hits = re.findall(r'href="/painting/(\d+)"><img src="/thumbnail/(\d+)"', page)
  assert len(hits) == min(web.RESULTS, len(collection))
  assert all(a == b for a, b in hits)
  assert collection.titles[int(hits[0][0])] in page


def test_a_query_matching_nothing_says_so(site):
  base, _ = site
  status, _, body = _get(base + '/?q=xyzzy+plugh')
  assert status == 400 and 'matches nothing' in _errors(body.decode())[0]
  status, _, body = _get(base + '/?q=' + 'a' * (MAX_TEXT + 1))
  assert status == 400 and 'at most' in _errors(body.decode())[0]


def test_pictures_are_images_and_unknown_numbers_are_404(site):
  base, collection = site
  for path, magic in (('/thumbnail/0', b'\xff\xd8'), ('/image/1', b'\xff\xd8'),
                      ('/alignment/0/0', b'\x89PNG')):
    status, _, body = _get(base + path)
    assert status == 200 and body.startswith(magic), path
  assert Image.open(io.BytesIO(_get(base + '/thumbnail/0')[2])).size[0] <= web.THUMBNAIL_SIDE
  for path in (f'/thumbnail/{len(collection)}', f'/painting/{len(collection)}',
               '/alignment/0/999', '/painting/0?sentence=999', '/etc/passwd',
               '/thumbnail/..%2F..%2Fetc%2Fpasswd'):
    status, kind, body = _get(base + path)
    assert status == 404 and 'text/html' in kind, path
    assert _errors(body.decode()), path


def test_painting_page_ranks_its_sentences_and_shows_the_chosen_alignment(site):
  base, collection = site
  status, _, body = _get(base + '/painting/2?sentence=1')
  page = body.decode()
  own = [str(collection.split.sentence_texts[j]) for j in collection.sentence_rows(2)]
  assert status == 200
  assert len(re.findall(r'<a class="sentence"', page)) == len(own)
  assert re.search(r'<td>(visual|contextual)</td><td>0\.\d{3}</td>', page)
  assert 'src="/alignment/2/1"' in page
  assert own[1].replace('"', '&quot;') in page


def test_annotating_a_pasted_text_for_a_collection_painting(site):
  base, _ = site
  status, page = _post(base + '/annotate', {
      'painting': '0', 'text': 'The purple hexagon stands out. It was sold in 1903.'})
  assert status == 200
  assert 'Visual sentences' in page and 'Contextual sentences' in page
  assert page.count('The purple hexagon stands out.') == 1
  assert page.count('data:image/png;base64,') == len(re.findall(
      r'class="sentence visual"', page))
  assert _get(base + '/annotate')[0] == 200


@pytest.mark.parametrize('fields,files,status,message', [
    ({'painting': '0', 'text': '  '}, None, 400, 'text is empty'),
    ({'painting': '0', 'text': 'x' * (MAX_TEXT + 1)}, None, 400, 'at most'),
    ({'text': 'A red ring.'}, None, 400, 'Choose a painting'),
    ({'painting': '9999', 'text': 'A red ring.'}, None, 404, 'no painting 9999'),
    ({'text': 'A red ring.'}, {'image': b'not an image at all'}, 400, 'not an image'),
    ({'text': 'A red ring.'}, {'image': b'\0' * (MAX_UPLOAD + 1)}, 413, 'larger than'),
])
def test_bad_annotation_requests_get_readable_errors(site, fields, files, status, message):
  base, _ = site
  got, page = _post(base + '/annotate', fields, files)
  assert got == status and message in _errors(page)[0], page[-500:]
  assert 'Traceback' not in page


def test_pixel_model_annotates_an_uploaded_image_and_region_model_refuses_it(
    site, pixel_site):
  picture = io.BytesIO()
  Image.new('RGB', (80, 60), (200, 30, 30)).save(picture, format='PNG')
  status, page = _post(pixel_site[0] + '/annotate',
                       {'text': 'A red square fills the picture.'},
                       {'image': picture.getvalue()})
  assert status == 200 and 'A red square fills the picture.' in page
  status, page = _post(site[0] + '/annotate', {'text': 'A red square.'},
                       {'image': picture.getvalue()})
  assert status == 400 and 'trained on detector regions' in _errors(page)[0]


def _browser():
  binary = shutil.which('chromium') or shutil.which('chromium-browser')
  driver = shutil.which('chromedriver')
  if not binary or not driver:
    pytest.skip('no chromium/chromedriver on this machine (Debian: apt-get install '
                'chromium chromium-driver; .ci/run installs them)')
  from selenium import webdriver  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.chrome import service  # pylint: disable=g-import-not-at-top
  options = webdriver.ChromeOptions()
  options.binary_location = binary
  for argument in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage',
                   '--window-size=1200,1000'):
    options.add_argument(argument)
  return webdriver.Chrome(options=options, service=service.Service(driver))


def test_a_person_searches_opens_a_painting_and_sees_its_alignment(site, tmp_path):
  from selenium.webdriver.common.by import By  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.support import expected_conditions  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.support.ui import WebDriverWait  # pylint: disable=g-import-not-at-top
  base, collection = site
  browser = _browser()
  try:
    wait = WebDriverWait(browser, 120)
    browser.get(base + '/')
    browser.find_element(By.ID, 'query').send_keys(str(collection.split.sentence_texts[0]))
    browser.find_element(By.ID, 'search').click()
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, 'a.hit')))
    thumbnails = browser.find_elements(By.CSS_SELECTOR, 'a.hit img')
    assert thumbnails and all(browser.execute_script(
        'return arguments[0].complete && arguments[0].naturalWidth > 0', img)
                              for img in thumbnails)
    thumbnails[0].click()
    picture = wait.until(expected_conditions.presence_of_element_located(
        (By.ID, 'alignment')))
    wait.until(lambda _: browser.execute_script(
        'return arguments[0].complete && arguments[0].naturalWidth > 0', picture))
    assert picture.get_attribute('src').startswith(base + '/alignment/')
    assert browser.find_elements(By.CSS_SELECTOR, 'a.sentence')
    shot = os.environ.get('ARTPEDIA_SCREENSHOT') or str(tmp_path / 'painting.png')
    browser.save_screenshot(shot)
  finally:
    browser.quit()
