"""Reference for bench/train-bench.ts: scikit-learn's multinomial LogisticRegression on standardized features.

Reads <dir>/meta.json ({"dim", "splits": {"train": n, "validation": n, "test": n}, "cs": [...],
"class_weight": null | "balanced"}) plus <dir>/<split>.f32 (n * dim float32, row-major) and <dir>/<split>.labels
(n int32). Tunes C on validation accuracy (scaler fit on train), refits the scaler and model on train +
validation with that C, scores test. Prints one JSON object.
"""

import json
import sys
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.preprocessing import StandardScaler


def load(directory, split, dim, n):
    x = np.fromfile(f"{directory}/{split}.f32", dtype=np.float32).reshape(n, dim).astype(np.float64)
    y = np.fromfile(f"{directory}/{split}.labels", dtype=np.int32)
    return x, y


def fit(x, y, c, class_weight):
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=c, multi_class="multinomial", solver="lbfgs", max_iter=10000, class_weight=class_weight)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(scaler.transform(x), y)
    return scaler, model


def main():
    directory = sys.argv[1]
    with open(f"{directory}/meta.json") as f:
        meta = json.load(f)
    dim = meta["dim"]
    data = {s: load(directory, s, dim, n) for s, n in meta["splits"].items()}
    started = time.time()
    grid = []
    for c in meta["cs"]:
        scaler, model = fit(*data["train"], c, meta.get("class_weight"))
        xv, yv = data["validation"]
        grid.append({"C": c, "validation_accuracy": accuracy_score(yv, model.predict(scaler.transform(xv)))})
    best = max(grid, key=lambda g: g["validation_accuracy"])  # first (strongest C) wins ties
    x = np.concatenate([data["train"][0], data["validation"][0]])
    y = np.concatenate([data["train"][1], data["validation"][1]])
    scaler, model = fit(x, y, best["C"], meta.get("class_weight"))
    xt, yt = data["test"]
    predicted = model.predict(scaler.transform(xt))
    print(
        json.dumps(
            {
                "C": best["C"],
                "validation_accuracy": best["validation_accuracy"],
                "test_accuracy": accuracy_score(yt, predicted),
                "test_macro_f1": f1_score(yt, predicted, average="macro"),
                "grid": grid,
                "seconds": time.time() - started,
            }
        )
    )


if __name__ == "__main__":
    main()
