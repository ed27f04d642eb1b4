"""What Lumina asks a vision model about a photo, and how it reads the answer.

Plain values only: the request itself is sent by the `OllamaVision` resource."""

import json
import re
from dataclasses import dataclass

# Bump PROMPT_VERSION whenever PROMPT or CAPTION_SCHEMA changes: stored captions are keyed by
# (checksum, model, prompt version), so a new version captions every photo again.
PROMPT_VERSION = "v1"
PROMPT = (
    "Describe this photo for a family photo archive. Give one plain sentence saying what it shows "
    "(people, what they are doing, the place, objects, the occasion) and up to 10 short lowercase "
    "tags, each a common noun or a short noun phrase. Say only what you can see."
)
MAX_TAGS = 10
MAX_DESCRIPTION = 500  # characters: one sentence, however talkative the model
# Ollama's structured outputs: the server constrains the model's answer to this JSON schema.
CAPTION_SCHEMA = {
    "type": "object",
    "properties": {
        "description": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": MAX_TAGS},
    },
    "required": ["description", "tags"],
}


@dataclass(frozen=True)
class Caption:
    description: str
    tags: tuple[str, ...]


def parse_caption(answer: str) -> Caption:
    """The caption in a model's answer (JSON following CAPTION_SCHEMA).

    Raises ValueError, with a short reason, for an answer that is not such JSON or says nothing:
    a schema-constrained model can still stop mid-answer when it hits its token limit."""
    try:
        document = json.loads(answer)
    except json.JSONDecodeError as error:
        raise ValueError(f"malformed JSON in the answer ({error.msg} at character {error.pos})") from None
    if not isinstance(document, dict) or not isinstance(document.get("description"), str):
        raise ValueError("the answer has no description")
    tags = document.get("tags")
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise ValueError("the answer's tags are not a list of texts")
    description = " ".join(document["description"].split())[:MAX_DESCRIPTION]
    if not description:
        raise ValueError("the answer's description is empty")
    return Caption(description, normalize_tags(tags))


def normalize_tags(tags: list[str]) -> tuple[str, ...]:
    """Lowercase, single-spaced, without surrounding punctuation or repeats, at most MAX_TAGS:
    so that "Birthday Cake" from Ollama and "birthday cake" from a vocabulary are one tag."""
    seen: dict[str, None] = {}
    for tag in tags:
        name = re.sub(r"\s+", " ", tag.strip().strip(".,;:!?\"'#").lower())
        if name:
            seen.setdefault(name[:100])
    return tuple(seen)[:MAX_TAGS]


def caption_text(description: str, tags: list[str]) -> str:
    """The text a sentence model embeds for search: the description, then the tags."""
    return f"{description} Tags: {', '.join(tags)}." if tags else description
