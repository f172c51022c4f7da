"""scikit-learn's own estimator checks, run on fastbp.MLPClassifier and fastbp.MLPRegressor.

Every check of `parametrize_with_checks` runs and must pass, with no xfail. One skips, as it
does for scikit-learn's own MLPClassifier: check_classifiers_multilabel_output_format_
decision_function, because MLPClassifier has no `decision_function` (it is probabilistic:
predict_proba / predict_log_proba), so there is no decision_function output to check.

Two settings make every other check run rather than skip: pandas is installed (the
DataFrame checks) and SCIPY_ARRAY_API=1 (set in conftest.py before scipy is imported;
without it check_array_api_input skips).
"""
import pytest
from sklearn.utils.estimator_checks import check_sample_weight_equivalence_on_dense_data, parametrize_with_checks

from fastbp import MLPClassifier, MLPRegressor

# max_iter=100 is what scikit-learn's own instance generator
# (sklearn/utils/_test_common/instance_generator.py) uses for its MLPs in these checks.
ESTIMATORS = [MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)]

# max_iter=100 is not always enough, as for scikit-learn's own MLPs; the checks don't need it.
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


# scikit-learn's PER_ESTIMATOR_CHECK_PARAMS: the sample-weight equivalence check is run on its
# MLPs with these parameters (the default adam fit is not converged enough for it).
@pytest.mark.parametrize("estimator", [
    MLPRegressor(solver="sgd", tol=1e-2, random_state=42),
    MLPClassifier(solver="lbfgs"),
], ids=["MLPRegressor-sgd", "MLPClassifier-lbfgs"])
def test_sample_weight_equivalence_on_dense_data(estimator):
    check_sample_weight_equivalence_on_dense_data(type(estimator).__name__, estimator)
