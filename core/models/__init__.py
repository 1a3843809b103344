"""Models: resolving and loading a name (bundled, local folder, cached hub id; `load`), the models a picker offers
(`choices`), the devices and ranks a process works with (`devices`), encoding precision measured on this machine
and the trainer's precision that follows from it (`encoding`), fingerprints, and ONNX export and query encoders.

Public face: `load.load_model`, `load.resolve_model`, `load.shared_model`, `encoding.inference_model`,
`encoding.training_precision`, `onnx_export.OnnxEmbedder`. May import: `core.runs` and below."""
