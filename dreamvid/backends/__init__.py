"""The backends: what runs the gradient step of a dream, behind one small interface.

A backend turns a tapped network and an objective into a compiled step, and says what it
knows of its devices. The octave loop (dream/octaves.py) knows only this interface; two
backends implement it:

| backend | module | where it pays |
|---|---|---|
| `tensorflow` | backends/tensorflow.py | the default install; CPU (oneDNN), CUDA on Linux |
| `torch` | backends/torch.py | CUDA on Linux and Windows, Apple's MPS, and VGG-like networks on a CPU |

Both run the same folded network (models.folded: batch norms folded, the taps built in,
float32 weights) with the same arithmetic, so one step agrees to float rounding
(tests/test_backends.py). `--backend auto` picks the faster one per network and machine
(dream/auto.py).

The interface:

- `Backend.load(name, layers, weights, precision)` -> a tapped network (`name`, `layers`,
  `scales`, `min_size`, `precision`, `preprocessing`), cached by the caller.
- `Backend.activations(model, image)`: the network's activations of one dream-space image
  (numpy in, numpy out): an objective's guide features, the calibration.
- `Backend.compile(model, terms)` -> `Step`: one gradient-ascent step for that network and
  objective (`Terms`). `step.start(x, ...)` holds one image on the device for an octave and
  returns an `Ascent`; calling it with a jitter shift and a tile batch makes one step
  (roll, warp, the tile loop, loss and gradient, warp back, roll back, blur, colour,
  Laplacian normalisation, mask, normalise, update, clip) and returns the loss as a device
  scalar (`float()` waits for it). The warp, the colour matrix and the pyramid's levels are
  data the octave loop gives (dream/techniques.py): a backend only applies them.
- `Backend.out_of_memory(e)`: whether an exception is the device running out of memory (the
  octave loop halves the tile batch and runs the step again: a step is a pure function).
- `Backend.device()`, `Backend.gpu()`, `Backend.memory()`: what it runs on, and peak memory.

Adding a backend is one new module with a `Backend` subclass named in `MODULES`, and the
name in settings.BACKENDS; docs/architecture.md says what its step must do.
"""
from __future__ import annotations

import functools
import importlib
import importlib.util
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..errors import SettingsError

# backend name -> (module under dreamvid.backends, the package it needs, how to install that)
MODULES: dict[str, tuple[str, str, str]] = {
    "tensorflow": ("tensorflow", "tensorflow", "pip install tensorflow"),
    "torch": ("torch", "torch", "pip install 'dreamvid[torch]' (or PyTorch for your GPU: https://pytorch.org)"),
}
ORDER = ("tensorflow", "torch")  # preference when both are as fast (auto keeps the first unless another wins)
BORDER = 2  # activations excluded at each edge of the loss (Keras example), they see padding
GRAD_EPS = 1e-8  # floor of the gradient's mean |g| when normalising
AUTO_TILE_BATCH = 16  # tiles per network call on a GPU when tile_batch is not set (halved on OOM)
# Laplacian-pyramid normalisation of the gradient (`lapnorm`), as the TensorFlow DeepDream
# notebook does it: each level is split with this 5-tap binomial kernel (outer product with
# itself, stride 2, TensorFlow's "same" zero padding; upsampled by its transpose times 4) and
# every band is divided by its RMS (floor LAP_EPS) before the bands are summed again.
LAP_KERNEL = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)
LAP_EPS = 1e-10


@dataclass(frozen=True, eq=False)
class Terms:
    """An objective as the step computes it, for one tapped network (objectives.Objective.terms).

    Per tapped entry k (the network's outputs, in order):
      loss_k = weights[k] * mean(a_k²)                         (an excited layer or channel)
      loss_k = weights[k] * mean(a_k)                          (`linear[k]`: a class's logit)
      and with guide[k] (n, c): (1 - guide_weight) * mean(a_k²) + guide_weight * match(a_k, guide[k])
    over the activations a_k without a BORDER at each edge, per tile of a batch. With `eased`,
    a_k is first multiplied by the step's `gains[k]` input (a linear entry by gains[k]²), so
    the weights of a render can change from frame to frame without a new compile.
    """

    weights: tuple[float, ...]
    linear: tuple[bool, ...]
    eased: bool = False
    guide: tuple[np.ndarray | None, ...] | None = None
    guide_weight: float = 0.0


class Ascent:
    """One image held on the device for the steps of one octave (Step.start)."""

    def __call__(self, shift: tuple[int, int], batch: int, warp: np.ndarray | None = None) -> Any:
        """One step with this jitter shift (dy, dx) and tile batch; returns the loss (a device
        scalar: float() waits for it). The image is updated only when the step succeeds.
        warp: None, or (2, 2, 3) float32 affine maps in pixel coordinates (x, y, 1) -> (x, y):
        warp[0] says where each pixel of the warped image the network sees is read from in the
        rolled image, warp[1] where each pixel of the gradient is read back from; bilinear.
        Outside the picture, the warped image is mirrored with the edge pixel repeated (as the
        blur's edges) and the gradient is 0 (what the network did not see gets no update)."""
        raise NotImplementedError

    def image(self) -> np.ndarray:
        """The image now: (H, W, 3) float32 in dream space."""
        raise NotImplementedError


class Step:
    """A compiled gradient-ascent step for one network and objective (Backend.compile)."""

    traces: int = 0  # how often the step was traced or compiled (tests pin it)

    def start(self, x: np.ndarray, *, step: float, ys: list[int], xs: list[int], mask: np.ndarray | None,
              smooth: float, gains: np.ndarray | None, colour: np.ndarray | None = None,
              lapnorm: int = 0) -> Ascent:
        """Hold `x` (H, W, 3) float32 dream space on the device for the steps of one octave.
        ys, xs: tile edges [0, ..., H] and [0, ..., W]; mask: (H, W) float32 0..1 or None;
        smooth: gradient blur sigma in px (0: none); gains: (entries,) float32 for an eased
        objective, else None; colour: (3, 3) float32, each pixel's RGB gradient g becomes
        colour @ g (None: unchanged); lapnorm: levels of the gradient's Laplacian pyramid
        normalised band by band (LAP_KERNEL; 0: none)."""
        raise NotImplementedError


class Backend:
    name: str = ""

    def load(self, name: str, layers, weights: str | None, precision: str):
        raise NotImplementedError

    def activations(self, model, image: np.ndarray) -> list[np.ndarray]:
        raise NotImplementedError

    def compile(self, model, terms: Terms) -> Step:
        raise NotImplementedError

    def out_of_memory(self, error: BaseException) -> bool:
        return False

    def gpu(self) -> str | None:
        """The name of the GPU this backend dreams on, or None (the CPU)."""
        return None

    def device(self) -> str:
        return self.gpu() or "cpu"

    def mixed_dtype(self) -> str:
        """What precision "mixed" computes in here: float16 on a GPU, bfloat16 on a CPU."""
        return "float16" if self.gpu() else "bfloat16"

    def version(self) -> str:
        raise NotImplementedError

    def memory(self) -> dict[str, int] | None:
        """{"peak": bytes, "limit": bytes} of the GPU since the last reset_memory(), or None."""
        return None

    def reset_memory(self) -> None:
        pass


def installed(name: str) -> bool:
    """Whether the package backend `name` needs can be imported (found without importing it)."""
    return importlib.util.find_spec(MODULES[name][1]) is not None


def available() -> list[str]:
    """The backends that can run here, in ORDER."""
    return [n for n in ORDER if installed(n)]


def check(name: str) -> None:
    """SettingsError with the install command where backend `name` cannot run here."""
    if name == "auto":
        if not available():
            raise SettingsError("neither TensorFlow nor PyTorch is installed, so nothing can dream",
                                hint=f"{MODULES['tensorflow'][2]}, or {MODULES['torch'][2]}")
        return
    if name not in MODULES:
        raise SettingsError(f"unknown backend {name!r}; use tensorflow, torch or auto")
    if not installed(name):
        raise SettingsError(f"--backend {name}: {MODULES[name][1]} is not installed", hint=MODULES[name][2])


@functools.lru_cache(maxsize=None)
def get(name: str) -> Backend:
    """The backend `name` ("tensorflow" or "torch"; "auto" is resolved before this)."""
    check(name)
    if name == "auto":
        raise ValueError("backend 'auto' is resolved by dream.auto.resolve before a backend is asked for")
    module = importlib.import_module(f".{MODULES[name][0]}", __name__)
    return module.BACKEND


def gains_of(names, weights: dict[str, float]) -> np.ndarray:
    """The `gains` input of an eased objective: sqrt(|w|) per tapped entry (0 where not named)."""
    import math

    return np.asarray([math.sqrt(abs(float(weights.get(n, 0.0)))) for n in names], np.float32)


Forward = Callable[[np.ndarray], list[np.ndarray]]
