#!/usr/bin/env python3
"""Write the encoder of a NeMo ``.nemo`` (e.g. Parakeet TDT 1.1B) as a plain state dict.

Usage:
    python scripts/extract_encoder.py --nemo parakeet-tdt-1.1b.nemo \
        --output pretrained/parakeet_tdt_1.1b_encoder.pt

The output holds the ``encoder.*`` tensors without their prefix; training loads it with
``maya_asr.models.load_pretrained_encoder(model, path)``, which reports missing, unexpected and
mis-shaped keys and refuses an encoder that does not match the config.
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nemo", required=True, help="source .nemo file")
    parser.add_argument(
        "--output", default="pretrained/parakeet_tdt_1.1b_encoder.pt", help="state dict to write"
    )
    args = parser.parse_args(argv)

    from maya_asr.models.encoder_loading import save_encoder_state_dict

    count = save_encoder_state_dict(args.nemo, args.output)
    print(f"wrote {count} encoder tensors from {args.nemo} to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
