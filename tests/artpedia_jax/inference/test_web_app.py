"""The local web page over HTTP on an ephemeral 127.0.0.1 port, and in a real browser."""

import html
import io
import json
import os
import re
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid

import markupsafe
from PIL import Image
import pytest

from artpedia_jax.inference import predictor as inference
from artpedia_jax.inference import web_app as web
from artpedia_jax.inference import web_service
from tests.helpers import cli_helpers

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group('trained_model')]

MAX_UPLOAD = 64 * 1024
MAX_TEXT = web.MAX_TEXT_CHARS


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


def _get_json(url: str) -> tuple[int, dict]:
  status, kind, body = _get(url)
  assert kind == 'application/json', (url, kind)
  return status, json.loads(body)


def _post_json(url: str, fields: dict) -> tuple[int, dict]:
  request = urllib.request.Request(url, data=json.dumps(fields).encode(), method='POST',
                                   headers={'Content-Type': 'application/json'})
  try:
    with urllib.request.urlopen(request, timeout=300) as response:
      return response.status, json.loads(response.read())
  except urllib.error.HTTPError as error:
    return error.code, json.loads(error.read())


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
  return [html.unescape(error)
          for error in re.findall(r'class="error" role="alert">([^<]*)<', page)]


def _form_text(page: str) -> str:
  """What the annotation form's text box holds."""
  return html.unescape(re.search(r'<textarea[^>]*>([^<]*)</textarea>', page).group(1))


def _escaped(text: str) -> str:
  """`text` as the page's templates write it."""
  return str(markupsafe.escape(text))


def _hits(page: str) -> list[tuple[str, str]]:
  return re.findall(r'class="hit" href="/painting/([^"]+)">\s*<img src="/thumbnail/([^"]+)"',
                    page)


def test_search_lists_top_paintings_by_artpedia_id_with_the_words_read(site):
  base, collection = site
  status, kind, body = _get(base + '/')
  page = body.decode()
  assert status == 200 and 'text/html' in kind and 'id="query"' in page
  examples = re.findall(r'class="example" href="/\?q=[^"]+">([^<]+)<', page)
  assert 3 <= len(examples) <= 4
  query = collection.sentence_texts[0]
  status, _, body = _get(base + '/?' + urllib.parse.urlencode({'q': query}))
  page = body.decode()
  hits = _hits(page)
  assert status == 200 and len(hits) == min(web.RESULTS, len(collection))
  assert all(a == b and collection.index_of(a) is not None for a, b in hits)
  assert _escaped(collection.titles[collection.index_of(hits[0][0])]) in page
  assert 'Words the model read' in page and 'Unreliable' not in page


def test_example_queries_are_visual_sentences_the_model_reads_whole(site, predictors):
  base, collection = site
  page = _get(base + '/')[2].decode()
  for example in re.findall(r'class="example" href="/\?q=[^"]+">([^<]+)<', page):
    words = predictors['regions'].read_words(html.unescape(example))
    assert words.known and not words.unknown
    assert any(html.unescape(example) in text and collection.is_visual[j]
               for j, text in enumerate(collection.sentence_texts))


def test_queries_say_which_words_the_model_did_not_read(site):
  base, _ = site
  status, _, body = _get(base + '/?q=xyzzy+plugh')
  page = body.decode()
  assert status == 400 and 'matches nothing' in _errors(page)[0]
  assert re.search(r'Unknown words.*xyzzy.*plugh', page, re.S) and not _hits(page)
  status, _, body = _get(base + '/?q=the+xyzzy+of+a+plugh')
  page = body.decode()
  assert status == 200 and 'Unreliable' in page and _hits(page)
  assert re.search(r'class="hits unreliable"', page)
  status, _, body = _get(base + '/?q=' + 'a' * (MAX_TEXT + 1))
  assert status == 400 and 'at most' in _errors(body.decode())[0]


def test_pictures_are_jpegs_by_id_and_unknown_ids_are_404(site):
  base, collection = site
  first = urllib.parse.quote(collection.ids[0])
  for path in (f'/thumbnail/{first}', f'/image/{first}'):
    status, kind, body = _get(base + path)
    assert status == 200 and kind == 'image/jpeg' and body.startswith(b'\xff\xd8'), path
  thumbnail = Image.open(io.BytesIO(_get(base + f'/thumbnail/{first}')[2]))
  assert max(thumbnail.size) <= web_service.THUMBNAIL_SIDE
  for path in ('/thumbnail/nope', '/painting/nope', f'/painting/{first}?sentence=999',
               '/etc/passwd', '/thumbnail/..%2F..%2Fetc%2Fpasswd'):
    status, kind, body = _get(base + path)
    assert status == 404 and 'text/html' in kind, path
    assert _errors(body.decode()), path


def test_painting_page_ranks_its_sentences_and_marks_the_chosen_one(site):
  base, collection = site
  painting_id = collection.ids[2]
  own = collection.own_sentences(2)
  status, _, body = _get(base + f'/painting/{painting_id}?sentence=1')
  page = body.decode()
  assert status == 200 and _escaped(collection.titles[2]) in page
  assert f'Artpedia id {painting_id}' in page
  assert len(re.findall(r'<a class="sentence"', page)) == len(own)
  assert '<th scope="col">' in page and 'aria-current="true"' in page
  chosen_row = re.search(r'<tr class="[a-z]+ chosen".*?</tr>', page, re.S).group(0)
  assert _escaped(own[1]) in chosen_row
  assert re.search(r'badge (visual|contextual)">(visual|contextual) · p\(visual\) 0\.\d\d',
                   page)
  assert f'src="/image/{painting_id}"' in page and 'data:' not in page
  boxes = re.findall(r'data-box="([\d. ]+)" data-score="(-?\d\.\d\d)"', page)
  assert boxes and all(len(b.split()) == 4 for b, _ in boxes)


def test_annotating_keeps_reading_order_and_the_text_in_the_form(site):
  base, collection = site
  text = ('It was sold in 1903. The purple hexagon stands out. Critics called it "a quiet '
          'manifesto. Nothing more." in their review.')
  status, page = _post(base + '/annotate', {'id': collection.ids[0], 'text': text})
  assert status == 200 and not _errors(page)
  items = re.findall(r'<li class="sentence (visual|contextual)">(.*?)</li>', page, re.S)
  texts = [re.sub(r'<[^>]+>', '', re.search(r'<p>(.*?)</p>', item, re.S).group(1))
           for _, item in items]
  assert [html.unescape(t).strip() for t in texts] == [
      'It was sold in 1903.', 'The purple hexagon stands out.',
      'Critics called it "a quiet manifesto. Nothing more." in their review.']
  assert _form_text(page) == text
  assert f'src="/image/{collection.ids[0]}"' in page and 'data:image' not in page
  assert _get(base + '/annotate')[0] == 200


def test_a_20000_character_text_gives_a_page_under_1_mb(site):
  base, collection = site
  sentences = collection.sentence_texts
  text = ''
  while len(text) < MAX_TEXT:
    text += ' '.join(sentences) + ' '
  status, page = _post(base + '/annotate', {'id': collection.ids[0], 'text': text[:MAX_TEXT]})
  assert status == 200 and len(page.encode()) < 1_000_000, len(page.encode())
  assert page.count('<li class="sentence') > 200


@pytest.mark.parametrize('fields,files,status,message', [
    ({'id': '0', 'text': '  '}, None, 400, 'text is empty'),
    ({'id': '0', 'text': 'x' * (MAX_TEXT + 1)}, None, 400, 'at most'),
    ({'text': 'A red ring.'}, None, 400, 'Give the Artpedia id'),
    ({'id': 'nope', 'text': 'A red ring.'}, None, 404, "no painting with id 'nope'"),
    ({'text': 'A red ring.'}, {'image': b'not an image at all'}, 400, 'detector regions'),
    ({'text': 'A red ring.'}, {'image': b'\0' * (MAX_UPLOAD + 1)}, 413, 'larger than'),
])
def test_bad_annotation_requests_are_explained_beside_the_form(site, fields, files, status,
                                                               message):
  base, collection = site
  fields = dict(fields, id=collection.ids[0]) if fields.get('id') == '0' else fields
  got, page = _post(base + '/annotate', fields, files)
  assert got == status and message in _errors(page)[0], page[-500:]
  assert 'Traceback' not in page and '<form class="annotate"' in page
  if status != 413:
    assert _form_text(page) == fields['text']


def test_pixel_model_annotates_an_uploaded_image_and_region_model_refuses_it(
    site, pixel_site):
  picture = io.BytesIO()
  Image.new('RGB', (80, 60), (200, 30, 30)).save(picture, format='PNG')
  status, page = _post(pixel_site[0] + '/annotate',
                       {'text': 'A red square fills the picture.'},
                       {'image': picture.getvalue()})
  assert status == 200 and 'A red square fills the picture.' in page
  shown = re.search(r'<img src="(/upload/[^"]+)"', page).group(1)
  status, kind, body = _get(pixel_site[0] + shown)
  assert status == 200 and kind == 'image/jpeg' and Image.open(io.BytesIO(body)).size == (80, 60)
  status, page = _post(pixel_site[0] + '/annotate', {'text': 'A red square.'},
                       {'image': b'not an image at all'})
  assert status == 400 and 'not an image' in _errors(page)[0]
  assert _form_text(page) == 'A red square.'
  status, page = _post(site[0] + '/annotate', {'text': 'A red square.'},
                       {'image': picture.getvalue()})
  assert status == 400 and 'trained on detector regions' in _errors(page)[0]


def test_api_search_returns_ids_titles_scores_and_words(site):
  base, collection = site
  query = collection.sentence_texts[0]
  status, answer = _get_json(base + '/api/search?' + urllib.parse.urlencode(
      {'q': query + ' xyzzy', 'k': 3}))
  assert status == 200 and len(answer['results']) == 3
  assert set(answer['results'][0]) >= {'id', 'title', 'score'}
  scores = [r['score'] for r in answer['results']]
  assert scores == sorted(scores, reverse=True)
  assert all(collection.titles[collection.index_of(r['id'])] == r['title']
             for r in answer['results'])
  assert answer['words']['unknown'] == ['xyzzy'] and answer['words']['known']
  assert answer['unreliable'] is False
  status, answer = _get_json(base + '/api/search?q=xyzzy+plugh')
  assert status == 400 and 'matches nothing' in answer['error']
  assert answer['words'] == {'known': [], 'unknown': ['xyzzy', 'plugh']}
  assert _get_json(base + '/api/search?q=a+cross&k=0')[0] == 400
  assert _get_json(base + '/api/search?q=')[0] == 400


def test_api_painting_ranks_its_sentences_with_labels(site):
  base, collection = site
  status, answer = _get_json(base + f'/api/paintings/{collection.ids[2]}')
  assert status == 200 and answer['id'] == collection.ids[2]
  assert answer['title'] == collection.titles[2]
  assert sorted(s['text'] for s in answer['sentences']) == sorted(
      collection.own_sentences(2))
  scores = [s['score'] for s in answer['sentences']]
  assert scores == sorted(scores, reverse=True)
  labels = dict(zip(collection.own_sentences(2),
                    collection.is_visual[collection.sentence_rows(2)]))
  for s in answer['sentences']:
    assert s['label'] == ('visual' if labels[s['text']] else 'contextual')
    assert s['kind'] == ('visual' if s['p_visual'] >= 0.5 else 'contextual')
  status, answer = _get_json(base + '/api/paintings/nope')
  assert status == 404 and "'nope'" in answer['error']


def test_api_annotate_takes_json_or_a_form(site):
  base, collection = site
  text = 'The purple hexagon stands out. It was sold to a xyzzy in 1903.'
  status, answer = _post_json(base + '/api/annotate', {'text': text, 'id': collection.ids[0]})
  assert status == 200 and answer['painting'] == collection.ids[0]
  assert [s['text'] for s in answer['sentences']] == [
      'The purple hexagon stands out.', 'It was sold to a xyzzy in 1903.']
  assert 'xyzzy' in answer['sentences'][1]['unknown_words']
  assert 'xyzzy' not in answer['sentences'][0]['unknown_words']
  assert {'kind', 'p_visual', 'score', 'words'} <= set(answer['sentences'][0])
  form = urllib.parse.urlencode({'text': text, 'id': collection.ids[0]}).encode()
  with urllib.request.urlopen(base + '/api/annotate', data=form, timeout=300) as response:
    assert json.loads(response.read()) == answer
  assert _post_json(base + '/api/annotate', {'text': ' ', 'id': collection.ids[0]})[0] == 400
  status, answer = _post_json(base + '/api/annotate', {'text': text, 'id': 'nope'})
  assert status == 404 and "'nope'" in answer['error']


def test_search_json_on_the_command_line_prints_what_the_api_returns(site, region_workdir):
  base, collection = site
  query = collection.sentence_texts[0]
  result = cli_helpers.run_module('artpedia_jax.search', f'--workdir={region_workdir}',
                                  '--step=latest', '--k=5', '--json', query)
  assert result.returncode == 0, result.stderr[-2000:]
  _, answer = _get_json(base + '/api/search?' + urllib.parse.urlencode({'q': query, 'k': 5}))
  assert _rounded(json.loads(result.stdout)) == _rounded(answer)


def _rounded(answer: dict) -> dict:
  return dict(answer, results=[dict(r, score=round(r['score'], 5)) for r in answer['results']])


def _browser(width: int = 1200):
  """Headless Chromium; below 600 px a phone's viewport (Chromium's windows are not so
  narrow), where a page without a viewport tag would lay out at 980 px."""
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
                   '--hide-scrollbars', f'--window-size={max(width, 600)},1000'):
    options.add_argument(argument)
  if width < 600:
    options.add_experimental_option('mobileEmulation', {
        'deviceMetrics': {'width': width, 'height': 900, 'pixelRatio': 1.0}})
  return webdriver.Chrome(options=options, service=service.Service(driver))


def _scrolls_sideways(browser) -> bool:
  return browser.execute_script(
      'return document.documentElement.scrollWidth > window.innerWidth')


def _screenshot(browser, tmp_path, name: str) -> None:
  folder = os.environ.get('ARTPEDIA_SCREENSHOTS') or str(tmp_path)
  browser.save_screenshot(os.path.join(folder, f'{name}.png'))


def test_a_person_searches_opens_a_painting_and_points_at_a_word(site, tmp_path):
  from selenium.webdriver.common.action_chains import ActionChains  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.common.by import By  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.support import expected_conditions  # pylint: disable=g-import-not-at-top
  from selenium.webdriver.support.ui import WebDriverWait  # pylint: disable=g-import-not-at-top
  base, collection = site
  browser = _browser()
  try:
    wait = WebDriverWait(browser, 120)
    browser.get(base + '/')
    browser.find_element(By.ID, 'query').send_keys(collection.sentence_texts[0])
    browser.find_element(By.ID, 'search').click()
    wait.until(expected_conditions.presence_of_element_located((By.CSS_SELECTOR, 'a.hit')))
    thumbnails = browser.find_elements(By.CSS_SELECTOR, 'a.hit img')
    wait.until(lambda _: all(browser.execute_script(
        'return arguments[0].complete && arguments[0].naturalWidth > 0', img)
                             for img in thumbnails))
    _screenshot(browser, tmp_path, 'search')
    thumbnails[0].click()
    picture = wait.until(expected_conditions.presence_of_element_located(
        (By.CSS_SELECTOR, '#figure .canvas img')))
    wait.until(lambda _: browser.execute_script(
        'return arguments[0].complete && arguments[0].naturalWidth > 0', picture))
    region = browser.find_element(By.CSS_SELECTOR, '#figure rect.active-region')
    assert region.value_of_css_property('opacity') == '0'
    word = browser.find_element(By.CSS_SELECTOR, '.chosen-sentence .w[data-box]:not(.f)')
    ActionChains(browser).move_to_element(word).perform()
    wait.until(lambda _: 'active' in word.get_attribute('class'))
    x, y, w, h = word.get_attribute('data-box').split()
    assert [region.get_attribute(a) for a in ('x', 'y', 'width', 'height')] == [x, y, w, h]
    assert region.value_of_css_property('opacity') == '1'
    readout = browser.find_element(By.CSS_SELECTOR, '#figure .readout').text
    assert word.text in readout and word.get_attribute('data-score') in readout
    _screenshot(browser, tmp_path, 'painting')
  finally:
    browser.quit()


def test_at_420_px_nothing_scrolls_sideways_and_unknown_words_are_told(site, tmp_path):
  from selenium.webdriver.common.by import By  # pylint: disable=g-import-not-at-top
  base, collection = site
  browser = _browser(width=420)
  try:
    browser.get(base + '/')
    assert browser.execute_script('return window.innerWidth') == 420
    browser.get(base + '/?q=xyzzy+plugh')
    notice = browser.find_element(By.ID, 'words').text
    assert 'Unknown words' in notice and 'xyzzy' in notice and 'plugh' in notice
    assert not _scrolls_sideways(browser)
    _screenshot(browser, tmp_path, 'unknown_words_420')
    for path in ('/?' + urllib.parse.urlencode({'q': collection.sentence_texts[0]}),
                 f'/painting/{collection.ids[2]}', '/annotate'):
      browser.get(base + path)
      assert not _scrolls_sideways(browser), path
    browser.find_element(By.ID, 'painting-id').send_keys(collection.ids[1])
    browser.find_element(By.ID, 'text').send_keys(' '.join(collection.own_sentences(1)))
    browser.find_element(By.ID, 'annotate').click()
    browser.find_element(By.CSS_SELECTOR, '.annotation-list')
    assert not _scrolls_sideways(browser)
    _screenshot(browser, tmp_path, 'annotation_420')
  finally:
    browser.quit()
