"""im2col / col2im through strided views (no loop over pixels or samples).

Column layout (hdqt.md sec 5): (B, L, C*k*k) with L = H_out*W_out in
row-major (h, w) order and the reduction axis flattened in (c, kh, kw) order,
matching a weight reshaped to (C_out, C*k*k).
"""
import numpy as np
from numpy.lib.stride_tricks import as_strided


def out_size(n, k, stride, padding):
    return (n + 2 * padding - k) // stride + 1


def im2col(x, k, stride, padding):
    """x: (B, C, H, W) -> cols (B, L, C*k*k) contiguous, x's dtype; and (Ho, Wo)."""
    B, C, H, W = x.shape
    Ho, Wo = out_size(H, k, stride, padding), out_size(W, k, stride, padding)
    if Ho < 1 or Wo < 1:
        raise ValueError(f"conv kernel {k} larger than padded input {H}x{W} (padding {padding})")
    if padding:
        xp = np.zeros((B, C, H + 2 * padding, W + 2 * padding), x.dtype)
        xp[:, :, padding:padding + H, padding:padding + W] = x
    else:
        xp = np.ascontiguousarray(x)
    sB, sC, sH, sW = xp.strides
    view = as_strided(xp, shape=(B, Ho, Wo, C, k, k),
                      strides=(sB, sH * stride, sW * stride, sC, sH, sW), writeable=False)
    return view.reshape(B, Ho * Wo, C * k * k), (Ho, Wo)


def col2im(cols, x_shape, k, stride, padding):
    """Adjoint of im2col: cols (B, L, C*k*k) -> (B, C, H, W), summing overlaps.

    Loops only over the k*k kernel offsets; each step is one strided add.
    """
    B, C, H, W = x_shape
    Ho, Wo = out_size(H, k, stride, padding), out_size(W, k, stride, padding)
    c6 = cols.reshape(B, Ho, Wo, C, k, k)
    xp = np.zeros((B, C, H + 2 * padding, W + 2 * padding), cols.dtype)
    # (B, C, Ho, Wo) windows of xp for each offset, written through a view
    for i in range(k):
        for j in range(k):
            xp[:, :, i:i + stride * (Ho - 1) + 1:stride, j:j + stride * (Wo - 1) + 1:stride] += \
                c6[:, :, :, :, i, j].transpose(0, 3, 1, 2)
    if padding:
        return xp[:, :, padding:padding + H, padding:padding + W]
    return xp
