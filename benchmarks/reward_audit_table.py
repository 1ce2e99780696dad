"""The reward red-team table: reasoning-kit's rewards, the seed notebook's four, TRL's think_format_reward.

    .venv/bin/python benchmarks/reward_audit_table.py      # a second; writes results/reward_audit.json

Runs ``harness.audit.redteam`` (what ``reasoning-kit reward-audit`` runs) on:

- ``reasoning_kit`` (working_out): ``rewards.build(spec)``, the four rewards the spec enables;
- ``reasoning_kit`` (think_answer): the same for the think_answer spec;
- ``seed_notebook`` (working_out): the notebook's match_format_exactly, match_format_approximately,
  check_answer and check_numbers (``benchmarks.baselines.SeedRewards``, EOS ``<|endoftext|>``);
- ``trl_think_format_reward`` (think_answer): ``trl.rewards.think_format_reward``.

Prints the markdown table quoted in docs/audit.md (total reward per completion; ``H`` above the
valid wrong answer, ``H!`` above the valid right answer too, ``=`` a tie) and saves every score.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.baselines import SeedRewards  # noqa: E402
from benchmarks.common import save  # noqa: E402
from harness.audit import redteam  # noqa: E402
from reasoning_kit import rewards  # noqa: E402
from reasoning_kit.spec import load_spec  # noqa: E402


def targets():
    from trl.rewards import think_format_reward

    work, think = load_spec("working_out"), load_spec("think_answer")
    return [
        ("reasoning_kit", work, rewards.build(work)),
        ("reasoning_kit", think, rewards.build(think)),
        ("seed_notebook", work, SeedRewards(*work.tag_list[1:], work.eos[0]).all()),
        ("trl_think_format_reward", think, [think_format_reward]),
    ]


def mark(row) -> str:
    if row["kind"] != "hack":
        return f"{row['total']:.2f} ({row['kind']})"
    flag = " H!" if row["above_reference"] else " H" if row["above_baseline"] else " =" if row["tie"] else ""
    return f"{row['total']:.2f}{flag}"


def table(reports: list[dict]) -> list[str]:
    names = []
    for rep in reports:
        names += [r["name"] for r in rep["rows"] if r["name"] not in names]
    head = ["completion", *(f"{r['target']} ({r['spec']})" for r in reports)]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name in names:
        cells = []
        for rep in reports:
            row = next((r for r in rep["rows"] if r["name"] == name), None)
            cells.append(mark(row) if row else "")
        out.append(f"| `{name}` | " + " | ".join(cells) + " |")
    out.append("| **hacks above the valid wrong answer** | "
               + " | ".join(f"**{len(r['hacks'])}** of {sum(x['kind'] == 'hack' for x in r['rows'])}" for r in reports) + " |")
    return out


def main() -> None:
    reports = []
    for target, spec, funcs in targets():
        rep = redteam.run(spec, funcs)
        reports.append({"target": target, **rep.to_dict()})
    print("\n".join(table(reports)))
    save("reward_audit", {"reports": reports, "table": table(reports)})


if __name__ == "__main__":
    main()
