"""Derived query styles for the transfer protocol (tests/benchmarks/transfer.py): MedQuAD's template questions
rewritten by rule, seeded per query and style (no hub, no model).

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

They keep the condition's MedQuAD name and one of MedQuAD's intents, so they test surface robustness; the
hand-written `written` set (tests/benchmarks/written.py) is the realistic one.
"""

from __future__ import annotations

import random
import re

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
