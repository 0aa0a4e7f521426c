# Candidate finder triples: finders.triples keeps only the best `keep` while it scores the
# combinations; the same triples, in the same order, as scoring all and sorting them.
from scanbridge_fw.qr import finders


def _all_sorted(centres, limit=finders.LIMIT):
    """The reference: every plausible triple scored, then sorted by score, equals in the order
    found (MicroPython's list.sort is not stable: the order number makes it so)."""
    cs = centres[:limit]
    n = len(cs)
    out = []
    top = cs[0].count if n else 1
    for i in range(n):
        for j in range(i + 1, n):
            for k in range(j + 1, n):
                t = finders._score(cs[i], cs[j], cs[k])
                if t is not None:
                    weak = 1 - min(cs[i].count, cs[j].count, cs[k].count) / top
                    out.append((t[0] + 0.6 * weak, len(out), t[1], t[2], t[3]))
    out.sort(key=lambda t: (t[0], t[1]))
    return [t[2:] for t in out]


def _centres(seed, lattice):
    state = [seed]

    def rnd(n):
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return (state[0] >> 8) % n
    cs = []
    for i in range(12):
        if lattice:  # congruent triangles: many equal scores, so the order of equals counts
            c = finders.Centre(20 + 40 * (i % 4), 20 + 40 * (i // 4), 3.0)
            c.count = 5
        else:
            c = finders.Centre(10 + rnd(300), 10 + rnd(220), 2.0 + rnd(30) / 10)
            c.count = 1 + rnd(20)
        cs.append(c)
    cs.sort(key=lambda c: -c.count)
    return cs


def test_triples_keeps_the_best_in_the_order_of_a_full_sort():
    seen = 0
    for seed in range(12):
        cs = _centres(seed, seed % 3 == 0)
        ref = _all_sorted(cs)
        seen += len(ref)
        for keep in (1, 3, 8, 300):
            assert finders.triples(cs, keep) == ref[:keep], (seed, keep)
    assert seen > 100
    assert finders.triples(_centres(1, True), 0) == []
    assert finders.triples([], 3) == []
