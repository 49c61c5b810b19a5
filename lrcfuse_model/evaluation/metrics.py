"""Fusion quality metrics on 8-bit grayscale images (one function per metric).

Ten metrics, with the conventions of the Python evaluator of the MMIF / CDDFuse family of repositories
(``utils/Evaluator.py``, the code behind their README tables), so that numbers computed here can be put next to
published ones:

========  ================================================================  ==========================
key       what                                                              sources
========  ================================================================  ==========================
EN        entropy of the gray-level histogram, bits                         fused only
SD        standard deviation (1/N)                                          fused only
SF        spatial frequency                                                 fused only
AG        average gradient (central differences)                            fused only
MI        MI(F, ir) + MI(F, vi), nats                                       sum over both sources
SCD       sum of the correlations of differences                            both
VIF       VIFF (multi-scale pixel VIF) of F against each source, summed     sum over both sources
Qabf      Xydeas-Petrovic edge-preservation measure                         both
Nabf      Kumar's modified Petrovic artifact measure (lower is better)      both
SSIM      SSIM(F, ir) + SSIM(F, vi), historic data_range = 2 on 0..255     sum over both sources
========  ================================================================  ==========================

Every function takes ``uint8`` 2-D arrays (the images as read with ``PIL.Image.open(p).convert("L")``) and works
internally in float64 on the 0..255 scale. Anything else raises ``ValueError`` naming the argument. Only numpy and
scipy are used; the whole suite takes a few hundred milliseconds on a 768 x 576 triple.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

__all__ = [
    "METRIC_KEYS",
    "average_gradient",
    "compute_all",
    "entropy",
    "mutual_information",
    "nabf",
    "qabf",
    "scd",
    "spatial_frequency",
    "ssim",
    "standard_deviation",
    "vif",
]

METRIC_KEYS: tuple[str, ...] = ("EN", "SD", "SF", "AG", "MI", "SCD", "VIF", "Qabf", "Nabf", "SSIM")


# ----------------------------------------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------------------------------------


def _as_gray_u8(img: np.ndarray, name: str = "image") -> np.ndarray:
    img = np.asarray(img)
    if img.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D 8-bit grayscale array, got shape {img.shape}")
    if img.dtype != np.uint8:
        raise ValueError(f"{name}: expected dtype uint8, got {img.dtype}")
    return img


def _triple(fused: np.ndarray, ir: np.ndarray, vi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check a (fused, ir, vi) triple: three uint8 2-D arrays of one shape."""
    f = _as_gray_u8(fused, "fused")
    a = _as_gray_u8(ir, "ir")
    b = _as_gray_u8(vi, "vi")
    for name, img in (("ir", a), ("vi", b)):
        if img.shape != f.shape:
            raise ValueError(f"{name}: expected the same shape as fused {f.shape}, got {img.shape}")
    return f, a, b


def _min_size(img: np.ndarray, name: str, size: int, what: str) -> None:
    if min(img.shape) < size:
        raise ValueError(f"{name}: {what} needs an image of at least {size} x {size} pixels, got {img.shape}")


# ----------------------------------------------------------------------------------------------------------------
# single-image statistics
# ----------------------------------------------------------------------------------------------------------------


def entropy(img: np.ndarray) -> float:
    """EN: Shannon entropy of the gray-level histogram, in bits.

    ``EN = -sum_{l=0}^{255} p_l log2 p_l`` with ``p_l`` the fraction of pixels at level ``l``
    (Roberts, van Aardt, Ahmed, J. Appl. Remote Sens. 2008). Higher means more information.
    """
    img = _as_gray_u8(img)
    p = np.bincount(img.ravel(), minlength=256).astype(np.float64) / img.size
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def standard_deviation(img: np.ndarray) -> float:
    """SD: ``sqrt(mean((F - mean(F))^2))`` over all pixels (1/N, as the MMIF/CDDFuse evaluator).

    Higher means more contrast. LRRNet's tables omit the 1/N (their SD is not comparable).
    """
    img = _as_gray_u8(img).astype(np.float64)
    return float(img.std())


def spatial_frequency(img: np.ndarray) -> float:
    """SF: spatial frequency, ``sqrt(RF^2 + CF^2)`` (Eskicioglu & Fisher, IEEE Trans. Commun. 1995).

    ``RF^2 = mean_{i,j} (F[i, j] - F[i, j-1])^2`` over the ``H x (W-1)`` horizontal neighbour pairs and
    ``CF^2 = mean_{i,j} (F[i, j] - F[i-1, j])^2`` over the ``(H-1) x W`` vertical pairs, on the 0..255 scale.
    Each mean is over the differences that exist (no padding), as in the MMIF/CDDFuse evaluator.
    """
    f = _as_gray_u8(img).astype(np.float64)
    _min_size(f, "image", 2, "SF")
    rf2 = np.mean(np.square(np.diff(f, axis=1)))
    cf2 = np.mean(np.square(np.diff(f, axis=0)))
    return float(np.sqrt(rf2 + cf2))


def average_gradient(img: np.ndarray) -> float:
    """AG: average gradient, ``mean sqrt((Gx^2 + Gy^2) / 2)`` over all ``H x W`` pixels.

    ``Gx``, ``Gy`` are central differences ``(F[x+1] - F[x-1]) / 2`` inside the image and one-sided differences on
    the first and last row / column (``numpy.gradient`` with unit spacing), on the 0..255 scale, as in the
    MMIF/CDDFuse evaluator (AG after Cui et al., Opt. Commun. 2015). The MATLAB toolboxes use forward differences on
    ``(H-1) x (W-1)`` pixels instead, which gives slightly different numbers.
    """
    f = _as_gray_u8(img).astype(np.float64)
    _min_size(f, "image", 2, "AG")
    gy, gx = np.gradient(f)
    return float(np.mean(np.sqrt((gx * gx + gy * gy) / 2.0)))


# ----------------------------------------------------------------------------------------------------------------
# information and correlation
# ----------------------------------------------------------------------------------------------------------------


def _mi_nats(x: np.ndarray, y: np.ndarray) -> float:
    """Mutual information (natural log) of the joint gray-level histogram of two uint8 images."""
    joint = np.bincount(x.ravel().astype(np.intp) * 256 + y.ravel(), minlength=256 * 256).astype(np.float64)
    pxy = joint.reshape(256, 256) / x.size
    px = pxy.sum(axis=1)
    py = pxy.sum(axis=0)
    nz = pxy > 0
    ratio = pxy[nz] / np.outer(px, py)[nz]
    return float(max(np.sum(pxy[nz] * np.log(ratio)), 0.0))


def mutual_information(fused: np.ndarray, ir: np.ndarray, vi: np.ndarray) -> float:
    """MI: ``MI(F, A) + MI(F, B)`` in **nats** (Qu, Zhang, Yan, Electronics Letters 2002).

    ``MI(F, X) = sum_{f,x} p(f, x) ln(p(f, x) / (p(f) p(x)))`` with ``p`` the normalised 256 x 256 joint
    gray-level histogram and its marginals. Natural log, as ``sklearn.metrics.mutual_info_score`` which the
    MMIF/CDDFuse evaluator calls; the MATLAB toolboxes use log2 (bits), i.e. their numbers are ours / ln 2.
    ``MI(F, F)`` equals the entropy of ``F`` in nats.
    """
    f, a, b = _triple(fused, ir, vi)
    return _mi_nats(f, a) + _mi_nats(f, b)


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of two float arrays; 0 where either is constant (undefined)."""
    xc = x - x.mean()
    yc = y - y.mean()
    den = np.sqrt(np.sum(xc * xc) * np.sum(yc * yc))
    if den == 0:
        return 0.0
    return float(np.sum(xc * yc) / den)


def scd(fused: np.ndarray, ir: np.ndarray, vi: np.ndarray) -> float:
    """SCD: sum of the correlations of differences (Aslantas & Bendes, AEU Int. J. Electron. Commun. 2015).

    ``SCD = r(F - B, A) + r(F - A, B)`` with ``r`` the Pearson correlation over all pixels: the part of the fused
    image not explained by one source should correlate with the other source. Range about -2..2, higher is better.
    A correlation whose denominator is zero (a constant image or difference) counts as 0 here; the reference
    evaluator returns NaN in that case.
    """
    f, a, b = (x.astype(np.float64) for x in _triple(fused, ir, vi))
    return _corr(a, f - b) + _corr(b, f - a)


# ----------------------------------------------------------------------------------------------------------------
# VIF (VIFF)
# ----------------------------------------------------------------------------------------------------------------

_VIF_SIGMA_NSQ = 2.0
_VIF_EPS = 1e-10


def _gauss_1d(n: int) -> np.ndarray:
    """1-D factor of MATLAB's ``fspecial('gaussian', n, n / 5)`` (the 2-D window is the outer product)."""
    sd = n / 5.0
    x = np.arange(n, dtype=np.float64) - (n - 1) / 2.0
    g = np.exp(-(x * x) / (2.0 * sd * sd))
    # MATLAB zeroes taps below eps * max of the 2-D window; for n <= 17 and sd = n / 5 none is that small.
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Separable 2-D correlation with ``outer(g, g)``, keeping only the fully covered ('valid') part."""
    r = len(g) // 2
    y = ndimage.correlate1d(x, g, axis=0, mode="constant")
    y = ndimage.correlate1d(y, g, axis=1, mode="constant")
    return y[r : x.shape[0] - r, r : x.shape[1] - r]


def _vif_min_size() -> int:
    """Smallest square side for which every scale of the 4-scale VIFF pyramid is non-empty."""
    for n in range(3, 256):
        m, ok = n, True
        for scale in range(1, 5):
            w = 2 ** (5 - scale) + 1
            if scale > 1:
                if m < w:
                    ok = False
                    break
                m = -(-(m - w + 1) // 2)
            if m < w:
                ok = False
                break
        if ok:
            return n
    raise AssertionError("unreachable")


_VIF_MIN = _vif_min_size()


def _vif_terms(ref: np.ndarray, dist: np.ndarray, mu2: np.ndarray, s2: np.ndarray, g1: np.ndarray) -> tuple:
    """Numerator and denominator sums of one VIFF scale for one reference (statistics of dist precomputed)."""
    mu1 = _filter_valid(ref, g1)
    s1 = _filter_valid(ref * ref, g1) - mu1 * mu1
    s12 = _filter_valid(ref * dist, g1) - mu1 * mu2
    s1 = np.maximum(s1, 0.0)

    g = s12 / (s1 + _VIF_EPS)
    sv = s2 - g * s12
    flat1 = s1 < _VIF_EPS  # no signal in the reference: all of dist is noise
    g[flat1] = 0.0
    sv[flat1] = s2[flat1]
    s1 = np.where(flat1, 0.0, s1)
    flat2 = s2 < _VIF_EPS  # nothing in the distorted image
    g[flat2] = 0.0
    sv[flat2] = 0.0
    neg = g < 0  # anti-correlated: treat as pure noise
    sv[neg] = s2[neg]
    g[neg] = 0.0
    sv = np.maximum(sv, _VIF_EPS)

    num = np.sum(np.log10(1.0 + g * g * s1 / (sv + _VIF_SIGMA_NSQ)))
    den = np.sum(np.log10(1.0 + s1 / _VIF_SIGMA_NSQ))
    return num, den


def vif(fused: np.ndarray, ir: np.ndarray, vi: np.ndarray) -> float:
    """VIF: ``VIFF(A, F) + VIFF(B, F)``, multi-scale pixel-domain VIF of the fused image against each source.

    VIF: Sheikh & Bovik, IEEE TIP 2006; its use for fusion (VIFF / ``vifp_mscale``): Han, Cai, Cao, Xu, Information
    Fusion 2013. Per source X and per scale s = 1..4 a Gaussian window of size ``N = 2^(5-s) + 1`` and
    ``sigma = N / 5`` (MATLAB ``fspecial``) gives local means / variances / covariance ('valid' part only); before
    scales 2..4 both images are filtered with that scale's window and decimated by 2. With
    ``g = s_XF / s_X`` and ``sv^2 = s_F - g s_XF``, and the usual guards (``s_X < 1e-10``: g = 0, sv^2 = s_F;
    ``s_F < 1e-10``: g = 0, sv^2 = 0; ``g < 0``: sv^2 = s_F, g = 0; ``sv^2 >= 1e-10``)::

        VIFF(X, F) = sum_s sum log10(1 + g^2 s_X / (sv^2 + 2)) / sum_s sum log10(1 + s_X / 2)

    on the 0..255 scale, noise variance 2 (MMIF/CDDFuse evaluator and ``vifp_mscale.m``). A source without any
    local variance (0 / 0) counts as 1. Needs images of at least ``_VIF_MIN`` (= 41) pixels on each side.
    """
    f, a, b = (x.astype(np.float64) for x in _triple(fused, ir, vi))
    _min_size(f, "fused", _VIF_MIN, "VIF")
    refs = [a, b]
    dist = f
    nums = [0.0, 0.0]
    dens = [0.0, 0.0]
    for scale in range(1, 5):
        g1 = _gauss_1d(2 ** (5 - scale) + 1)
        if scale > 1:
            refs = [_filter_valid(r, g1)[::2, ::2] for r in refs]
            dist = _filter_valid(dist, g1)[::2, ::2]
        mu2 = _filter_valid(dist, g1)
        s2 = np.maximum(_filter_valid(dist * dist, g1) - mu2 * mu2, 0.0)
        for k, ref in enumerate(refs):
            num, den = _vif_terms(ref, dist, mu2, s2, g1)
            nums[k] += num
            dens[k] += den
    return float(sum(n / d if d > 0 else 1.0 for n, d in zip(nums, dens)))


# ----------------------------------------------------------------------------------------------------------------
# Petrovic edge measures: Qabf and Nabf
# ----------------------------------------------------------------------------------------------------------------

# Sobel kernels, as correlation masks: d/dx (left to right) and d/dy (top to bottom).
_SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
_SOBEL_Y = _SOBEL_X.T.copy()


def _qabf_edges(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sobel strength and orientation with zero padding (as ``conv2(..., 'same')`` in analysis_Qabf.m).

    Sign convention of the reference (a true convolution with ``[-1 0 1; -2 0 2; -1 0 1]`` and
    ``[1 2 1; 0 0 0; -1 -2 -1]``): ``sx = -d/dx``, ``sy = +d/dy``. It matters because ``sx == 0`` maps to
    ``+pi / 2`` whatever the sign of ``sy``; with the opposite sign of ``sx`` Qabf moves by up to about 1 %.
    """
    sx = -ndimage.correlate(img, _SOBEL_X, mode="constant", cval=0.0)
    sy = ndimage.correlate(img, _SOBEL_Y, mode="constant", cval=0.0)
    g = np.hypot(sx, sy)
    with np.errstate(divide="ignore", invalid="ignore"):
        alpha = np.where(sx == 0, np.pi / 2, np.arctan(sy / np.where(sx == 0, 1.0, sx)))
    return g, alpha


def _qabf_preservation(g_x: np.ndarray, a_x: np.ndarray, g_f: np.ndarray, a_f: np.ndarray) -> np.ndarray:
    """Per-pixel edge preservation Q^XF = Q_g * Q_a of the Xydeas-Petrovic measure (evaluator constants)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(g_x > g_f, g_f / g_x, g_x / g_f)
    # Where the strengths are equal the evaluator stores g_F itself (0 on flat pixels, >= 1 on edges) instead of 1.
    ratio = np.where(g_x == g_f, g_f, ratio)
    orient = 1.0 - np.abs(a_x - a_f) / (np.pi / 2)
    q_g = 0.9994 / (1.0 + np.exp(-15.0 * (ratio - 0.5)))
    q_a = 0.9879 / (1.0 + np.exp(-22.0 * (orient - 0.8)))
    return q_g * q_a


def qabf(fused: np.ndarray, ir: np.ndarray, vi: np.ndarray) -> float:
    """Qabf: Xydeas-Petrovic gradient-based fusion performance (Xydeas & Petrovic, Electronics Letters 2000).

    Sobel responses ``sx``, ``sy`` (zero padding, 0..255 scale) give strength ``g = sqrt(sx^2 + sy^2)`` and
    orientation ``a = atan(sy / sx)`` (``pi / 2`` where ``sx = 0``). For each source X: relative strength
    ``G = min(g_X, g_F) / max(g_X, g_F)`` and orientation agreement ``D = 1 - |a_X - a_F| / (pi / 2)``, mapped by
    sigmoids ``Q_g = 0.9994 / (1 + exp(-15 (G - 0.5)))``, ``Q_a = 0.9879 / (1 + exp(-22 (D - 0.8)))``,
    ``Q^XF = Q_g Q_a``; then

        Qabf = sum(Q^AF g_A + Q^BF g_B) / sum(g_A + g_B)      (weights g^L with L = 1)

    Constants and conventions of the MMIF/CDDFuse evaluator, including its tie rule: where ``g_X == g_F`` it uses
    ``G = g_F`` (not 1; the difference is below 0.1 % since Sobel strengths of integer images are 0 or >= 1).
    Because of the sigmoid ceilings, a perfect fusion (F = A = B) scores about 0.975, not 1. Sources without any Sobel
    response (0 / 0, the reference gives NaN) raise ``ValueError``; with zero padding that means both all black,
    as a constant non-zero image has edges along its border.
    """
    f, a, b = (x.astype(np.float64) for x in _triple(fused, ir, vi))
    g_a, a_a = _qabf_edges(a)
    g_b, a_b = _qabf_edges(b)
    g_f, a_f = _qabf_edges(f)
    den = np.sum(g_a + g_b)
    if den == 0:
        raise ValueError("ir, vi: Qabf is undefined when neither source has any edge (both all black)")
    num = np.sum(_qabf_preservation(g_a, a_a, g_f, a_f) * g_a + _qabf_preservation(g_b, a_b, g_f, a_f) * g_b)
    return float(num / den)


# Kumar's Sobel masks (divided by 8), as correlation masks, with symmetric extension that excludes the edge pixel.
_KUMAR_X = _SOBEL_X / 8.0
_KUMAR_Y = _SOBEL_Y / 8.0


def _kumar_edges(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    gx = ndimage.correlate(img, _KUMAR_X, mode="mirror")
    gy = ndimage.correlate(img, _KUMAR_Y, mode="mirror")
    g = np.hypot(gx, gy)
    with np.errstate(divide="ignore", invalid="ignore"):
        # atan(gy / gx) with MATLAB semantics: +-pi/2 where gx = 0, and 0 where both are 0.
        alpha = np.where(gx == 0, np.sign(gy) * (np.pi / 2), np.arctan(gy / np.where(gx == 0, 1.0, gx)))
    return g, alpha


def _kumar_preservation(g_x: np.ndarray, a_x: np.ndarray, g_f: np.ndarray, a_f: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(g_x > g_f, g_f / g_x, g_x / g_f)
    ratio = np.where((g_x == 0) | (g_f == 0), 0.0, ratio)
    orient = np.abs(np.abs(a_x - a_f) - np.pi / 2) * (2.0 / np.pi)
    q_g = 0.9999 / (1.0 + np.exp(-19.0 * (ratio - 0.5)))
    q_a = 0.9995 / (1.0 + np.exp(-22.0 * (orient - 0.5)))
    return np.sqrt(q_g * q_a)


def nabf(fused: np.ndarray, ir: np.ndarray, vi: np.ndarray) -> float:
    """Nabf: fusion artifacts, B. K. Shreyamsha Kumar's modification of Petrovic's N^AB/F (lower is better).

    Petrovic & Xydeas, "Objective image fusion performance characterisation", ICCV 2005; modified by Kumar,
    "Multifocus and multispectral image fusion based on pixel significance using discrete cosine harmonic
    wavelet transform", SIViP 2013 (``analysis_nabf.m``). On the 0..255 scale, Sobel masks / 8 with symmetric
    (edge-excluding) extension give strength ``g`` and orientation ``a = atan(g_y / g_x)``. Per source X:
    ``G`` = min/max strength ratio (0 where either strength is 0), ``D = ||a_X - a_F| - pi/2| * 2 / pi``,
    ``Q^XF = sqrt(Q_g Q_a)`` with ``Q_g = 0.9999 / (1 + exp(-19 (G - 0.5)))``,
    ``Q_a = 0.9995 / (1 + exp(-22 (D - 0.5)))``; weights ``w_X = g_X^1.5`` where ``g_X >= 2``, else 0.001. Then

        Nabf = sum(m * ((1 - Q^AF) w_A + (1 - Q^BF) w_B)) / sum(w_A + w_B)

    with ``m = 1`` only where the fused edge is stronger than both source edges (``g_F > g_A`` and ``g_F > g_B``).
    This is Kumar's variant (the one most IVIF papers tabulate), not Petrovic's ``2 - Q^AF - Q^BF`` form.
    A pixel average of the sources creates almost no such pixels, so its Nabf is about 1e-6.
    """
    f, a, b = (x.astype(np.float64) for x in _triple(fused, ir, vi))
    _min_size(f, "fused", 2, "Nabf")
    g_a, a_a = _kumar_edges(a)
    g_b, a_b = _kumar_edges(b)
    g_f, a_f = _kumar_edges(f)
    w_a = np.where(g_a >= 2.0, g_a**1.5, 0.001)
    w_b = np.where(g_b >= 2.0, g_b**1.5, 0.001)
    artifact = (g_f > g_a) & (g_f > g_b)
    loss = (1.0 - _kumar_preservation(g_a, a_a, g_f, a_f)) * w_a + (1.0 - _kumar_preservation(g_b, a_b, g_f, a_f)) * w_b
    return float(np.sum(loss[artifact]) / np.sum(w_a + w_b))


# ----------------------------------------------------------------------------------------------------------------
# SSIM
# ----------------------------------------------------------------------------------------------------------------

_SSIM_WIN = 7
_SSIM_DATA_RANGE = 2.0


def _ssim_pair(x: np.ndarray, y: np.ndarray) -> float:
    w = _SSIM_WIN
    np_ = w * w
    cov_norm = np_ / (np_ - 1.0)  # unbiased (sample) local (co)variances
    ux = ndimage.uniform_filter(x, w)
    uy = ndimage.uniform_filter(y, w)
    vx = cov_norm * (ndimage.uniform_filter(x * x, w) - ux * ux)
    vy = cov_norm * (ndimage.uniform_filter(y * y, w) - uy * uy)
    vxy = cov_norm * (ndimage.uniform_filter(x * y, w) - ux * uy)
    c1 = (0.01 * _SSIM_DATA_RANGE) ** 2
    c2 = (0.03 * _SSIM_DATA_RANGE) ** 2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    p = (w - 1) // 2
    return float(s[p : s.shape[0] - p, p : s.shape[1] - p].mean())


def ssim(fused: np.ndarray, ir: np.ndarray, vi: np.ndarray) -> float:
    """SSIM: ``SSIM(F, A) + SSIM(F, B)`` (Wang, Bovik, Sheikh, Simoncelli, IEEE TIP 2004).

    Mean SSIM with the conventions of ``skimage.metrics.structural_similarity`` as the MMIF/CDDFuse evaluator
    called it: 7 x 7 uniform window, sample (N - 1) covariances, K1 = 0.01, K2 = 0.03, mean over the pixels whose
    window lies inside the image (3-pixel border dropped). The images are on the 0..255 scale but, as in the
    evaluator (float images with scikit-image's historic default), ``data_range = 2``, i.e. ``C1 = 0.02^2`` and
    ``C2 = 0.06^2``: the stabilising constants are negligible and the score is close to the pure
    luminance x contrast-structure product. Numbers with ``data_range = 255`` are higher and not comparable.
    ``ssim(F, F, F) == 2``.
    """
    f, a, b = (x.astype(np.float64) for x in _triple(fused, ir, vi))
    _min_size(f, "fused", _SSIM_WIN, "SSIM")
    return _ssim_pair(f, a) + _ssim_pair(f, b)


# ----------------------------------------------------------------------------------------------------------------
# everything at once
# ----------------------------------------------------------------------------------------------------------------


def compute_all(fused: np.ndarray, ir: np.ndarray, vi: np.ndarray) -> dict[str, float]:
    """All ten metrics of one (fused, ir, vi) triple of uint8 2-D arrays of one shape, keyed by ``METRIC_KEYS``."""
    f, a, b = _triple(fused, ir, vi)
    return {
        "EN": entropy(f),
        "SD": standard_deviation(f),
        "SF": spatial_frequency(f),
        "AG": average_gradient(f),
        "MI": mutual_information(f, a, b),
        "SCD": scd(f, a, b),
        "VIF": vif(f, a, b),
        "Qabf": qabf(f, a, b),
        "Nabf": nabf(f, a, b),
        "SSIM": ssim(f, a, b),
    }
