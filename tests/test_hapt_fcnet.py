"""The shipped HAPT-561 features are good data: a float FCNet trained on the
6 basic activities of the training subjects classifies held-out subjects
with the accuracy UCI-HAR is known for (> 90%), and HDQT 4/8 comes close."""
import numpy as np
import pytest

import intsim
from intsim.data import iterate_batches, load_dataset
from intsim.models import FCNet
from intsim.nn import cross_entropy
from intsim.optim import SGD


@pytest.fixture(scope="module")
def basic():
    ds = load_dataset("hapt", basic_only=True)
    classes = np.unique(ds.y_train)
    remap = {c: i for i, c in enumerate(classes)}
    ytr = np.array([remap[c] for c in ds.y_train])
    yte = np.array([remap[c] for c in ds.y_test])
    return ds.X_train, ytr, ds.X_test, yte, len(classes)


def _train_and_test(data, arith, epochs, seed=0):
    Xtr, ytr, Xte, yte, C = data
    rng = np.random.default_rng(seed)
    model = FCNet(Xtr.shape[1], (256,), arith, rng, num_classes=C)
    opt = SGD(model.parameters(), lr=0.02)
    model.train()
    for _ in range(epochs):
        for xb, yb in iterate_batches(Xtr, ytr, 128, rng):
            opt.zero_grad()
            _, g = cross_entropy(model.forward(xb), yb)
            model.backward(g)
            opt.step()
    model.eval()
    pred = np.concatenate([model.forward(xb).argmax(1)
                           for xb, _ in iterate_batches(Xte, yte, 512, shuffle=False)])
    return float((pred == yte).mean())


def test_float_fcnet_on_basic_activities_above_90(basic):
    Xtr, ytr, Xte, yte, C = basic
    assert C == 6 and Xtr.shape[1] == 561
    assert len(set(np.unique(yte))) == 6
    acc = _train_and_test(basic, intsim.FP(), epochs=10)
    assert acc > 0.90, acc


def test_hdqt_fcnet_on_basic_activities_close_to_float(basic):
    acc = _train_and_test(basic, intsim.HDQT(), epochs=10)
    assert acc > 0.85, acc
