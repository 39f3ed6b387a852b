"""The benchmark case table: what is timed, on which shapes and parameters.

Every case is a batch of glimpses of one shape from images of one shape. Each
glimpse tiles a box (see the README's "Conventions"): its centre is drawn at
random inside the image, its size is the same for the whole case. From the
box, `box_to_gaussian` gives the Gaussian parameters (stride delta = size / N,
sigma = max(delta / 2, 1/2)), `box_to_affine` the affine theta, and the crop
starts at the box's first pixel, so that every method looks at the same place.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Case:
  """One row of the case table.

  Attributes:
    name: a short identifier, used in the outputs.
    about: one line for the tables.
    batch: the number of images.
    image: the image's spatial shape.
    channels: the number of channels.
    glimpse: the glimpse's spatial shape.
    box: the box size in pixels on every axis (delta = box / glimpse).
    per_image: glimpses per image (K): images ``(B, 1, *image, C)`` with
      parameters ``(B, K, n)``, broadcast rather than copied.
    dtype: the image dtype.
  """

  name: str
  about: str
  batch: int
  image: tuple[int, ...]
  channels: int
  glimpse: tuple[int, ...]
  box: float
  per_image: int = 1
  dtype: str = "float32"

  @property
  def n(self) -> int:
    return len(self.image)

  @property
  def glimpses(self) -> int:
    return self.batch * self.per_image

  def describe(self) -> str:
    size = lambda s: "×".join(map(str, s))
    k = f", K={self.per_image}" if self.per_image > 1 else ""
    dtype = f", {self.dtype}" if self.dtype != "float32" else ""
    return (
        f"B={self.batch}{k}, {size(self.image)}×{self.channels} → "
        f"{size(self.glimpse)}, box {self.box:g}px{dtype}"
    )

  def data(self, seed: int = 0):
    """Returns (image, center, size) as NumPy arrays; image in float32."""
    rng = np.random.default_rng(seed)
    lead = (self.batch, 1) if self.per_image > 1 else (self.batch,)
    image = rng.uniform(size=lead + self.image + (self.channels,)).astype(np.float32)
    batch = (self.batch, self.per_image) if self.per_image > 1 else (self.batch,)
    extent = np.asarray(self.image, np.float32)
    # Keep the box inside the image where it fits, so no method reads padding.
    margin = np.minimum(self.box / 2, extent / 2)
    low, high = margin - 0.5, extent - margin - 0.5
    center = rng.uniform(low, np.maximum(high, low), size=batch + (self.n,)).astype(np.float32)
    size = np.full(batch + (self.n,), self.box, np.float32)
    return image, center, size


CASES = (
    Case("mnist", "MNIST-sized digits, zoom out", 256, (28, 28), 1, (12, 12), 20.0),
    Case("photo", "photos, zoom out", 64, (256, 256), 3, (32, 32), 128.0),
    Case("zoom_in", "large images, zoom in (delta 1, sigma 0.5)", 8, (1024, 1024), 3, (64, 64),
         64.0),
    Case("signal_1d", "1-D signals", 32, (4096,), 1, (128,), 512.0),
    Case("volume_3d", "3-D volumes", 4, (64, 64, 64), 1, (16, 16, 16), 32.0),
    Case("many", "16 glimpses per image, image broadcast", 8, (256, 256), 3, (32, 32), 64.0,
         per_image=16),
    Case("photo_bf16", "photos in bfloat16", 64, (256, 256), 3, (32, 32), 128.0, dtype="bfloat16"),
)
"""The full table. The first three are the issue's reference cases."""

QUICK_CASES = (
    Case("signal_1d", "1-D signals", 2, (64,), 1, (8,), 16.0),
    Case("many_bf16", "4 glimpses per image, bfloat16", 2, (16, 16), 3, (4, 4), 8.0,
         per_image=4, dtype="bfloat16"),
    Case("volume_3d", "3-D volumes", 1, (8, 8, 8), 1, (2, 2, 2), 4.0),
)
"""A smoke test of every method on small shapes, not a timing: one case per
number of spatial axes, between them covering K glimpses per image and
bfloat16."""

SWEEP = tuple(
    Case(f"sweep_{s}", "image size sweep", 8, (s, s), 3, (32, 32), 64.0)
    for s in (64, 128, 256, 512, 1024)
)
"""Fixed batch, glimpse and box; only the image grows. For the plot."""

QUICK_SWEEP = tuple(
    Case(f"sweep_{s}", "image size sweep", 1, (s, s), 1, (4, 4), 8.0) for s in (8, 16)
)


@dataclasses.dataclass(frozen=True)
class BoxCase:
  """One row of the box-glimpse table: K boxes over N images of one shape.

  Attributes:
    name: a short identifier, used in the outputs.
    about: one line for the tables.
    images: N, the number of images (feature maps).
    image: their spatial shape (2-D).
    channels: the number of channels.
    boxes: K, the number of boxes, spread evenly over the images.
    shape: the output's spatial shape.
    sizes: the range of box sides in pixels, drawn uniformly per box and axis.
    scales: 0 for the roi_align and crop_and_resize methods; the number of
      retina scales (ratio 2) for the retina methods.
  """

  name: str
  about: str
  images: int
  image: tuple[int, int]
  channels: int
  boxes: int
  shape: tuple[int, int]
  sizes: tuple[float, float]
  scales: int = 0

  def describe(self) -> str:
    what = f"retina, {self.scales} scales" if self.scales else "boxes"
    return (
        f"N={self.images}, {'×'.join(map(str, self.image))}×{self.channels}, "
        f"K={self.boxes} {what} of {self.sizes[0]:g}-{self.sizes[1]:g} px → "
        f"{'×'.join(map(str, self.shape))}"
    )

  def data(self, seed: int = 0):
    """Returns (image (N, H, W, C), boxes (K, 4), index (K,)) as NumPy arrays.

    Boxes are ``(y1, x1, y2, x2)`` in pixels with pixel i covering
    [i - 1/2, i + 1/2], inside the image; box k belongs to image
    ``index[k]``, and the boxes of an image are consecutive.
    """
    rng = np.random.default_rng(seed)
    image = rng.uniform(size=(self.images, *self.image, self.channels)).astype(np.float32)
    extent = np.asarray(self.image, np.float64)
    side = rng.uniform(*self.sizes, size=(self.boxes, 2))
    side = np.minimum(side, extent)
    lo = rng.uniform(0, extent - side) - 0.5
    boxes = np.concatenate([lo, lo + side], -1).astype(np.float32)
    index = np.repeat(np.arange(self.images), self.boxes // self.images).astype(np.int32)
    return image, boxes, index


BOX_CASES = (
    BoxCase("detector", "a detector's second stage (Faster R-CNN-like)", 2, (200, 300), 256, 512,
            (7, 7), (8.0, 120.0)),
    BoxCase("small_boxes", "many small boxes", 4, (100, 100), 64, 4096, (7, 7), (2.0, 10.0)),
    BoxCase("retina", "recurrent attention: one retina per photo", 64, (256, 256), 3, 64,
            (16, 16), (32.0, 32.0), scales=3),
)
"""The box-glimpse table: roi_align and crop_and_resize on the first two, the
retina on the last."""

QUICK_BOX_CASES = (
    BoxCase("detector", "a detector's second stage", 2, (12, 16), 4, 6, (3, 3), (2.0, 8.0)),
    BoxCase("retina", "one retina per image", 2, (16, 16), 3, 2, (4, 4), (4.0, 4.0), scales=3),
)
