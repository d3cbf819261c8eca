"""Our checkpoint format: what a file holds, how it is written and read back.

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

``deflate`` compresses the file's entries (zip's deflate, which ``torch.load`` reads as
it is): int8 weights are not uniform bytes, so SiamRPN's file shrinks by about an eighth.
"""

from __future__ import annotations

import io
import pickle
import warnings
import zipfile
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import torch

from trackers.messages import first_line
from trackers.output import atomic_write
from trackers.protocol import TrackerError

FORMAT = "siamtrack-checkpoint"
VERSION = 1


class WeightsError(TrackerError):
    """A weights file that cannot be used; the message names the file and the reason."""


def save_checkpoint(
    path: str | Path,
    state_dict: Mapping[str, torch.Tensor],
    *,
    architecture: str,
    config: Mapping[str, Any],
    provenance: Mapping[str, Any] | None = None,
    half: bool = False,
    int8: Collection[str] = (),
    deflate: bool = False,
) -> Path:
    """Write atomically: a temporary file in the same folder, then rename over ``path``.

    ``half`` stores floating tensors as fp16; the weights named in ``int8`` are stored
    as int8 with a float32 scale per output channel (``quantize_rows``); ``deflate``
    compresses the file (``deflated``)."""
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
    atomic_torch_save(payload, path, deflate=deflate)
    return path


def deflated(saved: bytes) -> bytes:
    """The bytes of a ``torch.save`` file (a zip archive) with every entry deflated. torch
    writes its entries stored, uncompressed; its reader inflates deflated ones, so the
    result loads with ``torch.load`` as before (memory-mapped loading excepted)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(saved)) as source, \
            zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for info in source.infolist():
            target.writestr(info.filename, source.read(info))
    return out.getvalue()


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


def atomic_torch_save(payload: Mapping[str, Any], path: str | Path, *, deflate: bool = False) -> None:
    """``torch.save`` into a temporary file beside ``path``, fsync, then rename over it:
    a crash or a full disk leaves the earlier file as it was. ``deflate``: its entries
    compressed (``deflated``)."""
    with atomic_write(path, "wb") as f:
        if not deflate:
            torch.save(dict(payload), f)
            return
        buffer = io.BytesIO()
        torch.save(dict(payload), buffer)
        f.write(deflated(buffer.getvalue()))


def load_safely(path: Path) -> Any:
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
        first = first_line(exc)
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


def read_ours(path: Path, data: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state_dict, metadata)`` of a file in our format: every weight as float32."""
    tensors = _tensor_dict(path, data.get("state_dict"))
    state = {k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}
    state.update(_int8_weights(path, data.get("int8", {})))
    meta = {k: v for k, v in data.items() if k not in ("state_dict", "int8")}
    return state, meta


def check_finite(path: Path, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
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
    data = load_safely(path)
    if not (isinstance(data, dict) and data.get("format") == FORMAT):
        raise WeightsError(f"{path} is not a siamtrack checkpoint")
    state, meta = read_ours(path, data)
    return check_finite(path, state), meta
