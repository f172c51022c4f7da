"""Issue 8's features beyond the textbook: more activations, RPROP / Quickprop, validation
data, dropout, plots."""
import warnings

import numpy as np
import pytest

import fastbp


@pytest.mark.parametrize("activation", ["leaky_relu", "elu", "softplus"])
def test_new_activations_everywhere(activation):
    """Network, RNN and the drop-ins take them (scikit-learn's MLPs do not); they learn XOR-ish data."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 2))
    y = (X[:, 0] * X[:, 1] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = fastbp.MLPClassifier(hidden_layer_sizes=(16,), activation=activation, max_iter=300,
                                   learning_rate_init=0.01, random_state=0).fit(X, y)
    assert clf.score(X, y) > 0.9
    assert fastbp.RNN([2, 3, 1], activation=activation).activation == activation
    net = fastbp.Network([2, 3, 1], activation=activation)
    assert np.isfinite(net.predict(X * 100)).all()
