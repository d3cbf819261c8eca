"""Batch norm folded into the convolution before it, for inference."""

from __future__ import annotations

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every ``Conv2d`` directly followed by a ``BatchNorm2d`` inside an ``nn.Sequential``.

    In eval mode batch norm is an affine map per channel, so it can live in the conv's
    weights and bias: one pass over memory less per layer. The BN becomes an Identity, so
    indices into the Sequential (and code that walks conv1..conv5) keep working. Only for
    inference: the folded module no longer trains like the paper's network.
    """
    for child in module.children():
        if isinstance(child, nn.Sequential):
            layers = list(child)
            for i in range(len(layers) - 1):
                conv, norm = layers[i], layers[i + 1]
                if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                    child[i] = fuse_conv_bn_eval(conv.eval(), norm.eval())
                    child[i + 1] = nn.Identity()
        fold_batchnorm(child)
    return module
