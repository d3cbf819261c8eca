"""Checkpoints and devices.

Our checkpoint is a plain dict saved with ``torch.save``::

    {"format": "siamtrack-checkpoint", "version": 1,
     "architecture": "siamfc-alexnet", "config": {...}, "provenance": {...},
     "state_dict": {name: tensor},
     "int8": {name: {"values": int8 tensor, "scale": float32 tensor}}}   # optional

``int8`` holds large weights stored at one byte each (``save_checkpoint(int8=...)``):
symmetric per output channel, ``weight[i] = values[i] * scale[i]``. It exists for
SiamRPN's up-channel head, whose 18 M parameters are 36 MB even in fp16; loading
turns them back into float32, so every tracker sees an ordinary state dict.

It holds only tensors, strings, numbers, lists and dicts, so it loads with
``torch.load(weights_only=True)``: a file that would run code when unpickled is
refused, never executed.
"""

from __future__ import annotations

import logging
import pickle
import warnings
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trackers.protocol import TrackerError

log = logging.getLogger(__name__)

FORMAT = "siamtrack-checkpoint"
VERSION = 1


class WeightsError(TrackerError):
    """A weights file that cannot be used; the message names the file and the reason."""


def choose_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when there is one; ``cuda`` without CUDA is an error, not a silent CPU."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise TrackerError("--device cuda was asked for, but torch sees no CUDA device")
        return torch.device(device)
    raise TrackerError(f"unknown device {device!r}; use auto, cpu or cuda")


def save_checkpoint(
    path: str | Path,
    state_dict: Mapping[str, torch.Tensor],
    *,
    architecture: str,
    config: Mapping[str, Any],
    provenance: Mapping[str, Any] | None = None,
    half: bool = False,
    int8: Collection[str] = (),
) -> Path:
    """Write atomically: a temporary file in the same folder, then rename over ``path``.

    ``half`` stores floating tensors as fp16; the weights named in ``int8`` are stored
    as int8 with a float32 scale per output channel (``quantize_rows``)."""
    path = Path(path)
    unknown = sorted(set(int8) - set(state_dict))
    if unknown:
        raise ValueError(f"int8 names weights the state dict does not have: {', '.join(unknown)}")
    tensors = {
        k: (v.detach().to("cpu").half() if half and v.is_floating_point() else v.detach().to("cpu"))
        for k, v in state_dict.items()
        if k not in int8
    }
    quantized = {}
    for name in int8:
        values, scale = quantize_rows(state_dict[name].detach().to("cpu"))
        quantized[name] = {"values": values, "scale": scale}
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": architecture,
        "config": dict(config),
        "provenance": dict(provenance or {}),
        "state_dict": tensors,
    }
    if quantized:
        payload["int8"] = quantized
    atomic_torch_save(payload, path)
    return path


def quantize_rows(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``weight`` as int8 values and a float32 scale per row (output channel), symmetric:
    the largest magnitude of each row maps to 127, so every weight is kept to within half
    a step (``max |row| / 254``). A row of zeros gets scale 1 (its values are all zero)."""
    if not weight.is_floating_point() or weight.dim() < 1:
        raise ValueError("only floating tensors with at least one dimension are stored as int8")
    rows = weight.float().reshape(weight.shape[0], -1)
    peak = rows.abs().amax(dim=1)
    scale = torch.where(peak > 0, peak / 127.0, torch.ones_like(peak))
    values = torch.round(rows / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return values.reshape(weight.shape), scale


def dequantize_rows(values: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The float32 weight that ``quantize_rows`` stored."""
    return values.float() * scale.float().reshape(-1, *([1] * (values.dim() - 1)))


def atomic_torch_save(payload: Mapping[str, Any], path: str | Path) -> None:
    """``torch.save`` into a temporary file beside ``path``, fsync, then rename over it:
    a crash or a full disk leaves the earlier file as it was."""
    from trackers.output import atomic_write

    with atomic_write(path, "wb") as f:
        torch.save(dict(payload), f)


def _load_safely(path: Path) -> Any:
    if not path.is_file():
        if path.exists():  # a FIFO would block torch.load until a writer appears
            raise WeightsError(f"{path} is not a regular file (a folder, a FIFO, a device or a socket)")
        raise WeightsError(f"weights file not found: {path}")
    try:
        with warnings.catch_warnings():
            # A damaged file can announce an odd pickle protocol; the error below says enough.
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses any global it does not know: that is code, not weights. An
        # opcode it does not know may be damage or a plain pickle (which may run code):
        # both are refused, and the message keeps torch's one line that says which.
        reason = _unpickling_reason(exc)
        if "GLOBAL" in reason:
            raise WeightsError(f"refusing {path}: loading it would run code ({reason})") from None
        raise WeightsError(
            f"refusing {path}: not a plain tensor file; damaged, or a pickle that could run code ({reason})"
        ) from None
    except MemoryError:
        raise WeightsError(f"cannot read weights {path}: it asks for more memory than there is") from None
    except Exception as exc:  # noqa: BLE001 - a damaged file makes the unpickler fail in any way
        # Seen on damaged files: RuntimeError, EOFError, BadZipFile, KeyError, IndexError,
        # AssertionError, struct.error. All mean the same to the user.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsError(f"cannot read weights {path}: truncated or not a torch file ({first})") from None


def _unpickling_reason(exc: BaseException) -> str:
    """The line of torch's long weights_only message that names the problem."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    for line in lines:
        if "GLOBAL" in line or line.startswith("Unsupported"):
            return line
    return lines[0] if lines else type(exc).__name__


def _tensor_dict(path: Path, state: Any) -> dict[str, torch.Tensor]:
    """``state`` checked to be a mapping of names to tensors, as our format promises."""
    if not isinstance(state, Mapping):
        raise WeightsError(f"{path} is damaged: its state_dict is a {type(state).__name__}, not a mapping")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise WeightsError(f"{path} is damaged: state_dict entry {key!r} is not a named tensor")
    return dict(state)


def _int8_weights(path: Path, stored: Any) -> dict[str, torch.Tensor]:
    """The ``int8`` section back as float32 weights, checked as strictly as the state dict."""
    if not isinstance(stored, Mapping):
        raise WeightsError(f"{path} is damaged: its int8 section is a {type(stored).__name__}, not a mapping")
    weights = {}
    for name, entry in stored.items():
        values = entry.get("values") if isinstance(entry, Mapping) else None
        scale = entry.get("scale") if isinstance(entry, Mapping) else None
        if (
            not isinstance(name, str)
            or not isinstance(values, torch.Tensor)
            or not isinstance(scale, torch.Tensor)
            or values.dtype != torch.int8
            or values.dim() < 1
            or scale.shape != (values.shape[0],)
        ):
            raise WeightsError(
                f"{path} is damaged: int8 entry {name!r} is not int8 values with a scale per row"
            )
        weights[name] = dequantize_rows(values, scale)
    return weights


def _ours(path: Path, data: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state_dict, metadata)`` of a file in our format: every weight as float32."""
    tensors = _tensor_dict(path, data.get("state_dict"))
    state = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    state.update(_int8_weights(path, data.get("int8", {})))
    meta = {k: v for k, v in data.items() if k not in ("state_dict", "int8")}
    return state, meta


def _finite(path: Path, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state``, if every floating tensor in it is finite; a WeightsError naming the first that is not."""
    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise WeightsError(
                f"refusing {path}: tensor {key!r} holds NaN or infinite values (a diverged training run?)"
            )
    return state


def load_own_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state_dict, metadata)`` of one of our checkpoints, whatever its architecture
    (``metadata["architecture"]`` names it); foreign layouts are refused."""
    path = Path(path)
    data = _load_safely(path)
    if not (isinstance(data, dict) and data.get("format") == FORMAT):
        raise WeightsError(f"{path} is not a siamtrack checkpoint")
    state, meta = _ours(path, data)
    return _finite(path, state), meta


def load_checkpoint(path: str | Path, architecture: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Return ``(state_dict, metadata)`` for ``architecture`` from our format or a known foreign one.

    Foreign layouts understood: the siamfc-pytorch checkpoint (``siamfc_alexnet_e50.pth``,
    a bare state dict with keys ``backbone.convN.{0,1}.*``). Weights that are not all
    finite are refused, naming the file and the tensor.
    """
    path = Path(path)
    state, meta = _load_checkpoint(path, architecture)
    return _finite(path, state), meta


def _load_checkpoint(path: Path, architecture: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    data = _load_safely(path)
    if isinstance(data, dict) and data.get("format") == FORMAT:
        found = data.get("architecture")
        if found != architecture:
            raise WeightsError(f"{path} holds weights for {found!r}, not {architecture!r}")
        return _ours(path, data)
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
    raise WeightsError(f"{path} is not a siamtrack checkpoint for {architecture!r} nor a layout we know")


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
    "conv_cls1": "rpn.template_cls",
    "conv_r1": "rpn.template_reg",
    "conv_cls2": "rpn.search_cls",
    "conv_r2": "rpn.search_reg",
    "regress_adjust": "rpn.reg_adjust",
}
_DASIAMRPN_BN_EPS = 1e-5
"""nn.BatchNorm2d's default, which DaSiamRPN keeps; ours is 1e-6 (trackers/siamrpn/network.py)."""
_OUR_BN_EPS = 1e-6
_TEMPLATE_KERNEL_SIDE = 4
"""Side of the RPN's template kernels for the 127 x 127 exemplar that DaSiamRPN and our
config both use (backbone 6 x 6, then the 3 x 3 template conv)."""


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
      not: the template convs (conv_cls1, conv_r1), whose output is one factor of the
      bilinear correlation, are multiplied by 64. This holds for the 127 exemplar only;
    * output channels are channel-major in theirs, anchor-major in ours: the kernel
      groups of conv_cls1 / conv_r1 and both sides of regress_adjust are permuted.

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
        raise WeightsError(f"{path}: conv_cls1 / conv_r1 shapes do not give 2k and 4k kernels of {channels}")
    anchors = k_cls // 2
    scale = float(channels * _TEMPLATE_KERNEL_SIDE * _TEMPLATE_KERNEL_SIDE) ** 0.5
    templates = (("conv_cls1", 2, "rpn.template_cls"), ("conv_r1", 4, "rpn.template_reg"))
    for theirs, per_anchor, ours in templates:
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


def load_into(module: nn.Module, path: str | Path, architecture: str, what: str) -> dict[str, Any]:
    """Load ``path`` (of ``architecture``) into ``module`` strictly; return the metadata."""
    state, meta = load_checkpoint(path, architecture)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise TrackerError(f"{path} does not fit the {what} network: {str(exc).splitlines()[0]}") from None
    return meta


def load_or_random(
    net: nn.Module,
    *,
    weights: str | Path | None,
    default_path: Path,
    name: str,
    init: Callable[[nn.Module], None],
    load: Callable[[nn.Module, Path], object],
) -> bool:
    """Load the given weights, else the bundled default; with neither, initialise ``net``
    randomly and say so (a warning on this module's logger). Returns True when the network is untrained.

    A ``weights`` path the user gave must exist: only the bundled default may be missing.
    """
    path = Path(weights) if weights is not None else default_path
    if weights is None and not path.is_file():
        init(net)
        log.warning(
            "WARNING: %s has no trained weights (%s is missing): it runs on RANDOM "
            "weights and its boxes mean little. Train some with `siamtrack train`.",
            name,
            path,
        )
        return True
    load(net, path)
    return False
