"""Resource kinds: one module per kind, all written against :mod:`mgmt.resources.base`."""
