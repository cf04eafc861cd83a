"""ResNet-32 for CIFAR (hdqt.md sec 10), option-A shortcuts."""
import numpy as np

from intsim.arith import FP
from intsim.nn import BatchNorm2d, Conv2d, Flatten, GlobalAvgPool, ReLU, Sequential
from intsim.nn.linear import check_arith
from intsim.nn.model import Model
from intsim.nn.module import Module


def _conv_opts(arith):
    """(bias, init) of 3x3 convs: FP has no bias and He-normal init; quantized
    layers follow the arith's quirk-3 fields (released code: bias, kaiming-uniform)."""
    if isinstance(arith, FP):
        return False, "he_normal"
    return bool(arith.conv_bias), arith.conv_init


def conv3x3(cin, cout, stride, arith, rng):
    bias, init = _conv_opts(arith)
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

    def __init__(self, cin, cout, stride, arith, rng):
        super().__init__()
        self.conv1 = conv3x3(cin, cout, stride, arith, rng)
        self.bn1 = BatchNorm2d(cout)
        self.relu1 = ReLU()
        self.conv2 = conv3x3(cout, cout, 1, arith, rng)
        self.bn2 = BatchNorm2d(cout)
        self.shortcut = ShortcutA(cin, cout, stride)
        self.relu2 = ReLU()

    def forward(self, x):
        out = self.bn2.forward(self.conv2.forward(self.relu1.forward(self.bn1.forward(self.conv1.forward(x)))))
        return self.relu2.forward(out + self.shortcut.forward(x))

    def backward(self, grad):
        g = self.relu2.backward(grad)
        gx = self.conv1.backward(self.bn1.backward(self.relu1.backward(self.conv2.backward(self.bn2.backward(g)))))
        return gx + self.shortcut.backward(g)


class ResNet(Model):
    """CIFAR ResNet-(6n+2): conv3x3(3->16)-BN-ReLU, 3 stages of n BasicBlocks
    (16, 32, 64 channels; stride 2 at stages 2, 3), global average pool ->
    64-d features -> growing linear classifier (with bias).

    x: (B, 3, H, W) float32 -> logits (B, num_classes) float32.
    """

    def __init__(self, n_blocks, num_classes, arith, rng, widths=(16, 32, 64), in_ch=3):
        super().__init__()
        self.arith = check_arith(arith)
        if int(n_blocks) < 1 or int(num_classes) < 0:
            raise ValueError(f"bad ResNet n_blocks={n_blocks} num_classes={num_classes}")
        self.in_ch = int(in_ch)
        layers = [conv3x3(in_ch, widths[0], 1, arith, rng), BatchNorm2d(widths[0]), ReLU()]
        cin = widths[0]
        for si, w in enumerate(widths):
            for bi in range(int(n_blocks)):
                stride = 2 if (si > 0 and bi == 0) else 1
                layers.append(BasicBlock(cin, w, stride, arith, rng))
                cin = w
        layers += [GlobalAvgPool(), Flatten()]
        self.backbone = Sequential(*layers)
        self.feature_dim = cin
        self._make_classifier(int(num_classes), True, rng)

    def _input(self, x):
        x = super()._input(x)
        if x.ndim != 4 or x.shape[1] != self.in_ch:
            raise ValueError(f"ResNet expects (B, {self.in_ch}, H, W) input, got shape {x.shape}")
        return x


def resnet32(num_classes, arith, rng):
    """ResNet-32 (5 blocks per stage; 31 convs + 1 linear), hdqt.md sec 10."""
    return ResNet(5, num_classes, arith, rng)
