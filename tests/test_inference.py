import numpy as np
import torch

from brats_ssl.config import preset
from brats_ssl.inference import InferenceOptions, WindowPredictor, predict_volume
from brats_ssl.run.model import build_model


def _model():
    torch.manual_seed(0)
    return build_model(preset("tiny")).eval()


def test_mc_runs_the_encoder_once_per_window():
    model = _model()
    calls = {"encode": 0, "decode": 0}
    encode, decode = model.encode, model.decode

    def counting_encode(x):
        calls["encode"] += x.shape[0]  # windows in this batch
        return encode(x)

    def counting_decode(state):
        calls["decode"] += 1
        return decode(state)

    model.encode, model.decode = counting_encode, counting_decode
    image = np.random.default_rng(0).normal(size=(4, 40, 40, 36)).astype(np.float32)
    options = InferenceOptions(patch_size=(32, 32, 32), overlap=0.25, sw_batch_size=2, mc_samples=6)
    prediction = predict_volume(model, image, options, torch.device("cpu"))
    windows = 8  # 2 per axis at 40/36 voxels with 32-voxel windows
    assert calls["encode"] == windows  # once per window, not 6 times
    assert calls["decode"] == windows // 2  # one tiled decode (6 samples) per batch of 2 windows
    assert prediction.mutual_information.max() > 0
    assert torch.allclose(prediction.probabilities.sum(0), torch.ones(40, 40, 36), atol=1e-4)


def test_deterministic_pass_has_no_epistemic_uncertainty_and_is_repeatable():
    model = _model()
    image = np.random.default_rng(1).normal(size=(4, 32, 32, 32)).astype(np.float32)
    options = InferenceOptions(patch_size=(32, 32, 32), mc_samples=1)
    a = predict_volume(model, image, options, torch.device("cpu"))
    b = predict_volume(model, image, options, torch.device("cpu"))
    assert a.expected_entropy is None and float(a.mutual_information.abs().max()) == 0.0
    assert torch.equal(a.probabilities, b.probabilities)
    assert 0 <= float(a.entropy.min()) and float(a.entropy.max()) <= 1


def test_windows_without_brain_are_skipped():
    model = _model()
    image = np.zeros((4, 64, 32, 32), np.float32)
    image[:, :20] = np.random.default_rng(2).normal(size=(4, 20, 32, 32))
    options = InferenceOptions(patch_size=(32, 32, 32), overlap=0.0, sw_batch_size=1)
    predictor = WindowPredictor(model, options, torch.device("cpu"))
    from monai.inferers import sliding_window_inference

    with torch.no_grad():
        probs, _ = sliding_window_inference(torch.from_numpy(image)[None], (32, 32, 32), 1, predictor, overlap=0.0)
    assert predictor.windows_run == 1  # the second window along x holds only zeros
    assert torch.all(probs[0, 0, 32:] == 1)  # background there
