"""Who a model service is: its model id, the other names it answers to, and its display name.

Both services accept their own model id, a list of aliases and the names matching their patterns
(``whisper-*``, ``gpt-*transcribe*``, ``tts-*``, ... see :mod:`.model_names`), case insensitively; an
empty ``model`` means the service's own. One object carries all three so that
``/v1/models``, ``/v1/audio/models`` and a request's ``model`` field can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import InvalidRequestError, ModelNotFoundError
from .model_names import matches, parse_patterns


@dataclass(frozen=True)
class ModelIdentity:
    id: str
    display_name: str
    aliases: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()  # shell-style, lower case (model_names.parse_patterns)

    @property
    def names(self) -> list[str]:
        """Every accepted name, sorted (as error messages list them)."""
        return sorted({self.id, *self.aliases})

    def check(self, model: Any) -> str:
        """The name a request's ``model`` gives (the id when empty); 404 if this service does not serve it."""
        if model is None or (isinstance(model, str) and not model.strip()):
            return self.id
        if not isinstance(model, str):
            raise InvalidRequestError("'model' must be a string.", param="model", code="invalid_type")
        if not self.accepts(model):
            raise ModelNotFoundError(model, self.names)
        return model.strip()

    def accepts(self, model: str) -> bool:
        """Whether ``model`` is our id, an alias, or matches one of our patterns."""
        name = model.strip().lower()
        return name in {n.lower() for n in self.names} or matches(name, self.patterns)


def from_settings(model_id: str, display_name: str, aliases: str, patterns: str = "") -> ModelIdentity:
    """An identity from ``VIBEVOICE_*`` texts: comma-separated aliases and name patterns."""
    return ModelIdentity(model_id, display_name, split_aliases(aliases), parse_patterns(patterns))


def split_aliases(value: str) -> tuple[str, ...]:
    """``"a, b,,c"`` → ``("a", "b", "c")`` (the ``VIBEVOICE_*_ALIASES`` format)."""
    return tuple(a.strip() for a in value.split(",") if a.strip())
