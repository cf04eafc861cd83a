"""Max and average pooling in 2-D and 1-D (float32, no datapath).

A 1-D pool over (B, C, L) is the 2-D pool of (B, C, 1, L) with a 1 x k window.
Windows are k x k (k in 1-D) with ``stride`` (default k) and ``padding``
zeros on each side (-inf for max pooling: padding is never the max; the
average counts the padding, PyTorch's count_include_pad=True). Output size
floor((H + 2 padding - k) / stride) + 1.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from intsim.nn.module import Module


class _Pool2d(Module):
    """Pooling over windows (kh, kw) of (B, C, H, W) with strides (sh, sw) and padding
    (ph, pw); subclasses reduce the windows and spread the gradient back."""

    def __init__(self, window, stride, padding, fill):
        super().__init__()
        (kh, kw), (sh, sw), (ph, pw) = window, stride, padding
        if min(kh, kw, sh, sw) < 1 or min(ph, pw) < 0 or ph * 2 > kh or pw * 2 > kw:
            raise ValueError(f"bad pooling window {window}, stride {stride}, padding {padding}")
        self.window, self.strides, self.pads, self._fill = window, stride, padding, fill

    def _windows(self, x):
        """The padded input's windows (B, C, Ho, Wo, kh, kw) (a strided view)."""
        if x.ndim != 4:
            raise ValueError(f"{type(self).__name__} expects (B, C, H, W), got shape {x.shape}")
        (kh, kw), (sh, sw), (ph, pw) = self.window, self.strides, self.pads
        if x.shape[2] + 2 * ph < kh or x.shape[3] + 2 * pw < kw:
            raise ValueError(f"pooling window {self.window} larger than the input {x.shape}")
        xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=self._fill)
        self._padded = xp.shape
        return sliding_window_view(xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]

    def _scatter(self, parts, grad, shape):
        """Sum the per-offset gradients parts(i, j) (B, C, Ho, Wo), like grad, into the
        input (shape)."""
        (kh, kw), (sh, sw), (ph, pw) = self.window, self.strides, self.pads
        dxp = np.zeros(self._padded, grad.dtype)
        Ho, Wo = grad.shape[2:]
        for i in range(kh):
            for j in range(kw):
                dxp[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw] += parts(i, j)
        return dxp[:, :, ph:ph + shape[2], pw:pw + shape[3]]


class _MaxPool2d(_Pool2d):
    def __init__(self, window, stride, padding):
        super().__init__(window, stride, padding, -np.inf)

    def forward(self, x):
        w = self._windows(x)
        flat = w.reshape(w.shape[:4] + (-1,))
        self._arg = flat.argmax(axis=-1)            # the first maximum of each window
        self._shape = x.shape
        return np.take_along_axis(flat, self._arg[..., None], axis=-1)[..., 0]

    def backward(self, grad):
        kw = self.window[1]
        arg = self._arg
        z = grad.dtype.type(0)
        return self._scatter(lambda i, j: np.where(arg == i * kw + j, grad, z), grad,
                             self._shape)


class _AvgPool2d(_Pool2d):
    def __init__(self, window, stride, padding):
        super().__init__(window, stride, padding, 0.0)

    def forward(self, x):
        w = self._windows(x)
        self._shape = x.shape
        return w.mean(axis=(-2, -1), dtype=x.dtype)

    def backward(self, grad):
        kh, kw = self.window
        g = grad * grad.dtype.type(1.0 / (kh * kw))
        return self._scatter(lambda i, j: g, grad, self._shape)


def _pair(k, stride, padding):
    stride = k if stride is None else stride
    return (int(k), int(k)), (int(stride), int(stride)), (int(padding), int(padding))


def _line(k, stride, padding):
    stride = k if stride is None else stride
    return (1, int(k)), (1, int(stride)), (0, int(padding))


class MaxPool2d(_MaxPool2d):
    """Max over k x k windows of (B, C, H, W) -> (B, C, Ho, Wo); the gradient goes to
    the first maximum of each window."""

    def __init__(self, k, stride=None, padding=0):
        super().__init__(*_pair(k, stride, padding))


class AvgPool2d(_AvgPool2d):
    """Mean over k x k windows of (B, C, H, W) -> (B, C, Ho, Wo)."""

    def __init__(self, k, stride=None, padding=0):
        super().__init__(*_pair(k, stride, padding))


class _As1d:
    """(B, C, L) in and out, as the 2-D pool of (B, C, 1, L)."""

    def forward(self, x):
        if x.ndim != 3:
            raise ValueError(f"{type(self).__name__} expects (B, C, L), got shape {x.shape}")
        return super().forward(x[:, :, None, :])[:, :, 0, :]

    def backward(self, grad):
        return super().backward(grad[:, :, None, :])[:, :, 0, :]


class MaxPool1d(_As1d, _MaxPool2d):
    """Max over windows of k of (B, C, L) -> (B, C, Lo)."""

    def __init__(self, k, stride=None, padding=0):
        _MaxPool2d.__init__(self, *_line(k, stride, padding))


class AvgPool1d(_As1d, _AvgPool2d):
    """Mean over windows of k of (B, C, L) -> (B, C, Lo)."""

    def __init__(self, k, stride=None, padding=0):
        _AvgPool2d.__init__(self, *_line(k, stride, padding))
