"""Loading and validation: every problem of the bank, with its line, in one run."""

from __future__ import annotations

from pathlib import Path

import yaml
from conftest import entry
from hypothesis import given, settings
from hypothesis import strategies as st

from kb import frontmatter

from kb.loading import load_corpus


def issues_of(bank: Path) -> list[str]:
    """Issues formatted relative to the bank folder, as authors read them."""
    return [i.format().replace(str(bank) + "/", "") for i in load_corpus(bank).issues]


def errors_of(bank: Path) -> list[str]:
    return [i for i in issues_of(bank) if ": error " in i]


def test_chain_bank_is_clean_and_linked(chain_bank):
    corpus = load_corpus(chain_bank)
    assert corpus.issues == []
    assert set(corpus.entries) == {"rag", "vector-database", "hnsw", "milvus", "faiss"}
    edges = {(l.source, l.target, l.kind) for l in corpus.edges}
    assert ("rag", "vector-database", "link") in edges
    assert ("vector-database", "hnsw", "link") in edges  # [[HNSW]]: by title, case-insensitively
    assert ("hnsw", "vector-database", "prerequisite") in edges
    assert ("faiss", "milvus", "link") in edges  # Markdown link to milvus.md
    assert {l.source for l in corpus.backlinks["hnsw"]} == {"vector-database", "milvus"}
    milvus = corpus.entries["milvus"]
    assert '<a class="wikilink" href="hnsw.html#查询过程">HNSW</a>' in milvus.body_html
    assert '<a href="milvus.html">Milvus</a>' in corpus.entries["faiss"].body_html


def test_rendering_features(make_bank):
    body = (
        "## 公式\n\n能量 $E=mc^2$，以及\n\n$$\n\\frac{a}{b}\n$$\n\n"
        "```python\nprint('hi')\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n脚注[^1]。\n\n[^1]: 来源。\n\n"
        "<script>alert(1)</script> <img src=x onerror=alert(1)> [x](javascript:alert(1))\n"
    )
    bank = make_bank({"a.md": entry("Alpha", body=body + "\n[[b]]"), "b.md": entry("Beta", body="[[a]]")})
    corpus = load_corpus(bank)
    assert corpus.errors == []
    html = corpus.entries["a"].body_html
    assert '<h2 id="公式">公式</h2>' in html
    assert "<math" in html and "<mfrac>" in html
    assert '<pre class="highlight"><code class="language-python">' in html and 'class="nb"' in html
    assert '<div class="table-wrap"><table>' in html
    assert 'class="footnote-ref"' in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img" not in html
    assert 'href="javascript:' not in html


def test_every_problem_is_reported_in_one_run(make_bank):
    bank = make_bank({
        "a.md": entry("A", body="[[nowhere]]"),
        "b.md": "---\ntitle: [unclosed\n---\n",
        "c.md": "",
        "d.md": entry("D", category="nope"),
    })
    problems = errors_of(bank)
    assert [p.split(":")[0] for p in problems] == ["a.md", "b.md", "c.md", "d.md"]


def test_invalid_yaml(make_bank):
    bank = make_bank({"bad.md": "---\ntitle: ok\ncategory: rag\naliases: [a, b\n---\nbody\n"})
    assert errors_of(bank) == [
        "bad.md:5: error [front-matter] invalid YAML in front-matter: while parsing a flow sequence "
        "did not find expected ',' or ']'"
    ]


def test_front_matter_not_a_mapping(make_bank):
    bank = make_bank({"list.md": "---\n- a\n- b\n---\nbody\n"})
    assert errors_of(bank) == [
        "list.md:2: error [front-matter] front-matter must be a mapping of keys (title: ..., category: ...), not a list"
    ]


def test_no_front_matter(make_bank):
    bank = make_bank({"plain.md": "# Just a note\n\ntext\n"})
    assert errors_of(bank) == [
        "plain.md:1: error [front-matter] no front-matter: the file must start with a '---' line "
        "(put the YAML keys (title, category, ...) between two '---' lines at the top)"
    ]


def test_unclosed_front_matter(make_bank):
    bank = make_bank({"open.md": "---\ntitle: x\ncategory: rag\n\nbody\n"})
    assert errors_of(bank) == [
        "open.md:1: error [front-matter] front-matter opened on line 1 is never closed (add a '---' line after the YAML)"
    ]


def test_missing_title(make_bank):
    bank = make_bank({"t.md": "---\ncategory: rag\n---\nbody\n"})
    assert errors_of(bank) == ["t.md:1: error [missing-key] missing required key 'title'"]


def test_unknown_key(make_bank):
    bank = make_bank({"t.md": "---\ntitle: T\ncategory: rag\nauthor: me\n---\nbody\n"})
    assert issues_of(bank)[0].startswith("t.md:4: error [unknown-key] unknown key 'author' (allowed keys: id, title,")


def test_unknown_category(make_bank):
    bank = make_bank({"t.md": entry("T", category="rags")})
    assert errors_of(bank) == [
        "t.md:3: error [unknown-category] unknown category 'rags' "
        "(did you mean 'rag'? known categories: foundations, rag, inference)"
    ]


def test_id_with_bad_characters(make_bank):
    bank = make_bank({"Bad Name.md": entry("T"), "x.md": entry("X", extra="id: Hello_World\n")})
    assert errors_of(bank) == [
        "Bad Name.md:1: error [bad-id] entry id 'Bad Name' is not a valid id (use lowercase letters a-z, digits "
        "and dashes, starting with a letter or digit, e.g. 'bad-name')",
        "x.md:9: error [bad-id] entry id 'Hello_World' is not a valid id (use lowercase letters a-z, digits and "
        "dashes, starting with a letter or digit, e.g. 'hello-world')",
    ]


def test_reserved_id(make_bank):
    bank = make_bank({"index.md": entry("Index page")})
    assert errors_of(bank) == [
        "index.md:1: error [bad-id] entry id 'index' is reserved for a site page (use lowercase letters a-z, "
        "digits and dashes, starting with a letter or digit, e.g. 'index')"
    ]


def test_duplicate_entry_id_names_both_files(make_bank):
    bank = make_bank({"one.md": entry("One", extra="id: same\n"), "two.md": entry("Two", extra="id: same\n")})
    assert errors_of(bank) == [
        "one.md:9: error [duplicate-id] duplicate entry id 'same': also in two.md",
        "two.md:9: error [duplicate-id] duplicate entry id 'same': also in one.md",
    ]


def test_duplicate_question_id(make_bank):
    q = "questions:\n  - id: shared-q\n    q: 问？\n    a: 答。\n"
    bank = make_bank({"a.md": entry("A", body="[[b]]", questions=q), "b.md": entry("B", body="[[a]]", questions=q)})
    assert errors_of(bank) == [
        "a.md:10: error [duplicate-question-id] duplicate question id 'shared-q': also in b.md:10",
        "b.md:10: error [duplicate-question-id] duplicate question id 'shared-q': also in a.md:10",
    ]


def test_alias_colliding_with_another_entry(make_bank):
    bank = make_bank({
        "a.md": entry("Alpha", extra="aliases: [b]\n", body="[[Beta]]"),
        "b.md": entry("Beta", extra="aliases: [AA]\n", body="[[a]]"),
        "c.md": entry("Gamma", extra="aliases: [aa]\n", body="[[a]]"),
    })
    assert errors_of(bank) == [
        "a.md:9: error [duplicate-alias] alias 'b' is already the id of entry 'b' (b.md:1) "
        "(each id, title and alias must name one entry only)",
        "c.md:9: error [duplicate-alias] alias 'aa' is already the alias of entry 'b' (b.md:9) "
        "(each id, title and alias must name one entry only)",
    ]


def test_unresolved_wikilink_suggests(make_bank, chain_bank):
    bank = make_bank({"hnsw.md": entry("HNSW", body="line\n\n实现见 [[milvsu]]。"), "milvus.md": entry("Milvus", body="[[hnsw]]")})
    assert errors_of(bank) == [
        "hnsw.md:18: error [unresolved-link] link [[milvsu]]: no such entry (did you mean 'milvus'?)"
    ]


def test_unresolved_anchor(make_bank):
    bank = make_bank({"a.md": entry("A", body="## 原理\n\n见 [[b#没有]]"), "b.md": entry("B", body="## 有\n\n[[a#原理]]")})
    assert errors_of(bank) == [
        "a.md:18: error [unresolved-anchor] link to 'b#没有': no such heading (headings: 有)"
    ]


def test_unresolved_prerequisite(make_bank):
    bank = make_bank({"a.md": entry("A", extra="prerequisites: [bta]\n", body="[[beta]]"), "beta.md": entry("Beta", body="[[a]]")})
    assert errors_of(bank) == ["a.md:9: error [unresolved-link] prerequisites: 'bta' is no entry (did you mean 'beta'?)"]


def test_prerequisite_cycle_is_printed(make_bank):
    bank = make_bank({
        "a.md": entry("A", extra="prerequisites: [b]\n"),
        "b.md": entry("B", extra="prerequisites: [c]\n"),
        "c.md": entry("C", extra="prerequisites: [a]\n"),
    })
    assert errors_of(bank) == [
        "a.md:9: error [prerequisite-cycle] prerequisite cycle: a -> b -> c -> a "
        "(prerequisites mean 'learn this first'; remove one edge (use `related` instead))"
    ]


def test_difficulty_out_of_range(make_bank):
    bank = make_bank({"a.md": entry("A").replace("difficulty: 2", "difficulty: 7")})
    assert errors_of(bank) == [
        "a.md:4: error [bad-value] 'difficulty': Input should be less than or equal to 3 (got 7)"
    ]


def test_question_difficulty_out_of_range(make_bank):
    bank = make_bank({"a.md": entry("A").replace("difficulty: 1", "difficulty: 0")})
    assert errors_of(bank) == [
        "a.md:12: error [bad-value] 'questions.0.difficulty': Input should be greater than or equal to 1 (got 0)"
    ]


def test_empty_file(make_bank):
    bank = make_bank({"empty.md": "  \n"})
    assert errors_of(bank) == ["empty.md:1: error [empty-file] file is empty (run `kb new ID` for a valid skeleton)"]


def test_not_utf8(make_bank):
    bank = make_bank({"gbk.md": "---\ntitle: 向量\n---\n".encode("gbk")})
    assert errors_of(bank) == [
        "gbk.md:2: error [not-utf8] file is not UTF-8 (byte 0xcf at offset 11) (save it as UTF-8)"
    ]


def test_binary_file(make_bank):
    bank = make_bank({"image.md": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"})
    assert errors_of(bank) == [
        "image.md:1: error [binary-file] file looks binary (it contains NUL bytes), not Markdown text"
    ]


def test_file_over_one_mib(make_bank):
    bank = make_bank({"big.md": entry("Big", body="x" * (1 << 20))})
    size = (bank / "big.md").stat().st_size
    assert errors_of(bank) == [
        f"big.md:1: error [too-large] file is {size:,} bytes, over the 1 MiB limit (split it into several entries)"
    ]


def test_yaml_python_tags_are_refused(make_bank):
    bank = make_bank({"evil.md": "---\ntitle: !!python/object/apply:os.system ['echo pwned']\ncategory: rag\n---\n"})
    [problem] = errors_of(bank)
    assert problem.startswith("evil.md:2: error [front-matter] invalid YAML in front-matter: could not determine a constructor")


def test_bad_math_is_an_error_with_line(make_bank):
    bank = make_bank({"m.md": entry("M", body="[[n]]\n\n公式 $x^{$ 坏了"), "n.md": entry("N", body="[[m]]")})
    [problem] = errors_of(bank)
    assert problem.startswith("m.md:18: error [bad-math] math cannot be rendered:")


def test_warnings_do_not_fail(make_bank):
    bank = make_bank({
        "lonely.md": "---\ntitle: Lonely\ncategory: rag\n---\nNo links.\n",
        "other.md": "---\ntitle: Other\ncategory: rag\n---\n[[third]]\n",
        "third.md": entry("Third"),
    })
    corpus = load_corpus(bank)
    assert corpus.errors == []
    assert issues_of(bank) == [
        "lonely.md:1: warning [no-questions] entry has no questions (add interview questions under `questions:`)",
        "lonely.md:1: warning [no-sources] entry has no sources (cite a paper, official docs or a spec under `sources:`)",
        "lonely.md:1: warning [no-summary] entry has no summary (add a one-sentence `summary:`)",
        "lonely.md:1: warning [orphan] entry 'lonely' has no links in or out (link it from a related entry with [[lonely]])",
        "other.md:1: warning [no-questions] entry has no questions (add interview questions under `questions:`)",
        "other.md:1: warning [no-sources] entry has no sources (cite a paper, official docs or a spec under `sources:`)",
        "other.md:1: warning [no-summary] entry has no summary (add a one-sentence `summary:`)",
    ]


def test_links_in_answers_are_edges_with_lines(make_bank):
    q = "questions:\n  - id: a-q\n    q: 问？\n    a: |\n      第一行\n      见 [[b]]。\n"
    bank = make_bank({"a.md": entry("A", questions=q), "b.md": entry("B")})
    corpus = load_corpus(bank)
    [link] = corpus.entries["a"].links
    assert (link.target, link.kind, link.line) == ("b", "link", 14)
    assert corpus.entries["a"].questions[0].answer_html == '<p>第一行\n见 <a class="wikilink" href="b.html">B</a>。</p>\n'


def test_parallel_load_gives_the_same_corpus(tmp_path, monkeypatch):
    """Big banks are parsed and rendered in two processes; the result must not depend on it."""
    from bench.corpus import generate
    from kb import loading

    bank = generate(60, tmp_path / "bank")
    (bank / "e7.md").write_text("---\ntitle: [unclosed\n---\n", encoding="utf-8")  # issues from the child too
    (bank / "e50.md").write_text((bank / "e50.md").read_text(encoding="utf-8") + "\n[[no-such-entry]]\n",
                                 encoding="utf-8")
    monkeypatch.setattr(loading, "PARALLEL_MIN", 10)
    seen = []
    parallel = loading.load_corpus(bank, progress=lambda *a: seen.append(a))
    monkeypatch.setattr(loading, "PARALLEL_MIN", 10**9)
    serial = loading.load_corpus(bank)
    assert parallel.entries == serial.entries and parallel.issues == serial.issues
    assert {i.path.rsplit("/", 1)[1] for i in parallel.errors} >= {"e7.md", "e50.md"}  # and links to e7
    assert ("read", 60, 60) in seen and ("render", 59, 59) in seen


_SCALARS = st.one_of(st.text(max_size=12), st.integers(), st.floats(allow_nan=False), st.booleans(), st.none(),
                     st.dates(), st.sampled_from(["yes", "No", "~", "0x1F", "1_000", "2024-01-01", "= ", "<<", "'"]))
_YAML_DATA = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.one_of(st.text(max_size=8), st.integers()), inner, max_size=4),
                          max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(data=st.dictionaries(st.text(max_size=8), _YAML_DATA, max_size=5), flow=st.sampled_from([False, True, None]))
def test_front_matter_data_is_what_the_safe_loader_makes(data, flow):
    """The front-matter reader builds plain documents itself (faster than PyYAML's constructor):
    the same data as `yaml.safe_load`, whatever the values and the style they are written in."""
    text = yaml.safe_dump(data, allow_unicode=True, default_flow_style=flow, sort_keys=False)
    assert frontmatter.parse(f"---\n{text}---\nbody\n").data == yaml.safe_load(text)


def test_front_matter_with_yaml_features_matches_the_safe_loader():
    """Anchors and aliases, merge keys, `=` keys, tags the safe loader knows: like `yaml.safe_load`."""
    docs = [
        "base: &b {x: 1, y: [a, b]}\nm:\n  <<: *b\n  y: 2\nn: *b\n",
        "=: 3\nk: v\n",
        "a: !!set {x, y}\nb: !!binary aGVsbG8=\nc: !!omap [{p: 1}, {q: 2}]\nd: !!str 12\ne: !!int '7'\n",
        "t: 2001-12-14t21:59:43.10-05:00\nf: .inf\ng: -.Inf\ns: 1:30\no: 0o17\nz: ~\n",
        "q: |\n  block\n  text\nr: >-\n  folded\n  text\nu: \"\\u6df7\\u5408\"\n",
        "list: &l [1, 2]\nagain: *l\nnested: {k: *l}\n",
    ]
    for doc in docs:
        assert frontmatter.parse(f"---\n{doc}---\n").data == yaml.safe_load(doc), doc
    # an alias bomb inside a key (a list as a key is refused, but only once constructed) is
    # refused by its size before anything expands it
    laughs = ["&a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for prev, name in zip("abcdefgh", "bcdefghi"):
        laughs.append(f"&{name} [" + ", ".join([f"*{prev}"] * 9) + "]")
    try:
        frontmatter.parse("---\ntitle: t\n? [" + ", ".join(laughs) + "]\n: x\n---\n")
    except frontmatter.FrontMatterError as exc:
        assert "values once its YAML aliases" in exc.message
    else:
        raise AssertionError("accepted an alias bomb in a key")
    got = frontmatter.parse("---\nx: .nan\n---\n").data["x"]
    assert got != got  # NaN
    for bad in ("? [a, b]\n: 1\n", "[a]: 1\n", "{a: 1}: 2\n", "x: !!python/object:os.system a\n"):
        try:
            frontmatter.parse(f"---\ntitle: t\n{bad}---\n")
        except frontmatter.FrontMatterError as exc:
            assert "invalid YAML" in exc.message and exc.line >= 2, bad
        else:
            raise AssertionError(f"accepted {bad!r}")


def test_front_matter_lines_of_keys_and_items():
    doc = frontmatter.parse("---\ntitle: t\naliases:\n  - a\n  - b\nquestions:\n  - id: q\n    a: |\n      x\n---\nbody\n")
    assert doc.lines == {("title",): 2, ("aliases",): 3, ("aliases", 0): 4, ("aliases", 1): 5, ("questions",): 6,
                         ("questions", 0): 7, ("questions", 0, "id"): 7, ("questions", 0, "a"): 8}
    assert doc.line_of(("questions", 0, "q")) == 7 and doc.body == "body\n" and doc.body_line == 11
