"""`ovseg eval --dataset NAME --root DIR`: mIoU on a benchmark with the paper's protocol."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .protocol import DATASETS, get_protocol

DESCRIPTION = (
    "Evaluate on a semantic segmentation benchmark with the CLIP-DINOiser paper's protocol "
    "(short side 448, 448x448 windows at stride 224, the authors' class names, fp32). Writes "
    "metrics.json and results.md to --output; an interrupted run continues where it stopped "
    "when started again with the same settings. Defaults differ from 'segment': --mode slide, "
    "--precision fp32. Layouts and preparation: doc/evaluation.md."
)


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the `eval` sub-command on the `ovseg` sub-parsers `sub`."""
    from ovseg_ros.settings.options import add_model_options

    p = sub.add_parser("eval", help="mIoU on a benchmark with the paper's protocol",
                       description=DESCRIPTION, epilog="example: ovseg eval --dataset voc21 "
                       "--root data/VOCdevkit/VOC2012")
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--root", required=True,
                   help="the dataset's folder (e.g. VOCdevkit/VOC2012) or mmsegmentation's data/")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="only the first N images of the split (not comparable with the paper)")
    p.add_argument("-o", "--output", default=None,
                   help="results folder (default eval_out/<dataset>)")
    p.add_argument("--save-predictions", action="store_true",
                   help="write <output>/predictions/<image id>.png in the dataset's label indices")
    p.add_argument("--class-names", default=None, metavar="FILE",
                   help="class names instead of the authors': one line per class, synonyms "
                        "separated by commas")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_model_options(p)
    p.set_defaults(handler=run)
    # The paper's protocol, where the shared model options default to the deployment setting.
    p.set_defaults(mode=get_protocol("voc21").mode, precision=get_protocol("voc21").precision)
    return p


def run(args: argparse.Namespace) -> int:
    """Run the `eval` sub-command; errors propagate to the `ovseg` error handler."""
    from ovseg_ros.settings.options import config_from_args

    from .runner import EvalOptions, run_evaluation

    output = Path(args.output or Path("eval_out") / args.dataset)
    opts = EvalOptions(dataset=args.dataset, root=Path(args.root), output=output,
                       limit=args.limit, save_predictions=args.save_predictions,
                       class_names=Path(args.class_names) if args.class_names else None,
                       progress=not args.no_progress)
    try:
        m = run_evaluation(opts, config_from_args(args))
    except KeyboardInterrupt:
        print(f"ovseg eval: interrupted; finished images are stored in {output / 'state'}. "
              "Run the same command again to continue.", file=sys.stderr)
        return 130
    miou = "n/a" if m["mIoU"] is None else f"{m['mIoU']:.2f}"
    note = "" if m["complete"] and m["paper_protocol"] else " (not comparable with the paper)"
    rate = m["timing"]["images_per_s"]
    print(f"ovseg eval {args.dataset}: mIoU {miou} (paper {m['paper_mIoU']:.1f}){note} over "
          f"{m['images']} images"
          + (f", {rate:.2f} images/s" if rate else "") + f" -> {output / 'metrics.json'}")
    return 0
