"""Fixtures that run the real `concord` binary for the end-to-end tests.

The binary comes from $CONCORD_BIN (tools/e2e.sh builds it; default target/debug/concord). Every
server listens on 127.0.0.1 on a free port with its own temporary data directory, and every wait is
bounded. On teardown the server gets SIGTERM and must exit 0 within 10 s: graceful shutdown is
part of what is tested. The server's stderr goes to a file, attached to the report of a failing test.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
SYNTHEA_DIR = (ROOT / ".." / "shared" / "testdata" / "synthea").resolve()

READY_TIMEOUT_S = 30.0
SHUTDOWN_TIMEOUT_S = 10.0
CLI_TIMEOUT_S = 120.0
HTTP_TIMEOUT_S = 30.0

# Servers started during the current test, so a failing test's report can carry their stderr.
_live_servers: list["Server"] = []


def concord_bin() -> Path:
    path = Path(os.environ.get("CONCORD_BIN", ROOT / "target" / "debug" / "concord"))
    if not path.is_absolute():
        path = ROOT / path
    if not path.is_file():
        pytest.fail(f"concord binary not found at {path}; build it or set CONCORD_BIN", pytrace=False)
    return path


def run_cli(*args: str, timeout: float = CLI_TIMEOUT_S) -> subprocess.CompletedProcess:
    """Runs `concord ARGS...` to completion with a bounded time, capturing stdout and stderr."""
    return subprocess.run(
        [str(concord_bin()), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=_server_env(),
    )


def _die_with_parent() -> None:
    """Runs in the child before exec: on Linux, SIGTERM the server if pytest itself dies."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001 - best effort, not on every platform
        pass


def _server_env() -> dict:
    env = dict(os.environ)
    # Keep the logs readable; no colour codes in the captured stderr.
    env.setdefault("NO_COLOR", "1")
    env.setdefault("RUST_BACKTRACE", "1")
    env.setdefault("CONCORD__ACCESS__ORGANIZATION", ORGANIZATION)
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The organisation that runs the test server (access.organization), and the test clinician's: so
# the clinician has a legitimate relationship with every person the server holds.
ORGANIZATION = "A81001"


def mint_token(data_dir: Path, sub: str = "integration", role: str | None = None, org: str = ORGANIZATION) -> str:
    """A token from `concord token issue`: by default a `system/*.*` token, as an integrator's
    loader holds (these tests are about FHIR and the feeds; people's access is tested in
    crates/rest/tests/access.rs and test_smart.py); with `role`, a user at `org`."""
    if role is None:
        who = ["--system", "--scope", "system/*.*"]
    else:
        who = ["--role", role, "--org", org]
    res = run_cli("token", "issue", "--data", str(data_dir), "--sub", sub, *who, timeout=60)
    assert res.returncode == 0, f"token issue failed ({res.returncode}): {res.stderr}"
    token = res.stdout.strip()
    assert token and "\n" not in token, f"unexpected token output: {res.stdout!r}"
    return token


@dataclass
class Server:
    base_url: str  # the FHIR base, http://127.0.0.1:PORT/fhir
    root_url: str  # http://127.0.0.1:PORT
    data_dir: Path
    stderr_path: Path
    proc: subprocess.Popen
    token: str = ""
    mllp_port: int | None = None  # the MLLP listener's port, when the server was started with one
    shared: bool = False  # the session-wide server, rather than one a test started itself
    killed: bool = False  # a test killed it on purpose (SIGKILL); its exit code is not checked
    stopped: bool = field(default=False)

    def stderr_text(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError as e:
            return f"(could not read {self.stderr_path}: {e})"

    def headers(self, **extra: str) -> dict:
        h = {"Authorization": f"Bearer {self.token}", "Accept": "application/fhir+json"}
        h.update(extra)
        return h

    def stop(self) -> int:
        """SIGTERM, then wait (bounded). Returns the exit code; kills and fails if it hangs."""
        if self.stopped:
            return self.proc.returncode
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=SHUTDOWN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise AssertionError(
                f"concord did not exit within {SHUTDOWN_TIMEOUT_S}s of SIGTERM\n"
                f"--- server stderr ---\n{self.stderr_text()}"
            )


@contextlib.contextmanager
def running_server(data_dir: Path, log_dir: Path, mllp: bool = False) -> Iterator[Server]:
    """Starts `concord serve` on a free 127.0.0.1 port over DATA_DIR and waits for /readyz;
    with `mllp`, also an MLLP listener on another free port.

    On exit: SIGTERM and an assertion that the process exits 0 within 10 s.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    last_error: Exception | None = None
    for _attempt in range(3):  # a port picked as free can be taken before the server binds it
        port = free_port()
        mllp_port = free_port() if mllp else None
        extra = ["--mllp", f"127.0.0.1:{mllp_port}"] if mllp_port else []
        stderr_path = log_dir / f"concord-{port}.stderr.log"
        stdout_path = log_dir / f"concord-{port}.stdout.log"
        with open(stderr_path, "wb") as err, open(stdout_path, "wb") as out:
            proc = subprocess.Popen(
                [str(concord_bin()), "serve", "--listen", f"127.0.0.1:{port}", "--data", str(data_dir), *extra],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                env=_server_env(),
                preexec_fn=_die_with_parent,
            )
        root = f"http://127.0.0.1:{port}"
        server = Server(f"{root}/fhir", root, data_dir, stderr_path, proc, mllp_port=mllp_port)
        try:
            _wait_ready(server)
        except Exception as e:  # noqa: BLE001 - retried, then reported
            last_error = e
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
            continue
        break
    else:
        raise RuntimeError(f"concord did not become ready: {last_error}")

    _live_servers.append(server)
    try:
        yield server
    finally:
        _live_servers.remove(server)
        code = server.stop()
        assert server.killed or code == 0, (
            f"concord exited with code {code} after SIGTERM (expected 0)\n"
            f"--- server stderr ---\n{server.stderr_text()}"
        )


def _wait_ready(server: Server) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"concord exited early with code {server.proc.returncode}\n{server.stderr_text()}"
            )
        try:
            r = requests.get(f"{server.root_url}/readyz", timeout=2)
            if r.status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"/readyz not 200 within {READY_TIMEOUT_S}s\n{server.stderr_text()}")


@pytest.fixture(scope="session")
def concord_server(tmp_path_factory) -> Iterator[Server]:
    """One server for the whole session (its own temp data dir), with a clinician token."""
    base = tmp_path_factory.mktemp("concord")
    with running_server(base / "data", base / "logs") as server:
        server.shared = True
        server.token = mint_token(server.data_dir)
        yield server


@pytest.fixture(scope="session")
def concord(concord_server) -> tuple[str, str]:
    """(base_url, token) for the shared server."""
    return concord_server.base_url, concord_server.token


@pytest.fixture
def http(concord_server) -> requests.Session:
    """A requests session with the bearer token and a bounded timeout on every call."""
    s = _TimeoutSession()
    s.headers.update(concord_server.headers())
    yield s
    s.close()


class _TimeoutSession(requests.Session):
    def request(self, *args, **kwargs):
        kwargs.setdefault("timeout", HTTP_TIMEOUT_S)
        return super().request(*args, **kwargs)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _live_servers:
        for server in _live_servers:
            if server.shared and "concord_server" not in item.fixturenames:
                continue
            text = server.stderr_text()
            tail = text[-20000:]
            report.sections.append((f"concord stderr ({server.root_url})", tail or "(empty)"))
