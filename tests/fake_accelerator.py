"""A fake accelerator for CPU-only machines: CUDA's device rules, checked on the CPU.

A tensor on a GPU that meets a tensor on the CPU raises "Expected all tensors to
be on the same device" -- a class of bug no CPU run shows. :class:`FakeAccelerator`
is a ``torch.overrides.TorchFunctionMode`` that gives every tensor a *virtual*
device (a Python attribute: accelerator or CPU; the data stay on the CPU, so every
computation runs for real, ``.item()``, sorting and boolean indexing included) and
applies CUDA's rules to it:

* the accelerator is spelled ``torch.device("meta")`` (:data:`ACC`): ``t.device``
  of a tensor on it returns ``ACC``, so ``torch.zeros(n, device=W.device)`` or
  ``x.to(W.device)`` put their result on the accelerator (the call runs on the CPU
  with the device argument rewritten); "meta", not "cuda", so that code which
  branches on ``device.type == "cuda"`` (memory statistics, autocast) keeps to its
  CPU branch;
* a factory (``torch.ones/zeros/arange/empty/full/rand*/tensor/eye/...``) without
  ``device=`` makes a CPU tensor, as on a GPU machine; ``*_like``, ``new_*`` and
  every other op put their result where their inputs are;
* an op whose tensor arguments are on both devices raises :class:`DeviceMismatch`
  -- except CPU scalars (0-dim, allowed by CUDA too), ``copy_`` (a cross-device
  copy), a CPU index into an accelerator tensor and the value of ``t[idx] = v``
  (both allowed by CUDA);
* ``.numpy()`` / ``np.asarray`` of an accelerator tensor raises, as for CUDA; a CPU
  generator driving an accelerator tensor's random op raises, as for CUDA;
* tensors the mode never saw being made (loaded from disk, made before the mode)
  are on the CPU; gradients (``.grad``, ``torch.autograd.grad``) and parameters
  (``nn.Parameter(t)``) are where their tensors are.

Why not the ``meta`` device itself: a model on ``meta`` has no values, so every
method that sorts, thresholds, takes ``.item()`` or indexes with a boolean mask
(all pruning methods, allocation, SVD ranks, training loops) stops on the missing
values long before it meets a device bug. Here the values are real and only the
devices are simulated.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

ACC = torch.device("meta")
_TAG = "_fake_acc"


class DeviceMismatch(RuntimeError):
    pass


def where(t) -> bool | None:
    """True: on the accelerator; False: on the CPU; None: not known (made where the mode did not see it)."""
    return getattr(t, _TAG, None)


def on_acc(t) -> bool:
    return where(t) is True


def _tensors(obj, out=None) -> list:
    """Every tensor in ``obj`` (nested lists/tuples/dicts), appended to ``out``."""
    out = [] if out is None else out
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            _tensors(x, out)
    elif isinstance(obj, dict):
        for x in obj.values():
            _tensors(x, out)
    return out


def _mark(obj, acc: bool | None):
    """Put every tensor in ``obj`` on the accelerator (True) or the CPU (False); None leaves them."""
    if acc is not None:
        for t in _tensors(obj):
            setattr(t, _TAG, acc)
    return obj


def _is_acc_device(d) -> bool | None:
    """True for the accelerator, False for the CPU, None when ``d`` is no device."""
    if d is None:
        return None
    if isinstance(d, (str, torch.device)):
        t = torch.device(d).type
        if t == "cpu":
            return False
        if t == "meta":
            return True
        raise DeviceMismatch(f"fake accelerator: device {d!r} is neither the CPU nor the fake accelerator {ACC}")
    return None


def _describe(t: torch.Tensor) -> str:
    return f"{'accelerator' if on_acc(t) else 'CPU'} {tuple(t.shape)} {str(t.dtype).removeprefix('torch.')}"


def _name(func) -> str:
    return getattr(func, "__qualname__", None) or getattr(func, "__name__", None) or repr(func)


def _getset(func, descriptor) -> bool:
    return getattr(func, "__self__", None) is descriptor


class FakeAccelerator(TorchFunctionMode):
    """Check CUDA's device rules on the CPU (see the module docstring). Use
    ``with FakeAccelerator(): model.to(ACC); ...``."""

    def __enter__(self):
        self._param_new = nn.Parameter.__new__
        orig = self._param_new

        def param_new(cls, data=None, requires_grad=True):
            p = orig(cls, data, requires_grad)
            return _mark(p, where(data)) if data is not None else p

        nn.Parameter.__new__ = staticmethod(param_new)
        return super().__enter__()

    def __exit__(self, *exc):
        nn.Parameter.__new__ = self._param_new
        return super().__exit__(*exc)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        # ---- device as code sees it
        if _getset(func, torch.Tensor.device) and getattr(func, "__name__", "") == "__get__":
            return ACC if on_acc(args[0]) else func(*args, **kwargs)
        if _getset(func, torch.Tensor.data) and func.__name__ == "__set__":
            func(*args, **kwargs)
            _mark(args[0], where(args[1]))
            return None
        if _getset(func, torch.Tensor.grad):
            if func.__name__ == "__get__":
                return _mark(func(*args, **kwargs), where(args[0]))
            if args[1] is not None and None not in (where(args[1]), where(args[0])) and where(args[1]) != where(args[0]):
                raise DeviceMismatch(f"fake accelerator: assigning a {_describe(args[1])} gradient to a {_describe(args[0])} tensor")
            return func(*args, **kwargs)
        if getattr(func, "__name__", "") in ("__get__", "__set__", "__delete__"):  # other attributes (.T, .data, .shape, ...)
            out = func(*args, **kwargs)
            return _mark(out, where(args[0])) if isinstance(out, torch.Tensor) and out is not args[0] else out
        # ---- moves
        if func is torch.Tensor.to:
            return self._to(args[0], args[1:], kwargs)
        if func is torch.Tensor.cuda:
            return _mark(args[0].to("cpu", copy=True), True)
        if func is torch.Tensor.cpu:
            return _mark(args[0].clone(), False) if on_acc(args[0]) else args[0]
        if func in (torch.Tensor.numpy, torch.Tensor.__array__):
            if on_acc(args[0]):
                raise DeviceMismatch(
                    f"fake accelerator: {_name(func)} of an {_describe(args[0])} tensor (CUDA: can't convert cuda:0 device type tensor to numpy; call .cpu() first)"
                )
            return func(*args, **kwargs)
        if func is torch.autograd.grad:
            outs = func(*args, **kwargs)
            inputs = kwargs.get("inputs", args[1] if len(args) > 1 else None)
            inputs = [inputs] if isinstance(inputs, torch.Tensor) else list(inputs)
            for g, x in zip(outs, inputs):
                _mark(g, where(x))
            return outs
        # ---- every other op: the result is where the inputs are
        dev = _is_acc_device(kwargs.get("device"))
        if dev:
            kwargs["device"] = "cpu"
        ins = _tensors(args)
        ins = _tensors(kwargs, ins)
        if func in _CROSS_DEVICE:
            acc = where(args[0])
        elif func in (torch.Tensor.__getitem__, torch.Tensor.__setitem__):
            acc = where(args[0])
            idx = _tensors(args[1])
            if acc is False and any(on_acc(i) for i in idx):
                raise DeviceMismatch(
                    f"fake accelerator: indexing a {_describe(args[0])} tensor with an accelerator index "
                    "(CUDA: indices should be either on cpu or on the same device as the indexed tensor)"
                )
        else:
            tags = {where(t) for t in ins}
            acc = True if True in tags else False if (False in tags or not ins) else None
            if acc:
                cpu = [t for t in ins if where(t) is False and t.dim() > 0]
                if cpu:
                    others = ", ".join(_describe(t) for t in ins if on_acc(t))
                    raise DeviceMismatch(
                        f"fake accelerator: {_name(func)} mixes {', '.join(_describe(t) for t in cpu)} with {others} "
                        "(CUDA: Expected all tensors to be on the same device)"
                    )
            if dev is not None:
                acc = dev
        if acc and isinstance(kwargs.get("generator"), torch.Generator):
            raise DeviceMismatch(
                f"fake accelerator: {_name(func)} on the accelerator with a CPU generator (CUDA: Expected a 'cuda' device type for generator)"
            )
        out = func(*args, **kwargs)
        return _mark_outputs(out, acc, ins)

    def _to(self, t, args, kwargs):
        other = args[0] if args and isinstance(args[0], torch.Tensor) else kwargs.get("other")
        if other is not None:
            target = where(other)
            dtype, rest = other.dtype, {}  # .to(other): other's device and dtype
        else:
            device, dtype, non_blocking, memory_format = torch._C._nn._parse_to(*args, **kwargs)
            target = _is_acc_device(device)
            rest = {"non_blocking": non_blocking}
            if memory_format is not None:
                rest["memory_format"] = memory_format
        target = where(t) if target is None else target
        copy = bool(kwargs.get("copy", False)) or (target is not None and target != where(t))
        out = t.to(device="cpu", dtype=dtype if dtype is not None else t.dtype, copy=copy, **rest)
        return _mark(out, target) if out is not t else out


# Functions that take tensors on different devices on CUDA too (copy_ copies across devices).
_CROSS_DEVICE = (torch.Tensor.copy_, torch._has_compatible_shallow_copy_type, torch.is_same_size)


def _mark_outputs(out, acc, ins):
    ids = {id(t) for t in ins}
    for t in _tensors(out):
        if id(t) not in ids:  # in-place ops return their input: its device does not change
            _mark(t, acc)
    return out


def on_cpu(obj):
    """Mark ``obj`` (a tensor, nested lists/tuples/dicts of them, or a module's parameters
    and buffers) as living on the CPU, as data loaded from disk does; returns ``obj``."""
    if isinstance(obj, nn.Module):
        for t in [*obj.parameters(), *obj.buffers()]:
            _mark(t, False)
        return obj
    return _mark(obj, False)
