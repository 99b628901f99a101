"""`--backend auto` and `--precision auto`: whichever backend and precision run this network's
step fastest on this machine, measured once and remembered.

Why measure: which is faster depends on the network and the machine. On a 2-core AVX2 EPYC,
PyTorch's step was 1.5x TensorFlow's on vgg16_hed and 2.6x slower on the depthwise-heavy
efficientnet_lite0 (issue 22). Reduced precision pays off only where the hardware computes it
natively and the network is dense: on a Sapphire Rapids Xeon (AMX) the vgg16_hed step is
3.95x faster in bfloat16 and the efficientnet_lite0 step 1.7x slower (issue 12); on an AVX2
CPU bfloat16 is emulated, always slower, and is not even timed.

The candidates are every (backend, precision) the settings allow: the backends installed
(backends.available) for "auto", and for each, float32 plus "mixed" where precision is "auto"
and the backend computes reduced precision natively here (a GPU, or a CPU with AMX or
AVX512-BF16). In preference order: TensorFlow before PyTorch, float32 before mixed. The
decision (`choose`), in order:
1. one candidate: it, not timed;
2. an image smaller than SMALL_SIZE on its longer side: the first candidate, with a note
   (the timing would cost more than the dream, and such a step is overhead-bound anyway);
3. an entry of the cache file (cache.cache_dir()/auto.json) for this CPU model and flags,
   the candidates' GPUs and versions, dreamvid's version, model, layers and weights: its answer;
4. else a timing: the compiled step of every candidate at TIMING_SHAPE, one warm-up and
   TIMING_STEPS steps each, interleaved; a later candidate replaces the best so far only if
   at least MIN_SPEEDUP faster (a tie keeps TensorFlow's and float32's results). A timing
   that fails falls back to the first candidate with a note. The result is cached.

`resolve(s)` is what dream.get_dreamer calls: settings with a concrete backend and precision,
so network keys, compiled-step caches and work-folder resume keys (`pin`) never hold "auto",
and a render resumed on a machine that would choose otherwise is refused, not mixed.
"""
from __future__ import annotations

import dataclasses
import datetime
import functools
import logging
import os
import statistics
import time
from typing import Any, Callable

from .. import __version__, backends, cache, machine
from ..errors import DreamvidError, SettingsError
from ..settings import DreamSettings, Layers

log = logging.getLogger("dreamvid")

# (h, w) px the steps are timed on: a 512-px frame, as the bench's. At 224 px fixed costs hide
# what decides: vgg16_hed's torch step was 1.11x TensorFlow's there, 1.2x at 320 and 1.33x at
# 512x384 (a 2-core Xeon, bench/backends.py), so a timing at 224 px picked TensorFlow.
TIMING_SHAPE = (384, 512)
SMALL_SIZE = 224  # px: an image smaller than this on its longer side is not timed (the first candidate)
TIMING_STEPS = 3  # timed steps per candidate, after one warm-up step each
MIN_SPEEDUP = 1.1  # a later candidate must be this much faster than the best so far to be chosen
CACHE_FILE = "auto.json"
CACHE_FORMAT = 1
ENV_BACKEND = "DREAMVID_BACKEND"  # where set, what backend "auto" means on this machine (no timing)

Candidate = tuple[str, str]  # (backend, precision)


def label(c: Candidate) -> str:
    return f"{c[0]}/{c[1]}"


@dataclasses.dataclass(frozen=True)
class Choice:
    backend: str  # "tensorflow" | "torch"
    precision: str  # "float32" | "mixed"
    reason: str  # one line for --verbose and `dreamvid doctor`
    seconds: dict[str, float] | None = None  # per step at TIMING_SHAPE, by "backend/precision", when measured
    cached: bool = False  # read from the cache file

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def report(names: list[str]) -> dict[str, Any]:
    """What a timing is valid for: the CPU model and flags, and for each backend in `names`
    its version and the GPU it dreams on; dreamvid's version."""
    cpu = machine.cpu()
    out: dict[str, Any] = {"cpu": cpu["model"], "flags": list(cpu["flags"]), "dreamvid": __version__}
    for name in names:
        b = backends.get(name)
        out[name] = {"version": b.version(), "gpu": b.gpu()}
    return out


def candidates(backend: str, precision: str, facts: dict[str, Any]) -> list[Candidate]:
    """The (backend, precision) pairs the settings allow here, in preference order."""
    out = []
    for b in (backends.available() if backend == "auto" else [backend]):
        if precision != "auto":
            out.append((b, precision))
            continue
        out.append((b, "float32"))
        if facts[b]["gpu"] is not None or machine.native_bf16(facts["flags"]):
            out.append((b, "mixed"))
    return out


def network_id(model: str, layers: Layers, weights: str | None) -> dict[str, Any]:
    """The network part of a key: a user's .keras file and a local weights file by their digest."""
    from .. import models

    out: dict[str, Any] = {"model": model, "layers": [[n, w] for n, w in layers], "weights": None}
    if models.is_user_model(model):
        out["model_file"] = _digest_or_none(model)
    if weights:
        out["weights"] = _digest_or_none(weights)
    return out


def _digest_or_none(path: str) -> str | None:
    try:
        return cache.file_digest(path)
    except OSError:
        return None  # a missing file fails later with its own message


def decide(seconds: dict[str, float], order: list[Candidate]) -> Candidate:
    """The first candidate, unless a later one is at least MIN_SPEEDUP faster than the best so far."""
    best = order[0]
    for c in order[1:]:
        if seconds[label(c)] * MIN_SPEEDUP <= seconds[label(best)]:
            best = c
    return best


def _valid_entry(e: Any) -> bool:
    if not (isinstance(e, dict) and isinstance(e.get("seconds"), dict) and isinstance(e.get("order"), list)):
        return False
    try:
        order = [tuple(c) for c in e["order"]]
        return (all(len(c) == 2 and label(c) in e["seconds"] for c in order) and len(order) == len(e["seconds"])
                and all(isinstance(v, (int, float)) and v > 0 for v in e["seconds"].values())
                and [e["backend"], e["precision"]] == list(decide(e["seconds"], order)))
    except (TypeError, KeyError):
        return False


def read_entries() -> dict[str, dict]:
    """The valid entries of the cache file (a damaged file or entry is left out: measured again)."""
    data = cache.read_json(cache.cache_dir() / CACHE_FILE)
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or not isinstance(data.get("entries"), dict):
        return {}
    return {k: e for k, e in data["entries"].items() if isinstance(k, str) and _valid_entry(e)}


def _store(key: str, entry: dict) -> None:
    entries = read_entries()
    entries[key] = entry
    cache.write_json(cache.cache_dir() / CACHE_FILE, {"format": CACHE_FORMAT, "entries": entries})


def _key(facts: dict, model: str, layers: Layers, weights: str | None, order: list[Candidate]) -> str:
    relevant = {k: v for k, v in facts.items() if k not in backends.MODULES or k in {b for b, _ in order}}
    return cache.key_digest({**relevant, **network_id(model, layers, weights), "order": [list(c) for c in order]})


def choose(model: str, layers: Layers, weights: str | None, *, backend: str = "auto", precision: str = "auto",
           size: tuple[int, int] | None = None, timer: Callable[[str, str], float] | None = None,
           facts: dict | None = None) -> Choice:
    """What auto means for this network here (the module docstring gives the order).

    size: (h, w) of the image to dream, when known. timer(backend, precision) -> seconds per
    step (tests fake it; default: the compiled step). facts: report() (tests fake the machine).
    """
    backends.check(backend)
    names = backends.available() if backend == "auto" else [backend]
    facts = facts or report(names)
    order = candidates(backend, precision, facts)
    first = order[0]
    if len(order) == 1:
        return Choice(*first, _only(backend, precision, first, facts))
    if size is not None and max(size) < SMALL_SIZE:
        return Choice(*first, f"image {size[1]}x{size[0]} px is smaller than {SMALL_SIZE} px, not worth a "
                              f"timing: {label(first)}")
    key = _key(facts, model, layers, weights, order)
    entry = read_entries().get(key)
    if entry is not None:
        return Choice(entry["backend"], entry["precision"], _why(entry["seconds"], order, facts), entry["seconds"],
                      cached=True)
    try:
        seconds = _interleaved(timer or functools.partial(time_step, model, layers, weights), order)
    except DreamvidError:  # an unknown model or layer is the user's error, not the timing's
        raise
    except Exception as e:  # noqa: BLE001 - the timing is an optimisation: the first candidate always works
        return Choice(*first, f"could not time the candidates ({type(e).__name__}: {str(e)[:120]}): {label(first)}")
    best = decide(seconds, order)
    _store(key, {"backend": best[0], "precision": best[1], "seconds": seconds, "order": [list(c) for c in order],
                 **network_id(model, layers, weights), "cpu": facts["cpu"],
                 "measured": datetime.datetime.now().isoformat(timespec="seconds")})
    return Choice(*best, _why(seconds, order, facts), seconds)


def _only(backend: str, precision: str, first: Candidate, facts: dict) -> str:
    if backend == "auto" and precision == "auto":
        return f"{first[0]} is the only backend installed, and {_no_reduced(first[0], facts)}: {label(first)}"
    if precision == "auto":
        return f"{_no_reduced(first[0], facts)}: {label(first)}"
    if backend == "auto":
        return f"{first[0]} is the only backend installed: {label(first)}"
    return f"as asked: {label(first)}"


def _no_reduced(backend: str, facts: dict) -> str:
    if facts[backend]["gpu"] is None and not machine.native_bf16(facts["flags"]):
        return "this CPU has no AMX or AVX512-BF16, so bfloat16 is emulated there (float32)"
    return "float32"


def _why(seconds: dict[str, float], order: list[Candidate], facts: dict) -> str:
    best = decide(seconds, order)
    where = next((facts[b]["gpu"] for b, _ in order if facts[b]["gpu"]), None) or facts["cpu"]
    timed = ", ".join(f"{k} {v:.3f} s" for k, v in sorted(seconds.items(), key=lambda kv: kv[1]))
    return f"per step at {TIMING_SHAPE[1]}x{TIMING_SHAPE[0]} px on {where}: {timed}: {label(best)}"


def _interleaved(timer: Callable[[str, str], float], order: list[Candidate]) -> dict[str, float]:
    """Median seconds per step of each candidate, the calls alternated (shared machines are noisy)."""
    for c in order:
        timer(*c)  # warm-up: compiles the step
    times: dict[str, list[float]] = {label(c): [] for c in order}
    for r in range(TIMING_STEPS):
        for c in order if r % 2 == 0 else order[::-1]:
            times[label(c)].append(timer(*c))
    return {k: round(statistics.median(v), 5) for k, v in times.items()}


def time_step(model: str, layers: Layers, weights: str | None, backend: str, precision: str) -> float:
    """Seconds of one compiled step of this network at TIMING_SHAPE, through the backend's
    public step (the Dreamer's own, compiled once per candidate and kept for the next call)."""
    from .. import models

    step, (h, w) = _timing_step(model, layers, weights, backend, precision)
    ascent = step.start(models.pink_noise(w)[:h], step=0.01, ys=[0, h], xs=[0, w], mask=None, smooth=0.0,
                        gains=None)
    t = time.perf_counter()
    float(ascent((3, -5), 1))
    return time.perf_counter() - t


@functools.lru_cache(maxsize=8)
def _timing_step(model: str, layers: Layers, weights: str | None, backend: str, precision: str):
    from .objectives import MeanSquares

    b = backends.get(backend)
    network = b.load(model, layers, weights, precision)
    step = b.compile(network, MeanSquares().terms(network, lambda x: b.activations(network, x)))
    return step, tuple(max(d, network.min_size) for d in TIMING_SHAPE)


_memo: dict[tuple, Choice] = {}  # network and its backend/precision settings -> choice, once per process


def resolve(s: DreamSettings, size: tuple[int, int] | None = None) -> DreamSettings:
    """`s` with backend and precision "auto" replaced by what `choose` says (logged once per
    network); a concrete backend and precision as they are (checked: installed)."""
    if s.backend == "auto" and os.environ.get(ENV_BACKEND):  # the machine's owner chose for every render
        s = dataclasses.replace(s, backend=os.environ[ENV_BACKEND])
        if s.backend not in backends.MODULES:
            raise SettingsError(f"{ENV_BACKEND}={s.backend} is not a backend; use tensorflow or torch",
                                hint=f"unset {ENV_BACKEND} to let auto choose")
    if s.backend != "auto" and s.precision != "auto":
        backends.check(s.backend)
        return s
    if size is None and s.max_size is not None:
        size = (s.max_size, s.max_size)  # at most this: a small --max-size is a small image
    # Once per process and network: what the first dream chose holds for the rest (a render's
    # resume key, `pin`, then says what its frames were dreamed with, whatever its size).
    memo_key = (s.model, tuple(s.targets()), s.weights, s.backend, s.precision)
    if memo_key not in _memo:
        _memo[memo_key] = c = choose(s.model, tuple(s.targets()), s.weights, backend=s.backend,
                                     precision=s.precision, size=size)
        # a new measurement is worth a line (it took seconds, once); the rest shows with --verbose
        log.log(logging.INFO if c.seconds and not c.cached else logging.DEBUG, "auto for %s: %s%s",
                s.model, c.reason, " (measured once, cached)" if c.seconds and not c.cached else "")
    c = _memo[memo_key]
    return dataclasses.replace(s, backend=c.backend, precision=c.precision)


def cached_choice(model: str, layers: Layers = (), weights: str | None = None, *, backend: str = "auto",
                  precision: str = "auto") -> Choice | None:
    """What auto chose for this network on this machine, from the cache only (None: not measured
    yet); for `dreamvid doctor`, which times nothing."""
    names = backends.available() if backend == "auto" else [backend]
    if not names:
        return None
    facts = report(names)
    order = candidates(backend, precision, facts)
    if len(order) == 1:
        return Choice(*order[0], _only(backend, precision, order[0], facts))
    entry = read_entries().get(_key(facts, model, layers, weights, order))
    return None if entry is None else Choice(entry["backend"], entry["precision"],
                                             _why(entry["seconds"], order, facts), entry["seconds"], cached=True)


def pin(key: Any) -> Any:
    """A resume key (nested dicts and lists) with every settings dict's backend and precision
    "auto" replaced by what they resolve to here (after prepare() it is memoised: no timing).
    The backend "tensorflow" is left out of the key, as every work folder made before there
    was a choice of backend has it, so those keep resuming."""
    if isinstance(key, list):
        return [pin(v) for v in key]
    if not isinstance(key, dict):
        return key
    out = {k: pin(v) for k, v in key.items()}
    if isinstance(out.get("model"), str) and "precision" in out:
        layers = out.get("layers") or ()
        layers = tuple(layers.items()) if isinstance(layers, dict) else tuple(tuple(x) for x in layers)
        classes = out.get("classes") or {}
        s = DreamSettings(model=out["model"], layers=layers, weights=out.get("weights"), max_size=out.get("max_size"),
                          classes=tuple((int(k), w) for k, w in dict(classes).items()),
                          backend=out.get("backend", "auto"), precision=out["precision"])
        r = resolve(s)
        out["precision"] = r.precision
        if r.backend == "tensorflow":
            out.pop("backend", None)
        else:
            out["backend"] = r.backend
    return out
