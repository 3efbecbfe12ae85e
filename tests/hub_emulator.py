"""A small local Hugging Face Hub: the slice of the Hub HTTP API that ``huggingface_hub.HfApi`` 2.4 needs.

It speaks whoami, repo create/delete/info, refs, branches, tags, preupload, the NDJSON commit endpoint, the Git LFS
batch API (basic transfer, uploads land back on the emulator), tree / paths-info listings and file download
(``/resolve/``, HEAD and GET, Range), and Hugging Face Jobs (``tests/hub_emulator_jobs.py``: a job's command runs as
local processes). State lives in memory: every commit is a 40-hex sha holding a copy-on-write
dict of path -> blob; branches and tags point at commits.

Xet is never advertised (no ``X-Xet-*`` headers, no ``xetHash``, no "xet" transfer), but huggingface_hub 2.4 picks
Xet for *uploads* whenever the ``hf_xet`` package is importable, without asking the server. ``HF_HUB_DISABLE_XET=1``
turns that off; ``start_emulator`` sets it in the environment and on ``huggingface_hub.constants`` (the constant is
read once at import, ``is_xet_available()`` reads the constant at call time) and restores both on ``stop()``.

Use from tests::

    with start_emulator() as emu:
        api = HfApi(endpoint=emu.url, token="hf_write_alice_token")

or in the foreground: ``python -m tests.hub_emulator --port 8765`` then ``HF_ENDPOINT=http://127.0.0.1:8765``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatch
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from tests.hub_emulator_jobs import JOB_ROUTES, JobsRoutes, JobsState

DEFAULT_TOKENS: dict[str, dict[str, Any]] = {
    "hf_write_alice_token": {"user": "alice", "orgs": ["team"], "role": "write"},
    "hf_read_alice_token": {"user": "alice", "orgs": ["team"], "role": "read"},
    "hf_write_bob_token": {"user": "bob", "orgs": [], "role": "write"},
    # Jobs (tests/hub_emulator_jobs.py): a token without the Jobs permission, and a user whose plan has no Jobs.
    "hf_nojobs_alice_token": {"user": "alice", "orgs": ["team"], "role": "write", "jobs": False},
    "hf_write_carol_token": {"user": "carol", "orgs": [], "role": "write", "plan": "free"},
}

REPO_TYPES = ("model", "dataset", "space")
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024
LFS_PATTERNS = (
    "*.safetensors", "*.bin", "*.pt", "*.pth", "*.ckpt", "*.h5", "*.onnx", "*.msgpack", "*.pkl", "*.pickle",
    "*.npy", "*.npz", "*.gguf", "*.zip", "*.gz", "*.tar", "*.tgz", "*.7z", "*.parquet", "*.arrow", "*.faiss",
    "*.index", "*.model", "*.tflite", "*.ot", "*.wasm", "*.png", "*.jpg", "*.jpeg", "*.wav", "*.mp3", "*.mp4",
)  # fmt: skip
GITATTRIBUTES = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in LFS_PATTERNS).encode()
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_REPO = r"(?P<ns>[^/]+)/(?P<name>[^/]+)"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _valid_name(name: str) -> bool:
    return bool(_NAME_RE.match(name)) and "--" not in name and ".." not in name and not name.endswith(".git")


def _folder_entry(path: str) -> dict[str, Any]:
    return {"type": "directory", "path": path, "oid": hashlib.sha1(path.encode()).hexdigest()}


def is_lfs_path(path: str, size: int) -> bool:
    """The emulator's rule for which files go to LFS: big ones and typical binary formats."""
    return size >= LFS_SIZE_THRESHOLD or any(fnmatch(path.rsplit("/", 1)[-1], pat) for pat in LFS_PATTERNS)


@dataclass(frozen=True)
class Blob:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def git_oid(self) -> str:
        """The git blob sha1 of what git stores: the content, or the LFS pointer for LFS files."""
        stored = self.pointer if self.lfs else self.data
        return hashlib.sha1(b"blob %d\0" % len(stored) + stored).hexdigest()

    @property
    def pointer(self) -> bytes:
        return (
            f"version https://git-lfs.github.com/spec/v1\noid sha256:{self.sha256}\nsize {len(self.data)}\n".encode()
        )


@dataclass
class Commit:
    sha: str
    parents: list[str]
    title: str
    message: str
    date: str
    files: dict[str, Blob]


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    sdk: str | None
    created_at: str
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.repo_id.split("/", 1)[0]

    def resolve(self, revision: str) -> Commit | None:
        sha = self.branches.get(revision) or self.tags.get(revision)
        if sha is None and revision.startswith("refs/heads/"):
            sha = self.branches.get(revision.removeprefix("refs/heads/"))
        if sha is None and re.fullmatch(r"[0-9a-f]{7,40}", revision):
            sha = next((s for s in self.commits if s.startswith(revision)), None)
        return self.commits.get(sha) if sha else None


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, extra: dict[str, Any] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.extra = status, message, code, extra or {}


class EntryNotFound(HubError):
    def __init__(self, sha: str, path: str):
        super().__init__(404, f"Entry not found: {path}", "EntryNotFound")
        self.sha = sha


@dataclass
class HubState:
    tokens: dict[str, dict[str, Any]]
    repos: dict[tuple[str, str], Repo] = field(default_factory=dict)
    lfs_objects: dict[str, bytes] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)
    jobs_state: JobsState = field(default_factory=JobsState)
    _counter: int = 0

    def new_sha(self, seed: str) -> str:
        self._counter += 1
        return hashlib.sha1(f"{seed}:{self._counter}:{time.time_ns()}".encode()).hexdigest()

    def commit(self, repo: Repo, branch: str, title: str, message: str, files: dict[str, Blob]) -> Commit:
        parent = repo.branches.get(branch)
        c = Commit(self.new_sha(repo.repo_id), [parent] if parent else [], title, message, _now(), files)
        repo.commits[c.sha] = c
        repo.branches[branch] = c.sha
        return c


class _Handler(JobsRoutes, BaseHTTPRequestHandler):
    server_version = "HubEmulator/1.0"
    protocol_version = "HTTP/1.1"
    state: HubState  # set on the subclass made per server
    hub_error = HubError

    def log_message(self, format: str, *args: Any) -> None:
        if os.environ.get("HUB_EMULATOR_VERBOSE"):
            super().log_message(format, *args)

    # ----- plumbing
    @property
    def base_url(self) -> str:
        host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
        return f"http://{host}"

    def _body(self) -> bytes:
        return self._raw

    def _read_body(self) -> bytes:
        """Read the whole request body up front, so an early error never leaves bytes on a kept-alive socket."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _json_body(self) -> dict[str, Any]:
        raw = self._body()
        try:
            return json.loads(raw) if raw else {}
        except json.JSONDecodeError as err:
            raise HubError(400, f"Invalid JSON body: {err}") from err

    def _send(
        self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, ctype: str = "application/json"
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _error(self, err: HubError) -> None:
        headers = {"X-Error-Message": err.message}
        if err.code:
            headers["X-Error-Code"] = err.code
        if isinstance(err, EntryNotFound):
            headers["X-Repo-Commit"] = err.sha  # lets the client cache the file's absence for that commit
        self._json(err.status, {"error": err.message, **err.extra}, headers)

    def _identity(self) -> dict[str, Any] | None:
        auth = self.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
        return {**self.state.tokens[token], "token": token} if token in self.state.tokens else None

    def _require_auth(self) -> dict[str, Any]:
        ident = self._identity()
        if ident is None:
            has_token = bool(self.headers.get("Authorization"))
            msg = "Invalid credentials in Authorization header" if has_token else "You must be authenticated"
            raise HubError(401, msg)
        return ident

    def _can_read(self, repo: Repo) -> bool:
        ident = self._identity()
        return not repo.private or (ident is not None and repo.namespace in [ident["user"], *ident["orgs"]])

    def _get_repo(self, repo_type: str, repo_id: str) -> Repo:
        repo = self.state.repos.get((repo_type, repo_id))
        if repo is None or not self._can_read(repo):
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def _write_repo(self, repo_type: str, repo_id: str) -> Repo:
        ident = self._require_auth()
        repo = self._get_repo(repo_type, repo_id)
        self._check_write(ident, repo.namespace)
        return repo

    @staticmethod
    def _check_write(ident: dict[str, Any], namespace: str) -> None:
        if ident.get("role") != "write":
            raise HubError(403, "This token has read-only access")
        if namespace not in [ident["user"], *ident["orgs"]]:
            raise HubError(403, f"You don't have the rights to write to the namespace {namespace}")

    def _resolve(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(unquote(revision))
        if commit is None:
            raise HubError(404, f"Invalid rev id: {unquote(revision)}", "RevisionNotFound")
        return commit

    # ----- dispatch
    def do_GET(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        parts = urlsplit(self.path)
        path, query = parts.path, {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self._raw = self._read_body()
        try:
            for method, pattern, handler in _JOB_ROUTES:  # outside the lock: a log stream lasts as long as its job
                match = pattern.fullmatch(path) if method == self.command else None
                if match:
                    handler(self, query=query, **match.groupdict())
                    return
            with self.state.lock:
                for method, pattern, handler in _ROUTES:
                    if method != self.command and not (method == "GET" and self.command == "HEAD"):
                        continue
                    match = pattern.fullmatch(path)
                    if match:
                        handler(self, query=query, **match.groupdict())
                        return
            raise HubError(404, f"No route for {self.command} {path}")
        except HubError as err:
            self._error(err)
        except Exception as err:  # pragma: no cover - a bug in the emulator should show, not hang the client
            self._error(HubError(500, f"Emulator error: {type(err).__name__}: {err}"))

    # ----- api routes
    def validate_yaml(self, query: dict[str, str]) -> None:
        """README.md metadata check (the client calls it before uploading a README): YAML that parses is fine."""
        import yaml

        body = self._json_body()
        content = body.get("content") or ""
        # Like the Hub: only the metadata block between the leading '---' lines is YAML; the rest is markdown.
        match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.DOTALL)
        try:
            yaml.safe_load(match.group(1) if match else "")
        except yaml.YAMLError as err:
            self._json(400, {"error": f"Invalid YAML: {err}"})
            return
        self._json(200, {"errors": [], "warnings": []})

    def whoami(self, query: dict[str, str]) -> None:
        ident = self._require_auth()
        self._json(
            200,
            {
                "type": "user",
                "id": hashlib.md5(ident["user"].encode()).hexdigest()[:24],
                "name": ident["user"],
                "fullname": ident["user"].title(),
                "email": f"{ident['user']}@example.com",
                "emailVerified": True,
                "canPay": False,
                "isPro": False,
                "orgs": [{"type": "org", "name": o, "fullname": o, "roleInOrg": "admin"} for o in ident["orgs"]],
                "auth": {
                    "type": "access_token",
                    "accessToken": {"displayName": "emulator", "role": ident["role"], "createdAt": _now()},
                },
            },
        )

    def create_repo(self, query: dict[str, str]) -> None:
        ident = self._require_auth()
        body = self._json_body()
        repo_type = body.get("type") or "model"
        name, namespace = body.get("name") or "", body.get("organization") or ident["user"]
        if repo_type not in REPO_TYPES:
            raise HubError(400, f"Invalid repo type: {repo_type}")
        if not _valid_name(name) or not _valid_name(namespace):
            raise HubError(400, f"Invalid repo name: {namespace}/{name}")
        self._check_write(ident, namespace)
        repo_id = f"{namespace}/{name}"
        url = f"{self.base_url}/{URL_PREFIX[repo_type]}{repo_id}"
        if (repo_type, repo_id) in self.state.repos:
            raise HubError(409, f"You already created this {repo_type} repo: {repo_id}", extra={"url": url})
        visibility = body.get("visibility")
        private = visibility == "private" if visibility is not None else bool(body.get("private"))
        repo = Repo(repo_type, repo_id, private, body.get("sdk"), _now())
        self.state.repos[(repo_type, repo_id)] = repo
        self.state.commit(repo, "main", "initial commit", "", {".gitattributes": Blob(GITATTRIBUTES, False)})
        self._json(200, {"url": url, "name": repo_id, "id": repo_id})

    def delete_repo(self, query: dict[str, str]) -> None:
        ident = self._require_auth()
        body = self._json_body()
        repo_type = body.get("type") or "model"
        repo_id = f"{body.get('organization') or ident['user']}/{body.get('name')}"
        repo = self._get_repo(repo_type, repo_id)
        self._check_write(ident, repo.namespace)
        del self.state.repos[(repo_type, repo_id)]
        self._json(200, {})

    def repo_info(self, query: dict[str, str], rtype: str, ns: str, name: str, rev: str = "main") -> None:
        repo = self._get_repo(rtype, f"{ns}/{name}")
        commit = self._resolve(repo, rev)
        blobs = query.get("blobs", "").lower() in ("1", "true")
        siblings = []
        for path, blob in sorted(commit.files.items()):
            sib: dict[str, Any] = {"rfilename": path}
            if blobs:
                sib.update(size=len(blob.data), blobId=blob.git_oid)
                if blob.lfs:
                    sib["lfs"] = {"sha256": blob.sha256, "size": len(blob.data), "pointerSize": len(blob.pointer)}
            siblings.append(sib)
        info: dict[str, Any] = {
            "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.namespace,
            "sha": commit.sha,
            "lastModified": commit.date,
            "createdAt": repo.created_at,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "likes": 0,
            "tags": [],
            "siblings": siblings,
        }
        if rtype == "model":
            info.update(modelId=repo.repo_id, downloads=0, library_name=None)
        elif rtype == "dataset":
            info.update(downloads=0)
        else:
            info.update(sdk=repo.sdk, runtime={"stage": "NO_APP_FILE", "hardware": {"current": None}})
        self._json(200, info)

    def refs(self, query: dict[str, str], rtype: str, ns: str, name: str) -> None:
        repo = self._get_repo(rtype, f"{ns}/{name}")
        data = {
            "branches": [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": s} for b, s in repo.branches.items()],
            "tags": [{"name": t, "ref": f"refs/tags/{t}", "targetCommit": s} for t, s in repo.tags.items()],
            "converts": [],
            "pullRequests": [],
        }
        self._json(200, data)

    def commits(self, query: dict[str, str], rtype: str, ns: str, name: str, rev: str) -> None:
        repo = self._get_repo(rtype, f"{ns}/{name}")
        commit: Commit | None = self._resolve(repo, rev)
        out = []
        while commit is not None:
            out.append({"id": commit.sha, "title": commit.title, "message": commit.message, "date": commit.date})
            out[-1]["authors"] = [{"user": repo.namespace}]
            commit = repo.commits.get(commit.parents[0]) if commit.parents else None
        self._json(200, out)

    def create_branch(self, query: dict[str, str], rtype: str, ns: str, name: str, branch: str) -> None:
        repo = self._write_repo(rtype, f"{ns}/{name}")
        branch = unquote(branch)
        if branch in repo.branches:
            raise HubError(409, f"Branch {branch} already exists")
        start = self._json_body().get("startingPoint") or "main"
        repo.branches[branch] = self._resolve(repo, start).sha
        self._json(200, {})

    def delete_branch(self, query: dict[str, str], rtype: str, ns: str, name: str, branch: str) -> None:
        repo = self._write_repo(rtype, f"{ns}/{name}")
        if repo.branches.pop(unquote(branch), None) is None:
            raise HubError(404, f"Invalid rev id: {unquote(branch)}", "RevisionNotFound")
        self._json(200, {})

    def create_tag(self, query: dict[str, str], rtype: str, ns: str, name: str, rev: str) -> None:
        repo = self._write_repo(rtype, f"{ns}/{name}")
        tag = self._json_body().get("tag") or ""
        if not tag:
            raise HubError(400, "Missing tag name")
        if tag in repo.tags:
            raise HubError(409, f"Tag {tag} already exists")
        repo.tags[tag] = self._resolve(repo, rev).sha
        self._json(200, {})

    def delete_tag(self, query: dict[str, str], rtype: str, ns: str, name: str, rev: str) -> None:
        repo = self._write_repo(rtype, f"{ns}/{name}")
        if repo.tags.pop(unquote(rev), None) is None:
            raise HubError(404, f"Invalid rev id: {unquote(rev)}", "RevisionNotFound")
        self._json(200, {})

    def preupload(self, query: dict[str, str], rtype: str, ns: str, name: str, rev: str) -> None:
        repo = self._write_repo(rtype, f"{ns}/{name}")
        head = repo.resolve(unquote(rev))
        files = []
        for f in self._json_body().get("files", []):
            mode = "lfs" if is_lfs_path(f["path"], int(f.get("size", 0))) else "regular"
            existing = head.files.get(f["path"]) if head else None
            oid = (existing.sha256 if existing.lfs else existing.git_oid) if existing else None
            files.append({"path": f["path"], "uploadMode": mode, "shouldIgnore": False, "oid": oid})
        self._json(200, {"files": files, "commitOid": head.sha if head else None})

    def commit(self, query: dict[str, str], rtype: str, ns: str, name: str, rev: str) -> None:
        repo = self._write_repo(rtype, f"{ns}/{name}")
        if query.get("create_pr") in ("1", "true"):
            raise HubError(400, "Pull requests are not supported by the hub emulator")
        branch = unquote(rev)
        if branch not in repo.branches:
            raise HubError(404, f"Invalid rev id: {branch} (commits go to branches)", "RevisionNotFound")
        files = dict(repo.commits[repo.branches[branch]].files)
        header: dict[str, Any] = {}
        for line in self._body().splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            key, value = item.get("key"), item.get("value", {})
            if key == "header":
                header = value
            elif key == "file":
                files[value["path"]] = Blob(base64.b64decode(value["content"]), False)
            elif key == "lfsFile":
                data = self.state.lfs_objects.get(value["oid"])
                if data is None or len(data) != int(value["size"]):
                    raise HubError(422, f"LFS object {value['oid']} for {value['path']} was not uploaded")
                files[value["path"]] = Blob(data, True)
            elif key == "deletedFile":
                if files.pop(value["path"], None) is None:
                    raise HubError(404, f"File not found: {value['path']}", "EntryNotFound")
            elif key == "deletedFolder":
                prefix = value["path"].rstrip("/") + "/"
                for path in [p for p in files if p.startswith(prefix)]:
                    del files[path]
            else:
                raise HubError(400, f"Unsupported commit operation: {key}")
        if not header.get("summary"):
            raise HubError(400, "Missing commit summary")
        parent = header.get("parentCommit")
        if parent and parent != repo.branches[branch]:
            raise HubError(412, "A commit has happened since. Please refresh and try again.")
        c = self.state.commit(repo, branch, header["summary"], header.get("description", ""), files)
        url = f"{self.base_url}/{URL_PREFIX[rtype]}{repo.repo_id}/commit/{c.sha}"
        self._json(200, {"success": True, "commitOid": c.sha, "commitUrl": url, "pullRequestUrl": None})

    def _entries(self, commit: Commit, prefix: str, recursive: bool) -> list[dict[str, Any]]:
        prefix = prefix.strip("/")
        base = prefix + "/" if prefix else ""
        out: dict[str, dict[str, Any]] = {}
        for path, blob in sorted(commit.files.items()):
            if not path.startswith(base):
                continue
            rest = path[len(base) :]
            if "/" in rest and not recursive:
                folder = base + rest.split("/", 1)[0]
                out.setdefault(folder, _folder_entry(folder))
                continue
            if recursive:
                parts = rest.split("/")[:-1]
                for i in range(1, len(parts) + 1):
                    folder = base + "/".join(parts[:i])
                    out.setdefault(folder, _folder_entry(folder))
            out[path] = self._file_entry(path, blob)
        return list(out.values())

    @staticmethod
    def _file_entry(path: str, blob: Blob) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": "file", "path": path, "size": len(blob.data), "oid": blob.git_oid}
        if blob.lfs:
            entry["lfs"] = {"oid": blob.sha256, "size": len(blob.data), "pointerSize": len(blob.pointer)}
        return entry

    def tree(self, query: dict[str, str], rtype: str, ns: str, name: str, rev: str, path: str = "") -> None:
        repo = self._get_repo(rtype, f"{ns}/{name}")
        commit = self._resolve(repo, rev)
        path = unquote(path or "")
        if path and not any(p.startswith(path.rstrip("/") + "/") for p in commit.files):
            raise HubError(404, f"Folder not found: {path}", "EntryNotFound")
        self._json(200, self._entries(commit, path, query.get("recursive", "").lower() in ("1", "true")))

    def paths_info(self, query: dict[str, str], rtype: str, ns: str, name: str, rev: str) -> None:
        repo = self._get_repo(rtype, f"{ns}/{name}")
        commit = self._resolve(repo, rev)
        raw = self._body()
        ctype = self.headers.get("Content-Type", "")
        paths = json.loads(raw).get("paths", []) if "json" in ctype else parse_qs(raw.decode()).get("paths", [])
        out = []
        for p in paths:
            if p in commit.files:
                out.append(self._file_entry(p, commit.files[p]))
            elif any(f.startswith(p.rstrip("/") + "/") for f in commit.files):
                out.append(_folder_entry(p))
        self._json(200, out)

    # ----- lfs
    def lfs_batch(self, query: dict[str, str], prefix: str, ns: str, name: str) -> None:
        rtype = {"": "model", "datasets/": "dataset", "spaces/": "space"}[prefix or ""]
        self._write_repo(rtype, f"{ns}/{name}")
        body = self._json_body()
        if body.get("operation") != "upload":
            raise HubError(400, "The emulator's LFS batch API only handles uploads (downloads go through /resolve/)")
        objects = []
        for obj in body.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            entry: dict[str, Any] = {"oid": oid, "size": size, "authenticated": True}
            if oid not in self.state.lfs_objects:
                entry["actions"] = {
                    "upload": {"href": f"{self.base_url}/_emulator/lfs/{oid}/{size}"},
                    "verify": {"href": f"{self.base_url}/_emulator/lfs-verify/{oid}"},
                }
            objects.append(entry)
        self._send(
            200, json.dumps({"transfer": "basic", "objects": objects}).encode(), ctype="application/vnd.git-lfs+json"
        )

    def lfs_put(self, query: dict[str, str], oid: str, size: str) -> None:
        data = self._body()
        if len(data) != int(size) or hashlib.sha256(data).hexdigest() != oid:
            raise HubError(400, f"Uploaded content does not match oid {oid} / size {size}")
        self.state.lfs_objects[oid] = data
        self._send(200, b"", {"ETag": f'"{oid}"'})

    def lfs_verify(self, query: dict[str, str], oid: str) -> None:
        body = self._json_body()
        data = self.state.lfs_objects.get(oid)
        if data is None or len(data) != int(body.get("size", -1)):
            raise HubError(404, f"LFS object {oid} not found")
        self._json(200, {})

    # ----- download
    def resolve(self, query: dict[str, str], prefix: str, ns: str, name: str, rev: str, path: str) -> None:
        rtype = {"": "model", "datasets/": "dataset", "spaces/": "space"}[prefix or ""]
        repo = self._get_repo(rtype, f"{ns}/{name}")
        commit = self._resolve(repo, rev)
        path = unquote(path)
        blob = commit.files.get(path)
        if blob is None:
            raise EntryNotFound(commit.sha, path)
        data = blob.data
        etag = blob.sha256 if blob.lfs else blob.git_oid
        headers = {
            "ETag": f'"{etag}"',
            "X-Repo-Commit": commit.sha,
            "Accept-Ranges": "bytes",
        }
        if blob.lfs:
            headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(len(data))})
        status = 200
        range_header = self.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d*)-(\d*)", range_header or "")
        if m and (m.group(1) or m.group(2)):
            if m.group(1):
                start = int(m.group(1))
                end = int(m.group(2)) if m.group(2) else len(data) - 1
            else:
                start, end = max(0, len(data) - int(m.group(2))), len(data) - 1
            if start >= len(data) and len(data) > 0:
                self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                return
            end = min(end, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start : end + 1], 206
        self._send(status, data, headers, ctype="application/octet-stream")


_T = r"(?P<rtype>model|dataset|space)s"
_PREFIX = r"(?P<prefix>(?:datasets/|spaces/)?)"
_ROUTES: list[tuple[str, re.Pattern[str], Any]] = [
    (method, re.compile(pattern), handler)
    for method, pattern, handler in [
        ("GET", r"/api/whoami-v2", _Handler.whoami),
        ("POST", r"/api/validate-yaml", _Handler.validate_yaml),
        ("POST", r"/api/repos/create", _Handler.create_repo),
        ("DELETE", r"/api/repos/delete", _Handler.delete_repo),
        ("GET", rf"/api/{_T}/{_REPO}", _Handler.repo_info),
        ("GET", rf"/api/{_T}/{_REPO}/revision/(?P<rev>[^/]+)", _Handler.repo_info),
        ("GET", rf"/api/{_T}/{_REPO}/refs", _Handler.refs),
        ("GET", rf"/api/{_T}/{_REPO}/commits/(?P<rev>[^/]+)", _Handler.commits),
        ("POST", rf"/api/{_T}/{_REPO}/branch/(?P<branch>[^/]+)", _Handler.create_branch),
        ("DELETE", rf"/api/{_T}/{_REPO}/branch/(?P<branch>[^/]+)", _Handler.delete_branch),
        ("POST", rf"/api/{_T}/{_REPO}/tag/(?P<rev>[^/]+)", _Handler.create_tag),
        ("DELETE", rf"/api/{_T}/{_REPO}/tag/(?P<rev>[^/]+)", _Handler.delete_tag),
        ("POST", rf"/api/{_T}/{_REPO}/preupload/(?P<rev>[^/]+)", _Handler.preupload),
        ("POST", rf"/api/{_T}/{_REPO}/commit/(?P<rev>[^/]+)", _Handler.commit),
        ("GET", rf"/api/{_T}/{_REPO}/tree/(?P<rev>[^/]+)(?:/(?P<path>.*))?", _Handler.tree),
        ("POST", rf"/api/{_T}/{_REPO}/paths-info/(?P<rev>[^/]+)", _Handler.paths_info),
        ("POST", rf"/{_PREFIX}{_REPO}\.git/info/lfs/objects/batch", _Handler.lfs_batch),
        ("PUT", r"/_emulator/lfs/(?P<oid>[0-9a-f]{64})/(?P<size>\d+)", _Handler.lfs_put),
        ("POST", r"/_emulator/lfs-verify/(?P<oid>[0-9a-f]{64})", _Handler.lfs_verify),
        ("GET", rf"/{_PREFIX}{_REPO}/resolve/(?P<rev>[^/]+)/(?P<path>.+)", _Handler.resolve),
    ]
]
_JOB_ROUTES = [(method, re.compile(pattern), handler) for method, pattern, handler in JOB_ROUTES]


class Emulator:
    """A running hub emulator: ``.url``, ``.state``, ``.stop()``; a context manager."""

    def __init__(self, tokens: dict[str, dict[str, Any]] | None = None, host: str = "127.0.0.1", port: int = 0):
        self.state = HubState(tokens=dict(DEFAULT_TOKENS if tokens is None else tokens))
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._server = ThreadingHTTPServer((host, port), handler)
        self._server.daemon_threads = True
        self.host, self.port = self._server.server_address[:2]
        self.url = f"http://{self.host}:{self.port}"
        self._thread: threading.Thread | None = None
        self._saved_xet: tuple[str | None, bool | None] | None = None

    def start(self) -> Emulator:
        self._disable_xet()
        self._thread = threading.Thread(target=self._server.serve_forever, name="hub-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._restore_xet()

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _disable_xet(self) -> None:
        """Make the client upload through plain LFS: hf_xet is installed and would be used without asking us."""
        import huggingface_hub.constants as hf_constants

        self._saved_xet = (os.environ.get("HF_HUB_DISABLE_XET"), hf_constants.HF_HUB_DISABLE_XET)
        os.environ["HF_HUB_DISABLE_XET"] = "1"
        hf_constants.HF_HUB_DISABLE_XET = True

    def _restore_xet(self) -> None:
        if self._saved_xet is None:
            return
        import huggingface_hub.constants as hf_constants

        env, const = self._saved_xet
        if env is None:
            os.environ.pop("HF_HUB_DISABLE_XET", None)
        else:
            os.environ["HF_HUB_DISABLE_XET"] = env
        hf_constants.HF_HUB_DISABLE_XET = bool(const)
        self._saved_xet = None


def start_emulator(tokens: dict[str, dict[str, Any]] | None = None, port: int = 0) -> Emulator:
    """Start an emulator on a free loopback port in a background thread (sets ``HF_HUB_DISABLE_XET=1``)."""
    return Emulator(tokens, port=port).start()


def hf_url(emu_url: str, repo_type: str, repo_id: str) -> str:
    """The web URL of a repo on the emulator, as the client builds it."""
    return f"{emu_url}/{URL_PREFIX[repo_type]}{quote(repo_id)}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run a local Hugging Face Hub emulator in the foreground.")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    emu = Emulator(host=args.host, port=args.port)
    print(f"Hub emulator listening on {emu.url}")
    print("Tokens:")
    for token, info in emu.state.tokens.items():
        print(f"  {token}: user={info['user']} orgs={info['orgs']} role={info['role']}")
    print("Point the client at it (HF_HUB_DISABLE_XET=1 makes uploads use plain LFS instead of Xet):")
    print(f"  HF_ENDPOINT={emu.url} HF_HUB_DISABLE_XET=1 HF_TOKEN=hf_write_alice_token python ...")
    try:
        emu._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emu._server.server_close()


if __name__ == "__main__":
    main()
