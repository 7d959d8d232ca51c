"""The model file that ``skhead2toe fit`` writes, loaded for predict and export."""

from pathlib import Path

from skhead2toe._cli._errors import _Failure, _one_line

__all__ = []

_MODEL_FILE = "a model file is the .joblib that `skhead2toe fit` writes"


def _load_model(path):
    """The fitted classifier in ``path``; any failure to load it names the file."""
    import joblib

    if Path(path).is_dir():
        raise _Failure(f"model file {path!r} is a folder; {_MODEL_FILE}")
    if not Path(path).is_file():
        raise _Failure(f"model file {path!r} does not exist")
    try:
        model = joblib.load(path)
    except Exception as exc:  # whatever unpickling raises, the file is to blame
        hint = "; a features .npz goes to --features" if path.endswith(".npz") else ""
        raise _Failure(
            f"cannot load model file {path!r} ({_MODEL_FILE}{hint}): "
            f"{type(exc).__name__}: {_one_line(exc)}"
        ) from exc
    head = model[-1] if _is_pipeline(model) else model
    if not (hasattr(head, "predict_proba") and hasattr(head, "classes_")):
        raise _Failure(
            f"model file {path!r} holds a {type(model).__name__}, not a fitted "
            f"classifier with predict_proba; {_MODEL_FILE}"
        )
    return model, head


def _is_pipeline(model):
    from sklearn.pipeline import Pipeline

    return isinstance(model, Pipeline)


def _takes_images(model):
    """Whether ``model`` is a pipeline from images (a featurizer, then a head)."""
    from skhead2toe import MultiLayerFeaturizer

    return _is_pipeline(model) and isinstance(model[0], MultiLayerFeaturizer)
