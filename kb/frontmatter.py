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


MAX_NODES = 20_000  # values in one front-matter, counting what aliases repeat
_STR, _SEQ, _MAP = "tag:yaml.org,2002:str", "tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"
_SPECIAL_KEYS = ("tag:yaml.org,2002:merge", "tag:yaml.org,2002:value")  # `<<` and `=`: the loader rewrites maps


def _survey(root: yaml.Node, lines: dict[Path_, int], offset: int) -> bool:
    """One walk of the composed document: the line of every key and item into `lines`, a check
    of its size, and whether `_construct` can build its data (plain maps and lists, any scalars).

    Size: YAML aliases share nodes, so nine nested lists of nine aliases ("billion laughs") parse
    instantly but expand to 9**9 values in anything that walks them (construction, validation,
    the store): `kb check` hung on one such file. Over MAX_NODES values, aliases expanded, is
    an error."""
    budget = MAX_NODES
    plain = True
    stack: list[tuple[yaml.Node, Path_]] = [(root, ())]
    while stack:
        node, path = stack.pop()
        budget -= 1
        if budget < 0:
            raise FrontMatterError(offset, f"front-matter holds more than {MAX_NODES:,} values once its YAML aliases "
                                           "(*name) are expanded; write the values out instead")
        if isinstance(node, yaml.MappingNode):
            plain = plain and node.tag == _MAP
            for key, value in node.value:
                budget -= 1
                plain = plain and key.tag not in _SPECIAL_KEYS
                if isinstance(key, yaml.ScalarNode):
                    sub = path + (key.value,)
                    lines[sub] = key.start_mark.line + offset
                    stack.append((value, sub))
                else:  # a list or map as a key is refused when constructed, but counts until then
                    stack.append((key, path))
        elif isinstance(node, yaml.SequenceNode):
            plain = plain and node.tag == _SEQ
            for i, item in enumerate(node.value):
                sub = path + (i,)
                lines[sub] = item.start_mark.line + offset
                stack.append((item, sub))
    return plain


def _construct(node: yaml.Node, loader: yaml.CSafeLoader) -> object:
    """What `loader.construct_document` makes of a surveyed plain document, 3x faster: strings,
    lists and dicts directly, other scalars (numbers, dates, null...) by the loader."""
    if isinstance(node, yaml.ScalarNode):
        return node.value if node.tag == _STR else loader.construct_object(node)
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, loader) for item in node.value]
    out = {}
    for key_node, value_node in node.value:
        key, value = _construct(key_node, loader), _construct(value_node, loader)
        try:
            out[key] = value
        except TypeError:  # the loader's own error for a list or map as a key
            raise yaml.constructor.ConstructorError("while constructing a mapping", node.start_mark,
                                                    "found unhashable key", key_node.start_mark) from None
    return out


def parse(text: str) -> Document:
    """Parse a whole entry file; raise FrontMatterError when its front-matter is unusable."""
    yaml_text, body, body_line = split(text)
    offset = 2  # YAML line 0 is file line 2
    loader = yaml.CSafeLoader(yaml_text)  # libyaml: ~5x faster than the pure-Python loader
    lines: dict[Path_, int] = {}
    try:
        node = loader.get_single_node()
        if node is None:
            data = None
        elif _survey(node, lines, offset):
            data = _construct(node, loader)
        else:
            data = loader.construct_document(node)
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
    return Document(data=data, lines=lines, body=body, body_line=body_line)
