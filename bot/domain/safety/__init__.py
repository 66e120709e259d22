"""Crisis-language screening and the crisis texts (pure Python: no Telegram, no database).

Every free-text message a patient sends is screened before it is stored or acknowledged, so
"Need help now" and screening work while the database is down. Layers, each only adding:
- `phrases`: the reviewed phrase lists (`<content dir>/safety/<language>.yaml`);
- `concepts`: kinds of words combined within a few words (`<language>.concepts.yaml`);
- `model`: an optional local linear model (`<language>.model.json`).
`texts` holds the wording of every crisis message (`resources.yaml`). See docs/safety.md.
"""

from bot.domain.safety.files import RESOURCES_FILE, SafetyContentError
from bot.domain.safety.normalise import normalize
from bot.domain.safety.phrases import Phrase
from bot.domain.safety.screener import Match, Screener, load_screener
from bot.domain.safety.texts import CRISIS_TEXT_FIELDS, CrisisTexts, load_crisis_texts

__all__ = [
    "CRISIS_TEXT_FIELDS",
    "RESOURCES_FILE",
    "CrisisTexts",
    "Match",
    "Phrase",
    "SafetyContentError",
    "Screener",
    "load_crisis_texts",
    "load_screener",
    "normalize",
]
