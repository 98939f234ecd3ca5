import numpy as np
import torch

from brats_ssl.data.augment import Augmenter, GaussianNoised


def _patch(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    label = np.zeros((24, 24, 24), np.uint8)
    label[6:18, 8:20, 5:15] = rng.integers(1, 4, (12, 12, 10))
    image = np.stack([label.astype(np.float32) + rng.normal(0, 0.1, label.shape).astype(np.float32)] * 4)
    return {
        "image": image,
        "label": label,
        "confidence": (label * 60).astype(np.uint8),
        "absent": (1 << label).astype(np.uint8),
    }


def test_label_like_maps_stay_aligned_voxel_for_voxel_with_the_label():
    augment = Augmenter(("label", "confidence", "absent"))
    moved = 0
    for seed in range(40):
        patch = _patch(seed)
        out = augment(patch, seed)
        assert {k: v.dtype for k, v in out.items()} == {k: v.dtype for k, v in patch.items()}
        assert np.array_equal(out["confidence"], out["label"] * 60)
        inside = out["absent"] > 0  # zero padding from rotations sets all three maps to 0 together
        assert np.array_equal(out["absent"][inside], (1 << out["label"][inside]).astype(np.uint8))
        assert set(np.unique(out["label"]).tolist()) <= {0, 1, 2, 3}
        # the image moved with its maps: its intensity still encodes the (moved) label
        assert np.corrcoef(out["image"][0].ravel(), out["label"].ravel())[0, 1] > 0.9
        moved += not np.array_equal(out["label"], patch["label"])
    assert moved > 20  # flips with p = 0.5 per axis: most patches change


def test_the_same_seed_gives_the_same_patch():
    augment = Augmenter(("label",))
    a, b = augment(_patch(1), 7), augment(_patch(1), 7)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_gaussian_noise_is_seeded_zero_mean_and_within_its_std():
    noise = GaussianNoised("image", prob=1.0, std=0.05)
    image = torch.zeros(4, 32, 32, 32)
    sigmas = []
    for seed in range(20):
        noise.set_random_state(seed)
        first = noise({"image": image})["image"]
        noise.set_random_state(seed)
        assert torch.equal(noise({"image": image})["image"], first)  # the step's seed fixes the noise
        assert first.dtype == torch.float32 and abs(float(first.mean())) < 0.002
        sigmas.append(float(first.std()))
    assert max(sigmas) <= 0.05 * 1.01 and min(sigmas) < 0.02 < max(sigmas)  # sigma drawn in [0, std]
    noise.set_random_state(0)
    skipped = GaussianNoised("image", prob=0.0, std=0.05)({"image": image})["image"]
    assert torch.equal(skipped, image)


def test_maps_with_channels_of_their_own_stay_aligned_with_the_label():
    """The teacher's class probabilities (C, *S) travel with the label through flips and affine
    resampling: their argmax stays the label voxel for voxel."""
    rng = np.random.default_rng(0)
    label = np.zeros((16, 16, 16), np.uint8)
    label[3:9, 4:12, 5:10] = 1
    label[6:14, 2:7, 8:15] = 2
    label[10:13, 10:14, 1:6] = 3
    probabilities = (np.eye(4, dtype=np.uint8)[label] * 200 + 10).transpose(3, 0, 1, 2)
    image = rng.normal(size=(4, 16, 16, 16)).astype(np.float32)
    augmenter = Augmenter(("label", "probabilities"))
    moved = 0
    for seed in range(12):
        out = augmenter({"image": image, "label": label, "probabilities": probabilities}, seed)
        assert out["probabilities"].shape == (4, 16, 16, 16) and out["probabilities"].dtype == np.uint8
        inside = out["probabilities"].sum(0) > 0
        assert (out["probabilities"].argmax(0)[inside] == out["label"][inside]).all()
        moved += not np.array_equal(out["label"], label)
    assert moved > 0  # the augmentation did move the maps
