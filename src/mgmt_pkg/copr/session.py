"""A connection to one COPR instance: the client, the target project, and error translation.

The copr library reports everything as CoprException subclasses (and lets a few
requests errors through); here they become MgmtPkgError with one line that
says what we were doing and where, which the CLI prints without a traceback.
"""

from __future__ import annotations

import os
import re
import shlex
import threading
import time
import urllib.parse
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, Optional, Sequence, Tuple

from mgmt_pkg.copr.config import load_config
from mgmt_pkg.errors import InvalidInput, MgmtPkgError

__all__ = [
    "CoprFailed",
    "CoprSession",
    "CoprUnavailable",
    "Target",
    "check_chroots",
    "parse_target",
]

_OWNER = r"@?[A-Za-z0-9][A-Za-z0-9_.-]*"
_PROJECT = r"[A-Za-z0-9][A-Za-z0-9_.+-]*"
# Whole-string matches (fullmatch) everywhere: "$" also matches before a final
# newline, so re.match(r"...$") takes "alice/proj\n".
_TARGET = re.compile(rf"(?P<owner>{_OWNER})/(?P<project>{_PROJECT})")
# COPR's chroots are NAME-VERSION-ARCH: fedora-rawhide-x86_64, epel-9-aarch64,
# centos-stream-9-x86_64, opensuse-leap-15.5-x86_64. Only the shape is checked
# here (the server knows which exist); it keeps an empty or mistyped value from
# being sent, or from silently meaning "every chroot".
_CHROOT = re.compile(r"[a-z0-9][a-z0-9_.+]*(?:-[a-z0-9_.+]+)+-[a-z0-9_]+", re.ASCII)


class CoprFailed(MgmtPkgError):
    """COPR refused or failed a request, or could not be reached (exit 1)."""


class CoprUnavailable(CoprFailed):
    """No answer from COPR, or an error page from a server in trouble (HTTP 5xx):
    unlike a refusal, asking again later may work."""


@dataclass(frozen=True)
class Target:
    """OWNER/PROJECT; an owner starting with @ is a group."""

    owner: str
    project: str

    def __str__(self) -> str:
        return f"{self.owner}/{self.project}"

    def web_path(self) -> str:
        if self.owner.startswith("@"):
            return f"coprs/g/{self.owner[1:]}/{self.project}"
        return f"coprs/{self.owner}/{self.project}"


def parse_target(text: str) -> Target:
    match = _TARGET.fullmatch(text or "")
    if match is None:
        raise InvalidInput(f"{text!r}: expected OWNER/PROJECT (e.g. alice/mgmt or @group/mgmt)")
    return Target(match["owner"], match["project"])


def check_chroots(option: str, chroots: Sequence[str]) -> None:
    """Each chroot must look like NAME-VERSION-ARCH, and be given once; InvalidInput
    naming ``option`` if not."""
    for chroot in chroots:
        if chroots.count(chroot) > 1:
            raise InvalidInput(f"{option} {chroot!r}: given more than once")
        if not _CHROOT.fullmatch(chroot):
            raise InvalidInput(
                f"{option} {chroot!r}: not a chroot name (NAME-VERSION-ARCH, "
                "e.g. fedora-rawhide-x86_64 or epel-9-x86_64)"
            )


# The copr library sends its requests without a timeout: a server that takes the
# connection and never answers held the command for ever (--timeout counts only
# between polls). Each call is bounded; the upload by the time without progress
# (an SRPM takes as long as it takes), and then by the wait for its answer.
ANSWER_TIMEOUT = 120.0


class CoprSession:
    """The copr.v3 client for one config file, plus the URLs users need to see."""

    def __init__(self, config_path: Optional[Path] = None):
        self.config_path = config_path
        self.config: Dict[str, Any] = load_config(config_path)
        self.url: str = self.config["copr_url"]
        self.login: str = self.config["login"]
        self._client = None

    @property
    def client(self):
        if self._client is None:
            from copr.v3 import Client

            with self.errors("COPR client"):
                self._client = Client(self.config)
        return self._client

    def answered(
        self,
        call: Callable[..., Any],
        *args: Any,
        moved_at: Optional[Callable[[], float]] = None,
        deadline: Optional[float] = None,
        **kwargs: Any,
    ) -> Any:
        """``call(*args, **kwargs)``'s result, or CoprUnavailable once ANSWER_TIMEOUT
        passed without an answer (the call is left to its daemon thread: the process
        ends). ``moved_at`` gives the time.monotonic() of the call's last progress
        (bytes of an upload going out): the wait counts from then. ``deadline``
        (a time.monotonic()) ends the wait sooner: the user's --timeout."""
        outcome: Dict[str, Any] = {}

        def run() -> None:
            try:
                outcome["value"] = call(*args, **kwargs)
            except BaseException as error:  # raised again below, in the caller's thread
                outcome["error"] = error

        worker = threading.Thread(target=run, name="copr-call", daemon=True)
        worker.start()
        started = last = time.monotonic()
        while worker.is_alive():
            last = max(started, moved_at()) if moved_at else started
            ends = (
                last + ANSWER_TIMEOUT if deadline is None else min(deadline, last + ANSWER_TIMEOUT)
            )
            left = ends - time.monotonic()
            if left <= 0:
                break
            worker.join(left)
        if worker.is_alive():
            waited = min(ANSWER_TIMEOUT, time.monotonic() - last)
            raise CoprUnavailable(f"{self.url} did not answer within {waited:.0f} s")
        if "error" in outcome:
            raise outcome["error"]
        return outcome["value"]

    def config_option(self) -> str:
        """The --config option to repeat in a command we suggest ("" for the default)."""
        if self.config_path is None:
            return ""
        # Absolute: the command may well be run from another folder.
        return f" --config {shlex.quote(os.path.abspath(self.config_path))}"

    def api_url(self, endpoint: str) -> str:
        return f"{self.url}/api_3/{endpoint.lstrip('/')}"

    def build_url(self, target: Target, build_id: int) -> str:
        return f"{self.url}/{target.web_path()}/build/{build_id}/"

    def project_url(self, target: Target) -> str:
        return f"{self.url}/{target.web_path()}/"

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Turn the copr library's and requests' exceptions into one-line CoprFailed."""
        import requests
        from copr.v3 import CoprAuthException, CoprException

        try:
            yield
        except CoprAuthException as error:
            # COPR answers 403 both to a bad token and to a good one without the
            # right (another owner's project): only its words tell them apart.
            said = _one_line(error)
            if not _BAD_LOGIN.search(said):
                raise CoprFailed(f"{doing}: {self.url} refused {self.login!r}: {said}") from error
            raise CoprFailed(
                f"{doing}: {self.url} refused the credentials of {self.login!r} "
                f"(check login and token in {self.config['config_path']}): {said}"
            ) from error
        except CoprException as error:
            if _CONNECTION_FAILED.fullmatch(str(error)) and _response(error) is None:
                # The library's words for any requests.ConnectionError: refused,
                # reset, or closed mid-request (a restart, a proxy) after all.
                raise CoprUnavailable(
                    f"{doing}: cannot reach {self.url}: no connection, or it was dropped"
                ) from error
            page, status = self._error_page(error)
            failed = CoprUnavailable if status >= 500 else CoprFailed
            raise failed(f"{doing}: {page or _one_line(error)}") from error
        except requests.RequestException as error:
            raise CoprUnavailable(
                f"{doing}: cannot reach {self.url}: {_one_line(error)}"
            ) from error

    def _error_page(self, error: Exception) -> Tuple[Optional[str], int]:
        """What an answer without api_3's JSON body was, or None if it had one;
        and the answer's HTTP status (0 without one).

        COPR says what went wrong in JSON; a crashed frontend or the web server
        or proxy in front of it sends an HTML page, which the copr library
        reports as "Response is not in JSON format, there is probably a bug in
        the API code" (or, for a 504, as the bare reason), naming no server.
        """
        response = _response(error)
        if response is None:
            return None, 0
        try:
            response.json()
            return None, response.status_code
        except ValueError:
            pass
        request = response.request
        asked = f" to {request.method} {urllib.parse.urlsplit(request.url).path}" if request else ""
        said = f"HTTP {response.status_code} ({response.reason or 'no reason given'}){asked}"
        if response.status_code < 400:
            said += ", not with api_3's JSON (does copr_url name a COPR?)"
        elif response.status_code in (404, 405):
            # COPR answers its unknown api_3 paths in JSON: this page came from
            # elsewhere, as with a copr_url copied from a project's web page.
            said += f" (is copr_url, {self.url}, COPR's address, without a path?)"
        return f"COPR at {self.url}: the server answered {said}", response.status_code


# COPR's words for a login it does not take ("Login invalid/expired. Please visit
# the API page to get a token"); a missing right names the project instead.
_BAD_LOGIN = re.compile(r"\blogin\b|\btoken\b|expired|authenticat", re.IGNORECASE)


# What the copr library raises instead of requests' ConnectionError, whatever its cause.
_CONNECTION_FAILED = re.compile(r"Unable to connect to \S+\.")


def _response(error: Exception) -> Any:
    """The requests response a copr library exception came with, or None."""
    result = getattr(error, "result", None)
    return result.get("__response__") if isinstance(result, dict) else None


def _one_line(error: Exception) -> str:
    lines = [line.strip(" -") for line in str(error).strip().splitlines() if line.strip(" -")]
    return "; ".join(lines) or type(error).__name__
