"""CIL metrics: accuracy, per-class, confusion, average/last, forgetting."""
import numpy as np
import pytest

from intsim.cil import metrics
from intsim.cil.config import CILConfig


def test_accuracy_per_class_confusion():
    y = np.array([0, 0, 1, 1, 2, 3, 3, 3])
    p = np.array([0, 2, 1, 3, 2, 3, 0, 3])
    assert metrics.accuracy(p, y) == 62.5
    pc = metrics.per_class_accuracy(p, y, 5)
    np.testing.assert_allclose(pc[:4], [50, 50, 100, 200 / 3])
    assert np.isnan(pc[4])
    c = metrics.old_new_confusion(p, y, n_old=2)
    assert c["old_total"] == 4 and c["old_as_new"] == 2 and c["old_as_new_pct"] == 50.0
    assert c["new_total"] == 4 and c["new_as_old"] == 1
    with pytest.raises(ValueError):
        metrics.accuracy(p[:3], y)


def test_forgetting_definition():
    hist = [np.array([90.0, 80.0]),
            np.array([70.0, 85.0, 60.0, 50.0]),
            np.array([80.0, 40.0, 65.0, 30.0, 99.0, 98.0])]
    f = metrics.forgetting(hist)
    assert f[0] == 0.0
    assert f[1] == pytest.approx((20 + 0 + 0 + 0) / 4)
    # best so far: 90, 85, 65, 50, 99, 98
    assert f[2] == pytest.approx((10 + 45 + 0 + 20 + 0 + 0) / 6)
    s = metrics.summarize([85.0, 66.25, 68.67], hist)
    assert s["last"] == 68.67 and s["avg"] == pytest.approx((85 + 66.25 + 68.67) / 3)
    with pytest.raises(ValueError):
        metrics.forgetting([np.zeros(3), np.zeros(2)])


def test_forgetting_skips_classes_without_samples():
    f = metrics.forgetting([np.array([50.0, np.nan]), np.array([20.0, np.nan, 10.0])])
    assert f == [0.0, pytest.approx(15.0)]


def test_config_defaults_and_overrides():
    c = CILConfig.for_dataset("cifar100", "bic")
    assert (c.model, c.init_classes, c.inc_classes, c.epochs, c.lr, c.memory) == \
        ("resnet32", 20, 20, 170, 0.05, 2000)
    assert c.effective_milestones == (60, 100, 140) and c.augment and c.classifier_bias
    h = CILConfig.for_dataset("hapt", "icarl")
    assert (h.model, h.hidden, h.init_classes, h.epochs, h.lr, h.memory) == \
        ("fcnet", None, 2, 100, 0.01, 200)
    assert h.effective_milestones == () and h.nme and not h.classifier_bias  # quirk 4
    h2 = CILConfig.for_dataset("dsads", "lwf", apply_milestones=True, epochs=3)
    assert h2.effective_milestones == (50,) and h2.epochs == 3 and not h2.nme
    for c in (c, h, h2):
        assert (c.batch_size, c.T, c.lwf_weight, c.val_ratio, c.momentum, c.weight_decay,
                c.test_batch_size, c.feature_batch_size) == (128, 2.0, 3.0, 0.1, 0.9, 2e-4, 128, 64)
    assert CILConfig.from_dict(h.to_dict()) == h
    assert h.replace(method="lwf").nme is False
    for bad in (dict(method="ewc"), dict(method="lwf", epochs=0), dict(method="lwf", lr=-1),
                dict(method="lwf", val_ratio=1.5), dict(method="lwf", milestones=(5, 2))):
        with pytest.raises(ValueError):
            CILConfig(**bad)
    with pytest.raises(ValueError):
        CILConfig.for_dataset("imagenet", "lwf")
    with pytest.raises(ValueError):
        CILConfig.for_dataset("hapt", "lwf", learning_rate=1)


# ------------------------------------------------------------ by task (accuracy matrix)

#: a[i][j]: accuracy on task j's test data after task i, worked by hand below
MATRIX = [[90.0],
          [95.0, 80.0],
          [50.0, 85.0, 95.0]]


def test_average_incremental_by_task_on_a_hand_matrix():
    # row means 90, 87.5, 76.666..., then their mean
    assert metrics.matrix_average(MATRIX) == pytest.approx((90 + 87.5 + 230 / 3) / 3)
    assert metrics.task_metrics(MATRIX)["last"] == pytest.approx(230 / 3)


def test_forgetting_by_task_is_chaudhry_et_al():
    f = metrics.matrix_forgetting(MATRIX)
    assert f[0] == 0.0
    assert f[1] == pytest.approx(90 - 95)                    # task 0 improved: negative
    # after task 2: task 0 best before = max(90, 95) = 95 -> 50; task 1: 80 -> 85
    assert f[2] == pytest.approx(((95 - 50) + (80 - 85)) / 2)
    assert metrics.task_metrics(MATRIX)["forgetting"] == f[2] == pytest.approx(20.0)


def test_backward_transfer_is_lopez_paz_and_ranzato():
    # mean over j < T of a[T][j] - a[j][j]: (50 - 90) and (85 - 80)
    assert metrics.backward_transfer(MATRIX) == pytest.approx(((50 - 90) + (85 - 80)) / 2)
    assert metrics.backward_transfer([[70.0]]) == 0.0        # one task: nothing before it
    m = metrics.task_metrics(MATRIX)
    assert m["bwt"] == pytest.approx(-17.5) and m["matrix"] == MATRIX
    assert m["forgetting_per_task"] == metrics.matrix_forgetting(MATRIX)


def test_tasks_without_test_data_are_skipped():
    # task 1 has no test samples (nan / JSON null): it counts in no mean
    mat = [[80.0], [70.0, None], [60.0, float("nan"), 90.0]]
    assert metrics.matrix_forgetting(mat)[2] == pytest.approx(80 - 60)
    assert metrics.backward_transfer(mat) == pytest.approx(60 - 80)
    assert metrics.matrix_average(mat) == pytest.approx((80 + 70 + 75) / 3)
    with pytest.raises(ValueError, match="row 1 has 1 entries"):
        metrics.task_metrics([[1.0], [2.0]])


def test_task_accuracies_give_a_row_of_the_matrix():
    y = np.array([0, 1, 0, 2, 3, 3])
    p = np.array([0, 0, 0, 2, 2, 3])
    tt = np.array([0, 0, 0, 1, 1, 1])                 # the task of each test sample
    assert metrics.task_accuracies(p, y, tt, 2) == pytest.approx([200 / 3, 200 / 3])
    row = metrics.task_accuracies(p, y, tt, 3)        # task 2 has no test sample yet
    assert np.isnan(row[2])
    s = metrics.summarize([60.0, 50.0], [np.array([60.0, 60.0]), np.array([50, 40, 60, 50.0])],
                          [[60.0], [40.0, 60.0]])
    assert s["by_task"]["bwt"] == -20.0 and s["by_task"]["forgetting"] == 20.0
    assert "by_task" not in metrics.summarize([60.0], [np.array([60.0])])
