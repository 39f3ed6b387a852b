"""Is Gaussian attention easier to train than a spatial transformer? Measure it.

The claim (DRAW, HART): a Gaussian glimpse gives useful gradients from further
away than a bilinear spatial transformer, whose gradient only sees the pixels
next to each sample. Here four ways of learning *where to look* chase the
same target from starts 0.1 to 2 box sizes away, and we count how often each
arrives.

Task. Images are 160 x 160 RGB: three crops of matplotlib's sample photo
(shrunk 2x) and three synthetic scenes of a few shapes on clutter. A target box
is 48 x 48 px and the glimpse 12 x 12 samples (``--zoom 4``: a 4x zoom-out,
where the two samplers differ most; ``--zoom 1`` reads it with 48 x 48
samples, one per pixel). The target glimpse is the antialiased resample of the
box (``_common.resample_box``), which favours none of the methods. A trial
starts at the target's centre moved by ``d`` box sizes in a random direction,
with the start's centre kept inside the image. Only the position is learned;
the size is known, so every method, the hard crop included, solves the same
2-D problem.

Methods, all with Adam on the same number of steps. The peak step (the
learning rate, in pixels) is tried at 1, 2, 4 and 8 px, cosine-decayed to 5%
of it, and each method is reported at its best (highest mean success over the
displacements); the JSON keeps every learning rate.

* ``gaussian``: `gaussian_glimpse` of `box_to_gaussian` (sigma fixed at the
  default, ``max(stride / 2, 1/2)``: 2 px at zoom 4), gradient of the glimpse
  MSE.
* ``gaussian_c2f``: the same with sigma multiplied by a factor annealed
  geometrically from 8 to 1 over the first half of the steps (coarse to fine).
* ``affine``: `affine_glimpse` (bilinear, zero padding) of `box_to_affine`,
  gradient of the glimpse MSE.
* ``reinforce``: hard attention. A Gaussian policy over the box centre
  (learned mean and log-std, std starting at half a box) samples K crops per
  step with `crop`, each mean-pooled (zoom x zoom) to the glimpse size; the
  reward is minus the MSE to the target. The score-function (REINFORCE)
  gradient uses the leave-one-out mean of the other K - 1 rewards as the
  baseline (K = 32, log-std step 0.05). Its position is the policy mean,
  rounded to whole pixels as `crop` does. Each of its steps reads K crops.

A trial succeeds if the final box has IoU >= 0.9 with the target (for a 48 px
box that is within about 1.3 px on each axis). Steps to converge is the first
step after which the IoU stays >= 0.9; the table gives its median over the
successful trials. All trials of a method run at once, batched by the
library's broadcasting, inside a jitted ``lax.scan``.

Writes ``DIR/trainability.json`` and ``DIR/trainability.png``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import _common
import jax
import jax.numpy as jnp
import numpy as np

import jaxglimpse as jg

try:
  import matplotlib  # noqa: F401  (the plots import pyplot; a missing extra fails here, first)
  import optax
  from tqdm import tqdm
except ModuleNotFoundError as e:
  _common.exit_missing_extra(e, "examples")

IMAGE = 160  # Image side, px.
BOX = 48  # Box side, px.
ZOOMS = (1, 2, 3, 4, 6, 8)  # Box side / glimpse side: the divisors of BOX offered.
DISPLACEMENTS = (0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)  # In box sizes.
METHODS = ("gaussian", "gaussian_c2f", "affine", "reinforce")
LABELS = {
    "gaussian": "Gaussian, fixed sigma",
    "gaussian_c2f": "Gaussian, coarse-to-fine sigma",
    "affine": "spatial transformer (bilinear)",
    "reinforce": "hard crop + REINFORCE",
}
SUCCESS_IOU = 0.9
LEARNING_RATES = (1.0, 2.0, 4.0, 8.0)  # Peak Adam steps for positions, px.
C2F_START = 8.0  # Initial sigma factor of gaussian_c2f.
REINFORCE_K = 32  # Crops sampled per REINFORCE step.
CHUNK = 25  # Steps per jitted scan call (one progress-bar tick).


def parse_args(argv=None):
  p = argparse.ArgumentParser(
      prog="trainability.py",
      description="Success rate of four ways of learning where to look, against distance.",
  )
  _common.add_common_args(p)
  p.add_argument("--trials", type=int, default=None,
                 help="trials per displacement (default: 30; 2 with --quick)")
  p.add_argument("--steps", type=int, default=None,
                 help="optimisation steps per trial (default: 300; 50 with --quick)")
  p.add_argument("--zoom", type=int, default=4, choices=ZOOMS,
                 help="box side / glimpse side: 4 (default) reads the 48 px box with a "
                 "12x12 glimpse, 1 with a 48x48 one")
  p.add_argument("--lr", type=float, nargs="+", default=None,
                 help="peak Adam steps to try, px; each method is reported at its best "
                 f"(default: {' '.join(map(str, LEARNING_RATES))}; 2.0 with --quick)")
  args = p.parse_args(argv)
  args.lr = args.lr or ([2.0] if args.quick else list(LEARNING_RATES))
  if min(args.lr) <= 0:
    p.error(f"--lr values must be positive, got {args.lr}")
  args.trials = args.trials or (2 if args.quick else 30)
  args.steps = args.steps or (50 if args.quick else 300)
  if args.trials < 1 or args.steps < 1:
    p.error("--trials and --steps must be positive")
  return args


# ----------------------------------------------------------------------------
# Images and trials.


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
  """Gaussian blur with the library itself: a stride-1 glimpse of the whole image."""
  n = image.shape[:2]
  params = jg.GaussianParams(
      mu=(jnp.asarray(n, jnp.float32) - 1) / 2,
      sigma=jnp.full(2, sigma, jnp.float32),
      delta=jnp.ones(2, jnp.float32),
  )
  return np.asarray(jg.gaussian_glimpse(jnp.asarray(image), params, n))


def synthetic_scene(rng: np.random.Generator):
  """Returns (image, object centres): 3-5 shapes on textured clutter."""
  yy, xx = np.mgrid[:IMAGE, :IMAGE].astype(np.float32)
  clutter = _blur(rng.normal(size=(IMAGE, IMAGE, 3)).astype(np.float32), 3.0)
  image = 0.5 + 0.12 * clutter / clutter.std()
  for _ in range(30):  # Small strokes: high-frequency clutter.
    y0, x0 = rng.uniform(0, IMAGE, 2)
    angle, length = rng.uniform(0, np.pi), rng.uniform(4, 14)
    t = np.linspace(0, length, 40)
    ys = np.clip((y0 + t * np.sin(angle)).astype(int), 0, IMAGE - 1)
    xs = np.clip((x0 + t * np.cos(angle)).astype(int), 0, IMAGE - 1)
    image[ys, xs] = rng.uniform(0, 1, 3)
  centers = []
  for _ in range(rng.integers(3, 6)):
    r = rng.uniform(9, 20)
    cy, cx = rng.uniform(r, IMAGE - 1 - r, 2)
    kind = rng.integers(3)
    if kind == 0:
      inside = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
    elif kind == 1:
      inside = (np.abs(yy - cy) <= r * 0.85) & (np.abs(xx - cx) <= r * 0.85)
    else:  # A triangle pointing up.
      inside = (yy <= cy + r * 0.8) & (np.abs(xx - cx) <= (yy - cy + r) * 0.6)
      inside &= yy >= cy - r
    image[inside] = rng.uniform(0, 1, 3)
    centers.append((cy, cx))
  return np.clip(image, 0, 1).astype(np.float32), np.asarray(centers, np.float32)


def make_images(rng: np.random.Generator):
  """Returns (images (6, 160, 160, 3), names, per-image object centres or None)."""
  photo = _common.downscale(_common.load_photo(), 2)  # (300, 256, 3)
  corners = {"photo_face": (40, 48), "photo_flag": (0, 0), "photo_uniform": (140, 96)}
  images, names, objects = [], [], []
  for name, (y, x) in corners.items():
    images.append(photo[y : y + IMAGE, x : x + IMAGE])
    names.append(name)
    objects.append(None)
  for k in range(3):
    image, centers = synthetic_scene(rng)
    images.append(image)
    names.append(f"synthetic_{k}")
    objects.append(centers)
  return np.stack(images), names, objects


def make_trials(rng: np.random.Generator, objects, trials: int):
  """Returns per-trial (image index, target centre, start centre, displacement)."""
  lo, hi = (BOX - 1) / 2, IMAGE - 1 - (BOX - 1) / 2  # Target box inside the image.
  index, target, start, disp = [], [], [], []
  for d in DISPLACEMENTS:
    for _ in range(trials):
      k = len(index) % len(objects)  # Round-robin over images, across displacements.
      while True:
        if objects[k] is None:
          c = rng.uniform(lo, hi, 2)
        else:  # Centre on an object, jittered by up to a quarter box.
          c = objects[k][rng.integers(len(objects[k]))] + rng.uniform(-BOX / 4, BOX / 4, 2)
        c = np.round(np.clip(c, lo, hi) - 0.5) + 0.5  # Whole-pixel box edges.
        angle = rng.uniform(0, 2 * np.pi)
        s = c + d * BOX * np.array([np.sin(angle), np.cos(angle)])
        if np.all((s >= 0) & (s <= IMAGE - 1)):
          break
      index.append(k)
      target.append(c)
      start.append(s)
      disp.append(d)
  f32 = lambda x: np.asarray(x, np.float32)
  return np.asarray(index), f32(target), f32(start), np.asarray(disp)


# ----------------------------------------------------------------------------
# Methods. Each returns init(start, key) -> state and step(state, t) -> (state,
# per-trial IoU), for every trial at once; `run_method` scans the steps.


def _schedule(steps: int, peak: float):
  return optax.cosine_decay_schedule(peak, steps, alpha=0.05)


def _iou(center, target):
  size = jnp.full_like(center, BOX)
  return _common.box_iou(center, size, target, size)


def gradient_method(method: str, images, targets, target_centers, steps: int, lr: float):
  """A differentiable glimpse trained by Adam on the glimpse MSE."""
  size = jnp.full((2,), float(BOX))
  glimpse_shape = targets.shape[-3:-1]
  opt = optax.adam(_schedule(steps, lr))

  def glimpse(center, t):
    box = jg.Box(center, jnp.broadcast_to(size, center.shape))
    if method == "affine":
      theta = jg.box_to_affine(box, glimpse_shape, (IMAGE, IMAGE))
      return jg.affine_glimpse(images, theta, glimpse_shape)
    params = jg.box_to_gaussian(box, glimpse_shape)
    if method == "gaussian_c2f":
      frac = jnp.clip(t / (steps / 2), 0.0, 1.0)
      params = params._replace(sigma=params.sigma * C2F_START ** (1 - frac))
    return jg.gaussian_glimpse(images, params, glimpse_shape)

  def loss(center, t):  # Sum over trials: each trial's gradient is its own.
    return jnp.sum(jnp.mean((glimpse(center, t) - targets) ** 2, axis=(-3, -2, -1)))

  def step(state, t):
    center, opt_state = state
    grads = jax.grad(loss)(center, t)
    updates, opt_state = opt.update(grads, opt_state, center)
    center = optax.apply_updates(center, updates)
    return (center, opt_state), _iou(center, target_centers)

  def init(start, key):
    del key
    return (start, opt.init(start))

  return init, step


def reinforce_method(images, targets, target_centers, steps: int, lr: float):
  """Hard crops with a Gaussian policy, trained by REINFORCE with a baseline."""
  k = REINFORCE_K
  (h, w), zoom = targets.shape[-3:-1], BOX // targets.shape[-2]
  opt = optax.multi_transform(
      {"mean": optax.adam(_schedule(steps, lr)),
       "log_std": optax.adam(_schedule(steps, 0.05))},
      {"mean": "mean", "log_std": "log_std"},
  )
  offset = (BOX - 1) / 2  # Box centre minus its first pixel.

  def read(center):  # center (T, K, 2) -> pooled crops (T, K, 12, 12, 3)
    first = jnp.round(center - offset).astype(jnp.int32)
    crops = jg.crop(images[:, None], first, (BOX, BOX))
    t, kk = crops.shape[:2]
    crops = crops.reshape(t, kk, h, zoom, w, zoom, 3)
    return crops.mean(axis=(3, 5))

  def position(mean):  # Where the policy mean looks, clamped as `crop` clamps.
    first = jnp.clip(jnp.round(mean - offset), 0, IMAGE - BOX)
    return first + offset

  def step(state, t):
    policy, opt_state, key = state
    key, sub = jax.random.split(key)
    std = jnp.exp(policy["log_std"])
    eps = jax.random.normal(sub, (policy["mean"].shape[0], k, 2))
    centers = policy["mean"][:, None] + std[:, None] * eps
    reward = -jnp.mean((read(centers) - targets[:, None]) ** 2, axis=(-3, -2, -1))
    baseline = (jnp.sum(reward, 1, keepdims=True) - reward) / (k - 1)
    advantage = jax.lax.stop_gradient(reward - baseline)

    def surrogate(policy):  # Minus the score-function estimate of E[reward].
      z = (jax.lax.stop_gradient(centers) - policy["mean"][:, None]) / jnp.exp(
          policy["log_std"]
      )[:, None]
      log_prob = jnp.sum(-0.5 * z**2 - policy["log_std"][:, None], axis=-1)
      return -jnp.sum(jnp.mean(advantage * log_prob, axis=1))

    grads = jax.grad(surrogate)(policy)
    updates, opt_state = opt.update(grads, opt_state, policy)
    policy = optax.apply_updates(policy, updates)
    return (policy, opt_state, key), _iou(position(policy["mean"]), target_centers)

  def init(start, key):
    policy = {"mean": start, "log_std": jnp.full_like(start, math.log(BOX / 2))}
    return (policy, opt.init(policy), key)

  return init, step


def run_method(method, images, targets, target_centers, start, steps, lr, key, bar):
  """Runs every trial of one method; returns the IoU history (steps + 1, T)."""
  if method == "reinforce":
    init, step = reinforce_method(images, targets, target_centers, steps, lr)
  else:
    init, step = gradient_method(method, images, targets, target_centers, steps, lr)

  @jax.jit
  def chunk(state, t0):
    ts = t0 + jnp.arange(CHUNK, dtype=jnp.float32)
    return jax.lax.scan(step, state, ts)

  state = init(jnp.asarray(start), key)
  ious = [np.asarray(_iou(jnp.asarray(start), target_centers))]
  done = 0
  while done < steps:
    state, chunk_ious = chunk(state, jnp.float32(done))
    n = min(CHUNK, steps - done)  # The schedules are flat past `steps`.
    ious.extend(np.asarray(chunk_ious[:n]))
    done += n
    bar.update(n)
  return np.stack(ious)


def summarise(ious: np.ndarray, disp: np.ndarray, image_index: np.ndarray, names):
  """Per displacement: success rate, median steps to converge, trials."""
  final_ok = ious[-1] >= SUCCESS_IOU
  # First step after which the IoU stays >= the threshold.
  below = ious < SUCCESS_IOU
  last_below = np.where(below.any(0), ious.shape[0] - 1 - np.argmax(below[::-1], 0), -1)
  converge = last_below + 1
  out = {}
  for d in DISPLACEMENTS:
    sel = disp == d
    ok = final_ok & sel
    out[str(d)] = {
        "success_rate": float(ok.sum() / sel.sum()),
        "median_steps": float(np.median(converge[ok])) if ok.any() else None,
        "trials": int(sel.sum()),
        "successes": int(ok.sum()),
        "success_by_image": {
            names[k]: int((ok & (image_index == k)).sum()) for k in np.unique(image_index)
        },
    }
  return out


def plot(path, report, images, names, examples):
  _common.use_agg()
  import matplotlib.pyplot as plt

  fig = plt.figure(figsize=(10, 6.4), layout="constrained")
  top, bottom = fig.subfigures(2, 1, height_ratios=[1, 2.1])
  axes = top.subplots(1, len(images))
  for ax, image, name, example in zip(axes, images, names, examples):
    ax.imshow(image)
    if example is not None:
      target, start = example
      _common.draw_box(ax, target, (BOX, BOX), color="lime", linewidth=1.2)
      _common.draw_box(ax, start, (BOX, BOX), color="white", linewidth=1, linestyle="--")
    ax.set_title(name, fontsize=8)
    ax.set_xticks([])
    ax.set_yticks([])
  axes = bottom.subplots(1, 2)
  style = {"gaussian": ("tab:orange", "o-"), "gaussian_c2f": ("tab:red", "s-"),
           "affine": ("tab:cyan", "^-"), "reinforce": ("tab:purple", "d-")}
  ds = [float(d) for d in report["displacements"]]
  for m in report["methods"]:
    res = report["results"][m]
    color, marker = style[m]
    label = f"{LABELS[m]} (lr {report['best_lr'][m]:g} px)"
    rate = [res[str(d)]["success_rate"] for d in ds]
    axes[0].plot(ds, rate, marker, color=color, label=label)
    med = [res[str(d)]["median_steps"] for d in ds]
    med = [np.nan if v is None else v for v in med]
    axes[1].plot(ds, med, marker, color=color, label=label)
  n = report["trials_per_displacement"]
  axes[0].set_ylabel(f"success rate (IoU ≥ {SUCCESS_IOU}, {n} trials)")
  axes[0].set_ylim(-0.03, 1.03)
  axes[1].set_ylabel("median steps to converge (successes)")
  for ax in axes:
    ax.set_xlabel("initial displacement (box sizes)")
    ax.grid(alpha=0.3)
  axes[0].legend(fontsize=7)
  fig.suptitle(
      f"learning where to look: {BOX} px box, {report['glimpse'][0]}x{report['glimpse'][1]} "
      "glimpse, "
      f"{report['steps']} steps, each method at its best learning rate "
      f"(example target: green, start at 1 box size: dashed)",
      fontsize=9,
  )
  _common.save_png(fig, path, dpi=80)
  plt.close(fig)


TABLE_LABELS = {
    "gaussian": "Gaussian, fixed sigma",
    "gaussian_c2f": "Gaussian, coarse-to-fine",
    "affine": "spatial transformer",
    "reinforce": "hard crop + REINFORCE",
}


def readme_tables(result: dict) -> dict[str, str]:
  """The README's markdown tables of one run, from its JSON alone.

  ``trainability_zoom{Z}``: success rate and, in brackets, the median steps to
  converge, at each displacement, for each method at its best learning rate;
  the highest rate of each column is in bold. ``trainability_zoom{Z}_lr``: the
  mean success over the displacements at each learning rate.
  """
  zoom, methods, lrs = result["zoom"], result["methods"], result["learning_rates_px"]
  displacements = [str(d) for d in result["displacements"]]
  rates = {m: {d: result["results"][m][d]["success_rate"] for d in displacements}
           for m in methods}
  best = {d: max(rates[m][d] for m in methods) for d in displacements}

  def cell(m, d):
    r = result["results"][m][d]
    rate = f"{r['success_rate']:.2f}"
    rate = f"**{rate}**" if r["success_rate"] == best[d] else rate
    return rate if r["median_steps"] is None else f"{rate} ({r['median_steps']:.0f})"

  rows = [
      "| method (best lr) | " + " | ".join(displacements[:-1])
      + f" | {displacements[-1]} box sizes |",
      "| --- " * (len(displacements) + 1) + "|",
  ]
  for m in methods:
    rows.append(f"| {TABLE_LABELS.get(m, m)} ({result['best_lr'][m]:g} px) | "
                + " | ".join(cell(m, d) for d in displacements) + " |")
  by_lr = [
      "| method | " + " | ".join(f"{lr:g} px" for lr in lrs) + " |",
      "| --- " * (len(lrs) + 1) + "|",
  ]
  for m in methods:
    means = [np.mean([r["success_rate"] for r in result["results_by_lr"][m][str(lr)].values()])
             for lr in lrs]
    by_lr.append(f"| {TABLE_LABELS.get(m, m)} | " + " | ".join(f"{v:.2f}" for v in means) + " |")
  return {
      f"trainability_zoom{zoom}": "\n".join(rows) + "\n",
      f"trainability_zoom{zoom}_lr": "\n".join(by_lr) + "\n",
  }


def main(argv=None):
  args = parse_args(argv)
  rng = np.random.default_rng(args.seed)
  images, names, objects = make_images(rng)
  index, target_c, start_c, disp = make_trials(rng, objects, args.trials)
  per_trial = jnp.asarray(images)[index]  # (T, 160, 160, 3)
  glimpse = (BOX // args.zoom,) * 2
  targets = jax.vmap(
      lambda im, c: _common.resample_box(im, c, jnp.full(2, float(BOX)), glimpse)
  )(per_trial, jnp.asarray(target_c))
  lrs = tuple(args.lr)

  by_lr, timings = {m: {} for m in METHODS}, {m: 0.0 for m in METHODS}
  key = jax.random.key(args.seed)
  with tqdm(total=len(lrs) * len(METHODS) * args.steps, desc="trainability") as bar:
    for lr in lrs:
      for m in METHODS:
        bar.set_postfix_str(f"{m}, lr {lr:g}")
        t0 = time.perf_counter()
        ious = run_method(m, per_trial, targets, jnp.asarray(target_c), start_c,
                          args.steps, lr, key, bar)
        timings[m] += time.perf_counter() - t0
        by_lr[m][str(lr)] = summarise(ious, disp, index, names)

  def score(m, lr):  # Mean success over displacements; ties go to fewer steps.
    res = by_lr[m][str(lr)].values()
    steps = [r["median_steps"] if r["median_steps"] is not None else args.steps for r in res]
    return (np.mean([r["success_rate"] for r in res]), -np.mean(steps))

  best_lr = {m: max(lrs, key=lambda lr: score(m, lr)) for m in METHODS}
  report = {
      "command": " ".join(["python experiments/trainability.py", *(argv or sys.argv[1:])]),
      "seed": args.seed,
      "quick": args.quick,
      "steps": args.steps,
      "trials_per_displacement": args.trials,
      "displacements": list(DISPLACEMENTS),
      "methods": list(METHODS),
      "images": names,
      "image_size": IMAGE,
      "box": BOX,
      "glimpse": list(glimpse),
      "zoom": args.zoom,
      "success_iou": SUCCESS_IOU,
      "learning_rates_px": list(lrs),
      "best_lr": best_lr,
      "reinforce_samples_per_step": REINFORCE_K,
      "wall_time_s": timings,
      "machine": _common.machine(),
      "results": {m: by_lr[m][str(best_lr[m])] for m in METHODS},
      "results_by_lr": by_lr,
  }
  _common.save_json(args.out / "trainability.json", report)
  # One example per image: its first trial at 1 box size (or the first trial).
  examples = []
  for k in range(len(images)):
    sel = np.flatnonzero((index == k) & (disp == 1.0))
    sel = sel if sel.size else np.flatnonzero(index == k)
    examples.append((target_c[sel[0]], start_c[sel[0]]) if sel.size else None)
  plot(args.out / "trainability.png", report, images, names, examples)

  width = 11
  print(f"success rate (median steps to converge) against displacement in box sizes; "
        f"{args.trials} trials each, {args.steps} steps, best lr of {list(lrs)} px")
  print(f"{'method':<32}{'lr':>4}" + "".join(f"{d:>{width}}" for d in DISPLACEMENTS))
  for m in METHODS:
    cells = []
    for d in DISPLACEMENTS:
      r = report["results"][m][str(d)]
      med = "-" if r["median_steps"] is None else f"{r['median_steps']:.0f}"
      cells.append(f"{r['success_rate']:.2f} ({med})".rjust(width))
    print(f"{LABELS[m]:<32}{best_lr[m]:>4g}" + "".join(cells))
  print(f"wrote {args.out / 'trainability.json'} and {args.out / 'trainability.png'}")


if __name__ == "__main__":
  main()
