"""A bidirectional LSTM whose two directions run side by side on a multi-core CPU.

On a CPU, PyTorch spreads each step of an LSTM's recurrence (a [batch, hidden] x [hidden, 4 hidden]
product) over its threads, which buys little for such small products: english_g2's BiLSTM layer
ran its forward and backward 0.41 s with two threads, 0.51 s with one, on this 2-core machine. The
two directions of a bidirectional layer are independent, so :func:`bidirectional_lstm` runs each
in its own thread with half the threads (forward and backward): 0.27-0.30 s there; english_g2's
whole head (two layers, forward and backward) 0.81 -> 0.66 s for 32 lines 448 px wide
(`python -m bench.parallel_rnn`, both ways alternating in one process). The arithmetic is each
direction's own, as the fused kernel computes it, so the outputs and gradients equal the fused
layer's up to float rounding (a run's figures then move as with another seed).

Used by the recognizer's BiLSTM on CPU (not on CUDA, where cuDNN runs both directions at once,
nor under ``torch.compile``).

>>> import torch
>>> rnn = torch.nn.LSTM(8, 4, bidirectional=True, batch_first=True)
>>> x = torch.randn(2, 5, 8)
>>> torch.allclose(bidirectional_lstm(rnn, x), rnn(x)[0], atol=1e-6)
True
"""
from __future__ import annotations

import threading
from typing import Callable, Optional

import torch
from torch import nn

__all__ = ["bidirectional_lstm", "can_split", "ENABLED"]

#: Off: every layer runs fused (bench/parallel_rnn.py times both ways in one process).
ENABLED = True

_NAMES = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")


def can_split(rnn: nn.LSTM, x: torch.Tensor) -> bool:
    """Whether :func:`bidirectional_lstm` applies: a gradient is wanted (training), the layer is a
    plain ``nn.LSTM`` (not a quantized copy, as Reader-compatible reading makes) with one bidirectional
    batch-first layer, biases and no projection, on a CPU tensor, two or more threads, no torch.compile."""
    compiling = getattr(torch, "compiler", None) is not None and torch.compiler.is_compiling()
    return (ENABLED and torch.is_grad_enabled() and type(rnn) is nn.LSTM and rnn.bidirectional
            and rnn.num_layers == 1 and rnn.batch_first and rnn.bias and not getattr(rnn, "proj_size", 0)
            and x.device.type == "cpu" and x.dim() == 3 and torch.get_num_threads() >= 2 and not compiling)


def bidirectional_lstm(rnn: nn.LSTM, x: torch.Tensor) -> torch.Tensor:
    """``rnn(x)[0]`` for a one-layer bidirectional batch-first LSTM (zero initial state): when a
    gradient is wanted (in `x` or the weights), the two directions' forward and backward passes run
    in two threads; otherwise the fused layer runs (a forward alone gained nothing split)."""
    if x.shape[-1] != rnn.input_size:  # the fused kernel below does not check it
        raise ValueError(f"the LSTM takes {rnn.input_size} features per column, got input of shape "
                         f"{tuple(x.shape)}: give [batch, columns, {rnn.input_size}]")
    weights = [getattr(rnn, n) for n in _NAMES] + [getattr(rnn, n + "_reverse") for n in _NAMES]
    if torch.is_grad_enabled() and (x.requires_grad or any(w.requires_grad for w in weights)):
        return _TwoDirections.apply(x, *weights)
    return rnn(x)[0]


def _direction(x: torch.Tensor, weights: list, reverse: bool) -> torch.Tensor:
    """One direction of the layer: the reverse one reads the sequence back to front."""
    inp = x.flip(1) if reverse else x
    hidden = weights[1].shape[1]
    zeros = inp.new_zeros(1, inp.shape[0], hidden)
    # train=True when a graph is built: oneDNN then keeps what its backward needs
    out = torch._VF.lstm(inp, (zeros, zeros), weights, True, 1, 0.0, torch.is_grad_enabled(), False, True)[0]
    return out.flip(1) if reverse else out


def _in_threads(first: Callable, second: Callable):
    """(first(), second()) with `second` in a helper thread, each with half the intra-op threads."""
    total = torch.get_num_threads()
    result: list = [None]
    error: list[Optional[BaseException]] = [None]

    def helper() -> None:
        try:
            torch.set_num_threads(max(1, total // 2))
            result[0] = second()
        except BaseException as exc:  # re-raised in the caller's thread
            error[0] = exc

    torch.set_num_threads(max(1, total // 2))
    try:
        thread = threading.Thread(target=helper, name="ocrtrain-lstm-reverse")
        thread.start()
        try:
            mine = first()
        finally:
            thread.join()
    finally:
        torch.set_num_threads(total)
    if error[0] is not None:
        raise error[0]
    return mine, result[0]


class _TwoDirections(torch.autograd.Function):
    """Forward: each direction's graph built in its own thread; backward: each direction's
    gradients taken in its own thread, then the input's two parts summed."""

    @staticmethod
    def forward(ctx, x, *weights):
        leaves = [x.detach().requires_grad_(x.requires_grad)]
        leaves += [w.detach().requires_grad_(w.requires_grad) for w in weights]
        xf, xb = leaves[0], x.detach().requires_grad_(x.requires_grad)

        def build(inp, ws, reverse):
            with torch.enable_grad():
                return _direction(inp, ws, reverse)

        outs = _in_threads(lambda: build(xf, leaves[1:5], False), lambda: build(xb, leaves[5:], True))
        ctx.graph = (outs, (xf, xb), (leaves[1:5], leaves[5:]))
        return torch.cat([o.detach() for o in outs], dim=2)

    @staticmethod
    def backward(ctx, grad):
        outs, inputs, weights = ctx.graph
        hidden = outs[0].shape[2]
        parts = (grad[..., :hidden].contiguous(), grad[..., hidden:].contiguous())

        def grads(d):
            wanted = [t for t in (inputs[d], *weights[d]) if t.requires_grad]
            found = iter(torch.autograd.grad(outs[d], wanted, parts[d], allow_unused=True)) if wanted else iter(())
            return [next(found) if t.requires_grad else None for t in (inputs[d], *weights[d])]

        forward, backward = _in_threads(lambda: grads(0), lambda: grads(1))
        del ctx.graph
        dx = None
        if forward[0] is not None:
            dx = forward[0] + backward[0]
        return (dx, *forward[1:], *backward[1:])
