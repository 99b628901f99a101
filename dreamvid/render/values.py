"""A video's per-frame values: numbers, or expressions of t, f, fps, duration and the clip's
own soundtrack (issue 15): `dreamvid video clip.mp4 --step "0.01+0.02*onset" --blend "0.9-0.3*bass"`.

settings.EXPRESSION_KEYS["video"] names what may be an expression: dream.step and
dream.iterations (the full dream of a shot's first frame), video.blend and
video.frame_iterations (every later frame); so may each layer weight
(`--layer "block4c_out:0.5+0.5*onset"`, `layers = { block4c_out = "1-0.5*onset" }`): the
network is then tapped at every entry with weight 1 and the weights are eased per frame
(dream.EasedMeanSquares, `signs`), so the step is traced once, as a zoom's keyframed layers.
They are parsed by expr.py and evaluated once, vectorised, at every frame time by
trajectory.Schedule, as a zoom's are; t is the frame's time in the source (index / fps), f
its index, duration the clip's length. The envelopes (rms, onset, bass, mid, treble:
media/audio.py) come from the clip's first audio track. Every frame's values are
range-checked when the render is planned, not an hour in.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from ..errors import InputError, SettingsError
from ..expr import AUDIO_NAMES, Expression, parse
from ..settings import EXPRESSION_KEYS, Settings, layer_expressions, validate, validate_video

INTEGER_KEYS = ("iterations", "frame_iterations")  # rounded half up, as a zoom keyframe's


class FrameValues:
    """The Settings of each source frame of a video render (the expressions evaluated)."""

    def __init__(self, settings: Settings, info, start: int, end: int):
        self.settings, self.fps, self.start = settings, float(info.fps), start
        expressions: dict[tuple[str, str], Expression] = {}
        for section, key in EXPRESSION_KEYS["video"]:
            value = getattr(getattr(settings, section), key)
            if isinstance(value, str):
                expressions[(section, key)] = parse(value, key)
        for name, text in layer_expressions(settings.dream.layers).items():
            expressions[("layers", name)] = parse(text, f"layers.{name}")
        # {(section, key): (end - start,) values}: plain arrays, so the plan pickles (a cluster's tasks);
        # ("layers", NAME): that entry's weight
        self.table: dict[tuple[str, str], np.ndarray] = {}
        self.signs: tuple[tuple[str, float], ...] | None = None  # with layer expressions: each entry's sign
        if not expressions:
            return
        from ..trajectory import Schedule

        audio = any(x.names & set(AUDIO_NAMES) for x in expressions.values())
        envelopes = _clip_envelopes(info, expressions.values()) if audio else {}
        schedule = Schedule(self.fps, info.n_frames / self.fps, envelopes, list(expressions.values()))
        for where, x in expressions.items():
            self.table[where] = np.array([schedule.value(x, i / self.fps) for i in range(start, end)])
        static = settings.dream.layers  # the expressions as text: validate() checks the weights of time apart
        for i in range(start, end):  # every frame's values, checked now
            s = self.at(i)
            try:
                validate(replace(s.dream, layers=static))
                validate_video(s.video)  # before frame_dream(), which names its value `iterations`
                validate(replace(s.frame_dream(), layers=static))
            except SettingsError as e:
                raise SettingsError(f"frame {i} (t = {i / self.fps:.2f} s): {e.message}", hint=e.hint) from None
        if any(section == "layers" for section, _ in self.table):
            self._refuse_silence(expressions)
            self.signs = self._signs(expressions)

    def _refuse_silence(self, expressions: dict) -> None:
        """SettingsError if every entry's weight is 0 at every frame (`--layer X:0*t`): the render
        would finish having dreamed nothing. A weight of time that is 0 at some frames is fine."""
        live = np.zeros(self.table[next(iter(self.table))].shape, bool)
        for name, w in self.settings.dream.targets():
            column = self.table.get(("layers", name))
            live |= (column != 0) if column is not None else (w != 0)
        if not live.any():
            texts = ", ".join(f"layers.{x.key.split('.', 1)[1]} = {x.text!r}" for (section, _), x in expressions.items()
                              if section == "layers")
            raise SettingsError(f"every layer weight is 0 at every frame ({texts}), so there is nothing to dream",
                                hint="give a layer a weight that is not 0 for some of the clip, "
                                     "e.g. --layer block4c_out:0.5+0.5*onset")

    def _signs(self, expressions: dict) -> tuple[tuple[str, float], ...]:
        """Each target's sign for the render (EasedMeanSquares: fixed, so the step is traced once);
        SettingsError naming the frame where a weight changes sign."""
        signs = {}
        for name, w in self.settings.dream.targets():
            column = self.table.get(("layers", name))
            if column is None:
                signs[name] = math.copysign(1.0, w)
                continue
            text = expressions[("layers", name)].text  # finite at every frame: Expression.at checked it
            nonzero = column[column != 0]
            sign = math.copysign(1.0, nonzero[0]) if nonzero.size else 1.0
            flips = np.flatnonzero(np.sign(column) == -sign)
            if flips.size:
                i = self.start + int(flips[0])
                raise SettingsError(f"frame {i} (t = {i / self.fps:.2f} s): layers.{name} = {text!r} changes sign "
                                    f"(from {nonzero[0]:.3g} to {column[flips[0]]:.3g})",
                                    hint="a layer weight keeps one sign through a render (0 is allowed), "
                                         "e.g. 0.5+0.5*sin(t); a negative one suppresses the layer throughout")
            signs[name] = sign
        return tuple(sorted(signs.items()))

    @property
    def expressive(self) -> bool:
        return bool(self.table)

    def at(self, index: int) -> Settings:
        """The Settings of source frame `index`."""
        if not self.table:
            return self.settings
        values: dict[str, dict[str, Any]] = {"dream": {}, "video": {}, "layers": {}}
        for (section, key), column in self.table.items():
            v = float(column[index - self.start])
            values[section][key] = int(np.floor(v + 0.5)) if key in INTEGER_KEYS else v
        s = self.settings
        if values["layers"]:
            values["dream"]["layers"] = tuple((n, values["layers"].get(n, w)) for n, w in s.dream.layers)
        return replace(s, dream=replace(s.dream, **values["dream"]), video=replace(s.video, **values["video"]))

    def rows(self, start: int, end: int) -> list[dict[str, Any]]:
        """Every frame's resolved values (OUTPUT.params.json)."""
        out = []
        for i in range(start, end):
            s = self.at(i)
            row = {"frame": i, "t": round(i / self.fps, 6), "step": s.dream.step, "iterations": s.dream.iterations,
                   "blend": s.video.blend, "frame_iterations": s.frame_dream().iterations}
            if self.signs is not None:
                row["layers"] = dict(s.dream.layers)
            out.append(row)
        return out


def _clip_envelopes(info, expressions) -> dict:
    """The envelopes of the clip's own soundtrack at its frame times; InputError without one."""
    from ..media.audio import envelopes, read_audio
    from ..trajectory import Envelope

    x = next(x for x in expressions if x.names & set(AUDIO_NAMES))
    names = ", ".join(sorted(x.names & set(AUDIO_NAMES)))
    hint = "give a number or an expression of t, f, fps and duration only, or a clip with a soundtrack"
    if not info.has_audio:
        raise InputError(f"{info.path.name} has no audio track, so {x.key} = {x.text!r} cannot use {names}",
                         hint=hint)
    try:
        samples, rate = read_audio(info.path)
    except InputError as e:
        raise InputError(f"{x.key} = {x.text!r} uses {names}, but {e.message}", hint=hint) from None
    times = np.arange(info.n_frames) / float(info.fps)
    return {k: Envelope(times, v) for k, v in envelopes(samples, rate, float(info.fps), info.n_frames).items()}
