"""Plans of the robust detector's register-resident sorting networks, and the source of their
kernels (:mod:`nsgen.prep._robust_net`, generated from :func:`source`).

Why: a comparator applied row against row of a buffer in memory (``_robust_jit._sort_rows``)
costs two loads, two stores and the loop's overhead for two instructions of work. Here a
*pass* loads a group of up to 16 rows into registers (8 columns per register), applies
several stages of comparators to them there and stores them back, so that most of the
time goes into ``min`` and ``max``.

What: a bitonic sort in its "flip" form (every comparator puts the minimum at the lower
index, so rows padded with ``+inf`` above ``n`` never move and the groups that hold only
such rows are skipped). Its stage ``(p, k)`` compares row ``i`` with row ``i ^ m``
(``m = 2p - 1`` for the first stage of merge ``p``, then ``m = k``). A pass takes
consecutive stages whose masks span at most 4 bits: its rows fall into groups of 16 (the
cosets of that span) on which the comparators, in the group's own coordinates, are the
same for every group (checked), so one compiled kernel per *template* serves every group
and every size: the first four merges (``S``: sorts groups of 16 contiguous rows), the first
1-4 stages of a merge (``M1``-``M4``) and 4 halvings (``H4``).

Selections (medians) use Batcher's odd-even merge network pruned to the outputs needed
(:func:`selection`): comparators that feed no kept output are dropped.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

#: templates of the sort kernels: name -> the stage masks of one instance (a 32-row sort)
TEMPLATES = {"S": [1, 3, 1, 7, 2, 1, 15, 4, 2, 1], "M1": [31], "M2": [63, 16],
             "M3": [127, 32, 16], "M4": [255, 64, 32, 16], "H4": [8, 4, 2, 1]}
#: values of the row medians' kernel (fewer are padded with -inf and +inf in equal numbers)
ROW_MEDIAN = 30
#: rows whose medians of :data:`ROW_MEDIAN` rows the group kernel takes at once (their
#: backgrounds share all but ``2 ROW_GROUP - 2`` rows each; 4 rows would read 34 rows and
#: write 4, more checks of overlap than LLVM vectorises a loop with)
ROW_GROUP = 3
#: window of the median filter across columns the kernel computes
COLUMN_WINDOW = 17


def _stages(size: int) -> list[tuple[int, list[int]]]:
    """Merges ``p`` of a flip bitonic sort of ``size`` (a power of 2) and their masks."""
    out = []
    p = 1
    while p < size:
        masks = [2 * p - 1]
        k = p // 2
        while k >= 1:
            masks.append(k)
            k //= 2
        out.append((p, masks))
        p *= 2
    return out


def _passes(size: int) -> list[tuple[str, list[int], int]]:
    """The sort of ``size`` (>= 16) rows as passes: template name, masks and the (last)
    merge ``p`` they belong to."""
    st = _stages(size)
    out = [("S", [m for p, ms in st if p <= 8 for m in ms], 8)]
    for p, ms in st:
        if p > 8:
            r = len(ms) % 4 or 4
            out.append((f"M{r}", ms[:r], p))
            out += [("H4", ms[i:i + 4], p) for i in range(r, len(ms), 4)]
    return out


def _basis(masks: list[int]) -> list[int]:
    """Reduced echelon basis of the span of ``masks`` (each top bit in one vector only),
    highest first."""
    basis: list[int] = []
    for m in masks:
        for b in basis:
            if m >> (b.bit_length() - 1) & 1:
                m ^= b
        if m:
            top = 1 << (m.bit_length() - 1)
            basis = [b ^ m if b & top else b for b in basis] + [m]
    return sorted(basis, reverse=True)


def _groups(masks: list[int], size: int) -> list[list[int]]:
    """Rows of ``size`` in groups (cosets of the span of ``masks``), each in its local
    order: local index ``l`` is the base row XOR the basis vectors of ``l``'s bits."""
    basis = _basis(masks)
    d = len(basis)
    seen: set[int] = set()
    out = []
    for base in range(size):
        if base in seen:
            continue
        rows = []
        for loc in range(1 << d):
            r = base
            for q in range(d):
                if loc >> (d - 1 - q) & 1:
                    r ^= basis[q]
            rows.append(r)
        seen.update(rows)
        out.append(rows)
    return out


def _local(masks: list[int], rows: list[int]) -> list[tuple[int, int]]:
    """Comparators of the stages ``masks`` on the group ``rows``, in local indices."""
    out = []
    for m in masks:
        for loc, r in enumerate(rows):
            if r < r ^ m:
                out.append((loc, rows.index(r ^ m)))
    return out


def template(name: str) -> list[tuple[int, int]]:
    """Local comparators of the template ``name`` (:data:`TEMPLATES`)."""
    masks = TEMPLATES[name]
    return _local(masks, _groups(masks, 32)[0])


@lru_cache(maxsize=64)
def sort_plan(n: int, runs: int = 1) -> tuple[int, tuple[tuple[str, np.ndarray], ...]]:
    """The register-pass sort of ``n`` rows: the padded row count (a power of 2, at least
    16; rows from ``n`` up hold ``+inf``) and its passes, each a template name and the
    groups ``(groups, rows of a group)`` int64 that hold two rows below ``n`` or more.
    With ``runs`` (a power of 2) the rows are already sorted in runs of that many: the
    merges that made them are left out.

    Examples
    --------
    >>> size, passes = sort_plan(300)
    >>> size, [name for name, _ in passes][:4], passes[0][1].shape
    (512, ['S', 'M1', 'H4', 'M2'], (19, 16))
    >>> [name for name, _ in sort_plan(192, runs=32)[1]]
    ['M2', 'H4', 'M3', 'H4', 'M4', 'H4']
    """
    size = max(16, 1 << max(0, (n - 1).bit_length()))
    out = []
    for name, masks, p in _passes(size):
        if 2 * p <= runs:
            continue
        groups = _groups(masks, size)
        want = template(name)
        for g in groups:
            if _local(masks, g) != want:   # the same comparators in every group
                raise AssertionError(f"pass {name} {masks}: group {g} differs")
        # a group with one row below n holds no comparator that moves a value
        out.append((name, np.array([g for g in groups if sum(r < n for r in g) > 1]
                                   or np.zeros((0, len(groups[0])), np.int64), np.int64)))
    return size, tuple(out)


def batcher(n: int) -> list[tuple[int, int]]:
    """Comparators of Batcher's odd-even merge sort of ``n`` values (pruned to ``n``)."""
    size = 1 << max(0, (n - 1).bit_length())
    pairs = []
    p = 1
    while p < size:
        k = p
        while k >= 1:
            for j in range(k % p, size - k, 2 * k):
                for i in range(min(k, size - j - k)):
                    if (i + j) // (2 * p) == (i + j + k) // (2 * p) and i + j + k < n:
                        pairs.append((i + j, i + j + k))
            k //= 2
        p *= 2
    return pairs


def selection(n: int, keep: tuple[int, ...]) -> list[tuple[int, int]]:
    """Comparators of :func:`batcher` ``(n)`` that feed the outputs ``keep``.

    Examples
    --------
    >>> len(batcher(17)), len(selection(17, (8,)))
    (85, 70)
    """
    need = set(keep)
    out = []
    for a, b in reversed(batcher(n)):
        if a in need or b in need:
            need |= {a, b}
            out.append((a, b))
    return out[::-1]


def _cx(a: int, b: int, ind: str) -> str:
    """One comparator on the locals ``v<a>``, ``v<b>``: ``min`` first, then ``max`` with
    its arguments swapped, so that ties pick what ``u if u <= v else v`` and
    ``v if u <= v else u`` pick (the generated module's docstring says why).

    Examples
    --------
    >>> _cx(0, 3, "")
    'v0, v3 = min(v0, v3), max(v3, v0)'
    """
    u, v = f"v{a}", f"v{b}"
    return f"{ind}{u}, {v} = min({u}, {v}), max({v}, {u})"


def _sort_kernel(name: str) -> list[str]:
    comps = template(name)
    g = 1 + max(max(c) for c in comps)
    out = ["", "", "@nb.njit(**JIT, fastmath=NNAN)",
           f"def sort_{name.lower()}(buf, groups, w):  # pragma: no cover - compiled",
           f'    """Template {name} on the rows ``groups`` of ``buf``, first ``w`` columns."""',
           "    for g in range(groups.shape[0]):"]
    out += [f"        r{i} = buf[groups[g, {i}]]" for i in range(g)]
    out.append("        for t in range(w):")
    out += [f"            v{i} = r{i}[t]" for i in range(g)]
    out += [_cx(a, b, " " * 12) for a, b in comps]
    out += [f"            r{i}[t] = v{i}" for i in range(g)]
    return out


def _row_median_kernel() -> list[str]:
    n = ROW_MEDIAN
    lo, hi = n // 2 - 1, n // 2
    out = ["", "", "@nb.njit(**JIT, fastmath=NNAN)",
           "def row_median(src, rows, r, odd, med):  # pragma: no cover - compiled",
           f'    """``med`` = per column the median of ``src[rows[o], r]`` over {n} rows ``rows`` (any',
           "    number of them padded with rows of -inf and +inf: -1 and -2 pick ``pad``'s); of",
           f'    {n} values the mean of the middle two (float32), their lower one if ``odd``."""',
           "    n_i = med.shape[0]",
           "    pad = np.empty((2, n_i), np.float32)",
           "    pad[0] = -np.inf",
           "    pad[1] = np.inf"]
    out += [f"    r{i} = src[rows[{i}], r] if rows[{i}] >= 0 else pad[-1 - rows[{i}]]" for i in range(n)]
    out.append("    two = np.float32(2)")
    out.append("    for t in range(n_i):")
    out.append("        ut = np.uint64(t)")
    out += [f"        v{i} = r{i}[ut]" for i in range(n)]
    out += [_cx(a, b, " " * 8) for a, b in selection(n, (lo, hi))]
    out.append(f"        med[ut] = v{lo} if odd else (v{lo} + v{hi}) / two")
    return out


def _row_median_pair_kernel() -> list[str]:
    n = ROW_MEDIAN
    m = n - 2                       # rows two neighbouring rows' backgrounds share
    lo = n // 2 - 1                 # the middle two of n values are lo and lo + 1
    keep = tuple(range(lo - 2, lo + 2))
    out = ["", "", "@nb.njit(**JIT, fastmath=NNAN)",
           "def row_median_pair(src, rows, r, med0, med1):  # pragma: no cover - compiled",
           f'    """Medians of {n} rows for two rows at once: ``rows`` holds the {m} rows both',
           "    backgrounds share, then the 2 of the first's own, then the second's; ``med0``,",
           "    ``med1`` = per column the mean of the middle two (float32) of ``src[rows[o], r]``",
           f"    over each background. Ranks {keep[0]}-{keep[-1]} of the shared values and the",
           '    own 2 hold both middle values: ranks 2 and 3 of those 6."""']
    out += [f"    r{i} = src[rows[{i}], r]" for i in range(n + 2)]
    out.append("    two = np.float32(2)")
    out.append("    for t in range(med0.shape[0]):")
    out.append("        ut = np.uint64(t)")
    out += [f"        v{i} = r{i}[ut]" for i in range(m)]
    out += [_cx(a, b, " " * 8) for a, b in selection(m, keep)]
    six = selection(6, (2, 3))
    for h, dst in enumerate(("med0", "med1")):
        names = [f"v{k}" for k in keep] + [f"w{j}" for j in range(2)]
        out += [f"        w{j} = r{m + 2 * h + j}[ut]" for j in range(2)]
        out += [f"        u{j} = {names[j]}" for j in range(6)]
        out += [_cx(a, b, " " * 8).replace("v", "u") for a, b in six]
        out.append(f"        {dst}[ut] = (u2 + u3) / two")
    return out


def _row_median_group_kernel() -> list[str]:
    n = ROW_MEDIAN
    g = ROW_GROUP
    m = n + 2 - 2 * g               # rows the backgrounds of g neighbouring rows share
    own = n - m                     # each row's own rows
    lo = n // 2 - 1                 # the middle two of n values are lo and lo + 1
    keep = tuple(range(lo - own, lo + 2))
    # the others: g - 1 rows below the shared, the g rows, g - 1 above; row k's own are
    # the below from the k-th, the g rows but k, the above up to the k-th
    below, group, above = m, m + g - 1, m + 2 * g - 1
    owns = [[below + j for j in range(k, g - 1)] + [group + j for j in range(g) if j != k]
            + [above + j for j in range(k)] for k in range(g)]
    meds = ", ".join(f"med{k}" for k in range(g))
    out = ["", "", "@nb.njit(**JIT, fastmath=NNAN)",
           f"def row_median_group(src, rows, r, {meds}):  # pragma: no cover - compiled",
           f'    """Medians of {n} rows for {g} neighbouring rows at once: ``rows`` holds the {m}',
           f"    rows their backgrounds share, then the {g - 1} below those, the {g} rows, the"
           f" {g - 1} above",
           f"    (row ``k``'s own {own}: the below from the ``k``-th, the {g} but itself, the above",
           "    up to the ``k``-th); ``med<k>`` = per column the mean of the middle two",
           "    (float32) of ``src[rows[o], r]`` over row ``k``'s background. Ranks",
           f"    {keep[0]}-{keep[-1]} of the shared values ``a`` and the own ``b`` (sorted) hold both",
           f"    middle values: rank {lo} of the {n} is the least ``max(a[{lo} - j], b[j - 1])`` over",
           f"    ``j = 0 .. {own}`` (``b[-1]``: none), rank {lo + 1} likewise. (Every row is loaded",
           "    once: LLVM checks each written row against each read one for overlap, and with",
           '    more than 128 checks does not vectorise the loop.)"""']
    out += [f"    r{i} = src[rows[{i}], r]" for i in range(above + g - 1)]
    out.append("    two = np.float32(2)")
    out.append("    for t in range(med0.shape[0]):")
    out.append("        ut = np.uint64(t)")
    out += [f"        v{i} = r{i}[ut]" for i in range(m)]
    out += [_cx(a, b, " " * 8) for a, b in selection(m, keep)]
    for k in range(g):
        out += [f"        w{j} = r{o}[ut]" for j, o in enumerate(owns[k])]
        out += [_cx(a, b, " " * 8).replace("v", "w") for a, b in batcher(own)]
        for name, top in (("x", lo), ("y", lo + 1)):
            terms = [f"v{top}"] + [f"max(v{top - j}, w{j - 1})" for j in range(1, own + 1)]
            out.append(f"        {name} = {terms[0]}")
            out += [f"        {name} = min({name}, {term})" for term in terms[1:]]
        out.append(f"        med{k}[ut] = (x + y) / two")
    return out


def _column_median_quads_kernel() -> list[str]:
    n = COLUMN_WINDOW
    shared = n - 3                  # values four neighbouring windows share
    k = (n // 2) - 3                # their ranks k .. k + 3 hold every window's median
    keep = tuple(range(k, k + 4))
    # window r (0-3) of group m covers columns 4m + r .. 4m + r + n - 1: the shared ones
    # are 4m + 3 .. 4m + n - 1, window r's own the others
    own = [[t for t in range(r, r + n) if not 3 <= t < n] for r in range(4)]
    out = ["", "", "@nb.njit(**JIT, fastmath=NNAN)",
           "def column_median_quads(d0, d1, d2, d3, o0, o1, o2, o3, m_count):  # pragma: no cover - compiled",
           f'    """Medians of {n} columns four at a time: with ``d`` a row and ``dr = d[r::4]``:',
           f"    ``or[m]`` = the median of ``d[4m + r:4m + r + {n}]`` for ``m < m_count``. The four",
           f"    windows share {shared} values; of their ranks {k}-{k + 3}, ``a0 <= .. <= a3``, a window's",
           "    median is ``min(a3, max(a2, b0), max(a1, b1), max(a0, b2))`` with ``b0 <= b1 <= b2``",
           '    its own 3 values."""']
    # each load from a slice at index ``ut``, unsigned (``d[m + k]`` is checked for a negative
    # index, which kept the loop from loading consecutive values: gathers)
    out += [f"    d{r}_{q} = d{r}[{q}:]" for r in range(4) for q in range(n // 4 + 1)
            if any(t % 4 == r and t // 4 == q for t in range(n + 3))]
    out += ["    for m in range(m_count):", "        ut = np.uint64(m)"]
    out += [f"        v{t - 3} = d{t % 4}_{t // 4}[ut]" for t in range(3, n)]
    out += [_cx(a, b, " " * 8) for a, b in selection(shared, keep)]
    for r in range(4):
        out += [f"        b{j} = d{t % 4}_{t // 4}[ut]" for j, t in enumerate(own[r])]
        out += [_cx(a, b, " " * 8).replace("v", "b") for a, b in ((0, 1), (1, 2), (0, 1))]
        a = [f"v{k + i}" for i in range(4)]
        out += [f"        c0 = max({a[2]}, b0)",
                f"        c1 = max({a[1]}, b1)",
                f"        c2 = max({a[0]}, b2)",
                f"        c0 = min(c0, {a[3]})",
                "        c1 = min(c1, c2)",
                f"        o{r}[ut] = min(c0, c1)"]
    return out


def source() -> str:
    """The source of :mod:`nsgen.prep._robust_net`."""
    head = ['"""Register-resident sorting networks of the robust detector. GENERATED by',
            "``python -m nsgen.prep._robust_plan > nsgen/prep/_robust_net.py`` (plans and the",
            "reasons: :mod:`nsgen.prep._robust_plan`); do not edit.",
            "",
            "Each kernel loads values into locals, applies comparators to them and stores the",
            "result; the loop over columns runs 8 columns per register. A comparator is",
            "``u, v = min(u, v), max(v, u)``: Numba lowers each builtin to one compare and",
            "select, bit for bit what ``u if u <= v else v`` and ``v if u <= v else u`` mean",
            "(the argument order keeps their pick on ties, signed zeros included), in",
            "straight-line code; the ternaries were two branches each, whose blocks took 1.7x",
            "as long to compile. ``fastmath`` only assumes no NaN (the detector's data is",
            "finite): ``min``/``max`` instructions then give the same values.",
            '"""',
            "",
            "# ruff: noqa: E501",
            "from __future__ import annotations",
            "",
            "import numba as nb",
            "import numpy as np",
            "",
            "from nsgen.prep._jit import JIT",
            "",
            "#: the only fast-math flag: no NaN",
            'NNAN = {"nnan"}']
    body = []
    for name in TEMPLATES:
        body += _sort_kernel(name)
    body += _row_median_kernel() + _row_median_pair_kernel() + _row_median_group_kernel()
    body += _column_median_quads_kernel()
    return "\n".join(head + body) + "\n"


if __name__ == "__main__":   # pragma: no cover
    print(source(), end="")
