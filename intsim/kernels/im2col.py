"""im2col / col2im through strided views (no loop over pixels or samples).

Column layout (docs/paper.md sec 5), stored feature-major: cols (B, K, L) with
K = C*k*k flattened in (c, kh, kw) order (matching a weight reshaped to
(C_out, C*k*k)) and L = H_out*W_out in row-major (h, w) order. cols[b].T is
the (L, K) unfolded matrix of image b. This layout makes the gather copy
run along contiguous output rows and lets W (N, K) @ cols[b] (K, L) give the
NCHW output directly.
"""
import numpy as np
from numba import njit, prange
from numpy.lib.stride_tricks import as_strided


@njit(parallel=True, cache=True)
def _col2im_kernel(c6, xp, stride):
    """xp[b, c, ho*s + i, wo*s + j] += c6[b, c, i, j, ho, wo]; one task per (b, c) plane."""
    B, C, k, _, Ho, Wo = c6.shape
    for t in prange(B * C):
        b = t // C
        c = t - b * C
        for i in range(k):
            for j in range(k):
                for ho in range(Ho):
                    r = ho * stride + i
                    for wo in range(Wo):
                        xp[b, c, r, wo * stride + j] += c6[b, c, i, j, ho, wo]


def out_size(n, k, stride, padding):
    return (n + 2 * padding - k) // stride + 1


def _padded(x, padding):
    if not padding:
        return np.ascontiguousarray(x)
    B, C, H, W = x.shape
    xp = np.zeros((B, C, H + 2 * padding, W + 2 * padding), x.dtype)
    xp[:, :, padding:padding + H, padding:padding + W] = x
    return xp


def _taps(x, k, stride, padding):
    """{axis name: (size, stride)} of the strided view of padded x, and (Ho, Wo)."""
    B, C, H, W = x.shape
    Ho, Wo = out_size(H, k, stride, padding), out_size(W, k, stride, padding)
    if Ho < 1 or Wo < 1:
        raise ValueError(f"conv kernel {k} larger than padded input {H}x{W} (padding {padding})")
    xp = _padded(x, padding)
    sB, sC, sH, sW = xp.strides
    ax = {"b": (B, sB), "c": (C, sC), "i": (k, sH), "j": (k, sW),
          "ho": (Ho, sH * stride), "wo": (Wo, sW * stride)}
    return xp, ax, (Ho, Wo)


def _unfold(x, k, stride, padding, order):
    """The taps of x as a contiguous array with axes in ``order`` (6 names of _taps)."""
    xp, ax, hw = _taps(x, k, stride, padding)
    view = as_strided(xp, shape=tuple(ax[n][0] for n in order),
                      strides=tuple(ax[n][1] for n in order), writeable=False)
    return view, hw


def im2col(x, k, stride, padding):
    """x: (B, C, H, W) -> (cols (B, C*k*k, Ho*Wo) contiguous, x's dtype; (Ho, Wo))."""
    view, (Ho, Wo) = _unfold(x, k, stride, padding, ("b", "c", "i", "j", "ho", "wo"))
    return view.reshape(x.shape[0], -1, Ho * Wo), (Ho, Wo)


def col2im(cols, x_shape, k, stride, padding):
    """Adjoint of im2col: cols (B, C*k*k, L) -> (B, C, H, W), summing overlaps.

    A Numba kernel (parallel over the B*C planes) does the scatter-add in one
    pass; strided NumPy adds were ~3x slower.
    """
    B, C, H, W = x_shape
    Ho, Wo = out_size(H, k, stride, padding), out_size(W, k, stride, padding)
    if k == 1 and stride == 1 and padding == 0:
        return cols.reshape(B, C, H, W)
    c6 = cols.reshape(B, C, k, k, Ho, Wo)
    xp = np.zeros((B, C, H + 2 * padding, W + 2 * padding), cols.dtype)
    _col2im_kernel(np.ascontiguousarray(c6), xp, stride)
    if padding:
        return xp[:, :, padding:padding + H, padding:padding + W]
    return xp


# ------------------------------------------------------------ K-major layout
# cols_km (K, B, L): row kk = (c, kh, kw) holds that tap for every image and
# output position, so a layer's whole batch is one (N, K) @ (K, B*L) GEMM and
# each reduction tile over K is a contiguous band of rows.

def im2col_km(x, k, stride, padding):
    """x: (B, C, H, W) -> (cols (C*k*k, B, Ho*Wo) contiguous, x's dtype; (Ho, Wo))."""
    view, (Ho, Wo) = _unfold(x, k, stride, padding, ("c", "i", "j", "b", "ho", "wo"))
    return view.reshape(-1, x.shape[0], Ho * Wo), (Ho, Wo)


@njit(parallel=True, cache=True)
def _col2im_km_kernel(c6, scale, xp, stride):
    """xp[b, c, ho*s + i, wo*s + j] += c6[c, i, j, b, ho, wo] * scale[b] (float32
    product, as a scaled array's entries would be); one task per (b, c) plane,
    taps (i, j) in the same order as _col2im_kernel (so the float sums are identical)."""
    C, k, _, B, Ho, Wo = c6.shape
    for t in prange(B * C):
        b = t // C
        c = t - b * C
        sb = scale[b]
        for i in range(k):
            for j in range(k):
                for ho in range(Ho):
                    r = ho * stride + i
                    for wo in range(Wo):
                        xp[b, c, r, wo * stride + j] += c6[c, i, j, b, ho, wo] * sb


def col2im_km(cols, x_shape, k, stride, padding, scale=None):
    """Adjoint of im2col_km: cols (C*k*k, B, L) -> (B, C, H, W), summing overlaps
    in the order col2im does (bit-identical to col2im of the (B, K, L) transpose).

    scale: optional per-image factors (B,) of cols' dtype: the result is then
    col2im_km(cols * scale[None, :, None]) bit for bit, without that array."""
    B, C, H, W = x_shape
    Ho, Wo = out_size(H, k, stride, padding), out_size(W, k, stride, padding)
    c6 = np.ascontiguousarray(cols).reshape(C, k, k, B, Ho, Wo)
    xp = np.zeros((B, C, H + 2 * padding, W + 2 * padding), cols.dtype)
    sc = np.ones(B, cols.dtype) if scale is None else np.asarray(scale, cols.dtype).reshape(B)
    _col2im_km_kernel(c6, sc, xp, stride)
    if padding:
        return xp[:, :, padding:padding + H, padding:padding + W]
    return xp
