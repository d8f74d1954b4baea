"""The ``best`` recipes: much better models than the tutorial's, same serving contract.

- mnist: small CNN (conv-BN-ReLU x2, pool, x2 blocks, valid padding), light rotation, translation
  and zoom, then the artifacts photo preprocessing leaves in a 28x28 frame (pen width, hollow
  strokes, small off-centre digits, blur, specks, ruling fragments, gaps, grain; see
  ``training.modeling.photo_artifacts``), so the model reads uploaded photos and drawings as well
  as MNIST. The artifacts go to 30% of the images, not the layer's default half: the clean
  majority keeps MNIST's own accuracy, and a wider dense layer (256, cheap) holds both; 20 epochs
  (more than without the artifacts, as those images are harder). AdamW with warm-up and cosine
  decay; bfloat16 training, float32 serving.
- fashion_mnist: the same CNN with 'same' padding, a narrow first block (16 filters: at full
  resolution it is most of the cost, and edges need few filters) and a wider dense layer (256,
  cheap); horizontal flips and small translations (the items are centred by construction),
  lighter dropout than mnist (the model underfits: its training accuracy under augmentation
  stays below the validation accuracy), 18 epochs, to train within 15 minutes here. Its
  ``lean-photo`` variant adds, on 30% of images, what photo preprocessing makes of a garment
  (``training.modeling.garment_photo``): tones measured against a ground, uneven light, the
  item turned, a shadow or hanger kept beside it, blur and grain.
- pima: raw values in; zero-as-missing imputation, log pedigree, standardisation and a
  piecewise-linear basis inside the model; a bag of five small models trained on inner folds with
  early stopping (best weights restored); the decision threshold from their out-of-fold
  predictions (Platt scaling); 5-fold stratified CV repeated 3 times reported as mean ± std.
  Its design (features, knots, L2, threshold rule) was chosen by repeated CV on the tutorial
  split's 614 training rows only.

Every choice (epochs, architecture, threshold) was made on validation data carved out of the
training data, never on the test set. The epoch counts were chosen on a 5,000-image stratified
hold-out of the training set, which each image recipe also keeps aside and reports as val_*.
"""

from __future__ import annotations

from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from training.modeling import cnn, pima_bag
from training.modeling.fit_clock import FitClock
from training.modeling.garment_photo import GARMENT_DEFAULTS
from training.modeling.photo_artifacts import PHOTO_DEFAULTS
from training.modeling.recipe import FitResult, Recipe, Split, history_lists
from training.recipes import register

SEED = 42


class _CnnRecipe(Recipe):
    """Shared fit for the two image recipes; ``defaults`` holds the differences."""

    name: ClassVar[str] = "best"

    def build(self, hp: dict[str, Any]) -> keras.Model:
        return cnn.build_training_model(hp, train_examples=60000 - hp["validation_size"])

    def train(self, split: Split, hp: dict[str, Any], *, verbose: int = 2) -> FitResult:
        x_tr, y_tr, x_val, y_val = cnn.validation_split(
            split.x_train, split.y_train, hp["validation_size"], SEED
        )
        model = cnn.build_training_model(hp, train_examples=len(x_tr), seed=SEED)
        return self._fit(model, x_tr, y_tr, x_val, y_val, hp, verbose)

    def fit(
        self, model: keras.Model, split: Split, hp: dict[str, Any], *, verbose: int
    ) -> FitResult:
        x_tr, y_tr, x_val, y_val = cnn.validation_split(
            split.x_train, split.y_train, hp["validation_size"], SEED
        )
        return self._fit(model, x_tr, y_tr, x_val, y_val, hp, verbose)

    def _fit(
        self,
        model: keras.Model,
        x_tr: np.ndarray,
        y_tr: np.ndarray,
        x_val: np.ndarray,
        y_val: np.ndarray,
        hp: dict[str, Any],
        verbose: int,
    ) -> FitResult:
        train = (
            tf.data.Dataset.from_tensor_slices((x_tr, y_tr))
            .shuffle(len(x_tr), seed=SEED, reshuffle_each_iteration=True)
            .batch(hp["batch_size"])
            .prefetch(2)
        )
        clock = FitClock.start()
        history = model.fit(
            train,
            epochs=hp["epochs"],
            validation_data=(x_val, y_val),
            validation_batch_size=1000,
            shuffle=False,  # the tf.data pipeline shuffles (seeded)
            verbose=verbose,
        )
        serving = cnn.serving_copy(model, hp)
        probs = np.asarray(serving(x_val, training=False))
        extra = {
            "validation": {"examples": len(x_val), "accuracy": _accuracy(probs, y_val)},
            "fit_timing": clock.stop(),
        }
        return FitResult(serving, history_lists(history), len(history.epoch), extra)


def _accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(probs, axis=1) == y))


_IMAGE_COMMON: dict[str, Any] = {
    "batch_size": 128,
    "optimizer": "AdamW",
    "learning_rate": 3e-3,
    "weight_decay": 5e-4,
    "warmup_fraction": 0.1,
    "schedule": "linear warm-up from lr/10, then cosine decay to lr/100",
    "dense_units": 128,
    "dropout": 0.3,
    "widths": [32, 64],  # filters of the two conv blocks
    "validation_size": 5000,
    "bfloat16": True,
}


@register
class MnistBest(_CnnRecipe):
    dataset = "mnist"
    description = (
        "CNN 2x(conv-conv-pool) 32/64, dense 256, BN, dropout, rotation/shift/zoom and "
        "photo-preprocessing artifacts on 30% of images, AdamW+cosine"
    )
    defaults: ClassVar[dict[str, Any]] = {
        **_IMAGE_COMMON,
        "dense_units": 256,
        "epochs": 20,
        "padding": "valid",
        "augment": {
            "rotation": 0.04,
            "translation": 0.1,
            "zoom": 0.1,
            "photo": {**PHOTO_DEFAULTS, "apply": 0.3},
        },
    }


@register
class FashionBest(_CnnRecipe):
    dataset = "fashion_mnist"
    description = (
        "CNN 2x(conv-conv-pool) 16/64 'same', dense 256, BN, dropout 0.2, flip/small shift, "
        "AdamW+cosine"
    )
    defaults: ClassVar[dict[str, Any]] = {
        **_IMAGE_COMMON,
        "widths": [16, 64],
        "dense_units": 256,
        "dropout": 0.2,
        "epochs": 18,
        "padding": "same",
        "augment": {"flip": True, "translation": 0.05},
    }


@register
class MnistFast(MnistBest):
    name = "fast"
    description = (
        "the best recipe with one convolution (32) in the first block, 64/64 in the second: "
        "about half the time per image"
    )
    defaults: ClassVar[dict[str, Any]] = {**MnistBest.defaults, "convs": [1, 2]}


@register
class FashionFast(FashionBest):
    name = "fast"
    description = (
        "CNN conv 32 'same'-pool, 2x conv 64 'valid'-pool, dense 256, BN, dropout 0.2, "
        "flip/small shift, AdamW+cosine: about half the time per image of the best recipe"
    )
    defaults: ClassVar[dict[str, Any]] = {
        **FashionBest.defaults,
        "widths": [32, 64],
        "convs": [1, 2],
        "padding": ["same", "valid"],
    }


# The fast recipes' first convolution and pool, replaced by one strided convolution ('same'
# padding: 28 -> 14) that computes a quarter of the full-resolution outputs.
_LEAN_STEM: dict[str, Any] = {"padding": ["same", "valid"], "strides": [2, 1], "kernels": [5, 3]}
_LEAN_DESCRIPTION = (
    "the fast recipe with a 5x5 stride-2 first convolution (32) in place of conv-pool: a quarter "
    "of the full-resolution work"
)


@register
class MnistLean(MnistFast):
    name = "lean"
    description = _LEAN_DESCRIPTION
    defaults: ClassVar[dict[str, Any]] = {**MnistFast.defaults, **_LEAN_STEM}


@register
class FashionLean(FashionFast):
    name = "lean"
    description = f"{_LEAN_DESCRIPTION}; 30 epochs"
    # With the fast recipe's epochs its validation accuracy stays below the fast recipe's;
    # the cheaper stem makes an epoch cheaper, so longer training costs a similar fit time.
    defaults: ClassVar[dict[str, Any]] = {**FashionFast.defaults, **_LEAN_STEM, "epochs": 30}


@register
class FashionLeanPhoto(FashionLean):
    name = "lean-photo"
    description = (
        "the lean recipe, and on 30% of images what photo preprocessing makes of a garment "
        "(tones against a ground, uneven light, turned, a shadow or hanger kept beside it, "
        "blur, grain); same architecture and latency"
    )
    # The classifier is the lean one, so a photo-trained copy serves at the same cost. The
    # garment artifacts (``training.modeling.garment_photo``) go to a minority of images so most
    # stay clean; still, it reads Fashion-MNIST's own shirts a little less well than the lean
    # recipe, which is why it is offered beside the default rather than as the default.
    defaults: ClassVar[dict[str, Any]] = {
        **FashionLean.defaults,
        "augment": {**FashionLean.defaults["augment"], "garment": {**GARMENT_DEFAULTS}},
    }


@register
class PimaBest(Recipe):
    """Additive model with in-graph preprocessing, bagged over inner folds, OOF threshold."""

    name = "best"
    dataset = "pima"
    description = (
        "in-model zero-as-missing imputation, log pedigree, standardisation and hinge basis "
        "(mass, age); L2 logistic layer; 5 inner-fold members with early stopping; threshold by "
        "Platt scaling of out-of-fold predictions"
    )
    defaults: ClassVar[dict[str, Any]] = {
        "features": ["pregnant", "glucose", "mass", "pedigree", "age"],
        "log": ["pedigree"],
        "hinges": ["mass", "age"],
        "knots": 4,
        "indicators": [],
        "hidden_units": 0,
        "dropout": 0.0,
        "l2": 3e-4,
        "optimizer": "Adam (full batch)",
        "learning_rate": 0.03,
        "max_epochs": 2000,
        "patience": 100,
        "min_delta": 1e-5,
        "inner_folds": 5,
        "threshold_range": [0.3, 0.7],
        "threshold_rule": "oof_platt",
        "cv_folds": 5,
        "cv_repeats": 3,
        "cv_seed": 0,
        "cv": True,
    }

    def hyperparameters(self, epochs: int | None = None) -> dict[str, Any]:
        hp = dict(self.defaults)
        if epochs is not None:  # --epochs caps the members' epochs (smoke runs)
            hp["max_epochs"] = epochs
        return hp

    def build(self, hp: dict[str, Any]) -> keras.Model:
        """One bag member, adapted on placeholder rows (the real ones are adapted in ``train``)."""
        placeholder = np.tile(np.arange(1.0, 9.0, dtype=np.float32), (4, 1))
        return pima_bag.build_member(placeholder * np.arange(1, 5)[:, None], hp, SEED)

    def fit(
        self, model: keras.Model, split: Split, hp: dict[str, Any], *, verbose: int
    ) -> FitResult:
        return self.train(split, hp, verbose=verbose)

    def train(self, split: Split, hp: dict[str, Any], *, verbose: int = 2) -> FitResult:
        x, y = split.x_train.astype(np.float32), split.y_train.astype(np.int64)
        bag = pima_bag.fit_bag(x, y, hp, SEED)
        extra: dict[str, Any] = {
            "oof": {
                "accuracy": float(np.mean((bag.oof >= bag.threshold) == y)),
                "roc_auc": _auc(y, bag.oof),
                "examples": len(y),
            },
        }
        if hp["cv"]:
            # The cross-validation is an evaluation only: every fold refits the whole recipe
            # (members, early stopping, threshold) on its own training folds. It runs on all
            # rows (train + test split), so it is comparable with published Pima figures.
            x_all = np.concatenate([x, split.x_test.astype(np.float32)])
            y_all = np.concatenate([y, split.y_test.astype(np.int64)])
            log = print if verbose else None
            extra["cv"] = pima_bag.cross_validate(x_all, y_all, hp, SEED, log=log)
            cv = extra["cv"]
            print(
                f"   {cv['folds']}-fold CV x{cv['repeats']} on {cv['examples']} rows: "
                f"accuracy {cv['accuracy_mean']:.4f} ± {cv['accuracy_std']:.4f}, "
                f"ROC-AUC {cv['auc_mean']:.4f} ± {cv['auc_std']:.4f} ({cv['seconds']:.0f} s)",
                flush=True,
            )
        first = bag.histories[0]
        return FitResult(
            bag.serving_model(),
            first,
            max(len(h["loss"]) for h in bag.histories),
            extra,
            threshold=bag.threshold,
        )


def _auc(y: np.ndarray, p: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else None
