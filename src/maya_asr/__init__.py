"""Maya ASR: multilingual Indic speech recognition on NVIDIA NeMo.

Importing this package is cheap: NeMo is only imported by the modules that need it
(``maya_asr.models``, training and inference). It does register our package with NeMo's list of
classes a ``.nemo`` file may name, lazily, so ``restore_from`` works after ``import maya_asr``.
"""

from maya_asr import _nemo_allowlist
from maya_asr.languages import LANGUAGES, Language, get_language

_nemo_allowlist.register()

__version__ = "0.1.0"
__all__ = ["LANGUAGES", "Language", "__version__", "get_language"]
