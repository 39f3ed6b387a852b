"""The seed figures: what each glimpse does, drawn from the library itself.

1. ``mwe.png``: the minimum working example. A 10 x 10 random image with a
   bright 3 x 3 square at rows and columns 3-5, read four ways: the hard crop
   ``x[2:7, 2:7]``, a 5 x 5 Gaussian glimpse (first centre 2, sigma 0.5,
   stride 1, via `first_center_to_gaussian`) and a 5 x 5 spatial transformer
   glimpse (scale 0.4, shift -0.1, ``align_corners=True``). Dots mark where
   each glimpse samples.
2. ``sweeps.png`` and ``sweep_delta.gif``, ``sweep_sigma.gif``,
   ``sweep_shift.gif``: parameter sweeps on the photo. Growing delta zooms out
   (the Gaussian blurs with it, the bilinear transformer aliases); growing
   sigma blurs; moving the centre off the image shows each padding mode.
3. ``write.png``: a glimpse written back onto an empty canvas with
   `gaussian_write` and `affine_write`, the exact adjoints of the reads.
4. ``attention_1d.png``: 1-D attention on a real signal, matplotlib's sample
   ``membrane.dat`` (a neuron's membrane potential: raw float32 samples,
   read with ``np.fromfile(path, np.float32)``): the raw trace, a filterbank
   and the filtered samples.

With ``--docs DIR`` the PNGs meant for the README (these four, plus
``fit_crop.png`` and ``trainability.png`` if they are in ``--out``) are also
copied to DIR, and their total size is printed.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import _common
import jax
import jax.numpy as jnp
import numpy as np
import jaxglimpse as jg

try:
  from tqdm import tqdm

  _common.use_agg()
  import matplotlib.pyplot as plt
  from matplotlib.animation import FuncAnimation, PillowWriter
except ModuleNotFoundError as e:
  _common.exit_missing_extra(e, "examples")

DOCS_PNGS = ("mwe.png", "sweeps.png", "write.png", "attention_1d.png",
             "fit_crop.png", "trainability.png")
SWEEP_GLIMPSE = (48, 48)


def parse_args(argv=None):
  p = argparse.ArgumentParser(prog="figures.py", description="Draw the seed figures.")
  _common.add_common_args(p)
  p.add_argument("--docs", type=Path, default=None, metavar="DIR",
                 help="also copy the README's PNGs to DIR, replacing files of the same "
                 "name (the repository's pictures are in docs/)")
  return p.parse_args(argv)


def _off(ax):
  ax.set_xticks([])
  ax.set_yticks([])


def _show(ax, image, title=None, **kwargs):
  image = np.asarray(image)
  if image.shape[-1] == 1:
    kwargs.setdefault("cmap", "gray")
    image = image[..., 0]
  ax.imshow(np.clip(image, 0, 1) if "vmin" not in kwargs else image, **kwargs)
  if title:
    ax.set_title(title, fontsize=8)
  _off(ax)


# ----------------------------------------------------------------------------
# 1. The minimum working example.


def mwe(out: Path, seed: int):
  rng = np.random.default_rng(seed)
  x = rng.uniform(0.0, 0.4, (10, 10)).astype(np.float32)
  x[3:6, 3:6] = 1.0
  image = jnp.asarray(x[..., None])

  @jax.jit  # One compilation instead of one per operation.
  def read(image):
    crop = jg.crop(image, jnp.array([2, 2]), (5, 5))
    params = jg.first_center_to_gaussian(
        jnp.array([2.0, 2.0]), jnp.array([0.5, 0.5]), jnp.array([1.0, 1.0]), (5, 5)
    )
    gauss = jg.gaussian_glimpse(image, params, (5, 5))
    theta = jg.scale_shift_theta(jnp.array([0.4, 0.4]), jnp.array([-0.1, -0.1]))
    stn = jg.affine_glimpse(image, theta, (5, 5), align_corners=True)
    stn_points = jg.affine_grid(theta, (5, 5), (10, 10), align_corners=True)
    return crop, params, gauss, stn, stn_points

  crop, params, gauss, stn, stn_points = read(image)
  gauss_points = np.stack(np.meshgrid(*[
      np.asarray(params.mu[a] + (np.arange(5) - 2) * params.delta[a]) for a in range(2)
  ], indexing="ij"), -1)
  stn_points = np.asarray(stn_points)

  fig, axes = plt.subplots(1, 4, figsize=(10, 2.9), layout="constrained")
  _show(axes[0], image, "input 10×10, bright square at\nrows/cols 3-5; crop box in green",
        vmin=0, vmax=1)
  _common.draw_box(axes[0], (4.0, 4.0), (5.0, 5.0), color="tab:green", linewidth=2)
  axes[0].scatter(gauss_points[..., 1].ravel(), gauss_points[..., 0].ravel(), s=14,
                  color="tab:orange", label="Gaussian samples")
  axes[0].scatter(stn_points[..., 1].ravel(), stn_points[..., 0].ravel(), s=14,
                  marker="x", color="tab:cyan", label="affine samples")
  axes[0].legend(fontsize=6, loc="lower right", framealpha=0.9)
  panels = [
      (crop, "crop x[2:7, 2:7]\ncrop(x, (2, 2), (5, 5))"),
      (gauss, "Gaussian: first centre 2, σ 0.5,\nstride 1 (first_center_to_gaussian)"),
      (stn, "spatial transformer: scale 0.4,\nshift -0.1, align_corners=True"),
  ]
  for ax, (g, title) in zip(axes[1:], panels):
    g = np.asarray(g)[..., 0]
    ax.imshow(g, cmap="gray", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(g):
      ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6,
              color="black" if v > 0.5 else "white")
    ax.set_title(title, fontsize=8)
    _off(ax)
  _common.save_png(fig, out / "mwe.png", dpi=80)
  plt.close(fig)


# ----------------------------------------------------------------------------
# 2. Parameter sweeps on the photo.


def _sweep_values(frames: int):
  """The sweeps, as arrays with one entry per frame."""
  t = np.linspace(0, 1, frames)
  return {
      "size": 48 * 12.0**t,  # Box side: delta from 1 to 12 px.
      "sigma": 0.5 * 32.0**t,  # From 0.5 to 16 px.
      "cx": 255 + t * 400,  # The box's centre moves right, off the image.
  }


FACE_CENTER = np.array(_common.FACE_BOX[:2], np.float32)
SHIFT_SIZE = 192.0
PADDING_ROWS = (
    ("Gaussian\nrenormalize", "gaussian", "renormalize"),
    ("Gaussian\nzeros", "gaussian", "zeros"),
    ("affine\nzeros", "affine", "zeros"),
    ("affine\nborder", "affine", "border"),
    ("affine\nreflection", "affine", "reflection"),
)


def _boxes(center, size):
  center = jnp.asarray(np.broadcast_to(center, (len(size), 2)), jnp.float32)
  size = jnp.asarray(np.broadcast_to(np.asarray(size)[:, None], (len(size), 2)), jnp.float32)
  return jg.Box(center, size)


ROW_NAMES = (
    "delta: Gaussian",
    "delta: affine",
    "sigma: Gaussian",
    *(f"shift: {label}" for label, _, _ in PADDING_ROWS),
)


@jax.jit(static_argnums=1)
def _sweep_glimpses(photo, frames: int):
  """The glimpses of `ROW_NAMES`, each (frames, 48, 48, 3), and the boxes."""
  v = _sweep_values(frames)
  image_shape = photo.shape[:2]
  shape = SWEEP_GLIMPSE
  rows, boxes = {}, {}

  box = _boxes(FACE_CENTER, v["size"])
  boxes["delta"] = box
  rows["delta: Gaussian"] = jg.gaussian_glimpse(photo, jg.box_to_gaussian(box, shape), shape)
  rows["delta: affine"] = jg.affine_glimpse(photo, jg.box_to_affine(box, shape, image_shape), shape)

  box = _boxes(FACE_CENTER, np.full(frames, SHIFT_SIZE))
  boxes["sigma"] = box
  params = jg.box_to_gaussian(box, shape, sigma=jnp.asarray(v["sigma"], jnp.float32)[:, None])
  rows["sigma: Gaussian"] = jg.gaussian_glimpse(photo, params, shape)

  centers = np.stack([np.full(frames, FACE_CENTER[0]), v["cx"]], -1)
  box = _boxes(centers, np.full(frames, SHIFT_SIZE))
  boxes["shift"] = box
  for label, kind, padding in PADDING_ROWS:
    if kind == "gaussian":
      g = jg.gaussian_glimpse(photo, jg.box_to_gaussian(box, shape), shape, padding=padding)
    else:
      theta = jg.box_to_affine(box, shape, image_shape)
      g = jg.affine_glimpse(photo, theta, shape, padding=padding)
    rows[f"shift: {label}"] = g
  return tuple(rows[k] for k in ROW_NAMES), boxes


def sweep_glimpses(photo, frames: int):
  """Returns {row name: (frames, 48, 48, 3)}, in `ROW_NAMES` order, and the boxes."""
  glimpses, boxes = _sweep_glimpses(photo, frames)
  return {k: np.asarray(g) for k, g in zip(ROW_NAMES, glimpses)}, boxes


def sweeps_png(out: Path, rows, frames: int):
  """The grid: 6 of the frames, t = 0, 0.2, ..., 1 (frames must be 5k + 1)."""
  v = _sweep_values(frames)
  pick = np.linspace(0, frames - 1, 6).round().astype(int)
  v = {k: x[pick] for k, x in v.items()}
  rows = {k: x[pick] for k, x in rows.items()}
  names = list(rows)
  fig, axes = plt.subplots(len(names), 6, figsize=(1.05 * 6 + 1.1, 1.05 * len(names)),
                           layout="constrained")
  col_titles = {
      "delta": [f"δ {s / 48:.1f}" for s in v["size"]],
      "sigma": [f"σ {s:.1f}" for s in v["sigma"]],
      "shift": [f"cx {c:.0f}" for c in v["cx"]],
  }
  for r, name in enumerate(names):
    sweep, label = name.split(": ")
    for c in range(6):
      ax = axes[r, c]
      _show(ax, rows[name][c])
      if r == 0 or names[r - 1].split(": ")[0] != sweep:
        ax.set_title(col_titles[sweep][c], fontsize=7, pad=2)
    axes[r, 0].set_ylabel(f"{sweep}\n{label}", fontsize=7)
  fig.suptitle("sweeps on the photo (48×48 glimpses): zoom out, blur, move off the right edge",
               fontsize=9)
  _common.save_png(fig, out / "sweeps.png", dpi=72)
  plt.close(fig)


def sweep_gifs(out: Path, photo, rows, boxes, frames: int):
  v = _sweep_values(frames)
  specs = {
      "delta": (["delta: Gaussian", "delta: affine"],
                lambda i: f"box {v['size'][i]:.0f} px, δ {v['size'][i] / 48:.1f}"),
      "sigma": (["sigma: Gaussian"], lambda i: f"σ {v['sigma'][i]:.1f} px"),
      "shift": ([k for k in rows if k.startswith("shift")], lambda i: f"centre x {v['cx'][i]:.0f}"),
  }
  for sweep, (names, caption) in tqdm(specs.items(), desc="gifs", leave=False):
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(1.9 * (len(names) + 1), 2.4),
                             layout="constrained")
    axes[0].imshow(photo)
    _off(axes[0])
    box = boxes[sweep]
    patch = _common.draw_box(axes[0], box.center[0], box.size[0], color="yellow")
    axes[0].set_xlim(-0.5, max(photo.shape[1], float(box.center[:, 1].max() + 100)))
    axes[0].set_ylim(photo.shape[0] - 0.5, -0.5)
    ims = []
    for ax, name in zip(axes[1:], names):
      ims.append(ax.imshow(np.clip(rows[name][0], 0, 1)))
      ax.set_title(name.split(": ")[1].replace("\n", " "), fontsize=7)
      _off(ax)
    title = fig.suptitle(caption(0), fontsize=8)

    def update(i):
      c, s = np.asarray(box.center[i]), np.asarray(box.size[i])
      patch.set_xy((c[1] - s[1] / 2, c[0] - s[0] / 2))
      patch.set_width(s[1])
      patch.set_height(s[0])
      for im, name in zip(ims, names):
        im.set_data(np.clip(rows[name][i], 0, 1))
      title.set_text(caption(i))
      return [patch, *ims, title]

    anim = FuncAnimation(fig, update, frames=frames)
    anim.save(out / f"sweep_{sweep}.gif", writer=PillowWriter(fps=6), dpi=60)
    plt.close(fig)


# ----------------------------------------------------------------------------
# 3. Write-back.


def write_png(out: Path, photo):
  shape = (32, 32)
  image_shape = photo.shape[:2]
  box = jg.Box(jnp.asarray(FACE_CENTER), jnp.asarray(_common.FACE_BOX[2:], jnp.float32))

  @jax.jit
  def read_and_write(photo):
    """{name: (glimpse, write(glimpse), write(ones))} for both glimpses."""
    params = jg.box_to_gaussian(box, shape)
    theta = jg.box_to_affine(box, shape, image_shape)
    g = jg.gaussian_glimpse(photo, params, shape)
    a = jg.affine_glimpse(photo, theta, shape)
    gw = lambda x: jg.gaussian_write(x, params, image_shape)
    aw = lambda x: jg.affine_write(x, theta, image_shape)
    return {
        "Gaussian": (g, gw(g), gw(jnp.ones_like(g))),
        "affine": (a, aw(a), aw(jnp.ones_like(a))),
    }

  # Show the canvas around the box, where the write lands.
  lo = np.floor(FACE_CENTER - 0.7 * np.asarray(_common.FACE_BOX[2:])).astype(int)
  hi = np.ceil(FACE_CENTER + 0.7 * np.asarray(_common.FACE_BOX[2:])).astype(int)
  window = (slice(max(lo[0], 0), hi[0]), slice(max(lo[1], 0), hi[1]))

  # And a 40 x 40 pixel detail, at full resolution.
  detail = (slice(185, 225), slice(195, 235))

  fig, axes = plt.subplots(2, 5, figsize=(11, 4.8), layout="constrained")
  for r, (name, (glimpse, canvas, cover)) in enumerate(read_and_write(photo).items()):
    canvas, cover = np.asarray(canvas), np.asarray(cover)
    _show(axes[r, 0], photo, "input and box" if r == 0 else None)
    _common.draw_box(axes[r, 0], box.center, box.size, color="yellow")
    axes[r, 0].set_ylabel(name, fontsize=9)
    _show(axes[r, 1], glimpse, f"{name} glimpse 32×32")
    gain = 1 / max(canvas[window].max(), 1e-12)
    _show(axes[r, 2], canvas[window] * gain,
          f"write(glimpse) ×{gain:.0f}\n(canvas around the box)")
    norm = np.where(cover > 1e-6, canvas / np.maximum(cover, 1e-6), 0)
    _show(axes[r, 3], norm[window], "write(glimpse) / write(ones)")
    _show(axes[r, 4], canvas[detail] * gain, "write(glimpse): a 40×40 px\ndetail, pixel for pixel",
          interpolation="nearest")
  fig.suptitle("write-back: gaussian_write and affine_write, the exact adjoints of the reads",
               fontsize=9)
  _common.save_png(fig, out / "write.png", dpi=72)
  plt.close(fig)


# ----------------------------------------------------------------------------
# 4. 1-D attention on a real signal.


def load_membrane() -> np.ndarray:
  import matplotlib.cbook

  path = matplotlib.cbook.get_sample_data("membrane.dat", asfileobj=False)
  return np.fromfile(path, np.float32)


def attention_1d_png(out: Path):
  x = load_membrane()  # (12000,)
  signal = jnp.asarray(x[:, None])  # (L, C) with one channel.
  n = 48
  out_name, in_name = "zoomed out: whole trace", "zoomed in: three spikes"
  mu_o, delta_o = (len(x) - 1) / 2, len(x) / n
  mu, delta = 5230.0, 9.0
  # Three glimpses in one call: parameters of batch shape (3,) broadcast
  # against the one signal. The last reads the zoomed-in window with 4x sigma.
  params = jg.GaussianParams(*(
      jnp.asarray(v, jnp.float32)[:, None]
      for v in ((mu_o, mu, mu), (delta_o / 2, delta / 2, 2 * delta), (delta_o, delta, delta))
  ))
  reads = np.asarray(jg.gaussian_glimpse(signal, params, (n,)))[..., 0]  # (3, n)
  masks = np.asarray(jg.gaussian_mask(params, (n,), (len(x),)))  # (3, L)
  filters = np.asarray(jg.gaussian_filterbank(params.mu[1, 0], params.sigma[1, 0],
                                              params.delta[1, 0], n, len(x)))  # (n, L)
  centers = np.asarray(params.mu + (np.arange(n) - (n - 1) / 2) * params.delta)  # (3, n)
  colors = {out_name: "tab:orange", in_name: "tab:red"}

  fig, axes = plt.subplots(3, 1, figsize=(9, 6.4), layout="constrained")
  t = np.arange(len(x))
  axes[0].plot(t, x, color="0.3", linewidth=0.5)
  axes[0].set_title(f"raw: membrane.dat, {len(x)} samples (membrane potential); "
                    "shaded: gaussian_mask of two glimpses", fontsize=9)
  for k, (name, d) in enumerate(((out_name, delta_o), (in_name, delta))):
    axes[0].fill_between(t, x.min(), x.min() + masks[k] * (x.max() - x.min()),
                         color=colors[name], alpha=0.25, label=f"{name}: {n} samples, δ {d:.0f}")
  axes[0].legend(fontsize=7, loc="lower center")

  lo, hi = int(mu - 0.65 * n * delta), int(mu + 0.65 * n * delta)
  ax = axes[1]
  ax.plot(t[lo:hi], x[lo:hi], color="0.3", linewidth=0.8)
  ax2 = ax.twinx()
  ax2.plot(t[lo:hi], filters[:, lo:hi].T, color=colors[in_name], linewidth=0.6, alpha=0.8)
  ax2.set_yticks([])
  ax.set_title(f"the zoomed-in glimpse's {n} filters (σ = δ/2 = {delta / 2:.1f}) over the trace",
               fontsize=9)

  ax = axes[2]
  ax.plot(t[lo:hi], x[lo:hi], color="0.75", linewidth=0.8, label="raw")
  ax.plot(centers[1], reads[1], "o-", color=colors[in_name], markersize=3, linewidth=1,
          label=f"zoomed in, σ {delta / 2:.1f}")
  ax.plot(centers[2], reads[2], "s--", color="tab:purple", markersize=3, linewidth=1,
          label=f"zoomed in, σ {2 * delta:.0f}")
  inside = (centers[0] >= lo) & (centers[0] < hi)
  ax.plot(centers[0][inside], reads[0][inside], "D", color=colors[out_name],
          label=f"{out_name} (σ {delta_o / 2:.0f})")
  ax.set_xlim(lo, hi)
  ax.set_xlabel("sample")
  ax.legend(fontsize=7, ncol=4, loc="upper center", bbox_to_anchor=(0.5, -0.28))
  ax.set_title("filtered: each glimpse sample is a Gaussian-weighted mean of the trace", fontsize=9)
  _common.save_png(fig, out / "attention_1d.png", dpi=72)
  plt.close(fig)


def main(argv=None):
  args = parse_args(argv)
  out = args.out
  out.mkdir(parents=True, exist_ok=True)
  photo = jnp.asarray(_common.load_photo())
  frames = 6 if args.quick else 26  # 5k + 1: the grid shows every k-th frame.
  rows, boxes = sweep_glimpses(photo, frames)
  steps = [
      ("mwe", lambda: mwe(out, args.seed)),
      ("sweeps", lambda: sweeps_png(out, rows, frames)),
      ("gifs", lambda: sweep_gifs(out, photo, rows, boxes, frames)),
      ("write", lambda: write_png(out, photo)),
      ("attention_1d", lambda: attention_1d_png(out)),
  ]
  for name, fn in tqdm(steps, desc="figures"):
    fn()
  written = sorted(p.name for p in out.iterdir() if p.suffix in (".png", ".gif"))
  print(f"wrote to {out}: {', '.join(written)}")
  if args.docs is not None:
    args.docs.mkdir(parents=True, exist_ok=True)
    total = 0
    for name in DOCS_PNGS:
      if (out / name).exists():
        shutil.copyfile(out / name, args.docs / name)
        total += (args.docs / name).stat().st_size
      else:
        print(f"  {name} is not in {out}; run the script that makes it with --out {out}")
    print(f"copied to {args.docs}: {total / 1e6:.2f} MB in all")


if __name__ == "__main__":
  main()
