"""The file-based commands of the ``facegate`` CLI, on :class:`facegate.client.Client`.

``facegate detect|enroll|match|identify|collections|enrollments``: images are files or folders
(a folder stands for the images directly in it), results go to stdout (``--json`` for
programs), progress and errors to stderr. Exit status: 0 done, 1 a refusal or an unreachable server.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from facegate.client import (
    Client,
    Collection,
    Enrollment,
    Face,
    FacegateClientError,
    Identification,
    TransportError,
    Unauthorized,
)
from facegate.config import Settings

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
MAX_IMAGES_PER_REQUEST = 10


class CommandError(Exception):
    """A refusal the command explains in one line (exit status 1)."""


# Inputs ------------------------------------------------------------------------------------


def expand_images(arguments: Sequence[Path]) -> tuple[list[Path], bool]:
    """The image files named, a folder standing for its images (sorted); whether a folder was
    among them (then progress is shown)."""
    images: list[Path] = []
    folder = False
    for path in arguments:
        if path.is_dir():
            folder = True
            found = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
            if not found:
                raise CommandError(f"{path}: no {'/'.join(IMAGE_SUFFIXES)} image in this folder")
            images += found
        elif path.is_file():
            images.append(path)
        else:
            raise CommandError(f"{path}: no such file or folder")
    return images, folder


class Progress:
    """``[3/20] photo.jpg`` on stderr: rewritten in place on a terminal, one line otherwise."""

    def __init__(self, total: int, enabled: bool, stream: TextIO | None = None) -> None:
        self.total = total
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.done = 0
        self._tty = self.stream.isatty()

    def step(self, label: str) -> None:
        self.done += 1
        if not self.enabled:
            return
        line = f"[{self.done}/{self.total}] {label}"
        if self._tty:
            self.stream.write(f"\r\x1b[K{line}")
            if self.done == self.total:
                self.stream.write("\n")
        else:
            self.stream.write(f"{line}\n")
        self.stream.flush()


# Output ------------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def print_json(value: Any) -> None:
    print(json.dumps(_plain(value), indent=2, ensure_ascii=False))


def _face_line(index: int, face: Face) -> str:
    x1, y1, x2, y2 = (round(v) for v in face.box)
    text = f"  face {index}: box ({x1}, {y1}) - ({x2}, {y2}), confidence {face.confidence:.3f}"
    if face.quality is not None:
        q = face.quality
        text += (
            f", eyes {q.eye_distance_px:.0f} px apart, sharpness {q.sharpness:.0f}, "
            f"yaw {q.yaw_deg:.0f}°, pitch {q.pitch_deg:.0f}°"
        )
    if face.landmarks is not None:
        text += f", {len(face.landmarks)} landmarks"
    return text


def _who(result: Identification) -> str:
    if result.identified:
        name = result.name if result.name is not None else "(no name)"
        return f"{name} (enrollment {result.enrollment_id}, score {result.score:.4f})"
    return f"unknown (best score {result.score:.4f})"


def _identification_lines(label: str, result: Identification) -> list[str]:
    lines = [f"{label}: {_who(result)}"]
    for i, face in enumerate(result.faces, 1):
        x1, y1, x2, y2 = (round(v) for v in face.box or (0, 0, 0, 0))
        lines.append(f"  face {i} at ({x1}, {y1}) - ({x2}, {y2}): {_who(face)}")
    for candidate in result.candidates:
        name = candidate.name if candidate.name is not None else "(no name)"
        lines.append(
            f"  candidate {name} (enrollment {candidate.enrollment_id}), "
            f"score {candidate.score:.4f}"
        )
    return lines


def _collection_line(entry: Collection) -> str:
    trained = entry.trained_at.isoformat(timespec="seconds") if entry.trained_at else "never"
    # The count, not the listed ids: a large collection lists one page of them.
    members = entry.enrollment_count
    flags = ", unknowns" if entry.unknowns else ""
    return (
        f"{entry.id}\t{entry.name}\t{entry.status}{flags}\t"
        f"{members} enrollment{'s' * (members != 1)}\ttrained {trained}"
    )


def _enrollment_line(entry: Enrollment) -> str:
    name = entry.name if entry.name is not None else "(no name)"
    collections = ", ".join(entry.collection_ids) or "no collection"
    recipes = ", ".join(
        f"{r.images} by {r.recipe}" + (f" tta={r.tta}" if r.tta else "") for r in entry.recipes
    )
    return (
        f"{entry.id}\t{name}\t{entry.images} image{'s' * (entry.images != 1)}\t"
        f"{collections}\t{recipes or 'no embeddings'}"
    )


# Commands ----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """Run one client command; refusals become one line on stderr and exit status 1."""
    command = COMMANDS[args.client_command]
    settings = Settings()
    url = args.url or settings.api_url
    key = args.key or (settings.api_key.get_secret_value() if settings.api_key else None)
    try:
        with Client(url, api_key=key, timeout=args.timeout) as client:
            return command(client, args)
    except CommandError as exc:
        return _fail(args, str(exc))
    except Unauthorized as exc:
        hint = "" if key else " (pass --key, or set FACEGATE_API_KEY)"
        return _fail(args, f"{exc.message}{hint}")
    except TransportError as exc:
        return _fail(args, f"{exc.message} (is `facegate serve` running there? see --url)")
    except FacegateClientError as exc:
        return _fail(args, exc.message)


def _fail(args: argparse.Namespace, message: str) -> int:
    print(f"facegate {args.command}: {message}", file=sys.stderr)
    return 1


@contextmanager
def _per_image(failures: list[str], path: Path) -> Iterator[None]:
    """One image's refusal is reported and the others still run (exit status 1 at the end)."""
    try:
        yield
    except (FacegateClientError, OSError) as exc:
        if isinstance(exc, TransportError | Unauthorized):
            raise  # nothing else will work either
        message = exc.message if isinstance(exc, FacegateClientError) else str(exc)
        failures.append(path.as_posix())
        print(f"{path}: {message}", file=sys.stderr)


def cmd_detect(client: Client, args: argparse.Namespace) -> int:
    images, folder = expand_images(args.images)
    progress = Progress(len(images), folder)
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    for path in images:
        with _per_image(failures, path):
            faces = client.detect(path, landmarks=args.landmarks)
            results.append({"image": path.as_posix(), "faces": faces})
            if not args.json:
                count = len(faces)
                print(f"{path}: {count} face{'s' * (count != 1)}")
                for i, face in enumerate(faces, 1):
                    print(_face_line(i, face))
        progress.step(path.name)
    if args.json:
        print_json(results)
    return 1 if failures else 0


def resolve_collection(client: Client, value: str, *, create: bool) -> tuple[str, bool]:
    """The collection ``value`` names, by id or else by name (so a script can say "Friends");
    with ``create``, a collection of that name is made when there is none. Whether it was."""
    # Ids and names are enough here: no member ids (a large collection has many).
    entries = client.collections(enrollments_limit=0)
    if any(entry.id == value for entry in entries):
        return value, False
    named = [entry for entry in entries if entry.name == value]
    if len(named) == 1:
        return named[0].id, False
    if named:
        ids = ", ".join(entry.id for entry in named)
        raise CommandError(f"{len(named)} collections are named {value!r}; pass one's id: {ids}")
    if not create:
        raise CommandError(
            f"no collection with the id or name {value!r}: `facegate collections list` shows yours"
        )
    return client.create_collection(value), True


def cmd_enroll(client: Client, args: argparse.Namespace) -> int:
    images, folder = expand_images(args.images)
    collection: str | None = None
    created = False
    if args.collection is not None:
        collection, created = resolve_collection(client, args.collection, create=True)
        if created:
            print(f"created collection {args.collection!r}: {collection}", file=sys.stderr)
    batches = [
        images[i : i + MAX_IMAGES_PER_REQUEST]
        for i in range(0, len(images), MAX_IMAGES_PER_REQUEST)
    ]
    progress = Progress(len(batches), folder and len(batches) > 1)
    try:
        enrollment_id = client.enroll(batches[0], name=args.name, collection_id=collection)
        progress.step(f"{len(batches[0])} images")
        # The server takes ten images per request: the rest are added to the same enrollment.
        for batch in batches[1:]:
            client.add_images(enrollment_id, batch)
            progress.step(f"{len(batch)} images")
    except OSError as exc:
        raise CommandError(str(exc)) from exc
    trained = collection is not None and not args.no_train
    if trained:
        # Identify searches what training last saw: train now, so the person is found at once.
        assert collection is not None
        client.train(collection, wait=True, timeout=args.timeout)
        print(f"collection {collection} trained", file=sys.stderr)
    if args.json:
        print_json(
            {
                "enrollment_id": enrollment_id,
                "name": args.name,
                "collection_id": collection,
                "collection_created": created,
                "trained": trained,
                "images": [p.as_posix() for p in images],
            }
        )
    else:
        where = f" in collection {collection}" if collection else ""
        count = len(images)
        print(
            f"enrolled {args.name!r} from {count} image{'s' * (count != 1)}{where}: "
            f"enrollment {enrollment_id}"
        )
    return 0


def cmd_match(client: Client, args: argparse.Namespace) -> int:
    try:
        result = client.match(args.image, args.enrollment, threshold=args.threshold)
    except OSError as exc:
        raise CommandError(str(exc)) from exc
    if args.json:
        print_json(
            {
                "image": args.image.as_posix(),
                "enrollment_id": args.enrollment,
                "match": result.is_match,
                "best_score": result.best_score,
                "scores": result.scores,
                "matches": result.matches,
            }
        )
    else:
        verdict = "match" if result.is_match else "no match"
        count = len(result.scores)
        print(
            f"{args.image}: {verdict} with enrollment {args.enrollment} "
            f"(best score {result.best_score:.4f} over {count} "
            f"embedding{'s' * (count != 1)})"
        )
    return 0 if result.is_match or not args.exit_code else 3


def cmd_identify(client: Client, args: argparse.Namespace) -> int:
    images, folder = expand_images(args.images)
    progress = Progress(len(images), folder)
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    collection, _ = resolve_collection(client, args.collection, create=False)
    for path in images:
        with _per_image(failures, path):
            result = client.identify(path, collection, top_k=args.top_k, all_faces=args.all_faces)
            results.append({"image": path.as_posix(), **_plain(result)})
            if not args.json:
                print("\n".join(_identification_lines(str(path), result)))
        progress.step(path.name)
    if args.json:
        print_json(results)
    return 1 if failures else 0


def cmd_collections_list(client: Client, args: argparse.Namespace) -> int:
    entries = client.collections()
    if args.json:
        print_json(entries)
    elif not entries:
        print("no collections yet: facegate collections create NAME")
    else:
        for entry in entries:
            print(_collection_line(entry))
    return 0


def cmd_collections_create(client: Client, args: argparse.Namespace) -> int:
    collection_id = client.create_collection(args.name, unknowns=args.unknowns)
    if args.json:
        print_json({"collection_id": collection_id, "name": args.name, "unknowns": args.unknowns})
    else:
        print(f"created collection {args.name!r}: {collection_id}")
    return 0


def cmd_collections_add(client: Client, args: argparse.Namespace) -> int:
    for enrollment_id in args.enrollments:
        client.add_to_collection(args.collection, enrollment_id)
        if not args.json:
            print(f"added enrollment {enrollment_id} to collection {args.collection}")
    if args.wait:
        client.wait_until_trained(args.collection, timeout=args.timeout)
    if args.json:
        print_json(client.collection(args.collection))
    return 0


def cmd_collections_delete(client: Client, args: argparse.Namespace) -> int:
    client.delete_collection(args.collection)
    if args.json:
        print_json({"deleted": args.collection})
    else:
        print(f"deleted collection {args.collection} (its enrollments stay)")
    return 0


def cmd_collections_train(client: Client, args: argparse.Namespace) -> int:
    client.train(args.collection)
    if args.no_wait:
        entry = client.collection(args.collection)
    else:
        entry = client.wait_until_trained(args.collection, timeout=args.timeout)
    if args.json:
        print_json(entry)
    elif args.no_wait:
        print(f"training collection {args.collection} in the background")
    else:
        print(_collection_line(entry))
    return 0


def cmd_enrollments_delete(client: Client, args: argparse.Namespace) -> int:
    for enrollment_id in args.enrollments:
        client.delete_enrollment(enrollment_id)
        if not args.json:
            print(f"deleted enrollment {enrollment_id} and its embeddings")
    if args.json:
        print_json({"deleted": args.enrollments})
    return 0


def cmd_enrollments_list(client: Client, args: argparse.Namespace) -> int:
    if args.all:
        entries = list(client.iter_enrollments(page_size=args.limit))
        total, first = len(entries), 0
    else:
        page = client.enrollments(limit=args.limit, offset=args.offset)
        entries, total, first = list(page.enrollments), page.total, page.offset
    if args.json:
        print_json({"enrollments": entries, "total": total, "offset": first})
        return 0
    if not entries:
        print("no enrollments here" if total else "no enrollments yet: facegate enroll --name ...")
    for entry in entries:
        print(_enrollment_line(entry))
    if entries and len(entries) < total:
        # On stderr: stdout keeps one line per enrollment, for grep and cut.
        last = first + len(entries)
        more = f"; the next page: --offset {last}" if last < total else ""
        print(f"enrollments {first + 1}-{last} of {total}{more}", file=sys.stderr)
    return 0


def cmd_enrollments_show(client: Client, args: argparse.Namespace) -> int:
    entries = [client.enrollment(enrollment_id) for enrollment_id in args.enrollments]
    if args.json:
        print_json(entries)
        return 0
    for entry in entries:
        print(_enrollment_line(entry))
        print(
            f"  created {entry.created.isoformat(timespec='seconds')}, "
            f"updated {entry.updated.isoformat(timespec='seconds')}"
        )
    return 0


COMMANDS: dict[str, Callable[[Client, argparse.Namespace], int]] = {
    "detect": cmd_detect,
    "enroll": cmd_enroll,
    "match": cmd_match,
    "identify": cmd_identify,
    "collections_list": cmd_collections_list,
    "collections_create": cmd_collections_create,
    "collections_add": cmd_collections_add,
    "collections_delete": cmd_collections_delete,
    "collections_train": cmd_collections_train,
    "enrollments_list": cmd_enrollments_list,
    "enrollments_show": cmd_enrollments_show,
    "enrollments_delete": cmd_enrollments_delete,
}
