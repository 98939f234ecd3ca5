"""How the synthetic sites scan: tissue and tumour signal per modality, each site's acquisition,
its per-case jitter, and image formation.

Tissue signals per modality follow clinical contrast (T1: WM > GM > CSF; T2: CSF bright; FLAIR:
CSF dark, edema bright; T1ce: enhancing rim bright). Each site scans with its own acquisition:
per-modality intensity scale, additive offset, contrast gamma, multiplicative bias-field strength,
noise sigma and blur sigma, jittered per case. ``noise_sigma`` is in units of the tissue signal
(white matter on T1 ≈ 0.8) before scaling; ``blur_sigma`` is in voxels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from brats_ssl.data.conventions import MODALITIES
from brats_ssl.data.synthetic.fields import grid_for, smooth_field

# Tissue signal per modality (rows: MODALITIES; columns: TISSUES), before acquisition effects.
_TISSUE_SIGNAL = np.array(
    [
        # bg    csf   grey  white deep
        [0.0, 0.22, 0.52, 0.80, 0.68],  # t1
        [0.0, 0.24, 0.55, 0.76, 0.66],  # t1ce
        [0.0, 1.00, 0.60, 0.38, 0.48],  # t2
        [0.0, 0.14, 0.60, 0.44, 0.52],  # flair
    ],
    dtype=np.float32,
)
# Tumour signal per modality (columns: NCR, ED, ET, LGG core).
_TUMOUR_SIGNAL = np.array(
    [
        # ncr   ed    et    lgg-core
        [0.28, 0.56, 0.58, 0.42],  # t1
        [0.26, 0.60, 1.25, 0.44],  # t1ce
        [0.92, 0.88, 0.66, 0.88],  # t2
        [0.52, 0.98, 0.76, 0.82],  # flair
    ],
    dtype=np.float32,
)
_NCR, _ED, _ET, _LGG_CORE = range(_TUMOUR_SIGNAL.shape[1])
_BASE_BLUR = 0.5  # voxels: partial volume of a 2 mm grid, before the site's own blur


@dataclass(frozen=True)
class Acquisition:
    """How one case was scanned: stored = scale_m * (blur(signal ** gamma * bias_m) + noise) + offset."""

    scale_t1: float
    scale_t1ce: float
    scale_t2: float
    scale_flair: float
    offset: float
    gamma: float
    bias_strength: float
    noise_sigma: float
    blur_sigma: float

    def scale(self, modality: str) -> float:
        return float(getattr(self, f"scale_{modality}"))


def noise_free_signal(
    tissue: np.ndarray, labels: np.ndarray, edema_strength: np.ndarray, texture: np.ndarray, *, grade: str, gamma: float
) -> np.ndarray:
    """Noise-free tissue and tumour signal with the contrast gamma applied, (4, X, Y, Z) float32."""
    signal = (_TISSUE_SIGNAL**gamma)[:, tissue]
    tumour = labels > 0
    if not np.any(tumour):
        return signal
    core_column = _LGG_CORE if grade == "LGG" else _NCR
    column = np.array([0, core_column, _ED, _ET])[labels[tumour]]
    tumour_signal = (_TUMOUR_SIGNAL**gamma)[:, column] * (1 + 0.08 * texture[tumour])
    mix = np.where(labels[tumour] == 2, edema_strength[tumour], 1.0)
    signal[:, tumour] = (1 - mix) * signal[:, tumour] + mix * tumour_signal
    return signal


def acquire(rng: np.random.Generator, signal: np.ndarray, brain: np.ndarray, acq: Acquisition) -> np.ndarray:
    """Bias field, blur, noise, scale and offset of signals cropped to the brain's box (zero
    outside it); background stays exactly 0."""
    shape = brain.shape
    bias_grid = grid_for(shape, 3)
    blur = float(np.hypot(_BASE_BLUR, acq.blur_sigma))
    stored = np.zeros(signal.shape, np.float32)
    for m, modality in enumerate(MODALITIES):
        value = signal[m] * np.exp(acq.bias_strength * smooth_field(rng, shape, bias_grid, sigma=0.5))
        value = ndimage.gaussian_filter(value, blur, mode="constant", truncate=2.0)
        value += acq.noise_sigma * rng.standard_normal(shape, dtype=np.float32)
        value = acq.scale(modality) * value + acq.offset
        stored[m] = np.where(brain, np.clip(value, 1.0, 32767.0), 0.0)
    return stored


def site_name(index: int) -> str:
    """siteA, siteB, ..., siteZ, siteAA, ..."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return f"site{letters}"


# Range of each site-level acquisition parameter (scale: log-uniform).
_SITE_RANGES = {
    "scale": (150.0, 2500.0),
    "offset": (0.0, 0.12),
    "gamma": (0.75, 1.35),
    "bias_strength": (0.04, 0.25),
    "noise_sigma": (0.015, 0.05),
    "blur_sigma": (0.0, 0.8),
}


def site_profiles(rng: np.random.Generator, n_sites: int) -> list[dict[str, float]]:
    """Per-site acquisitions, stratified: for each parameter every site draws from its own
    1/n_sites of the range (in shuffled order), so sites really differ from each other."""
    strata = {name: (rng.permutation(n_sites) + rng.uniform(size=n_sites)) / n_sites for name in _SITE_RANGES}
    profiles = []
    for k in range(n_sites):

        def pick(name: str, k: int = k) -> float:
            low, high = _SITE_RANGES[name]
            return float(low + (high - low) * strata[name][k])

        low, high = np.log(_SITE_RANGES["scale"])
        base = float(np.exp(low + (high - low) * strata["scale"][k]))
        profile = {f"scale_{m}": base * float(np.exp(rng.normal(0, 0.25))) for m in MODALITIES}
        profile.update(
            offset=pick("offset") * base,
            gamma=pick("gamma"),
            bias_strength=pick("bias_strength"),
            noise_sigma=pick("noise_sigma"),
            blur_sigma=pick("blur_sigma"),
        )
        profiles.append(profile)
    return profiles


def jitter_acquisition(rng: np.random.Generator, profile: dict[str, float]) -> Acquisition:
    """Per-case variation around the site's acquisition."""
    scale_jitter = float(np.exp(rng.normal(0, 0.08)))
    return Acquisition(
        **{f"scale_{m}": round(profile[f"scale_{m}"] * scale_jitter, 3) for m in MODALITIES},
        offset=round(profile["offset"] * float(rng.uniform(0.9, 1.1)), 3),
        gamma=round(float(np.clip(profile["gamma"] + rng.normal(0, 0.03), 0.6, 1.6)), 4),
        bias_strength=round(profile["bias_strength"] * float(rng.uniform(0.8, 1.2)), 4),
        noise_sigma=round(profile["noise_sigma"] * float(rng.uniform(0.85, 1.15)), 5),
        blur_sigma=round(max(profile["blur_sigma"] + float(rng.normal(0, 0.08)), 0.0), 3),
    )


def assign_sites(rng: np.random.Generator, n_cases: int, n_sites: int) -> np.ndarray:
    """Every site gets a case first (round robin), the rest follow unequal site weights."""
    first = np.arange(min(n_cases, n_sites))
    weights = 1.0 / (1.0 + 0.5 * np.arange(n_sites))
    rest = rng.choice(n_sites, size=n_cases - first.size, p=weights / weights.sum())
    return rng.permutation(np.concatenate([first, rest]))
