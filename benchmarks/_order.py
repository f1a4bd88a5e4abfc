"""The order of the calls in each round of an interleaved benchmark (private).

A call can be slowed by the one timed just before it: PyTorch's OpenMP threads keep
spinning for a while after it returns, and a large program leaves the caches cold for the
next. Reversing the order every other round (ABC, CBA) does not spread that evenly: with
three calls the middle one follows each neighbour in half of the rounds, the first and
last one only ever follow the middle one. So with the peers ``nnjax, nnjax_bf16, torch``
only ``nnjax_bf16`` ever followed PyTorch, and measured 1.05-1.06x ``nnjax`` where an A/B
of the same two steps without PyTorch measured 1.00 (MLP at batch 256, 2026-12-02).

:func:`carryover_balanced` gives a Williams design, the orders of a crossover trial in
which every call immediately follows every other call equally often.

Example:
  >>> carryover_balanced(3)
  [[0, 1, 2], [1, 2, 0], [2, 0, 1], [2, 1, 0], [0, 2, 1], [1, 0, 2]]
"""

from __future__ import annotations


def carryover_balanced(n: int) -> list[list[int]]:
    """Orders of ``range(n)`` in which each index directly follows each other one equally often.

    Williams' construction: the sequence ``0, 1, n-1, 2, n-2, ...`` shifted by each
    ``r`` modulo ``n`` (``n`` rows); for odd ``n`` the reversed rows too (``2n`` rows),
    which even ``n`` does not need. Within the rows every ordered pair ``(a, b)``,
    ``a != b``, is adjacent once (even ``n``) or twice (odd ``n``). The first call of a
    round still follows the last call of the previous round; over many rounds that
    adds one pair per round, cycling with the rows.

    Args:
      n: the number of calls, at least 1.

    Returns:
      ``n`` or ``2n`` permutations of ``range(n)`` (``[[0]]`` for one call).

    Raises:
      ValueError: if ``n`` is less than 1.

    Example:
      >>> carryover_balanced(4)
      [[0, 1, 3, 2], [1, 2, 0, 3], [2, 3, 1, 0], [3, 0, 2, 1]]
    """
    if n < 1:
        raise ValueError(f"carryover_balanced: `n` must be >= 1, got {n}")
    if n == 1:
        return [[0]]
    base, low, high = [0], 1, n - 1
    while len(base) < n:
        base.append(low)
        low += 1
        if len(base) < n:
            base.append(high)
            high -= 1
    rows = [[(v + shift) % n for v in base] for shift in range(n)]
    return rows + [row[::-1] for row in rows] if n % 2 else rows


__all__ = ["carryover_balanced"]
