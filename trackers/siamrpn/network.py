"""The Siamese-RPN network: Siamese feature extraction (section 3.1) and the region
proposal subnetwork with pair-wise up-channel correlation (section 3.2, eq. 2, Fig. 2).

Channel layouts follow section 4.2 (eq. 10, 11):

* ``A_cls`` has 2k channels; channel ``2a`` is the background and ``2a + 1`` (odd) the
  foreground activation of anchor ``a`` ("the odd channels on the classification
  feature maps represent the positive activation").
* ``A_reg`` has 4k channels; channels ``4a .. 4a + 3`` are ``dx, dy, dw, dh`` of anchor ``a``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from trackers.siamfc.network import init_weights as _he_init

ARCHITECTURE = "siamrpn-alexnet"


def _bn(channels: int) -> nn.BatchNorm2d:
    # The paper does not say whether its AlexNet has batch norm; we put one after every
    # conv as SiamFC's network in this project does (and as the released SiamRPN models do),
    # with the same eps / momentum.
    return nn.BatchNorm2d(channels, eps=1e-6, momentum=0.05)


class AlexNetBackbone(nn.Module):
    """Section 3.1: "the modified AlexNet, where the groups from conv2 and conv4 are removed".

    Fully convolutional without padding so that eq. 1 holds (stride 8). Conv5 has no
    groups either (the released models have none), no ReLU after conv5 (as SiamFC).
    Input RGB 0..255, N x 3 x H x W; 127 -> 6x6x256, 255 -> 22x22x256.
    """

    stride = 8
    channels = 256

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            nn.Conv2d(3, 96, 11, stride=2), _bn(96), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2)
        )
        self.conv2 = nn.Sequential(nn.Conv2d(96, 256, 5), _bn(256), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2))
        self.conv3 = nn.Sequential(nn.Conv2d(256, 384, 3), _bn(384), nn.ReLU(inplace=True))
        self.conv4 = nn.Sequential(nn.Conv2d(384, 384, 3), _bn(384), nn.ReLU(inplace=True))
        self.conv5 = nn.Sequential(nn.Conv2d(384, 256, 3), _bn(256))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv5(self.conv4(self.conv3(self.conv2(self.conv1(x)))))


def pairwise_correlation(kernels: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
    """Eq. 2's correlation in the "group" manner of section 3.2.

    ``kernels`` is N x K x C x h x w (K kernels of C channels per pair, or N = 1 for a
    template shared by every search image), ``search`` N x C x H x W. Output
    N x K x (H - h + 1) x (W - w + 1), where channel ``c`` is the correlation of kernel
    ``c`` with all C channels of its own search map. One grouped conv does every pair.
    """
    n, c, height, width = search.shape
    count, kc, kh, kw = kernels.shape[1:]
    if kc != c:
        raise ValueError(f"kernels have {kc} channels, search features {c}")
    if kernels.shape[0] == 1:
        return F.conv2d(search, kernels[0])
    if kernels.shape[0] != n:
        raise ValueError(f"{kernels.shape[0]} templates for {n} search images")
    out = F.conv2d(search.reshape(1, n * c, height, width), kernels.reshape(n * count, c, kh, kw), groups=n)
    return out.reshape(n, count, out.shape[-2], out.shape[-1])


@dataclass(frozen=True)
class RPNKernels:
    """The template branch's output: the detection kernels of section 4.1 / Fig. 3.

    ``cls``: N x 2k x C x 4 x 4 and ``reg``: N x 4k x C x 4 x 4.
    """

    cls: torch.Tensor
    reg: torch.Tensor


class UpChannelRPN(nn.Module):
    """Section 3.2: the pair-wise correlation section of the region proposal subnetwork.

    [phi(z)]_cls and [phi(z)]_reg raise the template's channels by 2k and 4k (conv 3x3,
    6x6 -> 4x4); [phi(x)]_cls and [phi(x)]_reg keep C channels (22x22 -> 20x20). Each
    group of C template channels is one kernel; correlation gives 17x17 maps (eq. 2).
    """

    def __init__(self, anchor_count: int = 5, channels: int = 256) -> None:
        super().__init__()
        self.anchor_count = anchor_count
        self.channels = channels
        self.template_cls = nn.Conv2d(channels, 2 * anchor_count * channels, 3)
        self.template_reg = nn.Conv2d(channels, 4 * anchor_count * channels, 3)
        self.search_cls = nn.Conv2d(channels, channels, 3)
        self.search_reg = nn.Conv2d(channels, channels, 3)
        # Not in the paper: a learnable 1x1 conv on A_reg, as in the released models. The
        # correlation's scale and offset bear no relation to the normalised deltas of
        # eq. 3 (mostly |d| < 1, dw and dh centred on ln(target / anchor)); a per-channel
        # affine (and mixing of an anchor's four outputs) lets training match them without
        # bending the shared kernels. A_cls needs none: softmax sees only logit differences.
        self.reg_adjust = nn.Conv2d(4 * anchor_count, 4 * anchor_count, 1)

    def kernels(self, template_features: torch.Tensor) -> RPNKernels:
        """The template branch of the RPN: run once per template (section 4.2)."""
        n = template_features.shape[0]
        k, c = self.anchor_count, self.channels
        cls = self.template_cls(template_features)
        reg = self.template_reg(template_features)
        # "the channel number in a group of [phi(z)] is the same as the overall channel
        # number of [phi(x)]": split 2kC (4kC) channels into 2k (4k) kernels of C.
        return RPNKernels(
            cls=cls.reshape(n, 2 * k, c, cls.shape[-2], cls.shape[-1]),
            reg=reg.reshape(n, 4 * k, c, reg.shape[-2], reg.shape[-1]),
        )

    def forward(
        self, kernels: RPNKernels, search_features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 2: A_cls = [phi(x)]_cls * [phi(z)]_cls, A_reg = [phi(x)]_reg * [phi(z)]_reg."""
        a_cls = pairwise_correlation(kernels.cls, self.search_cls(search_features))
        a_reg = pairwise_correlation(kernels.reg, self.search_reg(search_features))
        # Not in the paper: a fixed 1 / sqrt(C h w) on both correlations (as scaled
        # dot-product attention; SiamFC's authors fix 1e-3 on theirs for the same reason).
        # Eq. 2 sums C x 4 x 4 = 4096 products; unscaled, a freshly initialised A_cls
        # starts at |logits| ~ 100 (saturated softmax) and the bilinear A_reg is so stiff
        # that plain SGD on one pair diverged even at lr 1e-6 (stable at 1e-5 with the
        # scale). A constant adds no parameter to the paper's network.
        scale = (kernels.cls.shape[2] * kernels.cls.shape[3] * kernels.cls.shape[4]) ** -0.5
        return a_cls * scale, self.reg_adjust(a_reg * scale)


class SiamRPNNet(nn.Module):
    """zeta(phi(x); phi(z)) of eq. 9: a shared backbone phi and the RPN zeta.

    ``template`` is the whole template branch (backbone + kernel convs, the
    "meta-learner" of section 4.1); ``detect`` the detection branch. Tracking calls
    ``template`` once on the first frame and ``detect`` on every frame (Fig. 3).
    """

    def __init__(self, anchor_count: int = 5) -> None:
        super().__init__()
        self.backbone = AlexNetBackbone()
        self.rpn = UpChannelRPN(anchor_count, AlexNetBackbone.channels)
        self.cached_layers = 0
        """Training only: how many backbone layers ``forward``'s inputs have been through
        (0: they are images)."""

    @property
    def anchor_count(self) -> int:
        return self.rpn.anchor_count

    def _features(self, image: torch.Tensor) -> torch.Tensor:
        # fp32 features, whatever precision the backbone ran in
        return self.backbone(image).float()

    def template(self, exemplar: torch.Tensor) -> RPNKernels:
        return self.rpn.kernels(self._features(exemplar))

    def detect(self, kernels: RPNKernels, search: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(A_cls, A_reg)``: N x 2k x 17 x 17 and N x 4k x 17 x 17 for 255 x 255 inputs."""
        return self.rpn(kernels, self._features(search))

    def forward(self, exemplar: torch.Tensor, search: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training: one template per search image (both N x 3 x ...).

        With ``cached_layers = n`` the inputs are the outputs of the backbone's first n
        layers already (frozen ones, cached by ``training.feature_cache``): only the rest
        of the backbone and the RPN run."""
        if self.cached_layers:
            layers = list(self.backbone.children())[self.cached_layers :]
            for layer in layers:
                exemplar, search = layer(exemplar), layer(search)
            return self.rpn(self.rpn.kernels(exemplar), search)
        return self.detect(self.template(exemplar), search)


def init_weights(net: nn.Module, seed: int = 0) -> None:
    """Seeded He-scaled Gaussian init, shared with SiamFC (its section 4.1).

    The paper starts the backbone from ImageNet weights (section 5.1) and says nothing
    of the RPN's init; without either, this is what an untrained tracker runs on, and it
    is seeded so that two untrained trackers behave identically.
    """
    _he_init(net, seed=seed)
