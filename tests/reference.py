"""Slow float64 NumPy loop references, shared by several test modules.

They are written for clarity, one pixel and one sample at a time, straight from
the formulas in the papers and the README's conventions, and share no code with
jaxglimpse.
"""

import itertools
import math

import numpy as np


# --- Gaussian filterbank references ---


def gaussian_filterbank(mu, sigma, delta, n, size, padding="renormalize"):
  """(n, size): row j is a Gaussian at mu + (j - (n-1)/2) delta over pixels."""
  f = np.zeros((n, size))
  for j in range(n):
    c = mu + (j - (n - 1) / 2) * delta
    for i in range(size):
      f[j, i] = math.exp(-((i - c) ** 2) / (2 * sigma**2))
    if padding == "renormalize":
      z = f[j].sum()
    else:  # Sum over the infinite grid, far past where terms underflow.
      reach = int(math.ceil(40 * sigma)) + 2
      k0 = int(math.floor(c))
      z = sum(
          math.exp(-((k - c) ** 2) / (2 * sigma**2))
          for k in range(k0 - reach, k0 + reach + 1)
      )
    f[j] /= z
  return f


def gaussian_filterbank_derivatives(mu, sigma, delta, n, size, padding="renormalize"):
  """The filterbank and its derivatives wrt (mu, sigma, delta), each (n, size).

  In extended precision (np.longdouble) from the analytic derivative
  ``df = f (dl - E[dl])``, where dl is the derivative of the logit
  -(p - c)² / (2σ²) and the mean is over the pixels (renormalize) or the
  integers (zeros). At σ = 1e-4 the terms reach 1e11, so a float64 reference
  would lose about 1e-5 to their cancellation.
  """
  mu, sigma, delta = (np.longdouble(x) for x in (mu, sigma, delta))
  f = np.zeros((n, size), np.longdouble)
  grads = [np.zeros((n, size), np.longdouble) for _ in range(3)]
  for j in range(n):
    offset = np.longdouble(j - (n - 1) / 2)
    c = mu + offset * delta
    if padding == "renormalize":
      grid = np.arange(size, dtype=np.longdouble)
    else:
      reach = int(math.ceil(40 * sigma)) + 2
      grid = np.arange(int(math.floor(c)) - reach, int(math.floor(c)) + reach + 1)
      grid = grid.astype(np.longdouble)
    pixels = np.arange(size, dtype=np.longdouble)
    logits = -((grid - c) ** 2) / (2 * sigma**2)
    top = logits.max()
    total = np.sum(np.exp(logits - top))
    weights = np.exp(logits - top) / total  # Over the grid normalised over.
    row = np.exp(-((pixels - c) ** 2) / (2 * sigma**2) - top) / total
    f[j] = row
    for g, (dl_grid, dl_pixels) in zip(
        grads,
        [
            ((grid - c) / sigma**2, (pixels - c) / sigma**2),  # d/dmu: dc = 1.
            ((grid - c) ** 2 / sigma**3, (pixels - c) ** 2 / sigma**3),
            (offset * (grid - c) / sigma**2, offset * (pixels - c) / sigma**2),
        ],
    ):
      g[j] = row * (dl_pixels - np.sum(weights * dl_grid))
  return f, grads


def gaussian_glimpse(image, mu, sigma, delta, shape, padding="renormalize"):
  """One example: image (*spatial, C) -> (*shape, C), one product per pixel."""
  n = len(shape)
  spatial = image.shape[:n]
  filters = [
      gaussian_filterbank(mu[a], sigma[a], delta[a], shape[a], spatial[a], padding)
      for a in range(n)
  ]
  return separable(image, filters)


def separable(image, filters):
  """image (*spatial, C) -> (*shape, C) through one (shape[a], spatial[a]) matrix per axis."""
  n = len(filters)
  shape = tuple(f.shape[0] for f in filters)
  spatial = image.shape[:n]
  out = np.zeros(tuple(shape) + image.shape[n:])
  for o in np.ndindex(*shape):
    for i in np.ndindex(*spatial):
      weight = 1.0
      for a in range(n):
        weight *= filters[a][o[a], i[a]]
      out[o] += weight * image[i]
  return out


def gaussian_write(glimpse, mu, sigma, delta, image_shape, padding="renormalize"):
  """One example: glimpse (*shape, C) -> (*image_shape, C), the transpose."""
  n = len(image_shape)
  shape = glimpse.shape[:n]
  filters = [
      gaussian_filterbank(mu[a], sigma[a], delta[a], shape[a], image_shape[a], padding)
      for a in range(n)
  ]
  out = np.zeros(tuple(image_shape) + glimpse.shape[n:])
  for i in np.ndindex(*image_shape):
    for o in np.ndindex(*shape):
      weight = 1.0
      for a in range(n):
        weight *= filters[a][o[a], i[a]]
      out[i] += weight * glimpse[o]
  return out


def gaussian_mask(mu, sigma, delta, shape, image_shape):
  """The glimpse box blurred by the Gaussian, as an outer product over axes."""
  phi = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))
  out = np.ones(tuple(image_shape))
  for i in np.ndindex(*image_shape):
    for a in range(len(shape)):
      lo = mu[a] - shape[a] * abs(delta[a]) / 2
      hi = mu[a] + shape[a] * abs(delta[a]) / 2
      out[i] *= phi((i[a] - lo) / sigma[a]) - phi((i[a] - hi) / sigma[a])
  return out


# --- sampler and affine references ---


def _fold_reflect(x, low, high):
  """Mirrors x into [low, high]: the image continued by mirror copies."""
  if low == high:
    return low
  period = 2 * (high - low)
  y = (x - low) % period  # Python's % is a floored modulo: y in [0, period).
  if y > high - low:
    y = period - y
  return low + y


def _keys(d, a=-0.75):
  """Keys' cubic convolution kernel at distance d."""
  d = abs(d)
  if d <= 1:
    return (a + 2) * d**3 - (a + 3) * d**2 + 1
  if d < 2:
    return a * d**3 - 5 * a * d**2 + 8 * a * d - 4 * a
  return 0.0


def _pad_tap(i, size, padding, align_corners):
  """A cubic tap's integer index after padding, or None if it reads 0."""
  if padding == "zeros":
    return i if 0 <= i < size else None
  if padding == "reflection":
    low, high = (0.0, size - 1.0) if align_corners else (-0.5, size - 0.5)
    i = int(round(_fold_reflect(float(i), low, high)))
  return min(max(i, 0), size - 1)


def _sample_cubic(image, points, padding, align_corners):
  spatial, n = image.shape[:-1], image.ndim - 1
  out = np.zeros((len(points), image.shape[-1]))
  for p, point in enumerate(points):
    taps = []
    for a in range(n):
      x = float(point[a])
      f = math.floor(x)
      taps.append([(_pad_tap(f + k, spatial[a], padding, align_corners), _keys(x - f - k))
                   for k in (-1, 0, 1, 2)])
    for combo in itertools.product(*taps):
      if all(i is not None for i, _ in combo):
        out[p] += math.prod(w for _, w in combo) * image[tuple(i for i, _ in combo)]
  return out


def sample_ref(image, coords, order=1, padding="zeros", align_corners=False):
  """N-linear (order 1), cubic (order 3) or nearest (order 0) reads, one
  point at a time.

  image: (*spatial, C); coords: (..., n) pixel coordinates. Padding as in
  PyTorch's grid_sample: "zeros" reads 0 outside, "border" clamps the
  coordinate to [0, S-1], "reflection" mirrors it about [-1/2, S-1/2]
  (align_corners=False) or [0, S-1] (True) and then clamps it. Order 3 is
  Keys' cubic convolution (A = -0.75) over the taps floor(x) - 1 ... floor(x)
  + 2 of each axis, with the padding applied to each tap's index instead.
  """
  image = np.asarray(image, dtype=np.float64)
  coords = np.asarray(coords, dtype=np.float64)
  spatial = image.shape[:-1]
  n = len(spatial)
  points = coords.reshape(-1, n)
  if order == 3:
    out = _sample_cubic(image, points, padding, align_corners)
    return out.reshape(*coords.shape[:-1], image.shape[-1])
  out = np.zeros((len(points), image.shape[-1]))
  for p, point in enumerate(points):
    xs = []
    for a in range(n):
      x, size = float(point[a]), spatial[a]
      if padding == "reflection":
        if align_corners:
          x = _fold_reflect(x, 0.0, size - 1.0)
        else:
          x = _fold_reflect(x, -0.5, size - 0.5)
      if padding in ("border", "reflection"):
        x = min(max(x, 0.0), size - 1.0)
      xs.append(x)
    if order == 0:
      # round() in Python rounds half to even, like torch's nearbyint.
      corners = [[(round(x), 1.0)] for x in xs]
    else:
      corners = [
          [(math.floor(x), 1.0 - (x - math.floor(x))), (math.floor(x) + 1, x - math.floor(x))]
          for x in xs
      ]
    for pick in np.ndindex(*(len(c) for c in corners)):
      combo = [corners[a][pick[a]] for a in range(n)]
      index = tuple(i for i, _ in combo)
      if all(0 <= i < s for i, s in zip(index, spatial)):
        weight = 1.0
        for _, w in combo:
          weight *= w
        out[p] += weight * image[index]
  return out.reshape(*coords.shape[:-1], image.shape[-1])


def affine_grid_ref(theta, shape, image_shape, align_corners=False):
  """Pixel positions of an affine glimpse, one sample at a time: (*shape, n)."""
  theta = np.asarray(theta, dtype=np.float64)
  n = len(shape)
  out = np.zeros((*shape, n))
  for j in np.ndindex(*shape):
    u = []
    for k in range(n):
      size = shape[k]
      if align_corners:
        u.append(0.0 if size == 1 else -1.0 + 2.0 * j[k] / (size - 1))
      else:
        u.append(-1.0 + (2.0 * j[k] + 1.0) / size)
    for i in range(n):
      x = theta[i, n] + sum(theta[i, k] * u[k] for k in range(n))
      if align_corners:
        out[j + (i,)] = (x + 1.0) / 2.0 * (image_shape[i] - 1)
      else:
        out[j + (i,)] = ((x + 1.0) * image_shape[i] - 1.0) / 2.0
  return out


def glimpse_units_ref(shape, align_corners=False, supersample=None):
  """Normalised glimpse coordinates of every sub-sample: (N_1, s_1, ..., n).

  Sample j of N sits at u_j = (2j + 1) / N - 1 (align_corners=False) or
  2j / (N - 1) - 1 (True; 0 if N = 1); its cell is 2 / N or 2 / (N - 1) (2 if
  N = 1) wide, and its s sub-samples sit at the centres of s equal parts of
  the cell, as torchvision's roi_align places sampling_ratio samples in a bin.
  """
  n = len(shape)
  supersample = supersample or (1,) * n
  out = np.zeros((*(x for m, s in zip(shape, supersample) for x in (m, s)), n))
  for index in np.ndindex(*out.shape[:-1]):
    for a, (m, s) in enumerate(zip(shape, supersample)):
      j, k = index[2 * a], index[2 * a + 1]
      if align_corners:
        u, cell = (2 * j / (m - 1) - 1, 2 / (m - 1)) if m > 1 else (0.0, 2.0)
      else:
        u, cell = (2 * j + 1) / m - 1, 2 / m
      out[index + (a,)] = u - cell / 2 + (k + 0.5) * cell / s
  return out


def to_pixels_ref(x, image_shape, align_corners=False):
  """Normalised image coordinates (..., n) to pixels."""
  size = np.asarray(image_shape, dtype=np.float64)
  if align_corners:
    return (x + 1) * (size - 1) / 2
  return ((x + 1) * size - 1) / 2


def warp_read_ref(image, pixels, order=1, padding="zeros", align_corners=False):
  """The mean over sub-samples of reads at pixels (N_1, s_1, ..., N_n, s_n, n)."""
  values = sample_ref(image, pixels, order, padding, align_corners)
  n = pixels.shape[-1]
  return values.mean(axis=tuple(2 * a + 1 for a in range(n)))


def projective_pixels_ref(matrix, units, image_shape, align_corners=False):
  """Pixels (..., n) of a projective map of normalised units (..., n), and
  whether each point lies in front of the horizon (w > 0)."""
  matrix = np.asarray(matrix, dtype=np.float64)
  n = units.shape[-1]
  homogeneous = np.concatenate([units, np.ones(units.shape[:-1] + (1,))], axis=-1)
  y = homogeneous @ matrix.T
  w = y[..., n:]
  valid = w[..., 0] > 0
  x = y[..., :n] / np.where(w > 0, w, 1)
  return to_pixels_ref(x, image_shape, align_corners), valid


def homography_ref(src, dst):
  """The 3 x 3 matrix with (dst, 1) ~ H (src, 1), from the null space (SVD)."""
  rows = []
  for (a, b), (c, d) in zip(np.asarray(src, np.float64), np.asarray(dst, np.float64)):
    rows.append([a, b, 1, 0, 0, 0, -a * c, -b * c, -c])
    rows.append([0, 0, 0, a, b, 1, -a * d, -b * d, -d])
  h = np.linalg.svd(np.array(rows))[2][-1]
  return (h / h[-1]).reshape(3, 3)


# --- Box glimpse references (torchvision's roi_align, TF's crop_and_resize) ---


def _roi_bilinear(image, pos):
  """torchvision's bilinear_interpolate, any n: 0 beyond 1 px outside, else
  each coordinate clamped to [0, S - 1] and the last pixel read alone."""
  spatial = image.shape[:-1]
  if any(p < -1 or p > s for p, s in zip(pos, spatial)):
    return np.zeros(image.shape[-1])
  axes = []
  for p, s in zip(pos, spatial):
    p = max(p, 0.0)
    low = int(p)
    if low >= s - 1:
      axes.append(((s - 1, 1.0),))
    else:
      t = p - low
      axes.append(((low, 1 - t), (low + 1, t)))
  out = np.zeros(image.shape[-1])
  for corner in itertools.product(*axes):
    out += math.prod(w for _, w in corner) * image[tuple(i for i, _ in corner)]
  return out


def roi_align_ref(image, boxes, shape, spatial_scale=1.0, sampling_ratio=2, aligned=True):
  """torchvision.ops.roi_align from its documentation and kernel, any n.

  image (*spatial, C); boxes (K, 2n) corner boxes in axis order. Returns
  (K, *shape, C).
  """
  n = len(shape)
  boxes = np.asarray(boxes, np.float64).reshape(-1, 2 * n)
  out = np.zeros((len(boxes), *shape, image.shape[-1]))
  offset = 0.5 if aligned else 0.0
  for k, box in enumerate(boxes):
    start = [box[a] * spatial_scale - offset for a in range(n)]
    end = [box[n + a] * spatial_scale - offset for a in range(n)]
    length = [e - s for s, e in zip(start, end)]
    if not aligned:
      length = [max(x, 1.0) for x in length]
    bins = [x / m for x, m in zip(length, shape)]
    grid = [sampling_ratio if sampling_ratio > 0 else math.ceil(x / m) for x, m in zip(length, shape)]
    count = max(math.prod(grid), 1)
    for j in itertools.product(*(range(m) for m in shape)):
      acc = np.zeros(image.shape[-1])
      for i in itertools.product(*(range(g) for g in grid)):
        pos = [start[a] + j[a] * bins[a] + (i[a] + 0.5) * bins[a] / grid[a] for a in range(n)]
        acc += _roi_bilinear(image, pos)
      out[(k, *j)] = acc / count
  return out


def _crop_positions(box, shape, spatial):
  """TF's sample positions along each axis for one normalised box."""
  n = len(shape)
  axes = []
  for a, (m, s) in enumerate(zip(shape, spatial)):
    lo, hi = box[a], box[n + a]
    if m > 1:
      axes.append([lo * (s - 1) + i * (hi - lo) * (s - 1) / (m - 1) for i in range(m)])
    else:
      axes.append([0.5 * (lo + hi) * (s - 1)])
  return axes


def crop_and_resize_ref(image, boxes, shape, method="bilinear", extrapolation_value=0.0):
  """tf.image.crop_and_resize from its documentation and kernel, any n.

  image (*spatial, C); boxes (K, 2n) normalised corner boxes. A sample with a
  coordinate outside [0, S - 1] is the extrapolation value; bilinear reads
  floor and ceil; nearest rounds halves away from zero. Returns (K, *shape, C).
  """
  n = len(shape)
  spatial = image.shape[:-1]
  boxes = np.asarray(boxes, np.float64).reshape(-1, 2 * n)
  out = np.zeros((len(boxes), *shape, image.shape[-1]))
  for k, box in enumerate(boxes):
    axes = _crop_positions(box, shape, spatial)
    for j in itertools.product(*(range(m) for m in shape)):
      pos = [axes[a][j[a]] for a in range(n)]
      if any(p < 0 or p > s - 1 for p, s in zip(pos, spatial)):
        out[(k, *j)] = extrapolation_value
        continue
      if method == "nearest":
        out[(k, *j)] = image[tuple(int(math.floor(p + 0.5)) for p in pos)]
        continue
      taps = [((math.floor(p), 1 - (p - math.floor(p))), (math.ceil(p), p - math.floor(p))) for p in pos]
      for corner in itertools.product(*taps):
        out[(k, *j)] += math.prod(w for _, w in corner) * image[tuple(i for i, _ in corner)]
  return out


def crop_and_resize_box_grad_ref(image, boxes, shape, grads):
  """TF's CropAndResizeGradBoxes (bilinear, 2-D): d loss / d boxes (K, 4)
  for the upstream gradient `grads` (K, h, w, C)."""
  height, width = image.shape[:2]
  out = np.zeros((len(boxes), 4))
  for k, (y1, x1, y2, x2) in enumerate(boxes):
    h, w = shape
    hr = (height - 1) / (h - 1) if h > 1 else 0.0
    wr = (width - 1) / (w - 1) if w > 1 else 0.0
    ys, xs = _crop_positions((y1, x1, y2, x2), shape, (height, width))
    for i, in_y in enumerate(ys):
      if in_y < 0 or in_y > height - 1:
        continue
      top, bottom = math.floor(in_y), math.ceil(in_y)
      ly = in_y - top
      for j, in_x in enumerate(xs):
        if in_x < 0 or in_x > width - 1:
          continue
        left, right = math.floor(in_x), math.ceil(in_x)
        lx = in_x - left
        tl, tr = image[top, left], image[top, right]
        bl, br = image[bottom, left], image[bottom, right]
        gy = np.sum(((1 - lx) * (bl - tl) + lx * (br - tr)) * grads[k, i, j])
        gx = np.sum(((1 - ly) * (tr - tl) + ly * (br - bl)) * grads[k, i, j])
        if h > 1:
          out[k, 0] += gy * (height - 1 - i * hr)
          out[k, 2] += gy * i * hr
        else:
          out[k, 0] += gy * 0.5 * (height - 1)
          out[k, 2] += gy * 0.5 * (height - 1)
        if w > 1:
          out[k, 1] += gx * (width - 1 - j * wr)
          out[k, 3] += gx * j * wr
        else:
          out[k, 1] += gx * 0.5 * (width - 1)
          out[k, 3] += gx * 0.5 * (width - 1)
  return out
