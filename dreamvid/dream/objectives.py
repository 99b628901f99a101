"""Objectives: what the gradient ascent maximises, as values (no framework code here).

An objective is a frozen, hashable value (dream.get_dreamer caches one compiled step per
network and objective). `terms(model, forward)` describes it for one tapped network as a
backends.Terms: a weight per tapped entry, which entries are linear (classes), whether the
weights are eased through the step's `gains` input, and the guide's features. Each backend
turns that description into its own ops (backends/tensorflow.py, backends/torch.py), so an
objective works on every backend without code of its own there.

The tapped entries (models.DreamModel.layers) are whole layers, single channels
("block5c_out/17") or ImageNet classes ("logits/207": that class's logit at every position,
the classifier applied as a 1x1 convolution); models.tap builds each into the network, so an
objective sees one activation tensor per entry. A class entry is linear (its logit is
raised, or lowered with a negative weight); the others are excited (mean of squares).
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..backends import BORDER, Terms, gains_of
from ..errors import InputError, SettingsError
from ..settings import DreamSettings
from .images import fit_max_size, resize, to_dream_space

GUIDE_SIZE = 320  # px, longest side the guide is seen at (its features: a few hundred vectors per layer)

Forward = Callable[[np.ndarray], list[np.ndarray]]  # dream-space (h, w, 3) -> one (h', w', c) activation per entry


def is_class_entry(name: str) -> bool:
    return name.startswith("logits/")


class Objective:
    """What the dream maximises, as a function of the tapped network's activations (see the
    module docstring). Subclasses are frozen dataclasses."""

    def terms(self, model, forward: Forward) -> Terms:
        """This objective for `model` (its `layers` and `scales`); `forward` runs the network
        on one dream-space image (for features the objective needs, such as a guide's)."""
        raise NotImplementedError

    def gains(self, model, s: DreamSettings) -> np.ndarray | None:
        """The step's `gains` input for a dream with settings `s` (None: not eased)."""
        return None


@dataclass(frozen=True)
class Guide:
    """A guide image (--guide) as a hashable value: (h, w, 3) uint8 RGB pixels and a digest."""

    pixels: bytes
    shape: tuple[int, int, int]
    digest: str

    @classmethod
    def of(cls, image: np.ndarray) -> Guide:
        image = np.ascontiguousarray(image, np.uint8)
        return cls(image.tobytes(), image.shape, hashlib.sha256(image.tobytes()).hexdigest()[:16])

    def image(self) -> np.ndarray:
        return np.frombuffer(self.pixels, np.uint8).reshape(self.shape)

    def __hash__(self) -> int:
        return hash(self.digest)

    def __repr__(self) -> str:
        return f"Guide({self.shape[1]}x{self.shape[0]}, {self.digest})"


@dataclass(frozen=True)
class MeanSquares(Objective):
    """The DeepDream objective (the default): sum over entries of weight * mean(a²), each
    entry's mean square divided by its reference level (models.DreamModel.scales); a class
    entry adds weight * its mean logit / its reference level instead.

    With a `guide` (Mordvintsev's guided objective, the original notebook's): each position's
    activation vector is matched to the guide's most similar one (largest dot product) and the
    match is raised, so the dream grows the guide's features; `guide_weight` mixes it with
    the plain objective (1: only the guide, 0: only the plain one).
    """

    guide: Guide | None = field(default=None, kw_only=True)
    guide_weight: float = field(default=1.0, kw_only=True)

    eased = False

    def terms(self, model, forward: Forward) -> Terms:
        names = [n for n, _ in model.layers]
        weights = tuple(self._weight(n, w) / sc for (n, w), sc in zip(model.layers, model.scales))
        g = float(self.guide_weight) if self.guide is not None else 0.0
        return Terms(weights, tuple(is_class_entry(n) for n in names), eased=self.eased,
                     guide=self._guide_features(model, forward) if g else None, guide_weight=g)

    def _weight(self, name: str, weight: float) -> float:
        return weight

    def _guide_features(self, model, forward: Forward) -> tuple:
        """Per entry: the guide's activation vectors (n, c) at that entry, or None (class entries)."""
        guide = fit_max_size(self.guide.image().astype(np.float32), GUIDE_SIZE)
        if min(guide.shape[:2]) < model.min_size:
            guide = resize(guide, tuple(max(model.min_size, d) for d in guide.shape[:2]))
        out = []
        for (name, _), a in zip(model.layers, forward(to_dream_space(guide))):
            if is_class_entry(name):
                out.append(None)
                continue
            h, w = a.shape[:2]
            bh, bw = min(BORDER, (h - 1) // 2), min(BORDER, (w - 1) // 2)
            a = a[bh:h - bh, bw:w - bw]  # without the border the loss leaves out
            out.append(np.ascontiguousarray(a.reshape(-1, a.shape[-1]), np.float32))
        return tuple(out)


@dataclass(frozen=True)
class EasedMeanSquares(MeanSquares):
    """MeanSquares whose entry weights change during a render without a new compile (zoom
    keyframes easing `layers`, a video's layer weights of time): each entry's activations are
    scaled by the step's `gains` input, loss = sum sign_l / scale_l * mean((gain_l a_l)²),
    gain_l = sqrt(|w_l|) (a class entry: sign_l / scale_l * gain_l² * mean(logit)), with w_l the
    weight the dream's settings give entry l (`s.targets()`; 0 where not named). The sign of
    each entry is fixed for the render (`signs`, by name; a weight that crosses 0 is refused
    by the plan). The network's own layer weights must be 1."""

    signs: tuple[tuple[str, float], ...] = ()

    eased = True

    def _weight(self, name: str, weight: float) -> float:
        return dict(self.signs).get(name, 1.0)

    def gains(self, model, s: DreamSettings) -> np.ndarray:
        return gains_of([n for n, _ in model.layers], dict(s.targets()))


def objective_for(s: DreamSettings, signs: tuple[tuple[str, float], ...] | None = None) -> Objective:
    """The objective settings `s` ask for: MeanSquares over s.targets(), guided by s.guide;
    with `signs`, the EasedMeanSquares of a render whose weights change from frame to frame."""
    guide = load_guide(s.guide) if s.guide else None
    if signs is not None:
        return EasedMeanSquares(guide=guide, guide_weight=s.guide_weight, signs=signs)
    return MeanSquares(guide=guide, guide_weight=s.guide_weight)


def load_guide(path: str) -> Guide:
    """The guide image at `path`, shrunk to GUIDE_SIZE (any size and aspect ratio works: its
    features are matched wherever they are). InputError naming the file if it is not an image."""
    from ..cache import file_key

    return _guide(file_key(path))


@functools.lru_cache(maxsize=4)
def _guide(key: tuple) -> Guide:
    from ..media import read_image

    try:
        return Guide.of(read_image(key[0], max_size=GUIDE_SIZE))
    except InputError as e:
        raise InputError(f"--guide: {e.message}", hint=e.hint) from None


def check_objective(s: DreamSettings, mode: str, size: tuple[int, int] | None = None) -> None:
    """Before any work: the guide reads, and the mask is one `mode` takes (and reads, at the
    picture's `size` when known). InputError / SettingsError naming the problem."""
    from ..mask import for_still, kind

    if s.guide:
        load_guide(s.guide)
    k = kind(s.mask)
    if k is None:
        return
    if mode != "video" and k != "image":
        raise SettingsError(f"--mask {s.mask} is for videos: {mode} dreams a still",
                            hint="give a mask image (white dreams, black keeps the picture)")
    if k == "image":
        from ..mask import read

        for_still(s.mask, size) if size is not None else read(s.mask)


def input_files(s: DreamSettings) -> dict:
    """The guide and mask files' digests ({} without them): part of a render's resume key, so
    an edited mask is a different render."""
    from ..cache import file_digest
    from ..mask import kind

    out = {}
    for key, path in (("guide", s.guide), ("mask", s.mask if kind(s.mask) in ("image", "clip") else None)):
        if path:
            try:
                out[key] = file_digest(path)
            except OSError:
                out[key] = None  # the plan's own check says what is wrong with it
    return out
