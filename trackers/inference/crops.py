"""A frame's square crops as batches on the network's device: OpenCV on a CPU, one
``grid_sample`` per frame on a GPU."""

from __future__ import annotations

import warnings

import numpy as np
import torch

from trackers.geometry import crop_square


def crop_batch(crops: np.ndarray, device: torch.device) -> torch.Tensor:
    """N x H x W x 3 uint8 crops -> N x 3 x H x W uint8 on ``device``, channels_last.

    No copy on a CPU (a permuted view of the array) and no conversion: :class:`Embedding`
    casts once, to the dtype it runs in.
    """
    return torch.from_numpy(np.ascontiguousarray(crops)).to(device).permute(0, 3, 1, 2)


def crop_squares(
    frame: torch.Tensor,
    cx: float,
    cy: float,
    extents: np.ndarray | torch.Tensor,
    out: int,
    fill: np.ndarray | torch.Tensor,
) -> torch.Tensor:
    """Every scale's square crop in one ``grid_sample`` call, on whatever device ``frame`` is.

    The GPU twin of ``trackers.geometry.crop_square``: ``frame`` is 3 x H x W float (RGB,
    0..255, uploaded once per frame), or 4 x H x W with a fourth channel of ones (see
    below; ``FrameCrops`` adds it once per frame), ``extents`` the S crop sides in frame
    pixels (host values), and the result S x 3 x out x out. Output pixel j is centred at
    ``c - e/2 + (j + 0.5) e/out`` in continuous frame coordinates, as on the CPU path. With
    ``align_corners=False``, grid_sample's -1 and +1 are the frame's outer edges
    (continuous 0 and W), so the normalised coordinate is ``2 x / W - 1``. Outside the
    frame the crop takes ``fill`` (SiamFC Fig. 2), blended at the border exactly as a
    constant border would be.
    """
    channels, height, width = frame.shape
    if channels == 3:
        # a fourth channel of ones tells how much of each output pixel lies inside the frame
        frame = torch.cat([frame, torch.ones_like(frame[:1])], dim=0)
    sides = np.asarray(extents, dtype=np.float64).reshape(-1, 1)
    count = sides.shape[0]
    steps = (np.arange(out, dtype=np.float64) + 0.5) / out
    gx = 2.0 * (cx - sides / 2 + steps[None, :] * sides) / width - 1.0  # S x out
    gy = 2.0 * (cy - sides / 2 + steps[None, :] * sides) / height - 1.0
    # grid and fill computed on the host and sent in one small upload
    packed = np.concatenate([gx.ravel(), gy.ravel(), np.asarray(fill, dtype=np.float64).ravel()])
    packed = torch.from_numpy(packed.astype(np.float32)).to(frame.device, non_blocking=True)
    packed = packed.to(frame.dtype)
    n = count * out
    gx_d = packed[:n].reshape(count, 1, out).expand(count, out, out)
    gy_d = packed[n : 2 * n].reshape(count, out, 1).expand(count, out, out)
    colour = packed[2 * n : 2 * n + 3]
    grid = torch.stack([gx_d, gy_d], dim=-1)
    sampled = torch.nn.functional.grid_sample(
        frame[None].expand(count, -1, -1, -1), grid, mode="bilinear", padding_mode="zeros",
        align_corners=False,
    )
    inside = sampled[:, 3:4]
    return sampled[:, :3] + (1.0 - inside) * colour[None, :, None, None]


class FrameCrops:
    """Square crops of one frame, as batches on the network's device.

    On a GPU the frame is uploaded once, at the first crop, and every crop of that frame
    (all scales of the search region, DSiam's exemplar and background regions) is cut
    there by :func:`crop_squares`: one upload per frame instead of one per crop (issue 7,
    GPU path). On a CPU, OpenCV's warpAffine (``trackers.geometry.crop_square``) is faster
    than grid_sample, and the crops stay uint8 for :class:`Embedding` to cast once.
    ``on_device`` forces the tensor path on any device, which is how the CPU tests check
    the GPU path against the OpenCV one.
    """

    def __init__(self, frame: np.ndarray, device: torch.device, on_device: bool | None = None) -> None:
        self.frame = frame
        self.device = device
        self.on_device = device.type == "cuda" if on_device is None else on_device
        self._image: torch.Tensor | None = None

    def image(self) -> torch.Tensor:
        """The frame as 4 x H x W float on the device, RGB and a channel of ones (see
        :func:`crop_squares`), uploaded on first use."""
        if self._image is None:
            with warnings.catch_warnings():
                # frames may be read-only views; the tensor is only read, then copied
                warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
                host = torch.from_numpy(np.ascontiguousarray(self.frame))
            upload = host.to(self.device, non_blocking=True)
            rgb = upload.permute(2, 0, 1).float()
            self._image = torch.cat([rgb, torch.ones_like(rgb[:1])], dim=0)
        return self._image

    def squares(self, cx: float, cy: float, extents: np.ndarray, out: int, fill: np.ndarray) -> torch.Tensor:
        """N x 3 x out x out crops centred at (cx, cy), side ``extents[i]`` frame pixels,
        padded with ``fill`` outside the frame; channels_last."""
        extents = np.atleast_1d(np.asarray(extents, dtype=np.float64))
        if self.on_device:
            crops = crop_squares(self.image(), float(cx), float(cy), extents, out, fill)
            return crops.contiguous(memory_format=torch.channels_last)
        crops = np.stack([crop_square(self.frame, cx, cy, float(e), out, fill) for e in extents])
        return crop_batch(crops, self.device)
