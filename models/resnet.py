"""ResNet-32 for CIFAR (docs/paper.md sec 10), option-A shortcuts."""
import dataclasses
import numpy as np

from intsim.nn import BatchNorm2d, Conv2d, Flatten, GlobalAvgPool, ReLU, Sequential
from intsim.nn.linear import check_arith
from intsim.nn.model import Model
from intsim.nn.module import Module
from intsim.models.registry import ModelSpec, register_model


CONV_INITS = ("kaiming_uniform", "he_normal")


def conv_style(arith, conv_bias=None, conv_init=None) -> tuple:
    """(bias, init) of the 3x3 convs (docs/paper.md sec 8, quirk 3).

    None takes the released code's choice for the arithmetic: its quantized
    convs carry a float bias and PyTorch's default kaiming-uniform(a=sqrt(5))
    init; the float ResNet has no bias and He-normal init.
    """
    bias, init = (True, "kaiming_uniform") if arith.quantized else (False, "he_normal")
    bias = bias if conv_bias is None else bool(conv_bias)
    init = init if conv_init is None else conv_init
    if init not in CONV_INITS:
        raise ValueError(f"conv_init must be one of {CONV_INITS}, got {init!r}")
    return bias, init


def conv3x3(cin, cout, stride, arith, rng, style=None):
    bias, init = style if style is not None else conv_style(arith)
    return Conv2d(cin, cout, 3, stride, 1, bias, arith, rng, init=init)


class ShortcutA(Module):
    """Option-A shortcut: subsample by `stride`, zero-pad channels cin -> cout (no parameters)."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.cin, self.cout, self.stride = cin, cout, stride

    def forward(self, x):
        s = self.stride
        self._xshape = x.shape
        y = x[:, :, ::s, ::s]
        if self.cout == self.cin:
            return y if s == 1 else np.ascontiguousarray(y)
        pad = (self.cout - self.cin) // 2
        out = np.zeros((y.shape[0], self.cout) + y.shape[2:], x.dtype)
        out[:, pad:pad + self.cin] = y
        return out

    def backward(self, grad):
        s = self.stride
        if self.cout == self.cin and s == 1:
            return grad
        pad = (self.cout - self.cin) // 2
        g = grad[:, pad:pad + self.cin] if self.cout != self.cin else grad
        if s == 1:
            return np.ascontiguousarray(g)
        dx = np.zeros(self._xshape, grad.dtype)
        dx[:, :, ::s, ::s] = g
        return dx


class BasicBlock(Module):
    """conv3x3 -> BN -> ReLU -> conv3x3 -> BN, + shortcut, ReLU. (B, cin, H, W) -> (B, cout, H/s, W/s)."""

    def __init__(self, cin, cout, stride, arith, rng, style=None):
        super().__init__()
        self.conv1 = conv3x3(cin, cout, stride, arith, rng, style)
        self.bn1 = BatchNorm2d(cout)
        self.relu1 = ReLU()
        self.conv2 = conv3x3(cout, cout, 1, arith, rng, style)
        self.bn2 = BatchNorm2d(cout)
        self.shortcut = ShortcutA(cin, cout, stride)
        self.relu2 = ReLU()

    def forward(self, x):
        out = self.bn2.forward(self.conv2.forward(self.relu1.forward(self.bn1.forward(self.conv1.forward(x)))))
        return self.relu2.forward(out + self.shortcut.forward(x))

    def backward(self, grad):
        g = self.relu2.backward(grad)
        gx = self.conv1.backward(self.bn1.backward(self.relu1.backward(self.conv2.backward(self.bn2.backward(g)))))
        if gx is None:      # conv1 computes no input gradient: nobody reads this block's
            return None     # (MEMO's specialized block over a frozen generalized part)
        return gx + self.shortcut.backward(g)


def stage(cin, width, n_blocks, stride, arith, rng, style) -> list:
    """n_blocks BasicBlocks of ``width`` channels, the first with ``stride``."""
    blocks = []
    for bi in range(int(n_blocks)):
        blocks.append(BasicBlock(cin, width, stride if bi == 0 else 1, arith, rng, style))
        cin = width
    return blocks


class ResNet(Model):
    """CIFAR ResNet-(6n+2): conv3x3(3->16)-BN-ReLU, 3 stages of n BasicBlocks
    (16, 32, 64 channels; stride 2 at stages 2, 3), global average pool ->
    64-d features -> growing linear classifier (with bias).

    x: (B, 3, H, W) float32 -> logits (B, num_classes) float32.
    conv_bias, conv_init: the 3x3 convs' bias and init (see conv_style;
    None: the released code's choice for the arithmetic).

    MEMO (intsim.models.memo) splits it as the released memo_cifar_resnet
    does: memo_split() gives the stem and all stages but the last (the
    generalized blocks) and the last stage with the pooling (the first
    specialized block); memo_block(rng) builds a fresh last stage.
    """

    def __init__(self, n_blocks, num_classes, arith, rng, widths=(16, 32, 64), in_ch=3,
                 conv_bias=None, conv_init=None):
        super().__init__()
        self.arith = check_arith(arith)
        if int(n_blocks) < 1 or int(num_classes) < 0:
            raise ValueError(f"bad ResNet n_blocks={n_blocks} num_classes={num_classes}")
        self.in_ch = int(in_ch)
        self.n_blocks = int(n_blocks)
        self.widths = tuple(int(w) for w in widths)
        self.style = style = conv_style(arith, conv_bias, conv_init)
        layers = [conv3x3(in_ch, widths[0], 1, arith, rng, style), BatchNorm2d(widths[0]), ReLU()]
        cin = widths[0]
        for si, w in enumerate(widths):
            layers += stage(cin, w, n_blocks, 2 if si > 0 else 1, arith, rng, style)
            cin = w
        layers += [GlobalAvgPool(), Flatten()]
        self.backbone = Sequential(*layers)
        self.feature_dim = cin
        self._make_classifier(int(num_classes), True, rng)

    # -- MEMO's split (backbones/memo_cifar_resnet.py) ----------------------
    def _last_stage_start(self) -> int:
        return 3 + self.n_blocks * (len(self.widths) - 1)

    def memo_split(self, rng=None):
        """(generalized, specialized) Sequentials over this model's own backbone
        layers (the same modules): the stem and every stage but the last; the
        last stage, global average pool and flatten (feature_dim wide). rng is
        not used (nothing is drawn)."""
        layers = list(self.backbone)
        k = self._last_stage_start()
        return Sequential(*layers[:k]), Sequential(*layers[k:])

    def memo_block(self, rng):
        """A fresh last stage + pool + flatten (feature_dim wide), drawn from rng,
        in this model's arithmetic and conv style."""
        w = self.widths
        cin = w[-2] if len(w) > 1 else w[0]
        blocks = stage(cin, w[-1], self.n_blocks, 2 if len(w) > 1 else 1, self.arith, rng,
                       self.style)
        return Sequential(*blocks, GlobalAvgPool(), Flatten())

    def _input(self, x):
        x = super()._input(x)
        if x.ndim != 4 or x.shape[1] != self.in_ch:
            raise ValueError(f"ResNet expects (B, {self.in_ch}, H, W) input, got shape {x.shape}")
        return x


def resnet32(num_classes, arith, rng, **kw):
    """ResNet-32 (5 blocks per stage; 31 convs + 1 linear), docs/paper.md sec 10."""
    return ResNet(5, num_classes, arith, rng, **kw)


def _build(cc, arith, in_shape, rng):
    if len(in_shape) != 3:
        raise ValueError(f"resnet32 needs images (C, H, W), the data has shape {tuple(in_shape)}")
    kw = {"conv_bias": cc.conv_bias, "conv_init": cc.conv_init}
    if in_shape[0] == 3:
        return resnet32(0, arith, rng, **kw)
    return ResNet(5, 0, arith, rng, in_ch=int(in_shape[0]), **kw)   # e.g. 1-channel MNIST


def _prepare(ds):
    """Single-channel (N, H, W) images get a channel axis."""
    if ds.X_train.ndim == 3:
        return dataclasses.replace(ds, X_train=ds.X_train[:, None], X_test=ds.X_test[:, None])
    return ds


register_model(ModelSpec("resnet32", _build, _prepare, needs_images=True,
                         options=("conv_bias", "conv_init"),
                         description="ResNet-32 for 32x32 images (docs/paper.md sec 10)"))
