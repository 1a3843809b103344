"""Encoding many texts (mining, evaluations, document indexes, Compare) as fast as this machine allows, with progress.

On CPUs that compute bf16 natively (avx512_bf16, AMX) a transformer with bf16 weights encodes 2-3x faster than in
fp32; on CPUs without it, ~6x slower. So the choice is a short measurement on this machine, cached per machine and
model architecture (`encode_probe.json` in the user's cache folder), never a list of CPU flags: bf16 is taken only
when it is faster and its embeddings of the probe texts equal fp32's to MIN_COSINE. Only the transformer runs in
bf16; its token embeddings are cast back to fp32, so pooling, normalisation and every score stay fp32 (no ties in
rankings). The model being trained is never changed: encoding uses a bf16 copy.

Training is decided by the same probe: a forward and backward pass under torch's bf16 autocast (fp32 master
weights, as on a GPU) against fp32; `precision: auto` trains in bf16 on a CPU only where that was faster.

No library does this decision; torch's autocast was slower than bf16 weights for encoding here (it casts every op's
inputs), while for training it is the standard mixed precision.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import logging
import os
import platform
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from core.models.load import set_attention_dropout

log = logging.getLogger("core")

PRECISIONS = ("auto", "fp32", "bf16")
MIN_COSINE = 0.99  # bf16 embeddings of the probe texts must match fp32's this well
MIN_SPEEDUP = 1.2  # and be at least this much faster, or fp32 stays
GIVE_UP = 8.0  # a bf16 warm-up step this many times the fp32 step: no bf16 arithmetic here (AMX: 1.25x, avx2: 15x)
PROBE_FILE = "encode_probe.json"
_PROBE_SENTENCE = (
    "Patients with chronic kidney disease often need regular blood tests, a diet low in salt and protein, and "
    "medicines that control blood pressure; the report {i} lists the symptoms, the causes and the treatments. "
)
_decisions: dict[str, dict[str, Any]] = {}  # key -> probe result, for this process


@functools.cache  # read /proc/cpuinfo once per process
def cpu_name() -> str:
    """The CPU's model name and its bf16/AMX/AVX-512 flags: hosts of the same name can differ in CPU."""
    try:
        info = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return platform.processor() or platform.machine()
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    wanted = sorted(f for f in flags if f.startswith(("avx512", "amx", "avx2", "avx_vnni")))
    return f"{name or platform.machine()} [{' '.join(wanted)}]"


def machine_id() -> str:
    """What the speed depends on: host, CPU, CPU count, torch version and threads, and the accelerator."""
    import torch

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    return (
        f"{platform.node()}|{cpu_name()}|{os.cpu_count()}|torch {torch.__version__}|"
        f"{torch.get_num_threads()} threads|{device}"
    )


def _cache_file() -> Path:
    root = os.environ.get("STUDIO_PROBE_CACHE") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return Path(root) / "embedding-studio" / PROBE_FILE


def _architecture(model) -> str:
    """Models of one architecture compute alike: a fine-tuned copy shares its base model's decision."""
    first = model[0]
    config = getattr(getattr(first, "auto_model", None), "config", None)
    fields = [type(first).__name__]
    if config is not None:
        fields += [getattr(config, k, None) for k in ("model_type", "hidden_size", "num_hidden_layers")]
    return "|".join(map(str, fields))


def _bf16_copy(model):
    """A copy whose transformer has bf16 weights and hands fp32 token embeddings to the modules after it."""
    import torch

    fast = copy.deepcopy(model)
    fast[0].to(torch.bfloat16)

    def to_fp32(_module, _inputs, features):
        for key, value in features.items():
            if isinstance(value, torch.Tensor) and value.dtype == torch.bfloat16:
                features[key] = value.float()
        return features

    fast[0].register_forward_hook(to_fp32)
    return fast


def _probe_texts(model, n: int = 16) -> list[str]:
    limit = getattr(model, "max_seq_length", None) or 256
    words = max(8, min(limit, 256) * 3 // 4)  # about as long as the model reads: the cost that matters
    return [" ".join((_PROBE_SENTENCE.format(i=i) * 8).split()[:words]) for i in range(n)]


def _probe(model) -> dict[str, Any]:
    """fp32 vs bf16 on this machine: seconds for the probe texts (best of two) and the lowest cosine."""
    import numpy as np

    texts = _probe_texts(model)
    fast = _bf16_copy(model)

    def timed(m) -> tuple[float, np.ndarray]:
        m.encode(texts[:4], batch_size=4)  # warm-up: first calls allocate
        best, emb = float("inf"), None
        for _ in range(2):
            t0 = time.perf_counter()
            emb = m.encode(texts, batch_size=16, normalize_embeddings=True, convert_to_numpy=True)
            best = min(best, time.perf_counter() - t0)
        return best, emb

    fp32_s, ref = timed(model)
    bf16_s, emb = timed(fast)
    cosine = float((ref * emb).sum(axis=1).min())
    bf16 = cosine >= MIN_COSINE and fp32_s >= MIN_SPEEDUP * bf16_s
    train = copy.deepcopy(model)  # the caller's model keeps its mode and has no gradients
    train_fp32_s = _train_step_s(train, texts[:4], False)
    train_bf16_s = _train_step_s(train, texts[:4], True, give_up_s=GIVE_UP * train_fp32_s)
    return {
        "fp32_s": round(fp32_s, 3),
        "bf16_s": round(bf16_s, 3),
        "min_cosine": round(cosine, 5),
        "bf16": bf16,
        "train_fp32_s": round(train_fp32_s, 3),
        "train_bf16_s": round(train_bf16_s, 3),
        "train_bf16": train_fp32_s >= MIN_SPEEDUP * train_bf16_s,
    }


def _train_step_s(model, texts: list[str], bf16: bool, give_up_s: float = float("inf")) -> float:
    """Seconds of a training forward and backward pass over `texts` (best of two after a warm-up), in fp32 or under
    bf16 autocast, with attention dropout as training sets it (core.models.load.set_attention_dropout). A warm-up
    longer than `give_up_s` is the answer: on a CPU without bf16 arithmetic two more steps cost over a minute."""
    import torch

    set_attention_dropout(model, 0.0)
    features = model.tokenize(texts)
    model.train()
    best = float("inf")
    for i in range(3):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            embeddings = model(dict(features))["sentence_embedding"]
        embeddings.float().square().sum().backward()
        model.zero_grad(set_to_none=True)
        elapsed = time.perf_counter() - t0
        if i:
            best = min(best, elapsed)
        elif elapsed > give_up_s:
            best = elapsed
            break
    model.eval()
    return best


def can_bf16(model) -> bool:
    """A transformer on a CPU: StaticEmbedding models are lookups (nothing to gain), GPUs are another matter."""
    return getattr(model, "device", None) is not None and model.device.type == "cpu" and hasattr(model[0], "auto_model")


def decide(model) -> dict[str, Any]:
    """The probe's result for this machine and the model's architecture, measured once and cached."""
    key = hashlib.sha256(f"{machine_id()}|{_architecture(model)}".encode()).hexdigest()[:20]
    if key in _decisions:
        return _decisions[key]
    path = _cache_file()
    try:
        cached = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        cached = {}
    if not isinstance(cached, dict) or not isinstance(cached.get(key), dict) or "train_bf16" not in cached[key]:
        result = _probe(model)
        log.info("encoding probe on this machine: %s", result)
        cached = cached if isinstance(cached, dict) else {}
        cached[key] = result
        with contextlib.suppress(OSError):  # a read-only home only costs a probe per process
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(cached, indent=1), encoding="utf-8")
            tmp.replace(path)
    _decisions[key] = cached[key]
    return cached[key]


def encode_precision(model, precision: str = "auto") -> str:
    """ "bf16" or "fp32": what `inference_model` will use for this model on this machine."""
    if precision == "fp32" or not can_bf16(model):
        return "fp32"
    if precision == "bf16":
        return "bf16"
    return "bf16" if decide(model).get("bf16") else "fp32"


def train_precision(model) -> str:
    """ "bf16" or "fp32": the autocast `precision: auto` trains in on a CPU, as measured on this machine."""
    return "bf16" if can_bf16(model) and decide(model).get("train_bf16") else "fp32"


def inference_model(model, precision: str = "auto"):
    """The model to encode with: `model` itself, or its bf16 copy where that is faster here (see the module doc).
    Take it after training, not before: the copy holds the weights of the moment."""
    return _bf16_copy(model) if encode_precision(model, precision) == "bf16" else model


@contextlib.contextmanager
def counting(model, report: Callable[[int], None], every_s: float = 1.0) -> Iterator[None]:
    """Calls `report(texts encoded so far)` at most every `every_s` seconds while `model` encodes (one forward
    hook; encode() sends each batch through the model's forward), so long encodes can show progress."""
    done, last = 0, 0.0

    def hook(_module, args, _output):
        nonlocal done, last
        features = args[0] if args else {}
        ids = features.get("input_ids") if hasattr(features, "get") else None  # a dict or a BatchEncoding
        done += int(ids.shape[0]) if ids is not None and hasattr(ids, "shape") else 0
        now = time.monotonic()
        if now - last >= every_s:
            last = now
            report(done)

    handle = model.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def training_precision(cfg, model) -> dict[str, bool]:
    """The trainer's mixed-precision arguments. `auto`: bf16 on a GPU that has it; on a CPU, bf16 autocast where
    this module measured a training step faster with it on this machine."""
    import torch

    cpu = model.device.type == "cpu"
    bf16 = cfg.precision == "bf16" or (
        cfg.precision == "auto"
        and (train_precision(model) == "bf16" if cpu else torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    )
    if bf16:
        return {"bf16": True, "use_cpu": True} if cpu else {"bf16": True}  # the trainer's bf16 on a CPU needs use_cpu
    if cfg.precision == "fp16":
        return {"fp16": True}
    return {}
