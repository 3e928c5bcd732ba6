"""torch's CPU integer samplers on numpy: randint, randperm and multinomial (see docs/random.md).

`g` is a `random.Generator`; `g._random(n)` gives n 32-bit words, `g._random64(n)` n 64-bit
draws (two words each, the first one high), both as uint64 arrays.
"""
import numpy as np

from .random_torch import exponential_values, unit_f64, write_in_order

RANDPERM_SMALL = 0xFFFFFFFF // 20    # randperm_cpu: below this n, random() % (n - i) swaps
RANDINT_64BIT = 1 << 28              # randint ranges from here on use random64()


def randint_values(g, n, low, high):
    """random_from_to_kernel: (word % range) + low, with a 64-bit draw when range >= 2**28
    (uniform_int_from_to_distribution; the 2**32 in the source is the FBCODE_CAFFE2 branch)."""
    span = high - low
    words = g._random64(n) if span >= RANDINT_64BIT else g._random(n)
    vals = words % span
    vals += low & 0xFFFFFFFFFFFFFFFF                # uint64 arithmetic wraps like the C++
    return vals.view(np.int64)


def randperm_values(g, n):
    """randperm_cpu: Fisher-Yates from [0, n), step i swapping i with j_i = i + random() % (n - i)."""
    if n >= RANDPERM_SMALL:
        return _randperm_inside_out(g, n)
    if n < 2:
        return np.arange(n, dtype=np.int64)
    step = np.arange(n - 1)
    j = (g._random(n - 1) % np.arange(n, 1, -1, dtype=np.uint64)).astype(np.int64) + step
    return _apply_swaps(j, n)


def _apply_swaps(j, n):
    """The permutation that the swaps (i, j_i), i = 0..n-2, j_i >= i, leave, without a loop.

    Step i fixes position i to what position j_i holds then, and moves what position i held
    ("cur(i)") to j_i. cur(i) is cur(k) for the last k < i with j_k = i (or i itself), found by
    pointer jumping; position i ends with cur(k) for the last k < i with j_k = j_i (or j_i).
    """
    step = np.arange(n - 1)
    last_hit = np.full(n, -1, np.int64)
    moved = j > step
    np.maximum.at(last_hit, j[moved], step[moved])
    cur = np.where(last_hit < 0, np.arange(n), last_hit)
    while True:
        nxt = cur[cur]
        if np.array_equal(nxt, cur):
            break
        cur = nxt
    order = np.lexsort((step, j))                            # by target, then by step
    same = j[order[1:]] == j[order[:-1]]
    prev = np.full(n - 1, -1, np.int64)
    prev[order[1:][same]] = order[:-1][same]
    perm = np.empty(n, np.int64)
    perm[:-1] = np.where(prev >= 0, cur[np.maximum(prev, 0)], j)
    perm[-1] = cur[n - 1]
    return perm


def _randperm_inside_out(g, n):
    """randperm_cpu for n >= 2**32 / 20: the "inside-out" shuffle with random64() % (i + 1)."""
    perm = np.empty(n, np.int64)
    z = (g._random64(n) % np.arange(1, n + 1, dtype=np.uint64)).tolist()
    for i, zi in enumerate(z):
        perm[i] = perm[zi]
        perm[zi] = i
    return perm


# ------------------------------------------------------------------------------ multinomial
def multinomial_values(g, p, k, replacement):
    """at::native::multinomial on a validated 2-d float array p (rows, categories)."""
    if not replacement or k == 1:
        return _exponential_race(g, p, k)
    return _cdf_search(g, p, k)


def _exponential_race(g, p, k):
    """multinomial's fast path: q ~ Exp(1) (filled like empty_like(p).exponential_()), then
    argmax(p / q) for one sample, topk(p / q, k) for more (ties ordered as libstdc++ does)."""
    q = np.empty_like(p, order="K") if _dense(p) else np.empty(p.shape, p.dtype)
    write_in_order(q, exponential_values(g, q.size).astype(p.dtype))
    v = p / q
    if k == 1:
        return np.argmax(v, axis=1)[:, None]
    out = np.argsort(-v, axis=1, kind="stable")[:, :k]
    top = np.take_along_axis(v, np.argsort(-v, axis=1)[:, :k + 1], axis=1)
    for r in np.flatnonzero((top[:, 1:] == top[:, :-1]).any(axis=1) | np.isnan(v).any(axis=1)):
        out[r] = _torch_topk_indices(v[r].tolist(), k)     # ties: replay the C++ selection
    return out


def _dense(a):
    """TensorImpl::is_non_overlapping_and_dense for a numpy array."""
    dims = sorted((abs(s), n) for s, n in zip(a.strides, a.shape) if n > 1)
    expected = a.itemsize
    for stride, n in dims:
        if stride != expected:
            return False
        expected *= n
    return True


def _cdf_search(g, p, k):
    """multinomial_with_replacement_apply: per row a float cumulative sum normalized by its
    total (last bucket forced to 1), then a lower-bound binary search for each 53-bit uniform."""
    rows, n = p.shape
    cum = np.cumsum(p, axis=1, dtype=p.dtype)           # sequential, in the input dtype
    bad_entry = ~(p >= 0) | ~np.isfinite(p)              # NaN fails the first test, as in C++
    bad = bad_entry.any(axis=1) | ~(cum[:, -1] > 0)
    if bad.any():
        r = int(np.argmax(bad))
        g._random64(r * k)                               # torch drew the earlier rows' samples
        if bad_entry[r].any():
            j = int(np.argmax(bad_entry[r]))
            what = "< 0" if not p[r, j] >= 0 else "= infinity or NaN"
            raise ValueError(f"invalid multinomial distribution (encountering probability entry "
                             f"{what}: row {r}, column {j} is {p[r, j]})")
        raise ValueError(f"invalid multinomial distribution (sum of probabilities <= 0) in row {r}")
    cum = (cum / cum[:, -1:]).astype(np.float64)
    cum[:, -1] = 1.0
    u = unit_f64(g._random64(rows * k)).reshape(rows, k)
    left = np.zeros((rows, k), np.int64)
    right = np.full((rows, k), n, np.int64)
    row_ix = np.arange(rows)[:, None]
    while True:
        active = right > left
        if not active.any():
            return left
        mid = left + (right - left) // 2
        below = cum[row_ix, np.minimum(mid, n - 1)] < u
        left = np.where(active & below, mid + 1, left)
        right = np.where(active & ~below, mid, right)


# ---------------------------------------------- libstdc++ selection, for ties in topk
def _torch_topk_indices(vals, k):
    """topk_impl_loop (largest, sorted) on one row: partial_sort when k * 64 <= n, otherwise
    nth_element(k - 1) then sort of the first k - 1, all with comp(x, y) = x > y (NaN largest)."""
    n = len(vals)
    a = [(v, i) for i, v in enumerate(vals)]

    def comp(x, y):
        return (x[0] != x[0] and y[0] == y[0]) or x[0] > y[0]

    if k * 64 <= n:
        _heap_select(a, 0, k, n, comp)
        _sort_heap(a, 0, k, comp)
    else:
        _introselect(a, 0, k - 1, n, 2 * (n.bit_length() - 1), comp)
        _introsort(a, 0, k - 1, comp)
    return [i for _, i in a[:k]]


def _move_median_to_first(a, result, x, y, z, comp):
    if comp(a[x], a[y]):
        m = y if comp(a[y], a[z]) else (z if comp(a[x], a[z]) else x)
    else:
        m = x if comp(a[x], a[z]) else (z if comp(a[y], a[z]) else y)
    a[result], a[m] = a[m], a[result]


def _partition_pivot(a, first, last, comp):
    """std::__unguarded_partition_pivot: median of three moved to `first`, Hoare partition."""
    _move_median_to_first(a, first, first + 1, first + (last - first) // 2, last - 1, comp)
    lo, hi, pivot = first + 1, last, a[first]
    while True:
        while comp(a[lo], pivot):
            lo += 1
        hi -= 1
        while comp(pivot, a[hi]):
            hi -= 1
        if not lo < hi:
            return lo
        a[lo], a[hi] = a[hi], a[lo]
        lo += 1


def _insertion_sort(a, first, last, comp):
    for i in range(first + 1, last):
        val = a[i]
        if comp(val, a[first]):
            a[first + 1:i + 1] = a[first:i]
            a[first] = val
        else:
            j = i
            while comp(val, a[j - 1]):
                a[j] = a[j - 1]
                j -= 1
            a[j] = val


def _introselect(a, first, nth, last, depth, comp):
    while last - first > 3:
        if depth == 0:
            _heap_select(a, first, nth + 1, last, comp)
            a[first], a[nth] = a[nth], a[first]
            return
        depth -= 1
        cut = _partition_pivot(a, first, last, comp)
        first, last = (cut, last) if cut <= nth else (first, cut)
    _insertion_sort(a, first, last, comp)


def _introsort(a, first, last, comp):
    """std::sort: introsort down to runs of 16, then a final insertion sort."""
    def loop(first, last, depth):
        while last - first > 16:
            if depth == 0:
                _heap_select(a, first, last, last, comp)
                _sort_heap(a, first, last, comp)
                return
            depth -= 1
            cut = _partition_pivot(a, first, last, comp)
            loop(cut, last, depth)
            last = cut
    if last - first > 1:
        loop(first, last, 2 * ((last - first).bit_length() - 1))
        _insertion_sort(a, first, last, comp)   # == __final_insertion_sort's result


def _adjust_heap(a, first, hole, length, value, comp):
    top, child = hole, hole
    while child < (length - 1) // 2:
        child = 2 * (child + 1)
        if comp(a[first + child], a[first + child - 1]):
            child -= 1
        a[first + hole] = a[first + child]
        hole = child
    if length % 2 == 0 and child == (length - 2) // 2:
        child = 2 * (child + 1)
        a[first + hole] = a[first + child - 1]
        hole = child - 1
    parent = (hole - 1) // 2
    while hole > top and comp(a[first + parent], value):
        a[first + hole] = a[first + parent]
        hole, parent = parent, (parent - 1) // 2
    a[first + hole] = value


def _heap_select(a, first, middle, last, comp):
    length = middle - first
    for parent in range((length - 2) // 2, -1, -1) if length > 1 else ():
        _adjust_heap(a, first, parent, length, a[first + parent], comp)
    for i in range(middle, last):
        if comp(a[i], a[first]):
            value, a[i] = a[i], a[first]
            _adjust_heap(a, first, 0, length, value, comp)


def _sort_heap(a, first, last, comp):
    while last - first > 1:
        last -= 1
        value, a[last] = a[last], a[first]
        _adjust_heap(a, first, 0, last - first, value, comp)
