"""Benchmark 1b — transfer: trained on MedQuAD's template questions, tested on other query styles of the domain.

Real users do not type "What are the symptoms of X ?". This protocol keeps the MedQuAD protocol's training sample,
corpus and gold answers (tests/benchmarks/medquad.py: the same seeded dev queries, the same dev + distractor
documents, every dev answer of a query relevant) and replaces each dev query by rewrites in other styles, derived
deterministically (seeded per query and style, no hub, no model):

- `keywords`: what a search box gets: the question's subject plus one word for what is asked ("symptoms",
  "treatment", "inherited", ...: without it the gold answer is ambiguous among the subject's answers); template
  words, stopwords and punctuation dropped; word order and the intent word's synonym seeded.
- `message`: a consumer's multi-sentence message: a subject line, one or two background sentences (who is
  affected, how they met the condition, how they feel) and the question reworded, from hand-written templates
  (see SUBJECTS, WHO, BACKGROUND, ASIDES, ASK, CLOSINGS: several dozen phrasings in all).
- `typos`: the template question with seeded misspellings (a swap of two neighbouring letters, a dropped letter
  or a doubled one) in about a third of its words of 4+ letters.
- `lower`: the template question lower-cased with its punctuation removed (MiniLM's tokenizer is uncased, so
  this style is nearly the original: a control).

One InformationRetrievalEvaluator per style (cosine, batch 64), all sharing one encoding of the corpus per model;
`overall` = the mean NDCG@10 over all styles' queries. The in-domain MedQuAD score comes from the same corpus
encoding. Run by `make bench` on the models the MedQuAD benchmark trained (no extra training), and by hand:

    python -m tests.benchmarks.transfer eval NAME MODEL_DIR [--wise 0.5,0.7]   # scores + WiSE-FT sweep
    python -m tests.benchmarks.transfer show                                    # a few queries of each style
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import medquad

SEED = 2626
STYLES = ["keywords", "message", "typos", "lower"]

# (pattern over the template question, intent). The subject is group 1.
TEMPLATES: list[tuple[str, str]] = [
    (r"^what is \(are\) (.+)$", "what"),
    (r"^do you have information about (.+)$", "what"),
    (r"^what are the symptoms of (.+)$", "symptoms"),
    (r"^what are the treatments for (.+)$", "treatment"),
    (r"^how many people are affected by (.+)$", "frequency"),
    (r"^what are the genetic changes related to (.+)$", "genetics"),
    (r"^what research \(or clinical trials\) is being done for (.+)$", "research"),
    (r"^what is the outlook for (.+)$", "outlook"),
    (r"^who is at risk for (.+)$", "risk"),
    (r"^what to do for (.+)$", "selfcare"),
    (r"^what are the stages of (.+)$", "stages"),
    (r"^what are the complications of (.+)$", "complications"),
    (r"^how to diagnose (.+)$", "diagnosis"),
    (r"^how to prevent (.+)$", "prevention"),
    (r"^is (.+) inherited$", "inheritance"),
    (r"^what causes (.+)$", "causes"),
]

STOPWORDS = set(
    """a about above after again against all am an and any are aren't as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have having he her
    here hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should so some such than that the their theirs
    them themselves then there these they this those through to too under until up very was we were what when where
    which while who whom why will with would you your yours yourself""".split()
)

# keywords style: one word (or two) for the intent, seeded among synonyms
INTENT_WORDS = {
    "what": ["", "", "definition", "what is", "overview", "information", "explained"],
    "symptoms": ["symptoms", "signs", "signs and symptoms", "symptoms signs"],
    "treatment": ["treatment", "treatments", "therapy", "cure", "treatment options"],
    "frequency": ["prevalence", "how common", "frequency", "incidence"],
    "genetics": ["genetic cause", "gene mutation", "genes", "genetic changes", "genetics"],
    "research": ["clinical trials", "research", "new research", "trials"],
    "outlook": ["prognosis", "outlook", "life expectancy", "survival"],
    "risk": ["risk factors", "risk", "who gets"],
    "selfcare": ["what to do", "self care", "diet", "management"],
    "stages": ["stages", "staging"],
    "complications": ["complications", "problems"],
    "diagnosis": ["diagnosis", "tests", "diagnose", "testing"],
    "prevention": ["prevention", "prevent", "avoid"],
    "inheritance": ["inherited", "hereditary", "inheritance", "genetic passed down"],
    "causes": ["causes", "cause", "why"],
    "other": [""],
}

# message style ------------------------------------------------------------------------------------------------
SUBJECTS = [
    "{S}",
    "{s}",
    "Question about {s}",
    "question about {s}",
    "{S} question",
    "Re: {s}",
    "{s} info",
    "Need information on {s}",
    "help please",
    "Please help",
    "Information request",
    "my {who_short}",
    "{who_short} diagnosed with {s}",
    "worried",
    "Question",
    "{S} - {topic}",
    "{topic} of {s}?",
    "asking for my {who_short}",
    "{s} ??",
    "URGENT: {s}",
]
# (who, their, short name used in subject lines)
WHO = [
    ("I", "my", "self"),
    ("my son", "his", "son"),
    ("my daughter", "her", "daughter"),
    ("my husband", "his", "husband"),
    ("my wife", "her", "wife"),
    ("my mother", "her", "mother"),
    ("my father", "his", "father"),
    ("my 6 year old", "her", "child"),
    ("my baby girl", "her", "baby"),
    ("my brother", "his", "brother"),
    ("my sister", "her", "sister"),
    ("my grandson", "his", "grandson"),
    ("a friend of mine", "her", "friend"),
    ("my partner", "their", "partner"),
]
BACKGROUND = [
    "{Who} {was} diagnosed with {s} {when}.",
    "{Who} {was} just diagnosed with {s}.",
    "The doctor told us that {who} may have {s}.",
    "We found out {when} that {who} {has} {s}.",
    "{Who} {has} been living with {s} for {years} years.",
    "A specialist mentioned {s} after {their} last tests.",
    "I have been reading about {s} online and I am confused.",
    "{Who} {was} tested for {s} {when} and we are waiting for answers.",
    "Our family doctor thinks it could be {s} but is not sure.",
    "I was told {who} might have something called {s}.",
    "{Who} {has} had health problems for a while and now they say it is {s}.",
    "Someone in our family has {s} and I want to learn more.",
    "{Who} {was} born with {s}.",
    "I just got the results back and it says {s}.",
    "We are dealing with {s} in our family.",
]
WHEN = ["last month", "two weeks ago", "last year", "a few days ago", "recently", "this spring", "yesterday"]
ASIDES = [
    "",
    "",
    "I am really worried.",
    "We are very scared and don't know much about it.",
    "Nobody in our family has had this before.",
    "The doctors did not explain much.",
    "We live far from a big hospital.",
    "I have tried searching but the information is confusing.",
    "{Their} doctor is on vacation and we can't wait.",
    "English is not my first language, sorry.",
    "We have an appointment next week.",
    "I am a nurse but this is outside my field.",
]
ASK = {
    "what": [
        "What is {s} exactly?",
        "Can you explain what {s} is?",
        "What does this disease mean?",
        "I would like to know more about {s}.",
        "What kind of condition is it?",
        "Is it serious and what is it?",
    ],
    "symptoms": [
        "What symptoms should we look for?",
        "What are the signs of {s}?",
        "How do I know if it is getting worse, what are the symptoms?",
        "What does {s} do to the body?",
        "Which symptoms are normal for {s}?",
    ],
    "treatment": [
        "Is there any treatment or cure?",
        "How is {s} treated?",
        "What are the options for treating it?",
        "Is there medicine for {s}?",
        "Can it be cured, and what treatments are there?",
    ],
    "frequency": [
        "How common is {s}?",
        "How many people have this?",
        "Is {s} rare?",
        "How many people in the world get {s}?",
    ],
    "genetics": [
        "What gene causes {s}?",
        "Is it caused by a gene mutation?",
        "What genetic changes lead to {s}?",
        "Which genes are involved?",
    ],
    "research": [
        "Are there any clinical trials for {s}?",
        "Is there any new research being done?",
        "Where can we find studies or trials for {s}?",
        "Are researchers working on a cure?",
    ],
    "outlook": [
        "What is the prognosis?",
        "What is the life expectancy with {s}?",
        "What is the outlook, will {who} get better?",
        "Can people recover from {s}?",
    ],
    "risk": [
        "Who gets {s}?",
        "Who is at risk of getting it?",
        "Are some people more likely to get {s}?",
        "Am I at risk too?",
    ],
    "selfcare": [
        "What can we do at home for {s}?",
        "Is there a diet or anything we should do?",
        "What should {who} do to feel better?",
        "How can we manage {s} day to day?",
    ],
    "stages": [
        "What are the stages of {s}?",
        "How is {s} staged?",
        "What stage could it be and what does that mean?",
    ],
    "complications": [
        "What complications can {s} cause?",
        "What problems can it lead to?",
        "Can {s} cause other problems later?",
    ],
    "diagnosis": [
        "How is {s} diagnosed?",
        "What tests are needed to confirm it?",
        "How can the doctors be sure it is {s}?",
        "What test should we ask for?",
    ],
    "prevention": [
        "How can {s} be prevented?",
        "Is there a way to avoid getting it?",
        "What can we do to prevent {s}?",
    ],
    "inheritance": [
        "Is {s} inherited?",
        "Can {who} pass it on to the children?",
        "Is it genetic, will my other kids get it?",
        "Does {s} run in families?",
    ],
    "causes": [
        "What causes {s}?",
        "Why did {who} get this?",
        "What is the cause of {s}?",
        "How does someone get {s}?",
    ],
    "other": ["{q}", "My question: {q}", "{q} Thank you."],
}
CLOSINGS = [
    "",
    "",
    "Thank you.",
    "Thanks in advance.",
    "Any information would be appreciated.",
    "Thank you for your help.",
    "Please reply soon.",
    "God bless.",
    "thanks",
    "Any help is welcome!",
]
TOPIC_WORDS = {
    "what": "info",
    "symptoms": "Symptoms",
    "treatment": "Treatment",
    "frequency": "How common",
    "genetics": "Genetics",
    "research": "Research",
    "outlook": "Prognosis",
    "risk": "Risk",
    "selfcare": "Care",
    "stages": "Stages",
    "complications": "Complications",
    "diagnosis": "Diagnosis",
    "prevention": "Prevention",
    "inheritance": "Inheritance",
    "causes": "Causes",
    "other": "Question",
}


def parse(q: str) -> tuple[str, str]:
    """(intent, subject) of a MedQuAD template question; ('other', the question) when no template matches."""
    text = re.sub(r"\s*\?+\s*$", "", re.sub(r"\s*\?\s*\?\s*$", "", q.strip())).strip()
    text = re.sub(r"\?+$", "", text).strip()
    for pattern, intent in TEMPLATES:
        m = re.match(pattern, text, flags=re.IGNORECASE)
        if m:
            subject = m.group(1).strip().rstrip("?").strip()
            subject = re.sub(r"^what i need to know about ", "", subject, flags=re.IGNORECASE)
            return intent, subject
    return "other", text


def _words(text: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9][A-Za-z0-9'\-\.]*[A-Za-z0-9]|[A-Za-z0-9]", text)


def keywords(q: str, rng: random.Random) -> str:
    intent, subject = parse(q)
    words = [w for w in _words(subject) if w.lower() not in STOPWORDS]
    if intent == "other":  # a free-form question: its content words
        return " ".join(words) or subject
    extra = rng.choice(INTENT_WORDS[intent])
    parts = [" ".join(words), extra] if rng.random() < 0.7 else [extra, " ".join(words)]
    out = " ".join(p for p in parts if p)
    return out.lower() if rng.random() < 0.5 else out


def _fill(template: str, ctx: dict[str, str]) -> str:
    out = template.format(**ctx)
    return out[:1].upper() + out[1:] if template[:1] == "{" and template[1:2].isupper() else out


def message(q: str, rng: random.Random) -> str:
    intent, subject = parse(q)
    if intent == "other":
        subject_name = " ".join(w for w in _words(q) if w.lower() not in STOPWORDS)
    else:
        subject_name = subject
    who, their, who_short = rng.choice(WHO)
    first = who == "I"
    ctx = {
        "S": subject_name,
        "s": subject_name.lower() if rng.random() < 0.5 else subject_name,
        "who": "I" if first else who,
        "Who": "I" if first else who[:1].upper() + who[1:],
        "their": their,
        "Their": their[:1].upper() + their[1:],
        "was": "was",
        "has": "have" if first else "has",
        "when": rng.choice(WHEN),
        "years": str(rng.randint(2, 15)),
        "who_short": who_short if not first else "health",
        "topic": TOPIC_WORDS[intent],
        "q": q.strip(),
    }
    subject_line = _fill(rng.choice(SUBJECTS), ctx)
    background = [_fill(rng.choice(BACKGROUND), ctx)]
    aside = _fill(rng.choice(ASIDES), ctx)
    ask = _fill(rng.choice(ASK[intent]), ctx)
    closing = rng.choice(CLOSINGS)
    body = [*background, aside, ask, closing] if rng.random() < 0.6 else [*background, ask, aside, closing]
    sep = rng.choice(["\n", ". ", ": ", " - "])
    return subject_line + sep + " ".join(p for p in body if p)


def typos(q: str, rng: random.Random, rate: float = 0.35) -> str:
    def garble(w: str) -> str:
        i = rng.randrange(len(w) - 1)
        kind = rng.choice(["swap", "drop", "double"])
        if kind == "swap":
            return w[:i] + w[i + 1] + w[i] + w[i + 2 :]
        if kind == "drop":
            return w[:i] + w[i + 1 :]
        return w[: i + 1] + w[i] + w[i + 1 :]

    tokens = q.split(" ")
    candidates = [i for i, t in enumerate(tokens) if len(t) >= 4 and t.isalpha()]
    n = max(1, round(rate * len(candidates))) if candidates else 0
    for i in rng.sample(candidates, n):
        tokens[i] = garble(tokens[i])
    return " ".join(tokens)


def lower(q: str, rng: random.Random) -> str:
    return " ".join(re.sub(r"[^\w\s'-]", " ", q.lower()).split())


MAKERS = {"keywords": keywords, "message": message, "typos": typos, "lower": lower}


def style_queries(queries: dict[str, str]) -> dict[str, dict[str, str]]:
    """{style: {qid: rewritten query}} for the protocol's dev queries; seeded per (style, query id)."""
    return {
        style: {qid: MAKERS[style](q, random.Random(f"{SEED}:{style}:{qid}")) for qid, q in queries.items()}
        for style in STYLES
    }


@dataclass
class Transfer:
    protocol: medquad.Protocol
    styles: dict[str, dict[str, str]]


def build(train_size: int, dev_queries: int | None, distractors: int) -> Transfer:
    p = medquad.build_protocol(train_size, dev_queries, distractors)
    return Transfer(p, style_queries(p.queries))


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
    }


def _evaluator(p: medquad.Protocol, queries: dict[str, str]):
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator

    return InformationRetrievalEvaluator(
        queries,
        p.corpus,
        {k: set(v) for k, v in p.relevant.items()},
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


def gains(r: dict[str, Any]) -> dict[str, float | None]:
    """Overall transfer NDCG@10: default - base, and (default - base) / (plain - base)."""
    c = r["contenders"]

    def nd(name: str) -> float:
        return c[name]["sets"]["overall"]["ndcg@10"]

    base = nd("base")
    plain = nd("plain recipe") - base if "plain recipe" in c else None
    d = nd("default") - base if "default" in c else None
    return {"default_minus_base": d, "ratio": None if d is None or not plain else d / plain}


def markdown(r: dict[str, Any]) -> list[str]:
    p, c = r["protocol"], r["contenders"]
    base = c["base"]["sets"]
    cols = ["in-domain", *STYLES, "overall"]
    out = [
        "## 1b. Transfer — other query styles of the MedQuAD domain",
        "",
        f"The MedQuAD protocol's models, corpus ({p['corpus']} documents) and gold answers; each of its "
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
        "| contender | " + " | ".join(f"{k} NDCG@10" for k in cols) + " | overall gain |",
        "|---|" + "---:|" * (len(cols) + 1),
    ]
    for name, x in c.items():
        s = x["sets"]
        out.append(
            f"| {name} | "
            + " | ".join(f"{s[k]['ndcg@10']:.4f}" for k in cols)
            + f" | {s['overall']['ndcg@10'] - base['overall']['ndcg@10']:+.4f} |"
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
