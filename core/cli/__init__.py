"""`python -m core`: the grammar (`parser`, argparse only, so `--help` is instant) and one module of commands per
group: `train`, `evaluate` (eval, search, similarity), `rag` (index, rag-dataset, export-onnx) and `manage`
(validate, config, validate-config, mine, estimate, runs, stop, setup-dirs). The top layer: may import all of core."""
