"""Chunked overlap-add inference with bounded memory.

The input streams through in blocks: resampled to the model's rate, cut into overlapping chunks
that are windowed (triangular) and run through the model several at a time, overlap-added, and
resampled back. Chunks start every hop, except the last one, which is moved back to end exactly at
the input's end: it is full of real audio (no zero padding to skew a model's global statistics),
and the normalised overlap-add weighs its longer overlap like any other. Only an input shorter than
one chunk is a single shorter chunk. Only the samples still covered by a pending chunk are kept, so
memory does not grow with the input's length. Chunk positions and batch groups depend only on the
input's length, never on the read block size, so the result is bit-identical whatever the block size.
Music stem sets add up to the input at its own rate: what the stems miss there (the band above the
model's Nyquist frequency) goes to the accompaniment or ``other`` stem (:func:`remainder_stem`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch

from separate.audio import AudioInput, TrackWriter, resample_blocks, resampled_length
from separate.checks import check_finite, check_segment
from separate.consistency import mixture_consistency
from separate.errors import SeparateError
from separate.fastpath import FastPath, prepare
from separate.measures import hungarian
from separate.models.base import SeparationModel
from separate.refinement import refine
from separate.runtime import keep_large_blocks, select_device

DEFAULT_SEGMENT = 10.0

#: Delay between the passes of ``shifts`` (seconds at the model's rate): pass k sees each chunk
#: delayed by k times this. On 60 validation mixtures of the speech corpus, the two-speaker model
#: shipped then as speech-2spk-8k scored 2.36 dB SI-SNRi with one pass, 2.57 with passes 0.1 s apart
#: and 2.47 with 0.25 s (two passes).
SHIFT_SECONDS = 0.1


def chunk_start(index: int, chunk: int, hop: int, frames: int) -> int:
    """Where chunk ``index`` starts: every ``hop`` samples, the last one moved back to end at ``frames``."""
    return max(0, min(index * hop, frames - chunk))


def triangular_window(length: int) -> np.ndarray:
    """Weights 1, 2, ..., peak, ..., 2, 1 (never zero, so every sample is covered)."""
    rise = np.arange(1, length // 2 + 1, dtype=np.float32)
    fall = np.arange(length - length // 2, 0, -1, dtype=np.float32)
    return np.concatenate([rise, fall])


COMPLETE_STEM_SETS = ({"vocals", "accompaniment"}, {"drums", "bass", "other", "vocals"})

#: The stem of a complete music stem set that takes what the model cannot hear (see :func:`remainder_stem`).
REMAINDER_STEMS = ("accompaniment", "other")


def sources_add_up(model: SeparationModel) -> bool:
    """Whether the model's sources together make up its input (every speaker; a full stem set), so
    that :func:`mixture_consistency` applies by default."""
    names = list(model.sources)
    speakers = len(names) >= 2 and all(name[:1] == "s" and name[1:].isdigit() for name in names)
    return speakers or set(names) in COMPLETE_STEM_SETS


def remainder_stem(model: SeparationModel) -> str | None:
    """The stem that receives ``mix - sum(stems)`` at the input's rate, if the model has one.

    Mixture consistency gives this stem the whole residual of each chunk, and, when the model runs
    at a lower rate than its input, the band above the model's Nyquist frequency that it never sees
    (cymbals, hi-hats, air), so the stems add up to the full-band input as ``--two-stems``'
    ``no_vocals`` does. On the music test split this scores higher for both stems than sharing the
    residual equally. Speaker sets have no such stem: splitting a band the model never heard
    between talkers would only leak each one into the other.
    """
    names = set(model.sources)
    if names not in COMPLETE_STEM_SETS:
        return None
    return next(name for name in REMAINDER_STEMS if name in names)


class Separator:
    """Runs a separation model over audio of any length.

    Args:
        model: a :class:`SeparationModel` (``mix: [B, C, T] -> [B, S, C, T]``).
        device: ``auto | cpu | cuda | cuda:N``.
        segment: seconds per chunk (default: the model's ``default_segment``, else 10 s).
        overlap: fraction of a chunk shared with the next one, in [0, 1).
        batch_size: chunks per forward pass.
        half: run in float16 (CUDA only).
        consistency: make each chunk's stems add up to its mixture (:func:`mixture_consistency`)
            and, for music stem sets, give what remains at the input's rate to the remainder stem
            (:func:`remainder_stem`); None turns it on for models whose sources make up the input
            (:func:`sources_add_up`).
        path: how the forward pass runs (:class:`~separate.fastpath.FastPath`; default eager fp32).
            Resolve it with :func:`separate.fastpath.choose`, which falls back where it cannot run.
        refine: re-estimate each chunk's stems from the mixture's spectrogram
            (:func:`~separate.refinement.refine`: a multichannel Wiener filter for stereo input, ratio
            masks for mono), after consistency.
        shifts: passes per chunk, pass k on the chunk delayed by k * :data:`SHIFT_SECONDS`; their
            stems are realigned and averaged (:meth:`_forward`). Costs ``shifts`` times the time.
    """

    def __init__(
        self,
        model: SeparationModel,
        device: str = "auto",
        segment: float | None = None,
        overlap: float = 0.25,
        batch_size: int = 4,
        half: bool = False,
        consistency: bool | None = None,
        path: FastPath | None = None,
        refine: bool = False,
        shifts: int = 1,
    ) -> None:
        if not 0.0 <= overlap < 1.0:
            raise SeparateError(f"overlap must be in [0, 1), got {overlap}")
        if batch_size < 1:
            raise SeparateError(f"batch size must be at least 1, got {batch_size}")
        if not isinstance(shifts, int) or shifts < 1:
            raise SeparateError(f"shifts must be a whole number of at least 1, got {shifts}")
        check_segment(segment, overlap)
        self.device = select_device(device)
        if self.device.type == "cpu":
            keep_large_blocks()
        if half and self.device.type != "cuda":
            raise SeparateError("half precision needs a CUDA device")
        self.dtype = torch.float16 if half else torch.float32
        self.model = model.to(self.device, self.dtype).eval()
        self.segment = segment or model.default_segment or DEFAULT_SEGMENT
        self.overlap = overlap
        self.batch_size = batch_size
        self.consistency = sources_add_up(model) if consistency is None else consistency
        remainder = remainder_stem(model) if self.consistency else None
        self.remainder = None if remainder is None else self.sources.index(remainder)
        self.path = path or FastPath()
        self.refine = refine
        self.shifts = shifts
        self.run = (
            self.model
            if self.path.eager_fp32
            else prepare(self.model, self.path, self.device, batch_size, self.chunk_length)
        )

    @property
    def sources(self) -> list[str]:
        return list(self.model.sources)

    @property
    def max_channels(self) -> int:
        """Mono models fold channels into the batch; mono and stereo inputs are always accepted."""
        return max(2, self.model.audio_channels)

    @property
    def chunk_length(self) -> int:
        """Samples per chunk at the model's rate (an input shorter than that is one shorter chunk)."""
        return round(self.segment * self.model.sample_rate)

    @property
    def failure(self) -> str | None:
        """Why the runner fell back to eager fp32 (a failed ONNX export), if it did."""
        return getattr(self.run, "failure", None)

    def path_for(self, frames: int, sample_rate: int) -> str:
        """Label of the path that runs an input of ``frames`` samples at ``sample_rate``: the onnxruntime
        paths run an input shorter than one chunk, or a model whose export failed, eager fp32."""
        if self.path.backend != "onnxruntime":
            return self.path.label
        short = resampled_length(frames, sample_rate, self.model.sample_rate) < self.chunk_length
        return FastPath().label if short or self.failure is not None else self.path.label

    def plan(self, frames: int) -> tuple[int, int, int]:
        """(chunk length, hop, number of chunks) at the model's rate for an input of ``frames`` samples.

        Chunk ``i`` starts at ``min(i * hop, frames - chunk)`` (see :func:`chunk_start`): the last
        one ends exactly at the input's end, full of real audio, and overlaps its neighbour by more
        than the others when the hops do not divide the input. An input shorter than one chunk is
        a single chunk of its own length.
        """
        chunk = max(1, min(self.chunk_length, frames))
        if chunk >= frames:
            return frames, frames, 1
        hop = max(1, round(chunk * (1.0 - self.overlap)))
        return chunk, hop, math.ceil((frames - chunk) / hop) + 1

    def separate_tensor(self, mix: torch.Tensor, sample_rate: int) -> torch.Tensor:
        """mix: [C, T] at ``sample_rate`` -> stems [S, C, T] at the same rate (in memory)."""
        if mix.dim() != 2 or mix.shape[-1] == 0:
            raise SeparateError(
                f"expected a non-empty [channels, samples] tensor, got shape {tuple(mix.shape)}"
            )
        check_finite(mix, sample_rate)
        array = mix.detach().to("cpu", torch.float32).numpy()
        blocks = (array[:, start : start + (1 << 16)] for start in range(0, array.shape[1], 1 << 16))
        out = [stems for stems, _ in self.stream(blocks, sample_rate, array.shape[0], array.shape[1])]
        return torch.from_numpy(np.concatenate(out, axis=-1))

    def stream(
        self,
        blocks: Iterable[np.ndarray],
        sample_rate: int,
        channels: int,
        frames: int,
        progress: Callable[[float], None] | None = None,
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Separate ``[C, n]`` blocks totalling ``frames`` at ``sample_rate``.

        Yields ``(stems: [S, C, n], mixture: [C, n])``: each block of stems with the input span it
        came from.
        """
        if channels > self.max_channels:
            raise SeparateError(
                f"input has {channels} channels; this model takes at most {self.max_channels}"
            )
        mixture_queue: list[np.ndarray] = []

        def reading() -> Iterator[np.ndarray]:
            for block in blocks:
                mixture_queue.append(block)
                yield block

        rate = self.model.sample_rate
        model_frames = max(1, resampled_length(frames, sample_rate, rate))
        model_blocks = resample_blocks(reading(), sample_rate, rate, model_frames)
        stems = self._overlap_add(model_blocks, channels, model_frames, progress)
        n_stems = len(self.sources)
        flat = (block.reshape(n_stems * channels, -1) for block in stems)
        for block in resample_blocks(flat, rate, sample_rate, frames):
            block = block.reshape(n_stems, channels, -1)
            mixture = _take(mixture_queue, block.shape[-1])
            if self.remainder is not None:
                block[self.remainder] += mixture - block.sum(0)
            yield block, mixture

    def _overlap_add(
        self,
        blocks: Iterable[np.ndarray],
        channels: int,
        frames: int,
        progress: Callable[[float], None] | None,
    ) -> Iterator[np.ndarray]:
        chunk, hop, n_chunks = self.plan(frames)
        window = triangular_window(chunk) if n_chunks > 1 else np.ones(chunk, np.float32)
        n_stems = len(self.sources)
        pending = np.zeros((channels, 0), np.float32)  # input from absolute position `pending_start`
        pending_start = 0
        total = np.zeros((n_stems, channels, 0), np.float32)  # weighted sum from `emitted`
        weight = np.zeros(0, np.float32)
        emitted = 0
        received = 0
        next_chunk = 0
        previous: tuple[int, np.ndarray] | None = None  # (start, estimate) of the chunk before
        iterator = iter(blocks)
        exhausted = False
        while next_chunk < n_chunks:
            group = range(next_chunk, min(next_chunk + self.batch_size, n_chunks))
            starts = [chunk_start(index, chunk, hop, frames) for index in group]
            new_end = starts[-1] + chunk
            while received < new_end and not exhausted:
                block = next(iterator, None)
                if block is None:
                    exhausted = True
                    break
                pending = np.concatenate([pending, block], axis=1)
                received += block.shape[1]
            batch = np.zeros((len(group), channels, chunk), np.float32)
            for row, start in enumerate(starts):
                piece = pending[:, start - pending_start : start - pending_start + chunk]
                batch[row, :, : piece.shape[1]] = piece
            estimates = self._forward(batch)  # [b, S, C, chunk]
            grow = new_end - emitted - weight.shape[0]
            if grow > 0:
                total = np.concatenate([total, np.zeros((n_stems, channels, grow), np.float32)], axis=2)
                weight = np.concatenate([weight, np.zeros(grow, np.float32)])
            for row, start in enumerate(starts):
                estimate = estimates[row]
                if self.model.permutation_invariant and previous is not None:
                    shift = start - previous[0]  # the overlap is chunk - shift samples
                    order = _best_order(previous[1][:, :, shift:], estimate[:, :, : chunk - shift])
                    estimate = estimate[order]
                previous = (start, estimate) if n_chunks > 1 else None
                at = start - emitted
                total[:, :, at : at + chunk] += estimate * window
                weight[at : at + chunk] += window
            next_chunk = group[-1] + 1
            final = chunk_start(next_chunk, chunk, hop, frames) if next_chunk < n_chunks else frames
            ready = final - emitted
            yield total[:, :, :ready] / weight[:ready]
            total, weight = total[:, :, ready:], weight[ready:]
            emitted = final
            drop = min(final, pending_start + pending.shape[1]) - pending_start
            pending, pending_start = pending[:, drop:], pending_start + drop
            if progress is not None:
                progress(emitted / frames)

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """batch: [b, C, L] -> estimates [b, S, C, L], the mean over ``shifts`` delayed passes.

        Pass k runs on the chunk delayed by k * :data:`SHIFT_SECONDS` (zeros in front, the chunk's
        last samples left out), so every pass has the chunk's length. Its stems are moved back and
        cover all but those last samples; a permutation-invariant model's are put in the order of
        the first pass. Each pass's stems add up to the mixture, and so does their mean.
        """
        length = batch.shape[-1]
        first = self._pass(batch)
        step = round(SHIFT_SECONDS * self.model.sample_rate)
        delays = [k * step for k in range(1, self.shifts) if k * step < length]
        if not delays:
            return first
        total, count = first.copy(), np.ones(length, np.float32)
        for delay in delays:
            kept = length - delay
            delayed = np.zeros_like(batch)
            delayed[..., delay:] = batch[..., :kept]
            estimate = self._pass(delayed)[..., delay:]  # [b, S, C, kept]
            if self.model.permutation_invariant:
                for row, own in enumerate(estimate):
                    estimate[row] = own[_best_order(first[row, ..., :kept], own)]
            total[..., :kept] += estimate
            count[:kept] += 1
        return total / count

    def _pass(self, batch: np.ndarray) -> np.ndarray:
        """batch: [b, C, L] -> estimates [b, S, C, L], folding channels for mono models."""
        b, channels, length = batch.shape
        model_channels = self.model.audio_channels
        mix = torch.from_numpy(batch).to(self.device, self.dtype)
        with torch.inference_mode():
            if model_channels == channels:
                out = self.run(mix)
            elif model_channels == 1:
                out = self.run(mix.reshape(b * channels, 1, length))
                out = out.reshape(b, channels, -1, length).transpose(1, 2)
            elif channels == 1:
                out = self.run(mix.expand(b, model_channels, length)).mean(2, keepdim=True)
            else:
                raise SeparateError(f"input has {channels} channels; this model takes {model_channels}")
            out = out.to(self.device)
            if self.consistency:
                out = mixture_consistency(out.float(), mix.float(), remainder=self.remainder)
            if self.refine:
                out = refine(out.float(), mix.float(), self.model.sample_rate)
        return out.float().cpu().numpy()

    def separate_file(
        self,
        audio: AudioInput,
        outputs: dict[str, str],
        fmt: str,
        subtype: str,
        progress: Callable[[float], None] | None = None,
        clip_mode: str = "rescale",
    ) -> dict[str, Any]:
        """Separate ``audio`` and write the stems named in ``outputs`` (stem -> path or ``-``).

        A stem ``no_X`` is the mixture minus stem ``X`` (``--two-stems``). All files are written
        under temporary names and renamed only when every stem is complete; on any failure no
        output is left behind. ``clip_mode``: see :class:`separate.audio.TrackWriter`.
        """
        unknown = [name for name in outputs if _base_stem(name) not in self.sources]
        if unknown:
            raise SeparateError(
                f"unknown stem(s) {', '.join(unknown)}; this model has {', '.join(self.sources)}"
            )
        index = {name: self.sources.index(_base_stem(name)) for name in outputs}
        with TrackWriter(outputs, audio.sample_rate, audio.channels, fmt, subtype, clip_mode) as track:
            for block, mixture in self.stream(
                audio.blocks(), audio.sample_rate, audio.channels, audio.frames, progress
            ):
                for name in outputs:
                    stem = block[index[name]]
                    track.write(name, mixture - stem if name.startswith("no_") else stem)
            track.commit()
        return {
            "input": str(audio.path),
            "track": audio.name,
            "outputs": outputs,
            "levels": track.levels,
            "path": self.path_for(audio.frames, audio.sample_rate),
        }


def _base_stem(name: str) -> str:
    return name[3:] if name.startswith("no_") else name


def _take(queue: list[np.ndarray], frames: int) -> np.ndarray:
    """Pop exactly ``frames`` samples from the front of a queue of ``[C, n]`` blocks."""
    taken, count = [], 0
    while count < frames:
        block = queue[0]
        need = frames - count
        if block.shape[1] <= need:
            taken.append(queue.pop(0))
            count += block.shape[1]
        else:
            taken.append(block[:, :need])
            queue[0] = block[:, need:]
            count = frames
    return np.concatenate(taken, axis=1)


def _best_order(previous: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Order of ``current``'s sources that best matches ``previous`` on the shared overlap.

    previous, current: [S, C, n] -> indices [S] (cosine similarity, Hungarian assignment).
    """
    a = previous.reshape(previous.shape[0], -1).astype(np.float64)
    b = current.reshape(current.shape[0], -1).astype(np.float64)
    a /= np.linalg.norm(a, axis=1, keepdims=True) + 1e-8
    b /= np.linalg.norm(b, axis=1, keepdims=True) + 1e-8
    return hungarian(-(a @ b.T))
