"""``facegate eval ident DATA``: 1:N identification on LFW through the service, as /v1 runs it.

Protocol. People with at least two LFW images are the enrollable population; in a random order
(``--seed``) the first 100, the first 1,000 and all of them form three nested galleries. A person
is enrolled from their images 1 and 2 when they have three or more, from image 1 when they have
two; their other images are the mated probes. Strangers are the people with a single image
(never enrolled): one probe each, the same set for every gallery. Each gallery is a collection
twice, ``unknowns: false`` and ``unknowns: true``, built and searched by the service's own code
(``Enrollments.create``, ``Collections.add_enrollment``, the background ``Trainer``,
``Recognition.identify``) on a temporary SQLite store with the default settings, so the
thresholds are the ones training computes for each collection's size. Detection and embedding
of a probe are computed once and reused by the six collections it is searched in.

Figures (NIST FRTE 1:N terms). TPIR: mated probes named as their own person; FNIR = 1 - TPIR
(not named, or named as someone else); FPIR: strangers named as anyone. At the default
settings, and FNIR where the threshold is swept to FPIR 1 % and 0.1 % (the empirical quantiles
of the strangers' best scores: what the threshold *should* be, for comparison with what the rule
chose). The DET curve (FNIR against FPIR over the sweep, one line per gallery) is written as a
PNG with the figures as JSON beside it, under the data folder (``eval-ident/``) unless ``--out``
names another.

Extrapolation to galleries of 100,000 and 1,000,000 people. LFW has 1,680 enrollable people, so
larger galleries are simulated from the largest real one: with the same embeddings per person,
a gallery of N people has M = N * (M0 / N0) embeddings, and each probe meets M - M0 synthetic
impostor embeddings on top of the real ones. Their closest is drawn from the fitted impostor
tail (engine/openset.py) by inverse-CDF sampling of a minimum, d = F^-1(1 - (1 - U)^(1/n)),
exact for n i.i.d. comparisons. A mated probe is named correctly when its mated score reaches the
threshold the rule gives for M *and* beats its best real and synthetic impostors; a stranger is
named when its best real or synthetic impostor reaches it. The figures are means over five
draws. They say what the model predicts, not what a real gallery of that size would measure:
the tail beyond LFW's ~10^-7 false-match rates is an extrapolation (its sensitivity is recorded
in models/impostor_tail.json).

The impostor tail was fitted on the people of LFW View 1's pairsDevTrain.txt. They are part of
LFW's population, so the figures are also given for strangers outside that set.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from facegate.config import Settings
from facegate.engine.decode import DecodedImage
from facegate.engine.engine import FaceEngine
from facegate.engine.openset import ImpostorTail
from facegate.engine.registry import Recipe
from facegate.engine.types import DetectedFace
from facegate.errors import NoFaceFound, NoUsableFace
from facegate.eval.lfw import _lfw_dir
from facegate.eval.lfw_data import image_path
from facegate.eval.tail import dev_people, people_counts
from facegate.service.common import Tenant
from facegate.service.container import Services
from facegate.service.ports import Engine, ScoreCurve
from facegate.service.training import TrainingStatus
from facegate.store.db import Database

GALLERY_SIZES = (100, 1000)  # and the largest LFW allows
EXTRAPOLATED = (100_000, 1_000_000)
TOP_K = 5  # enough to find the mated enrollment's score for the DET curve and extrapolation
DRAWS = 5


class MemoEngine:
    """The real engine; detect and embed results are kept per image content, so a probe searched
    in several collections is detected and embedded once (its answers are the same each time)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._faces: dict[tuple[bytes, bool, bool, bool], list[DetectedFace]] = {}
        self._rows: dict[tuple[bytes, tuple[float, ...]], NDArray[np.float32]] = {}

    @property
    def ready(self) -> bool:
        return self._engine.ready

    @property
    def recipe(self) -> Recipe:
        return self._engine.recipe

    @property
    def tta(self) -> str:
        return self._engine.tta

    @property
    def calibration(self) -> ScoreCurve:
        return self._engine.calibration

    @property
    def impostor_tail(self) -> ImpostorTail | None:
        return self._engine.impostor_tail

    def warm_up(self) -> None:
        self._engine.warm_up()

    def decode(self, data: bytes) -> DecodedImage:
        return self._engine.decode(data)

    @staticmethod
    def _digest(image: DecodedImage) -> bytes:
        return hashlib.blake2b(image.rgb.tobytes(), digest_size=16).digest()

    def detect(
        self,
        image: DecodedImage,
        *,
        landmarks68: bool = False,
        quality: bool = True,
        largest_only: bool = False,
    ) -> list[DetectedFace]:
        key = (self._digest(image), landmarks68, quality, largest_only)
        if key not in self._faces:
            self._faces[key] = self._engine.detect(
                image, landmarks68=landmarks68, quality=quality, largest_only=largest_only
            )
        return self._faces[key]

    def embed(self, image: DecodedImage, faces: Sequence[DetectedFace]) -> NDArray[np.float32]:
        digest = self._digest(image)
        missing = [f for f in faces if (digest, f.box) not in self._rows]
        if missing:
            for face, row in zip(missing, self._engine.embed(image, missing), strict=True):
                self._rows[(digest, face.box)] = row
        rows = [self._rows[(digest, f.box)] for f in faces]
        return np.stack(rows) if rows else np.zeros((0, self.recipe.dimension), np.float32)

    def embed_many(self, items: Sequence[tuple[DecodedImage, DetectedFace]]) -> NDArray[np.float32]:
        return self._engine.embed_many(items)

    def similarities(
        self, query: NDArray[np.float32], gallery: NDArray[np.float32]
    ) -> NDArray[np.float64]:
        return self._engine.similarities(query, gallery)

    def spoof_probability(self, image: DecodedImage, face: DetectedFace) -> float:
        return self._engine.spoof_probability(image, face)


@dataclass
class Probe:
    path: str
    person: str | None  # the enrolled person it shows; None for a stranger


@dataclass
class Answer:
    named: str | None  # the person identify named at the collection's threshold
    top: str | None  # the rank-1 person, named or not
    best: float  # the best score
    mated: float  # the mated enrollment's score (0 when not in the top k, or a stranger)
    impostor: float  # the best score of anyone else
    unknown_probability: float
    correct_top: bool = False  # the rank-1 person is the probe's own


@dataclass
class Gallery:
    people: list[str]
    collections: dict[bool, str]  # unknowns -> collection id
    thresholds: dict[bool, float]
    embeddings: int


def run_ident(
    data_dir: Path,
    *,
    seed: int = 10,
    out: Path | None = None,
    people: int = 0,
    engine: Engine | None = None,
) -> int:
    """Print the figures, write the DET curve and the JSON; ``people`` > 0 caps the enrollable
    population and the strangers (at twice as many) for a quick run. ``engine``: the settings'
    FaceEngine unless given (tests pass a fake)."""
    # Training logs one line per retrain: thousands here, none of them news.
    training_log = logging.getLogger("facegate.training")
    level = training_log.level
    training_log.setLevel(logging.ERROR)
    try:
        return _run(data_dir, seed, out, people, engine)
    finally:
        training_log.setLevel(level)


def _run(data_dir: Path, seed: int, out: Path | None, people: int, engine: Engine | None) -> int:
    lfw_dir = _lfw_dir(data_dir)
    counts = people_counts(lfw_dir)
    population = sorted(p for p, n in counts.items() if n >= 2)
    random.Random(seed).shuffle(population)
    strangers = sorted(p for p, n in counts.items() if n == 1)
    if people:
        population = population[:people]
        strangers = random.Random(seed).sample(strangers, min(len(strangers), 2 * people))
    fit_people = set(dev_people(lfw_dir, "pairsDevTrain.txt"))
    settings = Settings()
    folder = out or settings.data_dir / "eval-ident"
    folder.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="facegate-ident-") as tmp:
        store = settings.model_copy(update={"database_url": f"sqlite:///{tmp}/ident.db"})
        real = engine or FaceEngine(store)
        real.warm_up()
        memo = MemoEngine(real)
        services = Services.build(store, memo, Database.from_settings(store))
        tenant = services.keys.authenticate(services.keys.create("eval").secret)
        enrolled, refused = _enroll(services, tenant, lfw_dir, population, counts)
        print(
            f"enrolled {len(enrolled)} of {len(population)} people with >= 2 images "
            f"({sum(len(v[1]) for v in enrolled.values())} images; {len(refused)} refused by "
            f"the quality gate); {time.perf_counter() - started:.0f} s",
            flush=True,
        )
        order = [p for p in population if p in enrolled]
        sizes = [s for s in GALLERY_SIZES if s < len(order)] + [len(order)]
        galleries = _galleries(services, tenant, order, sizes, enrolled)
        stranger_probes = [Probe(image_path(p, 1), None) for p in strangers]
        results: dict[str, Any] = {
            "settings": {
                "identify_target_fpir": settings.identify_target_fpir,
                "unknowns_target_fpir": settings.unknowns_target_fpir,
                "recipe": memo.recipe.key,
                "tta": memo.tta,
                "seed": seed,
            },
            "galleries": {},
        }
        answers_at: dict[int, tuple[list[Answer], list[Answer]]] = {}
        for size, gallery in zip(sizes, galleries, strict=True):
            mated_probes = [
                Probe(image_path(p, n), p)
                for p in gallery.people
                for n in range(1, counts[p] + 1)
                if n not in enrolled[p][1]
            ]
            figures, answers = _measure(
                services, tenant, lfw_dir, gallery, mated_probes, stranger_probes, enrolled
            )
            stranger_fit = [p.path.split("/")[1] in fit_people for p in stranger_probes]
            plain_strangers = answers[False][1]
            figures["fpir_default_strangers_outside_fit_people"] = _rate(
                [
                    a.named is not None
                    for a, f in zip(plain_strangers, stranger_fit, strict=True)
                    if not f
                ]
            )
            figures["strangers_outside_fit_people"] = int(sum(not f for f in stranger_fit))
            results["galleries"][str(size)] = figures
            answers_at[size] = answers[False]
            _print_gallery(size, figures)
        largest = sizes[-1]
        results["extrapolated"] = _extrapolate(
            memo, galleries[-1], answers_at[largest], settings, seed
        )
        services.trainer.shutdown()
        services.database.dispose()
    results["seconds"] = round(time.perf_counter() - started)
    png = folder / "det.png"
    _det_plot(answers_at, results, png)
    (folder / "ident.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"DET curve: {png}; figures: {folder / 'ident.json'}")
    return 0


def _enroll(
    services: Services, tenant: Tenant, lfw_dir: Path, population: list[str], counts: dict[str, int]
) -> tuple[dict[str, tuple[str, tuple[int, ...]]], dict[str, str]]:
    """person -> (enrollment id, image numbers enrolled); refused people with the reason."""
    enrolled: dict[str, tuple[str, tuple[int, ...]]] = {}
    refused: dict[str, str] = {}
    for index, person in enumerate(population):
        numbers = (1, 2) if counts[person] >= 3 else (1,)
        # One image of two refused by the gate: enroll from the other, as a user would.
        for attempt in (numbers, *((n,) for n in numbers if len(numbers) > 1)):
            images = {
                f"img{i}": (lfw_dir / image_path(person, n)).read_bytes()
                for i, n in enumerate(attempt)
            }
            try:
                enrollment_id = services.enrollments.create(tenant, images, name=person)
            except NoUsableFace as exc:
                refused[person] = exc.message
                continue
            enrolled[person] = (enrollment_id, attempt)
            refused.pop(person, None)
            break
        if (index + 1) % 200 == 0:
            print(f"  enrolled {index + 1}/{len(population)} people", flush=True)
    return enrolled, refused


def _galleries(
    services: Services,
    tenant: Tenant,
    order: list[str],
    sizes: list[int],
    enrolled: dict[str, tuple[str, tuple[int, ...]]],
) -> list[Gallery]:
    """Six collections (each size, plain and unknowns), filled by PUT /v1/collection's code."""
    built = []
    for size in sizes:
        collections = {
            unknowns: services.collections.create(
                tenant, f"lfw-{size}{'-unknowns' if unknowns else ''}", unknowns=unknowns
            )
            for unknowns in (False, True)
        }
        for person in order[:size]:
            for collection_id in collections.values():
                services.collections.add_enrollment(tenant, collection_id, enrolled[person][0])
        built.append(Gallery(order[:size], collections, {}, 0))
    deadline = time.monotonic() + 3600
    for gallery in built:
        for unknowns, collection_id in gallery.collections.items():
            while True:
                view = next(v for v in services.collections.list(tenant) if v.id == collection_id)
                if view.status is TrainingStatus.READY and view.plan is not None:
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"collection {collection_id} never finished training")
                time.sleep(0.2)
            gallery.thresholds[unknowns] = view.plan.threshold
            gallery.embeddings = view.plan.embeddings
            if view.plan.warning:
                print(f"  warning for {len(gallery.people)} people: {view.plan.warning}")
    return built


def _identify(
    services: Services,
    tenant: Tenant,
    collection_id: str,
    data: bytes,
    person_of: dict[str, str],
    mate: str | None,
) -> Answer:
    try:
        result = services.recognition.identify(tenant, collection_id, data, top_k=TOP_K)[0]
    except NoFaceFound:
        return Answer(None, None, 0.0, 0.0, 0.0, 1.0, False)
    people = [(person_of[c.enrollment_id], c.score) for c in result.candidates]
    mated = next((s for p, s in people if p == mate), 0.0)
    impostor = next((s for p, s in people if p != mate), 0.0)
    return Answer(
        named=person_of[result.identified.enrollment_id] if result.identified else None,
        top=people[0][0] if people else None,
        best=result.score,
        mated=mated,
        impostor=impostor,
        unknown_probability=result.unknown_probability,
        correct_top=bool(people) and mate is not None and people[0][0] == mate,
    )


def _measure(
    services: Services,
    tenant: Tenant,
    lfw_dir: Path,
    gallery: Gallery,
    mated: list[Probe],
    strangers: list[Probe],
    enrolled: dict[str, tuple[str, tuple[int, ...]]],
) -> tuple[dict[str, Any], dict[bool, tuple[list[Answer], list[Answer]]]]:
    person_of = {enrolled[p][0]: p for p in gallery.people}
    answers: dict[bool, tuple[list[Answer], list[Answer]]] = {}
    figures: dict[str, Any] = {
        "people": len(gallery.people),
        "embeddings": gallery.embeddings,
        "mated_probes": len(mated),
        "stranger_probes": len(strangers),
    }
    for unknowns, collection_id in gallery.collections.items():
        lists: tuple[list[Answer], list[Answer]] = ([], [])
        for kind, probes in enumerate((mated, strangers)):
            for index, probe in enumerate(probes):
                data = (lfw_dir / probe.path).read_bytes()
                lists[kind].append(
                    _identify(services, tenant, collection_id, data, person_of, probe.person)
                )
                if (index + 1) % 2000 == 0:
                    print(f"    identified {index + 1}/{len(probes)}", flush=True)
        answers[unknowns] = lists
        label = "unknowns" if unknowns else "default"
        figures[label] = _operating_point(lists[0], mated, lists[1])
        figures[label]["threshold"] = gallery.thresholds[unknowns]
        # Who the named strangers were named as: LFW has people under two names, whose
        # "false positives" are the right person (read them before trusting the FPIR).
        figures[label]["strangers_named_as"] = [
            [probe.path.split("/")[1], answer.named, round(answer.best, 6)]
            for probe, answer in zip(strangers, lists[1], strict=True)
            if answer.named is not None
        ]
    plain_mated, plain_strangers = answers[False]
    for fpir in (0.01, 0.001):
        figures[f"fnir_at_fpir_{fpir:g}"] = _fnir_at_fpir(plain_mated, plain_strangers, fpir)
    figures["rank1"] = _rate([a.correct_top for a in plain_mated])
    return figures, answers


def _rate(flags: Sequence[bool]) -> float:
    return float(np.mean(flags)) if len(flags) else float("nan")


def _operating_point(
    mated_answers: list[Answer], mated: list[Probe], stranger_answers: list[Answer]
) -> dict[str, Any]:
    tpir = _rate([a.named == p.person for a, p in zip(mated_answers, mated, strict=True)])
    return {
        "tpir": tpir,
        "fnir": 1.0 - tpir,
        "fpir": _rate([a.named is not None for a in stranger_answers]),
        "strangers_named": sum(a.named is not None for a in stranger_answers),
        "mean_unknown_probability_mated": float(
            np.mean([a.unknown_probability for a in mated_answers])
        ),
        "mean_unknown_probability_strangers": float(
            np.mean([a.unknown_probability for a in stranger_answers])
        ),
    }


def _correct_scores(mated_answers: list[Answer]) -> NDArray[np.float64]:
    """Per mated probe, the score at which it would be named correctly (-1: never, rank-1 wrong)."""
    return np.array([a.best if a.correct_top else -1.0 for a in mated_answers])


def _fnir_at_fpir(
    mated_answers: list[Answer], strangers: list[Answer], fpir: float
) -> dict[str, float]:
    best = np.sort([a.best for a in strangers])[::-1]
    allowed = int(np.floor(fpir * len(best)))
    # The lowest threshold at which at most `allowed` strangers are named.
    threshold = float(np.nextafter(best[allowed], np.inf)) if allowed < len(best) else 0.0
    correct = _correct_scores(mated_answers)
    return {
        "threshold": threshold,
        "fnir": float(np.mean(correct < threshold)),
        "fpir": float(np.mean(best >= threshold)),
    }


def _det(
    mated_answers: list[Answer], strangers: list[Answer]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    correct = _correct_scores(mated_answers)
    best = np.array([a.best for a in strangers])
    thresholds = np.unique(np.concatenate([best, correct[correct >= 0]]))
    fpir = np.array([(best >= t).mean() for t in thresholds])
    fnir = np.array([(correct < t).mean() for t in thresholds])
    return fpir, fnir


def _print_gallery(size: int, figures: dict[str, Any]) -> None:
    for label in ("default", "unknowns"):
        point = figures[label]
        print(
            f"[gallery {size} people, {figures['embeddings']} embeddings, {label}] threshold "
            f"{point['threshold']:.6f}: TPIR {100 * point['tpir']:.2f} %, FNIR "
            f"{100 * point['fnir']:.2f} %, FPIR {100 * point['fpir']:.3f} % "
            f"({point['strangers_named']} of {figures['stranger_probes']} strangers named); "
            f"mean unknown_probability: mated {point['mean_unknown_probability_mated']:.3f}, "
            f"strangers {point['mean_unknown_probability_strangers']:.3f}"
        )
        if label == "unknowns":
            named = ", ".join(f"{s} as {p} ({v:.6f})" for s, p, v in point["strangers_named_as"])
            print(f"    strangers named ({label}): {named}")
    print(
        f"[gallery {size}] rank-1 {100 * figures['rank1']:.2f} % of {figures['mated_probes']} "
        "mated probes; FNIR at FPIR 1 %: "
        f"{100 * figures['fnir_at_fpir_0.01']['fnir']:.2f} % (threshold "
        f"{figures['fnir_at_fpir_0.01']['threshold']:.6f}), at FPIR 0.1 %: "
        f"{100 * figures['fnir_at_fpir_0.001']['fnir']:.2f} % (threshold "
        f"{figures['fnir_at_fpir_0.001']['threshold']:.6f}); FPIR at the default for strangers "
        "outside the fit's people: "
        f"{100 * figures['fpir_default_strangers_outside_fit_people']:.3f} % of "
        f"{figures['strangers_outside_fit_people']}",
        flush=True,
    )


def _extrapolate(
    engine: MemoEngine,
    gallery: Gallery,
    answers: tuple[list[Answer], list[Answer]],
    settings: Settings,
    seed: int,
) -> dict[str, Any]:
    """TPIR and FPIR of larger galleries with synthetic impostors from the fitted tail."""
    tail = engine.impostor_tail
    if tail is None:
        print("no impostor-tail model ships for this recipe: nothing to extrapolate")
        return {}
    mated_answers, strangers = answers
    per_person = gallery.embeddings / len(gallery.people)
    rng = np.random.default_rng(seed)
    mated_scores = np.array([a.mated for a in mated_answers])
    real_impostor = np.array([a.impostor for a in mated_answers])
    stranger_best = np.array([a.best for a in strangers])
    out: dict[str, Any] = {}
    for size in EXTRAPOLATED:
        embeddings = round(size * per_person)
        extra = embeddings - gallery.embeddings
        row: dict[str, Any] = {"people": size, "embeddings": embeddings}
        for label, target in (
            ("default", settings.identify_target_fpir),
            ("unknowns", settings.unknowns_target_fpir),
        ):
            distance = tail.threshold_distance(embeddings, target)
            threshold = float(engine.calibration.score(distance))
            tpirs, fpirs = [], []
            for _ in range(DRAWS):
                synthetic = _closest_synthetic(tail, engine, extra, len(mated_scores), rng)
                named = (mated_scores >= threshold) & (
                    mated_scores > np.maximum(real_impostor, synthetic)
                )
                tpirs.append(float(named.mean()))
                synthetic = _closest_synthetic(tail, engine, extra, len(stranger_best), rng)
                fpirs.append(float((np.maximum(stranger_best, synthetic) >= threshold).mean()))
            row[label] = {
                "target_fpir": target,
                "threshold": threshold,
                "expected_tpir_model": tail.genuine_rate(distance),
                "tpir": float(np.mean(tpirs)),
                "fpir": float(np.mean(fpirs)),
            }
            print(
                f"[extrapolated: {size:,} people, {embeddings:,} embeddings, {label}] target "
                f"FPIR {target:.1%}: threshold {threshold:.6f}, TPIR {100 * np.mean(tpirs):.2f} "
                f"%, simulated FPIR {100 * np.mean(fpirs):.3f} %",
                flush=True,
            )
        out[str(size)] = row
    return out


def _closest_synthetic(
    tail: ImpostorTail, engine: MemoEngine, comparisons: int, probes: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Per probe, the score of the closest of ``comparisons`` impostors drawn from the tail."""
    if comparisons <= 0:
        return np.zeros(probes)
    u = rng.random(probes)
    rates = -np.expm1(np.log1p(-u) / comparisons)
    distances = np.array([tail.distance_at_rate(float(r)) for r in rates], np.float32)
    return np.asarray(engine.calibration.score(distances), np.float64)


def _det_plot(
    answers_at: dict[int, tuple[list[Answer], list[Answer]]],
    results: dict[str, Any],
    png: Path,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.8), dpi=120)
    for size, (mated_answers, strangers) in answers_at.items():
        fpir, fnir = _det(mated_answers, strangers)
        keep = (fpir > 0) & (fnir > 0)
        line = axes.plot(fpir[keep], fnir[keep], label=f"gallery {size:,}")[0]
        for label, marker in (("default", "o"), ("unknowns", "s")):
            point = results["galleries"][str(size)][label]
            axes.plot(
                max(point["fpir"], 1e-4), max(point["fnir"], 1e-4), marker, color=line.get_color()
            )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("FPIR (strangers named)")
    axes.set_ylabel("FNIR (mated probes not named correctly)")
    axes.set_title(
        "LFW 1:N through the service\n(o: default, s: unknowns; a rate of 0 drawn at 1e-4)",
        fontsize=10,
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.tight_layout()
    figure.savefig(png)
    plt.close(figure)
