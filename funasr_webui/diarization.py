"""Who spoke when, offline: Resemblyzer's GE2E voice encoder embeds each sentence in 1.6 s windows, scikit-learn's
agglomerative clustering groups ~3 s pieces of them into voices, and the windows of a long sentence find where
its speaker changes inside it (the sentence is split there).

A post-pass over any engine's segments (see pipeline.transcribe): it needs only the audio and the segment times.
The encoder (17 MB of weights shipped inside the `resemblyzer` package) is loaded in a background thread at
the server's start-up and warmed up there, so neither the start-up nor the first request pays for it (see
`SpeakerLabeller`).
"""

from __future__ import annotations

import atexit
import functools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from .audio import SAMPLE_RATE
from .speakers import MAX_SPEAKERS, relabel_by_appearance, split_segment
from .transcript import Segment

log = logging.getLogger(__name__)

PIECE_S = 3.0  # sentences are clustered in parts of about this length
WINDOW_S = 1.6  # long sentences are scanned in windows of this length (the encoder's own input) ...
WINDOW_HOP_S = 0.8  # ... this far apart, for a change of speaker inside them
CHANGE_MARGIN = 0.08  # a window belongs to another voice when it is this much closer (cosine) to that voice's
CHANGE_WINDOWS = 2  # ... centroid, for at least this many windows in a row
# Average-linkage cosine distance under which two groups are one voice. GE2E on our shared clips: the same voice
# 0.86-0.95 cosine similarity (distance <= 0.14), different voices <= 0.79 (>= 0.21); 1.6 s windows are noisier.
DISTANCE_THRESHOLD = 0.28
# Clustering is quadratic in memory: past this many pieces, this many (spread over the whole file) are clustered
# and the rest join the nearest voice, so memory stays flat however long the recording is.
MAX_CLUSTERED = 1500
MIN_SPEAKER_SHARE = 0.04  # with `auto`, a "voice" with less of the speech than this joins its nearest neighbour
MIN_SPEAKER_S = 2.0  # ... or with less than this many seconds
FRAME_S = 0.01  # the encoder's mel frames
PARTIAL_FRAMES = round(WINDOW_S / FRAME_S)  # 160: the encoder's own 1.6 s input
PARTIAL_HOP = round(WINDOW_HOP_S / FRAME_S)
EMBEDDING_DIM = 256
BATCH = 64  # partials per forward pass
EXIT_WAIT_S = 60.0  # how long an exiting process waits for a model load in progress
TARGET_DBFS = -30.0  # the loudness the encoder was trained on (Resemblyzer's preprocess_wav uses it too)


class VoiceEncoder:
    """Resemblyzer's GE2E encoder fed our 16 kHz float audio directly (no resampling, no trimming of its own)."""

    def __init__(self, device: str = "cpu") -> None:
        from resemblyzer import VoiceEncoder as GE2E  # imports webrtcvad (webrtcvad-wheels) and librosa

        self.model = GE2E(device, verbose=False)
        self.device = device

    def partials(self, clips: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per clip: unit-length 256-dim embeddings of its WINDOW_S windows every WINDOW_HOP_S (the last one moved
        to end with the clip; a clip shorter than a window is padded with silence), and their start times."""
        import torch

        frames, owner, starts = [], [], []
        for i, clip in enumerate(clips):
            mel = mel_frames(normalize_loudness(clip))
            if len(mel) < PARTIAL_FRAMES:
                mel = np.pad(mel, ((0, PARTIAL_FRAMES - len(mel)), (0, 0)))
            first = list(range(0, len(mel) - PARTIAL_FRAMES + 1, PARTIAL_HOP))
            if first[-1] + PARTIAL_FRAMES < len(mel) - PARTIAL_HOP // 4:
                first.append(len(mel) - PARTIAL_FRAMES)  # cover the end too
            frames += [mel[s : s + PARTIAL_FRAMES] for s in first]
            owner += [i] * len(first)
            starts.append(np.array(first) * FRAME_S)
        out = []
        with torch.inference_mode():
            for b in range(0, len(frames), BATCH):
                batch = torch.from_numpy(np.stack(frames[b : b + BATCH])).to(self.device)
                out.append(self.model(batch).cpu().numpy())
        embeddings = _normalized(np.concatenate(out)) if out else np.zeros((0, EMBEDDING_DIM), np.float32)
        owners = np.array(owner)
        return [(embeddings[owners == i], starts[i]) for i in range(len(clips))]


N_FFT = 400  # 25 ms windows ...
HOP = 160  # ... every 10 ms
N_MELS = 40


def mel_frames(clip: np.ndarray) -> np.ndarray:
    """The encoder's input features, as Resemblyzer's wav_to_mel_spectrogram computes them (librosa's power mel
    spectrogram: centred, zero-padded Hann STFT, Slaney mel filters), in numpy. librosa's first call spends seconds
    in lazy set-up that holds the interpreter lock, stalling the server while the model warms up at start-up."""
    y = np.pad(clip.astype(np.float32), N_FFT // 2)
    n = 1 + (len(y) - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(y, (n, N_FFT), (y.strides[0] * HOP, y.strides[0]))
    power = np.abs(np.fft.rfft(frames * _hann(), axis=1)) ** 2
    return (power @ _mel_filters().T).astype(np.float32)


@functools.cache
def _hann() -> np.ndarray:
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)  # periodic


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    f = np.asarray(f, dtype=np.float64)
    log_step = np.log(6.4) / 27.0
    return np.where(f >= 1000.0, 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / log_step, 3.0 * f / 200.0)


def _mel_to_hz(m: np.ndarray) -> np.ndarray:
    log_step = np.log(6.4) / 27.0
    return np.where(m >= 15.0, 1000.0 * np.exp(log_step * (m - 15.0)), 200.0 * m / 3.0)


@functools.cache
def _mel_filters() -> np.ndarray:
    """(N_MELS, N_FFT // 2 + 1) triangular filters, Slaney-normalized (librosa.filters.mel's defaults)."""
    fft_hz = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(SAMPLE_RATE / 2), N_MELS + 2))
    ramps = edges[:, None] - fft_hz[None, :]
    widths = np.diff(edges)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    return weights * (2.0 / (edges[2:] - edges[:-2]))[:, None]


def normalize_loudness(clip: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(clip, dtype=np.float64)))) if clip.size else 0.0
    if rms < 1e-6:
        return clip.astype(np.float32)
    return (clip * (10 ** (TARGET_DBFS / 20) / rms)).astype(np.float32)


@dataclass
class Sentence:
    """One segment's windows: their embeddings and start times (seconds), and which piece each belongs to."""

    index: int  # into the segments
    start: float
    end: float
    windows: np.ndarray  # (n, 256)
    starts: np.ndarray  # (n,) absolute seconds
    piece_of: np.ndarray  # (n,) index into the pieces


def pieces_of(sentences: list[Sentence]) -> tuple[np.ndarray, np.ndarray]:
    """What is clustered: short sentences whole, longer ones in equal parts of about PIECE_S (a GE2E embedding
    of 1.6 s is too noisy to tell voices apart reliably; one of 3 s is not). Returns the pieces' embeddings (the
    mean of their windows) and durations; sets each sentence's `piece_of`."""
    embeddings, durations = [], []
    for s in sentences:
        d = s.end - s.start
        n = max(1, min(len(s.windows), round(d / PIECE_S)))
        centres = s.starts + WINDOW_S / 2
        part = np.minimum(((centres - s.start) / d * n).astype(int), n - 1) if d > 0 else np.zeros(len(centres), int)
        s.piece_of = np.zeros(len(part), dtype=int)
        for k in range(n):
            chosen = part == k
            if not chosen.any():  # more parts than windows reach: the nearest window stands for it
                chosen = np.arange(len(part)) == min(len(part) - 1, k)
            s.piece_of[chosen] = len(embeddings)
            embeddings.append(s.windows[chosen].mean(axis=0))
            durations.append(d / n)
    return _normalized(np.stack(embeddings)), np.array(durations)


def cluster(embeddings: np.ndarray, weights: np.ndarray, speakers: int) -> tuple[np.ndarray, np.ndarray]:
    """A voice index per embedding, and each voice's centroid. speakers = N: exactly N voices (fewer only when
    there are fewer pieces); 0: as many as the distance threshold finds, at most MAX_SPEAKERS, voices with
    too little speech merged into their nearest."""
    n = len(embeddings)
    if n == 1:
        return np.zeros(1, dtype=int), embeddings[:1]
    from sklearn.cluster import AgglomerativeClustering

    sample = np.arange(n)
    if n > MAX_CLUSTERED:  # the longest pieces, spread over the file, in their order
        sample = np.sort(np.argsort(-weights, kind="stable")[:MAX_CLUSTERED])
    points = embeddings[sample]
    if speakers:
        model = AgglomerativeClustering(n_clusters=min(speakers, len(points)), metric="cosine", linkage="average")
    else:
        model = AgglomerativeClustering(
            n_clusters=None, distance_threshold=DISTANCE_THRESHOLD, metric="cosine", linkage="average"
        )
    labels = model.fit_predict(points)
    centroids = _centroids(points, labels)
    if not speakers:
        centroids = _merge_small(centroids, labels, weights[sample])
        while len(centroids) > MAX_SPEAKERS:  # the two closest voices become one
            sim = centroids @ centroids.T
            np.fill_diagonal(sim, -2)
            a, b = np.unravel_index(int(np.argmax(sim)), sim.shape)
            centroids = _normalized(np.delete(np.vstack([centroids, centroids[a] + centroids[b]]), [a, b], axis=0))
    labels = np.argmax(embeddings @ centroids.T, axis=1)  # every piece (sampled or not) to its nearest voice
    return labels, centroids


def _centroids(points: np.ndarray, labels: np.ndarray) -> np.ndarray:
    return _normalized(np.stack([points[labels == k].mean(axis=0) for k in range(labels.max() + 1)]))


def _normalized(m: np.ndarray) -> np.ndarray:
    return m / np.maximum(np.linalg.norm(m, axis=1, keepdims=True), 1e-9)


def _merge_small(centroids: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Drop voices with too little speech (a cough, a laugh, a noisy part); their pieces go to the nearest."""
    total = float(weights.sum())
    seconds = np.array([weights[labels == k].sum() for k in range(len(centroids))])
    keep = (seconds >= MIN_SPEAKER_S) & (seconds >= MIN_SPEAKER_SHARE * total)
    if not keep.any():
        keep[int(np.argmax(seconds))] = True
    return centroids[keep]


def voice_runs(s: Sentence, piece_voice: np.ndarray, centroids: np.ndarray) -> list[tuple[float, int]]:
    """(start time, voice) of each run of one voice within a sentence. A window takes another voice than its
    piece's when it is CHANGE_MARGIN closer to that voice, for CHANGE_WINDOWS windows in a row (one window of
    1.6 s is too noisy to trust alone); a change is placed between the last window of one voice and the first
    of the next."""
    prior = piece_voice[s.piece_of]
    voice = prior.copy()
    if len(s.windows) >= 3:
        sims = s.windows @ centroids.T
        best = np.argmax(sims, axis=1)
        rows = np.arange(len(best))
        changed = sims[rows, best] - sims[rows, prior] >= CHANGE_MARGIN
        voice = np.where(changed, best, prior)
        k = 0
        while k < len(voice):  # short runs that differ from their pieces go back
            end = k
            while end + 1 < len(voice) and voice[end + 1] == voice[k]:
                end += 1
            if end - k + 1 < CHANGE_WINDOWS and (voice[k : end + 1] != prior[k : end + 1]).any():
                voice[k : end + 1] = prior[k : end + 1]
            k = end + 1
    runs: list[tuple[float, int]] = []
    for k, v in enumerate(voice):
        if not runs or runs[-1][1] != v:
            at = s.start if not runs else (s.starts[k - 1] + WINDOW_S + s.starts[k]) / 2
            runs.append((float(min(max(at, s.start), s.end)), int(v)))
    return runs


class Diarizer:
    """Speaker labels for a transcript's segments, from the audio."""

    def __init__(self, encoder: VoiceEncoder) -> None:
        self.encoder = encoder

    def label(
        self, audio: np.ndarray, segments: list[Segment], speakers: int, between: Callable[[], None] | None = None
    ) -> list[Segment]:
        """`segments` with `speaker` set ("S1", "S2", ... in order of first appearance), a sentence whose speaker
        changes inside it split there; speakers: 0 = find how many, N = exactly N. `between` runs between
        batches of sentences (it raises to stop early)."""
        timed = [i for i, s in enumerate(segments) if s.end > s.start]
        sentences: list[Sentence] = []
        step = 100  # sentences embedded per call: bounded memory, and a point to stop at
        for b in range(0, len(timed), step):
            chunk = [segments[i] for i in timed[b : b + step]]
            clips = [audio[int(s.start * SAMPLE_RATE) : int(s.end * SAMPLE_RATE)] for s in chunk]
            for i, s, (windows, starts) in zip(timed[b : b + step], chunk, self.encoder.partials(clips), strict=True):
                sentences.append(Sentence(i, s.start, s.end, windows, starts + s.start, np.zeros(0, int)))
            if between is not None:
                between()
        if not sentences:
            return list(segments)
        embeddings, durations = pieces_of(sentences)
        piece_voice, centroids = cluster(embeddings, durations, speakers)
        runs = {s.index: voice_runs(s, piece_voice, centroids) for s in sentences}
        out: list[Segment] = []
        for i, seg in enumerate(segments):
            if i not in runs:  # no duration: the previous voice
                out.append(replace(seg, speaker=out[-1].speaker if out else ""))
                continue
            r = runs[i]
            out += split_segment(seg, [t for t, _ in r[1:]], [f"#{v}" for _, v in r])
        return relabel_by_appearance(out)


class SpeakerLabeller:
    """The diarizer, loaded and warmed up in a background thread: started by the server once its page is built
    (`start`, from the app's lifespan), by the CLI when it is asked for speakers (it knows its options before it
    loads anything), and in any case by the first request that needs it.

    Why a thread at start-up: loading the weights and the first forward pass take a few seconds (the first call
    pays a one-off warm-up), which would otherwise fall on the first request that asks for speakers; done before
    the port opens, it would delay every user, including those who never ask. A request that needs it before it
    is ready waits for it."""

    def __init__(self, device: str = "cpu", start: bool = True) -> None:
        self.device = device
        self._ready = threading.Event()
        self._diarizer: Diarizer | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._started = False
        if start:
            self.start()

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        thread = threading.Thread(target=self._load, name="speaker-model", daemon=True)
        thread.start()
        # A process that ends while the model is still loading waits for it: torch torn down under a running
        # thread aborts the process.
        atexit.register(thread.join, EXIT_WAIT_S)

    def _load(self) -> None:
        started = time.perf_counter()
        try:
            encoder = VoiceEncoder(self.device)
            encoder.partials([np.full(SAMPLE_RATE * 2, 1e-3, dtype=np.float32)])  # the one-off warm-up
            self._diarizer = Diarizer(encoder)
            log.info("speaker model (Resemblyzer GE2E) ready in %.1f s", time.perf_counter() - started)
        except BaseException as e:  # reported to the request that needs it
            log.error("speaker model could not be loaded: %s", e)
            self._error = e
        finally:
            self._ready.set()

    def get(self) -> Diarizer:
        self.start()
        self._ready.wait()
        if self._diarizer is None:
            raise RuntimeError(f"the speaker model could not be loaded: {self._error}")
        return self._diarizer

    def label(
        self, audio: np.ndarray, segments: list[Segment], speakers: int, between: Callable[[], None] | None = None
    ) -> list[Segment]:
        return self.get().label(audio, segments, speakers, between)
