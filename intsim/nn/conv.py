"""2-D convolution via im2col + one BLAS/integer matmul (docs/paper.md sec 5)."""

import numpy as np

from intsim.arith import qmatmul as qm
from intsim.nn.im2col import col2im, col2im_km, im2col, im2col_km
from intsim.nn.init import bias_uniform, child_rng, he_normal, kaiming_uniform
from intsim.nn.linear import check_arith
from intsim.nn.module import Module, Parameter


class Conv2d(Module):
    """Conv2d over (B, C_in, H, W) float32 -> (B, C_out, H_out, W_out) float32.

    weight: (C_out, C_in, k, k); bias (C_out,) or None. init: "kaiming_uniform"
    (PyTorch default, a=sqrt(5); bias U(+-1/sqrt(fan_in))) or "he_normal"
    (N(0, 2/fan_out), PyCIL's ResNet). Quantized arithmetic: Q_fwd on the whole
    input and weight, im2col of the quantized input, tiled integer matmul;
    the HDQT backward runs per image (the L = H_out*W_out positions are the
    batch of H_b; per-image backward scales and draws; per-image clamped
    weight gradients summed in float; input gradient through col2im in float).

    A float-datapath arithmetic (FP8, FP134) runs the FP layout (one float32
    GEMM over the K-major columns of its forward operands) around the
    arithmetic's hooks (intsim/arith/floatkinds.py), with the buffer
    ``arith_state`` when the arithmetic keeps per-layer state.

    Two implementations give the same bits: the K-major one (the default) keeps
    the unfolded input as (C*k*k, B, L), so the forward and the input gradient
    are each one GEMM over the whole batch; ``kmajor = False`` selects the
    per-image (B, K, L) reference it is tested against.
    """

    def __init__(self, in_ch, out_ch, kernel, stride, padding, bias, arith, rng, init="kaiming_uniform"):
        super().__init__()
        if min(in_ch, out_ch, kernel, stride) < 1 or padding < 0:
            raise ValueError(f"bad Conv2d({in_ch}, {out_ch}, k={kernel}, s={stride}, p={padding})")
        self.in_ch, self.out_ch, self.k = int(in_ch), int(out_ch), int(kernel)
        self.stride, self.padding = int(stride), int(padding)
        self.arith = check_arith(arith)
        shape = (out_ch, in_ch, kernel, kernel)
        fan_in = in_ch * kernel * kernel
        if init == "kaiming_uniform":
            w = kaiming_uniform(shape, fan_in, rng)
        elif init == "he_normal":
            w = he_normal(shape, out_ch * kernel * kernel, rng)
        else:
            raise ValueError(f"unknown conv init {init!r}")
        self.weight = Parameter(w, "weight")
        self.bias = Parameter(bias_uniform(out_ch, fan_in, rng), "bias") if bias else None
        self.rng = child_rng(rng) if arith.quantized else None
        self.layer_audit = qm.LayerAudit(pass_cls=arith.pass_audit) if arith.quantized else None
        if arith.float_datapath and arith.layer_state() is not None:
            self.register_buffer("arith_state", arith.layer_state())
        # False for a network's first layer: its input gradient is neither computed
        # nor audited (backward returns None)
        self.need_input_grad = True
        self.kmajor = True

    def _use_km(self):
        # HDQT without forward quantization (an ablation) keeps the reference path
        a = self.arith
        return self.kmajor and (a.quantizes_forward or not a.quantized)

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.in_ch:
            raise ValueError(f"Conv2d({self.in_ch}->{self.out_ch}) expects (B, {self.in_ch}, H, W), got {x.shape}")
        self._xshape = x.shape
        if self.arith.float_datapath:
            self._km = None
            return self._forward_float(x)
        self._km = self._use_km()
        if self._km:
            return self._forward_km(x)
        return self._forward_ref(x)

    def backward(self, grad):
        if self._km is None:
            return self._backward_float(grad)
        if self._km:
            return self._backward_km(grad)
        return self._backward_ref(grad)

    def _forward_km(self, x):
        a = self.arith
        W = self.weight.data
        B = x.shape[0]
        N = self.out_ch
        W2 = W.reshape(N, -1)
        if not a.quantized:
            # float: one (N, K) @ (K, B*L) GEMM (sums in BLAS's order for that shape,
            # not the per-image GEMMs' of the reference: equal up to float rounding)
            cols, (Ho, Wo) = im2col_km(x.astype(W.dtype, copy=False), self.k, self.stride,
                                       self.padding)
            y = np.matmul(W2, cols.reshape(cols.shape[0], -1))
            self._cols, self._sx, self._wq, self._sw = cols, 1.0, W2, 1.0
            self._xmask = self._wmask = None
            return self._output(y, B, Ho, Wo)
        per = a.per_sample_eval(self.training)
        self.layer_audit.tick()
        aud = (self.layer_audit, "forward")
        wq, sw, _, self._wmask = qm.quantize_forward(W2, a, aud, "W")
        xq, sx, _, self._xmask = qm.quantize_forward(x, a, aud, "x", batch_dims=int(per))
        cols, (Ho, Wo) = im2col_km(xq, self.k, self.stride, self.padding)      # (K, B, L)
        b_in = qm.bias_units(a, None if self.bias is None else self.bias.data, sx, sw)
        acc = qm.forward_matmul_T(wq, cols.reshape(cols.shape[0], -1), a,
                                  self.layer_audit, b_in)                   # (N, B*L)
        if per:
            scale = (np.asarray(sx, np.float32) * np.float32(sw))[None, :, None]
            acc = acc.reshape(N, B, -1)
        else:
            scale = np.float32(sw * sx)
        y = (acc * scale).astype(np.float32, copy=False)
        self._cols, self._sx, self._wq, self._sw = cols, sx, wq, sw
        return self._output(y, B, Ho, Wo, add_bias=b_in is None)

    def _forward_float(self, x):
        """Float datapath: (x', W') = arith.forward_operands(x, W (N, C k k)), one
        (N, K) @ (K, B L) float32 GEMM over im2col_km(x'), + bias, then
        arith.forward_output. x (B, C, H, W) -> (B, N, Ho, Wo) float32."""
        a = self.arith
        W = self.weight.data
        B = x.shape[0]
        self.layer_audit.tick()
        state = getattr(self, "arith_state", None)
        xq, wq = a.forward_operands(x.astype(W.dtype, copy=False), W.reshape(self.out_ch, -1),
                                    state, self.training, self.rng, self.layer_audit)
        cols, (Ho, Wo) = im2col_km(xq, self.k, self.stride, self.padding)      # (K, B, L)
        y = np.matmul(wq, cols.reshape(cols.shape[0], -1))
        self._cols, self._wq = cols, wq
        y = self._output(y, B, Ho, Wo)
        return a.forward_output(y, state, self.training, self.rng, self.layer_audit)

    def _backward_float(self, grad):
        """g' = arith.backward_error(g); dW = g' cols'^T, dx = col2im(W'^T g') (None
        for a first layer), db = sum of g' (arith.bias_grad_quantized) or of g."""
        a = self.arith
        gT = self._grad_in(grad)                                           # (B, N, L)
        gq = a.backward_error(grad, getattr(self, "arith_state", None), self.rng,
                              self.layer_audit, need_dx=self.need_input_grad)
        gq = gq.astype(self.weight.data.dtype, copy=False)
        if self.bias is not None and a.bias_grad_quantized:
            self.bias.grad = gq.sum(axis=(0, 2, 3)).astype(self.bias.data.dtype)
        B, N, L = gT.shape
        g2 = np.ascontiguousarray(gq.reshape(B, N, L).transpose(1, 0, 2)).reshape(N, B * L)
        c2 = self._cols.reshape(self._cols.shape[0], B * L)
        self.weight.grad = np.matmul(g2, c2.T).reshape(self.weight.data.shape)
        if not self.need_input_grad:
            return None
        return col2im_km(np.matmul(self._wq.T, g2).reshape(-1, B, L), self._xshape,
                         self.k, self.stride, self.padding)

    def _output(self, y, B, Ho, Wo, add_bias=True):
        """(N, B*L) K-major product -> (B, N, Ho, Wo) layer output (+ bias unless
        the accumulator already holds it)."""
        N = self.out_ch
        self._hw = (Ho, Wo)
        y = np.ascontiguousarray(y.reshape(N, B, Ho * Wo).transpose(1, 0, 2)).reshape(B, N, Ho, Wo)
        if self.bias is not None and add_bias:
            y += self.bias.data[None, :, None, None]
        return y

    def _grad_in(self, grad):
        """Checks grad (B, N, Ho, Wo), fills the bias gradient; returns g^T (B, N, L)."""
        B = self._xshape[0]
        Ho, Wo = self._hw
        N = self.out_ch
        if grad.shape != (B, N, Ho, Wo):
            raise ValueError(f"Conv2d backward: grad shape {grad.shape} != {(B, N, Ho, Wo)}")
        if self.bias is not None:
            self.bias.grad = grad.sum(axis=(0, 2, 3)).astype(self.bias.data.dtype)
        return np.ascontiguousarray(grad).reshape(B, N, Ho * Wo)

    def _backward_km(self, grad):
        a = self.arith
        gT = self._grad_in(grad)                                           # (B, N, L)
        cols = self._cols                                                  # (K, B, L)
        if not a.quantized:
            B, N, L = gT.shape
            g2 = np.ascontiguousarray(gT.transpose(1, 0, 2)).reshape(N, B * L)
            c2 = cols.reshape(cols.shape[0], B * L)
            self.weight.grad = np.matmul(g2, c2.T).reshape(self.weight.data.shape)
            if not self.need_input_grad:
                return None
            return col2im_km(np.matmul(self._wq.T, g2).reshape(-1, B, L), self._xshape,
                             self.k, self.stride, self.padding)
        if np.ndim(self._sx) != 0:
            raise ValueError("backward after an eval-mode per-sample forward is not supported")
        gT = gT.astype(np.float32, copy=False)
        dcols, scale, dw, kmaj, db = a.conv_backward_km(gT, cols, self._sx, self._wq, self._sw,
                                                        self.rng, self.layer_audit,
                                                        need_dx=self.need_input_grad)
        if db is not None and self.bias is not None:
            self.bias.grad = db.astype(self.bias.data.dtype, copy=False)
        if self._wmask is not None:
            dw = dw * self._wmask
        self.weight.grad = dw.reshape(self.weight.data.shape)
        if dcols is None:
            return None
        if kmaj:
            dx = col2im_km(dcols, self._xshape, self.k, self.stride, self.padding, scale)
        else:
            dx = col2im(dcols, self._xshape, self.k, self.stride, self.padding)
        if self._xmask is not None:
            dx = dx * self._xmask
        return dx

    def _forward_ref(self, x):
        a = self.arith
        W = self.weight.data
        B = x.shape[0]
        N = self.out_ch
        W2 = W.reshape(N, -1)
        if not a.quantizes_forward:
            x = x.astype(W.dtype, copy=False)
            cols, (Ho, Wo) = im2col(x, self.k, self.stride, self.padding)     # (B, K, L)
            y = np.matmul(W2, cols)                                          # (B, N, L)
            self._cols, self._sx, self._wq, self._sw = cols, 1.0, W2, 1.0
            self._xmask = self._wmask = None
        else:
            per = a.per_sample_eval(self.training)
            self.layer_audit.tick()
            aud = (self.layer_audit, "forward")
            wq, sw, _, self._wmask = qm.quantize_forward(W2, a, aud, "W")
            xq, sx, _, self._xmask = qm.quantize_forward(x, a, aud, "x", batch_dims=int(per))
            cols, (Ho, Wo) = im2col(xq, self.k, self.stride, self.padding)
            b_in = qm.bias_units(a, None if self.bias is None else self.bias.data, sx, sw)
            acc = qm.forward_matmul_T(wq, cols, a, self.layer_audit, b_in)    # (B, N, L)
            if per:
                scale = (np.asarray(sx, np.float32) * np.float32(sw))[:, None, None]
            else:
                scale = np.float32(sw * sx)
            y = (acc * scale).astype(np.float32, copy=False)
            self._cols, self._sx, self._wq, self._sw = cols, sx, wq, sw
        self._hw = (Ho, Wo)
        y = y.reshape(B, N, Ho, Wo)
        if self.bias is not None and (not a.quantizes_forward or b_in is None):
            y += self.bias.data[None, :, None, None]
        return y

    def _backward_ref(self, grad):
        a = self.arith
        gT = self._grad_in(grad)                                    # (B, N, L): per-image g^T
        cols = self._cols
        if not a.quantized:
            dw = np.matmul(gT, np.swapaxes(cols, 1, 2)).sum(axis=0)   # sum_b g_b^T cols_b^T
            dcols = np.matmul(self._wq.T, gT) if self.need_input_grad else None   # (B, K, L)
        else:
            if np.ndim(self._sx) != 0:
                raise ValueError("backward after an eval-mode per-sample forward is not supported")
            gT = gT.astype(np.float32, copy=False)
            dcols, dw, db = a.backward(gT, cols, self._sx, self._wq, self._sw, self.rng,
                                       self.layer_audit, need_dx=self.need_input_grad)
            if db is not None and self.bias is not None:
                self.bias.grad = db.astype(self.bias.data.dtype, copy=False)
            if self._wmask is not None:
                dw = dw * self._wmask
        self.weight.grad = dw.reshape(self.weight.data.shape)
        if dcols is None:
            return None
        dx = col2im(dcols, self._xshape, self.k, self.stride, self.padding)
        if a.quantized and self._xmask is not None:
            dx = dx * self._xmask
        return dx
