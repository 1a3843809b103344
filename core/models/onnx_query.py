"""Interactive one-text encodes on onnxruntime: a short query encodes ~2.4x faster than with torch on one CPU thread
(MiniLM: 8.5 vs 20.7 ms), which is what a Compare-tab search waits for.

sentence-transformers' own ONNX backend needs optimum-onnx, which pins transformers < 4.58, so the model's first
module (the transformer) is exported here with torch.onnx into memory; the remaining modules (pooling, dense,
normalize) still run in torch on its output. A probe text must give the torch embedding back (to 1e-4), else the
caller keeps torch: an architecture the exporter gets wrong never changes a result."""

from __future__ import annotations

import io
import logging
import threading
import warnings
import weakref

import numpy as np

from core.models.load import takes_attention_mask

log = logging.getLogger(__name__)

PROBE = "How do I reset my password when the link in the e-mail has expired?"


class OnnxQueryEncoder:
    """`encoder(text)` -> the normalised embedding (1, dim), float32, as `model.encode([text])` gives it."""

    def __init__(self, model):
        import onnxruntime as ort
        import torch

        self.model = model
        self.prompt = model.prompts.get(model.default_prompt_name) if model.default_prompt_name else None
        features = model.preprocess([PROBE], prompt=self.prompt)
        self.names = [k for k, v in features.items() if isinstance(v, torch.Tensor) and v.dim() == 2]
        first = model[0]

        class Transformer(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.first = first

            def forward(self, *tensors):
                return self.first(dict(zip(Transformer.names, tensors)))["token_embeddings"]

        Transformer.names = self.names
        buf = io.BytesIO()
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Transformer().eval(),
                tuple(features[k] for k in self.names),
                buf,
                dynamo=False,
                input_names=self.names,
                output_names=["token_embeddings"],
                opset_version=17,
                dynamic_axes={k: {0: "batch", 1: "tokens"} for k in [*self.names, "token_embeddings"]},
            )
        options = ort.SessionOptions()
        # One thread: the Compare tab encodes both models' queries side by side on two workers (core.retrieval.search).
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(buf.getvalue(), options, providers=["CPUExecutionProvider"])
        self.rest = list(model)[1:]

    def __call__(self, text: str, prompt: str | None = None) -> np.ndarray:
        """`prompt` goes before the text (None = the model's default prompt, as `model.encode` does)."""
        import torch

        features = self.model.preprocess([text], prompt=self.prompt if prompt is None else prompt)
        out = self.session.run(None, {k: features[k].numpy() for k in self.names})[0]
        features["token_embeddings"] = torch.from_numpy(out)
        with torch.inference_mode():
            for module in self.rest:
                features = module(features)
            emb = torch.nn.functional.normalize(features["sentence_embedding"], dim=-1)
        return emb.numpy().astype(np.float32, copy=False)


_lock = threading.Lock()
_encoders: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # one session per model, not per index


def query_encoder(model) -> OnnxQueryEncoder | None:
    """An onnxruntime encoder for `model`, or None (use torch) when the model is on a GPU, onnxruntime is missing,
    the export fails, or the probe's embedding differs from torch's."""
    with _lock:
        if model not in _encoders:
            _encoders[model] = _build(model)
        return _encoders[model]


def _build(model) -> OnnxQueryEncoder | None:
    if str(model.device) != "cpu" or not takes_attention_mask(model):  # GPU, or no transformer to export
        return None
    try:
        encoder = OnnxQueryEncoder(model)
        expected = model.encode([PROBE], normalize_embeddings=True, convert_to_numpy=True)
        diff = float(np.abs(encoder(PROBE) - expected).max())
    except Exception as exc:  # any failure only costs speed: torch encodes instead
        log.info("onnxruntime query encoder unavailable (%s: %s); using torch", type(exc).__name__, exc)
        return None
    if diff > 1e-4:
        log.info("onnxruntime query encoder differs from torch by %.2g; using torch", diff)
        return None
    return encoder
