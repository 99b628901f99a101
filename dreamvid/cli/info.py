"""`dreamvid models | layers | presets | doctor`: what can be dreamed with, and on what."""

import contextlib
import json
import sys
from typing import Annotated, Optional

import typer

from .common import handle_errors, import_tensorflow_quietly
from .listing import echo_table, paragraph


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
    app.command("layers")(layers)
    app.command("classes")(classes)
    app.add_typer(presets_app, name="presets")
    app.command("doctor")(doctor)


models_app = typer.Typer(help="List the backbones; `models fetch NAME` downloads one ahead of use.",
                         invoke_without_command=True, no_args_is_help=False)
presets_app = typer.Typer(help="List the presets; `presets show NAME` prints one, resolved.",
                          invoke_without_command=True, no_args_is_help=False)


@models_app.callback()
@handle_errors
def models_list(ctx: typer.Context) -> None:
    """List every backbone: bundled (offline) or downloaded by Keras, and whether it is ready."""
    if ctx.invoked_subcommand:
        return
    from .. import models
    from ..settings import DEFAULT_MODEL

    rows = []
    for name, spec in models.MODELS.items():
        source = "bundled" if spec.source == "bundled" else "download"
        rows.append((name + (" *" if name == DEFAULT_MODEL else ""), source,
                     "yes" if models.is_cached(spec) else "no", spec.look))
    echo_table(("model", "weights", "ready", "look"), rows)
    typer.echo(paragraph("* default. ready no: the weights download on first use (`dreamvid models fetch NAME` "
                         "ahead). Your own network: --model PATH.keras. Local weights: --weights FILE."))


@models_app.command("fetch")
@handle_errors
def models_fetch(name: Annotated[str, typer.Argument(help="A downloadable model, e.g. inception_v3.")]) -> None:
    """Download a model's ImageNet weights into the Keras cache now."""
    from .. import models

    import_tensorflow_quietly()
    with contextlib.redirect_stdout(sys.stderr):  # Keras's "Downloading data from ..." is progress, not a result
        path = models.fetch(name)
    typer.echo(str(path))


@handle_errors
def layers(model: Annotated[str, typer.Argument(help="Model name or .keras file.")],
           channels: Annotated[bool, typer.Option("--channels", help="Also list each layer's channels, as "
                                                                       "--layer NAME/CHANNEL names them.")] = False
           ) -> None:
    """List a model's dreamable layers with output shapes (at 224 px input); * marks the default."""
    from .. import models

    if models.is_user_model(model):  # a registered model's layers are a table: no TensorFlow
        import_tensorflow_quietly()
    default = {n for n, _ in models.default_layers(model)}
    rows = []
    for name, shape in models.dreamable_layers(model):
        row = [name, " x ".join("?" if d is None else str(d) for d in shape), "*" if name in default else ""]
        if channels:
            row.append(f"0 .. {shape[-1] - 1}" if shape and shape[-1] else "?")
        rows.append(row)
    echo_table(("layer", f"h x w x channels at {models.LISTING_SIZE} px", "default",
                *(["channels"] if channels else [])), rows)
    if channels:
        last = rows[-1][0] if rows else "LAYER"
        typer.echo(paragraph(f"One channel: --layer NAME/CHANNEL, e.g. --layer {last}/0."
                             + (" And the ImageNet classes: logits/0 .. logits/999, or --class NAME "
                                "(`dreamvid classes`)." if models.get_spec(model).head else "")))


@handle_errors
def classes(model: Annotated[Optional[str], typer.Argument(help="Model (default: the default model).")] = None,
            search: Annotated[Optional[str], typer.Option("--search", "-s", help="Only classes whose names "
                                                                                 "contain these words.")] = None,
            as_json: Annotated[bool, typer.Option("--json", help="Print the classes as JSON.")] = False) -> None:
    """List the ImageNet classes a model can dream with --class (index, WordNet id, names)."""
    from .. import models
    from ..errors import ModelError
    from ..models import classes as imagenet
    from ..settings import DEFAULT_MODEL

    name = model or DEFAULT_MODEL
    if not models.get_spec(name).head:
        raise ModelError(f"{name} has no ImageNet classifier, so it has no classes to dream",
                         hint=f"models with one: {', '.join(models.models_with_classes())}")
    found = imagenet.search(search)
    if as_json:
        typer.echo(json.dumps([{"index": i, "wordnet": w, "names": n.split(", ")} for i, w, n in found], indent=1))
        return
    if not found:
        near = imagenet.nearest(search or "")
        typer.echo(f"no class name contains {search!r}" + (f"; close: {', '.join(near)}" if near else ""))
        raise typer.Exit(1)
    echo_table(("index", "wordnet", "names"), [(str(i), w, n) for i, w, n in found])
    typer.echo(paragraph(f'{len(found)} of {imagenet.N_CLASSES} classes. Dream one: '
                         f'--class "{found[0][2].split(", ")[0]}" or --class {found[0][0]}'))


@presets_app.callback()
@handle_errors
def presets_list(ctx: typer.Context) -> None:
    """List the bundled presets."""
    if ctx.invoked_subcommand:
        return
    from .. import presets

    rows = []
    for name in presets.available():
        data = presets.read(name)
        rows.append((name, data.get("dream", {}).get("model", "(default)"), data.get("description", "")))
    echo_table(("preset", "model", "description"), rows)


@presets_app.command("show")
@handle_errors
def presets_show(name: Annotated[str, typer.Argument(help="Preset name or .toml file.")]) -> None:
    """Print a preset as TOML with every value resolved (defaults filled in)."""
    from .. import presets

    typer.echo(presets.to_toml(presets.resolve(name), presets.read(name).get("description")), nl=False)


@handle_errors
def doctor(as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False) -> None:
    """What this machine gives dreamvid (CPU features, TensorFlow, GPUs, model cache, ffmpeg, extras): paste it
    into a bug report."""
    from .. import doctor as checks

    from .. import backends

    if backends.installed("tensorflow"):
        import_tensorflow_quietly()
    r = checks.report()
    if as_json:
        typer.echo(json.dumps(r, indent=2))
        return
    tf, c, m = r["tensorflow"], r["cpu"], r["models"]
    gpus = ", ".join(f"{g['name']} (compute {g['compute_capability']})" for g in tf.get("gpus", [])) or "none"
    rows = [
        ("dreamvid", f"{r['dreamvid']} on Python {r['python']}, {r['platform']}"),
        ("CPU", f"{c['model']}, {c['cores']} cores; {' '.join(c['flags']) or 'no AVX2'}"),
        ("TensorFlow", tf.get("error") or f"{tf['version']}, oneDNN {'on' if tf['onednn'] else 'off'}, "
                                         f"{'CUDA build' if tf['cuda_build'] else 'CPU build'}"),
        ("GPUs", gpus),
        ("PyTorch", _torch_line(r["torch"])),
        ("auto", _auto_line(r["auto"])),
        ("model cache", f"{m['keras_cache']} ({len(m['cached_files'])} files; ready: "
                        f"{', '.join(m['downloadable_ready']) or 'no downloaded model'})"),
        ("bundled weights", "; ".join(f"{k}: {v}" for k, v in m["bundled"].items())),
        ("ffmpeg", r["ffmpeg"].get("error") or f"{r['ffmpeg']['version']} ({r['ffmpeg']['path']})"),
        ("extras", ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in r["extras"].items())),
    ]
    echo_table(None, rows)


def _auto_line(a: dict) -> str:
    if a.get("error"):
        return a["error"]
    if a.get("precision") is None:
        return f"{a['model']}: not measured yet (the first dream with --backend/--precision auto measures it)"
    return f"{a['model']}: {a['backend']}, {a['precision']} ({a['reason']})"


def _torch_line(t: dict) -> str:
    if t.get("error"):
        return t["error"]
    where = t["gpu"] or f"CPU, {t['threads']} threads"
    return f"{t['version']} ({'CUDA ' + t['cuda_build'] if t['cuda_build'] else 'CPU build'}); dreams on {where}"
