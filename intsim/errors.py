"""Errors a training run can end with besides bad input (intsim.app.config.ConfigError)."""
import contextlib


class NonFiniteError(ValueError):
    """A tensor the arithmetic must quantize or score is NaN or inf.

    Raised by the quantizers and the loss; during training it means the run
    diverged (float overflow upstream), and the learner re-raises it as
    :class:`TrainingDiverged` with where it happened.
    """


class TrainingDiverged(ArithmeticError):
    """Training produced NaN or inf.

    task: 0-based task index; stage: the learner's stage ("train", BiC's "bias",
    ...) or "exemplars and class means" / "evaluation"; epoch, batch: 1-based,
    None outside an SGD stage; cause: the message of the check that fired.
    """

    def __init__(self, task: int, stage: str, epoch: int | None, batch: int | None, cause: str):
        self.task, self.stage, self.epoch, self.batch, self.cause = task, stage, epoch, batch, cause
        where = f", epoch {epoch}, batch {batch}" if epoch is not None else ""
        super().__init__(f"training diverged in task {task + 1} ({stage}{where}): {cause}")


@contextlib.contextmanager
def diverged_in(task: int, stage: str, epoch: int | None = None, batch: int | None = None):
    """Re-raise a NonFiniteError from inside the block as TrainingDiverged at that place."""
    try:
        yield
    except NonFiniteError as e:
        raise TrainingDiverged(task, stage, epoch, batch, str(e)) from e
