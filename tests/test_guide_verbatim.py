"""The guide's steps as a user types them, in a fresh clone's layout: its bash blocks run as written (the toy data,
the step-3 config), every `make …`/`python …` line of it is checked, and the Makefile's promises hold as run.

One training serves them all (the guide's step-3 config on its 8 toy pairs, num_epochs=1): it runs as
`make train-embed-tb` with TensorBoard asked while it runs; then `make infer-embed`, the guide's `python -c`, its RAG
script and `make eval-embed` use the model it saved. Lines that would train again are checked with `make -n` and the
config they resolve to; lines that need a model this machine cannot download are checked that way too, and once
through `make validate-embed`, which must say which key names the missing model."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from core.cli.parser import build_parser
from core.config.schema import build_config, get_key, load_config, parse_overrides
from tests import guide_text
from tests.clone_helpers import VENV, core_line, free_port, fresh_clone, make_argv, user_env

# Without the guide (a clone without ../shared/guide) the walkthrough runs from the fixtures, copies of its text
# (tests/test_guide.py checks them against it when it is there): the make targets are tested either way.
pytestmark = pytest.mark.slow
needs_guide = pytest.mark.skipif(not guide_text.GUIDE.is_file(), reason=guide_text.MISSING)

STEP3 = "embeddingFT/configs/my_embedding.yaml"
TRAINED = f"make train-embed EMBED_CONFIG={STEP3}"  # run for real, as train-embed-tb, with num_epochs=1
REAL = {
    "make setup-embed-dirs",
    "make infer-embed",
    "make train-embed-tb",  # with the step-3 config: the one training below
}
# Not this project's: the guide's LLM side (Xyne-Play's data processing and LLM training).
OUT_OF_SCOPE = {"make process", "make train-bnb-tb"}
# The guide's step 1-3 blocks and its two python lines, for a clone without the guide (copies of its text)
FIXTURE_STEPS = {
    "Step 1: Create Sample Dataset": "mkdir -p data/raw\ncp {fixtures}/step1_embedding_dataset.jsonl data/raw/embedding_dataset.jsonl",
    "Step 2: Setup Embedding Directories": "make setup-embed-dirs",
    "Step 3: Configure Embedding Training": f"cp {{fixtures}}/step3_my_embedding.yaml {STEP3}",
}
PYTHON_C = """python -c "
from sentence_transformers import SentenceTransformer
model = SentenceTransformer('outputs/embedding_model')
embeddings = model.encode(['What is ML?', 'Machine learning is...'])
print('Similarity:', model.similarity(embeddings[0], embeddings[1]))
\""""
RAG_LINE = (
    "python scripts/create_rag_dataset.py --embedding_model outputs/embedding_model --documents data/raw/domain_docs "
    "--output data/processed/rag_enhanced_data.jsonl"
)
NEEDS_DOWNLOAD = ("stsb-roberta-large", "allenai-specter", "legal-roberta-base", "multilingual", "static-retrieval")


def run(argv: list[str], cwd: Path, timeout: int = 300, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, env=user_env(**env), capture_output=True, text=True, timeout=timeout)


def scalar_tags(port: int) -> set[str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/plugin/scalars/tags", timeout=2) as r:
            return {tag for tags in json.load(r).values() for tag in tags}
    except OSError:
        return set()


@pytest.fixture(scope="module")
def steps_1_to_3(tmp_path_factory):
    """A fresh clone where the guide's bash blocks of steps 1 to 3 ran as written."""
    clone = fresh_clone(tmp_path_factory.mktemp("clone"))
    out: dict = {"clone": clone}
    if guide_text.GUIDE.is_file():
        bash = dict(guide_text.blocks("bash"))
    else:
        bash = {k: v.format(fixtures=guide_text.FIXTURES) for k, v in FIXTURE_STEPS.items()}
    for step in ("Step 1: Create Sample Dataset", "Step 2: Setup Embedding Directories"):
        out[step] = run(["bash", "-c", _with_venv(bash[step])], clone)
    out["Step 3"] = run(["bash", "-c", bash["Step 3: Configure Embedding Training"]], clone)
    return out


@pytest.fixture(scope="module")
def walkthrough(steps_1_to_3):
    """The guide from step 4 to its RAG script in the same clone; each step's result for the tests below."""
    out = dict(steps_1_to_3)
    clone = out["clone"]
    # Step 4, one training: the step-3 config with num_epochs=1, and TensorBoard asked while it runs.
    port = free_port()
    argv = make_argv("train-embed-tb", f"EMBED_CONFIG={STEP3}", "num_epochs=1", "evaluation.eval_steps=1")
    proc = subprocess.Popen(
        [*argv, f"TB_PORT={port}"],
        cwd=clone,
        env=user_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    tags: set[str] = set()
    answered = False
    while proc.poll() is None:
        got = scalar_tags(port)
        answered = answered or bool(got) or _answers(port)
        tags |= got
        time.sleep(0.5)
    out["train"] = (proc.returncode, proc.stdout.read())
    out["tensorboard"] = (answered, tags)
    out["infer"] = run(make_argv("infer-embed"), clone)
    python_c, rag = PYTHON_C, RAG_LINE
    out["python -c"] = run(["bash", "-c", _with_venv(python_c)], clone)
    docs = clone / "data" / "raw" / "domain_docs"  # the guide's RAG step reads documents the user has put here
    docs.mkdir(parents=True)
    for i, line in enumerate((clone / "data" / "raw" / "embedding_dataset.jsonl").read_text().splitlines()):
        (docs / f"doc{i}.txt").write_text(json.loads(line)["document"] + "\n", encoding="utf-8")
    out["rag"] = run(["bash", "-c", _with_venv(rag)], clone)
    out["eval"] = run(make_argv("eval-embed", "DATA=data/raw/embedding_dataset.jsonl"), clone)
    return out


def _with_venv(script: str) -> str:
    """The user's shell has the project's venv active: `python` is its python."""
    return f'export PATH="{VENV}/bin:$PATH"\n' + script.replace("make ", f"make -o {VENV}/.installed VENV={VENV} ")


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=2):
            return True
    except OSError:
        return False


@needs_guide
def test_every_guide_command_is_checked():
    """A command added to the guide must be given a check here; the two python lines run are the guide's."""
    assert PYTHON_C in guide_text.command_lines() and RAG_LINE in guide_text.command_lines()
    for command in guide_text.command_lines():
        checked = (
            command in REAL
            or command in OUT_OF_SCOPE
            or command.startswith(("make train-embed ", "python -c", "python scripts/create_rag_dataset.py"))
            or command == "make train-embed"
        )
        assert checked, command


@needs_guide
def test_steps_1_to_3_as_written(steps_1_to_3):
    walkthrough = steps_1_to_3
    clone = walkthrough["clone"]
    for step in ("Step 1: Create Sample Dataset", "Step 2: Setup Embedding Directories", "Step 3"):
        assert walkthrough[step].returncode == 0, walkthrough[step].stdout + walkthrough[step].stderr
    data = (clone / "data" / "raw" / "embedding_dataset.jsonl").read_text(encoding="utf-8")
    assert data == guide_text.heredocs()["data/raw/embedding_dataset.jsonl"]
    for d in ("configs", "scripts", "data", "models", "checkpoints", "outputs"):
        assert (clone / "embeddingFT" / d).is_dir()
    assert (clone / STEP3).read_text(encoding="utf-8") == guide_text.heredocs()[STEP3]


def test_step4_trains_the_toy_pairs_with_tensorboard(walkthrough):
    code, log = walkthrough["train"]
    assert code == 0, log[-4000:]
    assert "warning: sample_size=500 is larger than the data: used all 8 rows" in log
    assert "7 train / 1 test" in log and "finished: model saved to" in log
    assert "| accuracy@1 |" in log
    assert (walkthrough["clone"] / "outputs" / "embedding_model" / "modules.json").is_file()
    # The run folder records the make command as typed, the versions and the machine.
    run_dir = next((walkthrough["clone"] / "runs").iterdir())
    record = json.loads((run_dir / "record.json").read_text(encoding="utf-8"))
    assert record["command"]["via"] == "make" and "train-embed-tb" in record["command"]["make"]
    assert "num_epochs=1" in record["command"]["make"] and "num_epochs=1" in record["command"]["argv"]
    assert record["versions"]["sentence-transformers"] and record["machine"]["cpu_cores"]
    answered, tags = walkthrough["tensorboard"]
    assert answered, "TensorBoard never answered on its port during the run"
    assert any("loss" in t for t in tags), tags
    assert any(t.startswith("eval") for t in tags), tags
    # One progress display: the project's lines only, no library bars in between (make's output is no terminal).
    assert "it/s]" not in log and "Batches:" not in log and "\r" not in log


def test_step5_infer_embed_and_the_python_snippet(walkthrough):
    r = walkthrough["infer"]
    assert r.returncode == 0, r.stdout + r.stderr
    assert "password" in r.stdout.lower()
    r = walkthrough["python -c"]
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.startswith("Similarity: tensor([[")


def test_rag_script_as_the_guide_types_it(walkthrough):
    r = walkthrough["rag"]
    assert r.returncode == 0, r.stdout + r.stderr
    rows = (walkthrough["clone"] / "data" / "processed" / "rag_enhanced_data.jsonl").read_text().splitlines()
    assert len(rows) >= 1 and json.loads(rows[0])


def test_make_eval_embed_on_the_trained_model(walkthrough):
    r = walkthrough["eval"]
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ndcg@10" in r.stdout


def _dry_config(clone: Path, command: str):
    """The config a guide's `make train-embed …` line trains with, read from the command `make -n` prints."""
    words = command.split()[1:]
    r = run(make_argv(words[0], *words[1:], dry_run=True), clone)
    assert r.returncode == 0, r.stderr
    a = build_parser().parse_args(core_line(r.stdout)[3:])
    return load_config(clone / a.config, a.overrides)


@needs_guide
def test_every_training_line_of_the_guide_resolves_as_written(steps_1_to_3):
    clone = steps_1_to_3["clone"]
    trains = [c for c in guide_text.command_lines() if c.startswith(("make train-embed", "make train-embed-tb"))]
    assert TRAINED in trains and len(trains) >= 10
    for command in trains:
        cfg = _dry_config(clone, command).to_dict()
        items = [w for w in command.split()[2:] if not w.startswith("EMBED_CONFIG=")]
        expected = build_config({}, items).to_dict()  # `1e-5` is text to YAML 1.1: the schema's reading of it
        for key in parse_overrides(items):
            assert get_key(cfg, key) == get_key(expected, key), command
        if STEP3 in command:
            assert cfg["dataset_name"] == "toy_embedding_dataset" and cfg["cache_dir"] == "/tmp/embedding_cache"


@needs_guide
def test_a_model_to_download_is_named_by_its_key(steps_1_to_3):
    """The guide's "Improve mining quality" line on a machine that cannot download: validation says what to fix."""
    command = next(c for c in guide_text.command_lines() if "mining_model_name=" in c)
    assert any(name in command for name in NEEDS_DOWNLOAD)
    words = command.split()[1:]
    r = run(make_argv("validate-embed", *words[1:]), steps_1_to_3["clone"])
    assert r.returncode != 0
    assert "Fix it by giving mining_model_name" in r.stderr, r.stderr


def test_out_of_scope_lines_are_no_targets_here(steps_1_to_3):
    for command in OUT_OF_SCOPE:
        r = run(["make", "-n", *command.split()[1:]], steps_1_to_3["clone"])
        assert r.returncode != 0 and "No rule to make target" in r.stderr
