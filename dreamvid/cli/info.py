"""`dreamvid models | layers | presets | doctor`: what can be dreamed with, and on what."""

import contextlib
import json
import sys
from typing import Annotated, Optional

import typer

from .common import handle_errors, import_tensorflow_quietly


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


def _table(*columns: str):
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for c in columns:
        table.add_column(c, overflow="fold")
    return table


def _print(renderable) -> None:
    from rich.console import Console

    Console(soft_wrap=False, width=140).print(renderable)


@models_app.callback()
@handle_errors
def models_list(ctx: typer.Context) -> None:
    """List every backbone: bundled (offline) or downloaded by Keras, and whether it is ready."""
    if ctx.invoked_subcommand:
        return
    from .. import models
    from ..settings import DEFAULT_MODEL

    table = _table("model", "weights", "ready", "look")
    for name, spec in models.MODELS.items():
        ready = "yes" if models.is_cached(spec) else "no (downloads on first use)"
        source = "bundled" if spec.source == "bundled" else "download"
        table.add_row(name + (" *" if name == DEFAULT_MODEL else ""), source, ready, spec.look)
    _print(table)
    typer.echo("* default. Your own network: --model PATH.keras. Local weights: --weights FILE.")


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
    table = _table("layer", f"output at {models.LISTING_SIZE} px (h, w, channels)", "default",
                   *(["channels (--layer NAME/CHANNEL)"] if channels else []))
    for name, shape in models.dreamable_layers(model):
        row = [name, " x ".join("?" if d is None else str(d) for d in shape), "*" if name in default else ""]
        if channels:
            row.append(f"{name}/0 .. {name}/{shape[-1] - 1}" if shape and shape[-1] else "?")
        table.add_row(*row)
    _print(table)
    spec = models.get_spec(model)
    if channels and spec.head:
        typer.echo("and the ImageNet classes: logits/0 .. logits/999, or --class NAME (`dreamvid classes`)")


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
    table = _table("index", "wordnet", "names")
    for i, w, n in found:
        table.add_row(str(i), w, n)
    _print(table)
    typer.echo(f'{len(found)} of {imagenet.N_CLASSES} classes. Dream one: --class "{found[0][2].split(", ")[0]}" '
               f"or --class {found[0][0]}")


@presets_app.callback()
@handle_errors
def presets_list(ctx: typer.Context) -> None:
    """List the bundled presets."""
    if ctx.invoked_subcommand:
        return
    from .. import presets

    table = _table("preset", "model", "description")
    for name in presets.available():
        data = presets.read(name)
        table.add_row(name, data.get("dream", {}).get("model", "(default)"), data.get("description", ""))
    _print(table)


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
        ("precision auto", _auto_line(r["precision_auto"])),
        ("model cache", f"{m['keras_cache']} ({len(m['cached_files'])} files; ready: "
                        f"{', '.join(m['downloadable_ready']) or 'no downloaded model'})"),
        ("bundled weights", "; ".join(f"{k}: {v}" for k, v in m["bundled"].items())),
        ("ffmpeg", r["ffmpeg"].get("error") or f"{r['ffmpeg']['version']} ({r['ffmpeg']['path']})"),
        ("extras", ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in r["extras"].items())),
    ]
    table = _table("", "")
    for k, v in rows:
        table.add_row(k, v)
    _print(table)


def _auto_line(a: dict) -> str:
    if a.get("error"):
        return a["error"]
    if a.get("precision") is None:
        return f"{a['model']}: not measured yet (the first dream with --precision auto measures it)"
    return f"{a['model']}: {a['precision']} ({a['reason']})"
