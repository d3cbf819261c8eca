"""The embedding phi of SiamFC (Table 1) and its cross-correlation head (eq. 2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

ARCHITECTURE = "siamfc-alexnet"


def _bn(channels: int) -> nn.BatchNorm2d:
    # Same eps/momentum as the authors' MatConvNet port so imported weights behave alike.
    return nn.BatchNorm2d(channels, eps=1e-6, momentum=0.05)


class AlexNetEmbedding(nn.Module):
    """Table 1: conv1-conv5 of an AlexNet, no padding, total stride 8.

    Batch norm follows every linear layer (section 2.4, "Network architecture"), ReLU
    follows every layer but conv5. The "chan. map" column of Table 1 (256x48, 384x192,
    256x192) means conv2, conv4 and conv5 are split in two groups, as in Krizhevsky et al.
    Input: RGB in 0..255, N x 3 x H x W. 127 -> 6x6x256, 255 -> 22x22x256.
    """

    stride = 8

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, 96, 11, stride=2), _bn(96), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2)
        )
        self.conv2 = nn.Sequential(
            nn.Conv2d(96, 256, 5, groups=2), _bn(256), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2)
        )
        self.conv3 = nn.Sequential(nn.Conv2d(256, 384, 3), _bn(384), nn.ReLU(inplace=True))
        self.conv4 = nn.Sequential(nn.Conv2d(384, 384, 3, groups=2), _bn(384), nn.ReLU(inplace=True))
        # No ReLU after conv5 (section 2.4, "Network architecture").
        self.conv5 = nn.Sequential(nn.Conv2d(384, 256, 3, groups=2), _bn(256))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv5(self.conv4(self.conv3(self.conv2(self.conv1(x)))))


def cross_correlation(exemplar: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
    """phi(z) * phi(x) of eq. 2, for every (exemplar, search) pair in one grouped conv.

    ``exemplar`` is 1 x C x h x w (shared by all search images, as in tracking) or
    N x C x h x w (one per search image, as in training); ``search`` is N x C x H x W.
    Returns N x 1 x (H-h+1) x (W-w+1).
    """
    n, c, height, width = search.shape
    if exemplar.shape[0] == 1:
        return F.conv2d(search, exemplar)
    if exemplar.shape[0] != n:
        raise ValueError(f"{exemplar.shape[0]} exemplars for {n} search images")
    out = F.conv2d(search.reshape(1, n * c, height, width), exemplar, groups=n)
    return out.reshape(n, 1, out.shape[-2], out.shape[-1])


class SiamFCNet(nn.Module):
    """f(z, x) = score_scale * (phi(z) * phi(x)) + b  (eq. 2)."""

    def __init__(self, score_scale: float = 0.001) -> None:
        super().__init__()
        self.embedding = AlexNetEmbedding()
        self.bias = nn.Parameter(torch.zeros(1))
        self.score_scale = score_scale

    def embed(self, image: torch.Tensor) -> torch.Tensor:
        return self.embedding(image)

    def score(self, exemplar_features: torch.Tensor, search_features: torch.Tensor) -> torch.Tensor:
        return cross_correlation(exemplar_features, search_features) * self.score_scale + self.bias

    def forward(self, exemplar: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
        return self.score(self.embed(exemplar), self.embed(search))


def init_weights(net: nn.Module, seed: int = 0) -> None:
    """Section 4.1: Gaussian initialisation scaled by the improved Xavier method (He et al.).

    Seeded, so that two untrained trackers built in one process behave identically.
    """
    generator = torch.Generator().manual_seed(seed)
    for module in net.modules():
        if isinstance(module, nn.Conv2d):
            fan_in = module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            std = (2.0 / fan_in) ** 0.5
            with torch.no_grad():
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * std)
                if module.bias is not None:
                    module.bias.zero_()
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
