"""Names, link resolution and the concept graph.

Every id, title, alias and file stem is collected before any body is parsed, so each link is
resolved once. A wikilink resolves by id, then by title or alias, case-insensitively.
"""

from __future__ import annotations

import difflib
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from kb.model import Entry, Issue, Link


def norm(name: str) -> str:
    """The form names are compared in: case-folded, inner whitespace collapsed."""
    return " ".join(name.split()).casefold()


@dataclass
class NameOwner:
    entry_id: str
    kind: str  # "id", "title", "alias" or "file"
    path: str
    line: int


class NameIndex:
    """Maps every way to name an entry to its id; reports names two entries both claim."""

    def __init__(self) -> None:
        self._owners: dict[str, NameOwner] = {}
        self.titles: dict[str, str] = {}  # id -> title, to label links written by id

    def add(self, name: str, owner: NameOwner, issues: list[Issue]) -> None:
        key = norm(name)
        if not key:
            return
        current = self._owners.get(key)
        if current is None:
            self._owners[key] = owner
            return
        if current.entry_id == owner.entry_id:
            return
        if owner.kind == "file":  # a file stem only matters for Markdown links; never an error
            return
        issues.append(
            Issue(
                owner.path,
                owner.line,
                "error",
                f"duplicate-{owner.kind}",
                f"{owner.kind} '{name}' is already the {current.kind} of entry '{current.entry_id}' "
                f"({current.path}:{current.line})",
                "each id, title and alias must name one entry only",
            )
        )

    def resolve(self, name: str) -> str | None:
        owner = self._owners.get(norm(name))
        return owner.entry_id if owner else None

    def title(self, entry_id: str) -> str | None:
        """The title of the entry with this id (links written by id read as it)."""
        return self.titles.get(entry_id)

    def suggest(self, name: str) -> str | None:
        """The id of the entry whose name is closest to `name`, if any is close."""
        match = difflib.get_close_matches(norm(name), self._owners.keys(), n=1, cutoff=0.6)
        return self._owners[match[0]].entry_id if match else None


def dedupe(links: list[Link]) -> list[Link]:
    """Keep the first edge per (target, kind); drop self-links."""
    seen: set[tuple[str, str]] = set()
    out = []
    for link in links:
        key = (link.target, link.kind)
        if link.target == link.source or key in seen:
            continue
        seen.add(key)
        out.append(link)
    return out


def backlinks(entries: dict[str, Entry]) -> dict[str, list[Link]]:
    """Incoming edges per entry, derived once from the outgoing ones."""
    incoming: dict[str, list[Link]] = defaultdict(list)
    for entry in entries.values():
        for link in entry.links:
            incoming[link.target].append(link)
    return {k: sorted(v, key=lambda l: (l.source, l.kind)) for k, v in incoming.items()}


def prerequisite_cycles(entries: dict[str, Entry]) -> list[list[str]]:
    """Each cycle of the prerequisite graph once, as a list of ids that starts where it ends."""
    graph = {e.id: [l.target for l in e.links if l.kind == "prerequisite"] for e in entries.values()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    cycles: list[list[str]] = []
    for root in sorted(graph):
        if root in state:
            continue
        path: list[str] = [root]
        todo: list[list[str]] = [list(graph.get(root, []))]
        state[root] = 1
        while path:  # iterative DFS: prerequisite chains may be deeper than the recursion limit
            if not todo[-1]:
                state[path.pop()] = 2
                todo.pop()
                continue
            nxt = todo[-1].pop(0)
            if state.get(nxt) == 1:
                cycles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                todo.append(list(graph.get(nxt, [])))
    return cycles


def shortest_path(neighbours: Callable[[str], Iterable[str]], start: str, goal: str) -> list[str] | None:
    """Fewest edges from `start` to `goal` (breadth-first), or None when `goal` is unreachable."""
    prev: dict[str, str] = {start: start}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node == goal:
            path = [goal]
            while path[-1] != start:
                path.append(prev[path[-1]])
            return path[::-1]
        for nxt in neighbours(node):
            if nxt not in prev:
                prev[nxt] = node
                queue.append(nxt)
    return None
