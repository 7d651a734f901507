"""Task shapes: how a task type turns documents into requests and responses into scores.

A shape is a registered class, chosen by the task file's `type:`; a shape type has one or more
formulations (multiple choice: `loglikelihood` and the generative letter answer), and a task file
may restrict them with `formulations:`. `auto` picks the first the model's capabilities allow.
A new benchmark is a task file; a new shape is one class with `@register_shape`.
"""

from __future__ import annotations

import importlib
import pkgutil

from evalboard.taskdef.shapes.base import Shape, ShapeContext, register_shape, shape_names, shapes_for

__all__ = ["Shape", "ShapeContext", "register_shape", "shape_names", "shapes_for"]


def _discover() -> None:
    """Import every shape module once, so each registers its classes."""
    for module in pkgutil.iter_modules(__path__):
        if module.name != "base":
            importlib.import_module(f"{__name__}.{module.name}")


_discover()
