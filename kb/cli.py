"""The `kb` command: thin commands over library calls (the only module that imports all rooms)."""

from __future__ import annotations

import json
import os
import sys
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kb import __version__
from kb.model import ID_RE, RESERVED_IDS, Issue

if TYPE_CHECKING:
    from kb.build import BuildError, BuildResult

# kb.build, kb.loading and site_builder are imported where a command needs them: `kb build`
# starts parsing the bank's files in a forked child first (kb.drafts.prefetch), so one core
# parses while the other imports Markdown, the segmenter, Whoosh and Jinja2 (most of a second).

app = typer.Typer(
    help="llm-kb: an LLM interview question bank. Build, check, serve and share it.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)

EntriesOpt = Annotated[Path, typer.Option("--entries", help="Folder of entry files (*.md and _categories.yml).")]
OutOpt = Annotated[Path, typer.Option("--out", help="Build folder (a symlink to the current version).")]
StrictOpt = Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only problems.")]


def _version(value: bool) -> None:
    if value:
        out.print(f"kb {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """llm-kb: an LLM interview question bank. Build, check, serve and share it."""


def print_issues(issues: list[Issue], strict: bool) -> int:
    """Print every issue once, sorted, then a summary line; return the number that fail."""
    for issue in issues:
        err.print(issue.format(), markup=False)
    errors = sum(1 for i in issues if i.severity == "error")
    warnings = len(issues) - errors
    return errors + (warnings if strict else 0)


class Reporter:
    """A rich progress bar on a terminal, plain lines otherwise, nothing with --quiet."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty() and not quiet
        self.bar: Progress | None = None
        self.tasks: dict[str, int] = {}
        self._last: dict[str, int] = {}

    def __enter__(self) -> Reporter:
        if self.tty:
            self.bar = Progress(TextColumn("{task.description:>8}"), BarColumn(), MofNCompleteColumn(),
                                TimeElapsedColumn(), console=err, transient=True)
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar:
            self.bar.stop()

    def progress(self, stage: str, done: int, total: int) -> None:
        if self.bar:
            if stage not in self.tasks:
                self.tasks[stage] = self.bar.add_task(stage, total=total)
            self.bar.update(self.tasks[stage], completed=done, total=total)
        elif not self.quiet:  # plain lines: every 10% and the last step
            step = max(1, total // 10)
            if done == total or done // step != self._last.get(stage, -1):
                self._last[stage] = done // step
                if done == total or done % step == 0:
                    err.print(f"{stage}: {done}/{total}", markup=False)

    def log(self, line: str) -> None:
        if not self.quiet:
            err.print(line, markup=False)


def site_emitter(base_url: str):  # noqa: ANN201
    from site_builder import SiteEmitter

    return SiteEmitter(base_url=base_url)


def report_build(outcome: BuildResult | BuildError, out_dir: Path, *, strict: bool, quiet: bool) -> bool:
    """Print a build's warnings and summary, or why it was refused; True when it was built."""
    from kb.build import BuildError

    if isinstance(outcome, BuildError):
        if outcome.issues:
            print_issues(outcome.issues, strict)
        err.print(f"Aborted: {outcome}. The previous build (if any) is still in place.", markup=False)
        return False
    print_issues(outcome.corpus.warnings, strict)
    if not quiet:
        c = outcome.corpus
        err.print(f"Built {c.build_id}: {len(c.entries)} entries, {len(c.questions)} questions, "
                  f"{len(c.edges)} links in {outcome.timings['total']:.2f}s -> {out_dir}", markup=False)
    return True


def run_build(entries: Path, out_dir: Path, *, strict: bool = False, quiet: bool = False, full: bool = False,
              base_url: str = "") -> None:
    """Build with progress and issue reporting; exit 1 (nothing swapped in) on failure."""
    from kb.drafts import prefetch

    # Without a previous build (whose cache knows the files) every file is parsed: start now.
    early = prefetch(entries) if full or not (out_dir / "BUILD_ID").is_file() else None
    try:
        from kb.build import BuildError, IndexEmitter, StoreEmitter, build

        emitters = [StoreEmitter(), IndexEmitter(), site_emitter(base_url)]
        with Reporter(quiet) as rep:
            try:
                outcome: BuildResult | BuildError = build(
                    entries, out_dir, emitters, strict=strict, full=full, settings_key=f"base_url={base_url}",
                    progress=rep.progress, log=rep.log, prefetched=early)
            except BuildError as exc:
                outcome = exc
    finally:
        if early is not None:
            early.cancel()  # a no-op once the build took its result
    if not report_build(outcome, out_dir, strict=strict, quiet=quiet):
        raise typer.Exit(1)


def watch_build(entries: Path, out_dir: Path, *, strict: bool = False, quiet: bool = False, base_url: str = "") -> None:
    """Build, then rebuild on every change to the bank until interrupted (Ctrl-C)."""
    from kb.build import IndexEmitter, StoreEmitter
    from kb.watch import watch

    emitters = [StoreEmitter(), IndexEmitter(), site_emitter(base_url)]
    rep = Reporter(quiet)
    err.print(f"Watching {entries} (Ctrl-C to stop)", markup=False)
    try:
        watch(entries, out_dir, emitters, lambda o: report_build(o, out_dir, strict=strict, quiet=quiet),
              strict=strict, settings_key=f"base_url={base_url}", log=rep.log)
    except KeyboardInterrupt:
        err.print("Stopped watching.", markup=False)


@app.command("build")
def build_cmd(
    entries: EntriesOpt = Path("entries"),
    out_dir: OutOpt = Path("build"),
    strict: StrictOpt = False,
    quiet: QuietOpt = False,
    full: Annotated[bool, typer.Option("--full", help="Rebuild everything, ignoring the previous build.")] = False,
    base_url: Annotated[str, typer.Option("--base-url", help="Public URL of the site, for sitemap.xml and the feed.")] = "",
    watch: Annotated[bool, typer.Option("--watch", help="Keep running: rebuild on every change to the entries.")] = False,
) -> None:
    """Validate the bank and write kb.sqlite, index/ and site/ into the build folder.

    The new build is written beside the old one and swapped in at the end: a failed or
    interrupted build leaves the previous one whole and serving. With --watch, every change
    to the entries is rebuilt at once (in a warm process: an edit costs well under a second).
    """
    if watch:
        if full:
            raise typer.BadParameter("--watch rebuilds incrementally; run `kb build --full` on its own",
                                     param_hint="--full")
        watch_build(entries, out_dir, strict=strict, quiet=quiet, base_url=base_url)
        return
    run_build(entries, out_dir, strict=strict, quiet=quiet, full=full, base_url=base_url)


@app.command("check")
def check_cmd(
    entries: EntriesOpt = Path("entries"),
    strict: StrictOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the issues as JSON.")] = False,
    out_dir: Annotated[Path, typer.Option("--out", help="Build folder whose question ids must not vanish.")]
    = Path("build"),
) -> None:
    """Validate every entry and print every problem as path:line: message (exit 1 on errors)."""
    from kb.loading import load_corpus
    from kb.question_ids import previous_question_ids, question_id_issues

    corpus = load_corpus(entries)
    corpus.issues = sorted(corpus.issues + question_id_issues(corpus, previous_question_ids(out_dir)),
                           key=lambda i: (i.path, i.line, i.code, i.message))
    failing = print_issues([] if as_json else corpus.issues, strict)
    if as_json:
        out.print(json.dumps([i.as_dict() for i in corpus.issues], ensure_ascii=False, indent=2), markup=False)
        failing = len(corpus.issues if strict else corpus.errors)
    summary = f"{len(corpus.errors)} errors, {len(corpus.warnings)} warnings"
    if failing:
        err.print(f"Aborted: {summary}", markup=False)
        raise typer.Exit(1)
    err.print(f"OK: {len(corpus.entries)} entries, {len(corpus.questions)} questions, {summary}", markup=False)


NEW_TEMPLATE = """---
title: {title}
aliases: []
category: {category}
tags: []
difficulty: 2
added: {today}
summary: 一句话讲清它是什么。
prerequisites: []
related: []
sources:
  - "Author et al., Paper title, year, arXiv:0000.00000"
questions:
  - id: {id}-what
    q: 什么是 {title}？
    difficulty: 1
    a: |
      先说要点，再展开。
---
## 是什么

在这里解释概念，并用 `[[id]]` 的写法链接到相关条目（把 id 换成真实条目）。
"""


@app.command("new")
def new_cmd(
    entry_id: Annotated[str, typer.Argument(metavar="ID", help="The new entry's id: lowercase letters, digits, dashes.")],
    entries: EntriesOpt = Path("entries"),
    title: Annotated[str, typer.Option(help="Title (defaults to the id).")] = "",
    category: Annotated[str, typer.Option(help="Category key from _categories.yml (defaults to the first).")] = "",
) -> None:
    """Scaffold a valid entry file entries/ID.md to fill in."""
    if not ID_RE.match(entry_id) or entry_id in RESERVED_IDS:
        raise typer.BadParameter(f"'{entry_id}' is not a usable id: use lowercase letters, digits and dashes",
                                 param_hint="ID")
    path = entries / f"{entry_id}.md"
    if path.exists():
        err.print(f"{path} already exists; not overwritten", markup=False)
        raise typer.Exit(1)
    from kb.loading import load_categories

    cats = load_categories(entries, [])
    if category and cats and category not in cats:
        raise typer.BadParameter(f"unknown category '{category}'; known: {', '.join(cats)}", param_hint="--category")
    category = category or next(iter(cats), "foundations")
    entries.mkdir(parents=True, exist_ok=True)
    path.write_text(NEW_TEMPLATE.format(title=title or entry_id, category=category, id=entry_id,
                                        today=date.today().isoformat()), encoding="utf-8")
    out.print(f"Created {path}. Fill it in, then run `kb check`.", markup=False)


@app.command("import")
def import_cmd(
    paths: Annotated[list[Path], typer.Argument(metavar="PATH", help="Markdown files, or folders to search for "
                                                "*.md / *.markdown (a file you name may be any UTF-8 Markdown, e.g. .txt).")],
    into: Annotated[Path, typer.Option("--into", help="Bank folder to write entries into (holds _categories.yml).")]
    = Path("entries"),
    split_level: Annotated[int, typer.Option("--split-level", min=1, max=3,
                                             help="Heading level that starts an entry: 1 (#), 2 (##) or 3 (###).")] = 1,
    category: Annotated[str, typer.Option(help="Category key for every entry (default: a category the source's "
                                          "front-matter names, else the first of _categories.yml).")] = "",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (files, ids, questions); write nothing.")]
    = False,
    force: Annotated[bool, typer.Option("--force", help="Overwrite entry files that already exist.")] = False,
) -> None:
    """Turn existing notes (blog posts, Obsidian vaults, Notion exports) into draft entries. See docs/import.md.

    Each heading at --split-level becomes an entry; headings, bold list items and bold paragraphs
    ending in ？/? become its questions. Exit status 1 if any source file could not be imported.
    """
    from kb.importer import ImportFailure, run_import

    try:
        result = run_import(paths, into, split_level=split_level, category=category, dry_run=dry_run, force=force)
    except ImportFailure as exc:
        if exc.param:
            raise typer.BadParameter(str(exc), param_hint=exc.param) from None
        err.print(f"Aborted: {exc}", markup=False)
        raise typer.Exit(1) from None
    for line in result.lines:
        out.print(line, markup=False)
    for failure in result.failures:
        err.print(failure, markup=False)
    if result.failures:
        raise typer.Exit(1)


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    out_dir: OutOpt = Path("build"),
    entries: EntriesOpt = Path("entries"),
    watch: Annotated[bool, typer.Option("--watch", help="Also rebuild on every change to the entries "
                                                         "(`kb build --watch` beside the server).")] = False,
) -> None:
    """Serve the API and the static site (under /site/), building first if there is no build.

    A new build is picked up by the next request, without a restart; with --watch, every saved
    edit is rebuilt (in a second process) and shows on the next page load.
    """
    import os
    import subprocess

    import uvicorn

    from kb.build import current
    from kb.forking import die_with_parent

    if current(out_dir) is None:
        err.print(f"No build in {out_dir}: building {entries} first.", markup=False)
        run_build(entries, out_dir)
    # absolute, but not resolved: the server must follow the `build` symlink as builds swap it
    os.environ["KB_BUILD"] = os.path.abspath(out_dir)
    watcher = None
    if watch:
        parent = os.getpid()
        watcher = subprocess.Popen([sys.executable, "-m", "kb.cli", "build", "--watch", "--entries", str(entries),
                                    "--out", str(out_dir)], preexec_fn=lambda: die_with_parent(parent))
    try:
        uvicorn.run("api.app:app_from_env", factory=True, host=host, port=port, workers=workers,
                    log_level="info", server_header=False)
    finally:
        if watcher is not None:
            watcher.terminate()
            watcher.wait()


@app.command("daily")
def daily_cmd(
    day: Annotated[str, typer.Option("--date", metavar="YYYY-MM-DD", help="The day (default: today, local time).")] = "",
    to: Annotated[list[str], typer.Option("--to", metavar="TARGET", help="stdout, slack, discord, feishu, dingtalk, wecom or telegram; "
                                                        "repeat it or separate with commas.")] = ["stdout"],  # noqa: B006
    tag: Annotated[str | None, typer.Option(help="Only questions of entries with this tag.")] = None,
    category: Annotated[str | None, typer.Option(help="Only questions of this category.")] = None,
    difficulty: Annotated[int | None, typer.Option(min=1, max=3, help="Only questions of this difficulty.")] = None,
    salt: Annotated[str, typer.Option(help="A group's own order of the same questions.")] = "",
    with_answer: Annotated[bool, typer.Option("--with-answer-of-yesterday", help="Add yesterday's answer.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Render and check every payload; send nothing.")] = False,
    base_url: Annotated[str, typer.Option("--base-url", help="Public URL of the site, for question links.")] = "",
    ledger: Annotated[Path, typer.Option("--ledger", help="What was posted when (a re-run never posts twice).")]
    = Path(".kb-daily-ledger.json"),
    entries: EntriesOpt = Path("entries"),
) -> None:
    """Post the day's interview question (and yesterday's answer) to chat groups. See docs/daily.md.

    \b
    Settings come only from environment variables, and are never printed:
      slack     KB_SLACK_WEBHOOK_URL
      discord   KB_DISCORD_WEBHOOK_URL
      feishu    KB_FEISHU_WEBHOOK_URL, KB_FEISHU_SECRET (if the bot signs)
      dingtalk  KB_DINGTALK_WEBHOOK_URL, KB_DINGTALK_SECRET (if the robot signs)
      wecom     KB_WECOM_WEBHOOK_URL
      telegram  KB_TELEGRAM_BOT_TOKEN, KB_TELEGRAM_CHAT_ID, KB_TELEGRAM_API_BASE (optional)
      retries   KB_DAILY_RETRY_ATTEMPTS (5), KB_DAILY_RETRY_BASE (1 s), KB_DAILY_RETRY_CAP (30 s),
                KB_DAILY_RETRY_MAX_WAIT (120 s), KB_DAILY_TIMEOUT (15 s)

    Exit status 1 if any channel failed (the others are still posted).
    """
    from kb import bot
    from kb.loading import load_corpus

    try:
        when = date.fromisoformat(day) if day else date.today()
    except ValueError:
        raise typer.BadParameter(f"'{day}' is not a date like 2026-12-01", param_hint="--date") from None
    try:
        targets = bot.parse_targets(to)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--to") from None
    corpus = load_corpus(entries)
    if corpus.errors:
        print_issues(corpus.errors, False)
        err.print(f"Aborted: the bank has {len(corpus.errors)} errors; run `kb check`.", markup=False)
        raise typer.Exit(1)
    opts = bot.DailyOptions(when, targets, tag, category, difficulty, salt, with_answer, dry_run, base_url, ledger)
    try:
        results = bot.run_daily(corpus, opts, out=typer.echo, log=lambda line: typer.echo(line, err=True))
    except (bot.NoQuestion, bot.ConfigError, bot.LedgerError) as exc:
        err.print(f"Aborted: {exc}", markup=False)
        raise typer.Exit(1) from None
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def console() -> None:
    """The `kb` console script: the app, then an immediate exit. A build leaves a process
    holding the whole corpus (millions of objects); freeing them one by one at interpreter
    exit costs a quarter of a second per 1,000 entries and frees nothing the OS would not.
    Every command has closed its files and joined its children by the time the app returns."""
    try:
        app()
    except SystemExit as exc:
        if not isinstance(exc.code, int | None):
            raise  # a message to print: the normal exit prints it
        code = exc.code or 0
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except OSError:  # e.g. `kb quiz | head` closed the pipe: as Python's own exit does
                code = code or 120
        os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    console()
