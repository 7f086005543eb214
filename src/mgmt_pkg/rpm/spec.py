"""Render a :class:`~mgmt_pkg.rpm.model.PhonyPackage` into a spec file.

The template (templates/phony.spec.j2) ships inside the wheel as package data
of mgmt_pkg, so a plain ``pip install`` can render it.
"""

from __future__ import annotations

from pathlib import Path

from mgmt_pkg.rpm.model import PhonyPackage

__all__ = ["escape", "render_spec"]

TEMPLATE = "phony.spec.j2"
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def escape(value: object) -> str:
    """Make a value literal for rpm's macro expansion: "%" -> "%%"."""
    return str(value).replace("%", "%%")


def render_spec(package: PhonyPackage) -> str:
    """The spec text; the package was validated when it was created."""
    # Imported here: jinja2 costs ~30 ms, and only this step needs it.
    import jinja2

    environment = jinja2.Environment(
        # A plain directory (mgmt_pkg is not zip-safe): PackageLoader costs more imports.
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    environment.filters["rpm"] = escape
    return environment.get_template(TEMPLATE).render(p=package)
