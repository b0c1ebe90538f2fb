"""Test plumbing: free ports, real servers on 127.0.0.1 (threads or processes), bounded waits."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import uvicorn

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 60.0, status: int | None = 200, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} while waiting for {url}")
        try:
            r = httpx.get(url, timeout=2)
            if status is None or r.status_code == status:
                return
            last = r.status_code
            if r.headers.get("content-type", "").startswith("application/json") and r.json().get("state") == "failed":
                raise RuntimeError(f"{url} reports a failed start: {r.json().get('error')}")
        except httpx.HTTPError as exc:
            last = exc
        time.sleep(0.1)
    raise TimeoutError(f"{url} not up after {timeout}s (last: {last})")


def wait_until(predicate, timeout: float = 120.0, interval: float = 0.1) -> bool:
    """Poll ``predicate`` until it holds; False if it never did. The bound only guards against a hang:
    tests assert on what happened, never on how long it took."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


class ThreadServer:
    """A uvicorn server for an in-test ASGI app, in a thread, on a free port."""

    def __init__(self, app, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def kill_session(proc: subprocess.Popen) -> None:
    """SIGKILL a process started with ``start_new_session`` and everything it started, and reap it. What follows
    a SIGKILL is the kernel's teardown alone, which a loaded machine may take its time over: the wait only
    guards against a hang."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=300)


def stop_session(proc: subprocess.Popen, sig_timeout: float) -> None:
    """SIGTERM (a graceful stop), then :func:`kill_session` if it is still running after ``sig_timeout``."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=sig_timeout)
        except subprocess.TimeoutExpired:
            # Not a failure of the test at hand, but worth seeing in the run's warnings summary.
            warnings.warn(f"{proc.args[0]} ignored SIGTERM for {sig_timeout:.0f} s: killed", stacklevel=2)
            kill_session(proc)


class Proc:
    """A real console-script process with its log captured to a file."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, preexec_fn=None) -> None:
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        full_env = {**os.environ, **env}
        self.proc = subprocess.Popen(
            args,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec_fn,
        )

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, sig_timeout: float = 15.0) -> int | None:
        stop_session(self.proc, sig_timeout)
        self._log.close()
        return self.proc.returncode


@contextlib.contextmanager
def running(
    args: list[str], env: dict[str, str], log_path: Path, ready_url: str, timeout: float = 90.0
) -> Iterator[Proc]:
    p = Proc(args, env, log_path)
    try:
        try:
            wait_http(ready_url, timeout=timeout, proc=p.proc)
        except Exception as exc:
            raise RuntimeError(f"{args[0]} failed to become ready: {exc}\n--- log ---\n{p.log()[-4000:]}") from exc
        yield p
    finally:
        p.stop()


def rss_mb(pid: int) -> float:
    """A process's resident memory (VmRSS), in MB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def assert_openai_error(body: dict, status_type: str | None = None) -> dict:
    assert set(body) == {"error"}, body
    err = body["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"]
    if status_type:
        assert err["type"] == status_type, err
    return err
