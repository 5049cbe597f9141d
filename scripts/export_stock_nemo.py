#!/usr/bin/env python3
"""Export a Maya ``.nemo`` as a plain NeMo EncDecHybridRNNTCTCBPEModel for one language.

Usage:
    python scripts/export_stock_nemo.py --model experiments/stage1/final.nemo \
        --language hi --output artifacts/export/maya_hi_stock.nemo
    python scripts/export_stock_nemo.py --model final.nemo --language none --output free.nemo

The language vector is folded into the joint's encoder projection and the CTC head biases, so
the stock model's outputs equal ours for that language (``none``: the language-free path). The
result loads with ``ASRModel.restore_from`` on a machine without maya_asr.
"""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, help="our .nemo file")
    parser.add_argument("--language", required=True, help="language code, or 'none'")
    parser.add_argument("--output", required=True, help="stock .nemo to write")
    args = parser.parse_args(argv)

    from maya_asr.models import MayaHybridTDTCTCModel, export_stock_nemo

    model = MayaHybridTDTCTCModel.restore_from(args.model, map_location="cpu")
    language = None if args.language.lower() == "none" else args.language
    out = export_stock_nemo(model, language, args.output)
    print(f"wrote stock NeMo model for language {args.language} to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
