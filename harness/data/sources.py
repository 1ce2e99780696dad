"""Where training rows come from: a hub id, a local file, or the vendored GSM8K splits.

:func:`load_source` turns a ``dataset`` argument into a :class:`Source` holding a pandas
DataFrame of raw rows, exactly as stored (strings stay strings):

- ``gsm8k`` / ``gsm8k-test``: the GSM8K train / test split vendored in
  ``harness/datasets/gsm8k`` (MIT licence). The test split is evaluation-only.
- ``arithmetic`` / ``arithmetic-test``, optionally ``:LEVEL`` (``arithmetic-test:1``): the
  generated problems of ``harness.data.arithmetic`` (question, reasoning, answer columns).
  The test split is evaluation-only.
- a ``.parquet``, ``.jsonl`` / ``.json`` (JSON Lines, or one JSON array) or ``.csv`` path.
- a directory: a local copy of a hub dataset repository (``git clone`` of
  ``huggingface.co/datasets/...``), loaded with ``datasets.load_dataset`` like a hub id.
- anything else: a Hugging Face hub id, loaded with ``datasets.load_dataset`` (needs network:
  an unreachable hub is one line within seconds, ``harness.hub``; the split defaults to the
  one the seed uses for known ids, else ``train`` or the only one).

Every failure is a one-line :class:`DataError`. :func:`check_source` is the one check of a
dataset argument before any row is read: :func:`check_split` refuses a split given for a source
that has none and, for training, :func:`eval_only_reason` says why a source must never be trained
on (the GSM8K test split under any name, the arithmetic test split at any level, any split called
``test`` of a source that has splits). It loads nothing, so ``train`` and ``grpo`` call it before
their model loads and hand its :class:`Checked` result to the loaders, which then do not check
again; a plain string given to a loader is checked there. Not handled here: which columns a
source has (``recipes``), filtering and formatting (``prepare``).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from reasoning_kit import jsonl

GSM8K_DIR = Path(__file__).resolve().parent.parent / "datasets" / "gsm8k"
BUILTIN = {"gsm8k": GSM8K_DIR / "train.jsonl", "gsm8k-test": GSM8K_DIR / "test.jsonl"}
EVAL_ONLY = {"gsm8k-test"}
ARITHMETIC = {"arithmetic": "train", "arithmetic-test": "test"}  # dataset name -> split of harness.data.arithmetic
_ARITHMETIC_NAME = re.compile(r"(arithmetic(?:-test)?)(?::(.*))?", re.S)  # name, then an optional ":LEVEL"
FILE_TYPES = (".parquet", ".jsonl", ".json", ".csv")
OFFLINE_HINT = "use a local .parquet/.jsonl/.csv file, 'gsm8k' or 'arithmetic' as the dataset"
# Hub ids whose split/config the recipes know: the seed's dataset and GSM8K's hub copy.
HUB_DEFAULTS = {
    "unsloth/OpenMathReasoning-mini": {"split": "cot"},
    "openai/gsm8k": {"name": "main", "split": "train"},
    "open-r1/DAPO-Math-17k-Processed": {"name": "en", "split": "train"},
}


class DataError(ValueError):
    """A one-line problem with a dataset argument or its rows, phrased for the user."""


@dataclass(frozen=True)
class Source:
    """Raw rows of one dataset argument."""

    name: str  # the argument as given (for messages)
    kind: str  # "builtin", "generated", "file", "directory" or "hub"
    location: str  # the file path, or "hub id (split)"
    frame: object  # pandas.DataFrame


def _first_line(exc: BaseException) -> str:
    from harness.models import first_line

    return first_line(exc)


def is_file_argument(dataset: str) -> bool:
    """A path (has a known file suffix, exists, or starts like a path), not a hub id."""
    p = Path(dataset)
    return p.suffix.lower() in FILE_TYPES or p.exists() or dataset.startswith((".", "/", "~"))


@lru_cache(maxsize=8)
def _digest(path: Path) -> tuple[int, str]:
    data = path.read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


def arithmetic_split(dataset: str) -> tuple[str, int] | None:
    """(split, level) for ``arithmetic[-test][:LEVEL]``, None for other names; DataError for a bad level."""
    from . import arithmetic

    m = _ARITHMETIC_NAME.fullmatch(dataset)
    if m is None:
        return None
    name, level = m.group(1), m.group(2)
    if level is None:
        return ARITHMETIC[name], arithmetic.DEFAULT_LEVEL
    if level not in {str(k) for k in arithmetic.LEVELS}:
        levels = ", ".join(map(str, arithmetic.LEVELS))
        raise DataError(f"{dataset!r}: unknown arithmetic difficulty {level!r} (levels {levels}, e.g. {name}:1)")
    return ARITHMETIC[name], int(level)


def train_counterpart(dataset: str) -> str:
    """The training set to suggest instead of the evaluation-only ``dataset``."""
    return "arithmetic" if _ARITHMETIC_NAME.fullmatch(str(dataset)) else "gsm8k"


def same_source(a: str, b: str) -> bool:
    """True when dataset arguments ``a`` and ``b`` name the same data: the same text, or one local file by two paths."""
    if a == b:
        return True
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    return pa.is_file() and pb.is_file() and pa.resolve() == pb.resolve()


def eval_only_reason(dataset: str, split: str | None = None) -> str | None:
    """Why ``dataset`` is reserved for evaluation, or None if it may be trained on."""
    if dataset in EVAL_ONLY:
        return f"{dataset!r} is the GSM8K test split"
    if (m := _ARITHMETIC_NAME.fullmatch(dataset)) and ARITHMETIC[m.group(1)] == "test":
        return f"{dataset!r} is the arithmetic test split"
    if split == "test" and splits_apply(dataset):  # elsewhere the split is refused by check_split, not obeyed
        return f"split 'test' of {dataset!r} is a test split"
    path = Path(dataset).expanduser()
    if is_file_argument(dataset) and path.is_file():
        test = BUILTIN["gsm8k-test"]
        if path.stat().st_size == test.stat().st_size and _digest(path.resolve()) == _digest(test):
            return f"{dataset} is a copy of the GSM8K test split"
    return None


@dataclass(frozen=True)
class Checked:
    """A dataset argument and split that passed :func:`check_source`; the loaders take it without checking again."""

    dataset: str
    split: str | None = None
    training: bool = False  # also found not to be reserved for evaluation


def check_source(dataset: str | Checked, split: str | None = None, *, training: bool = False) -> Checked:
    """The dataset argument ``dataset`` (``split``) checked before any row is read; DataError (one line).

    Refused: a split that would be ignored (:func:`check_split`) and, with ``training``, a source reserved
    for evaluation (:func:`eval_only_reason`). Reads no rows and loads nothing (a file's size, and its
    hash only when the size is that of the GSM8K test file). A :class:`Checked` is returned as it is
    (one checked without ``training`` is checked again when ``training`` is asked for).

    >>> check_source("gsm8k", training=True)
    Checked(dataset='gsm8k', split=None, training=True)
    >>> check_source("gsm8k", "test")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    harness.data.sources.DataError: split 'test' given for 'gsm8k', a built-in split: ... --dataset gsm8k-test)
    """
    if isinstance(dataset, Checked):
        if split is not None and split != dataset.split:
            raise TypeError(f"split {split!r} given with {dataset!r}, which holds its own split")
        if dataset.training or not training:
            return dataset
        dataset, split = dataset.dataset, dataset.split
    dataset = str(dataset)
    if training and (reason := eval_only_reason(dataset, split)):
        raise DataError(f"{reason}, reserved for evaluation: never train on it (use {train_counterpart(dataset)!r}, "
                        "the train split)")
    check_split(dataset, split)
    return Checked(dataset, split, training)


def load_source(dataset: str | Checked, split: str | None = None) -> Source:
    """Load the raw rows of ``dataset`` (see the module docstring); raise DataError."""
    checked = check_source(dataset, split)
    dataset, split = checked.dataset, checked.split
    if (arith := arithmetic_split(dataset)) is not None:
        return _arithmetic_source(dataset, *arith)
    if dataset in BUILTIN:
        path = BUILTIN[dataset]
        return Source(dataset, "builtin", str(path), read_file(path))
    path = Path(dataset).expanduser()
    if path.is_dir():
        frame, where = load_hub(str(path), split)
        return Source(dataset, "directory", where, frame)
    if is_file_argument(dataset):
        return Source(dataset, "file", str(path), read_file(path))
    frame, where = load_hub(dataset, split)
    return Source(dataset, "hub", where, frame)


def splits_apply(dataset: str) -> bool:
    """True where a split chooses rows: a hub id or a dataset directory (not a built-in name, not a file)."""
    if _ARITHMETIC_NAME.fullmatch(dataset) or dataset in BUILTIN:
        return False
    return Path(dataset).expanduser().is_dir() or not is_file_argument(dataset)


def check_split(dataset: str, split: str | None) -> None:
    """DataError for a split given where there is none to choose (it would be silently ignored).

    Run by :func:`check_source`, which every way of reading rows goes through once.
    """
    if not split or splits_apply(dataset):
        return
    if arithmetic_split(dataset) is not None or dataset in BUILTIN:
        name, colon, level = dataset.partition(":")
        base = name.removesuffix("-test")
        other = f"--dataset {base}{'-test' if split == 'test' else ''}{colon}{level}"
        what, fix = "a built-in split", f"name the split in the dataset instead: {other}"
    else:
        what, fix = "one file, which holds one split", "drop --split"
    raise DataError(f"split {split!r} given for {dataset!r}, {what}: splits apply to hub datasets and dataset "
                    f"directories ({fix})")


def _arithmetic_source(dataset: str, split: str, level: int) -> Source:
    """Generated arithmetic problems as question / reasoning / answer rows (the ``generic`` layout)."""
    import pandas as pd

    from . import arithmetic

    problems = arithmetic.generate(split, level)
    frame = pd.DataFrame(
        {"question": [p.question for p in problems], "reasoning": [p.reasoning for p in problems],
         "answer": [str(p.answer) for p in problems]}
    )  # fmt: skip
    where = f"harness.data.arithmetic ({split} split, level {level}, {len(problems)} problems)"
    return Source(dataset, "generated", where, frame)


def read_file(path: Path):
    """A local .parquet / .jsonl / .json / .csv file as a DataFrame; raise DataError."""
    import pandas as pd

    suffix = path.suffix.lower()
    if not path.exists():
        raise DataError(f"cannot read {path}: no such file" + ("" if path.suffix else " or directory"))
    if path.is_dir():
        raise DataError(f"cannot read {path}: it is a directory (pass a .parquet, .jsonl or .csv file)")
    if suffix not in FILE_TYPES:
        raise DataError(f"cannot read {path}: unsupported file type {suffix or '(none)'!r} (use .parquet, .jsonl, .json or .csv)")
    try:
        if suffix == ".parquet":
            return pd.read_parquet(path)
        if suffix == ".csv":
            # Every cell as text ("007" stays "007"); only empty cells are missing values.
            return pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        return pd.DataFrame.from_records(_read_json_rows(path))
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc.strerror or _first_line(exc)}") from None
    except (ValueError, UnicodeDecodeError) as exc:  # pyarrow.ArrowInvalid and pandas parser errors are ValueErrors
        if isinstance(exc, DataError):
            raise
        raise DataError(f"cannot read {path}: {_first_line(exc)}") from None


def _read_json_rows(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        try:
            rows = jsonl.loads(text, where=True)
        except jsonl.NotJSON as exc:
            raise DataError(f"cannot read {path}: {exc}") from None
        numbered = list(enumerate(rows, 1))
        what = "item"
    else:
        numbered, bad = jsonl.parse(text)  # "\n" only: U+2028 is string data
        if bad:
            number, reason = bad[0]
            raise DataError(f"cannot read {path}: line {number} is {reason}")
        what = "line"
    for n, row in numbered:
        if not isinstance(row, dict):
            raise DataError(f"cannot read {path}: {what} {n} is a JSON {type(row).__name__}, not an object")
    return [row for _, row in numbered]


def load_hub(repo_id: str, split: str | None = None):
    """Rows of a hub dataset split (or a local copy) via ``datasets.load_dataset`` -> (DataFrame, description)."""
    if not Path(repo_id).is_dir():
        from harness.hub import unreachable_message

        if message := unreachable_message(repo_id, "dataset", OFFLINE_HINT):  # fail in 2 s, not after 30 s of retries
            raise DataError(message)
    try:
        import datasets
    except ImportError:
        raise DataError("loading a hub dataset needs the 'datasets' package: pip install 'reasoning-kit[train]'") from None
    known = HUB_DEFAULTS.get(repo_id, {})
    config = known.get("name")
    try:
        if split is None:
            split = known.get("split") or _default_split(datasets, repo_id, config)
        ds = datasets.load_dataset(repo_id, config, split=split)
    except DataError:
        raise
    except datasets.exceptions.DatasetGenerationError as exc:  # files that datasets cannot read as one dataset
        raise DataError(f"cannot load {repo_id!r} as a dataset: {_first_line(exc.__cause__ or exc)}; pass the data as "
                        ".parquet, .jsonl or .csv files") from None
    except RuntimeError as exc:  # datasets >= 4: "Dataset scripts are no longer supported, but found x.py"
        if "scripts are no longer supported" not in str(exc):
            raise
        raise DataError(
            f"cannot load {repo_id!r}: it holds a dataset loading script, which datasets {datasets.__version__} no longer "
            f"runs ({_first_line(exc)}); pass the data as .parquet, .jsonl or .csv files instead"
        ) from None
    except (OSError, ValueError) as exc:  # ConnectionError, DatasetNotFoundError, unknown split
        where = f"{repo_id!r}" + (f" (split {split!r})" if split else "")
        origin = "the local dataset directory" if Path(repo_id).is_dir() else "the Hugging Face hub, and it is not a local file"
        hint = "" if Path(repo_id).is_dir() else f"; {OFFLINE_HINT}"
        raise DataError(f"cannot load {where} from {origin}: {_first_line(exc)}{hint}") from None
    return ds.to_pandas(), f"{repo_id} ({split})"


def _default_split(datasets, repo_id: str, config: str | None) -> str:
    names = datasets.get_dataset_split_names(repo_id, config)
    if "train" in names:
        return "train"
    if len(names) == 1:
        return names[0]
    raise DataError(f"{repo_id!r} has splits {', '.join(names)}: choose one with --split")
