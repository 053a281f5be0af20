"""Spectral distances: a paired mel-spectrogram distance and an unpaired audio-feature distance.

- :func:`mel_distance` compares two clips that should sound alike moment by moment, e.g. a model's
  continuation of a real prompt and the real continuation: the mean absolute difference of their log-mel
  spectrograms in dB, averaged over three STFT resolutions (2048/512/128 bins of 128/64/32 mels), after both clips
  are scaled to the same RMS (so that a level offset is not counted). 0 for identical clips; grows with noise.
- :func:`feature_distance` compares two *sets* of clips by their average timbre and harmony, as the music-LoRA
  work this project starts from did: the cosine distance between the mean feature vectors of the two sets, where
  a clip's feature vector holds the frame means of 20 MFCCs, 12 chroma bins, spectral centroid, bandwidth,
  roll-off, flatness, zero-crossing rate and RMS (:data:`FEATURE_NAMES`). Each feature is divided by its spread
  over the reference set first (unitless), so that the centroid in Hz does not drown out everything else.

Everything runs on numpy/torch (no numba JIT start-up), on mono audio at any sample rate.
"""

from __future__ import annotations

import typing as tp

import numpy as np

MEL_RESOLUTIONS: tp.Tuple[tp.Tuple[int, int, int], ...] = ((2048, 512, 128), (1024, 256, 64), (512, 128, 32))
TOP_DB = 80.0
N_MFCC = 20
FEATURE_NAMES: tp.Tuple[str, ...] = (tuple(f"mfcc{i}" for i in range(1, N_MFCC + 1))
                                     + ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
                                     + ("centroid", "bandwidth", "rolloff", "flatness", "zcr", "rms"))


def _power_spectrogram(audio: np.ndarray, n_fft: int, hop: int):
    import torch

    x = torch.as_tensor(np.asarray(audio, dtype=np.float32))
    if x.numel() < n_fft:
        x = torch.nn.functional.pad(x, (0, n_fft - x.numel()))
    spec = torch.stft(x, n_fft=n_fft, hop_length=hop, window=torch.hann_window(n_fft), center=True,
                      return_complex=True)
    return spec.abs().double() ** 2  # [freq, frames]


def log_mel(audio: np.ndarray, sample_rate: int, n_fft: int = 2048, hop: int = 512, n_mels: int = 128):
    """Mel power spectrogram in dB, [n_mels, frames] (float64 torch tensor)."""
    import torch
    import torchaudio.functional as AF

    power = _power_spectrogram(audio, n_fft, hop)
    fb = AF.melscale_fbanks(n_fft // 2 + 1, 0.0, sample_rate / 2.0, n_mels, sample_rate, norm="slaney",
                            mel_scale="slaney").double()
    mel = fb.T @ power
    return 10.0 * torch.log10(torch.clamp(mel, min=1e-10))


def _check_audio(audio: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{what}: expected mono audio [samples], got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{what}: audio holds NaN or inf")
    return x


def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x * x)))
    return x / rms if rms > 0 else x


def mel_distance(a: np.ndarray, b: np.ndarray, sample_rate: int, match_loudness: bool = True,
                 resolutions: tp.Sequence[tp.Tuple[int, int, int]] = MEL_RESOLUTIONS) -> float:
    """Mean absolute log-mel difference (dB) between clips ``a`` and ``b`` [samples], averaged over resolutions.

    Clips of different lengths are compared over the shorter one. Both spectrograms are floored at ``TOP_DB``
    (80 dB) below the louder clip's peak, so near-silence does not dominate.
    """
    a = _check_audio(a, "mel_distance a")
    b = _check_audio(b, "mel_distance b")
    n = min(a.size, b.size)
    a, b = a[:n], b[:n]
    if match_loudness:
        a, b = _unit_rms(a), _unit_rms(b)
    distances = []
    for n_fft, hop, n_mels in resolutions:
        ma = log_mel(a, sample_rate, n_fft, hop, n_mels)
        mb = log_mel(b, sample_rate, n_fft, hop, n_mels)
        floor = max(float(ma.max()), float(mb.max())) - TOP_DB
        distances.append(float((ma.clamp(min=floor) - mb.clamp(min=floor)).abs().mean()))
    return float(np.mean(distances))


def audio_features(audio: np.ndarray, sample_rate: int, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    """A clip's feature vector (frame means of :data:`FEATURE_NAMES`), [len(FEATURE_NAMES)] float64."""
    import torch
    import torchaudio.functional as AF

    x = _check_audio(audio, "audio_features")
    power = _power_spectrogram(x, n_fft, hop)  # [F, T]
    freqs = torch.linspace(0, sample_rate / 2.0, n_fft // 2 + 1, dtype=torch.float64)
    eps = 1e-10
    # MFCC: DCT-II of the log mel spectrogram (as librosa: 128 mels, dB, orthonormal DCT)
    fb = AF.melscale_fbanks(n_fft // 2 + 1, 0.0, sample_rate / 2.0, 128, sample_rate, norm="slaney",
                            mel_scale="slaney").double()
    mel_db = 10.0 * torch.log10(torch.clamp(fb.T @ power, min=eps))
    mel_db = torch.maximum(mel_db, mel_db.max() - TOP_DB)
    dct = AF.create_dct(N_MFCC, 128, norm="ortho").double()  # [n_mels, n_mfcc]
    mfcc = (dct.T @ mel_db).mean(dim=1)
    # chroma: spectral power folded onto the 12 pitch classes (nearest semitone), normalised per frame
    valid = freqs > 27.5
    pitch_class = (torch.round(69 + 12 * torch.log2(freqs[valid] / 440.0)).long() % 12)
    chroma = torch.zeros(12, power.shape[1], dtype=torch.float64).index_add_(0, pitch_class, power[valid])
    chroma = (chroma / chroma.max(dim=0, keepdim=True).values.clamp(min=eps)).mean(dim=1)
    total = power.sum(dim=0).clamp(min=eps)
    centroid = (freqs[:, None] * power).sum(0) / total
    bandwidth = torch.sqrt(((freqs[:, None] - centroid[None]) ** 2 * power).sum(0) / total)
    cumulative = torch.cumsum(power, dim=0)
    rolloff = freqs[torch.searchsorted(cumulative.T.contiguous(), (0.85 * cumulative[-1])[:, None]).clamp(
        max=len(freqs) - 1).squeeze(1)]
    flatness = torch.exp(torch.log(power + eps).mean(0)) / (power.mean(0) + eps)
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(x, n_fft // 2), n_fft)[::hop]
    zcr = np.mean(np.abs(np.diff(np.signbit(frames), axis=1)), axis=1)
    rms = np.sqrt(np.mean(frames ** 2, axis=1))
    scalars = [float(v.mean()) for v in (centroid, bandwidth, rolloff, flatness)] + [float(zcr.mean()),
                                                                                     float(rms.mean())]
    return np.concatenate([mfcc.numpy(), chroma.numpy(), np.array(scalars)])


def feature_distance(generated: np.ndarray, reference: np.ndarray, scale: str = "reference_std") -> float:
    """Cosine distance (1 - cosine similarity) between the mean feature vectors of two sets of clips.

    ``generated`` [N, F] and ``reference`` [M, F] are :func:`audio_features` rows. ``scale``: ``reference_std``
    divides every feature by its standard deviation over the reference clips (features with none are dropped);
    ``none`` compares raw means (dominated by the features with the largest units). In [0, 2]; 0 when the
    two mean vectors point the same way.
    """
    g = np.atleast_2d(np.asarray(generated, dtype=np.float64))
    r = np.atleast_2d(np.asarray(reference, dtype=np.float64))
    if g.shape[1] != r.shape[1]:
        raise ValueError(f"feature vectors differ in length: {g.shape[1]} vs {r.shape[1]}")
    if scale == "reference_std":
        if r.shape[0] < 2:
            raise ValueError("scale='reference_std' needs at least 2 reference clips (or use scale='none')")
        std = r.std(axis=0, ddof=1)
        keep = std > 0
        g, r = g[:, keep] / std[keep], r[:, keep] / std[keep]
    elif scale != "none":
        raise ValueError(f"scale={scale!r}: use 'reference_std' or 'none'")
    mg, mr = g.mean(axis=0), r.mean(axis=0)
    denom = float(np.linalg.norm(mg) * np.linalg.norm(mr))
    if denom == 0.0:
        raise ValueError("feature_distance: a mean feature vector is zero (silent clips?)")
    distance = 1.0 - float(mg @ mr) / denom
    return 0.0 if distance < 1e-12 else float(min(distance, 2.0))  # round-off of identical means -> 0
