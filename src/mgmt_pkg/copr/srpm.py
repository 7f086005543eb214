"""Check a file is a source RPM before anything is sent: COPR takes minutes to say so."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from mgmt_pkg.errors import InvalidInput

__all__ = ["SourcePackage", "read_source_package"]


@dataclass(frozen=True)
class SourcePackage:
    """What we tell the user about an SRPM we are about to upload."""

    path: Path
    name: str
    version: str
    release: str
    size: int
    sha256: str

    @property
    def nvr(self) -> str:
        return f"{self.name}-{self.version}-{self.release}"


def read_source_package(path: Path) -> SourcePackage:
    """Read an SRPM's header; anything else (a binary RPM, a stray file, a damaged
    SRPM: cut short by an interrupted download, which COPR fails minutes later) is
    bad input."""
    from mgmt_pkg.rpm.inspect import check_digests

    path = Path(path)
    headers = check_digests(path)
    try:
        # The upload names the file in its multipart header, which the
        # encoder writes as UTF-8: a name that is not UTF-8 ended the upload
        # in an internal error (UnicodeEncodeError), after a dry run said yes.
        path.name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput(
            f"{str(path)!r}: the file name is not UTF-8, which the upload cannot send; "
            f"rename it (e.g. to its NVR, {_nvr(headers)}.src.rpm)"
        ) from None
    if headers.get("sourcepackage") != 1 or "sourcerpm" in headers:
        raise InvalidInput(f"{path}: a binary RPM; COPR builds from source RPMs (.src.rpm)")
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return SourcePackage(
        path=path,
        name=_text(headers.get("name")),
        version=_text(headers.get("version")),
        release=_text(headers.get("release")),
        size=path.stat().st_size,
        sha256=digest.hexdigest(),
    )


def _nvr(headers: dict) -> str:
    return "-".join(_text(headers.get(key)) for key in ("name", "version", "release"))


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
