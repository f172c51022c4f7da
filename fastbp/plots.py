"""plot_history: training (and validation) loss and accuracy over epochs, with matplotlib.

matplotlib is optional (`pip install "fastbp[plot]"`); it is imported only here, when a plot
is asked for.
"""
import numpy as np


def _curves(source):
    """(loss, val_loss, accuracy, val_accuracy, title) of a History or a fitted estimator."""
    from .train import History
    if isinstance(source, History):
        return (source.loss, source.val_loss, source.accuracy, source.val_accuracy,
                f"training stopped by {source.stopped_by or '?'} after {source.n_epochs} epochs")
    history = getattr(source, "history_", None)  # RNNClassifier / RNNRegressor
    if isinstance(history, History):
        return _curves(history)[:4] + (type(source).__name__,)
    if hasattr(source, "loss_curve_"):  # the MLP drop-ins (scikit-learn's names)
        return (list(source.loss_curve_), list(getattr(source, "validation_loss_curve_", []) or []),
                [], list(getattr(source, "validation_scores_", None) or []), type(source).__name__)
    if hasattr(source, "fit") and hasattr(source, "get_params"):  # an estimator, not fitted yet
        from sklearn.exceptions import NotFittedError
        raise NotFittedError(f"This {type(source).__name__} instance is not fitted yet: fit it "
                             "before plot_history draws its curves.")
    raise TypeError(f"plot_history takes a fastbp History or a fitted fastbp estimator, got "
                    f"{type(source).__name__}")


def plot_history(history_or_estimator, path=None, *, title=None):
    """Draw loss per epoch (training and, when there is one, validation) and, for
    classifiers, accuracy / validation score per epoch, side by side. Returns the matplotlib
    Figure; with `path`, also saves it there (PNG, or any format matplotlib knows by suffix).
    """
    loss, val_loss, accuracy, val_accuracy, default_title = _curves(history_or_estimator)
    if not loss:
        raise ValueError("plot_history: no epochs to plot (the history is empty)")
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError('plot_history needs matplotlib: pip install "fastbp[plot]"') from None
    scores = bool(accuracy or val_accuracy)
    fig, axes = plt.subplots(1, 2 if scores else 1, figsize=(10 if scores else 5.5, 3.8), squeeze=False)
    epochs = np.arange(1, len(loss) + 1)
    ax = axes[0, 0]
    ax.plot(epochs, loss, label="training")
    if val_loss:
        ax.plot(np.arange(1, len(val_loss) + 1), val_loss, label="validation")
    ax.set(xlabel="epoch", ylabel="loss")
    if min(loss) > 0 and max(loss) / min(loss) > 50:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    if scores:
        ax = axes[0, 1]
        if accuracy:
            ax.plot(np.arange(1, len(accuracy) + 1), accuracy, label="training")
        if val_accuracy:
            ax.plot(np.arange(1, len(val_accuracy) + 1), val_accuracy, label="validation")
        ax.set(xlabel="epoch", ylabel="accuracy / score", ylim=(-0.02, 1.02))
        ax.grid(True, alpha=0.3)
        ax.legend()
    fig.suptitle(title or default_title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
