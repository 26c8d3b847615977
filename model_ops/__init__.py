"""model_ops: merges (mergekit) and quantizations that produce evaluable model directories."""
