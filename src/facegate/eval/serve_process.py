"""``facegate serve`` in a child process on a free local port: for benchmarks and live tests."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx

import facegate

# Model conversion and loading on a busy 2-core machine can take minutes at the first start.
STARTUP_TIMEOUT_S = 300


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """A started server; its output goes to ``log_path``.

    ``env`` replaces the child's environment when given; ``cwd`` is where it looks for a ``.env``.
    """

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.log_path = log_path
        self.url = f"http://127.0.0.1:{free_port()}"
        # The child imports the facegate this process runs, wherever it came from: with a relative
        # PYTHONPATH and another working folder, ``-m facegate.cli`` could find another copy.
        root = str(Path(facegate.__file__).resolve().parents[1])
        command = [
            sys.executable,
            "-c",
            f"import sys; sys.path.insert(0, {root!r}); from facegate.cli import main; "
            "sys.exit(main())",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            self.url.rsplit(":", 1)[1],
            "--data-dir",
            str(data_dir),
        ]
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
            )

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def wait_until(
        self, path: str, ready: Callable[[httpx.Response], bool], timeout_s: float
    ) -> None:
        """Polls ``path`` until ``ready`` says so; RuntimeError (with the log) if it never does."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the server exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                if ready(httpx.get(f"{self.url}{path}", timeout=5)):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        raise RuntimeError(f"the server did not become ready:\n{self.log_tail()}")

    def stop(self) -> int:
        """SIGTERM (a graceful shutdown), SIGKILL after a minute; the exit code."""
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def start_ready(data_dir: Path, workdir: Path, settings: Mapping[str, str]) -> ServeProcess:
    """A server on ``data_dir`` that reads ``settings`` the documented way (a ``.env`` in its
    own working folder ``workdir``), once ``/readyz`` answers 200; stopped again if it never
    does (RuntimeError with its log)."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / ".env").write_text("".join(f"{k}={v}\n" for k, v in settings.items()))
    server = ServeProcess(data_dir, workdir / "server.log", cwd=workdir)
    try:
        server.wait_until("/readyz", lambda r: r.status_code == 200, STARTUP_TIMEOUT_S)
    except RuntimeError:
        server.stop()
        raise
    return server
