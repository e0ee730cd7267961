"""The union-find behind corpus de-duplication: clusters are exactly the connected
components of the links made, whatever their order."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from daemon.refine.corpus import UnionFind

LINKS = st.lists(st.tuples(st.integers(0, 19), st.integers(0, 19)), max_size=40)


def components(n: int, links: list[tuple[int, int]]) -> set[frozenset[int]]:
    """Connected components by plain graph search, the reference."""
    neighbours: dict[int, set[int]] = {i: set() for i in range(n)}
    for a, b in links:
        neighbours[a].add(b)
        neighbours[b].add(a)
    seen: set[int] = set()
    found = set()
    for start in range(n):
        if start in seen:
            continue
        stack, part = [start], set()
        while stack:
            node = stack.pop()
            if node not in part:
                part.add(node)
                stack.extend(neighbours[node] - part)
        seen |= part
        found.add(frozenset(part))
    return found


@given(LINKS)
def test_clusters_are_the_connected_components_of_the_links(links: list[tuple[int, int]]) -> None:
    """Whatever the links, the clusters are exactly the connected components."""
    groups = UnionFind(20)
    for a, b in links:
        groups.union(a, b)
    clusters = groups.clusters()
    assert {frozenset(m) for m in clusters.values()} == components(20, links)
    assert all(root == min(members) for root, members in clusters.items())


def test_only_neighbours_at_or_above_the_threshold_are_linked() -> None:
    """Rows of a kNN result: self, then neighbours with cosine distances."""
    labels = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0]])
    distances = np.array([[0.0, 0.05, 0.5], [0.0, 0.05, 0.3], [0.0, 0.3, 0.5]])
    groups = UnionFind(3)
    groups.link_neighbours(labels, distances, threshold=0.92)
    assert sorted(map(sorted, groups.clusters().values())) == [[0, 1], [2]]
