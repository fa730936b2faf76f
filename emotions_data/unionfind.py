"""Union-find: which items are linked, through any chain of links (repost groups, leakage
groups of the split)."""

from __future__ import annotations


class Components:
    """Union-find over ``n`` indices (path halving; a group's root is its smallest index)."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def groups(self) -> list[list[int]]:
        """The groups of two or more indices, each in index order."""
        found: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            found.setdefault(self.find(i), []).append(i)
        return [g for g in found.values() if len(g) > 1]
