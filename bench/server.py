"""Run `kb serve` as a real server on a free loopback port: start, wait, find its workers, read
their memory, stop. Used by the load harness (bench/load.py) and the reliability tests.

Only the processes started here are ever signalled (by pid, or by the process group that
`start_new_session` gave the server), never anything found by name.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children(pid: int) -> list[int]:
    """Direct children of `pid` (from /proc; Linux)."""
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            try:
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    out += [int(x) for x in f.read().split()]
            except OSError:
                continue
    except OSError:
        pass
    return out


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    """Resident memory of one process in KiB (`VmHWM` for its peak); 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class Server:
    """`kb serve --workers W` over a build folder, on 127.0.0.1 and a free port."""

    def __init__(self, build: Path, *, workers: int = 1, port: int | None = None, log: Path | None = None,
                 env: dict | None = None) -> None:
        self.build = Path(build)
        self.workers = workers
        self.port = port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        self.env = env
        self.proc: subprocess.Popen | None = None
        self._log = None
        self._spawned: set[int] = set()  # every worker pid seen (a killed supervisor may orphan them)

    # -- lifecycle --------------------------------------------------------------------------
    def start(self, timeout: float = 120) -> Server:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **(self.env or {})}
        self._log = open(self.log_path, "wb") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        # --entries points nowhere useful: the build must already exist (serve never builds here)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "kb.cli", "serve", "--host", "127.0.0.1", "--port", str(self.port),
             "--workers", str(self.workers), "--out", str(self.build), "--entries", str(self.build / "_no_entries")],
            stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT), start_new_session=True)
        try:
            self.wait_ready(timeout)
        except BaseException:  # `with Server(...)` never reaches __exit__ when __enter__ fails
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float = 120) -> None:
        """Until /healthz answers 200 (the first request also opens the build) and, with several
        workers, until every worker process is up."""
        t0 = time.monotonic()
        unavailable = ""
        while time.monotonic() - t0 < timeout:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"kb serve exited with {self.proc.returncode}; see {self.log_path or 'its log'}")
            try:
                r = httpx.get(self.base + "/healthz", timeout=5)
                if r.status_code == 200 and len(self.worker_pids()) >= self.workers:
                    return
                if r.status_code == 503:  # up, but it cannot open the build: no use waiting long
                    unavailable = r.text
                    if time.monotonic() - t0 > 15:
                        break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"kb serve did not answer /healthz with 200 within {time.monotonic() - t0:.0f}s"
                           + (f" ({unavailable}; see {self.log_path or 'its log'})" if unavailable else ""))

    def warm(self, n: int | None = None) -> None:
        """Open the build in every worker (each opens it on its first request) and fill what each
        builds on first use (the quiz items, the segmenter), over fresh connections so that
        every worker gets some."""
        paths = ["/healthz", "/search?q=%E6%A8%A1%E5%9E%8B", "/questions/random", "/questions/daily", "/entries?limit=1"]
        with httpx.Client(base_url=self.base, timeout=60) as c:
            for _ in range(n or 6 * self.workers):
                for path in paths:
                    c.get(path, headers={"Connection": "close"})

    def stop(self, timeout: float = 30) -> None:
        if self.proc is None:
            return
        session = self.proc.pid  # start_new_session: the server leads its own session
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # our own session only
                self.proc.wait(timeout=10)
        for pid in self._spawned:  # workers orphaned by a killed supervisor (still in our session)
            try:
                if os.getsid(pid) == session:
                    os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if self._log not in (None, subprocess.DEVNULL):
            self._log.close()
        self.proc = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- processes and memory ---------------------------------------------------------------
    def worker_pids(self) -> list[int]:
        """Processes that serve requests: with one worker, the server itself; with several,
        uvicorn's worker children (not multiprocessing's resource tracker)."""
        if self.proc is None:
            return []
        if self.workers == 1:
            return [self.proc.pid]
        pids = [p for p in children(self.proc.pid) if "resource_tracker" not in cmdline(p)]
        self._spawned |= set(pids)
        return pids

    def rss_mb(self) -> float:
        """Sum of the workers' resident memory (MiB)."""
        return sum(rss_kb(p) for p in self.worker_pids()) / 1024

    def peak_rss_mb(self) -> float:
        return sum(rss_kb(p, "VmHWM") for p in self.worker_pids()) / 1024

    def total_rss_mb(self) -> float:
        """Workers plus the supervisor (when there is one)."""
        extra = rss_kb(self.proc.pid) if self.proc is not None and self.workers > 1 else 0
        return self.rss_mb() + extra / 1024
