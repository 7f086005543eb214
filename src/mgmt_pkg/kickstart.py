"""Kickstarts: render the templates in templates/kickstart and validate with pykickstart.

Validation is ksvalidator's, made quiet and complete: every parse error with
its line (pykickstart prints non-fatal errors to stderr; we collect them),
parse and deprecation warnings counted as errors as ksvalidator does, plus
two checks pykickstart cannot make because they are about anaconda, not
syntax:

- ``logvol ... --fstype=none`` (the write-up's trick for an unformatted
  volume) passes pykickstart, but anaconda since Fedora 18 / RHEL 6.7 aborts
  with 'The "none" file system type is not supported.' unless it is a thin pool;
- an install that lacks lang, keyboard, timezone, rootpw (or user), a boot
  loader, an install source, zerombr, clearpart, partitioning, reboot or
  %packages (but an image install: liveimg, ostreesetup, ostreecontainer,
  bootc, takes none) stops and waits for someone at the console instead of
  running unattended.
"""

from __future__ import annotations

import re
import stat
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Set

from mgmt_pkg.errors import InvalidInput, MgmtPkgError
from mgmt_pkg.kickstart_lines import CountingLines, check_line_characters, odd_line_break
from mgmt_pkg.kickstart_secrets import mask_values
from mgmt_pkg.kickstart_types import TYPES, Params, check_value_characters
from mgmt_pkg.kickstart_where import endless, failed_at, shown_as
from mgmt_pkg.paths import read_input_text, stat_named
from mgmt_pkg.templating import TEMPLATES, TemplateUnreadable, environment

__all__ = [
    "DEFAULT_TARGET",
    "Finding",
    "KickstartInvalid",
    "Report",
    "check_file",
    "check_target",
    "check_text",
    "is_legacy",
    "render",
    "template_names",
]

DEFAULT_TARGET = "F39"
TEMPLATE_SUFFIX = ".ks.j2"
_TEMPLATE_DIR = TEMPLATES / "kickstart"

FSTYPE_NONE = (
    "logvol {mount} --fstype=none: anaconda since Fedora 18 / RHEL 6.7 aborts with "
    '"The \\"none\\" file system type is not supported." (unless it is a thin pool); '
    "create the volume in %post with lvcreate instead "
    "(the lvm template does: --var unformatted_lv=post)"
)
NOT_UNATTENDED = "not unattended: no {what}; anaconda will stop and wait at the console"

# Sources that install an image, not packages: anaconda takes no %packages with them.
_IMAGE_SOURCES = ("liveimg", "ostreesetup", "ostreecontainer", "bootc")
# What an unattended install needs, as (what to say, handler attributes; any one will do).
_UNATTENDED = (
    ("lang", ("lang",)),
    ("keyboard", ("keyboard",)),
    ("timezone", ("timezone",)),
    ("rootpw (or user)", ("rootpw", "user")),
    ("bootloader", ("bootloader",)),
    (
        "install source (url, nfs, cdrom, ...)",
        ("url", "nfs", "cdrom", "harddrive", "hmc", *_IMAGE_SOURCES),
    ),
    ("zerombr", ("zerombr",)),
    ("clearpart", ("clearpart",)),
    ("partitioning (autopart, part, logvol)", ("autopart", "partition", "logvol", "reqpart")),
    ("reboot, poweroff or shutdown", ("reboot",)),
)
_LINE = re.compile(r"\bline (\d+)")
# StrictUndefined's message for a name the template never declared (not for an attribute).
_UNDECLARED = re.compile(r"'([^']+)' is undefined")


class KickstartInvalid(MgmtPkgError):
    """The kickstart has errors; carries the findings (each with file and line).

    The message is one line; commands print the findings before raising.
    """

    def __init__(self, report: Report):
        self.report = report
        count = len(report.errors)
        plural = "error" if count == 1 else "errors"
        super().__init__(f"{report.source}: {count} {plural} for {report.target}")


@dataclass(frozen=True)
class Finding:
    source: str
    line: Optional[int]
    severity: str  # "error" or "warning"
    message: str

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line else self.source
        return f"{where}: {self.severity}: {self.message}"


@dataclass
class Report:
    source: str
    target: str
    findings: List[Finding] = field(default_factory=list)

    @property
    def errors(self) -> List[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors


def is_legacy(target: str) -> bool:
    """Targets whose anaconda still accepts ``--fstype=none`` (before F18 and RHEL 6)."""
    match = re.fullmatch(r"(FC|F|RHEL)(\d+)", target.upper())
    if match is None:
        return False  # DEVEL and anything newer
    family, number = match.group(1), int(match.group(2))
    return family == "FC" or (family == "F" and number < 18) or (family == "RHEL" and number < 6)


def has_modern_syntax(target: str) -> bool:
    """F23+ / RHEL7+: keyboard --vckeymap, rootpw --lock, reqpart, autopart --type."""
    match = re.fullmatch(r"(FC|F|RHEL)(\d+)", target.upper())
    if match is None:
        return True
    family, number = match.group(1), int(match.group(2))
    return (family == "F" and number >= 23) or (family == "RHEL" and number >= 7)


def _handler(target: str) -> Any:
    from pykickstart.errors import KickstartVersionError
    from pykickstart.version import makeVersion

    try:
        return makeVersion(target.upper())
    except KickstartVersionError as error:
        raise InvalidInput(f"unknown kickstart target {target!r} (try F39 or RHEL9)") from error


def check_target(target: str) -> None:
    """InvalidInput unless pykickstart knows ``target`` (F39, RHEL9, ...)."""
    _handler(target)


def check_text(text: str, target: str = DEFAULT_TARGET, source: str = "<kickstart>") -> Report:
    """Validate ``text`` for ``target`` (a pykickstart version: F39, RHEL9, ...)."""
    from pykickstart.errors import KickstartError, KickstartParseError
    from pykickstart.parser import KickstartParser

    check_line_characters(text, source)
    report = Report(source, target)
    handler = _handler(target)
    # Sections whose header had an error: given all the same (pykickstart marks
    # %packages seen only once its options parse).
    failed_headers: Set[str] = set()
    includes: List[str] = []

    def error(line: Optional[int], message: str) -> None:
        report.findings.append(Finding(source, line, "error", message))

    class _CollectingParser(KickstartParser):
        # pykickstart prints non-fatal errors to stderr; collect them instead.
        # A section's header warns without its line (%traceback is deprecated):
        # it is the line just read.
        def _tryFunc(self, fn: Callable[[], None]) -> None:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    fn()
                except KickstartError as problem:
                    self.errorsCount += 1
                    error(problem.lineno, problem.message)
                    if self._state.startswith("%"):  # in a section: only its header is tried
                        failed_headers.add(self._state)
            for warning in caught:
                found = _LINE.search(str(warning.message))
                error(int(found.group(1)) if found else lines.number, str(warning.message).strip())

        # Deprecation warnings do not always say their line: catch them per command.
        # Messages on a line that may hold a password are masked (kickstart_secrets).
        def handleCommand(self, lineno: int, args: List[str]) -> Any:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    result = super().handleCommand(lineno, args)
                except KickstartError as problem:
                    problem.message = mask_values(problem.message, args)
                    raise
                except Exception as crash:  # pykickstart's own fault (RHEL7/8 `method`)
                    said = mask_values(f"{type(crash).__name__}: {crash}", args)
                    message = f"pykickstart cannot read this {args[0]} line for {target}: {said}"
                    raise KickstartParseError(message, lineno=lineno) from None
            for warning in caught:
                error(lineno, mask_values(str(warning.message).strip(), args))
            return result

        # Not followed: an included file is often written by %pre on the installed
        # host. What it brings in cannot be told, so what seems missing may not be.
        def _handleInclude(self, f: str) -> None:
            includes.append(f)

        # pykickstart reports shlex's error without a line: count the lines as they
        # are read, so the line being split when it fails is known in one pass.
        def readKickstartFromString(self, s: str, reset: bool = True) -> None:
            if reset:
                self._reset()
            self._stateMachine(lines)

    lines = CountingLines([*text.splitlines(True), ""])  # "": as pykickstart's own reader
    parser = _CollectingParser(handler, followIncludes=False, errorsAreFatal=False)
    read_to_the_end = True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            parser.readKickstartFromString(text)
        except KickstartError as problem:  # fatal: unknown sections and the like
            error(problem.lineno, problem.message)
            read_to_the_end = False
        except ValueError as problem:  # shlex: a quote left open; pykickstart says no line
            where = f"{source}:{lines.number}"
            raise InvalidInput(f"{where}: cannot split the line: {problem}") from None
    for warning in caught:
        # ksvalidator turns parse and deprecation warnings into errors; so do we.
        found = _LINE.search(str(warning.message))
        error(int(found.group(1)) if found else None, str(warning.message).strip())
    # Shown beside the errors too: fixing those should not be the way to learn of these.
    _anaconda_checks(handler, target, report, read_to_the_end and not includes, failed_headers)
    report.findings.sort(key=lambda f: (f.line or 0, f.severity))
    return report


def _anaconda_checks(
    handler: Any, target: str, report: Report, read_to_the_end: bool, failed_headers: Set[str]
) -> None:
    """What pykickstart accepts but anaconda rejects or asks about.

    A command whose line has an error still counts as given (pykickstart marks
    it seen before parsing its arguments), and so does a section whose header
    has one (``failed_headers``). After a fatal error the rest of the
    file was never read, and an %include (often of a file %pre writes) was
    not: what it lacks cannot be told then, so only what was read is looked at.
    """
    if not is_legacy(target):
        for logvol in handler.logvol.dataList():
            if (logvol.fstype or "").lower() == "none" and not logvol.thin_pool:
                message = FSTYPE_NONE.format(mount=logvol.mountpoint)
                report.findings.append(Finding(report.source, logvol.lineno, "warning", message))
    if not read_to_the_end:
        return
    for what, commands in _UNATTENDED:
        if not any(getattr(getattr(handler, name, None), "seen", False) for name in commands):
            message = NOT_UNATTENDED.format(what=what)
            report.findings.append(Finding(report.source, None, "warning", message))
    image = any(getattr(getattr(handler, name, None), "seen", False) for name in _IMAGE_SOURCES)
    if not handler.packages.seen and "%packages" not in failed_headers and not image:
        message = NOT_UNATTENDED.format(what="%packages section")
        report.findings.append(Finding(report.source, None, "warning", message))


def check_file(path: Path, target: str = DEFAULT_TARGET) -> Report:
    return check_text(read_input_text(path), target, str(path))


def template_names() -> List[str]:
    """The built-in templates (files starting with _ are partials)."""
    return sorted(
        p.name[: -len(TEMPLATE_SUFFIX)]
        for p in _TEMPLATE_DIR.glob(f"*{TEMPLATE_SUFFIX}")
        if not p.name.startswith("_")
    )


class _TemplateFailed(InvalidInput):
    """A template's own fail(): render() says which template and line called it."""


def _fail(message: object) -> None:
    raise _TemplateFailed(str(message))


def render(template: str, variables: Mapping[str, str], target: str = DEFAULT_TARGET) -> str:
    """Render a built-in template (``minimal``, ``lvm``) or a template file path."""
    import jinja2

    for name, value in variables.items():
        check_value_characters(name, value)
    _handler(target)  # unknown targets fail before rendering
    path = Path(template)
    info = stat_named(f"TEMPLATE {template!r}", path)
    if info is not None and stat.S_ISREG(info.st_mode):
        search, name = [str(path.resolve().parent), str(_TEMPLATE_DIR.parent)], path.name
    elif template in template_names():
        search, name = [str(_TEMPLATE_DIR.parent)], f"kickstart/{template}{TEMPLATE_SUFFIX}"
    else:
        known = ", ".join(template_names())
        raise InvalidInput(f"no template {template!r} (built-in: {known}; or a file path)")
    templates = environment(search)
    params = Params(dict(variables), template)
    templates.globals["fail"] = _fail
    # --var values reach the template only through param()/require(), typed
    # (see mgmt_pkg.kickstart_types): never as bare context variables.
    context: Dict[str, Any] = {
        "target": target.upper(),
        "modern": has_modern_syntax(target),
        "fstype_none_ok": is_legacy(target),
        "sshkey_command": "sshkey" in _handler(target).commands,
        "param": params.param,
        "require": params.require,
    }
    try:
        text = templates.get_template(name).render(context)
    except _TemplateFailed as error:
        raise InvalidInput(f"{failed_at(template, search, error)}: {error}") from None
    except TemplateUnreadable as error:
        where = failed_at(template, search, error)  # the include's line, if one asked for it
        raise InvalidInput(f"{where}: {error}" if where != template else str(error)) from None
    except MgmtPkgError:
        raise  # param(), require(), fail() and the loader already say what is wrong
    except RecursionError as error:
        raise InvalidInput(endless(template, error)) from None
    except jinja2.UndefinedError as error:
        where = failed_at(template, search, error)
        missing = _UNDECLARED.fullmatch(str(error))
        if missing is None:  # u.nope.deeper: "'str object' has no attribute 'nope'"
            raise InvalidInput(f"{where}: {error}") from None
        name = missing.group(1)
        raise InvalidInput(
            f"{where}: uses {name!r} without declaring it: "
            f'{{% set {name} = param("{name}", "TYPE") %}} (types: {", ".join(TYPES)})'
        ) from None
    except jinja2.TemplateError as error:
        # A syntax error says its file and line itself: maybe an included file's.
        line = getattr(error, "lineno", None)
        shown = shown_as(template, search, getattr(error, "filename", None) or "") or template
        where = f"{shown}:{line}" if line else failed_at(template, search, error)
        raise InvalidInput(f"{where}: {error}") from None
    except Exception as error:
        # Python raising inside the template ({{ "a" + 1 }}, {{ 1/0 }}, require("url")
        # without its type) is a fault of the template, not of mgmt-pkg: bad input.
        where = failed_at(template, search, error)
        raise InvalidInput(f"{where}: {type(error).__name__}: {error}") from None
    params.check_all_declared()
    # Second guard, after check_characters: the template's own text or an include.
    odd = odd_line_break(text)
    if odd is not None:
        raise InvalidInput(
            f"{template}: the rendered {odd}, a line break other than \\n that pykickstart "
            "would split at into a line of its own"
        )
    return text
