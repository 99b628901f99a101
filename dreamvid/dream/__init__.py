"""The dream core: one image in, one dreamed image out, on any backend.

Split along its seams (docs/architecture.md):

| module | holds |
|---|---|
| `images` | dream space, resizing, octave sizes, tiles (NumPy, OpenCV) |
| `objectives` | what the ascent maximises, as values (`MeanSquares`, `EasedMeanSquares`, `Guide`) |
| `octaves` | the octave loop (`Dreamer`, `dream_image`) and `get_dreamer`, which picks a compiled step |
| `auto` | what `--backend auto` and `--precision auto` mean on this machine, measured once |

The step itself is a backend's (dreamvid/backends/); nothing here imports a framework.
"""
from __future__ import annotations

from ..backends import AUTO_TILE_BATCH, BORDER, GRAD_EPS
from .images import (check_size, fit_max_size, from_dream_space, octave_sizes, resize, tile_edges, tile_slices,
                     to_dream_space, to_uint8)
from .objectives import (GUIDE_SIZE, EasedMeanSquares, Guide, MeanSquares, Objective, check_objective, input_files,
                         is_class_entry, load_guide, objective_for)
from .octaves import Dreamer, Progress, ProgressFn, SnapshotFn, dream_image, get_dreamer, network_key

__all__ = [
    "AUTO_TILE_BATCH", "BORDER", "GRAD_EPS", "GUIDE_SIZE", "Dreamer", "EasedMeanSquares", "Guide", "MeanSquares",
    "Objective", "Progress", "ProgressFn", "SnapshotFn", "check_objective", "check_size", "dream_image",
    "fit_max_size", "from_dream_space", "get_dreamer", "input_files", "is_class_entry", "load_guide", "network_key",
    "objective_for", "octave_sizes", "resize", "tile_edges", "tile_slices", "to_dream_space", "to_uint8",
]
