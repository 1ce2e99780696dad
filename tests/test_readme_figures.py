"""Every benchmark figure the README quotes matches the committed JSON it cites (so figures cannot go stale).

Each row of FIGURES names a result file under ``benchmarks/results/``, a path into its JSON and
how the README writes the value; the test formats the value from the JSON and looks for it in
the README's benchmark table. Re-running a benchmark that moves a figure fails this test until
the README says the new figure.
"""

from __future__ import annotations

import glob
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
README = (ROOT / "README.md").read_text()
TABLE = README[README.index("## Benchmarks"):README.index("## Layout")]


def pct(v):
    return f"{100 * v:.1f} %"


def num(digits):
    return lambda v: f"{v:,.{digits}f}"


# (result file, dotted path into the JSON, formatter)
FIGURES = [
    ("format_throughput.json", "results.realistic.validator.us_per_completion", num(1)),
    ("format_throughput.json", "results.realistic.seed_match_format_search.us_per_completion", num(1)),
    ("format_throughput.json", "results.realistic.validator.ratio_to_seed", lambda v: f"{v:.2f}x"),
    ("format_throughput.json", "results.realistic.reward_regex_fullmatch.us_per_completion", num(1)),
    ("bench_rewards.json", "results.timings.ours_default.median_ms", lambda v: f"{v:.2f} ms"),
    ("bench_rewards.json", "results.timings.seed_notebook.median_ms", lambda v: f"{v:.2f} ms"),
    ("bench_rewards.json", "results.timings.ours_default_trl_logging.median_ms", lambda v: f"{v:.2f} ms"),
    ("h200/grpo_offline_h200.json", "arithmetic_test.start.accuracy", pct),
    ("h200/grpo_offline_h200.json", "arithmetic_test.grpo.accuracy", pct),
    ("h200/grpo_offline_h200.json", "arithmetic_test.start.format_compliance", pct),
    ("h200/grpo_offline_h200.json", "arithmetic_test.grpo.format_compliance", pct),
    ("h200/grpo_offline_h200.json", "arithmetic_accuracy_points", lambda v: f"+{v:.1f} points"),
    ("h200/grpo_offline_h200.json", "steps", lambda v: f"{v} steps"),
    ("h200/grpo_offline_h200.json", "seconds_per_step", lambda v: f"{v:.2f} s/step"),
    ("h200/grpo_offline_h200.json", "command_seconds", lambda v: f"{v:.0f} s in all"),
    ("h200/grpo_offline_h200.json", "gsm8k_test.sft.format_compliance", pct),
    ("h200/grpo_offline_h200.json", "gsm8k_test.grpo.format_compliance", pct),
    ("bench_train_offline.json", "results.main_job_wall_seconds", lambda v: f"{v / 60:.1f} min in all"),
    ("bench_train_offline.json", "results.train.train_seconds", lambda v: f"training {v:.0f} s"),
    ("bench_train_offline.json", "results.train.trained_tokens_per_s", lambda v: f"{v:.0f} tokens/s"),
    ("bench_train_offline.json", "results.before_after.tuned.format_compliance", pct),
    ("h100/gpu_train_throughput_unsloth2.json", "results.rows.0.trained_tokens_per_s", num(0)),
    ("h100/gpu_train_throughput_hf2.json", "results.rows.0.trained_tokens_per_s", num(0)),
    ("quality_h100-unsloth-default.json", "results.runs.tuned.format_compliance", pct),
    ("bench_generation_cpu.json", "results.speedup", lambda v: f"{v:.2f}x"),
    ("h200/constrained_cuda.json", "results.free.format_compliance", pct),
    ("h200/constrained_cuda.json", "results.constrained.format_compliance", pct),
    ("h200/constrained_cuda.json", "results.free.ms_per_step", lambda v: f"{v:.0f} -> "),
    ("h200/constrained_cuda.json", "results.constrained.ms_per_step", lambda v: f"-> {v:.0f} ms per decoding step"),
    ("constrained_cpu.json", "results.free.ms_per_step", lambda v: f"{v:,.0f} -> "),
    ("constrained_cpu.json", "results.constrained.ms_per_step", lambda v: f"-> {v:,.0f} ms per step"),
    ("h200/launch_overhead.json", "results.summary.hf.plain_tokens_per_s", lambda v: f"hf {v:,.0f} plain"),
    ("h200/launch_overhead.json", "results.summary.hf.launched_tokens_per_s", lambda v: f"{v:,.0f} launched"),
    ("h200/launch_overhead.json", "results.summary.unsloth.plain_tokens_per_s", lambda v: f"unsloth {v:,.0f}"),
    ("h200/launch_overhead.json", "results.summary.unsloth.launched_tokens_per_s", lambda v: f"/ {v:,.0f} (launched"),
    ("h200/launch_overhead_4b/launch_overhead.json", "results.summary.hf.plain_tokens_per_s", lambda v: f"hf {v:,.0f} plain"),
    ("h200/launch_overhead_4b/launch_overhead.json", "results.summary.hf.launched_tokens_per_s",
     lambda v: f"{v:,.0f} launched tokens/s"),
    ("h200/launch_overhead_4b/launch_overhead.json", "results.summary.hf.launched_over_plain", lambda v: f"({v:.3f}x)"),
    ("h200/grpo_breakdown/2-trl-sampling/gpu_grpo_breakdown_h200.json", "results.runs.1.seconds_per_step",
     lambda v: f"{v:.1f} s/step, 302"),
    ("h200/grpo_breakdown/2-trl-sampling/gpu_grpo_breakdown_h200.json",
     "results.runs.1.steady.completion_tokens_per_s_of_step_time", lambda v: f"{v:,.0f} completion tokens/s"),
    ("h200/grpo_breakdown/3-merged/gpu_grpo_breakdown_h200.json", "results.runs.1.seconds_per_step",
     lambda v: f"{v:.1f} s/step, 1,679"),
    ("h200/grpo_breakdown/3-merged/gpu_grpo_breakdown_h200.json",
     "results.runs.1.timing.completion_tokens_per_s_of_step_time", lambda v: f"{v:,.0f} tokens/s of step time"),
    ("h200/grpo_breakdown/3-merged/gpu_grpo_breakdown_h200.json",
     "results.runs.1.timing.completion_tokens_per_s_of_generation", lambda v: f"({v:,.0f} of generation)"),
    ("h200/grpo_breakdown/3-merged/gpu_grpo_breakdown_h200_unsloth.json",
     "results.runs.0.steady.completion_tokens_per_s_of_step_time", lambda v: f"cadence {v:,.0f}"),
    ("h200/grpo_offline_fast/grpo_offline_h200-fast.json", "arithmetic_test.start.accuracy", lambda v: f"accuracy {pct(v)} -> "),
    ("h200/grpo_offline_fast/grpo_offline_h200-fast.json", "arithmetic_test.grpo.accuracy", lambda v: f"-> {pct(v)} (+28.0"),
    ("h200/grpo_offline_fast/grpo_offline_h200-fast.json", "arithmetic_test.start.format_compliance", lambda v: f"compliance {pct(v)} -> "),
    ("h200/grpo_offline_fast/grpo_offline_h200-fast.json", "arithmetic_accuracy_points", lambda v: f"(+{v:.1f} points), compliance 98.3"),
    ("h200/grpo_offline_fast/grpo_offline_h200-fast.json", "steps", lambda v: f"{v} steps, 1.34"),
    ("h200/grpo_offline_fast/grpo_offline_h200-fast.json", "seconds_per_step", lambda v: f"{v:.2f} s/step (1,620"),
    ("h200/grpo_offline_fast/grpo_offline_h200-fast.json", "timing.completion_tokens_per_s_of_step_time", lambda v: f"({v:,.0f} completion tokens/s)"),
    ("h200/grpo_offline_fast/grpo_offline_h200-fast.json", "command_seconds", lambda v: f"{v:.0f} s in all"),
    ("h200/grpo_offline_fast/grpo_offline_h200-fast.json", "gsm8k_test.sft.format_compliance", lambda v: f"{pct(v)} in both runs with today's"),
    ("h200/grpo_offline_graphs/grpo_offline_h200-graphs.json", "gsm8k_test.sft.format_compliance", lambda v: f"{pct(v)} in both runs with today's"),
    ("h200/grpo_offline_graphs/grpo_offline_h200-graphs.json", "gsm8k_test.grpo.format_compliance", lambda v: f"arithmetic {pct(v)} / 99.5 % / 98.0 %"),
    ("h200/grpo_offline_fast/grpo_offline_h200-fast.json", "gsm8k_test.grpo.format_compliance", lambda v: f"99.5 % / {pct(v)} / 98.0 %"),
    ("h200/grpo_breakdown/5-fastdecode/gpu_grpo_breakdown_h200.json", "results.runs.0.seconds_per_step", lambda v: f"{v:.1f} s/step, 2,547"),
    ("h200/grpo_breakdown/5-fastdecode/gpu_grpo_breakdown_h200.json", "results.runs.0.timing.completion_tokens_per_s_of_step_time", lambda v: f"{v:,.0f} tokens/s of step time"),
    ("h200/grpo_breakdown/5-fastdecode/gpu_grpo_breakdown_h200.json", "results.runs.0.timing.completion_tokens_per_s_of_generation", lambda v: f"({v:,.0f} of generation)"),
    ("h200/launch_overhead_4b/2-after-warmup/launch_overhead.json", "results.summary.hf.plain_tokens_per_s", lambda v: f"hf {v:,.0f} plain / 1,157"),
    ("h200/launch_overhead_4b/2-after-warmup/launch_overhead.json", "results.summary.hf.launched_tokens_per_s", lambda v: f"{v:,.0f} launched tokens/s (0.913x"),
    ("h200/launch_overhead_4b/2-after-warmup/launch_overhead.json", "results.summary.hf.launched_over_plain", lambda v: f"({v:.3f}x, NOT within 5 %)"),
    ("h200/throughput_b16_b32/gpu_train_throughput_h200.json", "results.rows.0.trained_tokens_per_s", lambda v: f"checkpointing {v:,.0f} tokens/s"),
    ("h200/throughput_b16_b32/gpu_train_throughput_h200.json", "results.rows.0.peak_reserved_gib", lambda v: f"({v:.1f} GiB); packing batch 32"),
    ("h200/throughput_b16_b32/gpu_train_throughput_h200.json", "results.rows.1.trained_tokens_per_s", lambda v: f"packing batch 32 {v:,.0f}"),
    ("h200/throughput_b16_b32/gpu_train_throughput_h200.json", "results.rows.1.peak_reserved_gib", lambda v: f"6,828 ({v:.1f} GiB)"),
    ("h200/grpo_offline_graphs/grpo_offline_h200-graphs.json", "arithmetic_test.start.accuracy", lambda v: f"accuracy {pct(v)} -> 43.7 %"),
    ("h200/grpo_offline_graphs/grpo_offline_h200-graphs.json", "arithmetic_test.grpo.accuracy", lambda v: f"15.0 % -> {pct(v)} (+28.7"),
    ("h200/grpo_offline_graphs/grpo_offline_h200-graphs.json", "arithmetic_accuracy_points", lambda v: f"(+{v:.1f} points), compliance 98.0"),
    ("h200/grpo_offline_graphs/grpo_offline_h200-graphs.json", "arithmetic_test.start.format_compliance", lambda v: f"compliance {pct(v)} -> 100.0 %; 120 steps, 0.80"),
    ("h200/grpo_offline_graphs/grpo_offline_h200-graphs.json", "seconds_per_step", lambda v: f"{v:.2f} s/step (2,742"),
    ("h200/grpo_offline_graphs/grpo_offline_h200-graphs.json", "timing.completion_tokens_per_s_of_step_time", lambda v: f"({v:,.0f} completion tokens/s), 182"),
    ("h200/grpo_offline_graphs/grpo_offline_h200-graphs.json", "command_seconds", lambda v: f"{v:.0f} s in all"),
    ("h200/grpo_breakdown/6-graphs/gpu_grpo_breakdown_h200.json", "results.runs.0.seconds_per_step", lambda v: f"{v:.1f} s/step, 4,223"),
    ("h200/grpo_breakdown/6-graphs/gpu_grpo_breakdown_h200.json", "results.runs.0.timing.completion_tokens_per_s_of_step_time", lambda v: f"{v:,.0f} tokens/s of step time (14,504"),
    ("h200/grpo_breakdown/6-graphs/gpu_grpo_breakdown_h200.json", "results.runs.0.timing.completion_tokens_per_s_of_generation", lambda v: f"({v:,.0f} of generation): **goal"),
    ("h200/grpo_breakdown/7-defaults-graphs/gpu_grpo_breakdown_h200.json", "results.runs.0.timing.completion_tokens_per_s_of_step_time", lambda v: f"unmerged) {v:,.0f} / 5,484"),
    ("h200/grpo_breakdown/7-defaults-graphs/gpu_grpo_breakdown_h200.json", "results.runs.0.timing.completion_tokens_per_s_of_generation", lambda v: f"2,932 / {v:,.0f}"),
    ("h200/decode_probe/f-graphs/gpu_decode_probe_h200.json", "results.rows.0.ms_per_step", lambda v: f"growing cache, no graphs, {v:.0f} ms per step"),
    ("h200/decode_probe/f-graphs/gpu_decode_probe_h200.json", "results.rows.0.tokens_per_s", lambda v: f"({v:,.0f} tokens/s; the same row gave 96 ms"),
    ("h200/decode_probe/f-graphs/gpu_decode_probe_h200.json", "results.rows.1.ms_per_step", lambda v: f"+ graphs) {v:.0f} ms"),
    ("h200/decode_probe/f-graphs/gpu_decode_probe_h200.json", "results.rows.1.tokens_per_s", lambda v: f"35 ms ({v:,.0f} tokens/s), against 99 ms"),
    ("h200/throughput_all_rows/gpu_train_throughput_h200.json", "results.rows.0.trained_tokens_per_s", lambda v: f"batch 1) {v:,.0f} / 320"),
    ("h200/throughput_all_rows/gpu_train_throughput_h200.json", "results.rows.1.trained_tokens_per_s", lambda v: f"552 / {v:,.0f} tokens/s"),
    ("h200/throughput_all_rows/gpu_train_throughput_h200.json", "results.rows.2.trained_tokens_per_s", lambda v: f"batch 1 {v:,.0f} / 1,795"),
    ("h200/throughput_all_rows/gpu_train_throughput_h200.json", "results.rows.3.trained_tokens_per_s", lambda v: f"3,860 / {v:,.0f} (8.9"),
    ("h200/throughput_all_rows/gpu_train_throughput_h200.json", "results.rows.4.trained_tokens_per_s", lambda v: f"batch 8 {v:,.0f} / 8,138"),
    ("h200/throughput_all_rows/gpu_train_throughput_h200.json", "results.rows.5.trained_tokens_per_s", lambda v: f"10,702 / {v:,.0f} (11.9"),
    ("h200/throughput_all_rows/gpu_train_throughput_h200.json", "results.rows.6.trained_tokens_per_s", lambda v: f"checkpointing {v:,.0f} / 8,127"),
    ("h200/throughput_all_rows/gpu_train_throughput_h200.json", "results.rows.7.trained_tokens_per_s", lambda v: f"11,134 / {v:,.0f} (14.6"),
    ("h200/throughput_all_rows/gpu_train_throughput_h200.json", "results.rows.6.peak_reserved_gib", lambda v: f"({v:.1f} / 16.6): goal"),
    ("h200/throughput_all_rows/gpu_train_throughput_h200.json", "results.rows.4.peak_reserved_gib", lambda v: f"({v:.1f} / 16.6); packing batch 8 +"),
    ("h200/throughput_varlen/gpu_train_throughput_varlen-rows.json", "results.rows.2.trained_tokens_per_s", lambda v: f"checkpointing **{v:,.0f} tokens/s (14.5"),
    ("h200/throughput_varlen/gpu_train_throughput_varlen-rows.json", "results.rows.2.peak_reserved_gib", lambda v: f"18,038 tokens/s ({v:.1f} GiB): goal 12k at ≤ 16 GiB met"),
    ("h200/throughput_varlen/gpu_train_throughput_varlen-rows.json", "results.rows.1.trained_tokens_per_s", lambda v: f"packing batch 8 {v:,.0f} (11.8"),
    ("h200/throughput_varlen/gpu_train_throughput_varlen-rows.json", "results.rows.1.peak_reserved_gib", lambda v: f"16,943 ({v:.1f} GiB)"),
    ("h200/throughput_varlen/gpu_train_throughput_varlen-rows.json", "results.rows.0.trained_tokens_per_s", lambda v: f"batch 1 {v:,.0f} (8.8 GiB)"),
    ("h200/throughput_varlen/gpu_train_throughput_varlen-rows.json", "results.rows.0.peak_reserved_gib", lambda v: f"4,277 ({v:.1f} GiB)"),
    ("h200/throughput_varlen/gpu_train_throughput_varlen.json", "results.rows.0.trained_tokens_per_s", lambda v: f"checkpointing {v:,.0f} with it"),
    ("h200/throughput_varlen/gpu_train_throughput_segments.json", "results.rows.0.trained_tokens_per_s", lambda v: f"{v:,.0f} with `REASONING_KIT_UNSLOTH_VARLEN=0`"),
    ("h200/throughput_varlen/gpu_train_throughput_varlen.json", "results.rows.1.trained_tokens_per_s", lambda v: f"batch 12 + checkpointing {v:,.0f} (16.6"),
    ("h200/throughput_varlen/gpu_train_throughput_varlen.json", "results.rows.1.peak_reserved_gib", lambda v: f"16,179 ({v:.1f} GiB)"),
    ("h200/launch_overhead_4b/3-one-process/launch_overhead.json", "results.summary.hf.plain_tokens_per_s", lambda v: f"hf {v:,.0f} plain / 1,049"),
    ("h200/launch_overhead_4b/3-one-process/launch_overhead.json", "results.summary.hf.launched_tokens_per_s", lambda v: f"{v:,.0f} launched tokens/s (**0.987x"),
    ("h200/launch_overhead_4b/3-one-process/launch_overhead.json", "results.summary.hf.launched_over_plain", lambda v: f"(**{v:.3f}x, within 5 %**)"),
]


def lookup(data, dotted: str):
    for part in dotted.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


@pytest.mark.parametrize("name, path, fmt", FIGURES, ids=[f"{n}:{p}" for n, p, _ in FIGURES])
def test_readme_quotes_the_committed_figure(name, path, fmt):
    value = lookup(json.loads((RESULTS / name).read_text()), path)
    assert fmt(value) in TABLE, f"README's benchmark table should say {fmt(value)!r} ({name}: {path})"


def test_every_cited_result_file_exists():
    for name in {n for n, _, _ in FIGURES}:
        assert (RESULTS / name).is_file(), name


def cited_results(table: str) -> list[str]:
    """The result paths a table row cites: the backticked names after ``->`` in its last cell."""
    cited = []
    for line in table.splitlines():
        cells = line.split(" | ")
        if line.startswith("| ") and len(cells) >= 3 and " -> " in cells[-1]:
            cited += re.findall(r"`([^`]+)`", cells[-1].split(" -> ", 1)[1])
    return cited


def test_every_path_the_table_cites_exists():
    """Each result path the README's table names (globs included) matches a committed file, relative to
    benchmarks/results/ or, for a bare file name after a path, to that path's folder."""
    cited = cited_results(TABLE)
    assert len(cited) > 20
    folder = RESULTS
    for name in cited:
        if "/" in name:
            folder = RESULTS / name.rsplit("/", 1)[0].split("*")[0]
        matches = glob.glob(str(RESULTS / name)) or glob.glob(str(folder / name))
        assert matches, f"README cites {name!r}, which matches no file under benchmarks/results/"


def test_the_check_catches_a_path_that_does_not_exist():
    row = "| x | 1 | `bench.py` -> `h200/throughput_varlen/gpu_train_throughput_varlen{-rows,,segments}.json` |"
    (name,) = cited_results(row)
    assert not glob.glob(str(RESULTS / name))
