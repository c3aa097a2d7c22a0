"""Hook contexts on a located hook point (spec 16 §3.3).

Three modes, one mechanism:

* :class:`capture` — keeps a float32 copy of the hooked tensor (``take()``);
* :func:`capture_and_stop` — the same, then aborts the forward with a private
  exception that :func:`forward` catches: no later block and no logits run, so
  capturing layer ``L`` of an ``n``-layer model costs about ``(L+1)/n`` of a
  forward;
* :class:`replace` — hands a float32 copy to ``edit`` and puts the result back
  in the hooked tensor's own dtype (tuple outputs rebuilt, other elements
  untouched).

Every context checks that its hook fired exactly once per forward of the model
(``RuntimeError`` otherwise): a module called twice, or not at all, would make
the capture or the edit mean something else.  Tensors are ``[B, T, d]`` in every
mode, also where the module sees ``[B·T, d]`` (OPT's ``fc2``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from polygram.runtime.hookpoints import HookPoint, HookSite, locate
from polygram.runtime.models import LoadedModel, is_masked_lm

__all__ = ["Edit", "capture", "capture_and_stop", "forward", "replace"]

#: an edit of ``replace``: float32 ``[B, T, d]`` in, a tensor of the same shape out
Edit = Callable[[Any], Any]


class _StopForward(Exception):
    """Raised by a stopping capture once it has its tensor; caught by :func:`forward`."""


def _torch_model(model: Any) -> Any:
    return model.model if isinstance(model, LoadedModel) else model


def _hidden(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    # a block's input is its first positional argument (transformers up to
    # 5.x); the keyword form is accepted too
    if args:
        return args[0]
    if "hidden_states" in kwargs:
        return kwargs["hidden_states"]
    raise RuntimeError(
        "the hooked block was called without hidden states (no positional argument and no "
        "hidden_states keyword); this transformers version is not supported"
    )


def _with_hidden(
    args: tuple[Any, ...], kwargs: dict[str, Any], h: Any
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if args:
        return (h, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": h}


class _HookContext:
    """Registers the hooks of one site on ``__enter__``, removes them on ``__exit__``."""

    def __init__(self, model: Any, hook: HookPoint | str, *, block_path: str | None = None):
        self.model = _torch_model(model)
        self.site: HookSite = locate(self.model, hook, block_path=block_path)
        self._handles: list[Any] = []
        self._fired = 0
        self._bt: tuple[int, int] | None = None

    @property
    def hook(self) -> HookPoint:
        return self.site.hook

    def __enter__(self) -> _HookContext:
        site, m = self.site, self.model
        self._handles.append(m.register_forward_pre_hook(self._reset))
        self._handles.append(m.register_forward_hook(self._check))
        if site.flat:
            self._handles.append(
                site.block.register_forward_pre_hook(self._watch, with_kwargs=True)
            )
        if site.pre:
            self._handles.append(site.module.register_forward_pre_hook(self._pre, with_kwargs=True))
        else:
            self._handles.append(site.module.register_forward_hook(self._post))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    # -- hooks ---------------------------------------------------------------
    def _reset(self, *_: Any) -> None:
        self._fired = 0

    def _check(self, *_: Any) -> None:
        if self._fired != 1:
            raise RuntimeError(
                f"the hook {self.hook.name} on {self.site.path} fired {self._fired} times in one "
                "forward; expected once"
            )

    def _watch(self, _m: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        h = _hidden(args, kwargs)
        self._bt = (int(h.shape[0]), int(h.shape[1]))

    def _pre(
        self, _m: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        self._fired += 1
        new = self._visit(_hidden(args, kwargs))
        return None if new is None else _with_hidden(args, kwargs, new)

    def _post(self, _m: Any, _args: Any, output: Any) -> Any:
        self._fired += 1
        h = output[0] if isinstance(output, tuple) else output
        if self.site.flat:
            if self._bt is None:
                raise RuntimeError(f"{self.site.path}: the block input was not seen first")
            h3 = h.view(*self._bt, h.shape[-1])
        else:
            h3 = h
        new = self._visit(h3)
        if new is None:
            return None
        if self.site.flat:
            new = new.reshape(h.shape)
        return (new, *output[1:]) if isinstance(output, tuple) else new

    def _visit(self, h: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError


class capture(_HookContext):
    """``with capture(model, hook) as cap: forward(model, batch); x = cap.take()``:
    ``x`` is a float32 copy ``[B, T, d]`` of the hooked tensor of that forward."""

    def __init__(
        self,
        model: Any,
        hook: HookPoint | str,
        *,
        block_path: str | None = None,
        stop: bool = False,
    ):
        super().__init__(model, hook, block_path=block_path)
        self.stop = stop
        self._value: Any = None

    def __enter__(self) -> capture:
        super().__enter__()
        return self

    def _visit(self, h: Any) -> Any:
        import torch

        self._value = h.detach().to(torch.float32, copy=True)
        if self.stop:
            raise _StopForward
        return None

    def take(self) -> Any:
        """The tensor of the last forward (once); RuntimeError if the hook did
        not fire exactly once since the last ``take``."""
        if self._fired != 1 or self._value is None:
            raise RuntimeError(
                f"the hook {self.hook.name} on {self.site.path} fired {self._fired} times since "
                "the last take(); expected once"
            )
        value, self._value, self._fired = self._value, None, 0
        return value


def capture_and_stop(
    model: Any, hook: HookPoint | str, *, block_path: str | None = None
) -> capture:
    """A :class:`capture` that ends the forward right after the hook (no logits:
    :func:`forward` returns None)."""
    return capture(model, hook, block_path=block_path, stop=True)


class replace(_HookContext):
    """``with replace(model, hook, edit): forward(model, batch)`` runs the model
    with the hooked tensor ``h`` replaced by ``edit(float32 copy of h)``, cast
    back to ``h``'s dtype.  ``edit`` may be reassigned between forwards."""

    def __init__(
        self,
        model: Any,
        hook: HookPoint | str,
        edit: Edit,
        *,
        block_path: str | None = None,
    ):
        super().__init__(model, hook, block_path=block_path)
        self.edit = edit

    def __enter__(self) -> replace:
        super().__enter__()
        return self

    def _visit(self, h: Any) -> Any:
        import torch

        new = self.edit(h.detach().to(torch.float32, copy=True))
        if tuple(new.shape) != tuple(h.shape):
            raise RuntimeError(
                f"the edit at {self.hook.name} returned shape {tuple(new.shape)}; the hooked "
                f"tensor has shape {tuple(h.shape)}"
            )
        return new.to(h.dtype)


def forward(model: Any, inputs: Mapping[str, Any] | Any) -> Any:
    """One forward without gradients: float32 logits ``[B, T, vocab]``, or None
    when a :func:`capture_and_stop` context ended it early.  ``inputs`` is a
    :class:`~polygram.runtime.batching.Batch` or a mapping of model inputs; causal
    LMs run with ``use_cache=False`` (nothing is generated)."""
    import torch

    m = _torch_model(model)
    kwargs = dict(inputs.inputs if hasattr(inputs, "inputs") else inputs)
    masked = model.masked_lm if isinstance(model, LoadedModel) else is_masked_lm(m.config)
    if not masked:
        kwargs.setdefault("use_cache", False)
    with torch.no_grad():
        try:
            out = m(**kwargs)
        except _StopForward:
            return None
    return out.logits.float()
