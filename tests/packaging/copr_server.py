"""A local COPR frontend speaking the api_3 subset that the copr client uses (REFERENCE.md §4).

Threaded http.server on 127.0.0.1 with in-memory state. It is strict where COPR
is: HTTP Basic login:token on every write, a JSON {"error": ...} body with 403
for bad credentials and 404 for a missing project, multipart uploads whose
"pkgs" part must be a real source RPM (read back with rpmfile). A build's state
moves one step each time it is read: importing -> pending -> running -> the end
state, so a client that follows it sees every state without anyone sleeping.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import io
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Dict, List, Optional, Set, Tuple
from urllib.parse import parse_qs, urlsplit

import rpmfile

RUNNING_STATES = ("importing", "pending", "running")


@dataclass
class Build:
    id: int
    owner: str
    project: str
    chroots: List[str]
    package: Tuple[str, str, str]  # name, version, release
    submitter: str
    end_state: str
    steps: int = 0
    uploaded: bytes = b""
    stuck: bool = False  # stays "running" for ever, for timeouts

    @property
    def state(self) -> str:
        if self.steps < len(RUNNING_STATES) or self.stuck:
            return RUNNING_STATES[min(self.steps, len(RUNNING_STATES) - 1)]
        return self.end_state

    def as_json(self, base_url: str) -> dict:
        name, version, release = self.package
        return {
            "id": self.id,
            "state": self.state,
            "ownername": self.owner,
            "projectname": self.project,
            "project_dirname": self.project,
            "repo_url": f"{base_url}/results/{self.owner}/{self.project}",
            "source_package": {
                "name": name,
                "version": f"{version}-{release}",
                "url": f"{base_url}/tmp/{name}-{version}-{release}.src.rpm",
            },
            "submitted_on": 1700000000 + self.id,
            "started_on": None if self.steps < 2 else 1700000100 + self.id,
            "ended_on": None if self.state in RUNNING_STATES else 1700000200 + self.id,
            "submitter": self.submitter,
            "chroots": self.chroots,
            "is_background": False,
        }


@dataclass
class CoprState:
    """What the fake frontend knows; tests read and arrange it directly."""

    users: Dict[str, Tuple[str, str]] = field(default_factory=dict)  # login -> (username, token)
    projects: Dict[Tuple[str, str], List[str]] = field(default_factory=dict)  # -> chroots
    builds: Dict[int, Build] = field(default_factory=dict)
    failing_packages: Set[str] = field(default_factory=set)
    stuck_packages: Set[str] = field(default_factory=set)
    requests: List[Tuple[str, str]] = field(default_factory=list)  # (method, path)
    # path -> HTTP status answered with an HTML page, as a crashed frontend or the
    # web server in front of it does (no api_3 JSON body)
    error_pages: Dict[str, int] = field(default_factory=dict)
    # paths whose requests are read whole and never answered (a frontend that
    # hangs, a link that died after the last byte), until ``release`` is set
    silent_paths: Set[str] = field(default_factory=set)
    release: threading.Event = field(default_factory=threading.Event)
    silent_for: float = 60.0  # then the connection is closed, unanswered
    # paths whose requests are read and then the connection closed, unanswered
    # (a frontend restarting, a proxy dropping the connection)
    dropped_paths: Set[str] = field(default_factory=set)
    # path -> how many of its requests are answered before the rest are dropped
    drop_after: Dict[str, int] = field(default_factory=dict)
    # paths whose request bodies are not read at all (a link that stalls mid-upload)
    stalled_paths: Set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    # --- plumbing -------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        state = self.server.state
        with state.lock:
            state.requests.append((method, url.path))
        seen = sum(1 for _, path in state.requests if path == url.path)
        if url.path in state.dropped_paths or seen > state.drop_after.get(url.path, seen):
            self._read_body()
            self.close_connection = True
            return
        if url.path in state.silent_paths | state.stalled_paths:
            if url.path not in state.stalled_paths:
                self._read_body()
            state.release.wait(state.silent_for)
            self.close_connection = True
            return
        if url.path in state.error_pages or not url.path.startswith("/api_3/"):
            # COPR's web pages (and its 404s outside api_3) are HTML.
            self._read_body()
            self._error_page(state.error_pages.get(url.path, 404))
            return
        try:
            body = self._read_body()
            status, payload = self._route(method, url.path, parse_qs(url.query), body)
        except _ApiError as error:
            status, payload = error.status, {"error": str(error)}
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error_page(self, status: int) -> None:
        reason = self.responses.get(status, ("Error",))[0]
        data = f"<html><body><h1>{status} {reason}</h1></body></html>\n".encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _user(self) -> str:
        """The username behind HTTP Basic login:token, or 403 as COPR answers."""
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            raise _ApiError(403, "Login invalid/expired. Please visit the API page to get a token")
        login, _, token = base64.b64decode(header[6:]).decode().partition(":")
        known = self.server.state.users.get(login)
        if known is None or known[1] != token:
            raise _ApiError(403, "Login invalid/expired. Please visit the API page to get a token")
        return known[0]

    def _project(self, owner: str, name: str) -> List[str]:
        chroots = self.server.state.projects.get((owner, name))
        if chroots is None:
            raise _ApiError(404, f"Project {owner}/{name} does not exist.")
        return chroots

    def _check_rights(self, user: str, owner: str) -> None:
        if owner != user:
            raise _ApiError(403, f"User '{user}' can not build in {owner}'s projects.")

    # --- api_3 ----------------------------------------------------------------------------

    def _route(self, method: str, path: str, query: dict, body: bytes) -> Tuple[int, dict]:
        state = self.server.state
        base = self.server.base_url
        if method == "GET" and path == "/api_3/":
            return 200, {"version": 3, "message": "local api_3 for tests"}
        if method == "GET" and path == "/api_3/auth-check":
            return 200, {"name": self._user()}
        match = re.fullmatch(r"/api_3/project/add/(?P<owner>[^/]+)", path)
        if method == "POST" and match:
            user = self._user()
            owner = match["owner"]
            self._check_rights(user, owner)
            data = json.loads(body or b"{}")
            name, chroots = data.get("name"), data.get("chroots") or []
            if not name or not chroots:
                raise _ApiError(400, "name: This field is required.\nchroots: Pick at least one")
            exist_ok = query.get("exist_ok", ["False"])[0] == "True"
            with state.lock:
                if (owner, name) in state.projects and not exist_ok:
                    raise _ApiError(400, f"You already have a project named '{name}'.")
                state.projects.setdefault((owner, name), list(chroots))
            return 200, {"id": len(state.projects), "name": name, "ownername": owner,
                         "full_name": f"{owner}/{name}", "chroot_repos": {}}  # fmt: skip
        if method == "POST" and path == "/api_3/build/check-before-build":
            user = self._user()
            data = json.loads(body or b"{}")
            chroots = self._project(data.get("ownername"), data.get("projectname"))
            self._check_rights(user, data["ownername"])
            self._check_chroots(data.get("chroots"), chroots)
            return 200, {"message": "It should be safe to submit a build like this"}
        if method == "POST" and path == "/api_3/build/create/upload":
            return 200, self._upload(body).as_json(base)
        match = re.fullmatch(r"/api_3/build/(?P<id>\d+)/?", path)
        if method == "GET" and match:
            build = state.builds.get(int(match["id"]))
            if build is None:
                raise _ApiError(404, f"Build {match['id']} does not exist.")
            with state.lock:
                shown = build.as_json(base)
                build.steps += 1  # the next read sees the next state
            return 200, shown
        raise _ApiError(404, f"No such api_3 endpoint: {method} {path}")

    @staticmethod
    def _check_chroots(wanted: Optional[List[str]], enabled: List[str]) -> None:
        unknown = [c for c in wanted or [] if c not in enabled]
        if unknown:
            raise _ApiError(400, f"chroots: {', '.join(unknown)} not enabled in this project")

    def _upload(self, body: bytes) -> Build:
        user = self._user()
        parts = self._multipart(body)
        if "json" not in parts or "pkgs" not in parts:
            raise _ApiError(400, "multipart body needs the parts 'json' and 'pkgs'")
        data = json.loads(parts["json"])
        owner, project = data.get("ownername"), data.get("projectname")
        enabled = self._project(owner, project)
        self._check_rights(user, owner)
        self._check_chroots(data.get("chroots"), enabled)
        package = _read_srpm(parts["pkgs"])
        state = self.server.state
        with state.lock:
            build = Build(
                id=len(state.builds) + 1,
                owner=owner,
                project=project,
                chroots=list(data.get("chroots") or enabled),
                package=package,
                submitter=user,
                end_state="failed" if package[0] in state.failing_packages else "succeeded",
                uploaded=parts["pkgs"],
                stuck=package[0] in state.stuck_packages,
            )
            state.builds[build.id] = build
        return build

    def _multipart(self, body: bytes) -> Dict[str, bytes]:
        content_type = self.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data"):
            raise _ApiError(400, "expected multipart/form-data")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + body
        )
        parts = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            parts[name] = part.get_payload(decode=True)
        return parts


def _read_srpm(data: bytes) -> Tuple[str, str, str]:
    try:
        with rpmfile.open(fileobj=io.BytesIO(data)) as package:
            headers = package.headers
    except Exception as error:
        raise _ApiError(400, f"pkgs: not an RPM ({type(error).__name__})") from error
    if headers.get("sourcepackage") != 1 or "sourcerpm" in headers:
        raise _ApiError(400, "pkgs: not a source RPM")
    return tuple(headers[key].decode() for key in ("name", "version", "release"))


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: CoprState
    base_url: str


class CoprServer:
    """Context manager: a running local COPR; ``.url`` is what copr_url points at."""

    def __init__(self, state: Optional[CoprState] = None):
        self.state = state or CoprState()
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = self.state
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}"
        self._server.base_url = self.url
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> CoprServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.state.release.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def write_config(self, path, login: str, token: str, username: Optional[str] = None) -> None:
        """A ~/.config/copr for this server; plain HTTP needs encrypted = False."""
        path.write_text(
            "[copr-cli]\n"
            f"login = {login}\n"
            f"username = {username or login}\n"
            f"token = {token}\n"
            f"copr_url = {self.url}\n"
            "encrypted = False\n"
        )
