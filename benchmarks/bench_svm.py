"""The exact fast L2-SVM path against scikit-learn's LinearSVC, on the same features, in one run.

    python benchmarks/bench_svm.py                      # digits lifted to 5,376 dimensions
    python benchmarks/bench_svm.py --features results/svm/svhn/ali/features.pt   # real features

For each C of a grid (the protocol's C selection), both solvers fit the same class-balanced labelled
draw of 1,000 examples (100 per class) and are scored on the same held-out set. Prints the time of
each, their ratio, and the largest difference in error rate and in weights between them.
By default the features are scikit-learn's digits passed through a fixed random ReLU layer to the
dimension of the released SVHN features (5,376), which gives the shape of the real problem
(n = 1,000 << d) without needing SVHN.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

from ali.data.splits import balanced_subset
from ali.eval import svm


def digits_features(dim: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X, y = load_digits(return_X_y=True)
    R = np.random.default_rng(seed).standard_normal((X.shape[1], dim)) / np.sqrt(X.shape[1])
    return np.maximum(X / 16.0 @ R, 0.0), y


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", help="a features.pt written by `ali svm-features` (pool and test)")
    p.add_argument("--dim", type=int, default=5376)
    p.add_argument("--n-per-class", type=int, default=100)
    p.add_argument("--log-c", type=float, nargs="+", default=[-6.0, -4.0, -2.0, 0.0, 2.0],
                   help="natural logs of the C values (the protocol's grid spans -20..20)")
    p.add_argument("--tol", type=float, default=1e-4, help="LinearSVC tolerance (scikit-learn's default)")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    if args.features:
        f = torch.load(args.features, map_location="cpu", weights_only=True)["features"]
        X_pool, y_pool = f["pool"].double().numpy(), f["pool_labels"].numpy()
        X_test, y_test = f["test"].double().numpy(), f["test_labels"].numpy()
    else:
        X, y = digits_features(args.dim)
        X_pool, y_pool, X_test, y_test = X, y, X, y
    idx = balanced_subset(y_pool, args.n_per_class, seed=1)
    if not args.features:  # digits: test on every image outside the labelled draw
        rest = np.setdiff1d(np.arange(len(y_pool)), idx)
        X_test, y_test = X_pool[rest], y_pool[rest]
    Xl, yl = X_pool[idx], y_pool[idx]
    Cs = np.exp(args.log_c)

    t0 = time.perf_counter()
    models = svm.FastL2SVM(10).fit(torch.from_numpy(Xl), torch.from_numpy(yl), Cs)
    fast_preds = [svm.predict(torch.from_numpy(X_test), W, b).numpy() for W, b in models]
    t_fast = time.perf_counter() - t0

    t0 = time.perf_counter()
    refs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for C in Cs:
            refs.append(LinearSVC(C=C, tol=args.tol, max_iter=1000).fit(Xl, yl))
    ref_preds = [r.predict(X_test) for r in refs]
    t_ref = time.perf_counter() - t0

    print(f"n = {len(yl)} labelled, d = {Xl.shape[1]}, test = {len(y_test)}, {len(Cs)} C values, "
          f"{torch.get_num_threads()} threads, LinearSVC tol {args.tol}")
    print(f"{'C':>10} {'err fast %':>11} {'err sklearn %':>14} {'disagree':>9} {'max |dW|':>10}")
    worst = 0.0
    for C, fp, rp, (W, b), r in zip(Cs, fast_preds, ref_preds, models, refs):
        ef, er = 100 * np.mean(fp != y_test), 100 * np.mean(rp != y_test)
        worst = max(worst, abs(ef - er))
        dw = np.abs(W.numpy() - r.coef_).max()
        print(f"{C:>10.3g} {ef:>11.2f} {er:>14.2f} {int((fp != rp).sum()):>9d} {dw:>10.2e}")
    print(f"time: fast exact {t_fast:.2f}s, LinearSVC {t_ref:.2f}s, ratio {t_ref / t_fast:.1f}x; "
          f"largest error-rate difference {worst:.3f} points")


if __name__ == "__main__":
    main()
