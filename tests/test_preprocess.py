import os
import time

import numpy as np
import pytest

from brats_ssl.data.cache import PreprocessCache
from brats_ssl.data.dataset import open_dataset
from brats_ssl.data.io import load_case
from brats_ssl.data.preprocess import (
    PreprocessParams,
    brain_bbox,
    preprocess,
    restore_labels,
    restore_probabilities,
)

from conftest import write_dataset


@pytest.fixture
def dataset(tmp_path):
    return open_dataset(write_dataset(tmp_path / "d", "brats2021", n=3, shape=(30, 34, 26)))


def test_crop_zscore_and_exact_inverse(dataset):
    loaded = load_case(dataset.cases[0])
    pre = preprocess(loaded, PreprocessParams(None, crop_margin=2))
    start, stop = brain_bbox(loaded.image, 2)
    assert pre.image.shape[1:] == tuple(b - a for a, b in zip(start, stop))
    inside = pre.brain.astype(bool)
    means = pre.image[:, inside].astype(np.float32).mean(1)
    stds = pre.image[:, inside].astype(np.float32).std(1)
    assert np.allclose(means, 0, atol=1e-2) and np.allclose(stds, 1, atol=1e-2)
    assert np.all(pre.image[:, ~inside] == 0)
    # Without resampling the inverse is exact.
    assert np.array_equal(restore_labels(pre.seg, pre.meta), loaded.seg)


def test_resampling_inverts_to_the_original_shape(dataset):
    loaded = load_case(dataset.cases[1])
    pre = preprocess(loaded, PreprocessParams((2.0, 2.0, 2.0), crop_margin=2))
    cropped = pre.meta.cropped_shape
    assert pre.image.shape[1:] == tuple(round(n / 2) for n in cropped)
    one_hot = np.eye(4, dtype=np.float32)[pre.seg].transpose(3, 0, 1, 2)
    probs = restore_probabilities(one_hot, pre.meta)
    assert probs.shape == (4,) + loaded.shape
    restored = restore_labels(pre.seg, pre.meta)
    assert restored.shape == loaded.shape
    tumour = loaded.seg > 0
    dice = 2 * (tumour & (restored > 0)).sum() / (tumour.sum() + (restored > 0).sum())
    assert dice > 0.85  # 2 mm round trip of a small blob keeps its shape


def test_cache_hit_miss_and_invalidation(dataset, tmp_path):
    params = PreprocessParams(None, 2)
    cache = PreprocessCache(params, tmp_path / "cache")
    first = [cache.get(c) for c in dataset.cases]
    assert (cache.hits, cache.misses) == (0, 3)
    again = [cache.get(c) for c in dataset.cases]
    assert (cache.hits, cache.misses) == (3, 3)
    assert isinstance(again[0].image, np.memmap) and again[0].image.dtype == np.float16
    assert np.array_equal(np.asarray(first[0].image), np.asarray(again[0].image))
    # Touching one file invalidates only that case.
    path = dataset.cases[1].images["t1ce"].path
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    for c in dataset.cases:
        cache.get(c)
    assert (cache.hits, cache.misses) == (5, 4)
    # A different parameter is a different entry.
    other = PreprocessCache(PreprocessParams((2.0, 2.0, 2.0), 2), tmp_path / "cache")
    other.get(dataset.cases[0])
    assert other.misses == 1


def test_unlabeled_view_never_reads_the_seg(dataset, tmp_path):
    cache = PreprocessCache(PreprocessParams(None, 2), tmp_path / "cache")
    hidden = dataset.cases[0].without_seg()
    assert cache.get(hidden).seg is None
