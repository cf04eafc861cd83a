"""Linear layer y = x W^T + b under any registered arithmetic (FP, HDQT, LUQ, FP8, FP134)."""
import numpy as np

from intsim.arith import ARITHS
from intsim.arith import qmatmul as qm
from intsim.nn.init import bias_uniform, child_rng, kaiming_uniform
from intsim.nn.module import Module, Parameter


def check_arith(arith):
    if not isinstance(arith, tuple(ARITHS.values())):
        names = ", ".join(c.__name__ for c in ARITHS.values())
        raise ValueError(f"arith must be a registered arithmetic ({names}), got {arith!r}")
    return arith


class Linear(Module):
    """y = x W^T + b. x: (B, in_features) float32 -> (B, out_features) float32.

    weight: (out_features, in_features), PyTorch default init
    (kaiming-uniform a=sqrt(5)); bias U(+-1/sqrt(in)) if bias.
    Quantized arithmetic (HDQT/LUQ) quantizes the matmul as docs/paper.md secs 3-4/7;
    the bias is added and its gradient summed in float. A float-datapath
    arithmetic (FP8, FP134; ``arith.float_datapath``) runs float32 products on
    the operands its hooks return (intsim/arith/floatkinds.py). The layer owns
    ``rng`` (a Generator drawn from the rng given) for stochastic rounding,
    ``layer_audit``, and the buffer ``arith_state`` when the arithmetic keeps
    per-layer state (FP134's tracked scales).
    """

    def __init__(self, in_features, out_features, bias, arith, rng):
        super().__init__()
        if int(in_features) < 1 or int(out_features) < 0:
            raise ValueError(f"bad Linear sizes {in_features} -> {out_features}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.arith = check_arith(arith)
        self.weight = Parameter(kaiming_uniform((out_features, in_features), in_features, rng), "weight")
        self.bias = Parameter(bias_uniform(out_features, in_features, rng), "bias") if bias else None
        self.rng = child_rng(rng) if arith.quantized else None
        self.layer_audit = qm.LayerAudit(pass_cls=arith.pass_audit) if arith.quantized else None
        if arith.float_datapath and arith.layer_state() is not None:
            self.register_buffer("arith_state", arith.layer_state())
        # False for a network's first layer: nobody reads its input gradient, so it
        # is neither computed nor audited (backward returns None)
        self.need_input_grad = True

    def forward(self, x):
        if x.ndim != 2 or x.shape[1] != self.in_features:
            raise ValueError(f"Linear({self.in_features}->{self.out_features}) got input shape {x.shape}")
        if self.arith.float_datapath:
            return self._forward_float(x)
        W = self.weight.data
        dt = W.dtype
        a = self.arith
        if not a.quantizes_forward:
            x = x.astype(dt, copy=False)
            self._x = x
            self._xq, self._sx, self._wq, self._sw = x, 1.0, W, 1.0
            self._xmask = self._wmask = None
            y = x @ W.T
        else:
            per = a.per_sample_eval(self.training)
            self.layer_audit.tick()
            aud = (self.layer_audit, "forward")
            wq, sw, _, self._wmask = qm.quantize_forward(W, a, aud, "W")
            xq, sx, _, self._xmask = qm.quantize_forward(x, a, aud, "x", batch_dims=int(per))
            b_in = qm.bias_units(a, None if self.bias is None else self.bias.data, sx, sw)
            acc = qm.forward_matmul(xq, wq, a, self.layer_audit, b_in)
            scale = np.asarray(sx, np.float32)[:, None] * np.float32(sw) if per else np.float32(sw * sx)
            y = (acc * scale).astype(np.float32, copy=False)
            self._xq, self._sx, self._wq, self._sw = xq, sx, wq, sw
            if b_in is not None:
                return y
        if self.bias is not None:
            y = y + self.bias.data
        return y

    def backward(self, grad):
        a = self.arith
        if grad.shape[-1] != self.out_features:
            raise ValueError(f"Linear backward: grad shape {grad.shape}")
        if a.float_datapath:
            return self._backward_float(grad)
        if self.bias is not None:
            self.bias.grad = grad.sum(axis=0).astype(self.bias.data.dtype)
        if not a.quantized:
            self.weight.grad = grad.T @ self._x
            return grad @ self.weight.data if self.need_input_grad else None
        if np.ndim(self._sx) != 0:
            raise ValueError("backward after an eval-mode per-sample forward is not supported")
        gT = np.ascontiguousarray(grad.T, dtype=np.float32)
        dxT, dw, db = a.backward(gT, np.ascontiguousarray(self._xq.T), self._sx, self._wq,
                                 self._sw, self.rng, self.layer_audit,
                                 need_dx=self.need_input_grad)
        if db is not None and self.bias is not None:
            self.bias.grad = db.astype(self.bias.data.dtype, copy=False)
        dx = None if dxT is None else dxT.T
        if self._wmask is not None:
            dw = dw * self._wmask
        if self._xmask is not None and dx is not None:
            dx = dx * self._xmask
        self.weight.grad = dw
        return dx

    # -- float datapath (FP8, FP134): float32 products around the arithmetic's hooks
    def _forward_float(self, x):
        """y = out(x' W'^T + b), (x', W') = arith.forward_operands(x, W), out =
        arith.forward_output; x (B, in) -> y (B, out) float32."""
        a = self.arith
        W = self.weight.data
        x = x.astype(W.dtype, copy=False)
        self.layer_audit.tick()
        state = getattr(self, "arith_state", None)
        xq, wq = a.forward_operands(x, W, state, self.training, self.rng, self.layer_audit)
        y = xq @ wq.T
        if self.bias is not None:
            y = y + self.bias.data
        self._x, self._wq = xq, wq
        return a.forward_output(y, state, self.training, self.rng, self.layer_audit)

    def _backward_float(self, grad):
        """g' = arith.backward_error(g); dW = g'^T x', dx = g' W' (None for a first
        layer), db = sum of g' (arith.bias_grad_quantized) or of g."""
        a = self.arith
        gq = a.backward_error(grad, getattr(self, "arith_state", None), self.rng,
                              self.layer_audit, need_dx=self.need_input_grad)
        gq = gq.astype(self.weight.data.dtype, copy=False)
        if self.bias is not None:
            gb = gq if a.bias_grad_quantized else grad
            self.bias.grad = gb.sum(axis=0).astype(self.bias.data.dtype)
        self.weight.grad = gq.T @ self._x
        return gq @ self._wq if self.need_input_grad else None

    def add_outputs(self, n, rng):
        """Grow by n output rows (classifier growth): old rows kept, new rows
        initialised as a fresh layer with the same fan-in would be."""
        n = int(n)
        if n < 0:
            raise ValueError(f"cannot add {n} outputs")
        neww = kaiming_uniform((n, self.in_features), self.in_features, rng)
        # the same Parameter objects are kept (their data grows)
        self.weight.data = np.concatenate([self.weight.data, neww.astype(self.weight.data.dtype)])
        self.weight.grad = None
        if self.bias is not None:
            newb = bias_uniform(n, self.in_features, rng)
            self.bias.data = np.concatenate([self.bias.data, newb.astype(self.bias.data.dtype)])
            self.bias.grad = None
        self.out_features += n
        if getattr(self, "arith_state", None) is not None:
            # the released code wraps each task's new classifier in a fresh lptorch
            # QLayer: its tracked scales start again from 0
            self.arith_state = self.arith.layer_state()
