"""``facegate eval tail DATA``: fit the impostor-score tail the 1:N decision rests on.

Data: LFW View 1's development identities only. The model is fitted on the people of
``pairsDevTrain.txt`` (all their images) and checked on the people of ``pairsDevTest.txt`` (a
disjoint set of people); ``pairs.txt``, which the evaluations report on, is never read.

Design (person-balanced, the shape of an identification gallery): each person is one gallery
embedding (their first image); each person's first two images are probes, compared with every
*other* person's gallery embedding. Counting pairs of images instead would let the few people
with hundreds of images (George W Bush: 530) dominate the tail; on the per-person design the
DevTrain and DevTest tails agree (their 10^-5 quantiles differ by 0.004 in cosine), on the
all-pairs one they do not. Mated distances (images 2 and 3 of a person against image 1) give
the genuine curve G.

Fit: the empirical false-match rate F(d) at knots from F = 1 down to ``p_u`` = 10^-3 (the body),
and below that a generalised Pareto distribution of ``u - d`` over the impostor distances under
u (scipy.stats.genpareto, location fixed at 0, maximum likelihood: the standard peaks-over-
threshold fit; 10^-3 of ~6.5 M comparisons leaves ~6,500 exceedances), its shape kept >= 0 (see
``fit_tail``). LFW's label noise (one
person under two names, relatives) is kept: a deployed gallery has duplicates and look-alikes
too, and it makes the tail heavier, hence the threshold safer.

The JSON records, per recipe and TTA mode: the data, the method, the fitted numbers and the
held-out check (DevTest FMR at the distances the model puts at 10^-3 … 10^-6, and the FPIR of
simulated DevTest galleries at the rule's thresholds), plus how far the extrapolated 10^-8
quantile moves when p_u does.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facegate.config import TTA, Settings
from facegate.engine.align import VIEW_INDEX
from facegate.engine.openset import TAIL_FILE, ImpostorTail, ParetoTail
from facegate.engine.zoo import REGISTRY
from facegate.eval.lfw import RECOGNIZER_MODES, _lfw_dir, engine_settings, facegate_descriptors
from facegate.eval.lfw_data import image_path, read_pairs

P_U = 1e-3
# The alternatives the sensitivity figure is measured at.
P_U_ALTERNATIVES = (1e-2, 3e-3, 1e-3, 3e-4)
BODY_KNOTS = 40
GENUINE_KNOTS = 101
RNG_SEED = 10


def people_counts(lfw_dir: Path) -> dict[str, int]:
    with (lfw_dir / "people_counts.csv").open() as handle:
        return {row["name"]: int(row["num_images"]) for row in csv.DictReader(handle)}


def dev_people(lfw_dir: Path, pair_list: str) -> list[str]:
    """The people a View-1 pair list names (pairsDevTrain.txt or pairsDevTest.txt)."""
    pairs = read_pairs(lfw_dir / pair_list)
    return sorted({path.split("/")[1] for p in pairs for path in (p.first, p.second)})


def pairwise_distances(a: NDArray[np.float64], b: NDArray[np.float64]) -> NDArray[np.float64]:
    squared = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * (a @ b.T)
    distances: NDArray[np.float64] = np.sqrt(np.maximum(squared, 0.0))
    return distances


def balanced_design(
    descriptors: dict[str, NDArray[np.float32]], people: list[str], counts: dict[str, int]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """(impostor probe x gallery distances with NaN on the mated cells, impostor distances,
    genuine distances) of the person-balanced design in the module docstring."""
    gallery = np.stack([descriptors[image_path(p, 1)] for p in people]).astype(np.float64)
    probe_rows = [(i, n) for i, p in enumerate(people) for n in range(1, min(counts[p], 2) + 1)]
    probes = np.stack([descriptors[image_path(people[i], n)] for i, n in probe_rows])
    matrix = pairwise_distances(probes.astype(np.float64), gallery)
    owner = np.array([i for i, _ in probe_rows])
    matrix[np.arange(len(owner)), owner] = np.nan
    genuine = [
        float(
            pairwise_distances(
                descriptors[image_path(p, n)][None, :].astype(np.float64),
                descriptors[image_path(p, 1)][None, :].astype(np.float64),
            )[0, 0]
        )
        for p in people
        for n in range(2, min(counts[p], 3) + 1)
    ]
    return matrix, matrix[~np.isnan(matrix)], np.array(genuine)


def fit_tail(impostor: NDArray[np.float64], p_u: float) -> ParetoTail:
    """Peaks over threshold: a generalised Pareto fit of u - d over the distances below u.

    The shape is kept at 0 or above: a bounded fit (xi < 0) extrapolates too light a tail. On
    2 M synthetic normal scores the unconstrained fit put the 10^-7 threshold where the true
    rate is 3.8 times higher (tests/unit/test_openset.py); on DevTrain the rarest impostor
    scores (LFW's label noise) are also heavier than the unconstrained fit says. The
    exponential tail (xi = 0) errs the other way: fewer false positives than the target.
    """
    from scipy import stats

    u = float(np.quantile(impostor, p_u))
    excess = u - impostor[impostor < u]
    xi, _, scale = stats.genpareto.fit(excess, floc=0.0)
    if xi < 0.0:
        xi, _, scale = stats.genpareto.fit(excess, fc=0.0, floc=0.0)
    return ParetoTail(u=u, p_u=float((impostor <= u).mean()), xi=float(xi), scale=float(scale))


def fit_model(
    impostor: NDArray[np.float64], genuine: NDArray[np.float64], source: str, p_u: float = P_U
) -> ImpostorTail:
    tail = fit_tail(impostor, p_u)
    rates = np.logspace(np.log10(tail.p_u), 0.0, BODY_KNOTS)
    knots = np.quantile(impostor, rates)
    knots[0] = tail.u
    body = tuple(
        (float(d), float(np.log10(r)))
        for d, r in zip(np.maximum.accumulate(knots), rates, strict=True)
    )
    levels = np.linspace(0.0, 1.0, GENUINE_KNOTS)
    genuine_knots = np.maximum.accumulate(np.quantile(genuine, levels))
    curve = tuple((float(d), float(p)) for d, p in zip(genuine_knots, levels, strict=True))
    return ImpostorTail(body=body, tail=tail, genuine=curve, source=source)


def simulated_fpir(
    model: ImpostorTail,
    matrix: NDArray[np.float64],
    sizes: tuple[int, ...],
    target: float,
    rng: np.random.Generator,
    draws: int = 20,
) -> dict[int, float]:
    """Held-out FPIR of random galleries of each size at the rule's threshold: each probe row's
    own person is never in its gallery, so every probe is a stranger to it."""
    out: dict[int, float] = {}
    columns = matrix.shape[1]
    for size in sizes:
        threshold = model.threshold_distance(size, target)
        hits = []
        for _ in range(draws):
            chosen = rng.choice(columns, size=min(size, columns - 1), replace=False)
            closest = np.nanmin(matrix[:, chosen], axis=1)
            # Rows whose own person was drawn have one NaN fewer, never a mated distance.
            hits.append(float((closest <= threshold).mean()))
        out[size] = float(np.mean(hits))
    return out


def run_tail(data_dir: Path, *, recognizer: str | None = None) -> int:
    lfw_dir = _lfw_dir(data_dir)
    counts = people_counts(lfw_dir)
    train_people = dev_people(lfw_dir, "pairsDevTrain.txt")
    test_people = dev_people(lfw_dir, "pairsDevTest.txt")
    target = Path(__file__).resolve().parent.parent / "models" / TAIL_FILE
    existing: dict[str, Any] = json.loads(target.read_text()) if target.exists() else {}
    detector = Settings().detector
    for name in (recognizer,) if recognizer else (Settings().recognizer,):
        spec = REGISTRY[name]
        assert spec.recipe is not None
        modes: tuple[TTA, ...] = RECOGNIZER_MODES[name]
        views = tuple(sorted({i for mode in modes for i in VIEW_INDEX[mode]}))
        settings = engine_settings(detector, name)
        paths = [
            image_path(p, n) for p in train_people + test_people for n in range(1, counts[p] + 1)
        ]
        run = facegate_descriptors(lfw_dir, paths, settings, views=views)
        for mode in modes:
            descriptors = run.mode(mode, spec.recipe.normalized)
            entry = _fit_mode(
                descriptors, train_people, test_people, counts, f"{detector}+{name}", mode
            )
            existing.setdefault(spec.recipe.key, {})[mode] = entry
    target.write_text(json.dumps(existing, indent=1, sort_keys=True) + "\n")
    print(f"written to {target}")
    return 0


def _fit_mode(
    descriptors: dict[str, NDArray[np.float32]],
    train_people: list[str],
    test_people: list[str],
    counts: dict[str, int],
    engine_label: str,
    mode: str,
) -> dict[str, Any]:
    _, impostor, genuine = balanced_design(descriptors, train_people, counts)
    held_matrix, held_impostor, held_genuine = balanced_design(descriptors, test_people, counts)
    source = (
        f"LFW View 1 pairsDevTrain.txt people ({len(train_people)} people, "
        f"{len(impostor):,} impostor and {len(genuine):,} genuine distances), {engine_label}, "
        f"tta={mode}"
    )
    model = fit_model(impostor, genuine, source)
    label = f"[{engine_label} tta={mode}]"
    print(
        f"{label} u {model.tail.u:.4f} (FMR {model.tail.p_u:.2e}), xi {model.tail.xi:.4f}, "
        f"scale {model.tail.scale:.4f}"
    )
    held_out = []
    for rate in (1e-3, 1e-4, 1e-5, 1e-6):
        d = model.distance_at_rate(rate)
        row = {
            "model_fmr": rate,
            "distance": round(d, 5),
            "devtrain_fmr": float((impostor <= d).mean()),
            "devtest_fmr": float((held_impostor <= d).mean()),
            "genuine_rate_devtrain": round(model.genuine_rate(d), 4),
            "genuine_rate_devtest": float((held_genuine <= d).mean()),
        }
        held_out.append(row)
        print(
            f"{label} model FMR {rate:.0e} at distance {d:.4f}: "
            f"DevTrain {row['devtrain_fmr']:.2e}, "
            f"DevTest (held out) {row['devtest_fmr']:.2e}; genuine within: DevTest "
            f"{100 * row['genuine_rate_devtest']:.1f} %"
        )
    rng = np.random.default_rng(RNG_SEED)
    sizes = (10, 100, 900)
    simulated = {str(t): simulated_fpir(model, held_matrix, sizes, t, rng) for t in (0.01, 0.001)}
    for t, by_size in simulated.items():
        print(
            f"{label} held-out DevTest galleries at target FPIR {float(t):.1%}: "
            + ", ".join(f"N={n}: {100 * f:.2f} %" for n, f in by_size.items())
        )
    sensitivity = {}
    for alternative in P_U_ALTERNATIVES:
        other = fit_tail(impostor, alternative)
        sensitivity[f"{alternative:g}"] = {
            "xi": round(other.xi, 4),
            "scale": round(other.scale, 5),
            "distance_at_fmr_1e-6": round(other.distance_at(1e-6), 4),
            "distance_at_fmr_1e-8": round(other.distance_at(1e-8), 4),
            "devtest_fmr_at_model_1e-5": float((held_impostor <= other.distance_at(1e-5)).mean()),
        }
    print(f"{label} sensitivity to p_u: {sensitivity}")
    return {
        "body": [list(k) for k in model.body],
        "tail": {
            "u": model.tail.u,
            "p_u": model.tail.p_u,
            "xi": model.tail.xi,
            "scale": model.tail.scale,
        },
        "genuine": [list(k) for k in model.genuine],
        "source": source,
        "method": (
            "person-balanced design (one gallery image per person, up to two probes per person "
            "against every other person); body: empirical FMR at 40 log-spaced knots from 1 to "
            f"p_u={P_U:g}; tail: scipy.stats.genpareto.fit of (u - d) for d < u, loc 0; "
            "genuine: 101 quantiles of image 2 and 3 against image 1; see facegate/eval/tail.py"
        ),
        "figures": {
            "held_out": held_out,
            "held_out_people": len(test_people),
            "held_out_impostor_distances": len(held_impostor),
            "simulated_fpir_devtest": simulated,
            "p_u_sensitivity": sensitivity,
        },
    }
