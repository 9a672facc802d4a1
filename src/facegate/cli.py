"""The ``facegate`` command line: serve, keys, eval, spoof, bench.

Each subcommand imports its implementation lazily so that, e.g., ``facegate keys list`` does not
load the face models.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from facegate.config import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    if getattr(args, "data_dir", None) is not None:
        overrides["data_dir"] = args.data_dir
    return Settings(**overrides)  # type: ignore[arg-type]


def _cmd_serve(args: argparse.Namespace) -> int:
    from facegate.api.server import serve

    settings = _settings(args)
    overrides: dict[str, object] = {}
    if args.host is not None:
        overrides["host"] = args.host
    if args.port is not None:
        overrides["port"] = args.port
    serve(settings.model_copy(update=overrides))
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

    settings = _settings(args)
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
    from facegate.spoof.train import run_train

    return int(run_train(args.data_dir_arg, out=args.out))


def _cmd_bench(args: argparse.Namespace) -> int:
    if args.http:
        from facegate.eval.http_bench import run_http_bench

        return run_http_bench(args.data_dir_arg)
    if args.detector:
        from facegate.eval.detector_bench import run_detector_bench

        return run_detector_bench(args.data_dir_arg, repeats=args.repeats)
    from facegate.eval.bench import run_bench

    return run_bench(args.data_dir_arg, repeats=args.repeats)


def _existing_folder(value: str) -> Path:
    path = Path(value)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(f"{value}: no such folder (the evaluation data folder)")
    return path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facegate", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="start the HTTP service")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--data-dir", type=Path)
    serve.set_defaults(func=_cmd_serve)

    keys = sub.add_parser("keys", help="manage API keys (one key = one tenant)")
    keys.add_argument("--data-dir", type=Path)
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_sub.add_parser("create", help="create a key and print it once")
    create.add_argument("name")
    listing = keys_sub.add_parser("list", help="list keys (never their secrets)")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    for command in (create, listing, revoke):
        # Accepted before or after the subcommand; SUPPRESS keeps an absent one from
        # overwriting the value given before it ("keys --data-dir X create NAME").
        command.add_argument("--data-dir", type=Path, default=argparse.SUPPRESS)
    keys.set_defaults(func=_cmd_keys)

    evaluate = sub.add_parser("eval", help="accuracy evaluations on a data folder")
    eval_sub = evaluate.add_subparsers(dest="eval_command", required=True)
    lfw = eval_sub.add_parser("lfw", help="LFW 10-fold verification accuracy")
    lfw.add_argument("data_dir_arg", type=_existing_folder, metavar="DATA_DIR")
    lfw.add_argument("--folds", type=int, default=10)
    lfw.add_argument("--limit", type=int, default=0, help="use only the first N pairs per fold")
    lfw.add_argument("--peer", action="store_true", help="also measure face_recognition 1.3.0")
    lfw.add_argument("--backend", choices=["onnx", "dlib"], default="onnx")
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
    calibrate.add_argument("data_dir_arg", type=_existing_folder, metavar="DATA_DIR")
    calibrate.add_argument("--backend", choices=["onnx", "dlib"], default="onnx")
    calibrate.add_argument(
        "--recognizer", choices=["sface", "dlib"], help="fit this recogniser only"
    )
    tail = eval_sub.add_parser(
        "tail", help="fit the impostor-score tail of the 1:N decision (LFW View 1 people)"
    )
    tail.add_argument("data_dir_arg", type=_existing_folder, metavar="DATA_DIR")
    tail.add_argument("--recognizer", choices=["sface", "dlib"], help="default: the default one")
    ident = eval_sub.add_parser(
        "ident", help="1:N identification on LFW through the service (TPIR, FNIR, FPIR, DET)"
    )
    ident.add_argument("data_dir_arg", type=_existing_folder, metavar="DATA_DIR")
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
    detect.add_argument("data_dir_arg", type=_existing_folder, metavar="DATA_DIR")
    detect.add_argument("--limit", type=int, default=0, help="only the first N LFW images")
    detect.add_argument("--peer", action="store_true", help="also measure face_recognition")
    parity = eval_sub.add_parser("parity", help="ONNX descriptor vs dlib's, face by face")
    parity.add_argument("data_dir_arg", type=_existing_folder, metavar="DATA_DIR")
    parity.add_argument("--faces", type=int, default=500)
    spoof_eval = eval_sub.add_parser("spoof", help="APCER/BPCER/ACER of the spoof model")
    spoof_eval.add_argument("data_dir_arg", type=_existing_folder, metavar="DATA_DIR")
    evaluate.set_defaults(func=_cmd_eval)

    spoof = sub.add_parser("spoof", help="spoof model")
    spoof_sub = spoof.add_subparsers(dest="spoof_command", required=True)
    train = spoof_sub.add_parser("train", help="train the spoof model")
    train.add_argument("data_dir_arg", type=_existing_folder, metavar="DATA_DIR")
    train.add_argument("--out", type=Path, required=True)
    spoof.set_defaults(func=_cmd_spoof)

    bench = sub.add_parser("bench", help="speed benchmark against face_recognition")
    bench.add_argument("data_dir_arg", type=_existing_folder, metavar="DATA_DIR")
    bench.add_argument("--repeats", type=int, default=20)
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
    bench.set_defaults(func=_cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
