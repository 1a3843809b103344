"""`make bench`: run the benchmarks on ../shared/data and rewrite BENCHMARKS.md with every figure of this run.

    .venv/bin/python -m tests.benchmarks.run            # `make bench`: 1,500 MedQuAD pairs, fits an hour on 2 cores
    .venv/bin/python -m tests.benchmarks.run --train-size 2000 --dev-queries 0 --distractors 2000  # the issue's full size
    .venv/bin/python -m tests.benchmarks.run --quick    # smoke-size run of the whole harness
    .venv/bin/python -m tests.benchmarks.run --train-size 5000 --only medquad

Results are rewritten after each benchmark, so an interrupted run still leaves what it measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from . import corpus, latency, medquad, rag, streaming, stsb, transfer
from .common import DATA_DIR, ROOT, core_train, estimate_md, load_avg, machine_info, write_jsonl
from .targets import fmt, targets_md

ALL = ["medquad", "transfer", "corpus", "memory", "stsb", "latency", "streaming", "rag"]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m tests.benchmarks.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="small sizes: 200 pairs, 80 dev queries, 150 distractors")
    # Defaults sized so that the whole run fits an hour on a 2-core CPU, where the plain recipe alone trains
    # 1,500 (query, positive, negative) rows in about 20 minutes; 2,000 pairs and the whole dev set need ~75.
    ap.add_argument("--train-size", type=int, default=1500, help="MedQuAD train pairs in the seeded sample")
    ap.add_argument("--dev-queries", type=int, default=500, help="seeded sample of dev queries (0 = all)")
    ap.add_argument("--distractors", type=int, default=1000, help="train documents added to the dev corpus")
    ap.add_argument("--corpus-train", type=int, default=600, help="train pairs of the corpus protocol")
    ap.add_argument("--corpus-queries", type=int, default=300, help="test queries of the corpus protocol")
    ap.add_argument("--corpus-size", type=int, default=3000, help="documents in the corpus protocol's corpus")
    ap.add_argument("--stsb-train", type=int, default=1000, help="STSb train rows in the seeded sample")
    ap.add_argument("--search-docs", type=int, default=10_000, help="documents in the comparison-tab index")
    ap.add_argument("--rag-docs", type=int, default=8000, help="MedQuAD documents indexed by the rag benchmark")
    ap.add_argument("--rag-vectors", type=int, default=100_000, help="vectors in the rag search-latency index")
    ap.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME:OVERRIDES",
        help="extra pipeline contender, e.g. 'no step evals:evaluation.eval_steps=100000' (repeatable)",
    )
    ap.add_argument("--only", nargs="*", choices=ALL, default=ALL, help="benchmarks to run")
    ap.add_argument(
        "--merge",
        action="store_true",
        help="with --only: keep the other benchmarks' figures from WORK/results.json (the report says what was re-run)",
    )
    ap.add_argument("--work", default="test-artifacts/bench", help="scratch folder (models, runs, logs)")
    ap.add_argument("--output", default="BENCHMARKS.md")
    ap.add_argument("--rewrite", action="store_true", help="only re-render BENCHMARKS.md from WORK/results.json")
    a = ap.parse_args(argv)
    if a.quick:
        a.train_size, a.dev_queries, a.distractors, a.stsb_train, a.search_docs = 200, 80, 150, 300, 2000
        a.rag_docs, a.rag_vectors = 100, 10_000
        a.corpus_train, a.corpus_queries, a.corpus_size = 100, 40, 400
    return a


def medquad_md(r: dict[str, Any]) -> list[str]:
    c = r["contenders"]
    base = c["base"]["metrics"]["ndcg@10"]
    p = r["protocol"]
    out = [
        "## 1. Retrieval — MedQuAD (pairs)",
        "",
        f"Protocol: {p['train_pairs']} seeded train pairs; {p['dev_queries']} dev queries against a corpus of "
        f"{p['corpus']} documents ({p['corpus'] - p['distractors']} dev + {p['distractors']} seeded train "
        f"distractors); {p['relevant_pairs']} relevant (query, document) pairs. 1 epoch, batch 32, "
        "bundled all-MiniLM-L6-v2. The plain recipe trains (query, positive, mined negative) rows on every pair at 2e-5 "
        "with the library's linear decay; the default pipeline is `python -m core train` with the schema defaults: "
        f"{medquad.default_recipe()}. A training sample is one row of either kind. "
        "Every model is evaluated by one shared InformationRetrievalEvaluator. "
        "Times in seconds; end-to-end = the contender's whole process (load, mining, evaluations, training, save).",
        "",
        "| contender | NDCG@10 | MRR@10 | recall@10 | acc@1 | NDCG gain | mining s | training s | evaluation s | "
        "sum s | end-to-end s | process CPU s | train samples/s | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, x in c.items():
        m = x["metrics"]
        s = x["mining_s"] + x["train_s"] + x["eval_s"]
        out.append(
            f"| {name} | {m['ndcg@10']:.4f} | {m['mrr@10']:.4f} | {m['recall@10']:.4f} | {m['accuracy@1']:.4f} "
            f"| {m['ndcg@10'] - base:+.4f} | {x['mining_s']:.0f} | {x['train_s']:.0f} | {x['eval_s']:.0f} | "
            f"{s:.0f} | {x['wall_s']:.0f} | {fmt(x.get('cpu_s'), 0)} | {fmt(x.get('samples_per_s'), 2)} | {fmt(x.get('peak_rss_mb'))} |"
        )
    out += [
        "",
        "Training s of the pipeline excludes the evaluations/checkpoints during training (counted under "
        "evaluation s); train samples/s is the engine's own figure (rows / trainer.train() time, evaluations "
        "included). Commands:",
        "",
    ]
    for name, x in c.items():
        if x.get("cmd"):
            out.append(
                f"- {name}: `{x['cmd']}`"
                + (f" ({x['step_evals']} evaluations during training)" if "step_evals" in x else "")
                + (
                    f"; trained in {x['train_precision']}, encoded in {x.get('encode_precision')}"
                    if x.get("train_precision")
                    else ""
                )
            )
    out.append("")
    return out


def write_md(a: argparse.Namespace, res: dict[str, Any], meta: dict[str, Any]) -> None:
    mi = meta["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`tests/benchmarks/run.py`); every figure below comes from the one run described "
        "here. Data: `../shared/data` — MedQuAD (Ben Abacha & Demner-Fushman, BMC Bioinformatics 2019, CC BY 4.0) "
        "and the STS Benchmark (Cer et al., SemEval-2017).",
        "",
        f"- date: {meta['date']} (run took {meta.get('elapsed_min', '?')} min{'' if meta.get('done') else ', INCOMPLETE'})",
        f"- command: `{meta['command']}`",
        *[f"- {r}: its sections replace that run's" for r in meta.get("reruns", [])],
        f"- machine: {mi['cores']} cores, {mi['cpu']} ({mi['simd']}; bf16 in hardware: {mi['bf16_hw']}), "
        f"{mi['mem_gb']} GB; torch {mi['torch']} ({mi['torch_threads']} threads), sentence-transformers "
        f"{mi['sentence_transformers']}, Python {mi['python']}",
        f"- load average at start / end: {meta['load_start']} / {meta.get('load_end', '?')}. "
        + (
            "**The machine was busy with other jobs during this run**: absolute times are "
            "noisy (often 2-3x slower than an idle machine); compare ratios within the run."
            if meta["shared"]
            else ""
        ),
        "",
    ]
    if "medquad" in res:
        lines += targets_md(res) + medquad_md(res["medquad"])
    else:
        lines += targets_md(res)
    if "transfer" in res:
        lines += transfer.markdown(res["transfer"])
    if "corpus" in res:
        lines += corpus.markdown(res["corpus"])
    if "stsb" in res:
        s = res["stsb"]
        lines += [
            "## 2. Scored pairs — STS Benchmark",
            "",
            f"Default pipeline trained on a seeded sample of {s['train_rows']} stsb train rows (CoSENT); Spearman of "
            f"cosine similarity on stsb test ({s['test_rows']} pairs, EmbeddingSimilarityEvaluator).",
            "",
            "| model | Spearman (test) |",
            "|---|---:|",
            f"| base | {s['base']:.4f} |",
            f"| default pipeline | {s['default']:.4f} |",
            "",
            f"Pipeline process: {s['wall_s']:.0f} s, peak RSS {s['peak_rss_mb']} MB. Command: `{s['cmd']}`",
            "",
        ]
    if "memory" in res:
        m = res["memory"]
        lines += [
            "## Memory preset",
            "",
            f"`preset=memory` (batch 32 via CachedMNRL mini-batches of 8, gradient "
            f"checkpointing) on {m['rows']} MedQuAD pairs ({m['steps']} steps): peak RSS **{m['peak_rss_mb']} MB**, "
            f"{m['wall_s']:.0f} s. Command: `{m['cmd']}`",
            "",
        ]
    if "latency" in res:
        la = res["latency"]
        lines += [
            "## 3. Comparison-tab latency",
            "",
            f"Two `core.retrieval.search.get_index` indexes (bundled base + the MedQuAD fine-tuned model) over {la['docs']} "
            f"documents (distinct STSb sentences); one query = `core.retrieval.compare.search_both` (what the Compare "
            f"tab calls: both models' top-10 with rank changes); {la['queries']} MedQuAD dev questions after 10 "
            "warm-up queries. For reference, the obvious way: each model encodes in turn on torch's default "
            "threads, then a faiss top-10.",
            "",
            *(
                [
                    f"_(this run indexed {la['docs']} documents (`--quick`/`--search-docs`); the issue's size is "
                    "10,000)_",
                    "",
                ]
                if la["docs"] < 10_000
                else []
            ),
            "| how | p50 ms | p95 ms | index build s (both) |",
            "|---|---:|---:|---:|",
            f"| engine: both models side by side, one thread each ({la.get('query_encoder', 'index encoder')} queries, "
            f"core/retrieval/search.py) | {la['p50_ms']:.1f} | "
            f"{la['p95_ms']:.1f} | {la['index_build_s']:.0f} |",
        ]
        if "p50_ms_sequential" in la:
            lines.append(
                f"| one model after the other, torch default threads ({la.get('threads')}) | "
                f"{la['p50_ms_sequential']:.1f} | {la['p95_ms_sequential']:.1f} | |"
            )
        lines.append("")
    if "streaming" in res:
        sm = res["streaming"]
        lines += ["## 4. Streaming latency", ""]
        lines += (
            [f"Skipped: {sm['skipped']}."]
            if "skipped" in sm
            else [
                f"`train_step` event written -> returned by `/training_status` via gradio_client: p50 "
                f"{sm['p50_s']:.2f} s, max {sm['max_s']:.2f} s over {sm['events']} events."
            ]
        ) + [""]
    if "rag" in res:
        lines += rag.markdown(res["rag"])
    engine_runs = {f"medquad {k}": v for k, v in res.get("medquad", {}).get("contenders", {}).items()}
    if "corpus" in res:
        engine_runs["corpus default"] = res["corpus"]["contenders"]["default"]
    engine_runs.update({k: res[k] for k in ("memory", "stsb") if isinstance(res.get(k), dict)})
    lines += estimate_md(engine_runs)
    if "errors" in res:
        lines += ["## Errors", ""] + [f"- {k}: {v}" for k, v in res["errors"].items()] + [""]
    for notes in ("LEVERS.md", "SCALE_OUT.md"):  # static notes, measured by hand
        path = Path(__file__).with_name(notes)
        if path.exists():
            lines += [path.read_text(encoding="utf-8").strip(), ""]
    Path(a.output).write_text("\n".join(lines), encoding="utf-8")
    (Path(a.work) / "results.json").write_text(json.dumps({"meta": meta, "results": res}, indent=1, default=str))


def memory_run(work: Path, log=print) -> dict[str, Any]:
    rows = medquad.read_jsonl(DATA_DIR / "medquad" / "train.jsonl")
    import random

    sample = [rows[i] for i in sorted(random.Random(7).sample(range(len(rows)), 72))]
    f = write_jsonl(work / "memory_sample.jsonl", sample)
    log("memory preset ...")
    res = core_train(
        [
            f"dataset_path={f}",
            "dataset_name=memory_bench",
            "preset=memory",
            f"output_dir={work / 'memory_model'}",
            f"runs_dir={work / 'runs'}",
            f"cache_dir={work / 'cache' / 'memory'}",
        ],
        work / "runs" / "memory",
        work / "memory.log",
    )
    return {
        "rows": len(sample),
        "steps": res["metrics"]["steps"],
        "peak_rss_mb": res["peak_rss_mb"],
        "wall_s": res["wall_s"],
        "cmd": res["cmd"].replace(str(work), "$WORK"),
        "estimate": res.get("estimate"),
    }


def _busy(load_start: str, load_now: str) -> bool:
    """Whether other jobs shared the machine: some load before the run started, or (the benchmarks keep every core
    busy themselves, load ~ cores) a load well above the core count during it."""
    return float(load_start.split()[0]) > 1.5 or float(load_now.split()[0]) > (os.cpu_count() or 1) + 0.75


def rewrite(a: argparse.Namespace) -> int:
    """Re-render the results file from the last run's results.json (e.g. after editing LEVERS.md)."""
    from .common import parse_time_file

    saved = json.loads((Path(a.work) / "results.json").read_text())
    for name, c in saved["results"].get("medquad", {}).get("contenders", {}).items():
        tf = c.get("time_file") or str(
            Path(a.work) / ("plain.time" if name == "plain recipe" else f"{name.replace(' ', '_')}.time")
        )
        if c.get("cpu_s") is None and name != "base":
            c["cpu_s"] = parse_time_file(tf)[1]
    meta = saved["meta"]
    if meta.get("load_end"):  # by today's rule: the loads the (first) run recorded
        meta["shared"] = _busy(meta["load_start"], meta["load_end"])
    write_md(a, saved["results"], meta)
    print(f"rewrote {a.output}")
    return 0


def _medquad(res: dict[str, Any], work: Path) -> dict[str, Any]:
    """The MedQuAD benchmark's result of this run, else of the last run in WORK (`--only transfer`)."""
    if "medquad" in res:
        return res["medquad"]
    saved = json.loads((work / "results.json").read_text()) if (work / "results.json").exists() else {}
    if "medquad" not in saved.get("results", {}):
        raise RuntimeError("the transfer protocol scores the MedQuAD benchmark's models: run `medquad` first")
    return saved["results"]["medquad"]


def main(argv: list[str] | None = None) -> int:
    a = parse(argv)
    if a.rewrite:
        return rewrite(a)
    if not (DATA_DIR / "medquad" / "train.jsonl").exists():
        print(f"benchmarks skipped: no data at {DATA_DIR} (the shared data folder ../shared/data is absent)")
        return 0
    work = Path(a.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    load0 = load_avg()
    meta = {
        "date": dt.datetime.now().strftime("%Y-%m-%d %H:%M %Z").strip(),
        "machine": machine_info(),
        "command": ".venv/bin/python -m tests.benchmarks.run "
        + " ".join(shlex.quote(x) for x in (argv or sys.argv[1:])),
        "load_start": " ".join(f"{x:.1f}" for x in load0),
        "shared": _busy(f"{load0[0]}", "0"),
        "done": False,
    }
    res: dict[str, Any] = {}
    if a.merge and (work / "results.json").exists():  # a re-run of some benchmarks within the last full run
        saved = json.loads((work / "results.json").read_text())
        res = {k: v for k, v in saved["results"].items() if k not in a.only and k != "errors"}
        rerun = f"{', '.join(a.only)} re-run on {meta['date']} ({meta['command']})"
        meta = saved["meta"] | {"reruns": [*saved["meta"].get("reruns", []), rerun], "done": False}
        meta["shared"] = meta["shared"] or _busy(f"{load0[0]}", "0")

    def log(msg: str) -> None:
        print(f"[{time.time() - t0:7.0f}s] {msg}", flush=True)

    def step(name: str, fn) -> None:
        if name not in a.only:
            return
        try:
            res[name] = fn()
        except Exception as exc:
            log(f"{name} FAILED: {exc}")
            res.setdefault("errors", {})[name] = str(exc).splitlines()[0][:300]
        la = load_avg()
        if not meta.get("reruns"):  # a re-run keeps the full run's own figures
            meta.update(load_end=" ".join(f"{x:.1f}" for x in la), elapsed_min=round((time.time() - t0) / 60, 1))
        meta["shared"] = meta["shared"] or _busy("0", f"{la[0]}")
        write_md(a, res, meta)

    variants = {"default": []}
    for v in a.variant:
        name, _, ov = v.partition(":")
        variants[name.strip()] = ov.split()
    step("medquad", lambda: medquad.run(work, a.train_size, a.dev_queries or None, a.distractors, variants, log))
    step(
        "transfer",
        lambda: transfer.run(work, a.train_size, a.dev_queries or None, a.distractors, _medquad(res, work), log),
    )  # the MedQuAD benchmark's models on other query styles
    step("corpus", lambda: corpus.run(work, a.corpus_train, a.corpus_queries, a.corpus_size, log))
    step("memory", lambda: memory_run(work, log))
    step("stsb", lambda: stsb.run(work, a.stsb_train, [], log))
    tuned = (
        res.get("medquad", {}).get("contenders", {}).get("default", {}).get("model_dir")
        or res.get("stsb", {}).get("model_dir")
        or str(ROOT / "assets")
    )
    step("latency", lambda: latency.run(tuned, a.search_docs, 100, log))
    step("streaming", lambda: streaming.run(work, log=log))
    step("rag", lambda: rag.run(work, a.rag_docs, a.rag_vectors, log))
    meta["done"] = True
    if not meta.get("reruns"):
        meta["elapsed_min"] = round((time.time() - t0) / 60, 1)
    write_md(a, res, meta)
    log(f"wrote {a.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
