"""The training loss for a config, and length-chunked embedding for training on a CPU.

A training batch pads every text of a column to the longest one. On a CPU the cost of a padded batch of 256-token
documents is dominated by the attention tensors (batch x heads x tokens x tokens), so embedding the batch as
length-sorted chunks of ~1,000 tokens, each padded only to its own longest text, takes about half the time of one
padded forward (MedQuAD documents, forward + backward, BENCHMARKS.md) with the same embeddings and gradients.
No library does this for CPU training (padding-free kernels exist only for GPUs), hence the few lines below."""

from __future__ import annotations

import torch

from core.config.rules import loss_kind
from core.models.devices import world_size
from core.models.load import takes_attention_mask

CHUNK_TOKENS = 1024
LOSS_CLASSES = {
    "cosent": "CoSENTLoss",
    "cached_mnrl": "CachedMultipleNegativesRankingLoss",
    "mnrl": "MultipleNegativesRankingLoss",
}


def embed_by_length(model, features: dict, chunk_tokens: int = CHUNK_TOKENS) -> torch.Tensor:
    """`model(features)["sentence_embedding"]`, computed chunk by chunk in order of length."""
    mask = features.get("attention_mask")
    if mask is None or mask.dim() != 2:  # no padded token batch to cut (e.g. StaticEmbedding): the library's path
        return model(features)["sentence_embedding"]
    lengths = mask.sum(dim=1)
    order = torch.argsort(lengths, descending=True, stable=True)
    chunks, start = [], 0
    while start < len(order):
        width = int(lengths[order[start]])  # the chunk's longest text: lengths fall from here
        size = max(1, chunk_tokens // max(1, width))
        idx = order[start : start + size]
        sub = {k: _rows(v, idx, width, len(mask)) for k, v in features.items()}
        chunks.append(model(sub)["sentence_embedding"])
        start += size
    return torch.cat(chunks)[torch.argsort(order)]


def _rows(value, idx: torch.Tensor, width: int, batch: int):
    if not isinstance(value, torch.Tensor) or value.dim() == 0 or value.shape[0] != batch:
        return value  # per-batch settings (e.g. a prompt length) stay as they are
    return value[idx, :width] if value.dim() == 2 else value[idx]


def _chunked(loss_class):
    class LengthChunked(loss_class):
        def forward(self, sentence_features, labels):
            embeddings = [embed_by_length(self.model, f) for f in sentence_features]
            return self.compute_loss_from_embeddings(embeddings, labels)

    LengthChunked.__name__ = loss_class.__name__  # the model card and logs name the library's loss
    return LengthChunked


def build_loss(cfg, fmt: str, model):
    from sentence_transformers.sentence_transformer import losses

    kind = loss_kind(cfg, fmt)
    # Chunks help a CPU only; the cached loss already embeds mini-batches; Matryoshka wraps the forward itself;
    # cutting a chunk to its longest text assumes the padding is on the right.
    # Only modules that read padded batches with an attention mask have padding to save (not a StaticEmbedding).
    chunk = (
        str(model.device) == "cpu"
        and not cfg.matryoshka_dims
        and takes_attention_mask(model)
        and getattr(model.tokenizer, "padding_side", "right") == "right"
    )
    # Under torchrun, in-batch negatives come from every rank's batch: the global batch is batch_size x ranks.
    # The library gathers in compute_loss_from_embeddings, which the length-chunked forward calls too.
    gather = {"gather_across_devices": True} if cfg.gather_across_devices and world_size() > 1 else {}
    if kind == "cosent":
        loss = (_chunked(losses.CoSENTLoss) if chunk else losses.CoSENTLoss)(model)
    elif kind == "cached_mnrl":
        loss = losses.CachedMultipleNegativesRankingLoss(model, mini_batch_size=cfg.mini_batch_size or 32, **gather)
    else:
        mnrl = _chunked(losses.MultipleNegativesRankingLoss) if chunk else losses.MultipleNegativesRankingLoss
        if kind == "symmetric_mnrl":  # the library's symmetric form: q->d and d->q, each its own softmax
            gather.update(directions=("query_to_doc", "doc_to_query"), partition_mode="per_direction")
        loss = mnrl(model, **gather)
    if cfg.matryoshka_dims:
        loss = losses.MatryoshkaLoss(model, loss, matryoshka_dims=cfg.matryoshka_dims)
    return loss
