"""`--precision auto`: float32 or mixed (bfloat16 on a CPU, float16 on a GPU), whichever runs
this network's step faster on this machine, measured once and remembered.

Why measure: reduced precision pays off only where the hardware computes it natively and the
network is dense. On a Sapphire Rapids Xeon (AMX) the vgg16_hed step is 3.95x faster in
bfloat16 and the depthwise-heavy efficientnet_lite0 step 1.7x slower (issue 12); on an
AVX512-BF16 Xeon without AMX both are slower (bench/precisions.py); on an AVX2 CPU bfloat16
is emulated, always slower, and is not even timed.

The decision (`choose`), in order:
1. an image smaller than TIMING_SIZE on its longer side: float32, with a note (the timing
   would cost more than the dream, and such a step is overhead-bound anyway);
2. a CPU without AMX or AVX512-BF16 and no GPU: float32, not timed;
3. an entry of the cache file (cache.cache_dir()/precision.json) for this CPU model and
   flags, GPU, TensorFlow and dreamvid versions, model, layers and weights: its answer;
4. else a timing: the compiled step of both precisions at TIMING_SIZE, one warm-up and
   TIMING_STEPS steps each, interleaved; mixed wins only if at least MIN_SPEEDUP faster.
   A timing that fails falls back to float32 with a note. The result is cached.

`resolve(s)` is what dream.get_dreamer calls: settings with a concrete precision, so network
keys, compiled-step caches and work-folder resume keys (engine.pin_precision) never hold
"auto" and a render resumed on a machine that would choose otherwise is refused, not mixed.
"""
from __future__ import annotations

import dataclasses
import datetime
import functools
import logging
import time
from typing import Any, Callable

from . import __version__, cache
from .errors import DreamvidError
from .settings import DreamSettings, Layers

log = logging.getLogger("dreamvid")

TIMING_SIZE = 224  # px, square: the image the two steps are timed on (and the smallest image that is timed)
TIMING_STEPS = 3  # timed steps per precision, after one warm-up step each
MIN_SPEEDUP = 1.1  # mixed must be this much faster than float32 to be chosen (a tie keeps float32's exact results)
BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo: native bfloat16 dot products
CACHE_FILE = "precision.json"
CACHE_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class Choice:
    precision: str  # "float32" | "mixed"
    reason: str  # one line for --verbose and `dreamvid doctor`
    seconds: dict[str, float] | None = None  # per step at TIMING_SIZE, when measured
    cached: bool = False  # read from the cache file

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def machine() -> dict[str, Any]:
    """What a timing is valid for: CPU model and flags, GPU, TensorFlow and dreamvid versions."""
    from . import doctor, models

    cpu = doctor.cpu()
    tf = models.setup_tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    gpu = tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else None
    return {"cpu": cpu["model"], "flags": list(cpu["flags"]), "gpu": gpu, "tensorflow": tf.__version__,
            "dreamvid": __version__}


def network_id(model: str, layers: Layers, weights: str | None) -> dict[str, Any]:
    """The network part of a key: a user's .keras file and a local weights file by their digest."""
    from . import models

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


def decide(seconds: dict[str, float]) -> str:
    """"mixed" if its step is at least MIN_SPEEDUP faster than float32's, else "float32"."""
    return "mixed" if seconds["float32"] >= MIN_SPEEDUP * seconds["mixed"] else "float32"


def _valid_entry(e: Any) -> bool:
    return (isinstance(e, dict) and e.get("precision") in ("float32", "mixed")
            and isinstance(e.get("seconds"), dict) and set(e["seconds"]) == {"float32", "mixed"}
            and all(isinstance(v, (int, float)) and v > 0 for v in e["seconds"].values())
            and e["precision"] == decide(e["seconds"]))


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


def choose(model: str, layers: Layers, weights: str | None, *, size: tuple[int, int] | None = None,
           timer: Callable[[str], float] | None = None, report: dict | None = None) -> Choice:
    """What auto means for this network here (the module docstring gives the order).

    size: (h, w) of the image to dream, when known. timer(precision) -> seconds per step
    (tests fake it; default: the compiled step). report: machine() (tests fake the CPU).
    """
    if size is not None and max(size) < TIMING_SIZE:
        return Choice("float32", f"image {size[1]}x{size[0]} px is smaller than the {TIMING_SIZE}-px timing: float32")
    report = report or machine()
    if report["gpu"] is None and not set(BF16_FLAGS) & set(report["flags"]):
        return Choice("float32", "this CPU has no AMX or AVX512-BF16, so bfloat16 is emulated there: float32")
    key = cache.key_digest({**report, **network_id(model, layers, weights)})
    entry = read_entries().get(key)
    if entry is not None:
        return Choice(entry["precision"], _why(entry["seconds"], report), entry["seconds"], cached=True)
    try:
        seconds = _interleaved(timer or functools.partial(time_step, model, layers, weights))
    except DreamvidError:  # an unknown model or layer is the user's error, not the timing's
        raise
    except Exception as e:  # noqa: BLE001 - the timing is an optimisation: float32 always works
        return Choice("float32", f"could not time the precisions ({type(e).__name__}: {str(e)[:120]}): float32")
    _store(key, {"precision": decide(seconds), "seconds": seconds, **network_id(model, layers, weights),
                 "cpu": report["cpu"], "gpu": report["gpu"],
                 "measured": datetime.datetime.now().isoformat(timespec="seconds")})
    return Choice(decide(seconds), _why(seconds, report), seconds)


def _why(seconds: dict[str, float], report: dict) -> str:
    reduced = "float16" if report["gpu"] else "bfloat16"
    ratio = seconds["float32"] / seconds["mixed"]
    where = report["gpu"] or report["cpu"]
    return (f"{reduced} step {ratio:.2f}x the speed of float32 on {where} "
            f"({seconds['mixed']:.3f} s vs {seconds['float32']:.3f} s at {TIMING_SIZE} px): {decide(seconds)}")


def _interleaved(timer: Callable[[str], float]) -> dict[str, float]:
    """Median seconds per step of each precision, the calls alternated (shared machines are noisy)."""
    import statistics

    order = ("float32", "mixed")
    for p in order:
        timer(p)  # warm-up: traces the step
    times: dict[str, list[float]] = {p: [] for p in order}
    for r in range(TIMING_STEPS):
        for p in order if r % 2 == 0 else order[::-1]:
            times[p].append(timer(p))
    return {p: round(statistics.median(v), 5) for p, v in times.items()}


def time_step(model: str, layers: Layers, weights: str | None, precision: str) -> float:
    """Seconds of one compiled step of this network at TIMING_SIZE px (the Dreamer that
    get_dreamer will hand out, so the winner's trace is not wasted)."""
    import tensorflow as tf

    from . import dream, models

    d = dream.get_dreamer(DreamSettings(model=model, layers=layers, weights=weights, precision=precision))
    side = max(TIMING_SIZE, d.min_size)
    x = tf.constant(models.pink_noise(side))
    edges = tf.constant([0, side], tf.int32)
    args = (x, tf.constant([3, -5], tf.int32), tf.constant(0.01, tf.float32), edges, edges,
            tf.ones([side, side, 1]), tf.constant(0.0))
    t = time.perf_counter()
    float(d._ascent_step(*args)[0])
    return time.perf_counter() - t


_memo: dict[tuple, Choice] = {}  # network -> choice, once per process


def resolve(s: DreamSettings, size: tuple[int, int] | None = None) -> DreamSettings:
    """`s` with precision "auto" replaced by what `choose` says (logged once per network);
    any other precision as it is."""
    if s.precision != "auto":
        return s
    if size is None and s.max_size is not None:
        size = (s.max_size, s.max_size)  # at most this: a small --max-size is a small image
    small = size is not None and max(size) < TIMING_SIZE
    memo_key = (s.model, tuple(s.targets()), s.weights, small)
    if memo_key not in _memo:
        _memo[memo_key] = c = choose(s.model, tuple(s.targets()), s.weights, size=size)
        # a new measurement is worth a line (it took seconds, once); the rest shows with --verbose
        log.log(logging.INFO if c.seconds and not c.cached else logging.DEBUG, "precision auto for %s: %s%s",
                s.model, c.reason, " (measured once, cached)" if c.seconds and not c.cached else "")
    return dataclasses.replace(s, precision=_memo[memo_key].precision)


def cached_choice(model: str, layers: Layers = (), weights: str | None = None) -> Choice | None:
    """What auto chose for this network on this machine, from the cache only (None: not measured
    yet); for `dreamvid doctor`, which times nothing."""
    report = machine()
    if report["gpu"] is None and not set(BF16_FLAGS) & set(report["flags"]):
        return choose(model, layers, weights, report=report)
    entry = read_entries().get(cache.key_digest({**report, **network_id(model, layers, weights)}))
    return None if entry is None else Choice(entry["precision"], _why(entry["seconds"], report),
                                             entry["seconds"], cached=True)


def pin(key: Any) -> Any:
    """A resume key (nested dicts and lists) with every settings dict's precision "auto"
    replaced by what it resolves to on this machine (after prepare() it is memoised: no timing)."""
    if isinstance(key, list):
        return [pin(v) for v in key]
    if not isinstance(key, dict):
        return key
    out = {k: pin(v) for k, v in key.items()}
    if out.get("precision") == "auto" and isinstance(out.get("model"), str):
        layers = out.get("layers") or ()
        layers = tuple(layers.items()) if isinstance(layers, dict) else tuple(tuple(x) for x in layers)
        s = DreamSettings(model=out["model"], layers=layers, weights=out.get("weights"), max_size=out.get("max_size"))
        out["precision"] = resolve(s).precision
    return out
