#!/usr/bin/env python3
"""Manage a local BigQuery REST API server for development and tests.

The server is `local-bigquery` (PyPI, MIT): the BigQuery REST API on loopback, backed by
DuckDB.  It needs Python 3.13 and lives in its own virtual environment,
``.local-bigquery/venv`` under the repository root (git-ignored), installed from
``scripts/local-bigquery-requirements.txt``.

Command line (standard library only, so it runs before the project's venv exists)::

    python scripts/local_bigquery.py install
    python scripts/local_bigquery.py start [--project P] [--port N]
    python scripts/local_bigquery.py status
    python scripts/local_bigquery.py stop

``start`` prints ``endpoint=http://127.0.0.1:PORT`` and ``project=P``; it records the server
in ``.local-bigquery/server.json``, logs to ``.local-bigquery/server.log`` and keeps its data in
``.local-bigquery/data``; ``--run-dir`` (or $LOCAL_BIGQUERY_RUN_DIR) moves those three.
``status`` exits 3 when none runs.  $LOCAL_BIGQUERY_PYTHON names the Python 3.13 to use.

Importable API (used by the pytest session fixture).  Load this file by path under another
name (see tests/helpers.py): ``local_bigquery`` is also the name of the
server's own package::

    lbq = <this file loaded as module "local_bigquery_script">
    with lbq.running_server("test-project") as server:
        client = bigquery.Client(
            project=server.project,
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": server.endpoint},
        )

Servers started through the API get a fresh data directory under
``.local-bigquery/runs/`` that ``stop()`` removes, do not touch ``server.json``, and (on
Linux) die with the process that started them.

DuckDB's extensions (icu, ducklake, spatial) come from the ``duckdb-extension-*`` wheels:
``duckdb_extensions.import_extension(name)`` runs ``INSTALL '<file in the wheel>'``, which
copies the extension into ``$HOME/.duckdb/extensions``.  This script runs that, and the
server, with ``HOME=.local-bigquery/duckdb-home`` so that everything stays inside
``.local-bigquery/`` and DuckDB never needs the network.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

REPO_ROOT = Path(__file__).resolve().parent.parent
STATE_DIR = REPO_ROOT / ".local-bigquery"
VENV_DIR = STATE_DIR / "venv"
DUCKDB_HOME = STATE_DIR / "duckdb-home"
RUNS_DIR = STATE_DIR / "runs"
INSTALL_LOG = STATE_DIR / "install.log"
INSTALL_LOCK = STATE_DIR / "install.lock"
MARKER = VENV_DIR / "local-bigquery-installed.json"
REQUIREMENTS = Path(__file__).resolve().with_name("local-bigquery-requirements.txt")

PYTHON_ENV_VAR = "LOCAL_BIGQUERY_PYTHON"
RUN_DIR_ENV_VAR = "LOCAL_BIGQUERY_RUN_DIR"
REQUIRED_PYTHON = (3, 13)
DUCKDB_EXTENSIONS = ("icu", "ducklake", "spatial")
# `pip check` must report nothing but this: local-bigquery declares duckdb>=2.0.0 and we
# pin 1.5.5 on purpose (see the requirements file).
ACCEPTED_PIP_CHECK = re.compile(r"^local-bigquery \S+ has requirement duckdb>=2\.0\.0, but you have duckdb 1\.5\.5\.$")

HOST = "127.0.0.1"
DEFAULT_PROJECT = "local-dev"
DEFAULT_START_TIMEOUT = 60.0
STOP_GRACE_SECONDS = 5.0
LOG_TAIL_LINES = 40


class LocalBigQueryError(RuntimeError):
    """The local server could not be installed, started or stopped."""


class InstallError(LocalBigQueryError):
    """The server's environment could not be installed."""


def _say(message: str) -> None:
    print(f"local-bigquery: {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- install


def _python_version(executable: str) -> tuple[int, int] | None:
    """The (major, minor) of an interpreter, or None if it does not run."""
    try:
        out = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    major, _, minor = out.stdout.strip().partition(".")
    try:
        return int(major), int(minor)
    except ValueError:
        return None


def _version_key(path: str) -> tuple[int, ...]:
    match = re.search(r"versions/(\d+(?:\.\d+)*)", path)
    return tuple(int(p) for p in match.group(1).split(".")) if match else ()


def find_python() -> str:
    """Find a Python 3.13 interpreter.

    Order: $LOCAL_BIGQUERY_PYTHON, `python3.13` on PATH (if it really runs: a pyenv shim may
    refuse), `pyenv prefix 3.13`, then ~/.pyenv/versions/3.13*/bin/python3.
    """
    wanted = "{}.{}".format(*REQUIRED_PYTHON)
    explicit = os.environ.get(PYTHON_ENV_VAR)
    if explicit:
        if _python_version(explicit) == REQUIRED_PYTHON:
            return explicit
        raise InstallError(f"{PYTHON_ENV_VAR}={explicit} is not a working Python {wanted} interpreter")

    candidates: list[str] = []
    on_path = shutil.which(f"python{wanted}")
    if on_path:
        candidates.append(on_path)
    if shutil.which("pyenv"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                ["pyenv", "prefix", wanted],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
            if out.returncode == 0:
                for prefix in out.stdout.strip().split(":"):
                    if prefix:
                        candidates.append(str(Path(prefix) / "bin" / "python3"))
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    found = glob.glob(os.path.join(pyenv_root, "versions", f"{wanted}*", "bin", "python3"))
    candidates.extend(sorted(found, key=_version_key, reverse=True))

    for candidate in candidates:
        if _python_version(candidate) == REQUIRED_PYTHON:
            return candidate
    raise InstallError(
        f"local-bigquery needs Python {wanted}, none found: install it (e.g. `pyenv install {wanted}`) "
        f"or set {PYTHON_ENV_VAR} to a python{wanted} executable"
    )


def venv_python() -> Path:
    return VENV_DIR / "bin" / "python"


def _server_executable() -> Path:
    return VENV_DIR / "bin" / "local-bigquery"


def _expected_marker() -> dict[str, object]:
    text = REQUIREMENTS.read_text(encoding="utf-8")
    pins = [line.split("#", 1)[0].strip() for line in text.splitlines() if line.split("#", 1)[0].strip()]
    return {
        "requirements_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "pins": pins,
        "duckdb_extensions": list(DUCKDB_EXTENSIONS),
    }


def _duckdb_version(pins: list[str]) -> str:
    for pin in pins:
        name, _, version = pin.partition("==")
        if name.strip().lower() == "duckdb":
            return version.strip()
    raise InstallError(f"{REQUIREMENTS} pins no duckdb version")


def _extensions_present(pins: list[str]) -> bool:
    base = DUCKDB_HOME / ".duckdb" / "extensions" / f"v{_duckdb_version(pins)}"
    return all(glob.glob(str(base / "*" / f"{name}.duckdb_extension")) for name in DUCKDB_EXTENSIONS)


def is_installed() -> bool:
    """True if the venv exists, matches the requirements file and has the DuckDB extensions."""
    try:
        marker = json.loads(MARKER.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    expected = _expected_marker()
    return (
        all(marker.get(key) == value for key, value in expected.items())
        and venv_python().exists()
        and _server_executable().exists()
        and _extensions_present(expected["pins"])  # type: ignore[arg-type]
    )


def _clean_env() -> dict[str, str]:
    """This environment without what would leak the caller's Python into the venv's."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "__PYVENV_LAUNCHER__"}
    }
    env["VIRTUAL_ENV"] = str(VENV_DIR)
    env["PYTHONNOUSERSITE"] = "1"
    return env


def _server_env() -> dict[str, str]:
    """Environment for DuckDB in the venv: its home (extension directory) in .local-bigquery."""
    return _clean_env() | {"HOME": str(DUCKDB_HOME)}


def _run_logged(cmd: list[str], what: str, log: IO[str], env: dict[str, str] | None = None) -> str:
    log.write(f"\n$ {' '.join(cmd)}\n")
    log.flush()
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, check=False)
    log.write(out.stdout)
    log.flush()
    if out.returncode != 0:
        tail = "\n".join(out.stdout.strip().splitlines()[-LOG_TAIL_LINES:])
        raise InstallError(f"{what} failed (exit {out.returncode}; full log: {INSTALL_LOG}):\n{tail}")
    return out.stdout


_REGISTER_EXTENSIONS = """
import sys
import duckdb, duckdb_extensions
for name in sys.argv[1:]:
    duckdb_extensions.import_extension(name, force_install=True)
con = duckdb.connect(config={"TimeZone": "UTC"})
for name in sys.argv[1:]:
    con.execute(f"LOAD {name}")
print("registered", *sys.argv[1:], "for duckdb", duckdb.__version__)
"""


def ensure_installed(*, quiet: bool = False) -> Path:
    """Create .local-bigquery/venv and install the server if needed; return the venv's python.

    Idempotent: a marker file in the venv records the installed pins, so a re-run skips pip.
    Raises InstallError with the cause (and pip's output tail) if it cannot install.
    """
    if is_installed():
        return venv_python()
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    with open(INSTALL_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be installing right now
        if is_installed():
            return venv_python()
        _install(quiet=quiet)
    return venv_python()


def _install(*, quiet: bool) -> None:
    say = (lambda _msg: None) if quiet else _say
    expected = _expected_marker()
    started = time.monotonic()
    marker = _read_json(MARKER) or {}
    packages_ok = venv_python().exists() and all(marker.get(k) == v for k, v in expected.items())
    with open(INSTALL_LOG, "w", encoding="utf-8") as log:
        if packages_ok:
            # Only the DuckDB extensions are missing (e.g. duckdb-home was removed).
            _register_extensions(log, say)
            say(f"re-registered DuckDB extensions in {time.monotonic() - started:.1f}s")
            return
        # A venv without a matching marker is half-installed or outdated: start afresh.
        python = find_python()
        shutil.rmtree(VENV_DIR, ignore_errors=True)
        say(f"creating {VENV_DIR.relative_to(REPO_ROOT)} with {python}")
        _run_logged([python, "-m", "venv", str(VENV_DIR)], "creating the venv", log)
        pip = [str(venv_python()), "-m", "pip", "--disable-pip-version-check", "--no-input"]
        say(f"installing {REQUIREMENTS.relative_to(REPO_ROOT)} (pip)")
        _run_logged(
            [*pip, "install", "--no-deps", "--only-binary", ":all:", "-r", str(REQUIREMENTS)],
            "pip install",
            log,
            env=_clean_env(),
        )
        check = subprocess.run(
            [*pip, "check"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=_clean_env(),
            check=False,
        )
        log.write(f"\n$ pip check\n{check.stdout}")
        problems = [
            line
            for line in check.stdout.strip().splitlines()
            if line.strip() and not ACCEPTED_PIP_CHECK.match(line.strip())
        ]
        if problems:
            raise InstallError(
                f"pip check found unmet requirements (add them to {REQUIREMENTS.name}):\n" + "\n".join(problems)
            )
        _register_extensions(log, say)
        _run_logged(
            [str(venv_python()), "-c", "import local_bigquery.app, local_bigquery.grpc.server"],
            "importing local_bigquery",
            log,
            env=_server_env(),
        )
    _write_json(MARKER, expected)
    say(f"installed in {time.monotonic() - started:.1f}s")


def _register_extensions(log: IO[str], say: Callable[[str], None]) -> None:
    """Copy icu, ducklake and spatial from their wheels into DuckDB's extension directory."""
    say("registering DuckDB extensions " + ", ".join(DUCKDB_EXTENSIONS))
    DUCKDB_HOME.mkdir(parents=True, exist_ok=True)
    _run_logged(
        [str(venv_python()), "-c", _REGISTER_EXTENSIONS, *DUCKDB_EXTENSIONS],
        "registering DuckDB extensions",
        log,
        env=_server_env(),
    )
    if not _extensions_present(_expected_marker()["pins"]):  # type: ignore[arg-type]
        raise InstallError(f"DuckDB extensions not found under {DUCKDB_HOME} after registering them")


# --------------------------------------------------------------------------- processes


def _write_json(path: Path, data: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else None
    except (OSError, ValueError):
        return None


def pid_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] not in {"Z", "X"}


def _is_server_process(pid: int, port: int) -> bool:
    """The pid is alive and (where /proc tells) is a local-bigquery server on that port."""
    if not pid_alive(pid):
        return False
    try:
        args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True
    text = [a.decode(errors="replace") for a in args]
    return any("local-bigquery" in a for a in text) and "--port" in text and str(port) in text


def _free_port(exclude: frozenset[int] = frozenset()) -> int:
    """A port that is free on the loopback address right now."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port not in exclude:
            return port


def _log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.rstrip().splitlines()[-lines:]) or "(empty log)"


def _die_with_parent() -> None:
    """preexec_fn: the server gets SIGTERM when the starting thread exits (Linux)."""
    with contextlib.suppress(Exception):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == 1:  # the parent is already gone
        os.kill(os.getpid(), signal.SIGTERM)


def terminate(pid: int, popen: subprocess.Popen[bytes] | None = None, grace: float = STOP_GRACE_SECONDS) -> None:
    """Stop a server started in its own process group: SIGTERM, then SIGKILL after `grace` s."""

    def gone(timeout: float) -> bool:
        if popen is not None:
            try:
                popen.wait(timeout=timeout)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout
        while pid_alive(pid):
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def send(sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            try:
                own_group = os.getpgid(pid) == pid
            except ProcessLookupError:
                return
            if own_group:
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)

    if popen is not None and popen.poll() is not None:
        return
    if popen is None and not pid_alive(pid):
        return
    send(signal.SIGTERM)
    if gone(grace):
        return
    send(signal.SIGKILL)
    if not gone(5.0):
        raise LocalBigQueryError(f"local-bigquery server pid {pid} did not exit after SIGKILL")


def _http_get(url: str, timeout: float) -> tuple[int, str]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: no proxy
    try:
        with opener.open(url, timeout=timeout) as response:
            return response.status, response.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode("utf-8", "replace")


# --------------------------------------------------------------------------- server


@dataclasses.dataclass
class Server:
    """A running local-bigquery server."""

    endpoint: str
    project: str
    pid: int
    port: int
    grpc_port: int
    data_dir: Path
    log_path: Path
    state_file: Path | None = None
    cleanup_dir: Path | None = None
    _popen: subprocess.Popen[bytes] | None = dataclasses.field(default=None, repr=False, compare=False)

    def alive(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None
        return _is_server_process(self.pid, self.port)

    def stop(self) -> None:
        """Stop the server (idempotent), remove its state file and any data dir it owns."""
        if self._popen is not None or _is_server_process(self.pid, self.port):
            terminate(self.pid, self._popen)
        if self.state_file is not None:
            with contextlib.suppress(FileNotFoundError):
                if (_read_json(self.state_file) or {}).get("pid") == self.pid:
                    self.state_file.unlink()
        if self.cleanup_dir is not None:
            shutil.rmtree(self.cleanup_dir, ignore_errors=True)

    def to_json(self) -> dict[str, object]:
        return {
            "pid": self.pid,
            "endpoint": self.endpoint,
            "port": self.port,
            "grpc_port": self.grpc_port,
            "project": self.project,
            "data_dir": str(self.data_dir),
            "log": str(self.log_path),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], state_file: Path | None = None) -> Server:
        return cls(
            endpoint=data["endpoint"],
            project=data["project"],
            pid=int(data["pid"]),
            port=int(data["port"]),
            grpc_port=int(data["grpc_port"]),
            data_dir=Path(data["data_dir"]),
            log_path=Path(data["log"]),
            state_file=state_file,
        )


def _prune_stale_runs() -> None:
    """Remove data dirs of API-started servers whose process is gone (e.g. a killed pytest)."""
    if not RUNS_DIR.is_dir():
        return
    for run in RUNS_DIR.iterdir():
        info = _read_json(run / "server.json")
        if info is None:
            # No server.json yet: a run being started right now, or a failed start. Old ones go.
            with contextlib.suppress(OSError):
                if time.time() - run.stat().st_mtime > 3600:
                    shutil.rmtree(run, ignore_errors=True)
            continue
        if not _is_server_process(int(info.get("pid", 0)), int(info.get("port", 0))):
            shutil.rmtree(run, ignore_errors=True)


def _wait_until_ready(proc: subprocess.Popen[bytes], url: str, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        code = proc.poll()
        if code is not None:
            raise LocalBigQueryError(
                f"local-bigquery exited with code {code} before answering; log tail ({log_path}):\n"
                + _log_tail(log_path)
            )
        try:
            status, body = _http_get(url, timeout=2.0)
        except (OSError, urllib.error.URLError) as err:
            last = f"no answer ({err})"
        else:
            if status == 200:
                return
            last = f"HTTP {status}: {body[:500]}"
            if 400 <= status < 500:  # answers, but broken (e.g. a DuckDB extension is missing)
                raise LocalBigQueryError(
                    f"local-bigquery answered {last}\nlog tail ({log_path}):\n{_log_tail(log_path)}"
                )
        if time.monotonic() >= deadline:
            raise LocalBigQueryError(
                f"local-bigquery did not answer {url} within {timeout:.0f}s ({last}); "
                f"log tail ({log_path}):\n{_log_tail(log_path)}"
            )
        time.sleep(0.1)


def start_server(
    project: str,
    data_dir: Path | None = None,
    *,
    port: int | None = None,
    log_path: Path | None = None,
    state_file: Path | None = None,
    timeout: float = DEFAULT_START_TIMEOUT,
    die_with_parent: bool = True,
) -> Server:
    """Install if needed, start a server on free loopback ports and wait until it answers.

    With data_dir=None the server gets a fresh directory under .local-bigquery/runs/ (data and
    log) that stop() removes.  With state_file, the server is recorded there as JSON.
    With die_with_parent (Linux), the server gets SIGTERM when the calling thread exits.
    Raises InstallError or LocalBigQueryError (with the server's log tail).
    """
    ensure_installed()
    cleanup_dir = None
    if data_dir is None:
        RUNS_DIR.mkdir(parents=True, exist_ok=True)
        _prune_stale_runs()
        cleanup_dir = Path(tempfile.mkdtemp(prefix=f"{project}-", dir=RUNS_DIR))
        data_dir = cleanup_dir / "data"
        log_path = log_path or cleanup_dir / "server.log"
    data_dir = Path(data_dir).resolve()
    log_path = Path(log_path or data_dir.parent / f"{data_dir.name}-server.log").resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)

    attempts = 1 if port else 3  # a picked port can be taken before the server binds it
    try:
        for attempt in range(1, attempts + 1):
            http_port = port or _free_port()
            grpc_port = _free_port(frozenset({http_port}))
            cmd = [
                str(_server_executable()),
                "serve",
                "--host",
                HOST,
                "--port",
                str(http_port),
                "--grpc-port",
                str(grpc_port),
                "--project",
                project,
                "--data-dir",
                str(data_dir),
            ]
            with open(log_path, "ab") as log:
                log.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} $ {' '.join(cmd)}\n".encode())
                log.flush()
                proc = subprocess.Popen(
                    cmd,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=str(REPO_ROOT),
                    env=_server_env(),
                    start_new_session=True,
                    preexec_fn=_die_with_parent if die_with_parent and sys.platform == "linux" else None,
                )
            server = Server(
                endpoint=f"http://{HOST}:{http_port}",
                project=project,
                pid=proc.pid,
                port=http_port,
                grpc_port=grpc_port,
                data_dir=data_dir,
                log_path=log_path,
                state_file=state_file,
                cleanup_dir=cleanup_dir,
                _popen=proc,
            )
            if cleanup_dir is not None:
                _write_json(cleanup_dir / "server.json", server.to_json())
            try:
                _wait_until_ready(
                    proc,
                    f"{server.endpoint}/bigquery/v2/projects/{project}/datasets",
                    log_path,
                    timeout,
                )
            except LocalBigQueryError:
                terminate(proc.pid, proc)
                tail = _log_tail(log_path, 10).lower()
                if attempt < attempts and ("address already in use" in tail or "failed to bind" in tail):
                    continue
                raise
            break
        if state_file is not None:
            _write_json(state_file, server.to_json())
        return server
    except BaseException:
        if cleanup_dir is not None:
            shutil.rmtree(cleanup_dir, ignore_errors=True)
        raise


@contextlib.contextmanager
def running_server(project: str, data_dir: Path | None = None, **kwargs: Any) -> Iterator[Server]:
    """Start a server for the duration of the block; it is always stopped afterwards."""
    server = start_server(project, data_dir, **kwargs)
    try:
        yield server
    finally:
        server.stop()


# --------------------------------------------------------------------------- CLI


def _run_dir(args: argparse.Namespace) -> Path:
    return Path(args.run_dir).resolve()


@contextlib.contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / "server.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def recorded_server(run_dir: Path = STATE_DIR) -> Server | None:
    """The server recorded in run_dir/server.json if it is still running; drops a stale file."""
    state_file = run_dir / "server.json"
    info = _read_json(state_file)
    if info is None:
        return None
    try:
        server = Server.from_json(info, state_file)
    except (KeyError, TypeError, ValueError):
        server = None
    if server is None or not _is_server_process(server.pid, server.port):
        with contextlib.suppress(FileNotFoundError):
            state_file.unlink()
        return None
    return server


def _print_server(server: Server) -> None:
    print(f"endpoint={server.endpoint}")
    print(f"project={server.project}")


def cmd_install(args: argparse.Namespace) -> int:
    already = is_installed()
    python = ensure_installed()
    _say(("already installed: " if already else "installed: ") + str(python))
    return 0


def cmd_start(args: argparse.Namespace) -> int:
    run_dir = _run_dir(args)
    with _locked(run_dir):
        server = recorded_server(run_dir)
        if server is not None:
            _say(f"already running (pid {server.pid}, data {server.data_dir})")
            if args.project and args.project != server.project:
                _say(f"note: it serves project {server.project!r}, not {args.project!r}; stop it to change that")
            if args.port and args.port != server.port:
                _say(f"note: it listens on port {server.port}, not {args.port}")
            _print_server(server)
            return 0
        started = time.monotonic()
        server = start_server(
            args.project or DEFAULT_PROJECT,
            run_dir / "data",
            port=args.port,
            log_path=run_dir / "server.log",
            state_file=run_dir / "server.json",
            timeout=args.timeout,
            die_with_parent=False,
        )
        _say(f"started pid {server.pid} in {time.monotonic() - started:.1f}s, log {server.log_path}")
        _print_server(server)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    run_dir = _run_dir(args)
    with _locked(run_dir):
        server = recorded_server(run_dir)
        if server is None:
            _say("not running")
            return 0
        server.stop()
        _say(f"stopped pid {server.pid}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    server = recorded_server(_run_dir(args))
    installed = is_installed()
    if server is None:
        print("status=stopped")
        print(f"installed={'yes' if installed else 'no'}")
        return 3
    try:
        code, _ = _http_get(f"{server.endpoint}/bigquery/v2/projects/{server.project}/datasets", 2.0)
        answers = "yes" if code == 200 else f"HTTP {code}"
    except (OSError, urllib.error.URLError) as err:
        answers = f"no ({err})"
    print("status=running")
    _print_server(server)
    print(f"pid={server.pid}")
    print(f"grpc_port={server.grpc_port}")
    print(f"data_dir={server.data_dir}")
    print(f"log={server.log_path}")
    print(f"answers={answers}")
    print(f"installed={'yes' if installed else 'no'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--run-dir",
        default=os.environ.get(RUN_DIR_ENV_VAR) or str(STATE_DIR),
        help=f"where server.json, server.log and data/ live (default: ${RUN_DIR_ENV_VAR} or "
        f"{STATE_DIR.relative_to(REPO_ROOT)}/); the venv is always {VENV_DIR.relative_to(REPO_ROOT)}",
    )
    parser = argparse.ArgumentParser(
        prog="local_bigquery.py",
        description="Manage a local BigQuery REST API server (local-bigquery on DuckDB).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("install", parents=[common], help="create the venv and install the server if missing").set_defaults(
        func=cmd_install
    )
    start = sub.add_parser("start", parents=[common], help="install if missing, start and wait until it answers")
    start.add_argument("--project", default=None, help=f"default project (default: {DEFAULT_PROJECT})")
    start.add_argument("--port", type=int, default=None, help="HTTP port (default: a free one)")
    start.add_argument("--timeout", type=float, default=DEFAULT_START_TIMEOUT, help="seconds to wait for it to answer")
    start.set_defaults(func=cmd_start)
    sub.add_parser("stop", parents=[common], help="stop the recorded server (exit 0 if none runs)").set_defaults(
        func=cmd_stop
    )
    sub.add_parser("status", parents=[common], help="show the recorded server; exit 3 if none runs").set_defaults(
        func=cmd_status
    )
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except LocalBigQueryError as err:
        print(f"local-bigquery: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
