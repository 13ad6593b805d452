"""The L2-SVM protocol of Table 1, with an exact fast solver beside scikit-learn's LinearSVC.

LinearSVC (liblinear, one-vs-rest, squared hinge, ``intercept_scaling=1``) solves, per class,

    min_w  1/2 ||w||^2 + C sum_i max(0, 1 - y_i w.x~_i)^2,      x~_i = [x_i, 1]

(the intercept is the weight of a constant feature, so it is regularised too). With n = 1,000
labelled examples and d of several thousand features, the solution lies in the span of the x~_i:
w = sum_i a_i y_i x~_i, and everything needs only the n x n Gram matrix K = X X^T + 1, built once per
labelled draw and shared by all C values and all ten classes. We solve it by the finite Newton
method (Keerthi & DeCoste 2005): fix the set S of margin violators, solve the ridge problem on S
exactly, (Q_SS + I / 2C) a_S = 1 with Q = diag(y) K diag(y), step there with an exact line search on
the true piecewise-quadratic objective, repeat until S no longer changes. That point satisfies the
optimality conditions exactly, so the answer is liblinear's optimum to float64 precision, whereas
liblinear stops at its tolerance. The ten classes and several C values are solved as one batch.

At the grid's large end (C = e^20) margins cannot be resolved finely enough to settle the points that
sit on the margin: S may then keep points whose coefficient a_i comes out negative (the ridge problem
wants their margin above 1), a point that is not optimal (its objective was up to 48 % above the
optimum on digit pixels). The dual of the problem is min_a 1/2 a^T (Q + I / 2C) a - sum a, a >= 0, and
there membership is settled by the sign of a_i: such results are finished by Lawson-Hanson's active-set
method on the dual, started from S, which keeps a >= 0 and stops when no excluded point violates its
margin by more than MARGIN_TOL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ali.data.splits import balanced_subset

MARGIN_TOL = 1e-9  # relative to the margin 1: far below float32 feature precision
C_GRID_PAPER = np.exp(np.linspace(-20, 20, 50))  # released code: exp(linspace(-20, 20, 50))
# Bump when the protocol (draws, C choice, solver's optimum, error) changes what a trial's number means.
L2SVM_PROTOCOL_VERSION = "l2svm-protocol/1"


def one_vs_rest(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(n_classes, n) targets in {-1, +1}."""
    classes = torch.arange(n_classes, device=labels.device)[:, None]
    return (labels[None, :] == classes).to(torch.float64) * 2 - 1


def _objective_terms(K, coef, Y):
    """f = K coef (scores on the training set) and 1/2 ||w||^2 = 1/2 coef^T K coef, per problem."""
    f = coef @ K  # (P, n); K is symmetric
    return f, 0.5 * (f * coef).sum(-1)


def _line_search(K, Y, C, coef, step, iters: int = 60):
    """argmin over t in [0, 1] of the objective along coef + t * step (convex: bisect its derivative)."""
    f0, df = coef @ K, step @ K
    a = (step * f0).sum(-1)  # d/dt of 1/2 (coef + t step)^T K (coef + t step) = a + t b
    b = (step * df).sum(-1)
    yf0, ydf = Y * f0, Y * df

    def slope(t):  # derivative of the objective at t, per problem
        margin = 1 - (yf0 + t[:, None] * ydf)
        return a + t * b - 2 * C * (torch.clamp(margin, min=0) * ydf).sum(-1)

    lo = torch.zeros_like(a)
    hi = torch.ones_like(a)
    full = slope(hi) <= 0  # the full Newton step is already downhill all the way
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        down = slope(mid) < 0
        lo = torch.where(down, mid, lo)
        hi = torch.where(down, hi, mid)
    return torch.where(full, torch.ones_like(a), 0.5 * (lo + hi))


def _solve_active(K: torch.Tensor, y: torch.Tensor, C: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """a (n,): (Q_SS + I / 2C) a_S = 1 on the set S = ``active`` of one problem, a = 0 elsewhere."""
    a = torch.zeros_like(y)
    idx = active.nonzero().squeeze(1)
    if len(idx) == 0:
        return a
    ys = y[idx]
    M = ys[:, None] * K[idx][:, idx] * ys[None, :]
    M.diagonal().add_(1 / (2 * C))
    a[idx] = torch.linalg.solve(M, torch.ones_like(ys))
    return a


def _ridge_on_active(K: torch.Tensor, Y: torch.Tensor, C: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """a (P, n): per problem, (Q_SS + I / 2C) a_S = 1 on the violators S, a = 0 elsewhere.

    Solved on S alone (|S| shrinks fast: a few hundred of 1,000) with an LU solve, which
    benchmarks/bench_svm.py found faster here than Cholesky with its triangular solves.
    """
    return torch.stack([_solve_active(K, Y[p], C[p], active[p]) for p in range(Y.shape[0])])


def _dual_active_set(K: torch.Tensor, y: torch.Tensor, C: torch.Tensor, a: torch.Tensor, active: torch.Tensor,
                     max_iter: int = 10_000) -> torch.Tensor:
    """Lawson-Hanson on the dual of one problem, from the set ``active`` and its coefficients ``a``.

    Keeps a >= 0: when the optimum on the set has a_i <= 0, step towards it until the first coefficient
    reaches 0 and drop that point; when it is feasible, add the excluded point whose margin is violated
    most (dual gradient 1 - y_i f_i > MARGIN_TOL); stop when there is none.
    """
    passive = active & (a > 0)
    a = torch.where(passive, a, torch.zeros_like(a))
    for _ in range(max_iter):
        s = _solve_active(K, y, C, passive)
        bad = passive & (s <= 0)
        if bad.any():  # infeasible: move towards s until a coefficient hits zero, and drop it
            ratio = torch.where(bad, a / (a - s), torch.full_like(a, torch.inf))
            alpha = ratio.min()
            a = a + alpha * (s - a)
            hit = bad & (ratio <= alpha)
            a[hit] = 0.0
            passive = passive & ~hit & (a > 0)
            continue
        a = s
        gradient = 1 - y * ((a * y) @ K) - a / (2 * C)  # the dual's -gradient; 1 - margin off the set
        gradient[passive] = -torch.inf
        best = int(gradient.argmax())
        if gradient[best] <= MARGIN_TOL:
            return a
        passive[best] = True
    raise RuntimeError(f"dual active set did not converge in {max_iter} iterations")


def fit_l2svm_gram(K: torch.Tensor, Y: torch.Tensor, C: torch.Tensor, init: torch.Tensor | None = None,
                   max_iter: int = 500) -> torch.Tensor:
    """Exact L2-SVMs for P problems sharing one Gram matrix.

    K (n, n) Gram of the intercept-augmented features; Y (P, n) targets in {-1, +1}; C (P,);
    ``init`` (P, n) a starting point (e.g. the solution for the previous C of a grid: a warm start
    changes only the number of iterations, not the answer). Returns coef (P, n), w_p = sum_i coef[p, i] x~_i.
    """
    K, Y = K.double(), Y.double()
    C = torch.as_tensor(C, dtype=torch.float64, device=K.device).expand(Y.shape[0])
    coef = torch.zeros_like(Y) if init is None else init.double().clone()
    active = Y * (coef @ K) < 1  # the margin violators S
    for _ in range(max_iter):
        a = _ridge_on_active(K, Y, C, active)
        target = a * Y
        margin = Y * (target @ K)
        # Optimal when the ridge solution on S violates exactly S. A point within MARGIN_TOL of the
        # margin adds ~0 to the objective and its gradient whichever side it is counted on; without the
        # tolerance such a point can flip in and out of S forever at huge C.
        if bool(((active & (margin <= 1 + MARGIN_TOL)) | (~active & (margin >= 1 - MARGIN_TOL))).all()):
            for p in (a < 0).any(1).nonzero().squeeze(1).tolist():  # on-margin points kept with a_i < 0
                target[p] = _dual_active_set(K, Y[p], C[p], a[p], active[p]) * Y[p]
            return target
        t = _line_search(K, Y, C, coef, target - coef)
        coef = coef + t[:, None] * (target - coef)
        active = Y * (coef @ K) < 1
    raise RuntimeError(f"finite Newton did not converge in {max_iter} iterations")


def gram(X: torch.Tensor, intercept_scaling: float = 1.0) -> torch.Tensor:
    """K = X~ X~^T for X~ = [X, intercept_scaling], in float64."""
    X = X.double()
    return X @ X.T + intercept_scaling**2


def weights(X: torch.Tensor, coef: torch.Tensor, intercept_scaling: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(W (P, d), b (P,)) from span coefficients: w = sum_i coef_i x~_i."""
    X = X.double()
    # The constant feature's weight is s * sum(coef); the intercept it contributes is s times that.
    return coef @ X, coef.sum(-1) * intercept_scaling**2


def predict(X: torch.Tensor, W: torch.Tensor, b: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
    """One-vs-rest prediction: the class with the largest score (LinearSVC's rule)."""
    out = [(X[i:i + chunk].double() @ W.T + b).argmax(-1) for i in range(0, len(X), chunk)]
    return torch.cat(out)


@dataclass
class FastL2SVM:
    """Fit every C of a grid on one labelled draw; predict with any of them."""

    n_classes: int
    intercept_scaling: float = 1.0

    def fit(self, X: torch.Tensor, y: torch.Tensor, Cs: Sequence[float]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        K = gram(X, self.intercept_scaling)
        Y = one_vs_rest(y, self.n_classes)
        models, coef = [], None
        for C in Cs:  # one batch of n_classes problems per C keeps memory at n_classes * n^2
            C_vec = torch.full((self.n_classes,), float(C), dtype=torch.float64, device=K.device)
            coef = fit_l2svm_gram(K, Y, C_vec, init=coef)  # warm start from the previous C
            models.append(weights(X, coef, self.intercept_scaling))
        return models


def sklearn_fit_predict(X, y, C: float, X_eval, tol: float = 1e-4, max_iter: int = 1000) -> np.ndarray:
    """The reference: scikit-learn's LinearSVC, squared hinge, one-vs-rest, no feature scaling."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    svc = LinearSVC(C=C, loss="squared_hinge", dual=True, tol=tol, max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # large C: liblinear stops at max_iter
        svc.fit(np.asarray(X, dtype=np.float64), np.asarray(y))
    return svc.predict(np.asarray(X_eval, dtype=np.float64))


RELEASED_STD_DDOF = 0  # the released script prints numpy.std(error_rates): the population std


def released_std(errors: Sequence[float]) -> float:
    """The spread the released script printed beside its mean error (Table 1's +/- 0.50): numpy.std with
    ddof=0 over the trials. Our tables also give the sample std (ddof=1); for 100 trials the two differ
    by a factor sqrt(100 / 99)."""
    return float(np.std(np.asarray(errors, dtype=np.float64), ddof=RELEASED_STD_DDOF))


def error_pct(pred, y) -> float:
    pred = pred.cpu().numpy() if isinstance(pred, torch.Tensor) else np.asarray(pred)
    y = y.cpu().numpy() if isinstance(y, torch.Tensor) else np.asarray(y)
    return 100.0 * float((pred != y).mean())


def l2svm_trials(pool_X, pool_y, valid_X, valid_y, test_X, test_y, *, n_per_class: int, n_trials: int,
                 Cs: Sequence[float], seed: int, n_classes: int = 10, solver: str = "exact",
                 device: str = "cpu", progress=None) -> dict:
    """The released protocol: choose C on validation with one labelled draw, then ``n_trials`` fresh
    class-balanced draws scored on the test set. Returns the C grid's validation errors and the trials.
    """
    def fit_predict(idx, Cs_, X_eval):
        X, y = pool_X[idx], pool_y[idx]
        if solver == "sklearn":
            return [torch.as_tensor(sklearn_fit_predict(X.cpu().numpy(), y.cpu().numpy(), C, X_eval.cpu().numpy()))
                    for C in Cs_]
        models = FastL2SVM(n_classes).fit(X.to(device), y.to(device), Cs_)
        return [predict(X_eval.to(device), W, b).cpu() for W, b in models]

    labels = pool_y.cpu().numpy()
    draw = balanced_subset(labels, n_per_class, seed)
    valid_errors = [error_pct(p, valid_y) for p in fit_predict(draw, Cs, valid_X)]
    best = int(np.argmin(valid_errors))  # ties: the smallest C (our choice)
    C = float(Cs[best])
    trials = []
    for t in range(n_trials):
        trial_seed = seed + 1 + t
        idx = balanced_subset(labels, n_per_class, trial_seed)
        (pred,) = fit_predict(idx, [C], test_X)
        trials.append({"trial": t, "seed": trial_seed, "C": C, "error_pct": error_pct(pred, test_y)})
        if progress is not None:
            progress(t + 1, n_trials)
    return {"C": C, "C_index": best, "valid_errors": valid_errors, "trials": trials}
