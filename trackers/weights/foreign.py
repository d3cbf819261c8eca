"""Other projects' checkpoint layouts, mapped onto our networks so that they give the same outputs.

Understood: the siamfc-pytorch checkpoint (``siamfc_alexnet_e50.pth``, a bare state dict
with keys ``backbone.convN.{0,1}.*``) and DaSiamRPN's SiamRPNotb / SiamRPNvot; pysot's
depth-wise SiamRPN is recognised and refused with the reason (docs/checkpoints.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from trackers.weights.checkpoint import WeightsError


def read_foreign(
    path: Path, data: Any, architecture: str
) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """``(state_dict, metadata)`` of ``data`` (a loaded file) in a foreign layout we know for
    ``architecture``; None when it is in none of them."""
    if isinstance(data, dict) and architecture == "siamfc-alexnet" and _is_siamfc_pytorch(data):
        # Only tensors are mapped: anything else in a damaged file then shows as a missing key.
        return map_siamfc_pytorch({k: v for k, v in data.items() if isinstance(v, torch.Tensor)}), {
            "format": "siamfc-pytorch",
            "architecture": architecture,
            "config": {},
            "provenance": {"source": str(path), "layout": "huanglianghua/siamfc-pytorch"},
        }
    if isinstance(data, dict) and architecture == "siamrpn-alexnet" and _is_dasiamrpn(data):
        return map_dasiamrpn(data, path), {
            "format": "dasiamrpn",
            "architecture": architecture,
            "config": {},
            "provenance": {"source": str(path), "layout": "foolwood/DaSiamRPN SiamRPNotb / SiamRPNvot"},
        }
    if isinstance(data, dict) and architecture == "siamrpn-alexnet" and _is_pysot_depthwise(data):
        raise WeightsError(
            f"{path} is a pysot depth-wise correlation SiamRPN (siamrpn_alex_dwxcorr): its head correlates "
            "channel by channel and mixes with 1x1 convs, our SiamRPN has the up-channel head; see "
            "docs/checkpoints.md"
        )
    return None


def _is_siamfc_pytorch(data: Mapping[str, Any]) -> bool:
    return "backbone.conv1.0.weight" in data and "backbone.conv5.0.weight" in data


def map_siamfc_pytorch(data: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename siamfc-pytorch keys to ours.

    Their conv5 has no batch norm; ours does (section 2.6 puts one after every linear
    layer), so it becomes an exact identity: weight 1, bias 0, mean 0, var 1 - eps.
    """
    state: dict[str, torch.Tensor] = {}
    for key, value in data.items():
        if not key.startswith("backbone."):
            continue
        state["embedding." + key[len("backbone.") :]] = value.float() if value.is_floating_point() else value
    eps = 1e-6
    state["embedding.conv5.1.weight"] = torch.ones(256)
    state["embedding.conv5.1.bias"] = torch.zeros(256)
    state["embedding.conv5.1.running_mean"] = torch.zeros(256)
    state["embedding.conv5.1.running_var"] = torch.full((256,), 1.0 - eps)
    state["embedding.conv5.1.num_batches_tracked"] = torch.tensor(0)
    state["bias"] = torch.zeros(1)
    return state


# DaSiamRPN's featureExtract Sequential: conv, bn, maxpool, relu, conv, bn, maxpool, relu,
# conv, bn, relu, conv, bn, relu, conv, bn. Index of each conv and bn -> our convN block.
_DASIAMRPN_BACKBONE = {
    0: "conv1.0", 1: "conv1.1", 4: "conv2.0", 5: "conv2.1", 8: "conv3.0", 9: "conv3.1",
    11: "conv4.0", 12: "conv4.1", 14: "conv5.0", 15: "conv5.1",
}  # fmt: skip
_DASIAMRPN_HEAD = {
    "conv_cls1": "rpn.exemplar_cls",
    "conv_r1": "rpn.exemplar_reg",
    "conv_cls2": "rpn.search_cls",
    "conv_r2": "rpn.search_reg",
    "regress_adjust": "rpn.reg_adjust",
}
_DASIAMRPN_BN_EPS = 1e-5
"""nn.BatchNorm2d's default, which DaSiamRPN keeps; ours is 1e-6 (trackers/siamrpn/network.py)."""
_OUR_BN_EPS = 1e-6
_EXEMPLAR_GROUP_SIDE = 4
"""Side of the RPN's exemplar groups for the 127 x 127 exemplar that DaSiamRPN and our
config both use (backbone 6 x 6, then the 3 x 3 exemplar conv)."""


def _is_dasiamrpn(data: Mapping[str, Any]) -> bool:
    return all(k in data for k in ("featureExtract.0.weight", "conv_cls1.weight", "regress_adjust.weight"))


def _is_pysot_depthwise(data: Mapping[str, Any]) -> bool:
    # pysot saves a bare state dict or {"state_dict": ..., "epoch": ...}; keys may carry "module.".
    state = data.get("state_dict", data)
    if not isinstance(state, Mapping):
        return False
    return any(isinstance(k, str) and "rpn_head." in k and ".conv_kernel." in k for k in state)


def _channel_major_to_anchor_major(anchors: int, per_anchor: int) -> torch.Tensor:
    """``perm`` with ``ours[j] = theirs[perm[j]]`` for RPN output channels.

    DaSiamRPN's tracker reads A_cls as ``view(2, -1)`` and A_reg as ``view(4, -1)``
    (run_SiamRPN.py): channel ``c * k + a`` is value c of anchor a. Ours is anchor-major,
    ``per_anchor * a + c`` (network.py, eq. 10 and 11). The anchor order itself is the
    same: ratios [0.33, 0.5, 1, 2, 3] in that order, one scale.
    """
    ours = torch.arange(anchors * per_anchor)
    return (ours % per_anchor) * anchors + ours // per_anchor


def map_dasiamrpn(
    data: Mapping[str, torch.Tensor], path: str | Path = "<state dict>"
) -> dict[str, torch.Tensor]:
    """DaSiamRPN's SiamRPNotb / SiamRPNvot state dict as our SiamRPNNet's, giving the same outputs.

    Same architecture (AlexNet 3-96-256-384-384-256 with batch norm, up-channel RPN with
    k = 5, 1x1 regress_adjust); what differs is folded into the weights, exactly:

    * input: DaSiamRPN runs on BGR crops (cv2) in 0..255, ours on RGB in 0..255: conv1's
      input channels are reversed;
    * batch norm eps 1e-5 vs our 1e-6: ``running_var`` gains the difference, so
      ``var + eps`` is unchanged;
    * ReLU before max-pool (ours) vs after (theirs): the two commute, nothing to do;
    * our RPN multiplies both correlations by ``1 / sqrt(C * 4 * 4)`` = 1/64, theirs does
      not: the exemplar convs (conv_cls1, conv_r1), whose output is one factor of the
      bilinear correlation, are multiplied by 64. This holds for the 127 exemplar only;
    * output channels are channel-major in theirs, anchor-major in ours: the groups of
      C channels of conv_cls1 / conv_r1 and both sides of regress_adjust are permuted.

    SiamRPNBIG (twice the width, 512-channel RPN) does not fit our network and is refused.
    """
    # Old (PyTorch 0.3) files have no num_batches_tracked; a plain dict of tensors either way.
    source = {k: v for k, v in data.items() if isinstance(v, torch.Tensor)}
    conv1 = source.get("featureExtract.0.weight")
    if conv1 is None or conv1.shape[0] != 96:
        width = None if conv1 is None else conv1.shape[0]
        raise WeightsError(
            f"{path}: conv1 has {width} filters, our SiamRPN has 96; this is SiamRPNBIG (twice the widths, "
            "512-channel RPN) or another variant that does not fit the network"
        )
    bn = ("weight", "bias", "running_mean", "running_var")
    expected = [f"featureExtract.{i}.{p}" for i in (0, 4, 8, 11, 14) for p in ("weight", "bias")]
    expected += [f"featureExtract.{i}.{p}" for i in (1, 5, 9, 12, 15) for p in bn]
    expected += [f"{name}.{p}" for name in _DASIAMRPN_HEAD for p in ("weight", "bias")]
    missing = [k for k in expected if k not in source]
    if missing:
        raise WeightsError(
            f"{path}: DaSiamRPN layout, but {len(missing)} keys are missing (first: {missing[0]})"
        )

    state: dict[str, torch.Tensor] = {}
    for index, ours in _DASIAMRPN_BACKBONE.items():
        prefix = f"featureExtract.{index}."
        if ours.endswith(".0"):
            for p in ("weight", "bias"):
                state[f"backbone.{ours}.{p}"] = source[prefix + p].float().clone()
        else:
            for p in ("weight", "bias", "running_mean"):
                state[f"backbone.{ours}.{p}"] = source[prefix + p].float().clone()
            state[f"backbone.{ours}.running_var"] = (
                source[prefix + "running_var"].double() + (_DASIAMRPN_BN_EPS - _OUR_BN_EPS)
            ).float()
            tracked = source.get(prefix + "num_batches_tracked")
            state[f"backbone.{ours}.num_batches_tracked"] = (
                tracked.clone() if tracked is not None else torch.tensor(0, dtype=torch.long)
            )
    state["backbone.conv1.0.weight"] = state["backbone.conv1.0.weight"].flip(1)  # BGR -> RGB

    channels = source["conv_cls2.weight"].shape[0]
    k_cls = source["conv_cls1.weight"].shape[0] // channels
    k_reg = source["conv_r1.weight"].shape[0] // channels
    if k_cls % 2 or k_reg % 4 or k_cls // 2 != k_reg // 4:
        raise WeightsError(f"{path}: conv_cls1 / conv_r1 shapes do not give 2k and 4k groups of {channels}")
    anchors = k_cls // 2
    scale = float(channels * _EXEMPLAR_GROUP_SIDE * _EXEMPLAR_GROUP_SIDE) ** 0.5
    exemplar_convs = (("conv_cls1", 2, "rpn.exemplar_cls"), ("conv_r1", 4, "rpn.exemplar_reg"))
    for theirs, per_anchor, ours in exemplar_convs:
        perm = _channel_major_to_anchor_major(anchors, per_anchor)
        weight = source[f"{theirs}.weight"].float()
        bias = source[f"{theirs}.bias"].float()
        groups = anchors * per_anchor
        state[f"{ours}.weight"] = (weight.reshape(groups, channels, *weight.shape[1:])[perm] * scale).reshape(
            weight.shape
        )
        state[f"{ours}.bias"] = (bias.reshape(groups, channels)[perm] * scale).reshape(bias.shape)
    for theirs in ("conv_cls2", "conv_r2"):
        for p in ("weight", "bias"):
            state[f"{_DASIAMRPN_HEAD[theirs]}.{p}"] = source[f"{theirs}.{p}"].float().clone()
    perm = _channel_major_to_anchor_major(anchors, 4)
    state["rpn.reg_adjust.weight"] = source["regress_adjust.weight"].float()[perm][:, perm].clone()
    state["rpn.reg_adjust.bias"] = source["regress_adjust.bias"].float()[perm].clone()
    return state
