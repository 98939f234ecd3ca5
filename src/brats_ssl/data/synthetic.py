"""Synthetic BraTS-like cohort: skull-stripped brains with gliomas, scanned at simulated sites.

Each case is an ellipsoidal brain with an irregular outline, cortical grey-matter ribbon with
sulci, interhemispheric fissure, lateral ventricles, deep grey nuclei and white matter, plus a
glioma in one hemisphere: necrotic core (NCR), a patchy enhancing rim (ET) and an edema halo
(ED) that spreads through white matter and fades towards its border. About 28 % of cases are
LGG-like (non-enhancing core and edema only). Tissue signals per modality follow clinical
contrast (T1: WM > GM > CSF; T2: CSF bright; FLAIR: CSF dark, edema bright; T1ce: enhancing
rim bright).

Each site scans with its own acquisition: per-modality intensity scale, additive offset,
contrast gamma, multiplicative bias-field strength, noise sigma and blur sigma, jittered per
case; every case's values are in ``sites.csv``. ``noise_sigma`` is in units of the tissue
signal (white matter on T1 ≈ 0.8) before scaling; ``blur_sigma`` is in voxels.

Files: ``OUT/<case>/<case>_{t1,t1ce,t2,flair,seg}.nii.gz`` (BraTS 2021: int16 images, uint8 seg
with 0/1/2/4), background exactly 0, voxel axes LPS like BraTS. The same seed gives the same
arrays. Smooth random fields come from small Gaussian-filtered noise grids upsampled with
cubic B-splines, one axis at a time (what ``scipy.ndimage.zoom`` does, as three small matrix
products), so a 96x96x64 case takes about a tenth of a second to simulate on one core.
"""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from brats_ssl import atomic
from brats_ssl.data.conventions import BRATS2021, MODALITIES
from brats_ssl.errors import BadInputError

TISSUES: tuple[str, ...] = ("background", "csf", "grey", "white", "deep_grey")
CSF, GREY, WHITE, DEEP_GREY = 1, 2, 3, 4
LGG_FRACTION = 0.28

# Tissue signal per modality (rows: MODALITIES; columns: TISSUES), before acquisition effects.
_TISSUE_SIGNAL = np.array([
    # bg    csf   grey  white deep
    [0.0, 0.22, 0.52, 0.80, 0.68],  # t1
    [0.0, 0.24, 0.55, 0.76, 0.66],  # t1ce
    [0.0, 1.00, 0.60, 0.38, 0.48],  # t2
    [0.0, 0.14, 0.60, 0.44, 0.52],  # flair
], dtype=np.float32)
# Tumour signal per modality (columns: NCR, ED, ET, LGG core).
_TUMOUR_SIGNAL = np.array([
    # ncr   ed    et    lgg-core
    [0.28, 0.56, 0.58, 0.42],  # t1
    [0.26, 0.60, 1.25, 0.44],  # t1ce
    [0.92, 0.88, 0.66, 0.88],  # t2
    [0.52, 0.98, 0.76, 0.82],  # flair
], dtype=np.float32)
_NCR, _ED, _ET, _LGG_CORE = range(4)
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


@dataclass(frozen=True)
class CaseSpec:
    """Everything that determines one synthetic case."""

    case_id: str
    site: str
    grade: str  # "HGG" or "LGG"
    labeled: bool
    seed: tuple[int, int]
    acquisition: Acquisition


@dataclass
class SyntheticCase:
    """A simulated case: ``image`` float32 (4, X, Y, Z) as stored (before int16 rounding),
    ``labels`` internal classes (0 bg, 1 NCR, 2 ED, 3 ET), ``tissue`` indices into :data:`TISSUES`."""

    spec: CaseSpec
    image: np.ndarray
    labels: np.ndarray
    tissue: np.ndarray


# --- smooth random fields ----------------------------------------------------------------------

@lru_cache(maxsize=64)
def _upsampling_matrix(n_low: int, n_high: int) -> np.ndarray:
    """(n_high, n_low) matrix doing cubic-spline zoom along one axis (scipy.ndimage.zoom on the identity)."""
    eye = np.eye(n_low, dtype=np.float64)
    matrix = ndimage.zoom(eye, (n_high / n_low, 1.0), order=3, mode="reflect", grid_mode=True)
    return matrix.astype(np.float32)


def smooth_field(rng: np.random.Generator, shape: tuple[int, int, int], grid: tuple[int, int, int],
                 *, sigma: float = 0.8) -> np.ndarray:
    """A smooth random 3-D field of about unit standard deviation: noise on a coarse ``grid``,
    Gaussian-filtered, then upsampled to ``shape`` one axis at a time (three matrix products)."""
    coarse = ndimage.gaussian_filter(rng.standard_normal(grid), sigma, mode="reflect")
    coarse = ((coarse - coarse.mean()) / (coarse.std() + 1e-8)).astype(np.float32)
    along_x, along_y, along_z = (_upsampling_matrix(n, m) for n, m in zip(grid, shape))
    field = np.tensordot(along_x, coarse, axes=1)  # (X, gy, gz)
    field = np.matmul(along_y, field)  # (X, Y, gz)
    return np.ascontiguousarray(field @ along_z.T)  # (X, Y, Z)


def _grid_for(shape: tuple[int, ...], cells: float) -> tuple[int, ...]:
    """A coarse grid with about ``cells`` points along the longest axis, at least 3 per axis."""
    longest = max(shape)
    return tuple(max(3, int(round(cells * s / longest))) for s in shape)


# --- anatomy -----------------------------------------------------------------------------------

def _axes(shape: tuple[int, int, int], centre, semi) -> list[np.ndarray]:
    """Broadcastable normalised coordinates (x - centre) / semi-axis for each voxel axis."""
    out = []
    for axis, n in enumerate(shape):
        coord = (np.arange(n, dtype=np.float32) - float(centre[axis])) / float(semi[axis])  # stays float32
        view = [1, 1, 1]
        view[axis] = n
        out.append(coord.reshape(view))
    return out


def bounding_box(mask: np.ndarray) -> tuple[slice, slice, slice]:
    """Tightest box around a non-empty 3-D mask."""
    box = []
    for axis in range(3):
        hits = np.flatnonzero(np.any(mask, axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(int(hits[0]), int(hits[-1]) + 1))
    return tuple(box)  # type: ignore[return-value]


def simulate_anatomy(rng: np.random.Generator, shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Tissue map (indices into :data:`TISSUES`) and depth below the brain surface in voxels.

    Voxel axes are LPS (0: right → left, 1: anterior → posterior, 2: inferior → superior).
    Sizes scale with the volume, so small test volumes hold small brains of the same layout.
    """
    shape = tuple(int(s) for s in shape)  # type: ignore[assignment]
    semi = np.array([0.37 * shape[0], 0.44 * shape[1], 0.42 * shape[2]]) * rng.uniform(0.93, 1.03, 3)
    centre = np.array([(shape[0] - 1) / 2 + rng.uniform(-0.5, 0.5), (shape[1] - 1) / 2, 0.46 * shape[2]])
    mean_semi = float(semi.mean())
    k = mean_semi / 36.0  # 1 for the default 96x96x64 grid
    u, v, w = _axes(shape, centre, semi)
    # Brains are boxier than ellipsoids, narrower in front (v < 0 is anterior) and rounder on top
    # (w > 0) than at the base. Powers of the 1-D axes first: one full-size power instead of three.
    p = 2.4
    top = np.abs(w) ** np.where(w > 0, np.float32(2.0), np.float32(p))
    # The outline wobbles by ~3 % in radius, i.e. ~7 % in the sum of powers.
    power_sum = np.abs(u) ** p / (1.0 + 0.08 * v) ** p + np.abs(v) ** p + top
    power_sum *= 1.0 + 0.072 * smooth_field(rng, shape, _grid_for(shape, 6))
    box = bounding_box(power_sum < 1.0)
    # From here on only the brain's box is computed.
    radius = power_sum[box] ** (1 / p)
    u, v, w = u[box[0]], v[:, box[1]], w[:, :, box[2]]
    centre = centre - np.array([s.start for s in box])
    sub = radius.shape
    brain = radius < 1.0
    depth = np.where(brain, (1.0 - radius) * mean_semi, 0.0).astype(np.float32)

    # Sulci: zero crossings of a random field are curved sheets; reading the field part way along
    # rays from the centre makes them run roughly perpendicular to the surface, as real sulci do.
    sulcus_depth = 0.24 * mean_semi * (1.0 + 0.35 * smooth_field(rng, sub, _grid_for(sub, 8)))
    cortex = max(0.8, 1.15 * k) * (1.0 + 0.15 * smooth_field(rng, sub, _grid_for(sub, 4)))
    folds = smooth_field(rng, sub, _grid_for(sub, 26 * max(sub) / max(shape)), sigma=0.8)
    slope = np.sqrt(sum(g * g for g in np.gradient(folds)))
    sheet = np.abs(folds) / (slope + 1e-3)  # voxels to the nearest zero crossing
    shell = np.nonzero(brain & (depth < sulcus_depth))
    shell_radius = np.maximum(radius[shell], 0.3)
    towards_surface = (0.5 * shell_radius + 0.46) / shell_radius
    # A smooth displacement of the read-out points makes the sulci meander instead of running straight.
    warp_grid = _grid_for(sub, 10 * max(sub) / max(shape))
    rays = [c + (i - c) * towards_surface + 2.5 * k * smooth_field(rng, sub, warp_grid)[shell]
            for i, c in zip(shell, centre)]
    sulcus = np.full(sub, np.inf, np.float32)
    sulcus[shell] = ndimage.map_coordinates(sheet, rays, order=1, mode="nearest") / towards_surface

    csf = brain & ((depth < 0.5) | ((sulcus < 0.55) & (depth < sulcus_depth - 1.0)))
    grey = brain & ((depth < cortex + 0.5) | (sulcus < cortex + 0.55))
    # Interhemispheric fissure, lined by medial cortex, down to the corpus callosum.
    midline = np.abs(u * float(semi[0])) - 0.6
    upper = brain & (radius > 0.45)
    csf |= upper & (midline < 0)
    grey |= upper & (midline < cortex)
    tissue = np.where(brain, WHITE, 0).astype(np.uint8)
    tissue[grey] = GREY
    tissue[csf] = CSF
    # Deep structures, computed in the central box they occupy (|u| < 0.45, |v| < 0.5, |w| < 0.35).
    central = tuple(np.flatnonzero(np.abs(a.ravel()) < limit) for a, limit in ((u, 0.45), (v, 0.5), (w, 0.35)))
    central = tuple(slice(int(i[0]), int(i[-1]) + 1) for i in central)
    u, v, w = u[central[0]], v[:, central[1]], w[:, :, central[2]]
    deep = tissue[central]
    inside = brain[central]
    # Deep grey nuclei (thalamus, basal ganglia) either side of the ventricles.
    for side in (-1, 1):
        nuclei = ((u - side * 0.22) / 0.12) ** 2 + ((v - 0.02) / 0.22) ** 2 + ((w + 0.05) / 0.14) ** 2 < 1
        deep[nuclei & inside] = DEEP_GREY
    # Lateral ventricles: bodies near the midline whose horns diverge, size varying between cases.
    size = rng.uniform(0.75, 1.35)
    for side in (-1, 1):
        bend = (v + 0.05) ** 2 / 0.38**2
        body = (((u - side * (0.09 + 0.12 * bend)) / (0.075 * size)) ** 2
                + ((v + 0.05) / 0.38) ** 2 + ((w - 0.12 + 0.08 * bend) / (0.16 * size)) ** 2) < 1
        deep[body & inside] = CSF
    full_tissue = np.zeros(shape, np.uint8)
    full_tissue[box] = tissue
    full_depth = np.zeros(shape, np.float32)
    full_depth[box] = depth
    return full_tissue, full_depth


# --- tumour ------------------------------------------------------------------------------------

def _tumour_box(centre: np.ndarray, reach: float, shape) -> tuple[slice, ...]:
    return tuple(slice(max(int(c - reach), 0), min(int(c + reach) + 2, n)) for c, n in zip(centre, shape))


def _tumour_centre(rng: np.random.Generator, tissue: np.ndarray, depth: np.ndarray, min_depth: float) -> np.ndarray:
    """A centre in one hemisphere, deep enough inside the brain and off the ventricles."""
    shape = np.array(tissue.shape)
    for _ in range(50):
        side = rng.choice((-1, 1))
        centre = np.array([shape[0] / 2 + side * rng.uniform(0.07, 0.20) * shape[0],
                           rng.uniform(0.2, 0.8) * shape[1], rng.uniform(0.35, 0.72) * shape[2]])
        index = tuple(np.clip(np.round(centre).astype(int), 0, shape - 1))
        if depth[index] > min_depth and tissue[index] != CSF:
            break
    return centre


def simulate_tumour(rng: np.random.Generator, tissue: np.ndarray, depth: np.ndarray, *, grade: str
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Internal label map, edema strength (1 near the core, 0.1 at the edema border) and a
    tumour texture field, all full size. Shapes are spheres distorted by smooth random fields."""
    shape = tissue.shape
    brain_radius = float(np.cbrt(np.count_nonzero(tissue) * 3 / (4 * np.pi)))
    lgg = grade == "LGG"
    core_r = brain_radius * rng.uniform(0.15, 0.32) * (0.85 if lgg else 1.0)
    edema_r = core_r + brain_radius * rng.uniform(0.08, 0.30) * (0.6 if lgg else 1.0)
    centre = _tumour_centre(rng, tissue, depth, min_depth=core_r + 0.3 * (edema_r - core_r))
    box = _tumour_box(centre, edema_r * 1.7 + 2, shape)
    sub = tuple(s.stop - s.start for s in box)
    offsets = [np.arange(s.start, s.stop, dtype=np.float32) - float(c) for s, c in zip(box, centre)]
    distance = np.sqrt(offsets[0][:, None, None] ** 2 + offsets[1][None, :, None] ** 2
                       + offsets[2][None, None, :] ** 2)
    grid = _grid_for(sub, float(np.clip(max(sub) / 3, 4, 9)))
    core_d = distance * np.maximum(1 + 0.18 * smooth_field(rng, sub, grid), 0.6)  # voxels, distorted
    edema_d = distance / edema_r * np.maximum(1 + 0.28 * smooth_field(rng, sub, grid), 0.6)
    inside = tissue[box] > 0
    core = inside & (core_d < core_r)
    labels = np.zeros(sub, np.uint8)
    # Edema spreads along white matter and deep grey, into cortex only near the tumour.
    spreads = (tissue[box] == WHITE) | (tissue[box] == DEEP_GREY) | ((tissue[box] == GREY) & (edema_d < 0.9))
    labels[inside & (edema_d < 1) & spreads & ~core] = 2
    if lgg:
        labels[core] = 1
    else:  # an enhancing rim of uneven thickness around necrosis, with non-enhancing stretches
        thickness = max(min(brain_radius * rng.uniform(0.035, 0.07), 0.45 * core_r), 1.0)
        rim = thickness * np.clip(1 + 0.5 * smooth_field(rng, sub, grid), 0.4, 2.0)
        necrotic = core_d < core_r - rim
        gaps = smooth_field(rng, sub, grid) < -1.2
        labels[core] = 3
        labels[core & (necrotic | gaps)] = 1
    strength = np.sqrt(np.clip((1 - edema_d) / max(1 - core_r / edema_r, 1e-3), 0, 1))
    full_labels = np.zeros(shape, np.uint8)
    full_labels[box] = labels
    full_strength = np.zeros(shape, np.float32)
    full_strength[box] = np.where(labels == 2, 0.1 + 0.9 * strength, 0.0)
    texture = np.zeros(shape, np.float32)
    texture[box] = smooth_field(rng, sub, _grid_for(sub, float(np.clip(max(sub) / 2.5, 4, 16))))
    return full_labels, full_strength, texture


# --- image formation ---------------------------------------------------------------------------

def _signals(tissue: np.ndarray, labels: np.ndarray, edema_strength: np.ndarray, texture: np.ndarray,
             *, grade: str, gamma: float) -> np.ndarray:
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


def _acquire(rng: np.random.Generator, signal: np.ndarray, brain: np.ndarray, acq: Acquisition) -> np.ndarray:
    """Bias field, blur, noise, scale and offset of signals cropped to the brain's box (zero
    outside it); background stays exactly 0."""
    shape = brain.shape
    bias_grid = _grid_for(shape, 3)
    blur = float(np.hypot(_BASE_BLUR, acq.blur_sigma))
    stored = np.zeros(signal.shape, np.float32)
    for m, modality in enumerate(MODALITIES):
        value = signal[m] * np.exp(acq.bias_strength * smooth_field(rng, shape, bias_grid, sigma=0.5))
        value = ndimage.gaussian_filter(value, blur, mode="constant", truncate=2.0)
        value += acq.noise_sigma * rng.standard_normal(shape, dtype=np.float32)
        value = acq.scale(modality) * value + acq.offset
        stored[m] = np.where(brain, np.clip(value, 1.0, 32767.0), 0.0)
    return stored


def simulate_case(spec: CaseSpec, shape: tuple[int, int, int]) -> SyntheticCase:
    """Simulate one case from its spec (deterministic in ``spec.seed``)."""
    rng = np.random.default_rng(list(spec.seed))
    tissue, depth = simulate_anatomy(rng, shape)
    labels, edema_strength, texture = simulate_tumour(rng, tissue, depth, grade=spec.grade)
    box = bounding_box(tissue > 0)
    signal = _signals(tissue[box], labels[box], edema_strength[box], texture[box], grade=spec.grade,
                      gamma=spec.acquisition.gamma)
    image = np.zeros((len(MODALITIES),) + tuple(shape), np.float32)
    image[(slice(None),) + box] = _acquire(rng, signal, tissue[box] > 0, spec.acquisition)
    return SyntheticCase(spec=spec, image=image, labels=labels, tissue=tissue)


# --- cohort ------------------------------------------------------------------------------------

def site_name(index: int) -> str:
    """siteA, siteB, ..., siteZ, siteAA, ..."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return f"site{letters}"


# Range of each site-level acquisition parameter (scale: log-uniform).
_SITE_RANGES = {"scale": (150.0, 2500.0), "offset": (0.0, 0.12), "gamma": (0.75, 1.35),
                "bias_strength": (0.04, 0.25), "noise_sigma": (0.015, 0.05), "blur_sigma": (0.0, 0.8)}


def _site_profiles(rng: np.random.Generator, n_sites: int) -> list[dict[str, float]]:
    """Per-site acquisitions, stratified: for each parameter every site draws from its own
    1/n_sites of the range (in shuffled order), so sites really differ from each other."""
    strata = {name: (rng.permutation(n_sites) + rng.uniform(size=n_sites)) / n_sites for name in _SITE_RANGES}
    profiles = []
    for k in range(n_sites):
        def pick(name: str) -> float:
            low, high = _SITE_RANGES[name]
            return float(low + (high - low) * strata[name][k])

        low, high = np.log(_SITE_RANGES["scale"])
        base = float(np.exp(low + (high - low) * strata["scale"][k]))
        profile = {f"scale_{m}": base * float(np.exp(rng.normal(0, 0.25))) for m in MODALITIES}
        profile.update(offset=pick("offset") * base, gamma=pick("gamma"), bias_strength=pick("bias_strength"),
                       noise_sigma=pick("noise_sigma"), blur_sigma=pick("blur_sigma"))
        profiles.append(profile)
    return profiles


def _jitter(rng: np.random.Generator, profile: dict[str, float]) -> Acquisition:
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


def _assign_sites(rng: np.random.Generator, n_cases: int, n_sites: int) -> np.ndarray:
    """Every site gets a case first (round robin), the rest follow unequal site weights."""
    first = np.arange(min(n_cases, n_sites))
    weights = 1.0 / (1.0 + 0.5 * np.arange(n_sites))
    rest = rng.choice(n_sites, size=n_cases - first.size, p=weights / weights.sum())
    return rng.permutation(np.concatenate([first, rest]))


def plan_cohort(*, cases: int, sites: int = 3, seed: int = 0, unlabeled: int = 0) -> list[CaseSpec]:
    """Case ids, sites, grades and acquisitions of a cohort: ``cases`` labeled then ``unlabeled``."""
    if cases < 1 or unlabeled < 0 or sites < 1:
        raise BadInputError(f"synthetic cohort: need cases >= 1, unlabeled >= 0 and sites >= 1 "
                            f"(got cases={cases}, unlabeled={unlabeled}, sites={sites})")
    if seed < 0:
        raise BadInputError(f"synthetic cohort: seed must be >= 0 (got {seed})")
    rng = np.random.default_rng([seed, 0])
    total = cases + unlabeled
    profiles = _site_profiles(rng, sites)
    site_of = _assign_sites(rng, total, sites)
    lgg = np.zeros(total, bool)
    lgg[rng.permutation(total)[: int(round(LGG_FRACTION * total))]] = True
    width = max(3, len(str(total - 1)))
    return [
        CaseSpec(case_id=f"Synth_{site_name(site_of[i])}_{i:0{width}d}", site=site_name(site_of[i]),
                 grade="LGG" if lgg[i] else "HGG", labeled=i < cases, seed=(seed, i + 1),
                 acquisition=_jitter(rng, profiles[site_of[i]]))
        for i in range(total)
    ]


def synthetic_affine(shape: tuple[int, int, int], spacing: float) -> np.ndarray:
    """BraTS-like LPS voxel axes (diag(-s, -s, s)) with the origin near the brain's centre."""
    affine = np.diag([-spacing, -spacing, spacing, 1.0])
    affine[:3, 3] = [spacing * (shape[0] - 1) / 2, spacing * (shape[1] - 1) / 2, -spacing * 0.46 * shape[2]]
    return affine


def _save_nifti(array: np.ndarray, affine: np.ndarray, path: Path) -> None:
    image = nib.Nifti1Image(array, affine)
    image.header.set_xyzt_units("mm", "sec")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    atomic.write_with(path, lambda tmp: nib.save(image, str(tmp)))


def _check_target(out: Path, case_ids: list[str]) -> None:
    """Refuse to mix a new cohort with unrelated files (stale cases would join the dataset)."""
    if out.exists() and not out.is_dir():
        raise BadInputError(f"{out}: exists and is not a folder")
    if not out.is_dir():
        return
    expected = set(case_ids) | {"sites.csv"}
    strays = sorted(p.name for p in out.iterdir() if p.name not in expected)
    if strays:
        raise BadInputError(
            f"folder {out}: holds {len(strays)} other entr{'y' if len(strays) == 1 else 'ies'} "
            f"({', '.join(strays[:5])}); write the synthetic cohort into a new or empty folder")


def write_cohort(out: str | Path, *, cases: int, shape: tuple[int, int, int] = (96, 96, 64),
                 spacing: float = 2.0, sites: int = 3, seed: int = 0, unlabeled: int = 0) -> list[str]:
    """Write a synthetic cohort in BraTS 2021 layout plus ``sites.csv``; returns the case ids.

    The first ``cases`` cases have a seg file, the ``unlabeled`` after them do not.
    """
    out = Path(out)
    shape = tuple(int(s) for s in shape)  # type: ignore[assignment]
    if len(shape) != 3 or min(shape) < 16:
        raise BadInputError(f"synthetic cohort: shape must be three sizes >= 16 voxels (got {shape})")
    if not spacing > 0:
        raise BadInputError(f"synthetic cohort: spacing must be > 0 mm (got {spacing})")
    specs = plan_cohort(cases=cases, sites=sites, seed=seed, unlabeled=unlabeled)
    _check_target(out, [s.case_id for s in specs])
    affine = synthetic_affine(shape, spacing)
    # gzip and numpy release the GIL: write one case while the next is simulated (one in flight).
    with ThreadPoolExecutor(max_workers=1) as writer:
        writing = None
        for spec in specs:
            case = simulate_case(spec, shape)
            if writing is not None:
                writing.result()
            writing = writer.submit(_write_case, out, case, affine)
        if writing is not None:
            writing.result()
    atomic.write_text(out / "sites.csv", _sites_csv(specs))
    return [s.case_id for s in specs]


def _write_case(out: Path, case: SyntheticCase, affine: np.ndarray) -> None:
    case_id = case.spec.case_id
    for m, modality in enumerate(MODALITIES):
        _save_nifti(np.rint(case.image[m]).astype(np.int16), affine, out / case_id / f"{case_id}_{modality}.nii.gz")
    seg = out / case_id / f"{case_id}_seg.nii.gz"
    if case.spec.labeled:
        _save_nifti(BRATS2021.to_file(case.labels), affine, seg)
    else:
        seg.unlink(missing_ok=True)  # left by an earlier run in which this case was labeled


def _sites_csv(specs: list[CaseSpec]) -> str:
    fields = ["case", "site", "grade", "labeled"] + list(asdict(specs[0].acquisition))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for spec in specs:
        writer.writerow({"case": spec.case_id, "site": spec.site, "grade": spec.grade,
                         "labeled": int(spec.labeled), **asdict(spec.acquisition)})
    return buffer.getvalue()
