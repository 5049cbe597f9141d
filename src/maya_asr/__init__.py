"""Maya ASR: multilingual Indic speech recognition on NVIDIA NeMo.

Importing this package is cheap: NeMo is only imported by the modules that need it
(``maya_asr.models``, training and inference).
"""

from maya_asr.languages import LANGUAGES, Language, get_language

__version__ = "0.1.0"
__all__ = ["LANGUAGES", "Language", "__version__", "get_language"]
