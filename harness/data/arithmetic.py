"""Arithmetic problems with integer answers, generated from a seed (the ``arithmetic`` datasets).

A problem is a start number and 1-3 steps applied left to right (``+ n``, ``- n``, ``* n``),
shown either as an expression (``What is (12 + 7) * 3?``) or as a short word problem
(``Tom has 12 apples, then buys 7 more, then gives away 5. How many apples does Tom have
now?``), half each. Each comes with step-by-step working (``12 + 7 = 19. 19 - 5 = 14.``)
and its answer, a non-negative integer (what the ``number`` answer kind accepts).

Difficulty levels (:data:`LEVELS`): 1 = one step, operands up to 99, factors up to 9;
2 (default) = two steps, the same numbers, values up to 999;
3 = three steps, operands up to 999, factors up to 12, values up to 9,999.

Train and test are disjoint by construction: the problem space is cut by a hash of the
canonical expression (:func:`canonical`, the same for a problem's expression and word
forms), one problem in :data:`TEST_SHARE` goes to test, and each split only keeps draws
from its own part. :func:`generate` is deterministic for a (split, level, seed): the test
split is :data:`TEST_SIZE` distinct problems, the train split :data:`TRAIN_SIZE` draws
(repeats possible; level 1 has about 8,000 distinct train expressions).

Not handled: division, fractions, decimals, negative answers, numbers in words, units.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from functools import lru_cache

SPLITS = ("train", "test")
TRAIN_SIZE = 20_000
TEST_SIZE = 500
TEST_SHARE = 10  # one problem in 10 of each level's space belongs to the test split
DEFAULT_LEVEL = 1  # the offline SFT adapter: 15.7 % at level 1, 0.8 % at level 2 (docs/data.md)
MAX_MISSES = 20_000  # draws in a row that add nothing before generate() gives up
NAMES = ("Tom", "Anna", "Ben", "Maria", "Sam", "Lily", "Omar", "Mia", "Leo", "Zoe")
ITEMS = ("apples", "marbles", "stickers", "books", "coins", "pencils", "cards", "shells")
MORE = ("buys {n} more", "finds {n} more", "gets {n} more from a friend")
LESS = ("gives away {n}", "loses {n}", "sells {n}")
TIMES = "ends up with {n} times as many"  # a "* n" step after the start


@dataclass(frozen=True)
class Level:
    """One difficulty level: how many steps, and the ranges numbers are drawn from."""

    steps: int
    operand: tuple[int, int]  # start values and + / - operands
    factor: tuple[int, int]  # * operands
    max_value: int  # no running value (so no answer) above this


LEVELS = {
    1: Level(steps=1, operand=(2, 99), factor=(2, 9), max_value=999),
    2: Level(steps=2, operand=(2, 99), factor=(2, 9), max_value=999),
    3: Level(steps=3, operand=(10, 999), factor=(2, 12), max_value=9_999),
}


@dataclass(frozen=True)
class Problem:
    """A generated problem: its structure, and the texts an SFT row, a prompt or an eval item use."""

    start: int
    steps: tuple[tuple[str, int], ...]  # (op, operand), op in "+", "-", "*"
    question: str
    reasoning: str
    answer: int


def canonical(start: int, steps) -> str:
    """The fully parenthesised expression, e.g. ``((12+7)*3)``: the problem's identity."""
    expr = str(start)
    for op, n in steps:
        expr = f"({expr}{op}{n})"
    return expr


def is_test(start: int, steps) -> bool:
    """Whether the problem belongs to the test part of the space (a hash of :func:`canonical`)."""
    digest = hashlib.sha256(canonical(start, steps).encode()).digest()
    return int.from_bytes(digest[:8], "big") % TEST_SHARE == 0


def _apply(value: int, op: str, n: int) -> int:
    return value + n if op == "+" else value - n if op == "-" else value * n


def _draw_steps(rng: random.Random, level: Level) -> tuple[int, tuple[tuple[str, int], ...]]:
    lo, hi = level.operand
    start = rng.randint(lo, min(hi, level.max_value))
    value, steps = start, []
    for _ in range(level.steps):
        ops = ["+"] if value + lo <= level.max_value else []
        ops += ["-"] if value >= lo else []
        ops += ["*"] if 2 <= value <= level.max_value // level.factor[0] else []
        op = rng.choice(ops)
        if op == "+":
            n = rng.randint(lo, min(hi, level.max_value - value))
        elif op == "-":
            n = rng.randint(lo, min(hi, value))
        else:
            n = rng.randint(level.factor[0], min(level.factor[1], level.max_value // value))
        steps.append((op, n))
        value = _apply(value, op, n)
    return start, tuple(steps)


def _expression(start: int, steps) -> str:
    """Infix with the usual precedence, parenthesised only where a ``*`` needs it: ``(12 + 7) * 3``."""
    expr, additive = str(start), False
    for op, n in steps:
        if op == "*" and additive:
            expr = f"({expr})"
        expr, additive = f"{expr} {op} {n}", op != "*"
    return expr


def _story(rng: random.Random, start: int, steps) -> str:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    first, rest = steps[0], steps[1:]
    if first[0] == "*":  # "* n" first: the start counts boxes of n items
        opening = f"{name} has {start} boxes with {first[1]} {item} in each"
    else:
        opening, rest = f"{name} has {start} {item}", steps
    phrases = [(TIMES if op == "*" else rng.choice(MORE if op == "+" else LESS)).format(n=n) for op, n in rest]
    body = opening + "".join(f", then {p}" for p in phrases)
    return f"{body}. How many {item} does {name} have now?"


def _working(start: int, steps) -> tuple[str, int]:
    value, lines = start, []
    for op, n in steps:
        new = _apply(value, op, n)
        lines.append(f"{value} {op} {n} = {new}.")
        value = new
    return " ".join(lines), value


def make_problem(rng: random.Random, start: int, steps) -> Problem:
    """The problem's texts: an expression or a word problem (a coin flip from ``rng``), working, answer."""
    reasoning, answer = _working(start, steps)
    if rng.random() < 0.5:
        question = f"What is {_expression(start, steps)}?"
    else:
        question = _story(rng, start, steps)
    return Problem(start, tuple(steps), question, reasoning, answer)


@lru_cache(maxsize=8)
def generate(split: str, level: int = DEFAULT_LEVEL, n: int | None = None, seed: int = 0) -> tuple[Problem, ...]:
    """``n`` problems of ``split`` ("train" or "test") at ``level`` (default sizes above), from ``seed``."""
    if split not in SPLITS:
        raise ValueError(f"unknown arithmetic split {split!r} (known: {', '.join(SPLITS)})")
    if level not in LEVELS:
        raise ValueError(f"unknown arithmetic difficulty {level!r} (levels: {', '.join(map(str, LEVELS))})")
    n = (TEST_SIZE if split == "test" else TRAIN_SIZE) if n is None else n
    rng = random.Random(f"arithmetic/{split}/{level}/{seed}")  # str seeds are stable across runs
    want_test, seen, out, misses = split == "test", set(), [], 0
    while len(out) < n:
        if misses == MAX_MISSES:  # a level's test part holds only so many distinct problems
            raise ValueError(f"cannot draw {n} distinct {split} problems at level {level} (found {len(out)})")
        start, steps = _draw_steps(rng, LEVELS[level])
        key = canonical(start, steps)
        if is_test(start, steps) != want_test or (want_test and key in seen):
            misses += 1
            continue
        seen.add(key)  # test problems are distinct, so each is scored once
        misses = 0
        out.append(make_problem(rng, start, steps))
    return tuple(out)
