"""2-D convolution under any datapath (intsim.datapath): the layer gives the layout."""

from intsim.datapath import Conv
from intsim.nn.init import bias_uniform, he_normal, kaiming_uniform
from intsim.nn.linear import DatapathSite, check_arith
from intsim.nn.module import Module, Parameter


class Conv2d(Module, DatapathSite):
    """Conv2d over (B, C_in, H, W) float32 -> (B, C_out, H_out, W_out) float32.

    weight: (C_out, C_in / groups, k, k); bias (C_out,) or None. ``groups`` G:
    G independent convolutions over G slices of the channels (both C_in and
    C_out divisible by G; G = C_in: depthwise), each one product of the
    datapath with its own quantizers (intsim.datapath.layout.Conv). init: "kaiming_uniform"
    (PyTorch default, a=sqrt(5); bias U(+-1/sqrt(fan_in))) or "he_normal"
    (N(0, 2/fan_out), PyCIL's ResNet). The datapath (``arith``) unfolds the
    input (im2col) and computes the product, the bias and their gradients
    (intsim.datapath.layout.Conv). ``kmajor`` (default True) keeps the
    unfolded input as (C k k, B, L), one GEMM over the batch; False selects
    the per-image (B, K, L) reference it is tested against.
    """

    def __init__(self, in_ch, out_ch, kernel, stride, padding, bias, arith, rng,
                 init="kaiming_uniform", groups=1):
        super().__init__()
        if (min(in_ch, out_ch, kernel, stride, groups) < 1 or padding < 0
                or in_ch % groups or out_ch % groups):
            raise ValueError(f"bad Conv2d({in_ch}, {out_ch}, k={kernel}, s={stride}, p={padding}, "
                             f"groups={groups})")
        self.in_ch, self.out_ch, self.k = int(in_ch), int(out_ch), int(kernel)
        self.stride, self.padding, self.groups = int(stride), int(padding), int(groups)
        check_arith(arith)
        shape = (out_ch, in_ch // groups, kernel, kernel)
        fan_in = in_ch // groups * kernel * kernel
        if init == "kaiming_uniform":
            w = kaiming_uniform(shape, fan_in, rng)
        elif init == "he_normal":
            w = he_normal(shape, out_ch * kernel * kernel, rng)   # PyTorch fan_out
        else:
            raise ValueError(f"unknown conv init {init!r}")
        self.weight = Parameter(w, "weight")
        self.bias = Parameter(bias_uniform(out_ch, fan_in, rng), "bias") if bias else None
        self._init_site(arith, rng)
        self.kmajor = True

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_ch:
            raise ValueError(f"Conv2d({self.in_ch}->{self.out_ch}) expects (B, {self.in_ch}, H, W), got {x.shape}")
        layout = Conv(self.k, self.stride, self.padding, self.kmajor, self.groups)
        b = None if self.bias is None else self.bias.data
        y, self._ctx = self.arith.forward(x, self.weight.data.reshape(self.out_ch, -1), b,
                                          layout, self)
        self._shape = layout.shape(x, self.out_ch, y)
        self.calls[("forward", self._shape, self.training)] += 1
        return y

    def backward(self, grad):
        dx, dw, db = self._ctx.backward(grad)
        self.weight.grad = dw.reshape(self.weight.data.shape)
        if self.bias is not None:
            self.bias.grad = db
        self._count_backward(dx is not None)
        return dx
