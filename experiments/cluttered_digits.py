"""Cluttered digits: does learning where to look beat reading the whole canvas?

scikit-learn's ``load_digits`` (1,797 real 8×8 handwritten digits, shipped with
the package) is split 80/20 into training and test digits. Each canvas is 64×64
and holds one digit, upscaled to 16×16 and placed at a random position, on top
of clutter: fragments (6×6 crops) of other digits of the same split, scattered
at random, as in cluttered MNIST (Mnih et al. 2014). Training canvases are drawn
fresh for every batch; the test canvases are fixed by the seed.

Three Flax NNX models with about the same number of parameters are trained
with Adam on the cross-entropy:

* ``canvas_cnn``: a four-layer CNN over the whole 64×64 canvas.
* ``gaussian``: a localisation CNN looks at a coarse 16×16 view (4×4 mean
  pooling) of the canvas and places a 16×16 Gaussian glimpse
  (`jaxglimpse.flax.GaussianGlimpse`, DRAW's parametrisation, zero padding),
  which a two-layer CNN classifies.
* ``affine``: the same with a spatial transformer glimpse
  (`jaxglimpse.flax.AffineGlimpse`, bilinear, zero padding; ``--affine-kind``
  picks a scale-and-shift or a full affine head).

Both glimpse heads are bounded (`jaxglimpse.affine_params`; ``--gaussian-kind
draw`` picks DRAW's unbounded head instead) and start at zero, so both
attention models start by reading the whole canvas at 16×16, the same view
the localisation network gets, and must learn to zoom in from the
classification loss alone. Where they end up looking is measured by the IoU of
the glimpse's box (`gaussian_to_box`, `affine_to_box`) with the digit's 16×16
box.

A step of the canvas CNN costs about ten times one of an attention model, so
by default the CNN trains for 1,500 steps and the attention models for 4,500
(each with its own cosine learning-rate decay). The test accuracy is recorded
every 500 steps together with the training time so far, which gives both the
equal-steps and the equal-time comparison.

Writes ``DIR/cluttered_digits.json`` (accuracies, parameter counts, training
times, the machine) and ``DIR/cluttered_digits.png`` (test canvases with the
glimpse boxes, and the glimpses), and prints a table.

Examples:
  python experiments/cluttered_digits.py
  python experiments/cluttered_digits.py --quick --out /tmp/cd
"""

from __future__ import annotations

import argparse
import time

import _common
import jax
import jax.numpy as jnp
import numpy as np

import jaxglimpse as jg

try:
  import matplotlib  # noqa: F401  (the plots import pyplot; a missing extra fails here, first)
  import optax
  from flax import nnx
  from tqdm import tqdm

  from jaxglimpse.flax import AffineGlimpse, GaussianGlimpse
except ModuleNotFoundError as e:
  _common.exit_missing_extra(e, "examples,flax")

CANVAS = 64
DIGIT = 16
FRAGMENT = 6
COARSE = 16
GLIMPSE = (16, 16)
MODELS = ("canvas_cnn", "gaussian", "affine")


def parse_args(argv=None):
  p = argparse.ArgumentParser(
      prog="cluttered_digits.py",
      description="Whole-canvas CNN versus Gaussian and affine glimpses on cluttered digits.",
  )
  _common.add_common_args(p)
  p.add_argument("--steps", type=int, help="training steps of canvas_cnn (default: 1500, quick 30)")
  p.add_argument(
      "--glimpse-steps", type=int,
      help="training steps of the attention models, about 10x cheaper each "
      "(default: 4500, quick 30)",
  )
  p.add_argument(
      "--eval-every", type=int,
      help="steps between test evaluations for the accuracy curve (default: 500; quick: end only)",
  )
  p.add_argument("--batch", type=int, help="batch size (default: 64, quick 32)")
  p.add_argument("--lr", type=float, default=2e-3, help="Adam's peak learning rate (default: 2e-3)")
  p.add_argument("--clutter", type=int, default=8, help="fragments per canvas (default: 8)")
  p.add_argument(
      "--test-canvases", type=int, help="test canvases (default: 2000, quick 128)"
  )
  p.add_argument(
      "--affine-kind", choices=("scale_shift", "affine"), default="scale_shift",
      help="the affine head (default: scale_shift; digits are neither rotated nor sheared)",
  )
  p.add_argument(
      "--gaussian-kind", choices=("draw", "scale_shift"), default="scale_shift",
      help="the Gaussian head: DRAW's unbounded one or the bounded scale_shift one "
      "(default: scale_shift)",
  )
  p.add_argument(
      "--models", nargs="+", choices=MODELS, default=list(MODELS), help="which models to train",
  )
  args = p.parse_args(argv)
  if args.steps is None:
    args.steps = 30 if args.quick else 1500
  if args.glimpse_steps is None:
    args.glimpse_steps = 30 if args.quick else 4500
  if args.eval_every is None and not args.quick:
    args.eval_every = 500
  if args.batch is None:
    args.batch = 32 if args.quick else 64
  if args.test_canvases is None:
    args.test_canvases = 128 if args.quick else 2000
  return args


# --- Data ---


def load_split(seed: int):
  """Returns ``(train, test)``, each ``(digits (N, 16, 16), labels (N,))``, in [0, 1]."""
  from sklearn.datasets import load_digits

  data = load_digits()
  images = jnp.asarray(data.images / 16.0, jnp.float32)
  images = jax.image.resize(images, (len(images), DIGIT, DIGIT), "linear")
  images = np.clip(np.asarray(images), 0.0, 1.0)
  order = np.random.default_rng(seed).permutation(len(images))
  cut = int(0.8 * len(images))
  train, test = order[:cut], order[cut:]
  return (images[train], data.target[train]), (images[test], data.target[test])


def make_canvases(key, digits, labels, batch: int, clutter: int):
  """Returns ``(canvases (B, 64, 64, 1), labels (B,), centres (B, 2))``.

  The digit goes on top of its clutter (a pixelwise maximum). The centre is
  the digit box's centre in pixels, (y, x).
  """

  def one(key):
    k_digit, k_pos, k_src, k_off, k_at = jax.random.split(key, 5)
    index = jax.random.randint(k_digit, (), 0, len(digits))
    corner = jax.random.randint(k_pos, (2,), 0, CANVAS - DIGIT + 1)
    sources = jax.random.randint(k_src, (clutter,), 0, len(digits))
    offsets = jax.random.randint(k_off, (clutter, 2), 0, DIGIT - FRAGMENT + 1)
    places = jax.random.randint(k_at, (clutter, 2), 0, CANVAS - FRAGMENT + 1)
    blank = jnp.zeros((CANVAS, CANVAS), jnp.float32)

    def fragment(src, offset, place):
      patch = jax.lax.dynamic_slice(digits[src], offset, (FRAGMENT, FRAGMENT))
      return jax.lax.dynamic_update_slice(blank, patch, place)

    canvas = jnp.max(jax.vmap(fragment)(sources, offsets, places), axis=0)
    canvas = jnp.maximum(canvas, jax.lax.dynamic_update_slice(blank, digits[index], corner))
    center = corner.astype(jnp.float32) + (DIGIT - 1) / 2
    return canvas[..., None], labels[index], center

  return jax.vmap(one)(jax.random.split(key, batch))


# --- Models ---


class ConvStack(nnx.Module):
  """3×3 convolutions, each followed by ReLU and 2×2 max pooling."""

  def __init__(self, channels, *, rngs):
    self.convs = nnx.List(
        [nnx.Conv(a, b, (3, 3), rngs=rngs) for a, b in zip(channels[:-1], channels[1:])]
    )

  def __call__(self, x):
    for conv in self.convs:
      x = nnx.max_pool(jax.nn.relu(conv(x)), (2, 2), (2, 2))
    return x.reshape(x.shape[:-3] + (-1,))


class CanvasCNN(nnx.Module):
  """Classifies the whole 64×64 canvas: four convolution-and-pool stages."""

  def __init__(self, *, rngs):
    self.features = ConvStack((1, 8, 16, 32, 32), rngs=rngs)
    self.out = nnx.Linear(4 * 4 * 32, 10, rngs=rngs)

  def __call__(self, canvas):
    return self.out(self.features(canvas)), None, None


class GlimpseNet(nnx.Module):
  """Coarse view → where to look → 16×16 glimpse → class."""

  def __init__(self, kind: str, args, *, rngs):
    self.kind = kind
    self.where = ConvStack((1, 8, 16), rngs=rngs)
    self.hidden = nnx.Linear(4 * 4 * 16, 32, rngs=rngs)
    if kind == "gaussian":
      self.attend = GaussianGlimpse(
          32, GLIMPSE, kind=args.gaussian_kind, padding="zeros", rngs=rngs
      )
    else:
      self.attend = AffineGlimpse(32, GLIMPSE, kind=args.affine_kind, rngs=rngs)
    self.what = ConvStack((1, 16, 32), rngs=rngs)
    self.out = nnx.Linear(4 * 4 * 32, 10, rngs=rngs)

  def __call__(self, canvas):
    b = canvas.shape[:-3]
    f = CANVAS // COARSE
    coarse = canvas.reshape(b + (COARSE, f, COARSE, f, 1)).mean(axis=(-4, -2))
    features = jax.nn.relu(self.hidden(self.where(coarse)))
    glimpse, params = self.attend(canvas, features)
    return self.out(self.what(glimpse)), glimpse, params


def build(name: str, args):
  rngs = nnx.Rngs(args.seed)
  return CanvasCNN(rngs=rngs) if name == "canvas_cnn" else GlimpseNet(name, args, rngs=rngs)


def count_params(model) -> int:
  return int(sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param))))


def glimpse_box(name: str, params) -> jg.Box:
  if name == "gaussian":
    return jg.gaussian_to_box(params, GLIMPSE)
  return jg.affine_to_box(params, GLIMPSE, (CANVAS, CANVAS))


# --- Training and evaluation ---


def make_evaluator(name, graphdef, test, chunk=500):
  """Returns ``evaluate(state) -> (scores, predictions, glimpses, boxes)`` on the test set."""
  canvases, labels, centers = test

  @jax.jit
  def run(state, canvas):
    logits, glimpse, params = nnx.merge(graphdef, state)(canvas)
    return jnp.argmax(logits, -1), glimpse, params

  def evaluate(state):
    outs = [run(state, canvases[i : i + chunk]) for i in range(0, len(canvases), chunk)]
    pred = np.concatenate([o[0] for o in outs])
    scores = {"accuracy": float(np.mean(pred == np.asarray(labels)))}
    if name == "canvas_cnn":
      return scores, pred, None, None
    glimpse = np.concatenate([o[1] for o in outs])
    params = jax.tree.map(lambda *x: jnp.concatenate(x), *[o[2] for o in outs])
    box = jax.tree.map(np.asarray, glimpse_box(name, params))
    iou = _common.box_iou(box.center, box.size, np.asarray(centers), np.full(2, float(DIGIT)))
    err = np.linalg.norm(box.center - np.asarray(centers), axis=-1)
    scores.update(
        mean_iou=float(np.mean(iou)),
        median_center_error_px=float(np.median(err)),
        mean_box_size_px=box.size.mean(0).tolist(),
    )
    return scores, pred, glimpse, box

  return evaluate


def train(name, args, train_data, test, key):
  """Trains one model; returns its evaluation, timings and test-accuracy curve."""
  model = build(name, args)
  params = count_params(model)
  graphdef, state = nnx.split(model)
  steps = args.steps if name == "canvas_cnn" else args.glimpse_steps
  tx = optax.adam(optax.cosine_decay_schedule(args.lr, steps))
  opt_state = tx.init(state)
  digits, labels = (jnp.asarray(x) for x in train_data)
  evaluate = make_evaluator(name, graphdef, test)

  def loss_fn(state, canvas, y):
    logits = nnx.merge(graphdef, state)(canvas)[0]
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  @jax.jit
  def step(state, opt_state, key):
    canvas, y, _ = make_canvases(key, digits, labels, args.batch, args.clutter)
    loss, grads = jax.value_and_grad(loss_fn)(state, canvas, y)
    updates, opt_state = tx.update(grads, opt_state, state)
    return optax.apply_updates(state, updates), opt_state, loss

  keys = jax.random.split(key, steps)
  every = args.eval_every or steps
  losses, curve, seconds, first = [], [], 0.0, None
  bar = tqdm(range(steps), desc=f"{name:>10}", leave=False, mininterval=1.0)
  start = time.perf_counter()
  for i in bar:
    state, opt_state, loss = step(state, opt_state, keys[i])
    if first is None:
      first = float(loss)  # Waits for the first step: its time is mostly compilation.
      first_seconds = time.perf_counter() - start
    if (i + 1) % 50 == 0:
      losses.append(float(loss))
      bar.set_postfix(loss=f"{losses[-1]:.3f}")
    if (i + 1) % every == 0 or i + 1 == steps:
      jax.block_until_ready(state)
      seconds += time.perf_counter() - start  # Training time only, not evaluation.
      scores, *drawn = evaluate(state)
      curve.append({"step": i + 1, "train_seconds": seconds, **scores})
      start = time.perf_counter()
  return {
      "params": params,
      **scores,
      "steps": steps,
      "train_seconds": seconds,
      "first_step_seconds": first_seconds,
      "step_ms": 1e3 * (seconds - first_seconds) / max(steps - 1, 1),
      "losses": [first] + losses,
      "curve": curve,
  }, drawn


# --- Figure ---


def figure(path, test, results, n=6):
  _common.use_agg()
  import matplotlib.pyplot as plt

  canvases, labels, centers = (np.asarray(x) for x in test)
  names = [k for k in ("gaussian", "affine") if k in results]
  fig, axes = plt.subplots(2 * len(names), n, figsize=(1.7 * n, 3.6 * len(names)), squeeze=False)
  for r, name in enumerate(names):
    pred, glimpse, box = results[name]
    for c in range(n):
      ax, gx = axes[2 * r, c], axes[2 * r + 1, c]
      ax.imshow(canvases[c, ..., 0], cmap="gray_r", vmin=0, vmax=1)
      _common.draw_box(ax, centers[c], (DIGIT, DIGIT), edgecolor="tab:green", linestyle="--")
      _common.draw_box(ax, box.center[c], box.size[c], edgecolor="tab:red")
      ax.set_xlim(-0.5, CANVAS - 0.5)
      ax.set_ylim(CANVAS - 0.5, -0.5)
      gx.imshow(glimpse[c, ..., 0], cmap="gray_r", vmin=0, vmax=1)
      ok = "" if pred[c] == labels[c] else f" (true {labels[c]})"
      gx.set_title(f"{pred[c]}{ok}", fontsize=9, color="k" if not ok else "tab:red")
      for a in (ax, gx):
        a.set_xticks([])
        a.set_yticks([])
    axes[2 * r, 0].set_ylabel(f"{name}: where", fontsize=9)
    axes[2 * r + 1, 0].set_ylabel(f"{name}: glimpse", fontsize=9)
  fig.suptitle("Test canvases: digit box (green, dashed), glimpse box (red); predicted class",
               fontsize=9)
  fig.tight_layout()
  path.parent.mkdir(parents=True, exist_ok=True)
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(argv=None):
  args = parse_args(argv)
  train_data, test_data = load_split(args.seed)
  key = jax.random.key(args.seed)
  test_key, key = jax.random.split(key)
  test = make_canvases(
      test_key, jnp.asarray(test_data[0]), jnp.asarray(test_data[1]), args.test_canvases,
      args.clutter,
  )
  summary, drawn = {}, {}
  for i, name in enumerate(args.models):
    result, (pred, glimpse, box) = train(name, args, train_data, test, jax.random.fold_in(key, i))
    summary[name] = result
    if glimpse is not None:
      drawn[name] = (pred, glimpse, box)
    print(
        f"{name:>10}: accuracy {result['accuracy']:.3f}, {result['params']} params, "
        f"{result['steps']} steps, {result['train_seconds']:.1f} s"
        + (f", glimpse IoU {result['mean_iou']:.2f}" if "mean_iou" in result else "")
    )
  written = [args.out / "cluttered_digits.json"]
  if drawn:
    written.append(args.out / "cluttered_digits.png")
    figure(written[-1], test, drawn)
  _common.save_json(
      written[0],
      {
          "args": {k: str(v) if k == "out" else v for k, v in vars(args).items()},
          "data": {
              "train_digits": len(train_data[1]),
              "test_digits": len(test_data[1]),
              "test_canvases": args.test_canvases,
              "canvas": CANVAS,
              "digit": DIGIT,
              "fragment": FRAGMENT,
              "coarse": COARSE,
              "glimpse": list(GLIMPSE),
          },
          "models": summary,
          "machine": _common.machine(),
      },
  )
  print(f"{'model':>10} | {'accuracy':>8} | {'params':>6} | {'steps':>5} | {'train s':>7} | "
        f"{'ms/step':>7}")
  for name, r in summary.items():
    print(f"{name:>10} | {r['accuracy']:8.3f} | {r['params']:6d} | {r['steps']:5d} | "
          f"{r['train_seconds']:7.1f} | {r['step_ms']:7.1f}")
  print(f"wrote {' and '.join(map(str, written))}")
  return summary


if __name__ == "__main__":
  main()
