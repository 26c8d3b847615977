"""model_ops: merges (mergekit) and quantizations that produce evaluable model directories."""
from medtasks.common import UsageError


class ModelOpsError(UsageError, ValueError):
    """A bad model folder, merge configuration or calibration file; the message names it and what to do."""
