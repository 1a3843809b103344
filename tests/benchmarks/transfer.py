"""Benchmark 1b — transfer: trained on MedQuAD's template questions, tested on other query styles of the domain.

Real users do not type "What are the symptoms of X ?". This protocol keeps the MedQuAD protocol's training sample,
corpus and gold answers (tests/benchmarks/medquad.py: the same seeded dev queries, the same dev + distractor
documents, every dev answer of a query relevant) and asks other questions of the same corpus:

- `written` (the realistic set, the one the targets use): 200 consumer questions written by hand for the dev topics,
  in askers' own words (a subject line and a message, background, lay vocabulary instead of the condition's
  name, several questions in one message, typos), each with its gold MedQuAD answers judged by hand
  (tests/benchmarks/written.py, written_queries.jsonl);
- four styles derived by rule from each dev query, seeded (tests/benchmarks/query_styles.py): `keywords`,
  `message` (from hand-written templates), `typos`, `lower` (a control). They keep the condition's MedQuAD name
  and one of MedQuAD's intents, so they test surface robustness only.

One InformationRetrievalEvaluator per query set (cosine, batch 64), all sharing one encoding of the corpus per model;
`overall` = the mean NDCG@10 over the derived styles' queries (`written` is reported on its own). The in-domain MedQuAD score comes from the same corpus
encoding. Run by `make bench` on the models the MedQuAD benchmark trained (no extra training), and by hand:

    python -m tests.benchmarks.transfer eval NAME MODEL_DIR [--wise 0.5,0.7]   # scores + WiSE-FT sweep
    python -m tests.benchmarks.transfer show                                    # a few queries of each style
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import medquad, written
from .query_styles import STYLES, parse, style_queries

SETS = ["written", *STYLES]  # the query sets scored besides in-domain


@dataclass
class Transfer:
    protocol: medquad.Protocol
    styles: dict[str, dict[str, str]]  # derived style -> {dev query id: rewrite}
    written: dict[str, str]  # question id -> hand-written question
    written_relevant: dict[str, list[str]]  # question id -> corpus ids of its gold answers
    written_dropped: int = 0  # questions whose gold answers are not all in this corpus (smaller sizes)


def build(train_size: int, dev_queries: int | None, distractors: int) -> Transfer:
    p = medquad.build_protocol(train_size, dev_queries, distractors)
    queries, relevant, dropped = written.for_corpus(p.corpus)
    return Transfer(p, style_queries(p.queries), queries, relevant, dropped)


def info(t: Transfer) -> dict[str, Any]:
    p = t.protocol
    words = {s: sum(len(q.split()) for q in qs.values()) / max(1, len(qs)) for s, qs in t.styles.items()}
    return {
        "train_pairs": len(p.train),
        "queries_per_style": len(p.queries),
        "styles": STYLES,
        "corpus": len(p.corpus),
        "distractors": len(p.distractors),
        "mean_words": {"template": sum(len(q.split()) for q in p.queries.values()) / len(p.queries), **words},
        "unparsed": sum(parse(q)[0] == "other" for q in p.queries.values()),
        "written": len(t.written),
        "written_dropped": t.written_dropped,
        "written_words": sum(len(q.split()) for q in t.written.values()) / max(1, len(t.written)),
        "written_gold": sum(len(v) for v in t.written_relevant.values()),
    }


def _evaluator(p: medquad.Protocol, queries: dict[str, str], relevant: dict[str, list[str]] | None = None):
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    return InformationRetrievalEvaluator(
        queries,
        p.corpus,
        {k: set(v) for k, v in (relevant or p.relevant).items()},
        accuracy_at_k=[1, 5, 10],
        precision_recall_at_k=[10],
        mrr_at_k=[10],
        ndcg_at_k=[10],
        map_at_k=[100],
        batch_size=64,
        name="dev",
        write_csv=False,
        score_functions=None,
        main_score_function="cosine",
    )


class Evaluators:
    """The in-domain evaluator and one per style over one corpus; each model's corpus is encoded once."""

    def __init__(self, t: Transfer):
        self.t = t
        self.by_set = {"in-domain": _evaluator(t.protocol, t.protocol.queries)}
        if t.written:
            self.by_set["written"] = _evaluator(t.protocol, t.written, t.written_relevant)
        self.by_set.update({s: _evaluator(t.protocol, qs) for s, qs in t.styles.items()})

    def __call__(self, model) -> dict[str, dict[str, float]]:
        first = self.by_set["in-domain"]
        corpus_emb = first.embed_inputs(model, first.corpus, encode_fn_name="document")
        out = {}
        for name, ev in self.by_set.items():
            raw = ev(model, corpus_embeddings=corpus_emb)
            out[name] = {m: float(raw[f"dev_cosine_{m}"]) for m in medquad.METRICS}
            out[name]["queries"] = len(ev.queries)
        n = sum(out[s]["queries"] for s in STYLES)
        out["overall"] = {m: sum(out[s][m] * out[s]["queries"] for s in STYLES) / n for m in medquad.METRICS} | {
            "queries": n
        }
        return out


def interpolate(base_dir: str, tuned_dir: str, alpha: float):
    """WiSE-FT: the base model's weights + alpha x (fine-tuned - base), loaded as a SentenceTransformer."""
    from sentence_transformers import SentenceTransformer

    base = SentenceTransformer(base_dir, local_files_only=True)
    tuned = SentenceTransformer(tuned_dir, local_files_only=True).state_dict()
    start = base.state_dict()
    base.load_state_dict(
        {k: start[k] + alpha * (tuned[k] - start[k]) if tuned[k].is_floating_point() else tuned[k] for k in tuned}
    )
    return base


def evaluate_models(t: Transfer, models: dict[str, str], log=print) -> dict[str, dict[str, Any]]:
    """{name: {"sets": per-set metrics, "eval_s": seconds}} for each saved model dir."""
    from sentence_transformers import SentenceTransformer

    ev = Evaluators(t)
    out = {}
    for name, model_dir in models.items():
        t0 = time.time()
        res = ev(SentenceTransformer(model_dir, local_files_only=True))
        out[name] = {"sets": res, "eval_s": round(time.time() - t0, 1), "model_dir": model_dir}
        log(f"transfer: {name}: " + ", ".join(f"{k} {v['ndcg@10']:.4f}" for k, v in res.items()))
    return out


def run(work: Path, train_size: int, dev_queries: int | None, distractors: int, medquad_result, log=print):
    """`make bench`: the MedQuAD benchmark's models (base, plain recipe, default, variants) on the styles."""
    t = build(train_size, dev_queries, distractors)
    meta = info(t)
    log(f"transfer protocol: {meta}")
    models = {name: c["model_dir"] for name, c in medquad_result["contenders"].items()}
    res = evaluate_models(t, models, log)
    examples = {s: t.styles[s][next(iter(t.protocol.queries))] for s in STYLES}
    return {"protocol": meta, "contenders": res, "examples": examples}


def gains(r: dict[str, Any], key: str = "written") -> dict[str, float | None]:
    """NDCG@10 on one query set (`written`, or `overall` for the derived styles): default - base, and
    (default - base) / (plain - base)."""
    c = r["contenders"]
    if key not in c["base"]["sets"]:
        return {"default_minus_base": None, "ratio": None}

    def nd(name: str) -> float:
        return c[name]["sets"][key]["ndcg@10"]

    base = nd("base")
    plain = nd("plain recipe") - base if "plain recipe" in c else None
    d = nd("default") - base if "default" in c else None
    return {"default_minus_base": d, "ratio": None if d is None or not plain else d / plain}


def markdown(r: dict[str, Any]) -> list[str]:
    p, c = r["protocol"], r["contenders"]
    base = c["base"]["sets"]
    cols = [k for k in ["in-domain", *SETS, "overall"] if k in base]
    out = [
        "## 1b. Transfer — other query styles of the MedQuAD domain",
        "",
        f"The MedQuAD protocol's models and corpus ({p['corpus']} documents). **written**: "
        f"{p.get('written', 0)} consumer questions written by hand for the dev topics in askers' own words (subject "
        "line + message, background, lay words for the condition, several questions in one, typos; "
        f"{p.get('written_words', 0):.1f} words on average), {p.get('written_gold', 0)} gold answers judged by hand "
        f"(tests/benchmarks/written_queries.jsonl; {p.get('written_dropped', 0)} dropped at this corpus size); the "
        "targets use it. Derived styles: each of its "
        f"{p['queries_per_style']} dev queries rewritten in {len(STYLES)} styles, derived deterministically "
        "(tests/benchmarks/transfer.py, seeded): keywords (subject + one intent word), a consumer's message "
        "(subject line, background, the question reworded, from hand-written templates), typos (a swapped, dropped "
        "or doubled letter in ~1/3 of the words), lower-cased without punctuation. Mean words per query: "
        + ", ".join(f"{k} {v:.1f}" for k, v in p["mean_words"].items())
        + ". Overall = mean NDCG@10 over all styles' queries; in-domain = the MedQuAD protocol's template questions "
        "(same evaluator settings, same corpus encoding). Example ("
        + "; ".join(f'{s}: "{q[:120]}"' for s, q in r.get("examples", {}).items())
        + ").",
        "",
        "| contender | " + " | ".join(f"{k} NDCG@10" for k in cols) + " | written gain | overall gain |",
        "|---|" + "---:|" * (len(cols) + 2),
    ]
    for name, x in c.items():
        s = x["sets"]
        w = f"{s['written']['ndcg@10'] - base['written']['ndcg@10']:+.4f}" if "written" in s else "n/a"
        out.append(
            f"| {name} | "
            + " | ".join(f"{s[k]['ndcg@10']:.4f}" for k in cols)
            + f" | {w} | {s['overall']['ndcg@10'] - base['overall']['ndcg@10']:+.4f} |"
        )
    return out + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("cmd", choices=["eval", "show"])
    ap.add_argument("name", nargs="?")
    ap.add_argument("model_dir", nargs="?")
    ap.add_argument("--wise", default="", help="WiSE-FT alphas to evaluate too, e.g. 0.5,0.7")
    ap.add_argument("--train-size", type=int, default=1500)
    ap.add_argument("--dev-queries", type=int, default=500)
    ap.add_argument("--distractors", type=int, default=1000)
    ap.add_argument("--work", default="test-artifacts/bench")
    a = ap.parse_args()
    t = build(a.train_size, a.dev_queries or None, a.distractors)
    if a.cmd == "show":
        print(json.dumps(info(t), indent=1))
        for qid in list(t.protocol.queries)[:12]:
            print(f"\n[{qid}] {t.protocol.queries[qid]}")
            for s in STYLES:
                print(f"  {s:9s} {t.styles[s][qid]}")
        for qid in list(t.written)[:5]:
            print(f"\n[{qid}] written, gold {t.written_relevant[qid]}: {t.written[qid]}")
        return
    from sentence_transformers import SentenceTransformer

    from .common import bundled_model

    work = Path(a.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    ev = Evaluators(t)
    model_dir = a.model_dir or bundled_model()
    todo = [(a.name, None)] + [(f"{a.name} wise={x}", float(x)) for x in a.wise.split(",") if x]
    for name, alpha in todo:
        t0 = time.time()
        model = (
            SentenceTransformer(model_dir, local_files_only=True)
            if alpha is None
            else interpolate(bundled_model(), model_dir, alpha)
        )
        res = ev(model)
        row = {"name": name, "model_dir": model_dir, "alpha": alpha, "eval_s": round(time.time() - t0, 1), "sets": res}
        print(json.dumps({"name": name, **{k: round(v["ndcg@10"], 4) for k, v in res.items()}}), flush=True)
        with (work / "transfer.jsonl").open("a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
