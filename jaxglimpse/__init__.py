"""jaxglimpse: pure, differentiable glimpses for JAX.

A glimpse function takes an image and attention parameters and returns a small,
fixed-size view of part of the image. The Gaussian and affine glimpses are
differentiable in their parameters, so gradient descent can learn where to look.

Conventions (the README's "Conventions" section says the same at more length):

* Layout. Arrays are channel-last. One example is ``(*spatial, C)`` with n = 1,
  2 or 3 spatial axes: ``(L, C)``, ``(H, W, C)`` or ``(D, H, W, C)``.
* Batching. Leading batch axes of the image and of the parameters broadcast as
  in NumPy: an image ``(B, 1, H, W, C)`` with parameters of batch shape
  ``(B, K)`` gives ``(B, K, h, w, C)`` without copying the image. Glimpse
  shapes are static Python ints; ``jit`` is up to the caller.
* Coordinates. Pixels, in axis order ((y, x) for images). Pixel i has its
  centre at coordinate i and covers [i - 1/2, i + 1/2].
* Sample positions. Sample j of N along an axis sits at
  ``mu + (j - (N - 1) / 2) * delta``: ``mu`` is the glimpse centre.
* Boxes. ``Box(center, size)`` covers ``[center - size/2, center + size/2]``;
  N samples over it have ``delta = size / N``.
* Affine transforms. ``theta`` has shape ``(*batch, n, n + 1)`` and maps the
  glimpse's normalised coordinates to the image's, in axis order (PyTorch's
  ``affine_grid`` uses (x, y) order; see ``theta_from_torch``). With
  ``align_corners=False`` (PyTorch's default) normalised -1 and +1 are the outer
  edges of the first and last pixels; with ``align_corners=True`` they are the
  centres of those pixels.
"""

from jaxglimpse.affine import affine_glimpse as affine_glimpse
from jaxglimpse.affine import affine_grid as affine_grid
from jaxglimpse.affine import affine_to_box as affine_to_box
from jaxglimpse.affine import affine_write as affine_write
from jaxglimpse.affine import box_to_affine as box_to_affine
from jaxglimpse.affine import scale_shift_theta as scale_shift_theta
from jaxglimpse.affine import theta_from_torch as theta_from_torch
from jaxglimpse.affine import theta_to_torch as theta_to_torch
from jaxglimpse.boxes import crop_and_resize as crop_and_resize
from jaxglimpse.boxes import roi_align as roi_align
from jaxglimpse.boxes import rois_from_torchvision as rois_from_torchvision
from jaxglimpse.gaussian import gaussian_filterbank as gaussian_filterbank
from jaxglimpse.gaussian import gaussian_glimpse as gaussian_glimpse
from jaxglimpse.gaussian import gaussian_mask as gaussian_mask
from jaxglimpse.gaussian import gaussian_taps as gaussian_taps
from jaxglimpse.gaussian import gaussian_window as gaussian_window
from jaxglimpse.gaussian import gaussian_write as gaussian_write
from jaxglimpse.hard import crop as crop
from jaxglimpse.heads import affine_params as affine_params
from jaxglimpse.heads import draw_params as draw_params
from jaxglimpse.heads import projective_params as projective_params
from jaxglimpse.heads import tps_params as tps_params
from jaxglimpse.params import Box as Box
from jaxglimpse.params import GaussianParams as GaussianParams
from jaxglimpse.params import box_to_gaussian as box_to_gaussian
from jaxglimpse.params import first_center_to_gaussian as first_center_to_gaussian
from jaxglimpse.params import gaussian_to_box as gaussian_to_box
from jaxglimpse.params import gaussian_to_first_center as gaussian_to_first_center
from jaxglimpse.projective import homography_from_points as homography_from_points
from jaxglimpse.projective import projective_glimpse as projective_glimpse
from jaxglimpse.projective import projective_grid as projective_grid
from jaxglimpse.projective import projective_write as projective_write
from jaxglimpse.retina import retina as retina
from jaxglimpse.sampler import sample as sample
from jaxglimpse.tps import tps_controls as tps_controls
from jaxglimpse.tps import tps_glimpse as tps_glimpse
from jaxglimpse.tps import tps_grid as tps_grid
from jaxglimpse.tps import tps_write as tps_write

__version__ = "0.1.0"

__all__ = (
    "Box",
    "GaussianParams",
    "affine_glimpse",
    "affine_grid",
    "affine_params",
    "affine_to_box",
    "affine_write",
    "box_to_affine",
    "box_to_gaussian",
    "crop",
    "crop_and_resize",
    "draw_params",
    "first_center_to_gaussian",
    "gaussian_filterbank",
    "gaussian_glimpse",
    "gaussian_mask",
    "gaussian_taps",
    "gaussian_to_box",
    "gaussian_to_first_center",
    "gaussian_window",
    "gaussian_write",
    "homography_from_points",
    "projective_glimpse",
    "projective_grid",
    "projective_params",
    "projective_write",
    "retina",
    "roi_align",
    "rois_from_torchvision",
    "sample",
    "scale_shift_theta",
    "theta_from_torch",
    "theta_to_torch",
    "tps_controls",
    "tps_glimpse",
    "tps_grid",
    "tps_params",
    "tps_write",
)
