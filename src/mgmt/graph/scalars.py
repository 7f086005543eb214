"""A plain YAML scalar in a text field is the text as written, as mgmt reads it.

mgmt reads its graphs with Go's yaml.v2, which puts the text of a scalar into a
string field whatever YAML would read it as: ``mode: 0644`` is the mode
"0644", ``name: yes`` the name "yes", ``state: 1.2`` the version "1.2". PyYAML
reads those as the number 420, the boolean true and the float 1.2, and the
text is gone; :mod:`mgmt.graph.yamlload` keeps it (``LocDict.key_texts``), and
here it is put back where a field takes text. A number where a number is
wanted (``timeout: 5``) and every value of a JSON graph stay as they are.
"""

from typing import Any, Iterable

from mgmt.graph.values import LocDict
from mgmt.resources.base import kind_class, known_kinds

__all__ = ["texts_as_written"]

_TOP = ("graph", "comment")  # not sudo: true or a user name


def texts_as_written(document: Any) -> None:
    """Put back, in place, the written text of each scalar in a text field."""
    if not isinstance(document, LocDict):
        return
    _as_written(document, _TOP)
    resources = document.get("resources")
    if isinstance(resources, LocDict):
        for kind, items in resources.items():
            fields = _text_fields(kind)
            for item in items if isinstance(items, list) else ():
                _as_written(item, fields)
    for edge in _list(document.get("edges")):
        _as_written(edge, ("name",))
        if isinstance(edge, LocDict):
            for end in ("from", "to"):
                _as_written(edge.get(end), ("kind", "name"))
    for entry in _list(document.get("collect")):
        _as_written(entry, ("kind", "pattern"))


def _text_fields(kind: Any) -> Iterable[str]:
    if not isinstance(kind, str) or kind not in known_kinds():
        return ("name",)  # the parser says what is wrong with the kind
    try:
        fields = kind_class(kind).fields
    except ImportError:
        return ("name",)
    texts = [key for key, field in fields.items() if _takes_text(field.types)]
    return ["name", *texts]


def _takes_text(types: Any) -> bool:
    return str in types if isinstance(types, tuple) else types is str


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _as_written(data: Any, keys: Iterable[str]) -> None:
    if not isinstance(data, LocDict) or not data.key_texts:
        return
    for key in keys:
        if key in data.key_texts and not isinstance(data.get(key), str):
            data[key] = data.key_texts[key]
