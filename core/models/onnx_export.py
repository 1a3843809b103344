"""`export_onnx(model, out, quantize="int8")`: an onnxruntime copy of a sentence-transformers model for CPU serving.

The whole module chain (transformer, pooling, dense, normalisation) is traced with torch.onnx into one graph whose
output is the normalised sentence embedding, as core/models/onnx_query.py does for the transformer alone (optimum-onnx would
pin an older transformers). The folder holds model.onnx, the tokenizer files, config.json and onnx_config.json (the
source model's fingerprint, so a document index built with the source model accepts it); `int8/` holds a dynamically
quantised copy. Each is checked against torch on sample texts: cosine >= 0.999 (fp32), >= 0.99 (int8)."""

from __future__ import annotations

import json
import logging
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from core.models.fingerprint import model_fingerprint
from core.models.load import load_model, resolve_model

THRESHOLDS = {"fp32": 0.999, "int8": 0.99}
SAMPLES = [
    "How do I reset my password when the link in the e-mail has expired?",
    "The VPN client disconnects every few minutes on the office wifi.",
    "printer",
    "Bake the sourdough bread at 220 degrees for forty minutes, then let it cool on a rack.",
    "Wie installiere ich Outlook auf einem neuen Laptop?",
    "Quarterly revenue grew 12% year over year, driven by subscriptions in Europe and Asia.",
    "What are the symptoms of iron deficiency anemia and how is it treated?",
    "Shared mailboxes appear in Outlook after a restart of the mail client. " * 6,
]


class OnnxEmbedder:
    """`encode(texts, batch_size)` -> normalised float32 embeddings from an exported folder (or its int8/)."""

    def __init__(self, path: str | Path, threads: int | None = None):
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.path = Path(path)
        self.config = json.loads((self.path / "onnx_config.json").read_text(encoding="utf-8"))
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.path), local_files_only=True)
        self.max_seq_length = int(self.config["max_seq_length"])
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(self.path / self.config["file"]), options, providers=["CPUExecutionProvider"]
        )

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        texts = [str(t).strip() for t in texts]
        order = np.argsort([-len(t) for t in texts], kind="stable")  # little padding per batch
        out = np.zeros((len(texts), int(self.config["dimension"])), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            ids = order[start : start + batch_size]
            enc = self.tokenizer(
                [texts[i] for i in ids],
                padding=True,
                truncation=True,
                max_length=self.max_seq_length,
                return_tensors="np",
            )
            feed = {k: enc[k].astype(np.int64) for k in self.config["inputs"]}
            out[ids] = self.session.run(None, feed)[0]
        return out

    encode_documents = encode  # one path: the ONNX copy is already the fast one


def _export_graph(model, path: Path) -> list[str]:
    import torch

    features = model.preprocess(SAMPLES[:2])
    names = [k for k, v in features.items() if isinstance(v, torch.Tensor) and v.dim() == 2]
    chain = list(model)

    class Embedder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.chain = torch.nn.ModuleList(chain)

        def forward(self, *tensors):
            feats = dict(zip(names, tensors))
            for module in self.chain:
                feats = module(feats)
            return torch.nn.functional.normalize(feats["sentence_embedding"], dim=-1)

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Embedder().eval(),
            tuple(features[k] for k in names),
            str(path),
            dynamo=False,
            input_names=names,
            output_names=["sentence_embedding"],
            opset_version=17,
            dynamic_axes={**{k: {0: "batch", 1: "tokens"} for k in names}, "sentence_embedding": {0: "batch"}},
        )
    return names


@dataclass
class ExportResult:
    out: str
    checks: list[dict] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c["passed"] for c in self.checks)

    def to_text(self) -> str:
        lines = [f"ONNX export {self.out}:"]
        for c in self.checks:
            lines.append(
                f"  {c['variant']:<5} {c['path']}: cosine to torch over {c['texts']} texts min "
                f"{c['min_cosine']:.5f}, mean {c['mean_cosine']:.5f} (>= {c['threshold']}: "
                f"{'ok' if c['passed'] else 'FAILED'}); {c['size_mb']:.0f} MB; "
                f"{c['texts_per_s']:.0f} texts/s vs torch {c['torch_texts_per_s']:.0f}"
            )
        lines.append(
            "load: core.models.onnx_export.OnnxEmbedder(folder).encode(texts); search an index with it: "
            f'python -m core index search --index DIR --model {self.out} "query"'
        )
        return "\n".join(lines)


def _check(variant: str, folder: Path, expected: np.ndarray, texts: list[str], torch_rate: float) -> dict:
    enc = OnnxEmbedder(folder)
    enc.encode(texts[:1])  # the first run allocates: not part of the throughput
    t0 = time.perf_counter()
    got = enc.encode(texts)
    rate = len(texts) / (time.perf_counter() - t0)
    cos = (got * expected).sum(axis=1)
    size = sum(f.stat().st_size for f in folder.glob("*.onnx")) / 1e6
    return {
        "variant": variant,
        "path": str(folder),
        "texts": len(texts),
        "min_cosine": float(cos.min()),
        "mean_cosine": float(cos.mean()),
        "threshold": THRESHOLDS[variant],
        "passed": bool(cos.min() >= THRESHOLDS[variant]),
        "size_mb": size,
        "texts_per_s": rate,
        "torch_texts_per_s": torch_rate,
    }


def _write_folder(folder: Path, model, onnx_file: str, config: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    model.tokenizer.save_pretrained(str(folder))
    model[0].auto_model.config.save_pretrained(str(folder))  # config.json: the folder resolves like a model
    (folder / "onnx_config.json").write_text(json.dumps({**config, "file": onnx_file}, indent=2), encoding="utf-8")


def _model_label(path: str) -> str:
    folder = Path(path)
    if not folder.is_dir():
        return path  # a hub id
    return f"{folder.parent.name}/{folder.name}" if folder.name == "model" else folder.name


def export_onnx(
    model: str | Path, out: str | Path, quantize: str | None = None, texts: list[str] | None = None
) -> ExportResult:
    """Write the ONNX copy (and int8/ with `quantize="int8"`) and check both against torch on `texts`."""

    if quantize not in (None, "int8"):
        raise ValueError(f"unknown quantisation {quantize!r}: use int8")
    path = resolve_model(str(model))
    st = load_model(path, device="cpu")
    st.eval()
    out = Path(out)
    if out.exists():
        shutil.rmtree(out / "int8", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)
    names = _export_graph(st, out / "model.onnx")
    texts = texts or SAMPLES
    config = {
        "source_model": _model_label(path),  # a name, not a path: the folder travels to other machines
        "source_fingerprint": model_fingerprint(path),
        "inputs": names,
        "dimension": int(st.encode(["x"]).shape[-1]),
        "max_seq_length": int(st.max_seq_length),
        "normalized": True,
        "exported": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    _write_folder(out, st, "model.onnx", {**config, "quantization": None})
    st.encode(texts[:1])
    t0 = time.perf_counter()
    expected = st.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    torch_rate = len(texts) / (time.perf_counter() - t0)
    result = ExportResult(str(out), [_check("fp32", out, expected, texts, torch_rate)])
    if quantize == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        q = out / "int8"
        _write_folder(q, st, "model_int8.onnx", {**config, "quantization": "int8 (dynamic, per-channel uint8 weights)"})
        logging.disable(logging.WARNING)  # its advice to pre-process targets CNNs; per-channel weights suffice here
        try:
            # uint8 weights: the u8*s8 kernels of CPUs without VNNI (avx2) saturate, which took this model's copy
            # below 0.99 cosine there (0.9896; u8*u8 0.9917), and the copy may be served on any CPU
            quantize_dynamic(
                str(out / "model.onnx"), str(q / "model_int8.onnx"), weight_type=QuantType.QUInt8, per_channel=True
            )
        finally:
            logging.disable(logging.NOTSET)
        result.checks.append(_check("int8", q, expected, texts, torch_rate))
    (out / "export_check.json").write_text(json.dumps(result.checks, indent=2), encoding="utf-8")
    return result
