"""The day's editor pass: one request that sees the day's candidate insights across all
episodes (text, show, episode; no transcripts) and answers with the best N in order and
the email's header line.

Each extraction rated its own insights in isolation, so a 9 from a dull episode beat
an 8 from a brilliant one; the editor compares them side by side. It can only reorder:
it answers with candidate numbers, every candidate is already grounded, and the code
that applies the answer keeps the per-episode cap and drops near-duplicates. A failed,
truncated or malformed answer raises EditorError, and the caller keeps the day's
ranking (`digest.jobs.editing`).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from digest.core.config import Config
from digest.core.errors import DigestError
from digest.insights.context import Usage
from digest.insights.prompts import Prompt, defang, load_prompt, prompts_folder

EDITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["header", "picks"],
    "properties": {
        "header": {"type": "string", "maxLength": 200},
        "picks": {"type": "array", "items": {"type": "integer"}},
    },
}


class EditorError(DigestError):
    """The editor pass gave no usable answer; the day's ranking stands."""


@dataclass(frozen=True)
class Candidate:
    number: int  # 1-based, as the prompt shows it
    text: str
    show: str
    episode: str


@dataclass(frozen=True)
class EditorAnswer:
    picks: tuple[int, ...]  # candidate numbers, best first, valid and distinct
    header: str

    def to_json(self) -> str:
        return json.dumps({"picks": list(self.picks), "header": self.header})

    @classmethod
    def from_json(cls, text: str) -> EditorAnswer:
        data = json.loads(text)
        return cls(tuple(data["picks"]), str(data["header"]))


def day_folder(prompts_dir: str, name: str = "") -> Path:
    """Day-level prompts live apart from the extraction prompts (`prompts list`), in
    `day/` of the prompts folder; one it lacks is the bundled one."""
    folder = prompts_folder(prompts_dir) / "day"
    if name and not (folder / f"{name}.j2").is_file():
        return prompts_folder() / "day"
    return folder


class EditorPass:
    def __init__(
        self,
        client: Any,
        prompt: Prompt,
        model: str,
        *,
        temperature: float,
        answer_tokens: int,
        max_candidates: int,
        throttle: Callable[[], None] | None = None,
    ) -> None:
        self.client, self.model = client, model
        self.prompt = replace(prompt, answer_schema=EDITOR_SCHEMA)
        self.version = self.prompt.version(model)
        self.temperature = temperature
        self.answer_tokens = answer_tokens
        self.max_candidates = max_candidates
        self.throttle = throttle

    @classmethod
    def build(cls, config: Config, name: str | None = None, client: Any = None) -> EditorPass:
        """The editor pass against the configured endpoint, with `name` (default:
        `[extraction] editor_prompt`) from templates/prompts/day/."""
        from digest.insights.backends.chat import openai_client

        e = config.extraction
        name = name or e.editor_prompt
        prompt = load_prompt(name, str(day_folder(e.prompts_dir, name)))
        base_url = e.base_url or None
        if e.backend == "local":  # the llama.cpp server extraction uses, started once
            from digest.insights.backends.local import local_base_url

            base_url = local_base_url(e.model, e.local_threads, e.local_context)
        client = client or openai_client(config, base_url)
        meta = prompt.meta
        return cls(
            client,
            prompt,
            meta.model or e.model,
            temperature=0.0 if meta.temperature is None else meta.temperature,
            answer_tokens=e.editor_answer_tokens,
            max_candidates=e.editor_candidates,
        )

    def cache_key(self, date: str, candidates: Sequence[Candidate], count: int) -> str:
        """What the answer depends on: the prompt's version, the day, N, the candidates."""
        material = json.dumps(
            [self.version, date, count, [(c.text, c.show, c.episode) for c in candidates]]
        )
        return hashlib.sha256(material.encode()).hexdigest()

    def ask(
        self, date: str, candidates: Sequence[Candidate], count: int, usage: Usage
    ) -> EditorAnswer:
        """The editor's picks among `candidates`; EditorError if there is no usable answer."""
        import openai

        messages = self.prompt.render(
            date=date,
            count=count,
            candidates=[
                {"number": c.number, "text": defang(c.text), "show": defang(c.show),
                 "episode": defang(c.episode)}
                for c in candidates
            ],
        )  # fmt: skip
        schema = json.loads(json.dumps(EDITOR_SCHEMA))
        schema["properties"]["picks"]["maxItems"] = count  # numbers out of range are dropped
        if self.throttle:
            self.throttle()
        started = time.monotonic()
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=messages,
                temperature=self.temperature,
                max_tokens=self.answer_tokens,
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "editor", "strict": True, "schema": schema},
                },
            )
        except openai.OpenAIError as exc:
            raise EditorError(f"the editor pass request failed: {exc}") from exc
        choice = response.choices[0] if response.choices else None
        if choice is None or choice.finish_reason == "length":
            usage.add(response, time.monotonic() - started, "truncated")
            raise EditorError(f"the editor's answer was cut off at {self.answer_tokens} tokens")
        usage.add(response, time.monotonic() - started, "ok")
        return parse_editor_answer(choice.message.content or "", len(candidates), count)


def parse_editor_answer(content: str, candidates: int, count: int) -> EditorAnswer:
    """The picks that name a candidate, first mention kept, at most `count`."""
    text = re.sub(r"^```(?:json)?|```$", "", content.strip(), flags=re.MULTILINE).strip()
    try:
        data = json.loads(text[text.index("{") : text.rindex("}") + 1])
    except ValueError as exc:
        raise EditorError(f"the editor's answer is not JSON: {content[:80]!r}") from exc
    picks = data.get("picks") if isinstance(data, dict) else None
    if not isinstance(picks, list):
        raise EditorError("the editor's answer has no list of picks")
    valid = [p for p in picks if isinstance(p, int) and not isinstance(p, bool)]
    kept = list(dict.fromkeys(p for p in valid if 1 <= p <= candidates))[:count]
    if not kept:
        raise EditorError("the editor picked no candidate that exists")
    header = " ".join(str(data.get("header", "")).split())
    if len(header) > 160 or re.search(r"<[a-z/!]|https?:|www\.|@\w", header, re.I):
        header = ""  # not one plain line: the email keeps its standard one
    return EditorAnswer(tuple(kept), header)
