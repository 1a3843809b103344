"""Public mode as strangers would meet it: two gradio_client visitors on one public studio, the attacks a visitor
can try through the documented API, a YAML bomb, and the training queue. Real trainings of the bundled model."""

from __future__ import annotations

import dataclasses
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
from gradio_client import Client, handle_file

from core.public.visitors import Visitors
from tests.studio.conftest import _free_port

CANARY = "canary-7f3a9c secret server text"
BUNDLED = "sentence-transformers/all-MiniLM-L6-v2"
ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "assets" / "samples" / "it_helpdesk_pairs.jsonl"


def tiny(**extra) -> dict:
    return {
        "max_seq_length": 32,
        "batch_size": 8,
        "sample_size": 40,
        "test_size": 0.2,
        "num_epochs": 1,
        "mining.num_negatives": 0,
        **extra,
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A public studio whose server folders hold canary files a visitor must never reach."""
    from studio.app import create_app

    tmp = tmp_path_factory.mktemp("public")
    secret = tmp / "server_files"
    (secret / "model").mkdir(parents=True)
    (secret / "canary.jsonl").write_text(json.dumps({"query": CANARY, "document": CANARY}) + "\n" * 1, "utf-8")
    (secret / "canary.txt").write_text(CANARY + "\n", "utf-8")
    (secret / "model" / "config.json").write_text("{}", "utf-8")
    (secret / "model" / "README.md").write_text(CANARY, "utf-8")
    (secret / "runs" / "r1").mkdir(parents=True)
    (secret / "runs" / "r1" / "events.jsonl").write_text(json.dumps({"type": "failed", "message": CANARY}) + "\n")
    operator = tmp / "runs" / "operator_run"  # a run of the server's own runs_dir, with a saved model
    (operator / "model").mkdir(parents=True)
    (operator / "model" / "config.json").write_text("{}", "utf-8")
    (operator / "events.jsonl").write_text(json.dumps({"type": "finished", "message": CANARY}) + "\n")
    demo = create_app(workspace=tmp / "workspace", runs_dir=tmp / "runs", public=True)
    demo.queue(default_concurrency_limit=4)
    port = _free_port()
    demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=port, share=False, quiet=True)
    yield {"url": f"http://127.0.0.1:{port}/", "tmp": tmp, "secret": secret, "demo": demo}
    from core.runs.queue import live_runs, stop_training

    if live_runs():
        stop_training(wait_s=30)
    demo.close()


@pytest.fixture(scope="module")
def a(server) -> Iterator[Client]:
    c = Client(server["url"], verbose=False)
    yield c
    c.close()


@pytest.fixture(scope="module")
def b(server) -> Iterator[Client]:
    c = Client(server["url"], verbose=False)
    yield c
    c.close()


def status(client: Client) -> dict:
    return client.predict(api_name="/training_status")


def wait_for(client: Client, done, timeout: float) -> dict:
    deadline = time.time() + timeout
    while True:
        s = status(client)
        if done(s) or time.time() > deadline:
            return s
        time.sleep(1)


def assert_no_canary(*responses) -> None:
    for r in responses:
        assert CANARY not in json.dumps(r, default=str)


def test_canary_files_intact(server) -> None:  # guards the attack tests below: they must not write anything
    assert (server["secret"] / "canary.txt").read_text("utf-8") == CANARY + "\n"


def test_path_attacks_through_start_training_are_refused(a, server) -> None:
    secret = server["secret"]
    attacks = {
        "output_dir": [str(secret), str(secret / "model"), "../../../server_files", "/tmp/elsewhere"],
        "runs_dir": [str(secret / "runs")],
        "cache_dir": ["../../.."],
        "dataset_path": [str(secret / "canary.jsonl"), "../../../server_files/canary.jsonl"],
        "corpus_path": [str(secret / "canary.txt"), "~/canary.txt"],
        "model_name": [str(secret / "model"), "../../../server_files/model"],
        "mining.exclude_path": [str(secret / "canary.txt")],
        "resume": [str(secret / "runs" / "r1")],
    }
    for key, values in attacks.items():
        for value in values:
            out = a.predict({key: value}, api_name="/start_training")
            assert "error" in out and out["errors"][0].startswith(key), (key, value, out)
            assert_no_canary(out)
    assert status(a)["state"] == "idle"  # nothing started
    assert (secret / "canary.txt").read_text("utf-8") == CANARY + "\n" and (secret / "model" / "README.md").exists()


def test_other_endpoints_refuse_server_paths(a, server) -> None:
    secret = server["secret"]
    zipped = a.predict(str(secret / "model"), api_name="/export_zip")
    opened = a.predict(str(secret / "runs" / "r1"), api_name="/open_run")
    opened_rel = a.predict("../../../server_files/runs/r1", api_name="/open_run")
    pushed = a.predict(str(secret / "model"), "someone/model", "hf_token", True, api_name="/hub_push")
    assert zipped[0] is None and "Refused" in zipped[1]
    assert "Refused" in opened and "Refused" in opened_rel and "Refused" in pushed
    with pytest.raises(Exception, match="Refused"):
        a.predict(
            "text",
            "other",
            "sentence-transformers/all-MiniLM-L6-v2",
            str(secret / "model"),
            api_name="/compare_similarity",
        )
    set_cfg = a.predict({"corpus_path": str(secret / "canary.txt")}, api_name="/set_config")
    assert not set_cfg["ok"] and set_cfg["errors"][0].startswith("corpus_path")
    loaded = a.predict(f"dataset_path: {secret / 'canary.jsonl'}\n", api_name="/load_config")
    assert not loaded["ok"] and loaded["errors"][0].startswith("dataset_path")
    side = a.predict([str(secret / "runs" / "r1"), "../../../runs/operator_run"], None, api_name="/compare_runs")
    assert "Refused" in side["error"]
    models = a.predict(api_name="/model_choices")["models"]
    outputs = (zipped, opened, opened_rel, pushed, set_cfg, loaded, side, models, a.predict(api_name="/run_history"))
    assert_no_canary(*outputs)
    assert not any(str(secret) in m["value"] or "operator_run" in m["value"] for m in models)
    assert not list(server["tmp"].rglob("*.zip"))


def test_similarity_playground_works_for_a_visitor(a, server) -> None:
    """No dataset and no config of theirs is involved: the bundled model on both sides just answers."""
    out = a.predict(
        "reset my password",
        "change a forgotten password\nprinter jam",
        BUNDLED,
        BUNDLED,
        api_name="/compare_similarity",
    )
    assert len(out["model_a"]) == 2 and out["model_a"][0] > out["model_a"][1], out
    with pytest.raises(Exception, match="Refused"):
        a.predict("q", "d", str(server["secret"] / "model"), BUNDLED, api_name="/compare_similarity")


def test_a_crafted_session_hash_names_no_folder(server) -> None:
    c = Client(server["url"], verbose=False)
    c.session_hash = "../../../server_files/evil"
    try:
        report = c.predict(handle_file(str(SAMPLE)), api_name="/validate_dataset")
        assert report["selected"]
    finally:
        c.close()
    assert not (server["secret"] / "evil").exists()
    assert not [p for p in server["tmp"].rglob("*evil*")]
    folders = [p for p in (server["tmp"] / "workspace" / "visitors").iterdir() if p.is_dir()]
    assert all(len(p.name) == 32 for p in folders)  # server-made tokens only


def page_event(url: str, session_hash: str, name: str, data: list) -> dict:
    """An event as the page sends it, private ones too: join the queue, read its result from the stream."""
    fn = next(d["id"] for d in httpx.get(url + "config").json()["dependencies"] if d["api_name"] == name)
    body = {"data": data, "fn_index": fn, "session_hash": session_hash, "event_data": None, "trigger_id": None}
    event = httpx.post(url + "gradio_api/queue/join", json=body, timeout=30).json()["event_id"]
    with httpx.stream("GET", url + "gradio_api/queue/data", params={"session_hash": session_hash}, timeout=120) as s:
        for line in s.iter_lines():
            msg = json.loads(line[5:]) if line.startswith("data:") else {}
            if msg.get("msg") == "process_completed" and msg.get("event_id") == event:
                return msg
    raise AssertionError(f"{name}: no result")


def test_a_relative_exclude_path_is_written_in_the_visitors_folder_only(server) -> None:
    """A relative mining.exclude_path passes the check as a path inside the visitor's folder; saving exclusions must
    write it there, not relative to the server's working directory (the shipped samples, ./runs, others' folders)."""
    target = Path("test-artifacts", f"exclude-attack-{time.time_ns()}.jsonl")
    yaml_text = f"dataset_path: {SAMPLE}\nmining:\n  exclude_path: {target}\n"
    table = {
        "headers": ["exclude", "query", "positive", "negative"],
        "data": [[True, "ATTACKER", "p", "evil"]],
        "metadata": None,
    }
    try:
        applied = page_event(server["url"], "excl-attack", "on_yaml", [yaml_text, None])
        assert applied["success"], applied
        saved = page_event(server["url"], "excl-attack", "negatives_exclude", [table, None])
        assert saved["success"], saved
        assert not (Path.cwd() / target).exists()
        v = server["demo"].studio_context.visitor(SimpleNamespace(session_hash="excl-attack"))
        assert "ATTACKER" in (v.root / target).read_text("utf-8")
        missing = page_event(
            server["url"], "excl-attack", "negatives_exclude", [{**table, "headers": ["x"], "data": [["y"]]}, None]
        )
        assert "no exclude, query, negative column" in json.dumps(missing["output"])
    finally:
        (Path.cwd() / target).unlink(missing_ok=True)


def test_yaml_bomb_is_refused_fast_and_the_server_keeps_answering(a, b) -> None:
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
    t0 = time.time()
    out = a.predict(bomb, api_name="/start_training")
    assert time.time() - t0 < 2.0 and "anchors and aliases" in out["error"]
    big = a.predict("x: " + "y" * 70_000, api_name="/start_training")
    assert "64 KB" in big["error"]
    assert b.predict(api_name="/current_dataset")["format"] == "pairs"


def test_new_sessions_cannot_push_out_a_visitor_at_work(server, monkeypatch) -> None:
    import studio.context

    monkeypatch.setattr(studio.context, "MAX_SESSIONS", 5)
    ctx = server["demo"].studio_context
    victim = SimpleNamespace(session_hash="victim-at-work")
    first = ctx.visitor_id(victim)
    for i in range(20):  # a script opening sessions, while the victim keeps working
        ctx.visitor_id(SimpleNamespace(session_hash=f"flood-{i}"))
        assert ctx.visitor_id(victim) == first


def test_forged_ids_are_not_visitors(server) -> None:
    visitors = Visitors(server["tmp"] / "workspace")
    real = visitors.issue()
    token, sig = real.split(".")
    assert visitors.check(real) == real
    for forged in [f"{token}.{'0' * 32}", f"{'A' * 32}.{sig}", "../../etc", "", None, 42, real + "x"]:
        assert visitors.check(forged) is None
    with pytest.raises(ValueError):
        visitors.folder(f"{token}.{'0' * 32}")


@pytest.mark.slow
def test_disk_caps_refuse_new_files_and_keep_the_last_dataset(server, tmp_path: Path) -> None:
    """The per-visitor cap, then the server's free-disk reserve (many sessions, each under its own cap, must not
    fill the disk): an upload over either is refused with the reason and stored nowhere; the last dataset stays."""
    ctx = server["demo"].studio_context
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    first.write_text(SAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    second.write_text("".join(SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)[:50]), encoding="utf-8")
    c = Client(server["url"], verbose=False)
    saved = ctx.limits
    try:
        kept = c.predict(handle_file(str(first)), api_name="/validate_dataset")
        assert kept["selected"]
        for limits, reason in [
            (dataclasses.replace(saved, visitor_disk_mb=0.001), "MB per visitor"),  # the first upload is over it
            (dataclasses.replace(saved, min_free_disk_mb=1e12), "disk is nearly full"),
        ]:
            ctx.limits = limits
            report = c.predict(handle_file(str(second)), api_name="/validate_dataset")
            assert not report["selected"] and reason in json.dumps(report), report
            assert c.predict(api_name="/current_dataset")["dataset_path"] == kept["dataset_path"]
            assert not list((server["tmp"] / "workspace" / "visitors").glob("*/uploads/**/second*"))
        ctx.limits = saved
        assert c.predict(handle_file(str(second)), api_name="/validate_dataset")["selected"]
    finally:
        ctx.limits = saved
        c.close()


def test_model_lists_show_a_visitor_their_own_models_only(server) -> None:
    """The pickers (Config's model_name, Compare's and RAG's) never list the server's runs or output_dir; once the
    visitor is known they list that visitor's runs and their output_dir, inside their folder."""
    from studio.model_picker import choices

    operator = str(server["tmp"] / "runs" / "operator_run")
    listed = [json.dumps(c.get("props", {}).get("choices")) for c in server["demo"].config["components"]]
    assert not any("operator_run" in text for text in listed)
    ctx = server["demo"].studio_context
    v = ctx.visitor(SimpleNamespace(session_hash="model-list-test"))
    for folder in (v.runs_dir / "r1" / "model", v.root / "outputs" / "m"):
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}", "utf-8")
    (v.runs_dir / "r1" / "events.jsonl").write_text(json.dumps({"type": "finished"}) + "\n", "utf-8")
    values = [value for _, value in choices(v, {"output_dir": "outputs/m"})]
    assert "runs/r1/model" in values and "outputs/m" in values  # named inside their folder, never by server path
    assert not any(x.startswith(operator) for x in values)
    # an output_dir outside their folder is not looked up at all
    assert not any("server_files" in value for _, value in choices(v, {"output_dir": str(server["secret"])}))


def test_two_visitors_are_isolated_and_queued_fifo(a, b, server) -> None:
    first = a.predict(tiny(), api_name="/start_training")
    assert first["state"] == "running", first
    second = b.predict(tiny(), api_name="/start_training")
    assert second["state"] == "queued" and second["position"] == 1, second
    # one training per visitor; a full queue refuses newcomers; memory-bound keys are capped; a missing file is
    # refused before it takes a turn in the queue
    again = a.predict(tiny(), api_name="/start_training")
    assert "one training at a time" in again["error"] and first["run_id"] in again["error"], again
    ctx = server["demo"].studio_context
    limits, ctx.limits = ctx.limits, dataclasses.replace(ctx.limits, max_queued=1)
    c = Client(server["url"], verbose=False)
    try:
        assert "queue is full (1 waiting" in c.predict(tiny(), api_name="/start_training")["error"]
    finally:
        ctx.limits = limits
        c.close()
    for extra, says in (
        ({"batch_size": 500}, "batch_size: 500 texts per step is over this server's limit of 64"),
        ({"batch_size": 500, "mini_batch_size": 16}, "one training at a time"),  # the cached loss is allowed
        ({"max_seq_length": 4096}, "max_seq_length: set it to at most 512"),
        ({"dataset_path": "uploads/gone.jsonl"}, "dataset_path: gone.jsonl not found"),
    ):
        assert says in a.predict(tiny(**extra), api_name="/start_training")["error"], extra
    assert Path(first["run_dir"]).parents[1] != Path(second["run_dir"]).parents[1]  # two visitor folders
    seen_by_b = status(b)
    assert seen_by_b["run_dir"] == second["run_dir"] and seen_by_b["state"] == "queued"
    # B can neither open, stop nor resume A's run, nor see it in its history
    assert "Refused" in b.predict(first["run_dir"], api_name="/open_run")
    assert len(b.predict(api_name="/run_history")[0]["data"]) == 1  # only its own (run ids may coincide)
    resumed = b.predict({"resume": first["run_dir"]}, api_name="/start_training")
    assert resumed["errors"][0].startswith("resume")
    assert status(b)["run_dir"] == second["run_dir"]
    done_a = wait_for(a, lambda s: s["state"] not in ("running", "queued"), timeout=300)
    assert done_a["state"] == "finished" and done_a["run_dir"] == first["run_dir"], done_a
    done_b = wait_for(b, lambda s: s["state"] not in ("running", "queued"), timeout=300)
    assert done_b["state"] == "finished" and done_b["run_dir"] == second["run_dir"], done_b
    assert len(b.predict(api_name="/run_history")[0]["data"]) == 1
    card = (Path(done_b["model_dir"]) / "README.md").read_text("utf-8")
    metrics = (Path(second["run_dir"]) / "metrics.json").read_text("utf-8")
    for text in (card, metrics):  # a model card and metrics travel: no server paths, no visitor folder
        assert str(server["tmp"]) not in text and "visitors" not in text
    # a run downloads without its weights and without any server path; another visitor's run is refused
    zipped, line = b.predict(Path(second["run_dir"]).name, False, api_name="/download_run")
    assert "no weights" in line and str(server["tmp"]) not in line
    with zipfile.ZipFile(zipped) as zf:
        names = {n.split("/", 1)[1] for n in zf.namelist()}
        assert {"config.yaml", "record.json", "events.jsonl", "model_card.md"} <= names and "model/" not in str(names)
        for name in names - {"mined.parquet"}:
            text = zf.read(f"{Path(second['run_dir']).name}/{name}").decode("utf-8")
            assert str(server["tmp"]) not in text and str(ROOT) not in text and "visitors/" not in text, name
    refused, why = b.predict(first["run_dir"], False, api_name="/download_run")
    assert refused is None and "Refused" in why
