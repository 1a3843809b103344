"""Training: one run's phases top to bottom (`run.train`: load -> prepare -> mine -> baseline -> train -> final
evaluation -> save), the data it trains on (`prepare`), hard-negative mining (`mining`), losses, the trainer callback
that writes events (`callback`), a run's evaluations and the keep-the-base rule (`run_evals`), the model card,
time estimates from a cached probe (`estimate`, `probe`), and data-parallel ranks and the torchrun launch
(`ranks`, `launch`).

Public face: `run.train`, `run.plan_run`, `estimate.estimate`, `launch.Launch`. May import: `core.evaluation` and
below. Nothing here imports the run that calls it: `run` is the top of the package, `launch` starts it."""
