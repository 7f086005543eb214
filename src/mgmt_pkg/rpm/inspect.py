"""Read an RPM's header with rpmfile (pure Python: no rpm bindings needed).

rpmfile hands back raw header values: bytes for strings, and a bare value
instead of a one-element list for numeric arrays. This module turns them into
plain Python data once, for ``mgmt-pkg inspect`` and for the tests.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from mgmt_pkg.errors import InvalidInput
from mgmt_pkg.paths import check_input_file

__all__ = [
    "RPM_MAGIC",
    "PackageInfo",
    "Relation",
    "check_digests",
    "read_headers",
    "read_package",
    "sense",
]

# Every RPM starts with its lead, whose first four bytes are these (rpm's lib/rpmlead.c).
RPM_MAGIC = b"\xed\xab\xee\xdb"

# RPMSENSE bits for comparisons; the other bits of a flags word say where a
# dependency came from (rpmlib, scriptlet, ...).
_LESS, _GREATER, _EQUAL = 0x02, 0x04, 0x08
_OPERATORS = {
    _LESS: "<",
    _LESS | _EQUAL: "<=",
    _EQUAL: "=",
    _GREATER | _EQUAL: ">=",
    _GREATER: ">",
}
# rpm's numbers for the payload digest's algorithm (PAYLOADDIGESTALGO), as hashlib names them.
_DIGESTS = {1: "md5", 2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224"}
# The dependency kinds, as PackageInfo's fields; the last four are the weak ones.
RELATIONS = ("requires", "provides", "conflicts", "obsoletes")
RELATIONS += ("recommends", "suggests", "supplements", "enhances")
SCRIPT_TAGS = {
    "pretrans": "pretrans",
    "pre": "prein",
    "post": "postin",
    "preun": "preun",
    "postun": "postun",
    "posttrans": "posttrans",
}


def sense(flags: int) -> Optional[str]:
    """The comparison operator in a dependency's flags word, or None."""
    return _OPERATORS.get(flags & (_LESS | _GREATER | _EQUAL))


@dataclass(frozen=True)
class Relation:
    """A dependency read back: name, operator and EVR (both None if unversioned)."""

    name: str
    operator: Optional[str] = None
    evr: Optional[str] = None

    def __str__(self) -> str:
        return self.name if self.operator is None else f"{self.name} {self.operator} {self.evr}"


@dataclass
class PackageInfo:
    path: str
    source: bool
    name: str
    epoch: Optional[int]
    version: str
    release: str
    arch: str
    summary: str
    description: str
    license: str
    packager: Optional[str]
    group: Optional[str]
    url: Optional[str]
    vendor: Optional[str]
    requires: List[Relation] = field(default_factory=list)
    provides: List[Relation] = field(default_factory=list)
    conflicts: List[Relation] = field(default_factory=list)
    obsoletes: List[Relation] = field(default_factory=list)
    # The weak dependencies (rpm 4.12 on): dnf installs what is recommended by default.
    recommends: List[Relation] = field(default_factory=list)
    suggests: List[Relation] = field(default_factory=list)
    supplements: List[Relation] = field(default_factory=list)
    enhances: List[Relation] = field(default_factory=list)
    files: List[str] = field(default_factory=list)
    scripts: Dict[str, str] = field(default_factory=dict)
    changelog: List[Tuple[int, str, str]] = field(default_factory=list)

    @property
    def evr(self) -> str:
        prefix = f"{self.epoch}:" if self.epoch is not None else ""
        return f"{prefix}{self.version}-{self.release}"

    def to_json(self) -> Dict[str, Any]:
        data = asdict(self)
        for kind in RELATIONS:
            data[kind] = [str(r) for r in getattr(self, kind)]
        data["evr"] = self.evr
        data["changelog"] = [{"time": t, "author": a, "text": x} for t, a, x in self.changelog]
        return data


def _list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _text(value: Any) -> Optional[str]:
    if value is None:
        return None
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _relations(headers: Dict[str, Any], names: str, flags: str, versions: str) -> List[Relation]:
    result = []
    for name, flag, version in zip(
        _list(headers.get(names)), _list(headers.get(flags)), _list(headers.get(versions))
    ):
        operator = sense(flag)
        result.append(Relation(_text(name), operator, _text(version) if operator else None))
    return result


def _files(headers: Dict[str, Any]) -> List[str]:
    basenames = [_text(b) for b in _list(headers.get("basenames"))]
    dirnames = [_text(d) for d in _list(headers.get("dirnames"))]
    indexes = _list(headers.get("dirindexes"))
    if not dirnames:
        return basenames
    return [dirnames[i] + base for i, base in zip(indexes, basenames)]


def read_headers(path: Path) -> Dict[str, Any]:
    """``path``'s RPM header as rpmfile gives it; a file that is not an RPM is bad input.

    rpmfile raises whatever struct or its own code hits on a malformed file
    ("unpack requires a buffer of 96 bytes", "offset overhead"), which says
    nothing to the user: the lead's magic number is checked first, and any
    failure to read the header after it means a cut-short or damaged package.
    """
    import rpmfile  # imported here: only inspect and copr need it

    check_input_file(path)
    try:
        with path.open("rb") as stream:
            magic = stream.read(len(RPM_MAGIC))
    except OSError as error:
        raise InvalidInput(f"{path}: cannot read: {error.strerror or error}") from None
    if magic != RPM_MAGIC:
        raise InvalidInput(f"{path}: not an RPM package")
    try:
        with rpmfile.open(str(path)) as package:
            return package.headers
    except OSError as error:
        raise InvalidInput(f"{path}: cannot read: {error.strerror or error}") from None
    except Exception:  # rpmfile's bare errors ("offset overhead") would tell the user nothing
        raise InvalidInput(
            f"{path}: not an RPM package (its header is cut short or damaged)"
        ) from None


def _digest(stream: Any, algorithm: str, start: int, end: Optional[int] = None) -> bytes:
    """The digest of the bytes from ``start`` to ``end`` (the end of the file if None)."""
    digest = hashlib.new(algorithm)
    stream.seek(start)
    left = None if end is None else end - start
    while left is None or left > 0:
        chunk = stream.read(1 << 20 if left is None else min(1 << 20, left))
        if not chunk:
            break
        digest.update(chunk)
        if left is not None:
            left -= len(chunk)
    return digest.digest()


def check_digests(path: Path) -> Dict[str, Any]:
    """Refuse a package whose header or payload does not match the digests it carries;
    its headers (:func:`read_headers`) if they do.

    The header alone reads fine from a package cut short after it, or changed
    in its payload: createrepo_c indexes such a file (it reads the header and
    hashes the file as it is), and dnf fails only when it installs it ("does
    not verify: Payload SHA256 digest: BAD"). These are the digests rpm -K
    checks: SHA256 of the header (signature tag 273), then the payload's own
    (PAYLOADDIGEST, rpm 4.14 on) or, before that, MD5 of header and payload.
    """
    import rpmfile

    found = read_headers(path)  # the lead and both headers are there
    with rpmfile.open(str(path)) as package:
        headers = package.headers
        start, end = package.header_range

    def wanted(value: Any) -> bytes:
        try:
            return bytes.fromhex(_text(value))
        except ValueError:  # a damaged signature header
            raise InvalidInput(f"{path}: damaged: a digest it carries is not one") from None

    checks = []
    if headers.get("sha256"):
        checks.append(("header", "sha256", start, end, wanted(headers["sha256"])))
    payload = _list(headers.get("payloaddigest"))
    algorithm = _DIGESTS.get((_list(headers.get("payloaddigestalgo")) or [0])[0])
    if payload and algorithm:
        checks.append(("payload", algorithm, end, None, wanted(payload[0])))
    elif isinstance(headers.get("sigmd5"), bytes):
        checks.append(("content", "md5", start, None, headers["sigmd5"]))
    try:
        with path.open("rb") as stream:
            for part, algorithm, first, last, digest in checks:
                if _digest(stream, algorithm, first, last) != digest:
                    raise InvalidInput(
                        f"{path}: damaged: its {part} does not match the {algorithm.upper()} "
                        "digest the package carries (cut short or changed)"
                    )
    except OSError as error:
        raise InvalidInput(f"{path}: cannot read: {error.strerror or error}") from None
    return found


def read_package(path: Path) -> PackageInfo:
    """Read ``path``'s header; errors name the file."""
    headers = read_headers(path)
    epoch = headers.get("serial")
    changelog = list(
        zip(
            _list(headers.get("changelogtime")),
            [_text(a) for a in _list(headers.get("authors"))],
            [_text(c) for c in _list(headers.get("comments"))],
        )
    )
    return PackageInfo(
        path=str(path),
        source="sourcerpm" not in headers,
        name=_text(headers.get("name")),
        epoch=_list(epoch)[0] if epoch is not None else None,
        version=_text(headers.get("version")),
        release=_text(headers.get("release")),
        arch=_text(headers.get("arch")),
        summary=_text(headers.get("summary")),
        description=_text(headers.get("description")),
        license=_text(headers.get("copyright")),
        packager=_text(headers.get("packager")),
        group=_text(headers.get("group")),
        url=_text(headers.get("url")),
        vendor=_text(headers.get("vendor")),
        requires=_relations(headers, "requirename", "requireflags", "requireversion"),
        provides=_relations(headers, "provides", "provideflags", "provideversion"),
        conflicts=_relations(headers, "conflictname", "conflictflags", "conflictversion"),
        obsoletes=_relations(headers, "obsoletes", "obsoleteflags", "obsoleteversion"),
        **{
            kind: _relations(
                headers, f"{kind[:-1]}name", f"{kind[:-1]}flags", f"{kind[:-1]}version"
            )
            for kind in ("recommends", "suggests", "supplements", "enhances")
        },
        files=_files(headers),
        scripts={
            section: _text(headers[tag]) for section, tag in SCRIPT_TAGS.items() if tag in headers
        },
        changelog=changelog,
    )
