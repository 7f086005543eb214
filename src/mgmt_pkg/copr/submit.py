"""Creating COPR projects and submitting SRPMs to them."""

from __future__ import annotations

import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import click

from mgmt_pkg.copr.follow import (
    DEFAULT_POLL_INTERVAL,
    FAILED_STATES,
    follow_again,
    follow_builds,
)
from mgmt_pkg.copr.progress import UploadProgress
from mgmt_pkg.copr.session import (
    CoprFailed,
    CoprSession,
    CoprUnavailable,
    Target,
    check_chroots,
    parse_target,
)
from mgmt_pkg.copr.srpm import SourcePackage, read_source_package
from mgmt_pkg.errors import Interrupted, InvalidInput, MgmtPkgError

__all__ = [
    "BuildFailed",
    "BuildResult",
    "StoppedFollowing",
    "create_project",
    "submit_builds",
    "submit_srpm",
    "watch_builds",
]

Echo = Callable[[str], None]


class BuildFailed(CoprFailed):
    """A submitted build ended failed or canceled; the message carries its URL."""


class StoppedFollowing(MgmtPkgError):
    """^C (or SIGTERM) while builds were submitted: they go on at COPR, and the
    message says where and how to follow them again; exit 128 + the signal."""

    def __init__(self, stop: BaseException, follow_again: str):
        signum = getattr(stop, "signum", signal.SIGINT)  # a KeyboardInterrupt has none
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        super().__init__(f"interrupted by {name}; {follow_again}")


@dataclass(frozen=True)
class BuildResult:
    """One submitted build; ``state`` is the last one seen (the end state unless --nowait)."""

    id: int
    state: str
    url: str
    srpm: Optional[Path]  # None for a build followed by `copr watch`


def create_project(
    target: str,
    chroots: Sequence[str],
    *,
    config_path: Optional[Path] = None,
    description: Optional[str] = None,
    exist_ok: bool = False,
    dry_run: bool = False,
    echo: Echo = click.echo,
) -> str:
    """Create OWNER/PROJECT with the given chroots; return the project's URL."""
    where = parse_target(target)
    if not chroots:
        raise InvalidInput("copr project: give at least one --chroot (e.g. fedora-rawhide-x86_64)")
    check_chroots("--chroot", chroots)
    session = CoprSession(config_path)
    if dry_run:
        body = {"name": where.project, "chroots": list(chroots), "description": description}
        echo(f"copr: dry run, nothing sent to {session.url}")
        echo(
            f"POST {session.api_url(f'project/add/{where.owner}')}?exist_ok={exist_ok} "
            f"as {session.login}: {json.dumps(body, sort_keys=True)}"
        )
        return session.project_url(where)
    with session.errors(f"creating project {where}"):
        session.answered(
            session.client.project_proxy.add,
            where.owner, where.project, list(chroots), description=description, exist_ok=exist_ok,
        )  # fmt: skip
    url = session.project_url(where)
    echo(f"copr: project {where} ready: {url}")
    return url


def submit_builds(
    target: str,
    srpms: Sequence[Path],
    *,
    chroots: Sequence[str] = (),
    config_path: Optional[Path] = None,
    wait: bool = True,
    dry_run: bool = False,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    timeout: Optional[float] = None,
    echo: Echo = click.echo,
) -> List[BuildResult]:
    """Upload each SRPM as a build in OWNER/PROJECT and, unless ``wait`` is off, follow them.

    Everything is checked before the first byte goes out: the target, each
    file (a real SRPM), the config, and then with COPR itself (check-before-build:
    the project exists, the credentials and the chroots are good). A build that
    ends failed or canceled raises BuildFailed naming its URL, after all have ended.
    """
    where = parse_target(target)
    if not srpms:
        raise InvalidInput("copr build: no SRPM given")
    check_chroots("--chroot", chroots)
    packages = [read_source_package(Path(p)) for p in srpms]
    _check_once(packages)
    session = CoprSession(config_path)
    options = {"chroots": list(chroots)} if chroots else {}
    if dry_run:
        _describe(session, where, packages, options, echo)
        return []
    _check_with_copr(session, where, options)
    results: List[BuildResult] = []
    try:
        for package in packages:
            try:
                results.append(_upload(session, where, package, options, echo))
            except CoprFailed as error:
                if not results:
                    raise
                # The builds already made are not undone: say where they are.
                ids = [r.id for r in results]
                raise type(error)(f"{error}; {follow_again(session, where, ids)}") from error
        if not wait:
            echo(f"copr: {follow_again(session, where, [r.id for r in results])}")
            return results
        states = follow_builds(
            session,
            where,
            [r.id for r in results],
            echo=echo,
            poll_interval=poll_interval,
            timeout=timeout,
        )
    except (KeyboardInterrupt, Interrupted) as stop:
        if not results:
            raise
        ids = [r.id for r in results]
        raise StoppedFollowing(stop, follow_again(session, where, ids)) from None
    return _report([BuildResult(r.id, states[r.id], r.url, r.srpm) for r in results], echo)


def _check_once(packages: Sequence[SourcePackage]) -> None:
    """One file given twice (a typo, two globs that overlap, a symlink beside
    its target), or two files of one name-version-release, would become two
    builds of it at COPR."""
    real = [os.path.realpath(package.path) for package in packages]
    for number, path in enumerate(real):
        if path in real[:number]:
            first, again = packages[real.index(path)].path, packages[number].path
            also = "" if first == again else f" (as {first})"
            raise InvalidInput(f"{again}: given more than once{also}; it would be built twice")
    # Two files of one package (a copy, or a rebuild whose release was not raised):
    # two builds of it, and the repository keeps whichever ends last.
    seen: Dict[str, Path] = {}
    for package in packages:
        first = seen.setdefault(package.nvr, package.path)
        if first != package.path:
            raise InvalidInput(
                f"{package.path}: {package.nvr}, as {first} is; it would be built twice "
                "(raise the release of one, or give one)"
            )


def watch_builds(
    target: str,
    build_ids: Sequence[int],
    *,
    config_path: Optional[Path] = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    timeout: Optional[float] = None,
    echo: Echo = click.echo,
) -> List[BuildResult]:
    """Follow builds submitted before (``mgmt-pkg copr watch``), as ``copr build`` does."""
    where = parse_target(target)
    if not build_ids:
        raise InvalidInput("copr watch: no build id given")
    session = CoprSession(config_path)
    try:
        states = follow_builds(
            session, where, build_ids, echo=echo, poll_interval=poll_interval, timeout=timeout
        )
    except (KeyboardInterrupt, Interrupted) as stop:
        raise StoppedFollowing(stop, follow_again(session, where, build_ids)) from None
    return _report(
        [BuildResult(i, states[i], session.build_url(where, i), None) for i in build_ids], echo
    )


def _report(results: List[BuildResult], echo: Echo) -> List[BuildResult]:
    """Say how each build ended; BuildFailed naming those that failed."""
    failed = [r for r in results if r.state in FAILED_STATES]
    for result in results:
        if result not in failed:
            echo(f"copr: build {result.id} {result.state}: {result.url}")
    if failed:
        detail = ", ".join(
            f"{r.id} {r.state}{f' ({r.srpm.name})' if r.srpm else ''}: {r.url}" for r in failed
        )
        raise BuildFailed(f"COPR build {detail}")
    return results


def check_target(
    target: str, *, chroots: Sequence[str] = (), config_path: Optional[Path] = None
) -> None:
    """Ask COPR, before anything is built, what an upload to ``target`` would be
    refused for (the project does not exist, bad credentials or chroots): for
    ``fake-rpm --copr``, which would otherwise build first and fail after."""
    session = CoprSession(config_path)
    _check_with_copr(session, parse_target(target), {"chroots": list(chroots)} if chroots else {})


def _check_with_copr(session: CoprSession, where: Target, options: dict) -> None:
    # Older copr clients lack check-before-build; the upload then checks the same.
    check = getattr(session.client.build_proxy, "check_before_build", None)
    if check is not None:
        with session.errors(f"checking {where} before the upload"):
            session.answered(
                check, where.owner, where.project,
                buildopts={**options, "progress_callback": None},
            )  # fmt: skip


def submit_srpm(target: str, srpm: Path, **options: Any) -> Optional[BuildResult]:
    """Submit one SRPM (what ``mgmt-pkg fake-rpm --copr`` does); None on a dry run.

    ``options`` are :func:`submit_builds`' keyword arguments.
    """
    results = submit_builds(target, [srpm], **options)
    return results[0] if results else None


def _upload(
    session: CoprSession, where: Target, package: SourcePackage, options: dict, echo: Echo
) -> BuildResult:
    progress = UploadProgress(f"copr: uploading {package.path.name}")
    try:
        with session.errors(f"uploading {package.path.name} to {where}"):
            build = session.answered(
                session.client.build_proxy.create_from_file,
                where.owner,
                where.project,
                str(package.path),
                buildopts={**options, "progress_callback": progress},
                moved_at=progress.moved_at,
            )
    except CoprUnavailable as error:
        # All of it may have arrived before the link or the answer was lost.
        raise CoprUnavailable(
            f"{error} (COPR may have the build all the same: see "
            f"{session.project_url(where)}builds/)"
        ) from error
    finally:
        progress.close()
    url = session.build_url(where, int(build.id))
    echo(f"copr: build {build.id} submitted ({package.nvr}): {url}")
    return BuildResult(int(build.id), str(build.state), url, package.path)


def _describe(
    session: CoprSession, where: Target, packages: List[SourcePackage], options: dict, echo: Echo
) -> None:
    fields = {"ownername": where.owner, "projectname": where.project, **options}
    echo(f"copr: dry run, nothing sent to {session.url}")
    echo(
        f"POST {session.api_url('build/check-before-build')} as {session.login}: "
        f"{json.dumps(fields, sort_keys=True)}"
    )
    for package in packages:
        echo(
            f"POST {session.api_url('build/create/upload')} as {session.login}: "
            f"json={json.dumps(fields, sort_keys=True)} pkgs={package.path.name} "
            f"({package.nvr}, {package.size} bytes, sha256 {package.sha256})"
        )
