"""`kb import`: turn existing Markdown notes into draft entries of the bank.

Read everything, then write: every source file is read and split (`kb.import_questions`), every
draft gets its id, title and question ids, conflicts with the bank are decided, links are
resolved against the bank plus the drafts, and only then are files written. A bad source file is
reported and skipped; the others are still imported. Nothing is overwritten without `force`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import rjieba
import yaml
from pydantic import ValidationError
from pypinyin import lazy_pinyin

from kb.drafts import entry_files, read_draft
from kb.frontmatter import FrontMatterError
from kb.frontmatter import parse as parse_frontmatter
from kb.import_questions import NOTION_HASH, QA, Linker, Section, clean_text, extract, is_question, split_sections
from kb.links import norm
from kb.loading import load_categories
from kb.model import RESERVED_IDS, FrontMatter

MARKDOWN_SUFFIXES = (".md", ".markdown")
NOT_MARKDOWN = frozenset(".json .yaml .yml .toml .csv .tsv .html .htm .xml .py .js .ts .ipynb .pdf .doc .docx .odt "
                         ".rtf .png .jpg .jpeg .gif .svg .webp .zip .gz".split())
MAX_SOURCE_BYTES = 20 << 20
MAX_ID = 40
_GENERIC_ZH = frozenset("的 地 得 和 与 及 或 之 是 有 吗 呢 什么 是什么 哪些 有哪些 如何 怎么 怎样 为什么 为何 关于 相关 区别 差异 "
                        "对比 比较 常见 概念 算法 文件 方法 简介 介绍 基本 原理 问题 总结 笔记 一些 各自 优缺点".split())
_GENERIC_EN = frozenset("a an the and or of vs versus to in on for with is are what how why does do todo tbd".split())
_PINYIN = {"微调": "weitiao", "调参": "tiaocan", "调优": "tiaoyou", "重排": "chongpai", "重排序": "chongpaixu", "长": "chang"}
# Words of the field the segmenter would otherwise cut in two (数据集 -> 数据 / 集).
_DOMAIN_WORDS = ("数据集 预训练 向量库 大模型 微调 召回 重排 蒸馏 剪枝 量化 推理 注意力 位置编码 词表 分词 对齐 幻觉 "
                 "显存 算子 张量 梯度 嵌入 检索 多模态 智能体").split()
_SEGMENTER: rjieba.Jieba | None = None
_CJK = r"[\u3400-\u9fff]+"
_VAGUE_STEMS = frozenset("readme index untitled note notes draft drafts todo home".split())


class ImportFailure(Exception):
    """The import cannot start (no bank, unknown category); `param` names the option at fault."""

    def __init__(self, message: str, param: str = "") -> None:
        super().__init__(message)
        self.param = param


@dataclass
class Meta:
    """What a source's front-matter says, mapped onto entry keys."""

    title: str = ""
    aliases: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    category: str = ""
    added: date | None = None
    summary: str = ""
    slug: str = ""
    difficulty: int | None = None
    dropped: list[str] = field(default_factory=list)


@dataclass
class Draft:
    source: str
    line: int  # 1-based line of the heading in the source file
    title: str
    names: list[str]  # how the source may name it: heading text, file stem, front-matter title
    parent: str
    body: str
    qas: list[QA]
    meta: Meta
    slug: str = ""  # an id the source gave (Hugo `slug`), single-entry files only
    stem: str = ""  # the file name of a single-entry file (Obsidian names notes by concept)
    summary: str = ""
    category: str = ""
    id: str = ""
    aliases: list[str] = field(default_factory=list)
    qids: list[str] = field(default_factory=list)
    action: str = "create"  # create, overwrite, unchanged, skip
    reason: str = ""
    notes: list[str] = field(default_factory=list)
    text: str = ""


@dataclass
class Bank:
    ids: dict[str, str] = field(default_factory=dict)  # id -> file
    names: dict[str, str] = field(default_factory=dict)  # norm(id/title/alias/stem) -> id
    qids: dict[str, str] = field(default_factory=dict)  # question id -> entry id
    bodies: dict[str, str] = field(default_factory=dict)


@dataclass
class Result:
    lines: list[str] = field(default_factory=list)  # the plan / report, for stdout
    failures: list[str] = field(default_factory=list)  # one per source file that failed
    drafts: list[Draft] = field(default_factory=list)


# -- reading sources ----------------------------------------------------------------------------

def _read(path: Path, explicit: bool) -> str:
    if explicit and path.suffix.lower() in NOT_MARKDOWN:
        raise ValueError(f"not a Markdown file ({path.suffix}); kb import reads .md, .markdown or plain-text notes")
    raw = path.read_bytes()
    if len(raw) > MAX_SOURCE_BYTES:
        raise ValueError(f"file is {len(raw):,} bytes, too large to be notes")
    if not raw.strip():
        raise ValueError("the file is empty")
    if b"\x00" in raw:
        raise ValueError("not a text file (it contains NUL bytes); kb import reads Markdown")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); save it as UTF-8") from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    return re.sub("[\r\x85\u2028\u2029]", "\n", text)  # YAML would read these as line breaks too


def _front_matter(text: str) -> tuple[dict, str, int, str]:
    """(data, body, lines before the body, note): YAML between `---` or TOML between `+++`."""
    lines = text.split("\n")
    fence = lines[0].rstrip()
    if fence not in ("---", "+++"):
        return {}, text, 0, ""
    closers = (fence, "...") if fence == "---" else (fence,)
    end = next((i for i in range(1, len(lines)) if lines[i].rstrip() in closers), None)
    if end is None:
        return {}, text, 0, ""
    raw, body = "\n".join(lines[1:end]), "\n".join(lines[end + 1 :])
    try:
        data = tomllib.loads(raw) if fence == "+++" else yaml.safe_load(raw)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        kind = "TOML" if fence == "+++" else "YAML"
        return {}, body, end + 1, f"front-matter is not valid {kind} ({str(exc).splitlines()[0]}); ignored"
    if data is not None and not isinstance(data, dict):
        return {}, body, end + 1, "front-matter is not a mapping of keys; ignored"
    return data or {}, body, end + 1, ""


def _strings(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [s.strip() for s in value.split(",") if s.strip()]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


def _map_meta(data: dict, categories: dict[str, str]) -> Meta:
    meta = Meta()
    by_name = {norm(k): k for k in categories} | {norm(v): k for k, v in categories.items()}
    for key, value in data.items():
        k = str(key).lower()
        if k == "title" and value:
            meta.title = " ".join(str(value).split())
        elif k in ("tags", "tag", "keywords"):
            meta.tags += [t.lstrip("#") for t in _strings(value)]
        elif k in ("categories", "category"):
            for c in _strings(value):
                if norm(c) in by_name and not meta.category:
                    meta.category = by_name[norm(c)]
                else:
                    meta.tags.append(c)
        elif k in ("aliases", "alias"):
            meta.aliases += _strings(value)
        elif k in ("date", "created") and value and meta.added is None:
            if isinstance(value, (date, datetime)):
                meta.added = value.date() if isinstance(value, datetime) else value
            else:
                try:
                    meta.added = date.fromisoformat(str(value)[:10])
                except ValueError:
                    meta.dropped.append(f"{key} (not a date: {value!r})")
        elif k in ("summary", "description") and isinstance(value, str) and value.strip():
            meta.summary = " ".join(value.split())
        elif k in ("slug", "id") and isinstance(value, str):
            meta.slug = value
        elif k == "difficulty" and value in (1, 2, 3):
            meta.difficulty = int(value)
        elif k not in ("date", "created", "title", "summary", "description"):
            meta.dropped.append(str(key))
    meta.tags = list(dict.fromkeys(t for t in meta.tags if t))
    meta.aliases = list(dict.fromkeys(a for a in meta.aliases if a))
    return meta


def _no_sections(levels: list[int], split_level: int) -> str:
    if not levels:
        return "no headings to split at: each entry starts at a heading (# Title); add headings or a front-matter title"
    shown = ", ".join(str(x) for x in levels)
    hint = f": try --split-level {min(levels)}" if min(levels) <= 3 else ""
    return (f"no level-{split_level} headings ({'#' * split_level} Title) to split at; "
            f"its headings are level {shown}{hint}")


def read_source(path: Path, shown: str, explicit: bool, split_level: int, categories: dict[str, str]) -> list[Draft]:
    """The draft entries of one source file; raises ValueError with a message for the author."""
    data, body, offset, fm_note = _front_matter(_read(path, explicit))
    meta = _map_meta(data, categories)
    sections, levels, dropped_line = split_sections(body, split_level)
    notes = [fm_note] if fm_note else []
    if not sections:
        if not meta.title:
            raise ValueError(_no_sections(levels, split_level))
        sections = [Section(meta.title, -1, body, "")]  # the whole file is one entry, titled by its front-matter
        dropped_line = -1
    elif dropped_line >= 0:
        notes.append(f"text from line {dropped_line + offset + 1} is outside every level-{split_level} section; "
                     "not imported")
    stem = NOTION_HASH.sub("", path.stem)
    drafts = []
    for s in sections:
        title = clean_text(s.title) or s.title
        body_md, qas = extract(s.text, title if is_question(s.title) else None)
        if not body_md and not qas:
            notes.append(f"line {s.line + offset + 1}: section '{title}' is empty; not imported")
            continue
        drafts.append(Draft(shown, s.line + offset + 1, title, [s.title, title], s.parent or meta.title or stem,
                            body_md, qas, meta))
    if not drafts:
        raise ValueError("every section is empty: nothing to import")
    if meta.dropped:
        notes.append("front-matter keys with no place in an entry were dropped: " + ", ".join(meta.dropped))
    whole = [k for k, v in (("title", meta.title), ("aliases", meta.aliases), ("summary", meta.summary),
                            ("slug", meta.slug)) if v]
    if len(drafts) == 1:
        d = drafts[0]
        d.names += [stem, meta.title]
        d.aliases = [a for a in [meta.title, *meta.aliases] if a and norm(a) != norm(d.title)]
        d.summary, d.slug, d.stem = meta.summary, meta.slug, stem
    elif whole:
        notes.append(f"front-matter keys {', '.join(whole)} describe the whole file, not one of its {len(drafts)} "
                     "entries: not used")
        drafts[0].names.append(stem)
    drafts[0].notes = notes
    return drafts


# -- ids ----------------------------------------------------------------------------------------

def _pinyin(word: str) -> str:
    return _PINYIN.get(word) or "".join(lazy_pinyin(word))


def _cut(text: str) -> list[str]:
    global _SEGMENTER
    if _SEGMENTER is None:
        _SEGMENTER = rjieba.Jieba()
        for word in _DOMAIN_WORDS:
            _SEGMENTER.add_word(word, None, None)
    return _SEGMENTER.cut(text)


def _meaningful(word: str) -> str:
    """`word` without generic parts: 推理方法 -> 推理, 基本原理 -> ''."""
    changed = True
    while changed and word not in _GENERIC_ZH:
        changed = False
        for g in _GENERIC_ZH:
            if len(g) > 1 and word != g and (word.startswith(g) or word.endswith(g)):
                word, changed = (word[len(g):] if word.startswith(g) else word[: -len(g)]), True
    return "" if word in _GENERIC_ZH else word


def make_id(title: str) -> str:
    """A readable ASCII id: English terms when they carry the title, else pinyin (+ English)."""
    text = title
    for big in ("大语言模型", "大模型"):
        if text.replace(big, "").strip(" ？?"):
            text = text.replace(big, " ")
    parts: list[tuple[str, str]] = []  # ("en" | "zh", ascii word)
    for word in _cut(text):
        if word.isascii():
            parts += [("en", w.lower()) for w in re.findall(r"[A-Za-z0-9]+", word) if w.lower() not in _GENERIC_EN]
        elif re.search(r"[\u3400-\u9fff]", word) and (word := _meaningful(word)):
            parts.append(("zh", _pinyin(word)))
    while parts and parts[0][1].isdigit() and len(parts) > 1:
        parts.pop(0)  # list numbering: "1. Pretraining"
    en = [w for kind, w in parts if kind == "en"]
    ascii_letters = sum(len(w) for w in en)
    cjk = len(re.findall(r"[\u3400-\u9fff]", text))
    if en and (len(en) >= 2 or len(en[0]) >= 3) and (len(parts) - len(en) <= 1 or ascii_letters >= cjk):
        parts = [("en", w) for w in en]  # the English term names the concept: HNSW算法 -> hnsw
    words = [w for _, w in parts] or [_pinyin(title)]
    slug = re.sub(r"-+", "-", re.sub(r"[^a-z0-9]+", "-", "-".join(words).lower())).strip("-") or "entry"
    while len(slug) > MAX_ID and "-" in slug[: MAX_ID + 1]:
        slug = slug[: slug[: MAX_ID + 1].rindex("-")]
    slug = slug[:MAX_ID].strip("-")
    return f"{slug}-entry" if slug in RESERVED_IDS else slug


def _base_id(d: Draft) -> str:
    """The source's slug; else an English file name when the title only gives pinyin; else the title's id."""
    if re.fullmatch(r"[a-z0-9][a-z0-9-]*", d.slug) and d.slug not in RESERVED_IDS:
        return d.slug
    title_id = make_id(d.title)
    pinyin = re.search(_CJK, d.title) and title_id != make_id(re.sub(_CJK, " ", d.title))
    if pinyin and re.fullmatch(r"[A-Za-z][A-Za-z0-9 _.+-]*", d.stem) and len(re.findall("[A-Za-z]", d.stem)) >= 3 \
            and d.stem.lower() not in _VAGUE_STEMS:
        return make_id(d.stem)  # "Vector Database.md" titled 向量数据库 -> vector-database
    return title_id


# -- the bank and the plan ------------------------------------------------------------------------

def scan_bank(into: Path) -> Bank:
    bank = Bank()
    for path in entry_files(into):
        d = read_draft(path, str(path), [])
        if d is None:
            continue
        bank.ids[d.id] = str(path)
        bank.bodies[d.id] = d.doc.body
        for name in (d.id, d.fm.title, *d.fm.aliases, path.stem):
            bank.names.setdefault(norm(name), d.id)
        bank.qids.update({q.id: d.id for q in d.fm.questions})
    return bank


def _assign(drafts: list[Draft], bank: Bank, into: Path, force: bool, category: str) -> None:
    """Titles and ids unique within the import, then conflicts with the bank, aliases, question ids.

    Everything inside the import is decided before the bank is looked at, so a second run names
    every draft exactly as the first did (and finds each in its place).
    """
    counts: dict[str, int] = {}
    for d in drafts:
        counts[norm(d.title)] = counts.get(norm(d.title), 0) + 1
    for d in drafts:  # two sections called 优点: 优点（方式2）, 优点（方式3）
        if counts[norm(d.title)] > 1 and d.parent and norm(d.parent) != norm(d.title):
            d.notes.append(f"title '{d.title}' occurs more than once; named '{d.title}（{d.parent}）'")
            d.title = f"{d.title}（{d.parent}）"
    base = [_base_id(d) for d in drafts]
    used: set[str] = set()
    for d, b in zip(drafts, base):
        d.id, n = b, 2
        while d.id in used or (d.id != b and d.id in base):
            d.id, n = f"{b}-{n}", n + 1
        used.add(d.id)
    own: dict[str, str] = {d.id: d.id for d in drafts}
    for d in drafts:
        title, n = d.title, 2
        while own.get(norm(title), d.id) != d.id:
            title, n = f"{d.title}（{n}）", n + 1
        if title != d.title:
            d.notes.append(f"title '{d.title}' is taken by another entry of this import; named '{title}'")
        d.title = title
        own[norm(title)] = d.id
    replaced = {d.id for d in drafts if force and (into / f"{d.id}.md").exists()
                and bank.ids.get(d.id, str(into / f"{d.id}.md")) == str(into / f"{d.id}.md")}
    names = {k: v for k, v in bank.names.items() if v not in replaced}
    qids = {q for q, owner in bank.qids.items() if owner not in replaced}
    for d in drafts:
        path = into / f"{d.id}.md"
        clash = next(((kind, name, names[norm(name)]) for kind, name in (("id", d.id), ("title", d.title))
                      if names.get(norm(name), d.id) != d.id), None)
        if d.id in bank.ids and bank.ids[d.id] != str(path):
            d.action, d.reason = "skip", f"id '{d.id}' is already used by {bank.ids[d.id]}"
        elif path.exists() and not force:
            d.action, d.reason = "skip", f"{path} already exists (use --force to overwrite)"
        elif clash:
            kind, name, owner = clash
            d.action, d.reason = "skip", (f"{kind} '{name}' already names entry '{owner}' "
                                          f"({bank.ids.get(owner, '?')}); merge it by hand or rename the heading")
        elif path.exists():
            d.action = "overwrite"
        if d.action == "skip":
            continue
        d.category = category or d.meta.category
        for alias in list(d.aliases):
            if names.get(norm(alias), d.id) != d.id or own.get(norm(alias), d.id) != d.id:
                d.aliases.remove(alias)
                d.notes.append(f"alias '{alias}' already names another entry; dropped")
            else:
                own[norm(alias)] = d.id
        n = 1
        for _ in d.qas:
            while f"{d.id}-q{n}" in qids:
                n += 1
            d.qids.append(f"{d.id}-q{n}")
            qids.add(f"{d.id}-q{n}")
            n += 1


def _linker(bank: Bank, drafts: list[Draft]) -> Linker:
    names, extra, bodies = dict(bank.names), {}, dict(bank.bodies)
    for d in drafts:
        if d.action == "skip":
            for name in d.names:  # a skipped draft's names lead to the entry that was in its way
                extra.setdefault(norm(name), bank.names.get(norm(name), d.id))
            continue
        names.update({norm(name): d.id for name in (d.id, d.title, *d.aliases)})
        for name in filter(None, d.names):
            extra.setdefault(norm(name), d.id)
        bodies[d.id] = d.body
    return Linker(names, extra, bodies)


# -- writing ------------------------------------------------------------------------------------

class _Dumper(yaml.SafeDumper):
    """Safe YAML; multi-line strings as `|` block scalars, lists of strings in flow style."""


_Dumper.add_representer(str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s,
                                                             style="|" if "\n" in s else None))
_Dumper.add_representer(list, lambda d, xs: d.represent_sequence("tag:yaml.org,2002:seq", xs,
                                                                  flow_style=all(isinstance(x, str) for x in xs)))


def render(d: Draft, category: str) -> str:
    fm: dict = {"title": d.title}
    if d.aliases:
        fm["aliases"] = d.aliases
    fm["category"] = category
    if d.meta.tags:
        fm["tags"] = d.meta.tags
    if d.meta.difficulty:
        fm["difficulty"] = d.meta.difficulty
    fm["added"] = d.meta.added or date.today()
    if d.summary:
        fm["summary"] = d.summary
    if d.qas:
        fm["questions"] = [{"id": qid, "q": qa.q, "a": qa.a} for qid, qa in zip(d.qids, d.qas)]
    head = yaml.dump(fm, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=4096)
    return f"---\n{head}---\n" + (f"{d.body}\n" if d.body else "")


def _valid(text: str, d: Draft) -> str:
    """'' when kb.loading reads `text` back as exactly `d`, else the reason (a guard against our own bugs)."""
    try:
        fm = FrontMatter.model_validate(parse_frontmatter(text).data)
    except (FrontMatterError, ValidationError) as exc:
        return str(exc).splitlines()[0]
    if fm.title != d.title or [(q.q, q.a) for q in fm.questions] != [(qa.q, qa.a) for qa in d.qas]:
        return "the title or an answer does not read back as written"
    return ""


def _sources(paths: list[Path], into: Path, failures: list[str]) -> list[tuple[Path, str, bool]]:
    out: list[tuple[Path, str, bool]] = []
    bank_dir = into.resolve()
    for p in paths:
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in MARKDOWN_SUFFIXES
                           and not any(part.startswith(".") for part in f.relative_to(p).parts)
                           and bank_dir not in f.resolve().parents)
            if not found:
                failures.append(f"{p}: no .md or .markdown files in this folder")
            out += [(f, str(f), False) for f in found]
        elif p.is_file():
            out.append((p, str(p), True))
        else:
            failures.append(f"{p}: no such file or folder")
    seen: set[Path] = set()
    return [s for s in out if not (s[0].resolve() in seen or seen.add(s[0].resolve()))]


def run_import(paths: list[Path], into: Path, *, split_level: int = 1, category: str = "", dry_run: bool = False,
               force: bool = False) -> Result:
    """Plan the import of `paths` into the bank folder `into` and (unless `dry_run`) write it."""
    issues: list = []
    categories = load_categories(into, issues) if into.is_dir() else {}
    if not categories:
        why = issues[0].message if issues else "folder does not exist"
        raise ImportFailure(f"{into} is not a bank folder ({why}); create {into / '_categories.yml'} first")
    if category and category not in categories:
        raise ImportFailure(f"unknown category '{category}'; known: {', '.join(categories)}", "--category")
    result = Result()
    drafts: list[Draft] = []
    for path, shown, explicit in _sources(paths, into, result.failures):
        try:
            drafts += read_source(path, shown, explicit, split_level, categories)
        except (ValueError, OSError) as exc:
            result.failures.append(f"{shown}: {exc}")
    bank = scan_bank(into)
    _assign(drafts, bank, into, force, category)
    linker = _linker(bank, drafts)
    default = next(iter(categories))
    for d in drafts:
        if d.action == "skip":
            continue
        unresolved: list[str] = []
        local: list[str] = []
        d.body = linker.rewrite(d.body, d.id, unresolved, local)
        d.qas = [QA(qa.q, linker.rewrite(qa.a, d.id, unresolved, local).expandtabs(4), qa.line) for qa in d.qas]
        if unresolved:
            d.notes.append(f"{d.id}: links to no entry, kept for `kb check` to report: "
                           f"{', '.join(dict.fromkeys(unresolved))}")
        if local:
            d.notes.append(f"{d.id}: local files linked as written: {', '.join(dict.fromkeys(local))}; "
                           "copy them where the site can serve them, or link URLs")
        d.text = render(d, d.category or default)
        if problem := _valid(d.text, d):
            d.action, d.reason = "skip", f"could not build a valid entry ({problem}); please report this"
        elif d.action == "overwrite" and (into / f"{d.id}.md").read_text(encoding="utf-8") == d.text:
            d.action = "unchanged"
    if not dry_run:
        _write(drafts, into, result.failures)
    result.drafts = drafts
    result.lines = report(drafts, into, dry_run, len(result.failures))
    return result


def _write(drafts: list[Draft], into: Path, failures: list[str]) -> None:
    for d in drafts:
        if d.action in ("create", "overwrite"):
            try:
                (into / f"{d.id}.md").write_text(d.text, encoding="utf-8")
            except OSError as exc:
                d.action, d.reason = "skip", f"cannot be written ({exc.strerror})"
                failures.append(f"{into / f'{d.id}.md'}: cannot be written ({exc.strerror})")


def _n(count: int, one: str, many: str = "") -> str:
    return f"{count} {one if count == 1 else (many or one + 's')}"


def report(drafts: list[Draft], into: Path, dry_run: bool, failed: int) -> list[str]:
    lines = ["Dry run: nothing is written."] if dry_run else []
    width = max((len(str(into / f"{d.id}.md")) for d in drafts), default=0)
    groups: dict[str, list[Draft]] = {}
    for d in drafts:
        groups.setdefault(d.source, []).append(d)
    for source, group in groups.items():
        questions = sum(len(d.qas) for d in group)
        lines.append(f"{source}: {_n(len(group), 'entry', 'entries')}, {_n(questions, 'question')}")
        for d in group:
            extra = f"  ({_n(len(d.qas), 'question')})" if d.qas else ""
            what = f"{d.title}: {d.reason}" if d.action == "skip" else d.title + extra
            lines.append(f"  {d.action:<9} {str(into / f'{d.id}.md'):<{width}}  {what}")
        lines += [f"  note: {note}" for d in group for note in dict.fromkeys(d.notes)]
    written = [d for d in drafts if d.action in ("create", "overwrite")]
    skipped = sum(d.action == "skip" for d in drafts)
    verb = "Would import" if dry_run else "Imported"
    questions = sum(len(d.qas) for d in written)
    lines.append(f"{verb} {_n(len(written), 'entry', 'entries')} with {_n(questions, 'question')} "
                 f"into {into} ({skipped} skipped, {sum(d.action == 'unchanged' for d in drafts)} unchanged, "
                 f"{_n(failed, 'file')} failed).")
    if written and not dry_run:
        lines += [
            "",
            "Next steps:",
            f"  1. Run `kb check --entries {into}`: it lists what is left (no summary, no sources, links to nowhere).",
            "  2. In each new entry add a one-sentence `summary:`, primary `sources:` (papers, official docs),",
            "     a `difficulty:`, and [[links]] to related entries; delete drafts that are not concepts.",
            "  3. Review the ids, titles and questions found; rename ids now, before anything links to them.",
        ]
    return lines
