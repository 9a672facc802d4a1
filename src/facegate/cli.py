"""The ``facegate`` command line.

Operator commands: serve, keys, eval, spoof, bench. Client commands, which talk to a running
server over HTTP (``facegate.client``): detect, enroll, match, identify, collections,
enrollments.

Each subcommand imports its implementation lazily so that, e.g., ``facegate keys list`` does not
load the face models.

Every operator command resolves facegate's data folder the same way (``--data-dir`` where the
command has it, else ``FACEGATE_DATA_DIR`` or ``.env``, else ``./data`` in the current folder)
and says on stderr which folder that is and why, so that a command run from another folder
never works on a store the server does not use unnoticed.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from facegate import __version__
from facegate.config import Settings
from facegate.summary import data_folder, database_location, store_exists

DESCRIPTION = (
    "facegate: self-hosted face recognition (the Trueface v1 API). Operator commands run here "
    "(serve, keys, eval, spoof, bench); client commands talk to a running server over HTTP "
    "(detect, enroll, match, identify, collections, enrollments). "
    "`facegate COMMAND --help` describes each."
)


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if getattr(args, "data_dir", None) is not None:
        overrides["data_dir"] = args.data_dir
    return Settings(**overrides)  # type: ignore[arg-type]


def _from_option(args: argparse.Namespace) -> bool:
    return getattr(args, "data_dir", None) is not None


def _say_data_folder(command: str, settings: Settings, args: argparse.Namespace) -> None:
    folder = data_folder(settings, from_option=_from_option(args))
    print(f"facegate {command}: {folder.describe()}", file=sys.stderr)


def _cmd_serve(args: argparse.Namespace) -> int:
    from facegate.api.server import serve

    settings = _settings(args)
    overrides: dict[str, object] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    # The server's first log lines name the data folder (and every other setting).
    serve(settings.model_copy(update=overrides), data_dir_from_option=_from_option(args))
    return 0


def _cmd_keys(args: argparse.Namespace) -> int:
    from facegate.errors import FacegateError

    try:
        return _run_keys(args)
    except FacegateError as exc:  # e.g. an unknown key id: a message, not a traceback
        print(f"facegate keys: {exc.message}", file=sys.stderr)
        return 1


def _run_keys(args: argparse.Namespace) -> int:
    from facegate.service import keys

    if args.keys_command is None:
        args.help_parser.print_help()
        return 2
    settings = _settings(args)
    _say_data_folder("keys", settings, args)
    if not store_exists(settings):
        if args.keys_command != "create":
            # Reading a store that is not there would create an empty one, whose keys no
            # server knows: the mistake is almost always the folder.
            print(
                f"facegate keys: no store at {database_location(settings)}: no server has run "
                "on this data folder; pass the server's --data-dir, or set FACEGATE_DATA_DIR",
                file=sys.stderr,
            )
            return 1
        print(
            f"facegate keys: a new, empty store is made at {database_location(settings)}; "
            "start the server on the same data folder",
            file=sys.stderr,
        )
    if args.keys_command == "create":
        created = keys.create_key(settings, args.name)
        print(f"API key for {args.name!r} (id {created.key_id}); it is shown only this once:")
        print(created.secret)
    elif args.keys_command == "list":
        for info in keys.list_keys(settings):
            state = "revoked" if info.revoked else "active"
            print(f"{info.key_id}\t{info.name}\t{state}\t{info.created.isoformat()}")
    else:
        keys.revoke_key(settings, args.key_id)
        print(f"key {args.key_id} revoked")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    if args.eval_command is None:
        args.help_parser.print_help()
        return 2
    from facegate.eval.report import reporting

    settings = Settings()
    _say_data_folder(f"eval {args.eval_command}", settings, args)
    target: Path = args.json or data_folder(settings).path / "eval" / f"{args.eval_command}.json"
    with reporting(f"eval {args.eval_command}", list(args.argv), target):
        return _run_eval(args)


def _run_eval(args: argparse.Namespace) -> int:
    if args.eval_command == "lfw":
        from facegate.eval.lfw import run_lfw

        return run_lfw(
            args.data_dir_arg,
            folds=args.folds,
            limit=args.limit,
            peer=args.peer,
            backend=args.backend,
            detector=args.detector,
            recognizer=args.recognizer,
            tta=args.tta,
            product=not args.engine_only,
        )
    if args.eval_command == "calibrate":
        from facegate.eval.lfw import run_calibrate

        return run_calibrate(args.data_dir_arg, backend=args.backend, recognizer=args.recognizer)
    if args.eval_command == "tail":
        from facegate.eval.tail import run_tail

        return run_tail(args.data_dir_arg, recognizer=args.recognizer)
    if args.eval_command == "ident":
        from facegate.eval.ident import run_ident

        return run_ident(args.data_dir_arg, seed=args.seed, out=args.out, people=args.people)
    if args.eval_command == "parity":
        from facegate.eval.parity import run_parity

        return run_parity(args.data_dir_arg, faces=args.faces)
    if args.eval_command == "detect":
        from facegate.eval.detection import run_detect

        return run_detect(args.data_dir_arg, limit=args.limit, peer=args.peer)
    from facegate.eval.spoof import run_spoof_eval

    return int(run_spoof_eval(args.data_dir_arg))


def _cmd_spoof(args: argparse.Namespace) -> int:
    if args.spoof_command is None:
        args.help_parser.print_help()
        return 2
    from facegate.spoof.train import run_train

    return int(run_train(args.data_dir_arg, out=args.out))


def _cmd_bench(args: argparse.Namespace) -> int:
    if (args.data_dir_arg == "scale") != (args.scale_data is not None):
        args.help_parser.error(
            "the data folder follows 'scale' ('bench scale DATA_DIR') and nothing else"
        )
    if args.data_dir_arg == "scale":
        return _run_bench_scale(args)
    if args.data_dir_arg == "load":
        from facegate.eval.load_bench import run_load_bench

        _, many = run_load_bench(
            clients=args.clients,
            seconds=args.seconds,
            max_requests=args.max_requests,
            single_seconds=min(args.seconds, 20.0),
            honour_retry_after=not args.hammer,
        )
        # The goal (issue 12): no 5xx but 503, every 503 with Retry-After.
        return int(many.server_errors > 0 or many.bad_retry_after > 0)
    if args.data_dir_arg == "memory":
        from facegate.eval.memory_bench import run_memory_bench

        return run_memory_bench()
    if args.data_dir_arg == "faults":
        from facegate.eval.fault_bench import run_fault_bench

        return run_fault_bench(rounds=args.rounds)
    _say_data_folder("bench", Settings(), args)
    if args.http:
        from facegate.eval.http_bench import run_http_bench

        return run_http_bench(args.data_dir_arg)
    if args.detector:
        from facegate.eval.detector_bench import run_detector_bench

        return run_detector_bench(args.data_dir_arg, repeats=args.repeats)
    from facegate.eval.bench import run_bench

    return run_bench(args.data_dir_arg, repeats=args.repeats)


def _run_bench_scale(args: argparse.Namespace) -> int:
    from facegate.eval.report import reporting
    from facegate.eval.scale_bench import PROBES, run_scale_bench

    settings = Settings()
    _say_data_folder("bench scale", settings, args)
    target: Path = args.out or data_folder(settings).path / "eval-scale" / "scale.json"
    with reporting("bench scale", list(args.argv), target):
        run_scale_bench(
            args.scale_data,
            sizes=args.sizes,
            backends=args.backends,
            probes=PROBES if args.probes is None else args.probes,
            seed=args.seed,
            work=args.work,
            warm_identifies=args.warm_identifies,
        )
    return 0


def _cmd_client(args: argparse.Namespace) -> int:
    if args.client_command is None:
        args.help_parser.print_help()
        return 2
    from facegate.client.commands import run

    return run(args)


_LIVE_BENCHES = ("load", "faults", "memory")
# Benches named first, their data folder second ("bench scale DATA_DIR").
_NAMED_BENCHES = ("scale",)


def _bench_target(value: str) -> Path | str:
    """A data folder, or the name of a bench: one that needs none (it starts its own server),
    or one whose data folder follows its name."""
    return value if value in (*_LIVE_BENCHES, *_NAMED_BENCHES) else _existing_folder(value)


def _sizes(value: str) -> list[int]:
    try:
        sizes = [int(part.replace("_", "")) for part in value.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value}: a comma-separated list of sizes") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{value}: sizes are whole numbers of 1 or more")
    return sizes


def _backends(value: str) -> list[str]:
    names = [part.strip() for part in value.split(",") if part.strip()]
    unknown = sorted(set(names) - {"sqlite", "postgresql"})
    if not names or unknown:
        raise argparse.ArgumentTypeError(f"{value}: a comma-separated list of sqlite, postgresql")
    return list(dict.fromkeys(names))


def _existing_folder(value: str) -> Path:
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value}: no such folder (the evaluation data folder)")
    return path


def _page_size(value: str) -> int:
    size = int(value)
    if not 1 <= size <= 500:
        raise argparse.ArgumentTypeError(f"{value}: a page holds 1 to 500 enrollments")
    return size


def _help_when_bare(parser: argparse.ArgumentParser, func: object) -> None:
    """A command group run without its subcommand prints its help (not "required: ...")."""
    parser.set_defaults(func=func, help_parser=parser)


def _client_options() -> argparse.ArgumentParser:
    """Options shared by every client command."""
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("server")
    group.add_argument(
        "--url",
        help="the server's root URL (default: FACEGATE_API_URL, else http://127.0.0.1:8085)",
    )
    group.add_argument(
        "--key",
        help="the API key to send (default: FACEGATE_API_KEY); `facegate keys create` makes one",
    )
    group.add_argument(
        "--json", action="store_true", help="print the results as JSON (for programs)"
    )
    group.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds to wait for each answer, and for training (default: 120)",
    )
    return common


def _add_client_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    common = _client_options()
    images_help = "image files (JPEG, PNG, WebP) or folders of them"

    detect = sub.add_parser(
        "detect", parents=[common], help="detect the faces in images (POST /v1/facedetect)"
    )
    detect.add_argument("images", nargs="+", type=Path, metavar="IMG", help=images_help)
    detect.add_argument(
        "--landmarks", action="store_true", help="also fetch the 68 landmarks of each face"
    )
    detect.set_defaults(func=_cmd_client, client_command="detect")

    enroll = sub.add_parser(
        "enroll",
        parents=[common],
        help="enroll one person from images of them (POST /v1/enroll)",
        description="Enroll one person: every image holds them (the largest face is used). "
        "More than ten images are sent ten at a time to the same enrollment.",
    )
    enroll.add_argument(
        "images", nargs="+", type=Path, metavar="IMG", help=f"{images_help}, all of this person"
    )
    enroll.add_argument("--name", required=True, help="the person's name, returned by identify")
    enroll.add_argument(
        "--collection",
        metavar="ID_OR_NAME",
        help="also add the enrollment to this collection (an id, or a name: a collection of "
        "that name is created if there is none), then train it",
    )
    enroll.add_argument(
        "--no-train",
        action="store_true",
        help="with --collection: do not train it now (identify sees the person after training)",
    )
    enroll.set_defaults(func=_cmd_client, client_command="enroll")

    match = sub.add_parser(
        "match", parents=[common], help="1:1: is this the enrolled person? (POST /v1/match)"
    )
    match.add_argument("image", type=Path, metavar="IMG", help="an image file (largest face)")
    match.add_argument("--enrollment", required=True, metavar="ID", help="the enrollment id")
    match.add_argument(
        "--threshold", type=float, help="the score a match needs, 0 to 1 (server default: 0.5)"
    )
    match.add_argument(
        "--exit-code", action="store_true", help="exit with status 3 when it is not a match"
    )
    match.set_defaults(func=_cmd_client, client_command="match")

    identify = sub.add_parser(
        "identify",
        parents=[common],
        help="1:N: who is in these images? (POST /v1/identify)",
    )
    identify.add_argument("images", nargs="+", type=Path, metavar="IMG", help=images_help)
    identify.add_argument(
        "--collection",
        required=True,
        metavar="ID_OR_NAME",
        help="a trained collection's id or name",
    )
    identify.add_argument(
        "--top-k", type=int, metavar="K", help="also list the K best candidates with their scores"
    )
    identify.add_argument(
        "--all-faces", action="store_true", help="identify every face, not only the largest"
    )
    identify.set_defaults(func=_cmd_client, client_command="identify")

    collections = sub.add_parser(
        "collections", help="list, create, fill, train and delete collections"
    )
    _help_when_bare(collections, _cmd_client)
    collections.set_defaults(client_command=None)
    col_sub = collections.add_subparsers(dest="collections_command", metavar="COMMAND")
    listing = col_sub.add_parser(
        "list", parents=[common], help="your collections, their members and training state"
    )
    listing.set_defaults(client_command="collections_list")
    create = col_sub.add_parser("create", parents=[common], help="create a collection")
    create.add_argument("name", help="the collection's name")
    create.add_argument(
        "--unknowns",
        action="store_true",
        help="stricter unknown rejection (a higher threshold and a lead over the runner-up)",
    )
    create.set_defaults(client_command="collections_create")
    add = col_sub.add_parser(
        "add",
        parents=[common],
        help="add enrollments to a collection (the server retrains it in the background)",
    )
    add.add_argument("collection", metavar="COLLECTION", help="the collection id")
    add.add_argument("enrollments", nargs="+", metavar="ENROLLMENT", help="enrollment ids")
    add.add_argument(
        "--wait", action="store_true", help="return once the collection has been retrained"
    )
    add.set_defaults(client_command="collections_add")
    delete = col_sub.add_parser(
        "delete", parents=[common], help="delete a collection (its enrollments stay)"
    )
    delete.add_argument("collection", metavar="COLLECTION", help="the collection id")
    delete.set_defaults(client_command="collections_delete")
    train = col_sub.add_parser(
        "train", parents=[common], help="train a collection and wait until it is ready"
    )
    train.add_argument("collection", metavar="COLLECTION", help="the collection id")
    train.add_argument(
        "--no-wait", action="store_true", help="return at once; training goes on in the background"
    )
    train.set_defaults(client_command="collections_train")

    enrollments = sub.add_parser("enrollments", help="list, show and delete enrollments")
    _help_when_bare(enrollments, _cmd_client)
    enrollments.set_defaults(client_command=None)
    enr_sub = enrollments.add_subparsers(dest="enrollments_command", metavar="COMMAND")
    enr_list = enr_sub.add_parser(
        "list",
        parents=[common],
        help="your enrollments, oldest first: id, name, images, collections, recipes",
    )
    enr_list.add_argument(
        "--limit", type=_page_size, default=50, help="enrollments per page, 1 to 500 (default: 50)"
    )
    enr_list.add_argument(
        "--offset", type=int, default=0, help="how many to skip (default: 0, the first page)"
    )
    enr_list.add_argument(
        "--all", action="store_true", help="every enrollment, fetched a page at a time"
    )
    enr_list.set_defaults(client_command="enrollments_list")
    show = enr_sub.add_parser("show", parents=[common], help="one or more enrollments by id")
    show.add_argument("enrollments", nargs="+", metavar="ENROLLMENT", help="enrollment ids")
    show.set_defaults(client_command="enrollments_show")
    remove = enr_sub.add_parser(
        "delete", parents=[common], help="delete enrollments and their embeddings for good"
    )
    remove.add_argument("enrollments", nargs="+", metavar="ENROLLMENT", help="enrollment ids")
    remove.set_defaults(client_command="enrollments_delete")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facegate", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version=f"facegate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    data_dir_help = "the data folder: store, model cache (default: FACEGATE_DATA_DIR, else ./data)"

    serve = sub.add_parser("serve", help="start the HTTP service")
    serve.add_argument("--host", help="the address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="the port to listen on (default: 8085)")
    serve.add_argument("--data-dir", type=Path, help=data_dir_help)
    serve.set_defaults(func=_cmd_serve)

    keys = sub.add_parser("keys", help="manage API keys (one key = one tenant)")
    keys.add_argument("--data-dir", type=Path, help=data_dir_help)
    _help_when_bare(keys, _cmd_keys)
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="COMMAND")
    create = keys_sub.add_parser("create", help="create a key and print it once")
    create.add_argument("name", help="a name for the key (who uses it)")
    listing = keys_sub.add_parser("list", help="list keys (never their secrets)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", help="the key's id, as `facegate keys list` shows it")
    for command in (create, listing, revoke):
        # Accepted before or after the subcommand; SUPPRESS keeps an absent one from
        # overwriting the value given before it ("keys --data-dir X create NAME").
        command.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS, help=data_dir_help)

    data_help = "the evaluation data folder (e.g. ../shared/facedata)"
    backend_help = "the embedding backend: onnx (the service's) or dlib (the reference)"
    evaluate = sub.add_parser("eval", help="accuracy evaluations on a data folder")
    _help_when_bare(evaluate, _cmd_eval)
    eval_sub = evaluate.add_subparsers(dest="eval_command", metavar="COMMAND")
    lfw = eval_sub.add_parser("lfw", help="LFW 10-fold verification accuracy")
    lfw.add_argument("data_dir_arg", type=_existing_folder, metavar="DATA_DIR", help=data_help)
    lfw.add_argument("--folds", type=int, default=10, help="how many of the 10 folds (default: 10)")
    lfw.add_argument("--limit", type=int, default=0, help="use only the first N pairs per fold")
    lfw.add_argument("--peer", action="store_true", help="also measure face_recognition 1.3.0")
    lfw.add_argument("--backend", choices=["onnx", "dlib"], default="onnx", help=backend_help)
    lfw.add_argument(
        "--tta", choices=["none", "flip", "multi"], help="only this TTA mode (default: all)"
    )
    lfw.add_argument(
        "--detector", choices=["yunet", "mtcnn"], help="engine figures for this detector only"
    )
    lfw.add_argument(
        "--recognizer", choices=["sface", "dlib"], help="engine figures for this recogniser only"
    )
    lfw.add_argument(
        "--engine-only",
        action="store_true",
        help="skip the product path (enroll + match through the service at the defaults)",
    )
    calibrate = eval_sub.add_parser("calibrate", help="fit the score curve on LFW DevTrain")
    calibrate.add_argument(
        "data_dir_arg", type=_existing_folder, metavar="DATA_DIR", help=data_help
    )
    calibrate.add_argument("--backend", choices=["onnx", "dlib"], default="onnx", help=backend_help)
    calibrate.add_argument(
        "--recognizer", choices=["sface", "dlib"], help="fit this recogniser only"
    )
    tail = eval_sub.add_parser(
        "tail", help="fit the impostor-score tail of the 1:N decision (LFW View 1 people)"
    )
    tail.add_argument("data_dir_arg", type=_existing_folder, metavar="DATA_DIR", help=data_help)
    tail.add_argument("--recognizer", choices=["sface", "dlib"], help="default: the default one")
    ident = eval_sub.add_parser(
        "ident", help="1:N identification on LFW through the service (TPIR, FNIR, FPIR, DET)"
    )
    ident.add_argument("data_dir_arg", type=_existing_folder, metavar="DATA_DIR", help=data_help)
    ident.add_argument("--seed", type=int, default=10, help="which people form the galleries")
    ident.add_argument(
        "--people", type=int, default=0, help="a quick run: only N enrollable people"
    )
    ident.add_argument(
        "--out",
        type=Path,
        help="folder for the DET curve and figures (default: eval-ident/ in the data folder)",
    )
    detect = eval_sub.add_parser("detect", help="detection counts and LFW face recall")
    detect.add_argument("data_dir_arg", type=_existing_folder, metavar="DATA_DIR", help=data_help)
    detect.add_argument("--limit", type=int, default=0, help="only the first N LFW images")
    detect.add_argument("--peer", action="store_true", help="also measure face_recognition")
    parity = eval_sub.add_parser("parity", help="ONNX descriptor vs dlib's, face by face")
    parity.add_argument("data_dir_arg", type=_existing_folder, metavar="DATA_DIR", help=data_help)
    parity.add_argument(
        "--faces", type=int, default=500, help="how many LFW faces to compare (default: 500)"
    )
    spoof_eval = eval_sub.add_parser("spoof", help="APCER/BPCER/ACER of the spoof model")
    spoof_eval.add_argument(
        "data_dir_arg", type=_existing_folder, metavar="DATA_DIR", help=data_help
    )
    for command in (lfw, calibrate, detect, parity, spoof_eval):
        command.add_argument(
            "--json",
            type=Path,
            metavar="PATH",
            help="where to write the figures as JSON (default: eval/COMMAND.json in facegate's "
            "data folder); verification also writes PATH's stem + -roc.png and -det.png",
        )

    spoof = sub.add_parser("spoof", help="spoof model")
    _help_when_bare(spoof, _cmd_spoof)
    spoof_sub = spoof.add_subparsers(dest="spoof_command", metavar="COMMAND")
    train = spoof_sub.add_parser("train", help="train the spoof model")
    train.add_argument("data_dir_arg", type=_existing_folder, metavar="DATA_DIR", help=data_help)
    train.add_argument("--out", type=Path, required=True, help="where to write the model (.npz)")

    bench = sub.add_parser(
        "bench",
        help="speed benchmark against face_recognition; 'bench load', 'bench faults' and "
        "'bench memory' need no data folder; 'bench scale DATA_DIR': 10^4 to 10^6 enrollments",
    )
    bench.add_argument(
        "data_dir_arg",
        type=_bench_target,
        metavar="DATA_DIR|load|faults|memory|scale",
        help="the evaluation data folder; or 'load': N clients x T seconds of mixed requests "
        "against a server started on 127.0.0.1; or 'faults': kill -9 during enrollment bursts "
        "and training, restart, check every acknowledged write; or 'memory': the server's peak "
        "RSS over issue 12's large-image and padded-body cases; or 'scale' followed by the data "
        "folder: training, search, recall, memory and deletion with --sizes enrollments",
    )
    bench.add_argument(
        "scale_data",
        nargs="?",
        type=_existing_folder,
        metavar="DATA_DIR",
        help="scale: the evaluation data folder (LFW for the fit and the probes)",
    )
    bench.add_argument(
        "--sizes",
        type=_sizes,
        default=[10_000, 100_000, 1_000_000],
        help="scale: collection sizes, comma-separated (default: 10000,100000,1000000)",
    )
    bench.add_argument(
        "--backends",
        type=_backends,
        default=["sqlite", "postgresql"],
        help="scale: stores, comma-separated: sqlite, postgresql (default: both; PostgreSQL "
        "from the pgserver package)",
    )
    bench.add_argument(
        "--probes",
        type=int,
        default=None,
        help="scale: real LFW probes, at most every person with two images outside DevTrain "
        "(735; default: all of them)",
    )
    bench.add_argument("--seed", type=int, default=10, help="scale: draws and probe choice")
    bench.add_argument(
        "--out",
        type=Path,
        metavar="PATH",
        help="scale: the JSON report (default: eval-scale/scale.json in facegate's data folder)",
    )
    bench.add_argument(
        "--warm-identifies",
        type=int,
        default=300,
        help="scale: identifies over both servers before their RSS is read (default: 300)",
    )
    bench.add_argument(
        "--work",
        type=Path,
        metavar="DIR",
        help="scale: where the temporary stores go (default: the system's temporary folder; "
        "10^6 enrollments take gigabytes)",
    )
    bench.add_argument(
        "--repeats", type=int, default=20, help="timed repetitions per measure (default: 20)"
    )
    bench.add_argument("--clients", type=int, default=50, help="load: concurrent clients")
    bench.add_argument("--seconds", type=float, default=60.0, help="load: length of the run")
    bench.add_argument(
        "--max-requests", type=int, default=100_000, help="load: requests at most per run"
    )
    bench.add_argument(
        "--hammer",
        action="store_true",
        help="load: retry a 503 at once instead of honouring its Retry-After",
    )
    bench.add_argument("--rounds", type=int, default=3, help="faults: kill -9 rounds of each kind")
    variant = bench.add_mutually_exclusive_group()
    variant.add_argument(
        "--detector",
        action="store_true",
        help="instead: what each of MTCNN's speed-ups buys (PReLU form, batch size, largest face)",
    )
    variant.add_argument(
        "--http",
        action="store_true",
        help="instead: /v1/match throughput of a live server with 1, 2 and 4 clients",
    )
    bench.set_defaults(func=_cmd_bench, help_parser=bench)

    _add_client_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(arguments)
    args.argv = arguments  # recorded in evaluation reports
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
