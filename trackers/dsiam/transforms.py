"""The two new layers of DSiam (section 3.4, Fig. 5): 'RLR' and 'CirConv'.

* ``solve_transform`` is 'RLR': the regularised linear regression of eq. 3, solved in
  closed form in the Fourier domain (eq. 4). It gives V (eq. 5-6) and W (eq. 7-8).
* ``circular_convolve`` is 'CirConv': the ``*`` of eq. 2.

Both act on every channel separately (a C x h x w transformation for C x h x w
features, as in Fig. 5) and are plain torch FFT code, so autograd carries gradients
through them to the features and to λ: the derivatives of eq. 11-15 are what torch
computes for us, no hand-written backward (section 3.5).

Convention, fixed once: ``(K * X)[i, j] = sum_{a, b} K[a, b] X[(i - a) mod h, (j - b) mod w]``,
so that ``F(K * X) = F(K) F(X)`` and a delta at ``[0, 0]`` is the identity. ``kernel``
below is K: a transformation V or W as the convolution kernel of eq. 2's ``*`` (never
the exemplar).
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray


def circular_convolve(kernel: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """``kernel * features`` of eq. 2, per channel; leading dimensions broadcast.

    Circular convolution "does not change the size of input" (section 3.1), so the
    kernel has the features' spatial size. rfft2/irfft2 because both are real.
    """
    size = features.shape[-2:]
    if kernel.shape[-2:] != size:
        raise ValueError(
            f"a {tuple(kernel.shape[-2:])} transformation cannot act on {tuple(size)} features"
        )
    spectrum = torch.fft.rfft2(kernel) * torch.fft.rfft2(features)
    return torch.fft.irfft2(spectrum, s=size)


def solve_transform(x: torch.Tensor, y: torch.Tensor, lam: torch.Tensor | float) -> torch.Tensor:
    """Eq. 4: ``R = F^-1( F*(X) F(Y) / (F*(X) F(X) + λ) )``, the minimiser of eq. 3.

    Eq. 3, ``||T * X - Y||^2 + λ ||T||^2``, decouples over frequencies by Parseval (both
    terms pick up the same factor 1/(h w)), and each frequency is a scalar ridge
    regression whose solution is the fraction above. ``x`` and ``y`` are ... x C x h x w;
    ``lam`` is a scalar or broadcasts against ... x C x 1 x 1. Returns R, real, like ``x``.
    """
    if x.shape[-2:] != y.shape[-2:]:
        raise ValueError(
            f"eq. 3 needs X and Y of one size, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    xf = torch.fft.rfft2(x)
    yf = torch.fft.rfft2(y)
    # |F(X)|^2 as re^2 + im^2, not abs()^2: abs has no gradient where F(X) = 0.
    power = xf.real.square() + xf.imag.square()
    return torch.fft.irfft2(xf.conj() * yf / (power + lam), s=x.shape[-2:])


def regularisation(lam: torch.Tensor | float, features: torch.Tensor) -> torch.Tensor | float:
    """Eq. 4's λ for a per-element λ: ``h * w`` times it.

    Deviation in normalisation only: the authors' release divides ``F*(X) F(X)`` by the
    number of elements ``h w`` of one channel before adding λ, which is eq. 4 with
    ``h w λ``. Keeping their per-element λ lets one value serve 6x6 and 22x22 maps.
    """
    height, width = features.shape[-2:]
    return lam * (height * width)


def apply_transform(
    kernel: torch.Tensor | None, features: torch.Tensor, rate: torch.Tensor | float = 1.0
) -> torch.Tensor:
    """``V * f(O1)`` or ``W * f(Z)`` of eq. 2, mixed with the untransformed features.

    ``kernel=None`` is the transformation "turned off" (section 3.6), the identity.
    ``rate`` = 1 is eq. 2 exactly; below 1 it is the release's blend (see DSiamConfig).
    """
    if kernel is None:
        return features
    return features + rate * (circular_convolve(kernel, features) - features)


def identity_transform(like: torch.Tensor) -> torch.Tensor:
    """The delta at ``[0, 0]``: ``identity * X = X`` for every X of this size."""
    kernel = torch.zeros_like(like)
    kernel[..., 0, 0] = 1.0
    return kernel


def background_weights(size: int, sigma: float, taper: bool = True) -> NDArray[np.float32]:
    """The weight map that turns G into Ḡ (eq. 7, Fig. 3): peak 1 at the centre.

    A Gaussian of width ``sigma`` (search-image pixels) around the centre of the
    ``size`` x ``size`` search image, times, when ``taper`` is set, a Hann window
    over the whole image, as in the release. Deviation: the release's taper is Hamming
    along y and Hann along x; nothing in the paper asks for an anisotropic map, so this
    one is Hann along both.
    """
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    squared = coords[:, None] ** 2 + coords[None, :] ** 2
    weights = np.exp(-0.5 * squared / sigma**2)
    if taper:
        weights = weights * np.outer(np.hanning(size), np.hanning(size))
    return (weights / weights.max()).astype(np.float32)
