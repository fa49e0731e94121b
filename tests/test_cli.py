"""The `kb` command: help everywhere, clear errors without tracebacks, exit codes, progress."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import entry
from typer.testing import CliRunner

from kb import __version__
from kb.cli import app
from kb.loading import load_corpus

runner = CliRunner()
COMMANDS = ["build", "check", "new", "serve", "daily", "import"]


def kb(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kb.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    result = runner.invoke(app, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output and len(result.output.splitlines()) > 5


def test_top_level_help_lists_commands_and_version():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0 and all(c in result.output for c in COMMANDS)
    assert runner.invoke(app, ["--version"]).output.strip() == f"kb {__version__}"


def test_check_reports_all_problems_then_exits_1_without_traceback(make_bank):
    bank = make_bank({"a.md": entry("A", body="[[nowhere]]"), "b.md": "no front matter\n", "c.md": entry("C", category="x")})
    proc = kb("check", "--entries", str(bank))
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    errors = [l.split(":")[0] for l in lines if ": error " in l]
    assert errors == [str(bank / n) for n in ("a.md", "b.md", "c.md")]
    assert lines[-1] == "Aborted: 3 errors, 2 warnings"  # a.md and c.md are orphans too
    assert "Traceback" not in proc.stderr + proc.stdout


def test_check_strict_fails_on_warnings_and_json_lists_them(make_bank):
    bank = make_bank({"a.md": "---\ntitle: A\ncategory: rag\n---\n[[b]]\n", "b.md": entry("B", body="[[a]]")})
    assert kb("check", "--entries", str(bank)).returncode == 0
    strict = kb("check", "--entries", str(bank), "--strict")
    assert strict.returncode == 1 and "warning [no-questions]" in strict.stderr
    as_json = kb("check", "--entries", str(bank), "--json")
    assert '"code": "no-sources"' in as_json.stdout


def test_build_prints_plain_progress_when_not_a_terminal(chain_bank, tmp_path):
    proc = kb("build", "--entries", str(chain_bank), "--out", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert "read: 5/5" in proc.stderr and "index: full in" in proc.stderr and "Built " in proc.stderr
    quiet = kb("build", "--entries", str(chain_bank), "--out", str(tmp_path / "out"), "--quiet")
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_failed_build_says_previous_build_is_kept(make_bank, tmp_path):
    bank = make_bank({"a.md": entry("A", body="[[zzz]]")})
    proc = kb("build", "--entries", str(bank), "--out", str(tmp_path / "out"))
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().endswith("Aborted: 1 errors, 0 warnings. The previous build (if any) is still in place.")


def test_new_scaffolds_a_valid_entry(make_bank):
    bank = make_bank({"rag.md": entry("RAG")})
    result = runner.invoke(app, ["new", "kv-cache", "--entries", str(bank), "--title", "KV Cache", "--category", "inference"])
    assert result.exit_code == 0
    corpus = load_corpus(bank)
    assert corpus.errors == [] and corpus.entries["kv-cache"].title == "KV Cache"
    assert runner.invoke(app, ["new", "kv-cache", "--entries", str(bank)]).exit_code == 1  # never overwrites
    bad = runner.invoke(app, ["new", "Bad_ID", "--entries", str(bank)])
    assert bad.exit_code == 2 and "not a usable id" in bad.output
    unknown = runner.invoke(app, ["new", "x", "--entries", str(bank), "--category", "nope"])
    assert unknown.exit_code == 2 and "unknown category 'nope'" in unknown.output


def test_no_command_imports_api_or_site_from_the_core():
    """The core never imports api/ or site_builder/ (only kb/cli.py sits on top of all)."""
    core = [p for p in (Path(__file__).resolve().parent.parent / "kb").rglob("*.py") if p.name != "cli.py"]
    offenders = [p.name for p in core if "import api" in p.read_text() or "site_builder" in p.read_text()
                 or "from api" in p.read_text()]
    assert offenders == []


def test_build_watch_rebuilds_on_every_change_and_keeps_serving_on_errors(chain_bank, tmp_path):
    import os
    import queue
    import signal
    import sqlite3
    import threading
    import time

    out = tmp_path / "build"
    proc = subprocess.Popen([sys.executable, "-m", "kb.cli", "build", "--watch", "--entries", str(chain_bank),
                             "--out", str(out)], stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()

    def until(prefix: str) -> list[str]:
        seen, deadline = [], time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            seen.append(line)
            if line.startswith(prefix):
                return seen
        raise AssertionError(f"no line starting {prefix!r} in {seen}")

    def body_text(entry_id: str) -> str:
        with sqlite3.connect(out / "kb.sqlite") as db:
            return db.execute("SELECT body_text FROM entries WHERE id = ?", (entry_id,)).fetchone()[0]

    try:
        until("Built ")
        faiss = chain_bank / "faiss.md"
        faiss.write_text(entry("Faiss", body="第二版正文，参见 [[milvus]]。"), encoding="utf-8")
        until("Built ")
        assert "第二版正文" in body_text("faiss")
        faiss.write_text(entry("Faiss", body="坏链接 [[nowhere]]"), encoding="utf-8")
        seen = until("Aborted: 1 errors")
        assert any(f"{faiss}:" in line and "[unresolved-link]" in line for line in seen)
        assert "第二版正文" in body_text("faiss")  # the previous build keeps serving
        faiss.write_text(entry("Faiss", body="修好了 [[milvus]]"), encoding="utf-8")
        until("Built ")
        assert "修好了" in body_text("faiss")
        (chain_bank / "new.md").write_text(entry("New", body="新条目 [[rag]]"), encoding="utf-8")
        until("Built ")
        assert "新条目" in body_text("new")
        from kb.build import build_lock

        with build_lock(out):  # another build is writing: the change waits for it, not for an edit
            faiss.write_text(entry("Faiss", body="锁释放后重建 [[milvus]]"), encoding="utf-8")
            until("Aborted: another kb build is writing")
        until("Built ")
        assert "锁释放后重建" in body_text("faiss")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
        until("Stopped watching")
    finally:
        proc.kill()
        proc.wait()


def test_build_watch_refuses_full():
    result = runner.invoke(app, ["build", "--watch", "--full"])
    assert result.exit_code == 2 and "--full" in result.output
