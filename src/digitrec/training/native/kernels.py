"""Native kernels for training: fused first blocks, 2x2 max-pooling, a conv → max-pool backward pass
that skips the outputs the pooling discards, and (for optim.py) optimizer steps.

Why: conv2-fc64's first block (a 1→32 convolution at 26×26, 2×2 max-pooling, ReLU) costs eager
PyTorch about 40% of a training step, nearly all of it writing, pooling, zero-filling and scattering
a 24×24×32 activation and its gradient, not arithmetic; the fast recipe's stride-2 stem
(convolution, BatchNorm, ReLU) and its max-pooling pay a fixed per-op cost far above their 4 MFLOP.
kernels.c does each in one pass: a pooled output is the max of four 9-tap dot products held in
registers, and only a byte per output remembers which of the four won.

The C file is compiled once per machine with the system C compiler (`cc`, cached under
~/.cache/digitrec) and loaded with ctypes; where there is no compiler, training uses the ordinary
PyTorch layers and says so. The fused layers only ever run inside the training loop (training/loop.py,
through `training_view`): the model, its file, its ONNX export and its predictions are the
ordinary layers.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import subprocess
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from digitrec.util.files import atomic_path
from digitrec.util.system import cache_dir

SOURCE = Path(__file__).with_name("kernels.c")
_FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fopenmp", "-shared", "-fPIC"]
_lib: ctypes.CDLL | None = None
_why_not: str | None = None


def _cpu_signature() -> bytes:
    """-march=native code must not be reused on another kind of CPU: key the build on its flags."""
    try:
        return next((line for line in open("/proc/cpuinfo", "rb") if line.startswith(b"flags")), b"")
    except OSError:
        return b""


def _build() -> Path:
    """The shared library for this source and CPU, compiled on first use (temporary file, then rename)."""
    source = SOURCE.read_bytes()
    key = hashlib.sha256(source + _cpu_signature() + " ".join(_FLAGS).encode()).hexdigest()[:16]
    target = cache_dir() / f"kernels-{key}.so"
    if not target.exists():
        with atomic_path(target, mode=0o755) as tmp:
            subprocess.run([os.environ.get("CC", "cc"), *_FLAGS, str(SOURCE), "-o", str(tmp), "-lm"],
                           check=True, capture_output=True, text=True, timeout=120)
    return target


def library() -> ctypes.CDLL | None:
    """The compiled kernels, or None (see `unavailable()` for why)."""
    global _lib, _why_not
    if _lib is None and _why_not is None:
        try:
            lib = ctypes.CDLL(str(_build()))
        except (OSError, subprocess.SubprocessError) as exc:
            detail = getattr(exc, "stderr", None) or str(exc)
            _why_not = f"no fused kernel ({detail.strip().splitlines()[-1] if detail.strip() else exc})"
            return None
        p, i = ctypes.c_void_p, ctypes.c_int
        lib.cpr_forward.argtypes = [p, p, p, i, i, i, i, i, p, i, p, i]
        lib.cpr_backward.argtypes = [p, p, i, p, i, i, i, i, i, p, p, i]
        f = ctypes.c_float
        lib.stem_forward.argtypes = [p, p, p, p, i, i, i, i, f, f, p, p, p, p, p, p, i, i]
        lib.stem_backward.argtypes = [p, p, p, p, p, p, p, i, i, i, i, i, p, p, p, i]
        lib.adam_step.argtypes = [p, p, p, p, ctypes.c_long, f, f, f, f, f, i, f, f, i]
        lib.sgd_step.argtypes = [p, p, p, ctypes.c_long, f, f, f, f, i, i, i]
        lib.pool_forward.argtypes = [p, i, i, i, i, i, i, p, p, i]
        lib.pool_backward.argtypes = [p, p, i, i, i, i, i, p, i]
        lib.cpool_backward.argtypes = [p, i, p, i, p, p, i, i, i, i, i, p, p, p, i, i]
        _lib = lib
    return _lib


def unavailable() -> str | None:
    """Why the kernels cannot be used here, or None when they can."""
    library()
    return _why_not


def _images(x: torch.Tensor) -> torch.Tensor:
    """A (N, 1, H, W) batch as the kernels read it: (N, H, W) float32, contiguous."""
    n, _, h, w = x.shape
    return x.detach().reshape(n, h, w).float().contiguous()


def _taps(weight: torch.Tensor) -> torch.Tensor:
    """A (C, 1, 3, 3) convolution weight as (9, C) float32: one row of C channels per tap."""
    return weight.detach().float().reshape(weight.shape[0], 9).t()


def _channels_last_grad(grad: torch.Tensor) -> torch.Tensor:
    """An (N, C, H, W) gradient as the (N, H, W, C) bfloat16 or float32 tensor the kernels read."""
    g = grad.permute(0, 2, 3, 1)
    return g if g.dtype in (torch.bfloat16, torch.float32) and g.is_contiguous() else g.float().contiguous()


def _autocast_bf16() -> bool:
    """Is bfloat16 autocast on, so a fused block should hand bfloat16 to the next layer?"""
    return torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


class _ConvPoolReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, bf16: bool) -> torch.Tensor:
        n, _, h, w = x.shape
        c = weight.shape[0]
        cp = -(-c // 16) * 16
        x32 = _images(x)
        wt, b = _taps(weight), bias.detach().float()
        if cp != c:  # zero channels up to a whole vector
            wt, b = nn.functional.pad(wt, (0, cp - c)), nn.functional.pad(b, (0, cp - c))
        wt = wt.contiguous()
        y = torch.empty(n, (h - 2) // 2, (w - 2) // 2, c, dtype=torch.bfloat16 if bf16 else torch.float32)
        arg = torch.empty(y.shape, dtype=torch.uint8)
        library().cpr_forward(x32.data_ptr(), wt.data_ptr(), b.data_ptr(), n, h, w, c, cp, y.data_ptr(),
                              int(bf16), arg.data_ptr(), torch.get_num_threads())
        ctx.save_for_backward(x32, arg)
        ctx.channels = c
        return y.permute(0, 3, 1, 2)  # (N, C, Ho, Wo) in channels-last memory

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x32, arg = ctx.saved_tensors
        n, h, w = x32.shape
        c = ctx.channels
        cp = -(-c // 16) * 16
        g = _channels_last_grad(grad)
        dw, db = torch.empty(c, 1, 3, 3), torch.empty(c)
        library().cpr_backward(x32.data_ptr(), g.data_ptr(), int(g.dtype == torch.bfloat16), arg.data_ptr(),
                               n, h, w, c, cp, dw.data_ptr(), db.data_ptr(), torch.get_num_threads())
        return None, dw, db, None


def _pool(x: torch.Tensor, relu: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """2x2 max-pooling [+ ReLU] of a channels-last (N, C, H, W) x by the pool_forward kernel: the
    (N, H/2, W/2, C) result and the byte per output saying which of the four won."""
    n, c, h, w = x.shape
    xl = x.detach().permute(0, 2, 3, 1).contiguous()  # (N, H, W, C): no copy for a channels-last x
    y = torch.empty(n, h // 2, w // 2, c, dtype=x.dtype)
    arg = torch.empty(y.shape, dtype=torch.uint8)
    library().pool_forward(xl.data_ptr(), n, h, w, c, int(x.dtype == torch.bfloat16), int(relu), y.data_ptr(),
                           arg.data_ptr(), torch.get_num_threads())
    return y, arg


class _MaxPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, relu: bool) -> torch.Tensor:
        n, c, h, w = x.shape
        y, arg = _pool(x, relu)
        ctx.save_for_backward(arg)
        ctx.shape, ctx.dtype = (n, h, w, c), x.dtype
        return y.permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (arg,) = ctx.saved_tensors
        n, h, w, c = ctx.shape
        g = grad.permute(0, 2, 3, 1).to(ctx.dtype).contiguous()
        gx = torch.empty(n, h, w, c, dtype=ctx.dtype)
        library().pool_backward(g.data_ptr(), arg.data_ptr(), n, h, w, c, int(ctx.dtype == torch.bfloat16),
                                gx.data_ptr(), torch.get_num_threads())
        return gx.permute(0, 3, 1, 2), None


class _ConvPool(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, relu: bool,
                bf16: bool) -> torch.Tensor:
        dtype = torch.bfloat16 if bf16 else torch.float32
        xc = x.detach().to(dtype).contiguous(memory_format=torch.channels_last)
        w = weight.detach().to(dtype)
        with torch.autocast("cpu", enabled=False):  # the dtypes autocast would pick, chosen here
            z = nn.functional.conv2d(xc, w, None if bias is None else bias.detach().to(dtype))
        y, arg = _pool(z, relu)
        ctx.save_for_backward(xc, w, arg)
        ctx.has_bias = bias is not None
        return y.permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        xc, w, arg = ctx.saved_tensors
        n, cin, h, wd = xc.shape
        c = w.shape[0]
        g = _channels_last_grad(grad)
        wt = w.float().permute(0, 2, 3, 1).contiguous()  # (C, 3, 3, Cin): a tap's Cin weights together
        dw = torch.empty(c, 3, 3, cin)
        db = torch.empty(c) if ctx.has_bias else None
        dx = torch.empty(n, h, wd, cin, dtype=xc.dtype) if ctx.needs_input_grad[0] else None
        library().cpool_backward(xc.data_ptr(), int(xc.dtype == torch.bfloat16), g.data_ptr(),
                                 int(g.dtype == torch.bfloat16), arg.data_ptr(), wt.data_ptr(), n, h, wd, cin, c,
                                 dw.data_ptr(), 0 if db is None else db.data_ptr(),
                                 0 if dx is None else dx.data_ptr(), int(xc.dtype == torch.bfloat16),
                                 torch.get_num_threads())
        return (None if dx is None else dx.permute(0, 3, 1, 2)), dw.permute(0, 3, 1, 2).contiguous(), db, None, None


class FusedConvPool(nn.Module):
    """`conv` (16k ≤ 64 input channels, 3x3, valid) → MaxPool2d(2) [→ ReLU] whose backward pass
    multiplies only the conv outputs the pooling passed a gradient to (kernels.c, cpool_backward);
    the forward convolution stays oneDNN's. Other inputs go through PyTorch's layers."""

    def __init__(self, conv: nn.Conv2d, relu: bool) -> None:
        super().__init__()
        self.conv, self.relu = conv, relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if (x.dim() == 4 and x.dtype in (torch.float32, torch.bfloat16) and self.conv.out_channels % 16 == 0
                and h % 2 == 0 and w % 2 == 0):
            return _ConvPool.apply(x, self.conv.weight, self.conv.bias, self.relu,
                                   _autocast_bf16() or x.dtype == torch.bfloat16)
        y = nn.functional.max_pool2d(self.conv(x), 2)
        return torch.relu(y) if self.relu else y


class MaxPool2x2(nn.Module):
    """MaxPool2d(2) [→ ReLU] over channels-last activations as one kernel (a byte per output remembers
    the max); other inputs (channels not a multiple of 16, odd sides) go through PyTorch's."""

    def __init__(self, relu: bool = False) -> None:
        super().__init__()
        self.relu = relu

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (x.dim() == 4 and x.dtype in (torch.float32, torch.bfloat16) and x.shape[1] % 16 == 0
                and x.shape[2] % 2 == 0 and x.shape[3] % 2 == 0
                and x.is_contiguous(memory_format=torch.channels_last)):
            return _MaxPool.apply(x, self.relu)
        y = nn.functional.max_pool2d(x, 2)
        return torch.relu(y) if self.relu else y


class _Stem(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, gamma, beta, bn: nn.BatchNorm2d, bf16: bool) -> torch.Tensor:
        n, _, h, w = x.shape
        c = weight.shape[0]
        ho, wo = (h + 1) // 2, (w + 1) // 2
        x32 = _images(x)
        wt = _taps(weight).contiguous()
        ga, be = gamma.detach().float().contiguous(), beta.detach().float().contiguous()
        z = torch.empty(n, ho, wo, c)
        mean, rstd = torch.empty(c), torch.empty(c)
        y = torch.empty(n, ho, wo, c, dtype=torch.bfloat16 if bf16 else torch.float32)
        library().stem_forward(x32.data_ptr(), wt.data_ptr(), ga.data_ptr(), be.data_ptr(), n, h, w, c, bn.eps,
                               bn.momentum, bn.running_mean.data_ptr(), bn.running_var.data_ptr(), z.data_ptr(),
                               mean.data_ptr(), rstd.data_ptr(), y.data_ptr(), int(bf16), torch.get_num_threads())
        bn.num_batches_tracked.add_(1)
        ctx.save_for_backward(x32, ga, be, z, mean, rstd)
        return y.permute(0, 3, 1, 2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        x32, ga, be, z, mean, rstd = ctx.saved_tensors
        n, h, w = x32.shape
        c = mean.shape[0]
        g = _channels_last_grad(grad)
        dw, dgamma, dbeta = torch.empty(c, 1, 3, 3), torch.empty(c), torch.empty(c)
        library().stem_backward(x32.data_ptr(), ga.data_ptr(), be.data_ptr(), z.data_ptr(),
                                mean.data_ptr(), rstd.data_ptr(), g.data_ptr(), int(g.dtype == torch.bfloat16),
                                n, h, w, c, dw.data_ptr(), dgamma.data_ptr(), dbeta.data_ptr(),
                                torch.get_num_threads())
        return None, dw, dgamma, dbeta, None, None


class FusedStem(nn.Module):
    """`conv` (1 input channel, 3x3, stride 2, padding 1) → `bn` → ReLU as one kernel while training,
    with `conv`'s and `bn`'s own parameters and running statistics."""

    def __init__(self, conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
        super().__init__()
        self.conv, self.bn = conv, bn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad or not self.bn.training:
            return torch.relu(self.bn(self.conv(x)))
        return _Stem.apply(x, self.conv.weight, self.bn.weight, self.bn.bias, self.bn, _autocast_bf16())


class FusedConvPoolReLU(nn.Module):
    """`conv` → MaxPool2d(2) → ReLU as one kernel, training `conv`'s own parameters."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.requires_grad:  # the kernel gives no input gradient; the first layer never needs one
            return torch.relu(nn.functional.max_pool2d(self.conv(x), 2))
        return _ConvPoolReLU.apply(x, self.conv.weight, self.conv.bias, _autocast_bf16())


def _pool2(layer: nn.Module) -> bool:
    """Is `layer` a plain 2x2, stride-2 max-pooling?"""
    return (isinstance(layer, nn.MaxPool2d) and layer.kernel_size in (2, (2, 2))
            and layer.stride in (2, (2, 2), None) and layer.padding in (0, (0, 0))
            and layer.dilation in (1, (1, 1)) and not layer.ceil_mode and not layer.return_indices)


def _one_channel_3x3(layer: nn.Module, stride: int, padding: int, bias: bool) -> bool:
    """Is `layer` the kind of first convolution the kernels compute: 1 input channel, 3x3, zero padding?"""
    return (isinstance(layer, nn.Conv2d) and layer.in_channels == 1 and layer.kernel_size == (3, 3)
            and layer.stride == (stride, stride) and layer.padding == (padding, padding)
            and layer.dilation == (1, 1) and layer.groups == 1 and (layer.bias is not None) == bias
            and layer.padding_mode == "zeros")


def _conv_pool_relu(layers: list[nn.Module], i: int) -> bool:
    """Do layers i..i+2 form conv (1 input channel, 3x3, valid, with bias) → 2x2 max-pool → ReLU?"""
    return (i + 2 < len(layers) and _one_channel_3x3(layers[i], 1, 0, bias=True)
            and _pool2(layers[i + 1]) and isinstance(layers[i + 2], nn.ReLU))


def _conv_pool(layers: list[nn.Module], i: int) -> bool:
    """Do layers i..i+1 form conv (16k ≤ 64 input channels, 3x3, valid) → 2x2 max-pool?"""
    conv = layers[i]
    return (i + 1 < len(layers) and isinstance(conv, nn.Conv2d) and conv.in_channels % 16 == 0
            and conv.in_channels <= 64 and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and conv.padding == (0, 0) and conv.dilation == (1, 1) and conv.groups == 1 and _pool2(layers[i + 1]))


def _conv_bn_relu_stem(layers: list[nn.Module], i: int) -> bool:
    """Do layers i..i+2 form conv (1 input channel, 3x3, stride 2, padding 1, no bias) → BatchNorm
    (affine, running statistics, 16k channels) → ReLU?"""
    if not (i + 2 < len(layers) and _one_channel_3x3(layers[i], 2, 1, bias=False)):
        return False
    bn = layers[i + 1]
    return (type(bn) is nn.BatchNorm2d and bn.affine and bn.track_running_stats and bn.momentum is not None
            and bn.num_features == layers[i].out_channels and bn.num_features % 16 == 0
            and bn.running_mean.dtype == torch.float32 and isinstance(layers[i + 2], nn.ReLU))


def training_view(model: nn.Module, log: Callable[[str], None] = lambda _: None) -> nn.Module:
    """A module computing the same function as `model` through the native kernels (its first
    conv → pool → ReLU fused, later convs followed by a 2x2 max-pool with a sparse backward pass, its
    other 2x2 max-pools [+ ReLU] single passes), sharing every layer and
    parameter with it, so training it trains `model`; `model` itself when it has no such layers,
    is not on the CPU, or the kernels cannot be built here (then `log` says why)."""
    if not isinstance(model, nn.Sequential) or next(model.parameters()).device.type != "cpu":
        return model
    layers = list(model)
    if not any(_pool2(layer) or _conv_bn_relu_stem(layers, i) for i, layer in enumerate(layers)):
        return model
    if library() is None:
        log(f"training through PyTorch's layers: {_why_not}")
        return model
    out, i = [], 0
    while i < len(layers):
        if _conv_pool_relu(layers, i):
            out.append(FusedConvPoolReLU(layers[i]))
            i += 3
        elif _conv_pool(layers, i):
            relu = i + 2 < len(layers) and isinstance(layers[i + 2], nn.ReLU)
            out.append(FusedConvPool(layers[i], relu))
            i += 2 + relu
        elif _conv_bn_relu_stem(layers, i):
            out.append(FusedStem(layers[i], layers[i + 1]))
            i += 3
        elif _pool2(layers[i]):
            relu = i + 1 < len(layers) and isinstance(layers[i + 1], nn.ReLU)
            out.append(MaxPool2x2(relu))
            i += 1 + relu
        else:
            out.append(layers[i])
            i += 1
    return nn.Sequential(*out)
