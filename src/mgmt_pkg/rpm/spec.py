"""Render a :class:`~mgmt_pkg.rpm.model.PhonyPackage` into a spec file.

The template (templates/phony.spec.j2) ships inside the wheel as package data
of mgmt_pkg, so a plain ``pip install`` can render it.
"""

from __future__ import annotations

from mgmt_pkg.rpm.model import PhonyPackage
from mgmt_pkg.templating import environment

__all__ = ["escape", "render_spec"]

TEMPLATE = "phony.spec.j2"


def escape(value: object) -> str:
    """Make a value literal for rpm's macro expansion: "%" -> "%%"."""
    return str(value).replace("%", "%%")


def render_spec(package: PhonyPackage) -> str:
    """The spec text; the package was validated when it was created."""
    templates = environment()
    templates.filters["rpm"] = escape
    return templates.get_template(TEMPLATE).render(p=package)
