"""Image loading: every Pillow mode to RGB, upright, reduced while loading, JPEG out."""

import io

import numpy as np
from PIL import Image
import pytest

from tfds_artpedia import images

RED, BLUE = (220, 20, 20), (20, 20, 220)


def _decoded(loaded: images.LoadedImage) -> np.ndarray:
  with Image.open(io.BytesIO(loaded.jpeg)) as image:
    assert image.format == 'JPEG' and image.mode == 'RGB'
    return np.asarray(image).astype(int)


def _save(tmp_path, image, name, **options):
  path = tmp_path / name
  image.save(path, **options)
  return path


def test_large_jpeg_is_reduced_by_the_decoder_and_keeps_its_aspect(tmp_path, monkeypatch):
  path = _save(tmp_path, Image.new('RGB', (4096, 2048), RED), 'big.jpg', quality=70)
  decoded_sizes, to_rgb = [], images.to_rgb

  def spy_to_rgb(image):
    decoded_sizes.append(image.size)
    return to_rgb(image)

  monkeypatch.setattr(images, 'to_rgb', spy_to_rgb)
  loaded = images.load_jpeg(path, max_side=512)
  assert decoded_sizes == [(512, 256)]  # decoded at 1/8 scale, never at full size
  assert loaded.size == (512, 256) and loaded.source_size == (4096, 2048)
  assert _decoded(loaded).shape == (256, 512, 3)


def test_large_png_is_reduced_to_max_side(tmp_path):
  path = _save(tmp_path, Image.new('RGB', (1000, 3000), BLUE), 'tall.png')
  loaded = images.load_jpeg(path, max_side=300)
  assert loaded.size == (100, 300)
  np.testing.assert_allclose(_decoded(loaded).mean(axis=(0, 1)), BLUE, atol=4)


def test_small_images_are_not_enlarged(tmp_path):
  path = _save(tmp_path, Image.new('RGB', (40, 30), RED), 'small.png')
  assert images.load_jpeg(path, max_side=512).size == (40, 30)


def test_exif_orientation_is_applied(tmp_path):
  image = Image.new('RGB', (80, 40), BLUE)
  image.paste(RED, (0, 0, 40, 40))  # left half red
  exif = Image.Exif()
  exif[0x0112] = 6  # displayed rotated 90 degrees clockwise: the left half goes on top
  path = _save(tmp_path, image, 'rotated.jpg', exif=exif.tobytes(), quality=95)
  loaded = images.load_jpeg(path)
  assert loaded.size == (40, 80) and loaded.source_size == (40, 80)
  pixels = _decoded(loaded)
  np.testing.assert_allclose(pixels[:30].mean(axis=(0, 1)), RED, atol=8)
  np.testing.assert_allclose(pixels[50:].mean(axis=(0, 1)), BLUE, atol=8)


@pytest.mark.parametrize('mode, value, name, expected', [
    ('CMYK', (0, 255, 255, 0), 'cmyk.jpg', (255, 0, 0)),
    ('L', 100, 'grey.png', (100, 100, 100)),
    ('I;16', 128 * 257, 'sixteen.png', (128, 128, 128)),  # scaled, not clipped to 255
    ('RGBA', (0, 0, 255, 0), 'transparent.png', (255, 255, 255)),  # over white
    ('RGBA', (0, 0, 255, 255), 'opaque.png', (0, 0, 255)),
    ('LA', (0, 0), 'grey_alpha.png', (255, 255, 255)),
])
def test_modes_are_converted_to_rgb(tmp_path, mode, value, name, expected):
  path = _save(tmp_path, Image.new(mode, (16, 16), value), name)
  np.testing.assert_allclose(_decoded(images.load_jpeg(path)).mean(axis=(0, 1)), expected,
                             atol=4)


def test_palette_with_transparency_is_converted(tmp_path):
  image = Image.new('P', (16, 16), 1)
  image.putpalette([0, 0, 0, 0, 200, 0] + [0] * 762)
  image.paste(0, (0, 0, 8, 16))  # left half: palette index 0, transparent
  path = _save(tmp_path, image, 'palette.png', transparency=0)
  pixels = _decoded(images.load_jpeg(path))
  np.testing.assert_allclose(pixels[:, :6].mean(axis=(0, 1)), (255, 255, 255), atol=6)
  np.testing.assert_allclose(pixels[:, 10:].mean(axis=(0, 1)), (0, 200, 0), atol=6)


def test_pixel_limit_is_raised_locally_and_restored(tmp_path, monkeypatch):
  monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 100)
  path = _save(tmp_path, Image.new('RGB', (64, 64), RED), 'limit.png')
  assert images.load_jpeg(path).size == (64, 64)  # above Pillow's limit, below ours
  assert Image.MAX_IMAGE_PIXELS == 100
  with pytest.raises(images.ImageError, match='oversized') as error:
    images.load_jpeg(path, max_source_pixels=64 * 64 - 1)
  assert error.value.reason == 'oversized'
  assert Image.MAX_IMAGE_PIXELS == 100


@pytest.mark.parametrize('content', [b'', b'not an image at all', 'truncated'])
def test_unreadable_files_raise_image_error_naming_the_file(tmp_path, content):
  if content == 'truncated':
    buffer = io.BytesIO()
    Image.effect_noise((256, 256), 60).convert('RGB').save(buffer, 'JPEG')
    content = buffer.getvalue()[:2000]
  path = tmp_path / '17.jpg'
  path.write_bytes(content)
  with pytest.raises(images.ImageError, match='17.jpg: unreadable') as error:
    images.load_jpeg(path)
  assert error.value.reason == 'unreadable'


def test_index_images_maps_ids_and_ignores_partial_downloads(tmp_path):
  for name in ('1.jpg', '2.PNG', '3.jpg.part', '10.tif'):
    (tmp_path / name).write_bytes(b'x')
  assert {k: v.name for k, v in images.index_images(tmp_path).items()} == {
      '1': '1.jpg', '2': '2.PNG', '3.jpg': '3.jpg.part', '10': '10.tif'}


def test_to_jpeg_matches_load_jpeg_on_the_same_pixels(tmp_path):
  image = Image.effect_noise((300, 200), 40).convert('RGB')
  path = _save(tmp_path, image, 'same.png')
  assert images.to_jpeg(image, 100).jpeg == images.load_jpeg(path, 100).jpeg


def test_fit_size_keeps_aspect():
  assert images.fit_size((1000, 500), 512) == (512, 256)
  assert images.fit_size((3, 5000), 512) == (1, 512)
  assert images.fit_size((100, 50), 512) == (100, 50)
