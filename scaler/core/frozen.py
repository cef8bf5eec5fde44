"""Frozen values built at the cost of plain ones.

The core's values are frozen, slotted dataclasses (nodes, views, pods, actions, outcomes):
immutable, hashable, compared by value. The ``__init__`` that ``dataclass`` writes for a
frozen class must get past the class's own ``__setattr__`` (which refuses), so it sets each
field through ``object.__setattr__``: a generic call, with its arguments packed afresh per
field, that costs about twice a slot's own setter. A simulator replay builds over two
million such fields (a node value per change, a view and a decision per tick), so that
difference was a few percent of a run.

:func:`slot_init` gives such a class an ``__init__`` with the very signature ``dataclass``
wrote (the same parameters, defaults, annotations) that sets each slot through its own
descriptor: the same object, as frozen as before, at about half the cost per field.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, TypeVar

T = TypeVar("T")


def slot_init(cls: type[T]) -> type[T]:
    """Replace the ``__init__`` of ``cls`` (a frozen dataclass with ``slots=True``, applied
    above the ``dataclass`` decorator) with one that sets the slots directly. Refuses a
    class it cannot mirror exactly (not frozen or slotted, ``InitVar`` fields, fields left
    out of ``__init__``), rather than build it differently."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__}: slot_init is for frozen dataclasses with slots")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    generated = cls.__init__
    signature = inspect.signature(generated)
    names = [p for p in signature.parameters if p != "self"]
    if names != [f.name for f in fields]:
        raise TypeError(f"{cls.__name__}: slot_init needs every field in __init__ and no InitVar")
    namespace: dict[str, Any] = {}
    header: list[str] = ["self"]
    body: list[str] = []
    star = False
    for k, f in enumerate(fields):
        p = signature.parameters[f.name]
        if p.kind is inspect.Parameter.KEYWORD_ONLY and not star:
            header.append("*")
            star = True
        if p.default is inspect.Parameter.empty:
            header.append(f.name)
        else:
            # The generated one's own default object (for a default factory, its marker).
            namespace[f"_default_{k}"] = p.default
            header.append(f"{f.name}=_default_{k}")
        value = f.name
        if f.default_factory is not dataclasses.MISSING:
            namespace[f"_factory_{k}"] = f.default_factory
            value = f"_factory_{k}() if {f.name} is _default_{k} else {f.name}"
        namespace[f"_set_{k}"] = cls.__dict__[f.name].__set__
        body.append(f"    _set_{k}(self, {value})")
    if hasattr(cls, "__post_init__"):
        body.append("    self.__post_init__()")
    source = f"def __init__({', '.join(header)}):\n" + ("\n".join(body) or "    pass") + "\n"
    exec(source, namespace)
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    init.__annotations__ = dict(generated.__annotations__)
    if inspect.signature(init) != signature:
        raise TypeError(f"{cls.__name__}: slot_init could not mirror the dataclass __init__")
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


__all__ = ["slot_init"]
