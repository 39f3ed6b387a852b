"""Learn where to look: fit a glimpse to a target crop by gradient descent.

A target box (default: the face in matplotlib's sample photo) gives a target
glimpse. Two glimpses start from a displaced, resized box and are fitted with
Adam on the mean squared error between their glimpse and the target:

* Gaussian attention (`gaussian_glimpse`, ``padding="renormalize"``), fitting
  all of ``GaussianParams`` (mu, sigma, delta). The optimiser holds them as a
  ``GaussianParams`` of unconstrained values ``(mu / S, log sigma,
  log delta)``, with S the image size on each axis: the logs keep sigma and
  delta positive, and dividing mu by S makes one Adam step move the centre by
  about ``lr * S`` pixels. Sigma starts at the `box_to_gaussian` default.
* The affine spatial transformer (`affine_glimpse`, bilinear, zero padding),
  fitting scale and shift of ``scale_shift_theta``. The optimiser holds
  ``(log scale, shift / 2)``: shift spans 2 over the image where mu / S spans
  1, so one Adam step moves both glimpses by the same number of pixels.

The target is independent of both methods, so they chase the same picture: it
is the antialiased resample of exactly the target box onto the glimpse grid
(``jax.image.scale_and_translate``, linear kernel, ``antialias=True``), whose
sample j sits at ``center + (j - (N - 1)/2) * size / N``, the positions both
glimpses use for the same box (see ``_common.resample_box``).

Each Adam step (loss, gradient, update) is one jitted function. The fitted
box is ``gaussian_to_box`` or ``affine_to_box`` of the parameters, and is
scored by its intersection over union (IoU) with the target box.

No coarse-to-fine schedule is used: the default start converges without one
(``experiments/README.md`` has the numbers, and starts where it does not).
``--quick`` halves the image and runs 150 steps.

Writes ``DIR/fit_crop.json``, ``DIR/fit_crop.png`` and a summary on stdout.

Examples:
  python experiments/fit_crop.py
  python experiments/fit_crop.py --image me.png --box 120 200 80 60 --offset 0.5 -0.2
"""

from __future__ import annotations

import argparse
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


DEFAULT_OFFSET = (0.3, 0.3)  # Start-box displacement, in box sizes.


def parse_args(argv=None):
  p = argparse.ArgumentParser(
      prog="fit_crop.py",
      description="Fit a Gaussian and an affine glimpse to a target crop by gradient descent.",
  )
  _common.add_common_args(p)
  p.add_argument("--image", help="a PNG or JPEG file (default: matplotlib's grace_hopper.jpg)")
  p.add_argument(
      "--box", type=float, nargs=4, metavar=("CY", "CX", "H", "W"),
      help="the target box in pixels (default: the face in the sample photo, "
      "or the central half of --image)",
  )
  p.add_argument("--glimpse", type=int, nargs="+", default=[32], metavar="N",
                 help="glimpse shape: N, or H W (default: 32)")
  p.add_argument("--offset", type=float, nargs=2, default=list(DEFAULT_OFFSET),
                 metavar=("DY", "DX"),
                 help="start-box displacement, as a fraction of the box size (default: 0.3 0.3)")
  p.add_argument("--offsets", type=float, nargs="+", metavar="DY DX",
                 help="instead of one fit: fit from each of these starts in turn (pairs "
                 "DY DX) and write only the IoUs, to DIR/fit_crop_offsets.json")
  p.add_argument("--start-scale", type=float, default=1.3,
                 help="start-box size / target-box size (default: 1.3)")
  p.add_argument("--steps", type=int, default=None,
                 help="Adam steps (default: 300; 150 with --quick, which also halves the image)")
  p.add_argument("--supersample", type=int, default=1, metavar="S",
                 help="the transformer reads S x S points per glimpse cell and averages "
                 "them (affine_glimpse's supersample=); S near the zoom-out covers each "
                 "cell (default: 1, the plain bilinear read)")
  p.add_argument("--lr", type=float, default=0.02,
                 help="peak Adam learning rate, in image sizes per step, cosine-decayed "
                 "to 5%% of it (default: 0.02)")
  args = p.parse_args(argv)
  if len(args.glimpse) == 1:
    args.glimpse = args.glimpse * 2
  if len(args.glimpse) != 2 or min(args.glimpse) < 1:
    p.error(f"--glimpse takes one or two positive ints, got {args.glimpse}")
  if args.box is not None and min(args.box[2:]) <= 0:
    p.error(f"--box sizes H W must be positive, got {args.box[2:]}")
  if args.supersample < 1:
    p.error(f"--supersample must be a positive int, got {args.supersample}")
  if args.start_scale <= 0:
    p.error(f"--start-scale must be positive, got {args.start_scale}")
  if args.offsets is not None:
    if len(args.offsets) % 2:
      p.error(f"--offsets takes pairs DY DX, got {len(args.offsets)} numbers")
    args.offsets = [args.offsets[i : i + 2] for i in range(0, len(args.offsets), 2)]
  if args.steps is None:
    args.steps = 150 if args.quick else 300
  image = _common.image_or_exit(p, args.image)
  return args, image


def gaussian_method(image, shape, start_box):
  """Returns (raw0, glimpse_fn, box_fn, params_fn) for Gaussian attention."""
  size = jnp.asarray(image.shape[:2], jnp.float32)
  p0 = jg.box_to_gaussian(start_box, shape)
  raw0 = jg.GaussianParams(p0.mu / size, jnp.log(p0.sigma), jnp.log(p0.delta))

  def params(raw):
    return jg.GaussianParams(raw.mu * size, jnp.exp(raw.sigma), jnp.exp(raw.delta))

  glimpse = lambda raw: jg.gaussian_glimpse(image, params(raw), shape)
  box = lambda raw: jg.gaussian_to_box(params(raw), shape)
  return raw0, glimpse, box, lambda raw: params(raw)._asdict()


def affine_method(image, shape, start_box, supersample=1):
  """Returns (raw0, glimpse_fn, box_fn, params_fn) for the bilinear spatial transformer."""
  image_shape = image.shape[:2]
  theta0 = jg.box_to_affine(start_box, shape, image_shape)
  scale0 = jnp.diagonal(theta0[:, :2])
  raw0 = {"log_scale": jnp.log(scale0), "half_shift": theta0[:, 2] / 2}

  def theta(raw):
    return jg.scale_shift_theta(jnp.exp(raw["log_scale"]), 2 * raw["half_shift"])

  glimpse = lambda raw: jg.affine_glimpse(image, theta(raw), shape, supersample=supersample)
  box = lambda raw: jg.affine_to_box(theta(raw), shape, image_shape)
  return raw0, glimpse, box, lambda raw: {"theta": theta(raw)}


METHODS = {"gaussian": gaussian_method, "affine": affine_method}
LABELS = {"gaussian": "Gaussian attention", "affine": "spatial transformer (bilinear)"}


def fit(method, image, shape, target, target_box, start_box, steps, lr, snapshot_steps,
        supersample=1):
  """Runs Adam from `start_box`; returns a dict of results and histories.

  `supersample` is the transformer's ``supersample=`` (the Gaussian ignores it).
  """
  options = {"supersample": supersample} if method == "affine" else {}
  raw, glimpse_fn, box_fn, params_fn = METHODS[method](
      jnp.asarray(image), shape, start_box, **options
  )
  opt = optax.adam(optax.cosine_decay_schedule(lr, steps, alpha=0.05))
  state = opt.init(raw)

  def loss_fn(raw):
    glimpse = glimpse_fn(raw)
    return jnp.mean((glimpse - target) ** 2), glimpse

  @jax.jit
  def step(raw, state):
    """One Adam step; also returns the loss, box and glimpse before it."""
    (loss, glimpse), grads = jax.value_and_grad(loss_fn, has_aux=True)(raw)
    updates, state = opt.update(grads, state, raw)
    return optax.apply_updates(raw, updates), state, loss, box_fn(raw), glimpse

  losses, centers, sizes, snapshots = [], [], [], {}
  t0 = time.perf_counter()
  # Call steps + 1 times: the last call only evaluates the fitted parameters.
  for i in tqdm(range(steps + 1), desc=f"{method:>8}", leave=False):
    new_raw, new_state, loss, box, glimpse = step(raw, state)
    if i in snapshot_steps or i == steps:
      snapshots[i] = np.asarray(glimpse)
    losses.append(loss)
    centers.append(box.center)
    sizes.append(box.size)
    if i == 0:
      jax.block_until_ready(loss)
      first = time.perf_counter() - t0
    if i < steps:
      raw, state = new_raw, new_state
  jax.block_until_ready(losses[-1])
  wall = time.perf_counter() - t0
  final_loss = float(losses[-1])
  center, size = np.asarray(centers[-1]), np.asarray(sizes[-1])
  iou = _common.box_iou(center, size, *target_box)
  return {
      "iou": float(iou),
      "center_error_px": float(np.linalg.norm(center - target_box[0])),
      "box": {"center": center.tolist(), "size": size.tolist()},
      "params": {k: np.asarray(v).tolist() for k, v in params_fn(raw).items()},
      "steps": steps,
      "final_loss": final_loss,
      "wall_time_s": wall,  # Compilation included.
      "first_step_s": first,  # Mostly compilation.
      "history": {  # Entry i is before step i; the last is the fitted glimpse.
          "loss": np.asarray(losses).tolist(),
          "center": np.asarray(centers).tolist(),
          "size": np.asarray(sizes).tolist(),
      },
      "snapshots": snapshots,
  }


def plot(path, image, target, target_box, start_box, results, shape):
  _common.use_agg()
  import matplotlib.pyplot as plt

  colors = {"gaussian": "tab:orange", "affine": "tab:cyan"}
  snap_steps = sorted(next(iter(results.values()))["snapshots"])
  ncol = len(snap_steps) + 1
  fig = plt.figure(figsize=(3.0 + 1.35 * ncol, 5.6), layout="constrained")
  grid = fig.add_gridspec(3, ncol + 2, width_ratios=[1.2, 1.2] + [0.55] * ncol)
  ax = fig.add_subplot(grid[:2, :2])
  ax.imshow(image)
  _common.draw_box(ax, *target_box, color="lime", linewidth=2, label="target")
  _common.draw_box(ax, start_box.center, start_box.size, color="white",
                   linestyle="--", label="start")
  for m, r in results.items():
    c = np.asarray(r["history"]["center"])
    ax.plot(c[:, 1], c[:, 0], color=colors[m], linewidth=1.2)
    _common.draw_box(ax, r["box"]["center"], r["box"]["size"], color=colors[m],
                     label=f"{m} (IoU {r['iou']:.3f})")
  ax.legend(loc="lower left", fontsize=7, framealpha=0.8)
  ax.set_title("boxes and centre trajectories", fontsize=9)
  ax.set_xticks([])
  ax.set_yticks([])

  for row, (m, r) in enumerate(results.items()):
    for k, s in enumerate(snap_steps):
      a = fig.add_subplot(grid[row, 2 + k])
      a.imshow(np.clip(r["snapshots"][s], 0, 1))
      a.set_xticks([])
      a.set_yticks([])
      if row == 0:
        a.set_title(f"step {s}", fontsize=8)
      if k == 0:
        a.set_ylabel(m, fontsize=8, color=colors[m])
    if row == 0:
      a = fig.add_subplot(grid[0, 2 + len(snap_steps)])
      a.imshow(np.clip(np.asarray(target), 0, 1))
      a.set_title("target", fontsize=8)
      a.set_xticks([])
      a.set_yticks([])

  ax = fig.add_subplot(grid[2, 2:])
  for m, r in results.items():
    ax.semilogy(r["history"]["loss"], color=colors[m], label=LABELS[m])
  ax.set_xlabel("Adam step", fontsize=8)
  ax.set_ylabel("glimpse MSE", fontsize=8)
  ax.tick_params(labelsize=7)
  ax.legend(fontsize=7)
  ax = fig.add_subplot(grid[2, :2])
  for m, r in results.items():
    c, s = (np.asarray(r["history"][k]) for k in ("center", "size"))
    ious = _common.box_iou(c, s, *target_box)
    ax.plot(ious, color=colors[m])
  ax.axhline(0.9, color="grey", linestyle=":", linewidth=1)
  ax.set_ylim(0, 1.02)
  ax.set_xlabel("Adam step", fontsize=8)
  ax.set_ylabel("IoU with target", fontsize=8)
  ax.tick_params(labelsize=7)
  fig.suptitle(f"learning where to look: {shape[0]}x{shape[1]} glimpse, Adam on MSE", fontsize=10)
  _common.save_png(fig, path, dpi=80)
  plt.close(fig)


TABLE_LABELS = {"gaussian": "Gaussian attention", "affine": "spatial transformer (bilinear)"}
FAILED_IOU = 0.9  # Offsets table: a fit below this IoU (trainability.py's success) is in bold.


def _mse(x: float) -> str:
  mantissa, exponent = f"{x:.1e}".split("e")
  return f"{mantissa}e{int(exponent)}"


def readme_tables(result: dict) -> dict[str, str]:
  """The README's markdown tables, from the JSON of one run alone.

  ``fit_crop.json`` gives ``fit_crop`` (each method's IoU, centre error,
  fitted box, final MSE, steps and wall time); ``fit_crop_offsets.json`` (``--offsets``) gives
  ``fit_crop_offsets`` (each method's IoU from each start, failures in bold).
  """
  if "runs" in result:
    rows = ["| `--offset` | Gaussian IoU | transformer IoU |", "| --- | --- | --- |"]
    for run in result["runs"]:
      offset = "`" + " ".join(f"{v:g}" for v in run["offset"]) + "`"
      offset += " (default)" if run["offset"] == result["default_offset"] else ""
      ious = [run["iou"][m] for m in ("gaussian", "affine")]
      cells = [f"**{v:.3f}**" if v < FAILED_IOU else f"{v:.3f}" for v in ious]
      rows.append(f"| {offset} | " + " | ".join(cells) + " |")
    return {"fit_crop_offsets": "\n".join(rows) + "\n"}
  rows = [
      "| method | IoU | centre error (px) | fitted box h × w (px) | final MSE | steps "
      "| wall time (s) |",
      "| --- | --- | --- | --- | --- | --- | --- |",
  ]
  for m, r in result["methods"].items():
    h, w = r["box"]["size"]
    rows.append(f"| {TABLE_LABELS.get(m, m)} | {r['iou']:.3f} | {r['center_error_px']:.2f} | "
                f"{h:.1f} × {w:.1f} | {_mse(r['final_loss'])} | {r['steps']} "
                f"| {r['wall_time_s']:.1f} |")
  return {"fit_crop": "\n".join(rows) + "\n"}


def sweep_offsets(args, image, shape, target, target_box, start_at, setting, command):
  """Fits both methods from each start of ``args.offsets``; writes their IoUs."""
  runs = []
  print(f"{'offset':>14}{'start IoU':>11}" + "".join(f"{LABELS[m] + ' IoU':>36}" for m in METHODS))
  for offset in args.offsets:
    start = start_at(offset)
    ious = {m: fit(m, image, shape, target, target_box, start, args.steps, args.lr, (),
                   args.supersample)["iou"]
            for m in METHODS}
    start_iou = float(_common.box_iou(np.asarray(start.center), np.asarray(start.size),
                                      *target_box))
    runs.append({"offset": offset, "start_iou": start_iou, "iou": ious})
    print(f"{str(tuple(offset)):>14}{start_iou:>11.3f}"
          + "".join(f"{ious[m]:>36.3f}" for m in METHODS))
  path = args.out / "fit_crop_offsets.json"
  _common.save_json(path, {
      **setting,
      "command": command,
      "start_scale": args.start_scale, "steps": args.steps, "lr": args.lr,
      "supersample": args.supersample,
      "seed": args.seed, "quick": args.quick, "machine": _common.machine(),
      "default_offset": list(DEFAULT_OFFSET), "runs": runs,
  })
  print(f"wrote {path}")


def main(argv=None):
  args, image = parse_args(argv)
  shape = tuple(args.glimpse)
  if args.box is not None:
    box = args.box
  elif args.image is None:
    box = _common.FACE_BOX
  else:
    h, w = image.shape[:2]
    box = ((h - 1) / 2, (w - 1) / 2, h / 2, w / 2)
  target_box = (np.asarray(box[:2], np.float32), np.asarray(box[2:], np.float32))
  shrink = 2 if args.quick else 1
  if shrink > 1:  # Half the pixels each way; the box moves with them.
    image = _common.downscale(image, shrink)
    target_box = ((target_box[0] + 0.5) / shrink - 0.5, target_box[1] / shrink)
  start_at = lambda offset: jg.Box(
      jnp.asarray(target_box[0] + np.asarray(offset) * target_box[1]),
      jnp.asarray(target_box[1] * args.start_scale),
  )
  start_box = start_at(args.offset)
  target = _common.resample_box(image, *target_box, shape)
  setting = {
      "image": args.image or _common.PHOTO,
      "image_shape": list(image.shape),
      "downscale": shrink,
      "glimpse": list(shape),
      "target_box": {"center": target_box[0].tolist(), "size": target_box[1].tolist()},
  }
  if args.offsets is not None:
    command = " ".join(["python experiments/fit_crop.py", *(argv or sys.argv[1:])])
    sweep_offsets(args, image, shape, target, target_box, start_at, setting, command)
    return
  snapshot_steps = sorted({0, args.steps // 10, args.steps // 3})

  results = {}
  for m in tqdm(METHODS, desc="fit_crop"):
    results[m] = fit(m, image, shape, target, target_box, start_box, args.steps,
                     args.lr, snapshot_steps, args.supersample)

  args.out.mkdir(parents=True, exist_ok=True)
  report = {
      **setting,
      "start_box": {"center": np.asarray(start_box.center).tolist(),
                    "size": np.asarray(start_box.size).tolist()},
      "start_iou": float(_common.box_iou(np.asarray(start_box.center),
                                         np.asarray(start_box.size), *target_box)),
      "offset": args.offset,
      "start_scale": args.start_scale,
      "lr": args.lr,
      "supersample": args.supersample,
      "seed": args.seed,
      "quick": args.quick,
      "machine": _common.machine(),
      "methods": {m: {k: v for k, v in r.items() if k != "snapshots"} for m, r in results.items()},
  }
  _common.save_json(args.out / "fit_crop.json", report)
  plot(args.out / "fit_crop.png", image, target, target_box, start_box, results, shape)

  print(f"image {report['image']} {image.shape[0]}x{image.shape[1]}, glimpse "
        f"{shape[0]}x{shape[1]}, target box (cy, cx, h, w) = "
        f"{tuple(float(v) for v in (*target_box[0], *target_box[1]))}")
  print(f"start: offset {tuple(args.offset)} box sizes, scale {args.start_scale}, "
        f"IoU {report['start_iou']:.3f}")
  if args.supersample > 1:
    print(f"the transformer reads with supersample={args.supersample}")
  print(f"{'method':<32}{'IoU':>7}{'centre err px':>15}{'final MSE':>12}{'steps':>7}{'time s':>8}")
  for m, r in results.items():
    print(f"{LABELS[m]:<32}{r['iou']:>7.3f}{r['center_error_px']:>15.2f}"
          f"{r['final_loss']:>12.2e}{r['steps']:>7d}{r['wall_time_s']:>8.1f}")
  p = results["gaussian"]["params"]
  print(f"Gaussian fit: sigma {np.round(p['sigma'], 2).tolist()} px, "
        f"delta {np.round(p['delta'], 2).tolist()} px")
  print(f"wrote {args.out / 'fit_crop.json'} and {args.out / 'fit_crop.png'}")


if __name__ == "__main__":
  main()
