"""Let NeMo instantiate our classes from a ``.nemo`` config, without importing NeMo ourselves.

NeMo 3.0 only instantiates config targets whose dotted path starts with a prefix in
``nemo.core.classes.common.ALLOWED_TARGET_PREFIXES``; a ``.nemo`` whose ``target`` is
``maya_asr.models.model.MayaHybridTDTCTCModel`` fails to restore until ``"maya_asr."`` is there.

Importing NeMo costs ~9 s, so ``import maya_asr`` must not do it. Instead :func:`register` adds
the prefix right away when NeMo's module is already imported, and otherwise installs a tiny
``sys.meta_path`` hook that adds it the moment NeMo imports ``nemo.core.classes.common`` (before
any ``restore_from`` can run). Stdlib only: this runs on every ``import maya_asr``.
"""

from __future__ import annotations

import importlib.abc
import sys

PREFIX = "maya_asr."
NEMO_MODULE = "nemo.core.classes.common"


def _add_prefix(module) -> None:
    prefixes = getattr(module, "ALLOWED_TARGET_PREFIXES", None)
    if isinstance(prefixes, list) and PREFIX not in prefixes:
        prefixes.append(PREFIX)


class _AllowListHook(importlib.abc.MetaPathFinder):
    """Wraps the loader of ``nemo.core.classes.common`` to extend the list once it is executed."""

    def find_spec(self, fullname, path, target=None):
        if fullname != NEMO_MODULE:
            return None
        spec = None
        for finder in sys.meta_path:  # whoever would have found it (path, editable installs)
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return None
        exec_module = spec.loader.exec_module

        def exec_and_register(module):
            exec_module(module)
            _add_prefix(module)

        spec.loader.exec_module = exec_and_register
        return spec


def register() -> None:
    """Make ``maya_asr.`` an allowed NeMo target prefix now or as soon as NeMo is imported."""
    module = sys.modules.get(NEMO_MODULE)
    if module is not None:
        _add_prefix(module)
    elif not any(isinstance(f, _AllowListHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _AllowListHook())
