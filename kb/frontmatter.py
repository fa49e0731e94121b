"""Split an entry file into YAML front-matter and body, keeping the line of every key.

We parse front-matter ourselves (not with a Markdown plugin) so that every problem can name
its line, and so that an unclosed `---` is an error instead of silently becoming text.
YAML is read with the safe loader only: tags that construct Python objects are refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

Path_ = tuple  # a path into the YAML document: ("questions", 0, "a")


class FrontMatterError(Exception):
    """The front-matter cannot be read at all; `line` is 1-based in the file."""

    def __init__(self, line: int, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.line = line
        self.message = message
        self.hint = hint


@dataclass
class Document:
    data: dict
    lines: dict[Path_, int]  # YAML path -> 1-based line in the file
    body: str
    body_line: int  # 1-based line in the file where the body starts

    def line_of(self, path: Path_) -> int:
        """Line of the longest prefix of `path` that exists (line 1 for the opening `---`)."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return 1


def _is_fence(line: str) -> bool:
    return line.rstrip() == "---"


def split(text: str) -> tuple[str, str, int]:
    """Return (yaml_text, body, body_line); the YAML always starts on line 2."""
    lines = text.split("\n")
    if not lines or not _is_fence(lines[0]):
        raise FrontMatterError(
            1,
            "no front-matter: the file must start with a '---' line",
            "put the YAML keys (title, category, ...) between two '---' lines at the top",
        )
    for i in range(1, len(lines)):
        if _is_fence(lines[i]) or lines[i].rstrip() == "...":
            return "\n".join(lines[1:i]), "\n".join(lines[i + 1 :]), i + 2
    raise FrontMatterError(1, "front-matter opened on line 1 is never closed", "add a '---' line after the YAML")


def _line_map(node: yaml.Node, path: Path_, out: dict[Path_, int], offset: int) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            sub = path + (key.value,)
            out[sub] = key.start_mark.line + offset
            _line_map(value, sub, out, offset)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = path + (i,)
            out[sub] = item.start_mark.line + offset
            _line_map(item, sub, out, offset)


MAX_NODES = 20_000  # values in one front-matter, counting what aliases repeat


def _too_big(root: yaml.Node) -> bool:
    """True when the document, with its aliases expanded, holds more than MAX_NODES values.

    YAML aliases share nodes, so nine nested lists of nine aliases ("billion laughs") parse
    instantly but expand to 9**9 values in anything that walks them (this module's line map,
    validation, the store): `kb check` hung on one such file.
    """
    budget = MAX_NODES
    stack = [root]
    while stack:
        node = stack.pop()
        budget -= 1
        if budget < 0:
            return True
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                stack += (key, value)
        elif isinstance(node, yaml.SequenceNode):
            stack += node.value
    return False


def parse(text: str) -> Document:
    """Parse a whole entry file; raise FrontMatterError when its front-matter is unusable."""
    yaml_text, body, body_line = split(text)
    offset = 2  # YAML line 0 is file line 2
    loader = yaml.CSafeLoader(yaml_text)  # libyaml: ~5x faster than the pure-Python loader
    try:
        node = loader.get_single_node()
        if node is not None and _too_big(node):
            raise FrontMatterError(offset, f"front-matter holds more than {MAX_NODES:,} values once its YAML aliases "
                                           "(*name) are expanded; write the values out instead")
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + offset if mark else 1
        what = " ".join(x for x in (exc.context, exc.problem) if x)
        raise FrontMatterError(line, f"invalid YAML in front-matter: {what}") from None
    except yaml.YAMLError as exc:
        raise FrontMatterError(1, f"invalid YAML in front-matter: {exc}") from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        kind = "empty" if data is None else f"a {type(data).__name__}"
        raise FrontMatterError(
            1 if data is None else offset,
            f"front-matter must be a mapping of keys (title: ..., category: ...), not {kind}",
        )
    lines: dict[Path_, int] = {}
    _line_map(node, (), lines, offset)
    return Document(data=data, lines=lines, body=body, body_line=body_line)
