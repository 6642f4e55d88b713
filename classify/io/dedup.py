"""Duplicate groups: the same post forwarded into several dumps, or copied with small edits."""

from __future__ import annotations

from collections.abc import Sequence

from .cleaning import normalise_for_match

NEAR_DUP_THRESHOLD = 0.8



def group_duplicates(texts: Sequence[str], ids: Sequence[str], threshold: float = NEAR_DUP_THRESHOLD) -> list[str]:
    """Duplicate group per post: identical or near-identical texts (MinHash LSH on word 3-shingles).

    The group id is the smallest ``post_id`` in the group, so it does not depend on input order.
    """
    from datasketch import MinHash, MinHashLSH

    parent = list(range(len(texts)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(a: int, b: int) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    lsh = MinHashLSH(threshold=threshold, num_perm=128)
    by_id: dict[str, int] = {}
    for i, (text, pid) in enumerate(zip(texts, ids)):
        if pid in by_id:  # identical cleaned text
            union(i, by_id[pid])
            continue
        by_id[pid] = i
        words = normalise_for_match(text).split()
        if len(words) < 8:
            continue
        shingles = {" ".join(words[k : k + 3]) for k in range(len(words) - 2)}
        mh = MinHash(num_perm=128, seed=1)
        mh.update_batch([s.encode("utf-8") for s in shingles])
        for other in lsh.query(mh):
            union(i, other)
        lsh.insert(i, mh)
    roots: dict[int, str] = {}
    for i, pid in enumerate(ids):
        r = find(i)
        roots[r] = min(roots.get(r, pid), pid)
    return [roots[find(i)] for i in range(len(ids))]

