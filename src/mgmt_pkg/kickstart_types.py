"""What a kickstart template's variable may hold, by its place in the kickstart.

A template declares each variable with its type before using it::

    {%- set url = param("url", "url") %}
    {%- set hostname = param("hostname", "hostname", "localhost.localdomain") %}

``--var`` values never reach a template's context directly: a template sees a
variable only through :func:`Params.param`, which checks the value against its
type and refuses it (exit 2, naming the variable) when it does not fit. A
template that uses a variable it did not declare fails to render, and a
``--var`` that no template declares is refused, so a typo is never silently
ignored.

The types say what is allowed (a whitelist per place), not which characters
are bad: a kickstart line is split like a shell line (pykickstart uses shlex),
sections start with ``%``, and %post is shell, so a value that may hold a
space, a quote, a ``#``, a ``%`` or a ``;`` could add options, sections or
commands.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from typing import Callable, Dict, List, Optional, Sequence, Union

from mgmt_pkg.errors import InvalidInput
from mgmt_pkg.urls import url_problem

__all__ = ["TYPES", "Params", "check_value_characters"]

# Refused in every value, whatever its type, before any type sees it. pykickstart
# and anaconda split a kickstart with str.splitlines(), which breaks lines at
# \v \f \x1c-\x1e \x85 U+2028 U+2029 as well as \n and \r: all are in Cc (controls)
# or Zl/Zp (line and paragraph separators), so refusing these categories closes
# every way a value could start a line of its own, in this Python and the next.
# Cf (format characters: bidi overrides, zero-width spaces) split nothing, but
# make the kickstart read otherwise than it runs; Cs (lone surrogates, from
# undecodable bytes in argv) cannot even be written out as UTF-8.
_REFUSED_CATEGORIES = {"Cc": "a control character", "Cf": "a format character",
                       "Zl": "a line separator", "Zp": "a paragraph separator",
                       "Cs": "a lone surrogate (bytes that are not UTF-8)"}  # fmt: skip


def check_value_characters(name: str, value: str) -> None:
    """InvalidInput, naming ``--var name``, if ``value`` holds a character no value may hold."""
    for char in value:
        what = _REFUSED_CATEGORIES.get(unicodedata.category(char))
        if what is not None:
            raise InvalidInput(
                f"--var {name}: holds U+{ord(char):04X}, {what}; a value may not hold "
                "line breaks, control or format characters"
            )


# A check returns None when the value fits, else what it must be.
Check = Callable[[str], Optional[str]]


def _pattern(regex: str, what: str) -> Check:
    compiled = re.compile(regex)
    return lambda value: None if compiled.fullmatch(value) else what


_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")


def _hostname(value: str) -> Optional[str]:
    what = "a host name (RFC 1123: letters, digits and -, dot-separated labels)"
    labels = value.split(".")
    if len(value) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        return what
    return None


# RFC 3986's characters, less those a kickstart line splits or comments on.
_URL_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?\[\]@!$&()*+,;=%]+")


def _url(value: str) -> Optional[str]:
    what = "an http, https or ftp URL with a host and no spaces, quotes or #"
    if not _URL_CHARS.fullmatch(value):
        return what
    problem = url_problem(value, ("http", "https", "ftp"))
    return None if problem is None else f"{what} ({problem})"


_PACKAGE = re.compile(r"-?(?:@\^?[A-Za-z0-9_][A-Za-z0-9_.+:/-]*|[A-Za-z0-9_][A-Za-z0-9_.+*?-]*)")
_PACKAGE_WHAT = "a package name, @group, @^environment or -exclusion"


def _package(value: str) -> Optional[str]:
    return None if _PACKAGE.fullmatch(value) else _PACKAGE_WHAT


def _packages(value: str) -> Optional[str]:
    for name in value.split(","):
        if name and not _PACKAGE.fullmatch(name):
            return f"comma-separated package names; {name!r} is not {_PACKAGE_WHAT}"
    return None


# lvm(8): "The valid characters for VG and LV names are: a-z A-Z 0-9 + _ . -",
# not starting with -, not . or .., and (lvm2's apply_lvname_restrictions) not
# starting with "pvmove" or "snapshot" nor holding a part LVM names its own
# hidden volumes with. Those rules are for LV names; a VG name held to them too
# loses nothing and one type serves both.
_LVM_NAME = re.compile(r"[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}")
_LVM_RESERVED_PREFIXES = ("pvmove", "snapshot")
# lvm(8)'s list, plus the parts newer lvm2 adds (cache pools and
# volumes, integrity, writecache): refusing one more name costs little.
_LVM_RESERVED = ("_cdata", "_cmeta", "_corig", "_cpool", "_cvol", "_imeta", "_iorig",
                 "_mimage", "_mlog", "_pmspare", "_rimage", "_rmeta", "_tdata", "_tmeta",
                 "_vdata", "_vorigin", "_wcorig")  # fmt: skip


def _lvm_name(value: str) -> Optional[str]:
    what = "an LVM name (a-z A-Z 0-9 + _ . -, not starting with -, at most 127)"
    if not _LVM_NAME.fullmatch(value) or value in (".", ".."):
        return what
    if value.startswith(_LVM_RESERVED_PREFIXES):
        return what + ", not starting with pvmove or snapshot (LVM reserves them)"
    if any(part in value for part in _LVM_RESERVED):
        return what + ", without LVM's reserved parts such as _mlog or _tmeta"
    return None


_SSH_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ssh-dss", "ecdsa-sha2-nistp256",
                  "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
                  "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com")  # fmt: skip


def _ssh_key(value: str) -> Optional[str]:
    """An OpenSSH public key line; it sits in double quotes in the kickstart."""
    what = "an OpenSSH public key: TYPE BASE64 [comment without quotes or backslashes]"
    fields = value.split(" ", 2)
    if len(fields) < 2 or fields[0] not in _SSH_KEY_TYPES:
        return what
    try:
        blob = base64.b64decode(fields[1], validate=True)
    except (binascii.Error, ValueError):
        return what
    name = fields[0].encode()
    if blob[4 : 4 + len(name)] != name:  # the key names its own type first
        return what
    if len(fields) == 3 and re.search(r'["\\`$]', fields[2]):
        return what
    return None


def _size_mib(value: str) -> Optional[str]:
    ok = value.isascii() and value.isdigit() and 1 <= int(value) <= 1 << 40
    return None if ok else "a size in MiB (a whole number, at least 1)"


TYPES: Dict[str, Check] = {
    "url": _url,
    "hostname": _hostname,
    "package": _package,
    "packages": _packages,
    "lvm_name": _lvm_name,
    "ssh_key": _ssh_key,
    "size_mib": _size_mib,
    "lang": _pattern(
        r"[a-z]{2,3}(?:_[A-Z]{2})?(?:\.[A-Za-z0-9-]+)?(?:@[a-z]+)?", "a locale such as en_US.UTF-8"
    ),
    "keymap": _pattern(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", "a keymap such as us or de-nodeadkeys"),
    "timezone": _pattern(
        r"[A-Za-z][A-Za-z0-9_+-]*(?:/[A-Za-z0-9_+-]+){0,2}",
        "a time zone such as UTC or Europe/Paris",
    ),
    "crypt_hash": _pattern(
        r"\$[0-9a-z]{1,2}\$[A-Za-z0-9./$=,_-]{8,}",
        "a crypt(3) hash such as $6$salt$hash (openssl passwd -6)",
    ),
    "disk": _pattern(
        r"[A-Za-z0-9][A-Za-z0-9_.:+-]*(?:/[A-Za-z0-9_.:+-]+)*",
        "a disk such as vda, nvme0n1 or disk/by-id/NAME",
    ),
}


# Types whose values are not repeated in messages.
SECRET_TYPES = ("crypt_hash",)


def _problem(kind: Union[str, Sequence[str]], label: str, value: object) -> Optional[str]:
    """None if ``value`` fits ``kind`` (a type name or the choices), else what it must be."""
    if not isinstance(value, str):
        return "text"
    if isinstance(kind, str):
        return TYPES[kind](value)
    return None if value in kind else label


class Params:
    """The ``--var`` values of one render, handed out by type through ``param()``."""

    def __init__(self, values: Dict[str, str], template: str):
        self.values = dict(values)
        self.template = template
        self.declared: Dict[str, str] = {}

    def param(
        self, name: str, kind: Union[str, Sequence[str]], default: Optional[str] = None
    ) -> Optional[str]:
        """The value of ``name`` checked as ``kind`` (a type name, or a list of choices).

        Without a --var it is ``default`` (None when there is none: optional).
        """
        if not isinstance(kind, str) and not all(isinstance(c, str) for c in kind):
            raise InvalidInput(f"{self.template}: declares {name} with choices that are not text")
        label = kind if isinstance(kind, str) else "one of " + ", ".join(kind)
        if isinstance(kind, str) and kind not in TYPES:
            known = ", ".join(TYPES)
            raise InvalidInput(
                f"{self.template}: declares {name} with an unknown type {kind!r} (known: {known})"
            )
        if default is not None:
            # The template's own mistake, refused whether or not a --var sets it.
            wrong = _problem(kind, label, default)
            if wrong is not None:
                raise InvalidInput(
                    f"{self.template}: declares {name} with default {default!r}, "
                    f"which is not {wrong}"
                )
        self.declared[name] = label
        if name not in self.values:
            return default
        value = self.values[name]
        problem = _problem(kind, label, value)
        if problem is not None:
            # What does not fit a hash may be the password itself, typed in its place:
            # never repeated where a terminal, a CI log or a bug report would keep it.
            shown = "***" if kind in SECRET_TYPES else repr(value)
            raise InvalidInput(f"--var {name}={shown}: must be {problem}")
        return value

    def require(self, name: str, kind: Union[str, Sequence[str]]) -> str:
        """Like :meth:`param`, for a variable the template cannot do without."""
        value = self.param(name, kind)
        if value is None:
            raise InvalidInput(f"{self.template}: needs --var {name}=... ({self.declared[name]})")
        return value

    def check_all_declared(self) -> None:
        unknown: List[str] = sorted(set(self.values) - set(self.declared))
        if unknown:
            known = ", ".join(f"{n} ({t})" for n, t in sorted(self.declared.items()))
            raise InvalidInput(f"{self.template}: no variable {unknown[0]!r} (it takes: {known})")
