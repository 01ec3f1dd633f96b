"""Reference for bench/accuracy-bench.ts: scikit-learn's multinomial LogisticRegression on standardized features.

Reads <dir>/runs.json: {"dim", "cs": [...], "runs": [{"name", "n_train", "n_test", "flip": bool}]} and per run
<dir>/<name>.{train.f32,train.labels,train.val,train.group,test.f32,test.labels} (+ test_flip.f32 when flip).
train.val is one uint8 per train row (1 = in the trainer's validation split), train.group the photo index of a
row (a flipped view shares its photo's group). Per run, two tunings of C, each refit on all train rows:
  split: C with the best accuracy on the trainer's validation split (scaler fit on the rest), as the issue's probe;
  cv:    C with the best mean accuracy over 5 stratified group folds of all train rows (skipped, reported as the
         split's, when runs.json says "cv": false).
Test probabilities are averaged over the plain and mirrored view when flip is set. Prints one JSON object.
"""

import json
import sys
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.preprocessing import StandardScaler


def fit(x, y, c, warm=None):
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=c, solver="lbfgs", max_iter=1000, warm_start=warm is not None)
    if warm is not None:
        model.coef_, model.intercept_ = warm
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(scaler.transform(x), y)
    return scaler, model


def path_accuracy(xtr, ytr, xva, yva, cs):
    """Accuracy on (xva, yva) per C, fitting from the weakest C up with warm starts."""
    out = []
    warm = None
    for c in cs:
        scaler, model = fit(xtr, ytr, c, warm)
        warm = (model.coef_.copy(), model.intercept_.copy())
        out.append(float((model.predict(scaler.transform(xva)) == yva).mean()))
    return out


def test_accuracy(x, y, c, xt, xtf, yt):
    scaler, model = fit(x, y, c)
    p = model.predict_proba(scaler.transform(xt))
    if xtf is not None:
        p = (p + model.predict_proba(scaler.transform(xtf))) / 2
    return float((model.classes_[p.argmax(1)] == yt).mean())


def run(directory, dim, cs, r, with_cv=True):
    def f32(suffix, n):
        return np.fromfile(f"{directory}/{r['name']}.{suffix}", dtype=np.float32).reshape(n, dim).astype(np.float64)

    x = f32("train.f32", r["n_train"])
    y = np.fromfile(f"{directory}/{r['name']}.train.labels", dtype=np.int32)
    val = np.fromfile(f"{directory}/{r['name']}.train.val", dtype=np.uint8).astype(bool)
    group = np.fromfile(f"{directory}/{r['name']}.train.group", dtype=np.int32)
    xt = f32("test.f32", r["n_test"])
    xtf = f32("test_flip.f32", r["n_test"]) if r["flip"] else None
    yt = np.fromfile(f"{directory}/{r['name']}.test.labels", dtype=np.int32)
    cs = sorted(cs)
    split_acc = path_accuracy(x[~val], y[~val], x[val], y[val], cs)
    # Ties go to the strongest regularization (smallest C), as cs is ascending.
    c_split = cs[int(np.argmax(split_acc))]
    split = {"C": c_split, "test_accuracy": test_accuracy(x, y, c_split, xt, xtf, yt)}
    if not with_cv:
        return {"name": r["name"], "split": split, "cv": split}
    folds = StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0).split(x, y, group)
    cv = np.mean([path_accuracy(x[a], y[a], x[b], y[b], cs) for a, b in folds], axis=0)
    c_cv = cs[int(np.argmax(cv))]
    return {
        "name": r["name"],
        "split": split,
        "cv": {"C": c_cv, "test_accuracy": test_accuracy(x, y, c_cv, xt, xtf, yt)},
    }


def main():
    directory = sys.argv[1]
    with open(f"{directory}/runs.json") as f:
        meta = json.load(f)
    started = time.time()
    out = [run(directory, meta["dim"], meta["cs"], r, meta.get("cv", True)) for r in meta["runs"]]
    print(json.dumps({"runs": out, "seconds": time.time() - started}))


if __name__ == "__main__":
    main()
