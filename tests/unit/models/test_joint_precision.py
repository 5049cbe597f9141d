"""model.joint_bf16_on_cpu: the joint's output layer trains in bf16 on the CPU, and nothing a user
of the saved model sees changes (weights, keys, eval outputs, restore, stock export)."""

from __future__ import annotations

import pytest
import torch

from maya_asr.models import joint_precision
from maya_asr.models.joint_precision import Bf16TrainingLinear, install_bf16_joint_output


def _pair(seed: int = 0):
    torch.manual_seed(seed)
    linear = torch.nn.Linear(32, 70)
    return linear, Bf16TrainingLinear.replacing(linear)


def test_replacing_shares_the_parameters_and_state_dict_keys():
    linear, layer = _pair()
    assert layer.weight is linear.weight and layer.bias is linear.bias
    net_a = torch.nn.Sequential(torch.nn.ReLU(), linear)
    net_b = torch.nn.Sequential(torch.nn.ReLU(), layer)
    assert list(net_a.state_dict()) == list(net_b.state_dict())


def test_eval_and_no_grad_outputs_are_exactly_the_float32_linear():
    linear, layer = _pair()
    x = torch.randn(3, 5, 4, 32)
    layer.eval()
    assert torch.equal(layer(x), linear(x))
    layer.train()
    with torch.no_grad():
        assert torch.equal(layer(x), linear(x))


def test_training_output_is_float32_and_within_bf16_rounding_of_the_linear():
    linear, layer = _pair()
    x = torch.randn(3, 5, 4, 32)
    layer.train()
    out = layer(x)
    assert out.dtype == torch.float32
    ref = linear(x)
    assert not torch.equal(out, ref)  # it did run in bf16
    torch.testing.assert_close(out, ref, rtol=0.05, atol=0.05)


def test_training_gradients_are_float32_and_close_to_the_float32_gradients():
    torch.manual_seed(1)
    x = torch.randn(2, 6, 5, 32)
    target = torch.randn(2, 6, 5, 70)
    grads = []
    for cls in (torch.nn.Linear, Bf16TrainingLinear):
        torch.manual_seed(0)
        layer = cls(32, 70)
        layer.train()
        xi = x.clone().requires_grad_(True)
        ((layer(xi) - target) ** 2).mean().backward()
        assert layer.weight.grad.dtype == torch.float32 and xi.grad.dtype == torch.float32
        grads.append((layer.weight.grad, xi.grad))
    for ref, got in zip(grads[0], grads[1], strict=True):
        rel = (got - ref).norm() / ref.norm()
        assert rel < 0.02, f"bf16 gradient off by {rel:.3f} (relative)"


def _joint_like():
    joint = torch.nn.Module()
    joint.joint_net = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(8, 12))
    return joint


def test_install_swaps_the_output_layer_once_on_a_native_bf16_cpu(monkeypatch):
    monkeypatch.setattr(joint_precision, "cpu_has_native_bf16", lambda: True)
    joint = _joint_like()
    weight = joint.joint_net[-1].weight
    assert install_bf16_joint_output(joint)
    layer = joint.joint_net[-1]
    assert type(layer) is Bf16TrainingLinear and layer.weight is weight
    assert install_bf16_joint_output(joint) and joint.joint_net[-1] is layer  # idempotent


def test_install_keeps_float32_where_bf16_matmul_is_emulated(monkeypatch, caplog):
    monkeypatch.setattr(joint_precision, "cpu_has_native_bf16", lambda: False)
    caplog.set_level("INFO", logger=joint_precision.__name__)
    joint = _joint_like()
    assert not install_bf16_joint_output(joint)
    assert type(joint.joint_net[-1]) is torch.nn.Linear
    assert "no native bfloat16" in caplog.text


def test_install_refuses_a_joint_without_an_output_linear():
    joint = torch.nn.Module()
    joint.joint_net = torch.nn.Sequential(torch.nn.ReLU())
    with pytest.raises(ValueError, match="joint_bf16_on_cpu: false"):
        install_bf16_joint_output(joint)


def test_the_option_changes_no_eval_output_of_the_model(en_tokenizer_dir, monkeypatch):
    """Same weights with the option on and off: the joint's eval logits are bit-identical."""
    from model_support import smoke_config

    from maya_asr.models import MayaHybridTDTCTCModel

    monkeypatch.setattr(joint_precision, "cpu_has_native_bf16", lambda: True)
    torch.manual_seed(0)
    on = MayaHybridTDTCTCModel(smoke_config(en_tokenizer_dir, joint_bf16_on_cpu=True))
    off = MayaHybridTDTCTCModel(smoke_config(en_tokenizer_dir, joint_bf16_on_cpu=False))
    assert type(on.joint.joint_net[-1]) is Bf16TrainingLinear
    assert type(off.joint.joint_net[-1]) is torch.nn.Linear
    off.load_state_dict(on.state_dict())  # same keys both ways
    on.eval(), off.eval()
    f = torch.randn(2, 7, on.joint.enc.in_features)
    g = torch.randn(2, 4, on.joint.pred.in_features)
    with torch.no_grad():
        assert torch.equal(on.joint.joint(f, g), off.joint.joint(f, g))


def test_every_model_option_stays_out_of_the_stock_export():
    import dataclasses

    from maya_asr.models.model import MayaOptions
    from maya_asr.models.stock_export import MAYA_KEYS

    assert {f.name for f in dataclasses.fields(MayaOptions)} <= set(MAYA_KEYS)


def test_change_vocabulary_keeps_the_tdt_loss_and_the_bf16_joint(en_tokenizer_dir, monkeypatch):
    """NeMo's change_vocabulary rebuilds joint and loss (with a plain RNN-T loss); ours restores
    the configured TDT loss, its CPU dispatch and the bf16 layer."""
    from model_support import smoke_config

    from maya_asr.models import MayaHybridTDTCTCModel
    from maya_asr.models.model import DeviceTDTLoss

    monkeypatch.setattr(joint_precision, "cpu_has_native_bf16", lambda: True)
    model = MayaHybridTDTCTCModel(smoke_config(en_tokenizer_dir, joint_bf16_on_cpu=True))
    model.change_vocabulary(new_tokenizer_dir=str(en_tokenizer_dir), new_tokenizer_type="bpe")
    assert type(model.joint.joint_net[-1]) is Bf16TrainingLinear
    assert isinstance(model.loss._loss, DeviceTDTLoss)
    assert model.loss._loss.cpu_loss.durations == list(model.cfg.model_defaults.tdt_durations)
    assert model.joint._loss is model.loss


def test_a_model_trained_with_the_bf16_joint_saves_restores_and_exports_as_any_nemo_model(
    tiny_artifacts, tmp_path, monkeypatch
):
    """Trained through the training path with the option on (the bf16 layer in every step);
    the .nemo restores through NeMo's API with the same layer, and its stock export names
    neither the option nor our class."""
    import lightning.pytorch as pl
    from nemo.collections.asr.models import ASRModel
    from omegaconf import OmegaConf
    from train_support import smoke_train_config

    from maya_asr.models import export_stock_nemo
    from maya_asr.training.run import train

    # Forced on: where bf16 matmul is emulated the layer is slower, not different.
    monkeypatch.setattr(joint_precision, "cpu_has_native_bf16", lambda: True)

    class LayerSeen(pl.Callback):
        def __init__(self):
            self.types = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.types.append(type(pl_module.joint.joint_net[-1]))
            assert torch.isfinite(outputs["loss"])

    seen = LayerSeen()
    cfg = smoke_train_config(
        tiny_artifacts, tmp_path / "run", 2, dotlist=["model.joint_bf16_on_cpu=true"]
    )
    result = train(cfg, extra_callbacks=[seen])
    assert result.global_step == 2
    assert seen.types == [Bf16TrainingLinear, Bf16TrainingLinear]

    model = ASRModel.restore_from(str(result.nemo_path), map_location="cpu")
    assert model.cfg.joint_bf16_on_cpu is True
    assert type(model.joint.joint_net[-1]) is Bf16TrainingLinear
    stock_path = export_stock_nemo(model, "hi", tmp_path / "stock.nemo")
    stock = ASRModel.restore_from(str(stock_path), map_location="cpu")
    assert "joint_bf16_on_cpu" not in OmegaConf.to_container(stock.cfg)
    assert type(stock.joint.joint_net[-1]) is torch.nn.Linear
    torch.testing.assert_close(
        stock.joint.joint_net[-1].weight, model.joint.joint_net[-1].weight, rtol=0, atol=0
    )
