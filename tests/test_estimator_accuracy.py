"""Same data, same settings: fastbp and scikit-learn reach the same test accuracy (within 1
point) with each solver, on load_digits and load_breast_cancer, and that accuracy is decent."""
import pytest
import sklearn.neural_network as sk
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import fastbp

# Settings that converge in well under max_iter on both sets (sgd ~60-120 epochs, adam
# ~45-80, lbfgs ~15 iterations), so the comparison is of trained models.
SOLVERS = {
    "sgd": dict(solver="sgd", learning_rate_init=0.1),
    "adam": dict(solver="adam", learning_rate_init=0.01),
    "lbfgs": dict(solver="lbfgs"),
}
LOADERS = {"digits": load_digits, "breast_cancer": load_breast_cancer}


@pytest.fixture(scope="module", params=list(LOADERS))
def split(request):
    """75/25 stratified split, standardised with the training part's statistics."""
    X, y = LOADERS[request.param](return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, stratify=y,
                                                        random_state=0)
    scaler = StandardScaler().fit(X_train)
    return scaler.transform(X_train), scaler.transform(X_test), y_train, y_test


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("solver", list(SOLVERS))
def test_same_test_accuracy_as_sklearn(split, solver):
    X_train, X_test, y_train, y_test = split
    params = dict(hidden_layer_sizes=(64,), max_iter=200, random_state=0, **SOLVERS[solver])
    ref = sk.MLPClassifier(**params).fit(X_train, y_train)
    est = fastbp.MLPClassifier(**params).fit(X_train, y_train)
    ref_accuracy, accuracy = ref.score(X_test, y_test), est.score(X_test, y_test)
    assert abs(accuracy - ref_accuracy) <= 0.01
    assert accuracy >= 0.9
