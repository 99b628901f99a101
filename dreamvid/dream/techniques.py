"""The three techniques behind the 2015 DeepDream look, as data the step receives (no framework).

Plain gradient ascent on a mid-level layer grows pixel-sized texture: a high-frequency,
rainbow-coloured pattern the network answers strongly to. Three changes to the step let
larger, recognisable structures (eyes, faces, animals) win instead; each is a setting, 0 off:

- `lapnorm` (levels): the gradient is split into a Laplacian pyramid and every band divided
  by its RMS before the bands are summed again, so coarse bands grow as fast as the finest
  (the TensorFlow DeepDream notebook's lap_normalize; the backend does it, LAP_KERNEL).
- `decorrelate` (0..1): the step happens in a colour space whose channels are uncorrelated
  over ImageNet (Lucid's colour decorrelation): with the image x = C y and the ascent on y,
  the RGB gradient g becomes C C^T g, which keeps luminance and damps the two chroma
  directions ImageNet's pictures vary least in, 13x and 57x at 1 (`colour_matrix`).
- `transform` (amount): every step the network sees the image scaled by up to
  `transform` x 10% and rotated by up to `transform` x 5 degrees about its centre, beside the
  jitter (Lucid's transformation robustness), so a pattern that only works on one pixel grid
  stops paying (`random_warp`).

The octave loop (octaves.py) turns the settings into these arrays; the backends apply them.
"""
from __future__ import annotations

import math

import numpy as np

# Lucid's square root of ImageNet's RGB colour covariance (lucid/optvis/param/color.py,
# color_correlation_svd_sqrt): its columns are the decorrelated axes, luminance first.
COLOR_CORRELATION_SVD_SQRT = np.asarray([[0.26, 0.09, 0.02],
                                         [0.27, 0.00, -0.05],
                                         [0.27, -0.09, 0.03]], np.float64)
MAX_SCALE = 0.10  # scale change of a step at transform 1 (0.9 .. 1.1), as Lucid's robustness transforms
MAX_ROTATE = 5.0  # degrees of a step's rotation at transform 1
MIN_BAND = 4  # px; lapnorm does not split an octave's gradient below this (a smaller band is its mean colour)


def colour_matrix(decorrelate: float) -> np.ndarray | None:
    """The step's `colour` input for `decorrelate` d (0..1): (C C^T)^d, C Lucid's matrix scaled
    so that its longest axis has length 1 (luminance passes unchanged); at 1 the chroma axes
    are damped 13x and 57x, at 0.5 by the square roots of that (a power, not a mix with the
    identity, which would tint the gradient toward red). None at 0: the step leaves it alone.
    (3, 3) float32."""
    if not decorrelate:
        return None
    c = COLOR_CORRELATION_SVD_SQRT / np.linalg.norm(COLOR_CORRELATION_SVD_SQRT, axis=0).max()
    values, vectors = np.linalg.eigh(c @ c.T)
    return (vectors @ np.diag(np.clip(values, 1e-12, None) ** decorrelate) @ vectors.T).astype(np.float32)


def lapnorm_levels(lapnorm: int, size: tuple[int, int]) -> int:
    """The pyramid levels the step splits an octave of `size` (h, w) into: `lapnorm`, fewer
    where a band would be smaller than MIN_BAND px (it would hold only the mean colour, and
    normalising it would push the whole picture's colour)."""
    if lapnorm <= 0:
        return 0
    return max(0, min(int(lapnorm), int(math.floor(math.log2(max(min(size), 1) / MIN_BAND)))))


def random_warp(rng: np.random.Generator, transform: float, size: tuple[int, int]) -> np.ndarray:
    """One step's warp for an image of `size` (h, w): a random scale 1 +- transform x MAX_SCALE
    and rotation +- transform x MAX_ROTATE degrees about the centre. (2, 2, 3) float32 affine
    maps in pixel coordinates (backends.Ascent): [0] where each pixel the network sees is
    read from in the image, [1] its inverse, where the gradient is read back from."""
    u = rng.uniform(-1.0, 1.0, 2)
    scale = 1.0 + transform * MAX_SCALE * u[0]
    angle = math.radians(transform * MAX_ROTATE * u[1])
    h, w = size
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    there = rot.T / scale  # the picture appears `scale` times larger, turned by `angle`
    back = rot * scale
    return np.stack([np.hstack([m, (centre - m @ centre)[:, None]]) for m in (there, back)]).astype(np.float32)
