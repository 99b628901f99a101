"""The 1000 ImageNet classes: names -> indices for `--class`, and `dreamvid classes --search`.

The list (imagenet_classes.txt beside this file) is in the order of every ImageNet-1k
classifier's output, so index k is logit k of the bundled efficientnet_lite0 and of the Keras
applications alike. Each class has one or more names (WordNet's: "golden retriever";
"tabby, tabby cat"); any of them, in any case, names the class, and so does its index or its
WordNet id ("n02099601"). Pure data: no TensorFlow.
"""
from __future__ import annotations

import difflib
import functools
from pathlib import Path

from ..errors import SettingsError

N_CLASSES = 1000
_FILE = Path(__file__).with_name("imagenet_classes.txt")


@functools.lru_cache(maxsize=1)
def table() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """((wordnet id, (name, ...)), ...) for the 1000 classes, index order."""
    rows = []
    for line in _FILE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        wnid, names = line.split("\t", 1)
        rows.append((wnid, tuple(n.strip() for n in names.split(",") if n.strip())))
    if len(rows) != N_CLASSES:
        raise RuntimeError(f"{_FILE} lists {len(rows)} classes, not {N_CLASSES}: the installation is damaged")
    return tuple(rows)


def name(index: int) -> str:
    """The first (most common) name of class `index`."""
    return table()[index][1][0]


@functools.lru_cache(maxsize=1)
def _by_name() -> dict[str, int]:
    out: dict[str, int] = {}
    for i, (wnid, names) in enumerate(table()):
        out.setdefault(wnid, i)
        for n in names:
            out.setdefault(n.lower(), i)  # "crane" is a bird and a machine: the first listed wins
    return out


def index(spec: str | int) -> int:
    """A class given as an index (207, "207"), a WordNet id or any of its names -> its index.
    SettingsError with the nearest names for an unknown one."""
    from ..numeric import number, shown

    if isinstance(spec, bool):
        raise SettingsError(f"classes: {shown(spec)} is not a class name or index", hint=_HINT)
    if isinstance(spec, int) or (isinstance(spec, str) and spec.strip().isascii() and spec.strip().isdigit()):
        i = spec if isinstance(spec, int) else number(spec, "classes")  # bounded: no 5000-digit int()
        if not 0 <= i < N_CLASSES:
            raise SettingsError(f"classes: index {shown(i)} is out of range: ImageNet classes are 0..{N_CLASSES - 1}",
                                hint=_HINT)
        return i
    if not isinstance(spec, str) or not spec.strip():
        raise SettingsError(f"classes: {shown(spec)} is not a class name or index", hint=_HINT)
    key = " ".join(spec.split()).lower()
    found = _by_name().get(key)
    if found is None:
        near = nearest(key)
        raise SettingsError(f"classes: unknown ImageNet class {shown(spec)}",
                            hint=(f"did you mean {', '.join(repr(n) for n in near)}? " if near else "") + _HINT)
    return found


_HINT = "`dreamvid classes --search WORD` lists the names; an index 0..999 works too"


def nearest(text: str, n: int = 3) -> list[str]:
    """The closest class names to `text` (names containing it first)."""
    text = text.lower()
    names = list(_by_name())
    contains = [k for k in names if text in k and not k.startswith("n0")]
    close = difflib.get_close_matches(text, names, n=n, cutoff=0.6)
    shown = []  # each class once, by the name that matched, as the list writes it
    for key in dict.fromkeys(close + contains):
        i = _by_name()[key]
        if i not in (j for j, _ in shown):
            shown.append((i, next((m for m in table()[i][1] if m.lower() == key), name(i))))
    return [m for _, m in shown][:n]


def search(text: str | None = None) -> list[tuple[int, str, str]]:
    """[(index, wordnet id, "name, name")] of the classes one of whose names contains `text`
    (every class without it)."""
    words = (text or "").lower().split()
    out = []
    for i, (wnid, names) in enumerate(table()):
        joined = ", ".join(names)
        if all(w in joined.lower() for w in words):
            out.append((i, wnid, joined))
    return out
