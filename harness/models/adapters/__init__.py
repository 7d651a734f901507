"""Model adapters. Each module here registers its scheme(s) with `@register_adapter`; adding an
adapter is adding one module (discovered, never listed)."""
