"""Every `key=value` reaches the config through `make` exactly as `python -m core` takes it, and the studio's
"copy as command" rebuilds the same resolved config when run through make. Checked with `make -n`: the command make
would run, split as the shell splits it, resolved by the CLI's own parser and config loader."""

from __future__ import annotations

import shlex
import subprocess

from core.cli.parser import build_parser
from core.config.schema import EmbedConfig, load_config
from tests.clone_helpers import core_line, make_argv
from tests.conftest import ROOT

DEFAULT = "assets/configs/default.yaml"
TRICKY = [
    "prompts.query=query: ",
    'prompts.document=passage: it\'s a "quoted" #hash; $HOME `ls` (x) * \\n',
    "dataset_name=Données médicales: ü 日本語",
    "mining.num_negatives=3",
    "evaluation.metrics=[ndcg@10, mrr@10]",
    "learning_rate=1e-5",
    "mining.margin=null",
]


def dry_run(*args: str) -> list[str]:
    r = subprocess.run(make_argv(*args, dry_run=True), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return core_line(r.stdout, args[0].removesuffix("-embed").replace("validate", "validate-config"))


def resolved(words: list[str]) -> EmbedConfig:
    a = build_parser().parse_args(words[3:])
    return load_config(ROOT / a.config, a.overrides)


def test_every_override_passes_through_make_unchanged():
    words = dry_run("train-embed", f"EMBED_CONFIG={DEFAULT}", *TRICKY)
    assert sorted(w for w in words if "=" in w) == sorted(TRICKY)  # each one word, byte for byte
    cfg = resolved(words)
    assert cfg == load_config(ROOT / DEFAULT, TRICKY)  # what `python -m core train --config … <same>` resolves
    assert cfg.prompts.query == "query: " and cfg.prompts.document.startswith('passage: it\'s a "quoted" #hash; $HOME')
    assert cfg.dataset_name == "Données médicales: ü 日本語" and cfg.evaluation.metrics == ["ndcg@10", "mrr@10"]
    # make's own variables stay make's: they are not overrides
    words = dry_run("train-embed", "TB_PORT=7000", "NPROC=1", "num_epochs=2")
    assert [w for w in words if "=" in w] == ["num_epochs=2"]


def test_other_targets_pass_overrides_the_same_way():
    for target in ("validate-embed", "mine-embed"):
        words = dry_run(target, "prompts.query=query: ")
        assert "prompts.query=query: " in words


def test_copy_as_command_reproduces_the_config_through_make(tmp_path):
    from studio.tabs.config import DEFAULT_CONFIG, absolute_paths, copy_command

    config = load_config(
        DEFAULT_CONFIG, TRICKY + [f"output_dir={tmp_path / 'my model'}", f"runs_dir={tmp_path}/runs #1"]
    ).to_dict()
    command = copy_command(config)
    parts = shlex.split(command)  # the shell's reading of the text a user pastes
    assert parts[:2] == ["make", "train-embed"]
    words = dry_run(*parts[1:])
    assert resolved(words).to_dict() == absolute_paths(config)
