"""The local executor: the adapter itself, in this process."""

from __future__ import annotations

from evalboard.models.adapters.base import AdapterSettings, ModelAdapter, ModelSpec, load_adapter


def open_local(spec: ModelSpec, settings: AdapterSettings) -> ModelAdapter:
    return load_adapter(spec, settings)
