"""Base class-incremental learner: the lifecycle shared by every method.

Per task t the driver calls, in order::

    learner.incremental_train(task, progress)   # grow classifier, train
    learner.after_task(task)                    # memory, class means, freeze old model
    learner.eval_task(task)                     # CNN (and NME) accuracy on seen classes

The scenario (``config.scenario``, intsim.cil.scenarios) decides which classes
a test sample may be predicted as (the task scenario masks the logits to the
sample's task) and the exemplar memory; in the domain scenario every task has
every class, so the classifier is full from task 0 and never grows. A method
that does not run in a scenario names it in ``refuses``.

Sub-classes override ``_loss`` (and BiC more). The old model is a frozen
``copy.deepcopy`` of the model, so it runs through the same arithmetic
(FP, HDQT, LUQ, FP8 or FP134) as the new one, in eval mode. A fresh SGD (and
LR schedule) is made for every task, so a checkpoint between tasks needs no
optimizer state (FP134's quantized SGD is fresh per task too, as the
released code's lptorch SGD).

``progress`` (optional) is duck-typed like ``intsim.app.progress.Progress``:
start_epoch(task, num_tasks, epoch, epochs, num_batches, stage),
batch(loss, correct, count), end_epoch(). ``on_epoch`` (optional attribute,
a callable) receives a dict per finished epoch: task, stage, epoch (1-based),
epochs, loss (mean over samples), acc (training accuracy, fraction), lr.
"""
from __future__ import annotations

import copy

import numpy as np

from intsim.data import augment_cifar, iterate_batches
from intsim.data.registry import DATASETS
from intsim.errors import diverged_in
from intsim.nn import cross_entropy, kd_loss
from intsim.optim import MultiStepLR, make_optimizer

from . import metrics
from .memory import class_mean, nme_predict
from .scenarios import scenario_of


def audits_passes(model) -> bool:
    """True when the model has quantized (audited) layers: their audit counts
    every forward pass, so the learner never merges two passes of such a model."""
    arith = getattr(model, "arith", None)
    return arith is None or bool(arith.quantized)


def _batched(fn, X, batch_size) -> np.ndarray:
    """np.concatenate of fn(X[i:i+batch_size]) over consecutive batches."""
    return np.concatenate([np.asarray(fn(X[i:i + batch_size]))
                           for i in range(0, len(X), batch_size)])


def _rng_state(rng: np.random.Generator) -> dict:
    return copy.deepcopy(rng.bit_generator.state)


def _set_rng_state(rng: np.random.Generator, state: dict) -> None:
    rng.bit_generator.state = copy.deepcopy(state)


class Learner:
    """Plain fine-tuning with the common lifecycle (CE on all seen logits).

    model: an intsim model (forward/backward/features/add_classes/...);
    config: CILConfig; rng: np.random.Generator used for batch order,
    augmentation, new classifier rows and (BiC) the validation split.
    """

    #: registry name (``--method``); see intsim.cil.registry
    name: str = ""
    #: keeps an exemplar memory (config.memory exemplars in total)
    uses_memory = False
    #: reports nearest-mean-of-exemplars accuracy unless config.nme says otherwise
    default_nme = False
    #: the classifier has a bias
    classifier_bias = False
    #: the scenarios it does not run in: {scenario: why, one line} (intsim.cil.scenarios)
    refuses: dict = {}

    def task_extras(self) -> dict:
        """Method-specific figures added to each task's results entry."""
        return {}

    def __init__(self, model, config, rng: np.random.Generator):
        if not isinstance(rng, np.random.Generator):
            raise ValueError("Learner: rng must be a numpy Generator")
        self.model = model
        self.config = config
        self.rng = rng
        self.old_model = None
        self.known_classes = 0   # classes learned before the current task
        self.total_classes = 0   # classes seen including the current task
        self.cur_task = -1
        self.scenario = scenario_of(config.scenario)
        self.memory = self.scenario.new_memory(config.memory) if config.uses_memory else None
        self.class_means = None  # (C, D) float64, when config.nme
        self.num_tasks = 0       # for progress display only
        self.on_epoch = None

    # ------------------------------------------------------------ lifecycle
    def incremental_train(self, task, progress=None) -> None:
        """Grow the classifier to task.seen outputs and train on the task."""
        self._begin_task(task)
        X, y = self._train_data(task)
        self._fit(X, y, self._train_params(), self._loss, progress, stage="train")

    def after_task(self, task) -> None:
        """Update the exemplar memory and class means; freeze the old model."""
        if self.memory is not None:
            self._build_memory(task)
        self.old_model = self._freeze_copy()

    def eval_task(self, task) -> dict:
        """Accuracy on task.X_test / task.y_test (the test data of every task so far),
        predicting each sample among the classes the scenario allows it.

        Returns {"task", "seen", "n_old", "cnn": {...}, "nme": {...} or None};
        each of cnn/nme holds acc (percent), per_class (list, percent, nan
        for classes without test samples), confusion (metrics.old_new_confusion)
        and task_acc (accuracy on each task's test data: row t of the accuracy
        matrix, metrics.task_accuracies).
        """
        n_old = int(task.seen - len(task.classes))
        nme = bool(self.config.nme and self.class_means is not None)
        logits, feats = self._eval_outputs(task.X_test, nme)
        out = {"task": int(task.t), "seen": int(task.seen), "n_old": n_old,
               "cnn": self._scores(self.scenario.predict(logits, task), task, n_old),
               "nme": None}
        if nme:
            pred = nme_predict(feats, self.class_means, self.scenario.allowed(task))
            out["nme"] = self._scores(pred, task, n_old)
        return out

    # ------------------------------------------------------------ hooks
    def _begin_task(self, task) -> None:
        self._check_new_classes(task)
        self.cur_task = int(task.t)
        self.known_classes = self.total_classes
        self.total_classes = int(task.seen)
        grow = self.total_classes - self.model.num_classes
        if grow > 0:
            self.model.add_classes(grow, self.rng)

    def _check_new_classes(self, task) -> None:
        """A task brings new classes (ValueError otherwise), except in a scenario whose
        classes come back (domain: the same classes every task)."""
        if self.scenario.classes_repeat and task.seen >= self.total_classes:
            return
        if task.seen <= self.total_classes:
            raise ValueError(f"task {task.t} sees {task.seen} classes, not more than the "
                             f"{self.total_classes} already learned")

    def _train_data(self, task):
        """(X, y) to train on: the task's data, plus exemplars for memory methods."""
        X, y = task.X_train, np.asarray(task.y_train, dtype=np.int64)
        if self.memory is not None and len(self.memory):
            mX, my = self.memory.data()
            X = np.concatenate([X, mX.astype(X.dtype, copy=False)])
            y = np.concatenate([y, my])
        return X, y

    def _train_params(self) -> list:
        return self.model.parameters()

    def _forward(self, xb) -> np.ndarray:
        return self.model.forward(xb)

    def _head(self, features) -> np.ndarray:
        """Logits from backbone features: _forward(x) == _head(model.features(x))."""
        return self.model.classifier.forward(features)

    def _backward(self, grad) -> None:
        self.model.backward(grad)

    def _loss(self, xb, yb, logits):
        """(loss, dL/dlogits) of one batch; fine-tuning: CE on all logits."""
        return cross_entropy(logits, yb)

    def _old_logits(self, xb) -> np.ndarray:
        """Logits of the frozen old model (eval mode, same arithmetic)."""
        return self.old_model.forward(xb)

    def _kd(self, logits, xb):
        """KD on the old-class logits: (loss, grad padded to logits' shape)."""
        k = self.known_classes
        loss, g = kd_loss(logits[:, :k], self._old_logits(xb), T=self.config.T)
        grad = np.zeros_like(logits)
        grad[:, :k] = g
        return loss, grad

    # ------------------------------------------------------------ training
    def _augment(self):
        """The CIFAR augmentation with the dataset's own normalisation statistics
        (they set the padding value and the clipping range; CIFAR-100's otherwise)."""
        spec = DATASETS.get(self.config.dataset)
        if spec is None or spec.mean is None:
            return augment_cifar
        mean, std = spec.mean, spec.std
        return lambda xb, rng: augment_cifar(xb, rng, mean=mean, std=std)

    def _fit(self, X, y, params, loss_fn, progress, stage="train", backward=None,
             train_mode=True, frozen=()) -> None:
        """Epoch loop with a fresh SGD + MultiStepLR over ``params``; ``frozen``: a second
        parameter group with lr 0 (intsim.optim.make_optimizer)."""
        cfg = self.config
        backward = self._backward if backward is None else backward
        if X is None or len(X) == 0:
            raise ValueError(f"task {self.cur_task}: no training data for stage {stage!r}")
        # SGD, or the arithmetic's quantized update (FP134: lptorch's SGD, seeded
        # from self.rng; the other arithmetics draw nothing here). Only the "train"
        # stage: the released BiC corrects its bias layer with torch's SGD always.
        arith = getattr(self.model, "arith", None) if stage == "train" else None
        opt = make_optimizer(params, cfg.lr, cfg.momentum, cfg.weight_decay, arith=arith,
                             rng=self.rng, frozen=frozen)
        sched = MultiStepLR(opt, list(cfg.effective_milestones), gamma=cfg.gamma)
        nb = -(-len(X) // cfg.batch_size)
        # a schedule may ask for a minimum of SGD steps per stage (the short
        # schedule: a 2-class first task of 187 samples is 2 steps an epoch)
        epochs = max(cfg.epochs, -(-cfg.min_steps // nb)) if cfg.min_steps else cfg.epochs
        aug = self._augment() if cfg.augment else None
        for epoch in range(epochs):
            self.model.train(train_mode)
            if progress is not None:
                progress.start_epoch(task=self.cur_task, num_tasks=self.num_tasks, epoch=epoch,
                                     epochs=epochs, num_batches=nb, stage=stage)
            loss_sum, correct, seen = 0.0, 0, 0
            lr = opt.lr
            for i, (xb, yb) in enumerate(iterate_batches(X, y, cfg.batch_size, rng=self.rng,
                                                         shuffle=True)):
                if aug is not None:
                    xb = aug(xb, self.rng)
                with diverged_in(self.cur_task, stage, epoch + 1, i + 1):
                    logits = self._forward(xb)
                    loss, grad = loss_fn(xb, yb, logits)
                    opt.zero_grad()
                    backward(grad)
                    opt.step()
                c = int(np.sum(np.argmax(logits, axis=1) == yb))
                loss_sum += float(loss) * len(yb)
                correct += c
                seen += len(yb)
                if progress is not None:
                    progress.batch(loss, c, len(yb))
            sched.step()
            if progress is not None:
                progress.end_epoch()
            if self.on_epoch is not None:
                self.on_epoch({"task": self.cur_task, "stage": stage, "epoch": epoch + 1,
                               "epochs": epochs, "loss": loss_sum / seen,
                               "acc": correct / seen, "lr": lr})

    # ------------------------------------------------------------ memory
    def _build_memory(self, task) -> None:
        """Reduce old classes to m = memory // seen, herd m for each new class,
        recompute all class means with the current model (PyCIL order)."""
        self._select_exemplars(task)
        if self.config.nme:
            self._update_class_means()

    def _select_exemplars(self, task) -> None:
        """Reduce the memory's classes (domain: (task, class) groups) to their first m
        exemplars; herd m of each class the task trains (its new classes; in the domain
        scenario every class, from this task's data)."""
        mem = self.memory
        m = mem.budget(self.total_classes, self.cur_task)
        mem.reduce(m)
        fb = self.config.feature_batch_size
        y = np.asarray(task.y_train)
        for c in np.asarray(task.classes, dtype=np.int64):
            Xc = task.X_train[y == c]
            if len(Xc) == 0:
                raise ValueError(f"task {task.t}: class {c} has no training samples")
            mem.add_class(int(c), Xc, self._features(Xc, fb), m, task=self.cur_task)

    def _update_class_means(self) -> None:
        """Class means (C, D) of every seen class's exemplars, with the current model.

        Each class takes its own pass over its exemplars in feature batches,
        even the new classes whose training images were just passed for
        herding: a float linear layer's BLAS result for an image can change
        with the rows batched with it, so reusing those features is not exact.
        """
        fb = self.config.feature_batch_size
        ex = self.memory.class_exemplars
        self.class_means = np.stack([class_mean(self._features(ex(c), fb))
                                     for c in range(self.total_classes)])

    # ------------------------------------------------------------ inference
    def _features(self, X, batch_size) -> np.ndarray:
        """Backbone features (N, D) in eval mode, in batches of batch_size (no shuffle)."""
        self.model.eval()
        return _batched(self.model.features, X, batch_size)

    def _predict_logits(self, X) -> np.ndarray:
        """Logits (N, C) in eval mode, in test batches (no shuffle)."""
        self.model.eval()
        return _batched(self._forward, X, self.config.test_batch_size)

    def _eval_outputs(self, X, need_features: bool):
        """(logits (N, C), features (N, D) or None) of X in eval mode, in test batches.

        With the features needed too, one backbone pass per test batch gives
        both (logits = _head(features of that batch), exactly what _forward
        computes). A quantized model instead takes a second pass for the
        features, as it always has: its audit counts every pass.
        """
        if not need_features:
            return self._predict_logits(X), None
        bs = self.config.test_batch_size
        if audits_passes(self.model):
            return self._predict_logits(X), self._features(X, bs)
        self.model.eval()
        logits, feats = [], []
        for i in range(0, len(X), bs):
            f = np.asarray(self.model.features(X[i:i + bs]))
            logits.append(np.asarray(self._head(f)))
            feats.append(f)
        return np.concatenate(logits), np.concatenate(feats)

    @staticmethod
    def _scores(pred, task, n_old) -> dict:
        """The figures of predictions ``pred`` (N,) of task.X_test (eval_task's)."""
        y = task.y_test
        return {"acc": metrics.accuracy(pred, y),
                "per_class": metrics.per_class_accuracy(pred, y, task.seen).tolist(),
                "confusion": metrics.old_new_confusion(pred, y, n_old),
                "task_acc": metrics.task_accuracies(pred, y, task.test_task, task.t + 1)}

    def _freeze_copy(self):
        old = copy.deepcopy(self.model)
        old.eval()
        for p in old.parameters():
            p.grad = None
        return old

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """Everything needed to continue with the next task bit for bit.

        Nested dict of numpy arrays, ints, floats, strings and None (the
        Generator states are plain dicts); no optimizer (fresh per task).
        """
        d = {"method": self.config.method, "cur_task": self.cur_task,
             "known_classes": self.known_classes, "total_classes": self.total_classes,
             "rng": _rng_state(self.rng),
             "model": {"num_classes": int(self.model.num_classes),
                       "params": self.model.state_dict(), "rng": self.model.rng_state()},
             "old_model": None,
             "memory": None if self.memory is None else self.memory.state_dict(),
             "class_means": None if self.class_means is None else self.class_means.copy()}
        if self.old_model is not None:
            d["old_model"] = {"num_classes": int(self.old_model.num_classes),
                              "params": self.old_model.state_dict(),
                              "rng": self.old_model.rng_state()}
        return d

    def load_state_dict(self, d: dict) -> None:
        """Restore a state_dict() into this learner (model grown as needed)."""
        if d.get("method") != self.config.method:
            raise ValueError(f"checkpoint is for method {d.get('method')!r}, "
                             f"not {self.config.method!r}")
        self.cur_task = int(d["cur_task"])
        self.known_classes = int(d["known_classes"])
        self.total_classes = int(d["total_classes"])
        _set_rng_state(self.rng, d["rng"])
        self._load_model(self.model, d["model"])
        if d.get("old_model") is not None:
            self.old_model = copy.deepcopy(self.model)
            self._load_model(self.old_model, d["old_model"])
            self.old_model.eval()
        else:
            self.old_model = None
        if self.memory is not None:
            if d.get("memory") is None:
                raise ValueError("checkpoint has no exemplar memory")
            self.memory.load_state_dict(d["memory"])
        cm = d.get("class_means")
        self.class_means = None if cm is None else np.asarray(cm, dtype=np.float64)

    @staticmethod
    def _load_model(model, d) -> None:
        n = int(d["num_classes"])
        if model.num_classes > n:
            raise ValueError(f"checkpoint model has {n} classes, fewer than the model's "
                             f"{model.num_classes}")
        if model.num_classes < n:
            # rows are overwritten by load_state_dict; the draw is irrelevant
            model.add_classes(n - model.num_classes, np.random.default_rng(0))
        model.load_state_dict(d["params"])
        model.set_rng_state(d["rng"])

