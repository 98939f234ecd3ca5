import numpy as np
import pytest
import torch

from brats_ssl.data import confidence_codec


def test_confidence_keeps_zero_for_no_information():
    q = confidence_codec.encode(np.array([-0.5, 0.0, 0.5, 1.0, 2.0], np.float32))
    assert q.dtype == np.uint8 and q.tolist() == [1, 1, 128, 255, 255]  # never 0: that means "no information"
    assert q.min() > confidence_codec.NO_INFORMATION and q.max() == confidence_codec.CERTAIN


def test_confidence_round_trips_within_half_a_step():
    c = np.linspace(0, 1, 1001, dtype=np.float32)
    assert np.abs(confidence_codec.decode(confidence_codec.encode(c)) - c).max() <= 0.5 / 254 + 1e-6
    assert confidence_codec.decode(np.array([0, 1, 255], np.uint8)).tolist() == [0.0, 0.0, 1.0]


def test_numpy_and_torch_decoders_agree():
    q = np.arange(256, dtype=np.uint8)
    confidence, informed = confidence_codec.decode_tensor(torch.from_numpy(q))
    assert confidence.numpy() == pytest.approx(confidence_codec.decode(q))
    assert informed.tolist() == [False] + [True] * 255


def test_fractions_use_all_256_levels():
    x = np.array([-1.0, 0.0, 0.5, 1.0, 3.0], np.float32)
    q = confidence_codec.encode_fraction(x)
    assert q.dtype == np.uint8 and q.tolist() == [0, 0, 128, 255, 255]
    assert confidence_codec.decode_fraction(q).tolist() == pytest.approx([0, 0, 128 / 255, 1, 1])
