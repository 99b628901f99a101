"""The GPU check's tables, made from gpu-latest.json alone (never typed by hand), and the
README block between the bench-gpu markers. Standard library only."""
from __future__ import annotations

from . import report

README_START = "<!-- bench-gpu:start (written by `make gpu-check`; do not edit by hand) -->"
README_END = "<!-- bench-gpu:end -->"


def _gb(mb) -> str:
    return "?" if mb is None else f"{mb / 1024:.2f} GB"


def _pct(x) -> str:
    return "?" if x is None else f"{100 * x:.1f}%"


def _rate(gflops: float) -> str:
    """GFLOP/s with three significant figures at most, whole above 1000 (a CPU's 4.1, a GPU's 21880)."""
    return f"{gflops:.0f}" if gflops >= 1000 else f"{gflops:.3g}"


def _failed(item: dict) -> str | None:
    """'not measured: ...' for an item or row that was skipped or failed, else None."""
    why = item.get("skipped") or item.get("error")
    return None if why is None else f"not measured: {why}"


NAMES = {"torch": "PyTorch", "tensorflow": "TensorFlow"}


def head(r: dict) -> str:
    """The sentence that says what, where and how it was measured."""
    dev = r.get("device", {})
    backend = r.get("backend") or "tensorflow"  # results written before issue 22 measured on TensorFlow
    fw = r.get("environment", {}).get(backend) or {}
    smi = (r.get("nvidia_smi") or [{}])[0]
    gpu = dev.get("kind") == "GPU"
    if gpu:
        where = (f"{dev['name']} ({(smi.get('memory_mib') or 0) / 1024:.0f} GiB, compute capability "
                 f"{dev.get('compute_capability') or '?'}, driver {smi.get('driver', '?')})")
    else:
        where = (f"the CPU ({dev.get('name', '?')}): a dry run of the code paths (`--allow-cpu`), "
                 "not GPU figures")
    m = r.get("machine", {})
    tf32 = f", TF32 {'on' if r.get('tf32') else 'off'}" if gpu else ""
    built = (f" built for CUDA {fw.get('cuda_version')}, cuDNN {fw.get('cudnn_version')}" if fw.get("cuda_version")
             else " (a build without CUDA)" if fw else "")
    text = (f"Measured {r['date']} at commit `{r['commit']}`{' (quick run: tiny sizes)' if r.get('quick') else ''} "
            f"on {where}, on the {NAMES.get(backend, backend)} backend: {NAMES.get(backend, backend)} "
            f"{fw.get('version', '?')}{built}{tf32}; host {m.get('cpu', '?')}, "
            f"{m.get('cores', '?')} cores, Python {m.get('python', '?')}. ")
    t = r.get("tests", {})
    text += (f"`gpu` tests: {t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped. " if "passed" in t
             else f"`gpu` tests: {_failed(t) or 'not run'}. ")
    p = r.get("peak")
    if p:
        rates = ", ".join(f"{'fp16/bf16' if k == 'fp16' else k} {p[k]:g}" for k in ("fp32", "tf32", "fp16") if p.get(k))
        text += f"Datasheet peaks (dense): {rates} TFLOP/s ({p['source']}). "
    elif gpu:
        text += "Peak unknown for this device (bench/peaks.toml). "
    mm = r.get("matmul", {})
    if "tflops" in mm:
        n = mm["n"]
        text += ("Measured ceiling, chained " + f"{n}x{n} matmuls: "
                 + ", ".join(f"{k} {v:g} TFLOP/s" for k, v in mm["tflops"].items()) + ". ")
    text += f"Memory: {r.get('memory_kind', '?')} per case. Whole check: {r.get('wall_seconds', 0) / 60:.1f} min."
    return text


def _share(row: dict) -> str:
    shares = row.get("share_of_peak")
    if not shares:
        return "peak unknown"
    return ", ".join(f"{_pct(v)} of {'fp16/bf16' if k == 'fp16' else k}" for k, v in shares.items())


def step_lines(r: dict) -> list[str]:
    s = r.get("steps", {})
    if "rows" not in s:
        return [f"Steps: {_failed(s) or 'not measured'}."]
    md = ["| step: model (layer) | size | precision | s/step | GFLOP | GFLOP/s | share of peak | peak memory |",
          "|---|---|---|---|---|---|---|---|"]
    notes = {}
    for row in s["rows"]:
        if _failed(row):
            md.append(f"| {row['model']} | {row['size']} | | {_failed(row)} | | | | |")
            continue
        mark = ""
        if row.get("weights"):
            notes.setdefault(row["weights"], "*" * (len(notes) + 1))
            mark = notes[row["weights"]]
        md.append(f"| {row['model']}{mark} ({row['layer']}) | {row['size']} | {row['precision']} "
                  f"({row['compute_dtype']}) | {row['seconds_per_step']:.4f} | {row['gflop_per_step']} | "
                  f"{_rate(row['gflops'])} | {_share(row)} | {_gb(row['peak_memory_mb'])} |")
    md += ["", "GFLOP per step: twice the forward pass's convolution FLOPs, counted from the folded network's config."]
    md += [f"{mark} {note}." for note, mark in notes.items()]
    return md


def video_lines(r: dict) -> list[str]:
    v = r.get("video", {})
    if "rows" not in v:
        return [f"Video: {_failed(v) or 'not measured'}."]
    st = v["settings"]
    md = [f"`render_video`, preset `{v['preset']}` ({st['iterations']} iterations x {st['num_octave']} octaves on the "
          f"first frame, then {st['frame_iterations']} x {st['frame_num_octave']}; flow {st['flow']}), {v['clip']}. "
          "Stages alone, ms per frame: decode and flow share the prefetch thread, carry and hold and the dream run "
          "in the main thread, PNG in the writer thread, all at once; the final encode follows the loop.", "",
          "| video | dreamed on | frames | frames/s end to end | s/frame after the first | decode | flow "
          "| carry and hold | dream | PNG | encode | limited by | GPU idle after the first frame / whole render "
          "| peak memory |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in v["rows"]:
        if _failed(row):
            md.append(f"| {row['size']} | | {row['frames']} | {_failed(row)} | | | | | | | | | | |")
            continue
        ms = {k: f"{1000 * x:.0f}" for k, x in row["stage_seconds_per_frame"].items()}
        idle = row["gpu_idle_share"]
        how = "nvidia-smi" if idle["source"].startswith("nvidia-smi") else "derived"
        after = row["seconds_per_frame_after_first"]
        md.append(f"| {row['size']} | {row.get('dreamed_on', '?')} | {row['frames']} | {row['fps_end_to_end']:.2f} | "
                  f"{'?' if after is None else f'{after:.3f}'} | {ms['decode']} | {ms['flow']} | "
                  f"{ms.get('carry_hold', '?')} | {ms['dream']} | {ms['png']} | {ms['encode']} | "
                  f"{row['limited_by'].replace('carry_hold', 'carry and hold')} | "
                  f"{_pct(idle['after_first_frame'])} / {_pct(idle['whole_render'])} ({how}) | "
                  f"{_gb(row['peak_memory_mb'])} |")
    return md


def other_lines(r: dict) -> list[str]:
    md = ["| item | measured |", "|---|---|"]
    s = r.get("still", {})
    if _failed(s) or not s:
        md.append(f"| 4K still | {_failed(s) or 'not measured'} |")
    else:
        md.append(f"| still {s['size']}, preset `{s['preset']}` ({s['num_octave']} octaves x {s['iterations']}), "
                  f"{s.get('dreamed_on', '?')} | {s['seconds']:.2f} s, {s['steps']} steps, {s['seconds_per_step']:.3f} s/step; "
                  f"{s['tiles_at_full_size']} tiles of {s['tile']} px at full size, {s['tile_batch']} per call; "
                  f"peak memory {_gb(s['peak_memory_mb'])} |")
    b = r.get("tile_batch", {})
    if _failed(b) or not b:
        md.append(f"| tile batch | {_failed(b) or 'not measured'} |")
    else:
        rows = "; ".join(f"{x['tile_batch']}: {x['tiles_per_call']} per call, {x['seconds_per_step']:.3f} s/step, "
                         f"{_gb(x['peak_memory_mb'])}" for x in b["rows"])
        md.append(f"| tile batch 1 vs auto, {b['size']} full-size step ({b['tiles']} tiles of {b['tile']} px) | "
                  f"{rows}: {b['speedup']:.2f}x |")
    return md


def summary(r: dict) -> list[str]:
    """The README block: the head sentence and the tables."""
    return [head(r), "", *step_lines(r), "", *video_lines(r), "", *other_lines(r)]


def write_readme(path, r: dict) -> bool:
    """The summary between the README's bench-gpu markers; False if the file has none."""
    return report.write_between(path, README_START, README_END, summary(r))
