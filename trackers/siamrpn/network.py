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


def pairwise_correlation(exemplar: torch.Tensor, search: torch.Tensor) -> torch.Tensor:
    """Eq. 2's correlation in the "group" manner of section 3.2.

    ``exemplar`` is N x K x C x h x w (K groups of C channels per pair, or N = 1 for an
    exemplar shared by every search region), ``search`` N x C x H x W. Output
    N x K x (H - h + 1) x (W - w + 1), where channel ``c`` is the correlation of group
    ``c`` with all C channels of its own search map. One grouped conv does every pair.
    """
    n, c, height, width = search.shape
    count, ec, eh, ew = exemplar.shape[1:]
    if ec != c:
        raise ValueError(f"exemplar groups have {ec} channels, search features {c}")
    if exemplar.shape[0] == 1:
        return F.conv2d(search, exemplar[0])
    if exemplar.shape[0] != n:
        raise ValueError(f"{exemplar.shape[0]} exemplars for {n} search regions")
    out = F.conv2d(search.reshape(1, n * c, height, width), exemplar.reshape(n * count, c, eh, ew), groups=n)
    return out.reshape(n, count, out.shape[-2], out.shape[-1])


@dataclass(frozen=True)
class RPNExemplar:
    """The exemplar branch's output, what the paper calls the "detection kernels"
    (section 4.1, Fig. 3): the exemplar as the RPN correlates it, in groups of C channels.

    ``cls``: N x 2k x C x 4 x 4 and ``reg``: N x 4k x C x 4 x 4.
    """

    cls: torch.Tensor
    reg: torch.Tensor


_OLD_NAMES = {"template_cls.": "exemplar_cls.", "template_reg.": "exemplar_reg."}
"""Our checkpoints written before the exemplar convs were named so (the bundled
``resources/weights/siamrpn.pt`` among them) call them ``rpn.template_cls`` and
``rpn.template_reg``; loading renames those keys (``_read_old_names``)."""


class UpChannelRPN(nn.Module):
    """Section 3.2: the pair-wise correlation section of the region proposal subnetwork.

    [phi(z)]_cls and [phi(z)]_reg raise the exemplar's channels by 2k and 4k (conv 3x3,
    6x6 -> 4x4); [phi(x)]_cls and [phi(x)]_reg keep C channels (22x22 -> 20x20). Each
    group of C exemplar channels is correlated with the search features; that gives
    17x17 maps (eq. 2).
    """

    def __init__(self, anchor_count: int = 5, channels: int = 256) -> None:
        super().__init__()
        self.anchor_count = anchor_count
        self.channels = channels
        self.exemplar_cls = nn.Conv2d(channels, 2 * anchor_count * channels, 3)
        self.exemplar_reg = nn.Conv2d(channels, 4 * anchor_count * channels, 3)
        self.search_cls = nn.Conv2d(channels, channels, 3)
        self.search_reg = nn.Conv2d(channels, channels, 3)
        # Not in the paper: a learnable 1x1 conv on A_reg, as in the released models. The
        # correlation's scale and offset bear no relation to the normalised deltas of
        # eq. 3 (mostly |d| < 1, dw and dh centred on ln(target / anchor)); a per-channel
        # affine (and mixing of an anchor's four outputs) lets training match them without
        # bending the shared exemplar convs. A_cls needs none: softmax sees only logit differences.
        self.reg_adjust = nn.Conv2d(4 * anchor_count, 4 * anchor_count, 1)
        self.register_load_state_dict_pre_hook(_read_old_names)

    def exemplar_branch(self, exemplar_features: torch.Tensor) -> RPNExemplar:
        """The RPN's exemplar branch (the paper's "template branch"): run once per exemplar
        (section 4.2)."""
        n = exemplar_features.shape[0]
        k, c = self.anchor_count, self.channels
        cls = self.exemplar_cls(exemplar_features)
        reg = self.exemplar_reg(exemplar_features)
        # "the channel number in a group of [phi(z)] is the same as the overall channel
        # number of [phi(x)]": split 2kC (4kC) channels into 2k (4k) groups of C.
        return RPNExemplar(
            cls=cls.reshape(n, 2 * k, c, cls.shape[-2], cls.shape[-1]),
            reg=reg.reshape(n, 4 * k, c, reg.shape[-2], reg.shape[-1]),
        )

    def forward(
        self, exemplar: RPNExemplar, search_features: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Eq. 2: A_cls = [phi(x)]_cls * [phi(z)]_cls, A_reg = [phi(x)]_reg * [phi(z)]_reg."""
        a_cls = pairwise_correlation(exemplar.cls, self.search_cls(search_features))
        a_reg = pairwise_correlation(exemplar.reg, self.search_reg(search_features))
        # Not in the paper: a fixed 1 / sqrt(C h w) on both correlations (as scaled
        # dot-product attention; SiamFC's authors fix 1e-3 on theirs for the same reason).
        # Eq. 2 sums C x 4 x 4 = 4096 products; unscaled, a freshly initialised A_cls
        # starts at |logits| ~ 100 (saturated softmax) and the bilinear A_reg is so stiff
        # that plain SGD on one pair diverged even at lr 1e-6 (stable at 1e-5 with the
        # scale). A constant adds no parameter to the paper's network.
        scale = (exemplar.cls.shape[2] * exemplar.cls.shape[3] * exemplar.cls.shape[4]) ** -0.5
        return a_cls * scale, self.reg_adjust(a_reg * scale)


def _read_old_names(
    module: nn.Module, state_dict: dict[str, torch.Tensor], prefix: str, *_args: object
) -> None:
    """Rename ``template_cls`` / ``template_reg`` keys of an older checkpoint (see ``_OLD_NAMES``)."""
    for key in [k for k in state_dict if k.startswith(prefix)]:
        rest = key[len(prefix) :]
        for old, new in _OLD_NAMES.items():
            if rest.startswith(old):
                state_dict[prefix + new + rest[len(old) :]] = state_dict.pop(key)


class SiamRPNNet(nn.Module):
    """zeta(phi(x); phi(z)) of eq. 9: a shared backbone phi and the RPN zeta.

    ``exemplar_branch`` is the whole exemplar branch (backbone + the RPN's exemplar
    convs, the "meta-learner" of section 4.1); ``detect`` the detection branch. Tracking
    runs the exemplar branch once on the first frame and ``detect`` on every frame (Fig. 3).
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

    def exemplar_branch(self, exemplar: torch.Tensor) -> RPNExemplar:
        return self.rpn.exemplar_branch(self._features(exemplar))

    def detect(self, exemplar: RPNExemplar, search: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(A_cls, A_reg)``: N x 2k x 17 x 17 and N x 4k x 17 x 17 for 255 x 255 inputs."""
        return self.rpn(exemplar, self._features(search))

    def forward(self, exemplar: torch.Tensor, search: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training: one exemplar per search region (both N x 3 x ...).

        With ``cached_layers = n`` the inputs are the outputs of the backbone's first n
        layers already (frozen ones, cached by ``training.feature_cache``): only the rest
        of the backbone and the RPN run."""
        if self.cached_layers:
            layers = list(self.backbone.children())[self.cached_layers :]
            for layer in layers:
                exemplar, search = layer(exemplar), layer(search)
            return self.rpn(self.rpn.exemplar_branch(exemplar), search)
        return self.detect(self.exemplar_branch(exemplar), search)


def init_weights(net: nn.Module, seed: int = 0) -> None:
    """Seeded He-scaled Gaussian init, shared with SiamFC (its section 4.1).

    The paper starts the backbone from ImageNet weights (section 5.1) and says nothing
    of the RPN's init; without either, this is what an untrained tracker runs on, and it
    is seeded so that two untrained trackers behave identically.
    """
    _he_init(net, seed=seed)
