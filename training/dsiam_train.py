"""Joint training of DSiam on short clips through time (Guo et al. 2017, sections 3.5 and 3.6).

Section 3.5: "given a video sequence with N frames ... we track the target indicated at
the first frame via the network architecture defined in Fig. 5", get a score map
S_t at every frame, a logistic loss L_t against the ground-truth map J_t (eq. 10), and
propagate the total loss sum_t L_t "by backpropagation through time (BPTT) ... to all
parameters of our DSiam network, including elementwise weight maps, two RLR layers and
the regularization parameters λv and λw". Section 3.6 starts f^l from SiamFC's AlexNet,
the conv5 fusion map at ones and conv4's at zeros (``DSiamNet``'s initial values).

What one training item is here (``ClipDataset``): an exemplar O_1 from frame f_0 and L
search crops from frames f_1 < ... < f_L of the same sequence, all within ``max_gap``
frames of f_0, the successive ones at most ``frame_step`` valid frames apart (the paper
uses clips of 10 successive frames; L is 4 by default to fit a CPU). Deviation: f_1 lies
a random delay after f_0 instead of right after it, so that V (eq. 5-6), which takes
f(O_1) towards f(O_{t-1}), is trained on the appearance changes of t frames into a
track, not only of the first few frames.

What one step of the unrolled tracker is (``DSiamClipNet.forward``), for t = 1..L, exactly
what ``trackers.dsiam.tracker`` does between two frames:

* t = 1: V and W switched off ("Before tracking, we turn off the transformations V_0 and
  W_0", section 3.6); S_1 is eq. 2 with identities, fused with eq. 9;
* t > 1: V_{t-1} from f(O_1) and f(O_{t-1}) (eq. 5-6), W_{t-1} from f(G_{t-1}) and
  f(Ḡ_{t-1}) (eq. 7-8; Ḡ = G times ``background_weights``, Fig. 3), then S_t = eq. 2 with
  them on the search crop of frame t, fused with eq. 9.

Teacher forcing: O_{t-1} and G_{t-1} are cut around the ground truth of frame t-1 (the
cached crops are centred on it), not around a tracked box, and every frame counts as
"successful" (section 3.6's test of the peak is not applied). So the recurrence runs
through the features and the parameters, not through tracked boxes; this is what makes
the labels J_t known without re-cropping, and it is our reading of section 3.5, which
says the ground-truth maps J_t mark "the true target location".

Loss: SiamFC's class-balanced logistic loss (training.losses, as SiamFC's task) on every
S_t, averaged over the L steps and the clips: eq. 10's sum over the clip, divided by L
so that the learning rate does not depend on the clip length.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from resources import WEIGHTS_DIR
from trackers.config import config_to_dict
from trackers.dsiam.config import PRESETS, DSiamConfig
from trackers.dsiam.network import ARCHITECTURE, DSiamNet, load_weights
from trackers.dsiam.transforms import background_weights
from trackers.evaluation import AnnotatedSequence
from trackers.siamfc.network import ARCHITECTURE as SIAMFC_ARCHITECTURE
from trackers.siamfc.network import init_weights
from trackers.weights.checkpoint import WeightsError
from training.augmentation import Augmentation, colour_jitter, grayscale, mirrored, resample, to_tensor
from training.config import TrainingError
from training.data import PairDataset
from training.loop import train
from training.losses import POSITIVE_RADIUS_PX, balanced_logistic_loss, centred_labels
from training.progress import TrainResult
from training.task import Task

DEFAULT_CLIP_LENGTH = 4
DEFAULT_FRAME_STEP = 1


# --------------------------------------------------------------------------- data


class ClipDataset(PairDataset):
    """``clips_per_epoch`` random clips per epoch, reproducible, cut from PairDataset's cache.

    Item ``i`` of epoch ``e`` is drawn from ``np.random.default_rng([seed, e, i])``: a
    sequence uniformly; an exemplar frame f_0 among its valid frames that have at least
    ``clip_length`` valid frames after them within ``max_gap`` (any valid frame if none
    has); steps between successive search frames uniformly in ``1..frame_step`` valid
    frames (all 1 where the larger steps do not fit); then the first search frame
    uniformly among the positions that keep f_L within ``f_0 + max_gap``. A sequence
    too short for that repeats its last frame (or f_0 itself) to fill the clip.

    Returns ``(exemplar, searches, boxes)``: 3 x 127 x 127, L x 3 x 255 x 255 (RGB in
    0..255) and L x 4 (``cx, cy, w, h`` in search pixels), batched by ``batch`` into
    N x ... tensors. Augmentation as PairDataset's, per image for the geometry and the
    blur; the colour change is drawn once for the exemplar and once for the whole clip
    (successive frames share their lighting), grayscale for everything together.
    """

    def __init__(
        self,
        sequences: Sequence[AnnotatedSequence],
        *,
        clips_per_epoch: int,
        clip_length: int = DEFAULT_CLIP_LENGTH,
        frame_step: int = DEFAULT_FRAME_STEP,
        **options: Any,
    ) -> None:
        if clip_length < 1:
            raise ValueError("clip_length must be at least 1")
        if frame_step < 1:
            raise ValueError("frame_step must be at least 1")
        super().__init__(sequences, pairs_per_epoch=clips_per_epoch, **options)
        self.clip_length = int(clip_length)
        self.frame_step = int(frame_step)
        # Rows (cached frames) that can start a full clip: clip_length later rows within max_gap.
        self._starts: list[np.ndarray] = []
        for cached in self.sequences:
            frames = cached.frames
            ends = np.searchsorted(frames, frames + self.max_gap, side="right")
            later = ends - (np.arange(len(frames)) + 1)
            self._starts.append(np.flatnonzero(later >= self.clip_length))

    def _draw_clip(self, index: int) -> tuple[int, list[int], np.random.Generator]:
        if not 0 <= index < self.pairs_per_epoch:
            raise IndexError(f"clip {index} out of range for {self.pairs_per_epoch} clips")
        rng = self._rng(index)
        which = int(rng.integers(len(self.sequences)))
        frames = self.sequences[which].frames
        starts = self._starts[which]
        start = int(starts[rng.integers(len(starts))]) if len(starts) else int(rng.integers(len(frames)))
        end = int(np.searchsorted(frames, frames[start] + self.max_gap, side="right"))
        room = end - 1 - start  # later rows within max_gap
        length = self.clip_length
        if room >= length:
            steps = rng.integers(1, self.frame_step + 1, size=length - 1)
            if steps.sum() > room - 1:
                steps[:] = 1
            first = start + int(rng.integers(1, room - int(steps.sum()) + 1))
            rows = [first, *(first + np.cumsum(steps)).tolist()]
        else:
            rows = list(range(start + 1, start + 1 + room)) or [start]
            rows += [rows[-1]] * (length - len(rows))
        return which, [start, *(int(r) for r in rows)], rng

    def clip(self, index: int) -> tuple[str, int, list[int]]:
        """(sequence name, exemplar frame, search frames) of item ``index`` this epoch."""
        which, rows, _rng = self._draw_clip(index)
        frames = self.sequences[which].frames
        return self.sequences[which].name, int(frames[rows[0]]), [int(frames[r]) for r in rows[1:]]

    def pair(self, index: int) -> tuple[str, int, int]:
        """(sequence name, exemplar frame, first search frame): PairDataset's view of a clip."""
        name, exemplar, searches = self.clip(index)
        return name, exemplar, searches[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        which, rows, rng = self._draw_clip(int(index))
        crops, fills = self._crops(which)
        cfg, aug = self.config, self.augmentation
        centre = cfg.search_size / 2.0

        def stretch() -> tuple[float, float]:
            return (
                1.0 + rng.uniform(-aug.stretch, aug.stretch),
                1.0 + rng.uniform(-aug.stretch, aug.stretch),
            )

        # resample with scale 1 and no shift is the crop's central block pixel for pixel,
        # so Augmentation.none() gives the plain canonical crops.
        ex_sx, ex_sy = stretch()
        exemplar = resample(crops[rows[0]], cfg.exemplar_size, ex_sx, ex_sy, 0.0, 0.0, fills[rows[0]])
        searches, boxes = [], []
        for row in rows[1:]:
            sx, sy = stretch()
            shift = rng.uniform(-aug.translate_px, aug.translate_px, size=2)
            if aug.scale:
                zoom = float(np.exp(rng.uniform(-np.log1p(aug.scale), np.log1p(aug.scale))))
                sx, sy = sx * zoom, sy * zoom
            searches.append(resample(crops[row], cfg.search_size, sx, sy, shift[0], shift[1], fills[row]))
            w, h = self._sizes[which][row]
            # as PairDataset: the target's centre lands where the resampling offset is zero
            boxes.append([centre - shift[0] / sx, centre - shift[1] / sy, w / sx, h / sy])

        ex_image = colour_jitter(exemplar.astype(np.float32), aug, rng)
        clip_seed = int(rng.integers(2**63))  # one colour change for all frames of the clip
        images = [ex_image] + [
            colour_jitter(s.astype(np.float32), aug, np.random.default_rng(clip_seed)) for s in searches
        ]
        if rng.random() < aug.grayscale:
            images = [grayscale(img) for img in images]
        for k, img in enumerate(images):
            if rng.random() < aug.blur:
                images[k] = cv2.GaussianBlur(img, (0, 0), sigmaX=rng.uniform(*aug.blur_sigma))
        flipped = mirrored(images, aug, rng)  # the last draw, the whole clip together
        if flipped is not None:
            images = flipped
            boxes = [[cfg.search_size - cx, cy, w, h] for cx, cy, w, h in boxes]
        return (
            to_tensor(images[0]),
            torch.stack([to_tensor(img) for img in images[1:]]),
            torch.tensor(boxes, dtype=torch.float32),
        )


# --------------------------------------------------------------------------- network


class DSiamClipNet(DSiamNet):
    """DSiamNet whose ``forward`` tracks a batch of clips (section 3.5, Fig. 5 unrolled).

    A subclass, not a wrapper, so its ``state_dict`` is DSiamNet's, key for key: the
    checkpoint loads into the tracker, ``load_weights`` takes DSiam or SiamFC weights,
    and resume needs nothing special. The whole unrolled clip runs inside ``forward``,
    so under ``torchrun`` DistributedDataParallel sees (and all-reduces the gradients
    of) everything the loss touches.
    """

    @classmethod
    def for_config(cls, config: DSiamConfig) -> DSiamClipNet:
        net = cls.from_config(config)
        assert isinstance(net, DSiamClipNet)
        # Fig. 3's map turning G into Ḡ, as the tracker builds it. Not persistent: the
        # checkpoint stays DSiamNet's.
        weights = background_weights(config.search_size, config.background_sigma, config.background_taper)
        net.register_buffer("background", torch.from_numpy(weights), persistent=False)
        return net

    def forward(self, exemplars: torch.Tensor, searches: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """Fused maps S_1..S_L, N x L x 1 x 17 x 17, of N clips: exemplars N x 3 x 127 x 127,
        searches N x L x 3 x 255 x 255, every search crop centred on the target."""
        n, length = searches.shape[:2]
        # The embedding may run under the loop's autocast; eq. 2-9 (FFT solves,
        # correlation, fusion) run in fp32, as in the tracker.
        first = self.features(exemplars)
        search = self.features(searches.flatten(0, 1))
        g_bar = self.features((searches[:, :-1] * self.background).flatten(0, 1)) if length > 1 else {}
        with torch.autocast(searches.device.type, enabled=False):
            first = {k: v.float() for k, v in first.items()}
            search = {k: v.float().unflatten(0, (n, length)) for k, v in search.items()}
            g_bar = {k: v.float().unflatten(0, (n, length - 1)) for k, v in g_bar.items()}
            maps = []
            v = w = None  # V_0, W_0 off (section 3.6)
            for t in range(length):
                if t > 0:
                    g = {k: f[:, t - 1] for k, f in search.items()}  # f(G_{t-1})
                    # f(O_{t-1}): O is the central 127 pixels of the 255 crop G, and the
                    # embedding has no padding and stride 8 (64 = 8 x 8 pixels of offset),
                    # so its features are G's central block, exactly; no second pass.
                    target = {k: _central(g[k], first[k].shape[-1]) for k in g}
                    v = self.learn_v(first, target)  # eq. 5-6
                    w = self.learn_w(g, {k: f[:, t - 1] for k, f in g_bar.items()})  # eq. 7-8
                current = {k: f[:, t] for k, f in search.items()}
                maps.append(self.fuse(self.score_maps(first, current, v, w)))  # eq. 2, eq. 9
            return torch.stack(maps, dim=1)


def _central(features: torch.Tensor, size: int) -> torch.Tensor:
    height, width = features.shape[-2:]
    top, left = (height - size) // 2, (width - size) // 2
    return features[..., top : top + size, left : left + size]


def _inner(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper, or the network itself."""
    return getattr(model, "module", model)


# --------------------------------------------------------------------------- task


class DSiamTask(Task):
    """Section 3.5's joint training, from a SiamFC (or DSiam) start (section 3.6).

    Trained: the fusion maps Υ (only when the preset fuses several layers: with one
    layer eq. 9's weights are identically one), conv4's score-map bias (when conv4 is
    used), λv and λw (stored as log λ by DSiamNet, so they stay positive) and the
    release's blend rates of the active layers. The embedding f^l and SiamFC's bias b
    are frozen unless ``train_embedding`` (section 3.5 trains them too; frozen by
    default for a CPU budget: with a frozen embedding no gradient goes through AlexNet).
    The default weights (``resources/weights/siamfc.pt``) are SiamFC's, not jointly
    trained: DSiam runs on them with the paper's initial fusion maps and the release's λ.

    The default preset is ``dsiamm`` (conv4 + conv5), the one with fusion maps to learn;
    a checkpoint serves both presets. ``name`` is the preset, so that the loop's success
    AUC tracks with the layers that were trained.
    """

    name = "dsiam"
    architecture = ARCHITECTURE
    method = "DSiam, Guo et al. 2017 (sections 3.5, 3.6): joint training on clips, BPTT"
    # Section 3.6 uses 1e-7 -> 1e-9 (MatConvNet, λ learned directly, 50 iterations). Here
    # λ are learned as log λ and the loss is a mean over maps, so those rates would move
    # nothing: on SiamFC features (a synthetic clip) the gradients of log λw, the rates
    # and the fusion maps are 1e-3..4e-2 (log λv's ~1e-7: at λv = 1e-5 the ridge barely
    # acts), and 1e-3 with momentum 0.9 moves the fusion maps by about 0.02 per thousand
    # steps, annealed geometrically (SiamFC section 4.1) to 1e-5 for the last epochs.
    # With ``train_embedding`` the same rate fine-tunes SiamFC's AlexNet (trained from
    # 1e-2) gently.
    lr_start = 1e-3
    lr_end = 1e-5
    default_batch_size = 8

    def __init__(
        self,
        config: DSiamConfig | None = None,
        *,
        preset: str = "dsiamm",
        clip_length: int = DEFAULT_CLIP_LENGTH,
        frame_step: int = DEFAULT_FRAME_STEP,
        train_embedding: bool = False,
    ) -> None:
        if preset not in PRESETS:
            raise TrainingError(f"unknown DSiam preset {preset!r}; known: {', '.join(PRESETS)}")
        if clip_length < 1 or frame_step < 1:
            raise TrainingError("clip_length and frame_step must be at least 1")
        self.cfg = config or PRESETS[preset]
        if self.cfg.layers != PRESETS[preset].layers:
            # the loop's success AUC tracks with the preset ``name``: it must use these layers
            raise TrainingError(f"the config's layers {self.cfg.layers} are not preset {preset!r}'s")
        self.name = preset
        self.config = config_to_dict(self.cfg)
        self.clip_length = int(clip_length)
        self.frame_step = int(frame_step)
        self.train_embedding = bool(train_embedding)

    def settings(self) -> dict[str, Any]:
        return {
            "clip_length": self.clip_length,
            "frame_step": self.frame_step,
            "train_embedding": self.train_embedding,
            "layers": "+".join(self.cfg.layers),
            "positive_radius_px": POSITIVE_RADIUS_PX,
        }

    def pairs(
        self,
        sequences: Sequence[AnnotatedSequence],
        *,
        pairs_per_epoch: int,
        cache_dir: str | Path | None,
        max_gap: int,
        seed: int,
        augmentation: Augmentation,
        progress: Any,
        cancel: Any,
    ) -> ClipDataset:
        """Clips, not pairs: ``pairs_per_epoch`` clips of ``clip_length`` search frames."""
        return ClipDataset(
            sequences,
            clips_per_epoch=pairs_per_epoch,
            clip_length=self.clip_length,
            frame_step=self.frame_step,
            cache_dir=cache_dir,
            max_gap=max_gap,
            seed=seed,
            augmentation=augmentation,
            progress=progress,
            cancel=cancel,
            search_margin=self.search_margin,
        )

    # ---------------------------------------------------------------- network
    def build(self, seed: int) -> nn.Module:
        net = DSiamClipNet.for_config(self.cfg)
        init_weights(net.siamfc, seed=seed)
        # Everything frozen, then what trains unfrozen (see trainable()): the conv4 bias or
        # the fusion maps of a preset that does not use them get no gradient at all.
        net.requires_grad_(False)
        for parameter in self._dsiam_parameters(net):
            parameter.requires_grad_(True)
        if self.train_embedding:
            net.siamfc.requires_grad_(True)
        return net

    def _dsiam_parameters(self, net: nn.Module) -> list[nn.Parameter]:
        dsiam: DSiamNet = _inner(net)  # type: ignore[assignment]
        params = [dsiam.log_lambda_v, dsiam.log_lambda_w, dsiam.v_rate, dsiam.w_rate]
        if len(dsiam.layers) > 1:
            params.append(dsiam.fusion)
        if "conv4" in dsiam.layers:
            params.append(dsiam.conv4_bias)
        return params

    def load_init(self, net: nn.Module, path: Path) -> str:
        """A ``dsiam-alexnet`` checkpoint, or a ``siamfc-alexnet`` one into the embedding
        and head with fusion maps and λ at their initial values (section 3.6)."""
        try:
            found = load_weights(_inner(net), path)  # type: ignore[arg-type]
        except WeightsError as exc:
            raise TrainingError(str(exc)) from None
        if found == SIAMFC_ARCHITECTURE:
            return "SiamFC weights; fusion maps, λ and rates at their initial values"
        return "DSiam weights"

    def trainable(self, net: nn.Module) -> list[Any]:
        """Two optimiser parameter groups (``torch.optim.SGD`` takes groups as well as
        parameters): DSiam's own quantities without weight decay, the embedding (when
        trained) with the run's. Decay would pull log λ towards 0 (λ towards 1), the
        rates towards 0 and the raw fusion maps towards 0 (moving weight from conv5 to
        conv4), none of which is a prior anyone asked for; and the entries of λ and the
        rates that belong to a layer the preset does not use get no gradient, so only
        decay would move them, silently changing the other preset of the checkpoint."""
        groups: list[Any] = [{"params": self._dsiam_parameters(net), "weight_decay": 0.0}]
        if self.train_embedding:
            groups.append({"params": list(_inner(net).siamfc.parameters())})
        return groups

    def train_mode(self, net: nn.Module) -> None:
        net.train()
        # Batch norm keeps SiamFC's statistics always, trained embedding or not: the
        # tracker folds them into the convolutions, and f(O_{t-1}) taken as the central
        # block of f(G_{t-1}) is exact only with fixed statistics.
        _inner(net).siamfc.embedding.eval()

    # ---------------------------------------------------------------- loss
    def labels(self, device: torch.device) -> torch.Tensor:
        return centred_labels(self.cfg.score_size, self.cfg.total_stride, device)

    def loss(
        self, net: nn.Module, exemplars: torch.Tensor, searches: torch.Tensor, boxes: torch.Tensor
    ) -> torch.Tensor:
        if searches.dim() != 5:
            raise TrainingError(
                "DSiam trains on clips (N x L x 3 x H x W search crops); single pairs, such as "
                "synthetic ones, do not fit"
            )
        # The search crops are centred on the ground truth (2 px of translation at most, a
        # quarter of the stride, far inside R = 16 px), so every J_t is the same centred
        # label map of SiamFC's eq. 6 and the boxes are not needed: the simplest honest
        # choice, as in SiamFC's task.
        scores = net(exemplars, searches).float()  # N x L x 1 x 17 x 17, whole clip in forward
        return balanced_logistic_loss(scores, self.labels(scores.device))


def default_init() -> Path:
    """The bundled SiamFC weights, section 3.6's start."""
    return WEIGHTS_DIR / "siamfc.pt"


def train_dsiam(
    train_seqs: Sequence[AnnotatedSequence],
    val_seqs: Sequence[AnnotatedSequence],
    out: str | Path,
    *,
    preset: str = "dsiamm",
    clip_length: int = DEFAULT_CLIP_LENGTH,
    frame_step: int = DEFAULT_FRAME_STEP,
    train_embedding: bool = False,
    config: DSiamConfig | None = None,
    **options: Any,
) -> TrainResult:
    """Train DSiam jointly on clips and write ``out``; options as ``training.loop.train``.

    ``init`` defaults to the bundled SiamFC weights (section 3.6 starts from SiamFC);
    with none and a frozen embedding there would be nothing sensible to train.
    ``pairs_per_epoch`` counts clips.
    """
    if options.get("extra_ratio"):
        raise TrainingError("synthetic pairs are single pairs; DSiam trains on clips")
    if options.get("init") is None:
        if default_init().is_file():
            options["init"] = default_init()
        elif not train_embedding:
            raise TrainingError(
                "DSiam trains from SiamFC weights (section 3.6): give init=, or train_embedding=True"
            )
    task = DSiamTask(
        config,
        preset=preset,
        clip_length=clip_length,
        frame_step=frame_step,
        train_embedding=train_embedding,
    )
    return train(task, train_seqs, val_seqs, out, **options)
