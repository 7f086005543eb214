"""Render a :class:`~mgmt_pkg.rpm.model.PhonyPackage` into a spec file.

The template (templates/phony.spec.j2) ships inside the wheel as package data
of mgmt_pkg, so a plain ``pip install`` can render it.
"""

from __future__ import annotations

from mgmt_pkg.rpm.model import PhonyPackage

__all__ = ["escape", "escape_text", "render_spec"]

TEMPLATE = "phony.spec.j2"


def escape(value: object) -> str:
    """Make a value literal for rpm's macro expansion: "%" -> "%%"."""
    return str(value).replace("%", "%%")


def escape_text(value: str) -> str:
    """Escape a multi-line text body (%description).

    rpm blanks lines that start with "#" there (comments); "%{nil}" in front
    expands to nothing after that check, so the line reads back unchanged.
    """
    lines = escape(value).split("\n")
    return "\n".join("%{nil}" + line if line.startswith("#") else line for line in lines)


def render_spec(package: PhonyPackage) -> str:
    """The spec text; the package was validated when it was created."""
    # Imported here: jinja2 costs ~30 ms, and only this step needs it.
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("mgmt_pkg", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )
    environment.filters["rpm"] = escape
    environment.filters["rpm_text"] = escape_text
    return environment.get_template(TEMPLATE).render(p=package)
