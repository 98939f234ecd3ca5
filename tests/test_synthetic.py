"""The synthetic cohort: layout, determinism, tissue and tumour contrast, site heterogeneity."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from brats_ssl.data import synthetic
from brats_ssl.data.conventions import MODALITIES
from brats_ssl.data.dataset import open_dataset
from brats_ssl.data.io import load_case
from brats_ssl.data.synthetic import CSF, GREY, WHITE, plan_cohort, simulate_case, write_cohort
from brats_ssl.errors import BadInputError

SHAPE = (48, 48, 32)
T1, T1CE, T2, FLAIR = (MODALITIES.index(m) for m in ("t1", "t1ce", "t2", "flair"))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth") / "cohort"
    write_cohort(root, cases=5, shape=SHAPE, spacing=2.0, sites=3, seed=7, unlabeled=2)
    return root


@pytest.fixture(scope="module")
def simulated() -> list[synthetic.SyntheticCase]:
    return [simulate_case(spec, SHAPE) for spec in plan_cohort(cases=12, sites=3, seed=3)]


def _arrays(root: Path) -> dict[str, np.ndarray]:
    return {str(p.relative_to(root)): np.asarray(nib.load(str(p)).dataobj) for p in sorted(root.rglob("*.nii.gz"))}


def _sites_rows(root: Path) -> list[dict[str, str]]:
    with (root / "sites.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


# --- layout -------------------------------------------------------------------------------------


def test_layout_is_brats2021_with_internal_labels(cohort):
    dataset = open_dataset(cohort)
    assert dataset.convention.name == "brats2021"
    assert len(dataset) == 7 and not dataset.problems
    assert sum(c.labeled for c in dataset.cases) == 5
    case = next(c for c in dataset.cases if c.labeled)
    folder = cohort / case.case_id
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(f"{case.case_id}_{m}.nii.gz" for m in (*MODALITIES, "seg"))
    image = nib.load(str(folder / f"{case.case_id}_t1.nii.gz"))
    seg = nib.load(str(folder / f"{case.case_id}_seg.nii.gz"))
    assert image.get_data_dtype() == np.int16 and seg.get_data_dtype() == np.uint8
    assert image.shape == SHAPE
    assert np.allclose(np.diag(image.affine)[:3], [-2.0, -2.0, 2.0])
    assert nib.aff2axcodes(image.affine) == ("L", "P", "S")  # BraTS's own voxel orientation
    assert set(np.unique(np.asarray(seg.dataobj))) <= {0, 1, 2, 4}
    loaded = load_case(case)
    assert loaded.image.shape == (4, *SHAPE)
    assert set(np.unique(loaded.seg)) <= {0, 1, 2, 3} and np.any(loaded.seg > 0)


def test_sites_csv_has_one_row_per_case_with_acquisition(cohort):
    dataset = open_dataset(cohort)
    rows = _sites_rows(cohort)
    assert sorted(r["case"] for r in rows) == sorted(c.case_id for c in dataset.cases)
    for column in (
        "site",
        "grade",
        "labeled",
        "scale_t1",
        "scale_flair",
        "offset",
        "gamma",
        "bias_strength",
        "noise_sigma",
        "blur_sigma",
    ):
        assert column in rows[0]
    assert dataset.sites == {r["case"]: r["site"] for r in rows}
    assert all(r["case"].startswith(f"Synth_{r['site']}_") for r in rows)


def test_unlabeled_cases_have_no_seg(cohort):
    rows = _sites_rows(cohort)
    for row in rows:
        seg = cohort / row["case"] / f"{row['case']}_seg.nii.gz"
        assert seg.exists() == (row["labeled"] == "1")
    assert sum(r["labeled"] == "0" for r in rows) == 2


def test_lgg_seg_files_have_no_enhancing_label(cohort):
    rows = [r for r in _sites_rows(cohort) if r["labeled"] == "1"]
    assert {r["grade"] for r in rows} == {"HGG", "LGG"}
    for row in rows:
        seg = np.asarray(nib.load(str(cohort / row["case"] / f"{row['case']}_seg.nii.gz")).dataobj)
        assert (4 in seg) == (row["grade"] == "HGG")
        assert 1 in seg and 2 in seg


def test_files_hold_the_simulated_case_and_zero_background(cohort):
    spec = plan_cohort(cases=5, sites=3, seed=7, unlabeled=2)[1]
    case = simulate_case(spec, SHAPE)
    stored = load_case(open_dataset(cohort).case(spec.case_id))
    assert np.array_equal(stored.image, np.rint(case.image))
    assert np.array_equal(stored.seg, case.labels)
    brain = case.tissue > 0
    assert np.all(stored.image[:, ~brain] == 0)
    assert np.all(stored.image[:, brain] >= 1)


# --- determinism --------------------------------------------------------------------------------


def test_same_seed_same_arrays_other_seed_differs(tmp_path, cohort):
    again = tmp_path / "again"
    write_cohort(again, cases=5, shape=SHAPE, sites=3, seed=7, unlabeled=2)
    first, second = _arrays(cohort), _arrays(again)
    assert first.keys() == second.keys()
    assert all(np.array_equal(first[k], second[k]) for k in first)
    assert (cohort / "sites.csv").read_text() == (again / "sites.csv").read_text()

    other = tmp_path / "other"
    write_cohort(other, cases=5, shape=SHAPE, sites=3, seed=8, unlabeled=2)
    other_t1 = [a for k, a in _arrays(other).items() if k.endswith("_t1.nii.gz")]
    first_t1 = [a for k, a in first.items() if k.endswith("_t1.nii.gz")]
    assert not any(np.array_equal(a, b) for a, b in zip(first_t1, other_t1))


def test_rewriting_into_the_same_folder_is_allowed_but_strays_are_refused(tmp_path):
    root = tmp_path / "cohort"
    ids = write_cohort(root, cases=2, shape=SHAPE, seed=1)
    assert write_cohort(root, cases=2, shape=SHAPE, seed=1) == ids
    assert write_cohort(root, cases=1, unlabeled=1, shape=SHAPE, seed=1) == ids  # same ids, one unlabeled
    assert [c.labeled for c in open_dataset(root).cases if c.case_id == ids[1]] == [False]
    with pytest.raises(BadInputError, match="write the synthetic cohort into a new or empty folder"):
        write_cohort(root, cases=1, shape=SHAPE, seed=5)  # would leave a stale case behind


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(cases=0),
        dict(cases=2, sites=0),
        dict(cases=2, seed=-1),
        dict(cases=2, unlabeled=-1),
        dict(cases=2, shape=(8, 48, 32)),
        dict(cases=2, spacing=0.0),
    ],
)
def test_bad_arguments_are_bad_input(tmp_path, kwargs):
    with pytest.raises(BadInputError, match="synthetic cohort"):
        write_cohort(tmp_path / "x", **{"shape": SHAPE, **kwargs})


# --- cohort composition -------------------------------------------------------------------------


def test_sites_cover_all_unevenly_and_lgg_fraction():
    specs = plan_cohort(cases=40, sites=3, seed=0)
    counts = np.bincount([int(s.site.removeprefix("site").encode()[0] - ord("A")) for s in specs], minlength=3)
    assert np.all(counts > 0) and counts.sum() == 40
    assert len(set(counts.tolist())) > 1  # not perfectly balanced
    lgg = sum(s.grade == "LGG" for s in specs) / len(specs)
    assert 0.25 <= lgg <= 0.30
    assert all(plan_cohort(cases=2, sites=5, seed=s)[0].site for s in range(3))
    assert {s.site for s in plan_cohort(cases=5, sites=5, seed=4)} == {f"site{c}" for c in "ABCDE"}


@pytest.mark.parametrize("seed", [11, 12])
def test_site_heterogeneity_is_real(seed):
    """Per-case median brain intensity depends on the site (one-way ANOVA on its logarithm)."""
    from scipy.stats import f_oneway

    medians: dict[str, list[float]] = {}
    for spec in plan_cohort(cases=12, sites=3, seed=seed):
        case = simulate_case(spec, SHAPE)
        medians.setdefault(spec.site, []).append(float(np.log(np.median(case.image[T1][case.tissue > 0]))))
    groups = [v for v in medians.values() if len(v) > 1]
    assert len(groups) >= 2
    assert f_oneway(*groups).pvalue < 0.01
    site_medians = sorted(np.median(v) for v in medians.values())
    assert np.exp(site_medians[-1] - site_medians[0]) > 1.5


# --- contrast -----------------------------------------------------------------------------------


def _mean(case, modality: int, mask: np.ndarray) -> float:
    assert np.count_nonzero(mask) > 5
    return float(case.image[modality][mask].mean())


def test_tissue_contrast_per_modality(simulated):
    for case in simulated:
        healthy = case.labels == 0
        csf, grey, white = ((case.tissue == t) & healthy for t in (CSF, GREY, WHITE))
        assert _mean(case, T1, white) > _mean(case, T1, grey) > _mean(case, T1, csf)
        assert _mean(case, T1CE, white) > _mean(case, T1CE, grey) > _mean(case, T1CE, csf)
        assert _mean(case, T2, csf) > _mean(case, T2, grey) > _mean(case, T2, white)
        assert min(_mean(case, FLAIR, grey), _mean(case, FLAIR, white)) > _mean(case, FLAIR, csf)


def test_tumour_contrast_and_grades(simulated):
    grades = {case.spec.grade for case in simulated}
    assert grades == {"HGG", "LGG"}
    for case in simulated:
        white = (case.tissue == WHITE) & (case.labels == 0)
        ncr, ed, et = (case.labels == k for k in (1, 2, 3))
        assert _mean(case, FLAIR, ed) > _mean(case, FLAIR, white)
        assert _mean(case, T2, ed) > _mean(case, T2, white)
        ncr_inside = ndimage.binary_erosion(ncr)  # away from the partial volume of a bright rim
        if np.count_nonzero(ncr_inside) > 5:
            assert _mean(case, T1CE, ncr_inside) < _mean(case, T1CE, white)
        if case.spec.grade == "HGG":
            assert _mean(case, T1CE, et) > _mean(case, T1CE, white)
            assert _mean(case, T1CE, et) > _mean(case, T1CE, ncr)
        else:
            assert not np.any(et)
            assert _mean(case, T1CE, ncr) < _mean(case, T1CE, white)  # no enhancement


def test_edema_fades_towards_its_border(simulated):
    """Edema is brightest near the core and only a few noise sigmas above white matter at its edge."""
    edge_contrasts = []
    for case in (c for c in simulated if c.spec.grade == "HGG"):
        ed = case.labels == 2
        border = ed & ~ndimage.binary_erosion(case.labels > 0)
        near_core = ed & ndimage.binary_dilation(np.isin(case.labels, (1, 3)))
        white = (case.tissue == WHITE) & (case.labels == 0)
        flair = case.image[FLAIR]
        assert flair[near_core].mean() > flair[border].mean()
        sigma = case.spec.acquisition.noise_sigma * case.spec.acquisition.scale_flair
        edge_contrasts.append((flair[border].mean() - flair[white].mean()) / sigma)
    assert min(edge_contrasts) > 1
    assert 2 < np.median(edge_contrasts) < 8


def test_tumour_lies_in_one_hemisphere_mostly_off_the_ventricles(simulated):
    for case in simulated:
        core = np.isin(case.labels, (1, 3))
        x = np.nonzero(core)[0]
        middle = (SHAPE[0] - 1) / 2
        assert np.mean(np.sign(x - middle) == np.sign(x.mean() - middle)) > 0.8
        assert np.any(case.tissue == CSF)


# --- fields and speed ---------------------------------------------------------------------------


def test_smooth_field_is_a_cubic_zoom_of_the_coarse_grid():
    """The axis-by-axis upsampling equals scipy.ndimage.zoom of the same coarse noise."""
    shape, grid = (20, 16, 12), (5, 4, 3)
    field = synthetic.smooth_field(np.random.default_rng(0), shape, grid, sigma=0.8)
    coarse = ndimage.gaussian_filter(np.random.default_rng(0).standard_normal(grid), 0.8, mode="reflect")
    coarse = (coarse - coarse.mean()) / (coarse.std() + 1e-8)
    zoomed = ndimage.zoom(coarse, np.array(shape) / np.array(grid), order=3, mode="reflect", grid_mode=True)
    assert field.shape == shape
    assert np.allclose(field, zoomed, atol=1e-3)  # float32 matrices
    assert 0.3 < field.std() < 1.5


def test_cli_synth_writes_cohort_and_montage(tmp_path):
    from typer.testing import CliRunner

    from brats_ssl.cli import app

    out, png = tmp_path / "c", tmp_path / "m.png"
    result = CliRunner().invoke(
        app,
        [
            "synth",
            str(out),
            "--cases",
            "2",
            "--shape",
            "48",
            "48",
            "32",
            "--sites",
            "2",
            "--seed",
            "3",
            "--montage",
            str(png),
        ],
    )
    assert result.exit_code == 0, result.output
    assert len(open_dataset(out)) == 2
    assert png.stat().st_size > 1000
