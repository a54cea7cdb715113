"""int8 scheme: per-channel weights, calibrated per-tensor inputs, simulation, QAT, checkpoints."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from test_prune_job import run_job
from torch import nn

from rt3d_mlir.contracts.checkpoint import read_checkpoint, save_checkpoint
from rt3d_mlir.errors import ModelLoadError
from rt3d_mlir.models import build_model
from rt3d_mlir.quantization import (
    INT8_MAX,
    SCHEME,
    calibrate,
    quantize_weight,
    quantized_layers,
    simulated_int8,
    validate_scales,
)

# The deviation of the int8 scheme from f32, on the outputs of the models below with random
# weights and calibration on the input itself: the f32 logits' max |difference| over their max.
INT8_MAX_RELATIVE_ERROR = 5e-2


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv3d(3, 8, 3, padding=1)
        self.conv2 = nn.Conv3d(8, 16, (1, 3, 3), stride=2, padding=(0, 1, 1), bias=False)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = self.conv2(F.relu(self.conv1(x)))
        return self.fc(x.mean(dim=(2, 3, 4)))


def test_weights_quantize_per_output_channel():
    torch.manual_seed(0)
    weight = torch.randn(6, 4, 3, 3, 3) * torch.logspace(-3, 1, 6).reshape(6, 1, 1, 1, 1)
    weight[2] = 0
    q, scales = quantize_weight(weight)
    assert q.dtype == torch.int8 and scales.shape == (6,)
    assert int(q.abs().max()) == INT8_MAX
    peaks = q.reshape(6, -1).abs().amax(dim=1)
    assert peaks.tolist() == [127, 127, 0, 127, 127, 127] and scales[2] == 1
    restored = q.float() * scales.reshape(-1, 1, 1, 1, 1)
    assert ((restored - weight).abs() <= scales.reshape(-1, 1, 1, 1, 1) / 2 * (1 + 1e-6)).all()


def test_per_channel_weights_commute_with_batch_norm_folding():
    """Folding a BN multiplies each filter by one number: the integers stay the same."""
    torch.manual_seed(1)
    weight = torch.randn(32, 16, 3, 3, 3)
    factor = torch.rand(32) * 4 + 0.1
    q, scales = quantize_weight(weight)
    q_folded, scales_folded = quantize_weight(weight * factor.reshape(-1, 1, 1, 1, 1))
    differ = (q.int() - q_folded.int()).abs()
    assert int(differ.max()) <= 1 and float((differ > 0).float().mean()) < 1e-3  # ties at .5 may flip
    torch.testing.assert_close(scales_folded, scales * factor, rtol=1e-6, atol=0)


def test_calibration_records_max_abs_input_over_batches():
    torch.manual_seed(2)
    model = Tiny()
    batches = [torch.randn(2, 3, 4, 8, 8), torch.randn(1, 3, 4, 8, 8) * 3]
    seen = []
    scales = calibrate(model, batches, progress=seen.append)
    assert seen == [2, 1] and model.training  # mode restored
    assert set(scales) == {"conv1", "conv2", "fc"}
    assert scales["conv1"] == pytest.approx(max(float(b.abs().max()) for b in batches) / INT8_MAX)
    with torch.no_grad():
        hidden = [F.relu(model.conv1(b)) for b in batches]
    assert scales["conv2"] == pytest.approx(max(float(h.abs().max()) for h in hidden) / INT8_MAX, rel=1e-6)


def test_simulation_is_the_integer_computation():
    """A simulated int8 conv equals int32 accumulation of the integers, rescaled, plus bias."""
    torch.manual_seed(3)
    conv = nn.Conv3d(4, 8, 3, padding=1)
    x = torch.randn(1, 4, 5, 6, 6)
    scale = float(x.abs().max()) / INT8_MAX
    with simulated_int8(conv, {"": scale}), torch.no_grad():
        simulated = conv(x)
    qx = torch.clamp(torch.round(x / scale), -127, 127).double()
    qw, w_scales = quantize_weight(conv.weight)
    accumulated = F.conv3d(qx, qw.double(), padding=1)  # integers: exact in float64
    assert torch.equal(accumulated, torch.round(accumulated))
    expected = accumulated * scale * w_scales.double().reshape(1, -1, 1, 1, 1) + conv.bias.double().reshape(
        1, -1, 1, 1, 1
    )
    torch.testing.assert_close(simulated.double(), expected, rtol=1e-5, atol=1e-6)
    assert "forward" not in vars(conv)  # the class's forward is back


@pytest.mark.parametrize("arch", ["c3d", "tv:r3d_18"])
def test_int8_stays_within_its_tolerance_of_f32(arch):
    torch.manual_seed(4)
    kwargs = {"width": 0.25, "input_size": [16, 32, 32]} if arch == "c3d" else {}
    model = build_model(arch, **kwargs).eval()
    x = torch.rand(2, 3, 16, 32, 32) if arch == "c3d" else torch.rand(1, 3, 4, 32, 32)
    scales = calibrate(model, [x])
    assert len(scales) == len(list(quantized_layers(model)))
    with torch.no_grad():
        expected = model(x)
        with simulated_int8(model, scales):
            got = model(x)
    error = float((got - expected).abs().max() / expected.abs().max())
    assert 0 < error < INT8_MAX_RELATIVE_ERROR


def test_simulation_trains_through_the_rounding():
    torch.manual_seed(5)
    model = Tiny()
    x = torch.randn(2, 3, 4, 8, 8)
    scales = calibrate(model, [x])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with simulated_int8(model, scales):
        loss = model(x).square().mean()
        loss.backward()
    assert model.state_dict().keys() == before.keys()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and float(parameter.grad.abs().sum()) > 0, name


def test_scale_and_calibration_errors():
    model = Tiny()
    good = {"conv1": 0.1, "conv2": 0.2, "fc": 0.3}
    assert validate_scales(model, good, "here") == good
    with pytest.raises(ValueError, match="no int8 scale for layer 'fc'"):
        validate_scales(model, {"conv1": 0.1, "conv2": 0.2}, "here")
    with pytest.raises(ValueError, match="'conv9', which is not a conv or linear layer"):
        validate_scales(model, {**good, "conv9": 1.0}, "here")
    for bad in (0.0, -1.0, math.nan, math.inf, "1", True):
        with pytest.raises(ValueError, match="not a positive number"):
            validate_scales(model, {**good, "fc": bad}, "here")
    with pytest.raises(ValueError, match="at least one clip"):
        calibrate(model, [])
    with pytest.raises(ValueError, match="non-finite"):
        calibrate(model, [torch.full((1, 3, 4, 8, 8), math.nan)])


def test_checkpoint_carries_the_scales(tmp_path):
    model = build_model("c3d", width=0.125, input_size=[16, 32, 32])
    scales = calibrate(model, [torch.rand(1, 3, 16, 32, 32)])
    path = tmp_path / "q.pt"
    save_checkpoint(path, "c3d", {"width": 0.125, "input_size": [16, 32, 32]}, model,
                    quantization={"scheme": SCHEME, "input_scales": scales})
    checkpoint = read_checkpoint(path)
    assert checkpoint.int8_scales == scales
    checkpoint.build_module()
    raw = torch.load(path, weights_only=True)
    for record, message in (
        ({"scheme": "int4", "input_scales": scales}, "unknown scheme"),
        ({"scheme": SCHEME}, "without per-layer input scales"),
        ({"scheme": SCHEME, "input_scales": {**scales, "features.conv1a": -1.0}}, "not a positive number"),
        ({"scheme": SCHEME, "input_scales": {"features.conv1a": 1.0}}, "no int8 scale for layer"),
    ):
        torch.save({**raw, "quantization": record}, path)
        with pytest.raises(ModelLoadError, match=message):
            read_checkpoint(path).build_module()


def test_prune_job_calibrates_and_retrains_with_int8(tmp_path):
    report = run_job(tmp_path, "q", int8=True, qat_epochs=1, calibration_clips=8, retrain_epochs=1)
    assert {"int8_calibrated", "int8_qat"} <= set(report["accuracy"])
    assert [h["phase"] for h in report["history"]][-1] == "quantize"
    checkpoint = read_checkpoint(tmp_path / "q.pt")
    model = checkpoint.build_module()
    scales = checkpoint.int8_scales
    assert scales is not None and set(scales) == {name for name, _ in quantized_layers(model)}
    raw = checkpoint.state_dict
    weight = raw["features.conv3a.weight"]
    assert float((weight == 0).float().mean()) > 0.3  # the masks held through int8 retraining
    with simulated_int8(model.eval(), scales), torch.no_grad():
        assert torch.isfinite(model(torch.rand(*checkpoint.input_shape))).all()


def test_a_finished_run_is_quantized_without_pruning_again(tmp_path):
    plain = run_job(tmp_path, "r", retrain_epochs=1)
    assert "int8_calibrated" not in plain["accuracy"]
    report = run_job(tmp_path, "r", retrain_epochs=1, int8=True, calibration_clips=8)
    phases = [h["phase"] for h in report["history"]]
    assert phases == [h["phase"] for h in plain["history"]]  # calibration only: no epochs added
    assert report["accuracy"]["final"] == plain["accuracy"]["final"]
    assert read_checkpoint(tmp_path / "r.pt").int8_scales is not None
    with pytest.raises(ValueError, match="different int8 settings"):
        run_job(tmp_path, "r", retrain_epochs=1, int8=True, calibration_clips=16)


def test_prune_cli_int8_options():
    from rt3d_mlir.tools.prune import build_parser, config_from_args

    base = ["--flops-reduction", "2", "-o", "x.pt"]
    config = config_from_args(build_parser().parse_args([*base, "--qat-epochs", "3"]))
    assert config.int8 and config.qat_epochs == 3 and config.calibration_clips == 64
    config = config_from_args(build_parser().parse_args([*base, "--int8", "--calibration-clips", "5"]))
    assert config.int8 and config.qat_epochs == 0 and config.calibration_clips == 5
    assert not config_from_args(build_parser().parse_args(base)).int8
