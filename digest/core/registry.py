"""The seams where an alternative plugs in: transcription engines, extraction backends,
delivery channels. Each is a registry keyed by the value that picks it in the config
file (`[transcription] backend`, `[extraction] backend`, a reader's channel).

A built-in entry names its module ("digest.transcripts.engines.hosted:HostedEngine")
rather than importing it, so this core imports no stage and a heavy backend (torch,
llama.cpp) loads only when chosen. Adding an alternative is one module and one
`register` call; nothing outside its stage branches on its name, and config
validation takes the choices from here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from typing import Any

from digest.core.errors import ConfigError


class Registry:
    """Named implementations of one seam."""

    def __init__(self, kind: str, setting: str) -> None:
        self.kind = kind  # "transcription engine"
        self.setting = setting  # where users choose one: "[transcription] backend"
        self._entries: dict[str, Any] = {}

    def register(self, name: str, target: Any) -> None:
        """`target`: the implementation, or "module:attribute" to import on first use."""
        self._entries[name] = target

    def address(self, name: str) -> str:
        """ "module:attribute" of an entry, so another process (the Whisper worker) can
        import the same implementation, even one a caller registered at run time."""
        target = self._entries[name] if name in self else self.get(name)
        if isinstance(target, str):
            return target
        return f"{target.__module__}:{target.__qualname__}"

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def get(self, name: str) -> Any:
        if name not in self._entries:
            raise ConfigError(
                f"{self.setting}: unknown {self.kind} {name!r}; known: {', '.join(self)}"
            )
        target = self._entries[name]
        if isinstance(target, str):
            target = self._entries[name] = load(target)
        return target

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def choices(self, *extra: str) -> Choices:
        """The registered names and `extra` ones ("auto"), read when a file is checked."""
        return Choices(extra, self)


def load(address: str) -> Any:
    """The object a "module:attribute" address names."""
    module, _, attribute = address.partition(":")
    target: Any = importlib.import_module(module)
    for part in attribute.split("."):
        target = getattr(target, part)
    return target


class Choices:
    """A setting's allowed values: fixed ones, then whatever a registry holds by then."""

    def __init__(self, fixed: tuple[str, ...], registry: Registry) -> None:
        self.fixed, self.registry = fixed, registry

    def __contains__(self, name: object) -> bool:
        return name in self.fixed or name in self.registry

    def __iter__(self) -> Iterator[str]:
        yield from self.fixed
        yield from self.registry


ENGINES = Registry("transcription engine", "[transcription] backend")
ENGINES.register("faster-whisper", "digest.transcripts.engines.faster_whisper:FasterWhisperEngine")
ENGINES.register("openai-whisper", "digest.transcripts.engines.openai_whisper:OpenAIWhisperEngine")
ENGINES.register("openai", "digest.transcripts.engines.hosted:HostedEngine")

BACKENDS = Registry("extraction backend", "[extraction] backend")
BACKENDS.register("openai", "digest.insights.backends.chat:ChatBackend")
BACKENDS.register("extractive", "digest.insights.backends.extractive:ExtractiveBackend")
BACKENDS.register("local", "digest.insights.backends.local:LocalBackend")

CHANNELS = Registry("delivery channel", "a reader's channel")
CHANNELS.register("email", "digest.delivery.channels.email:EmailChannel")
CHANNELS.register("webhook", "digest.delivery.channels.webhook:WebhookChannel")
CHANNELS.register("feed", "digest.delivery.channels.feed:FeedChannel")
