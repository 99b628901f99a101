"""The dreamable layers of every registered backbone, known without building a network.

A layer's name, output shape and channel count are facts of the architecture, not of its
weights. Checking `--layer block5c_out/200` or listing `dreamvid layers` against the network
itself meant importing TensorFlow and building it (3-8 s on a 2-core CPU) before a one-line
error; the registry's models read them from `layers.json` instead, in milliseconds. A user's
own .keras file is still opened by Keras (models.dreamable_layers).

The table is generated from the real networks (built with random weights, so nothing is
downloaded) by

    python -m dreamvid.models.layertable          # rewrites dreamvid/models/layers.json

and tests/test_models.py checks it against them, so a Keras release that renames or reshapes
a layer fails a test instead of a render.
"""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

TABLE = Path(__file__).with_name("layers.json")
FORMAT = 1  # bump when the file's layout changes


@functools.lru_cache(maxsize=1)
def _table() -> dict:
    try:
        data = json.loads(TABLE.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # a damaged install: fall back to building the network
        return {}
    return data.get("models", {}) if data.get("format") == FORMAT else {}


def lookup(name: str) -> list[tuple[str, tuple[int, ...]]] | None:
    """[(layer, (h, w, channels) at models.LISTING_SIZE px)] of a registered model, or None
    when the table does not hold it (a user's file, a model added since the table was made)."""
    rows = _table().get(name)
    if rows is None:
        return None
    return [(layer, tuple(shape)) for layer, shape in rows]


def build() -> dict:
    """The table as the installed Keras builds the networks (imports TensorFlow)."""
    from . import MODELS, LISTING_SIZE, _layers_of, _listing_model

    return {"format": FORMAT, "size": LISTING_SIZE,
            "models": {name: [[layer, list(shape)] for layer, shape in _layers_of(spec, _listing_model(spec))]
                       for name, spec in MODELS.items()}}


def write(path: Path = TABLE) -> Path:
    """Rebuild the table from the networks and write it (one model a line: a readable diff)."""
    data = build()
    lines = [f'  "{name}": {json.dumps(rows)}' for name, rows in data["models"].items()]
    path.write_text(f'{{"format": {data["format"]}, "size": {data["size"]}, "models": {{\n'
                    + ",\n".join(lines) + "\n}}\n", encoding="utf-8")
    _table.cache_clear()
    return path


if __name__ == "__main__":
    from . import setup_tensorflow

    setup_tensorflow()
    print(write(Path(sys.argv[1]) if len(sys.argv) > 1 else TABLE))
