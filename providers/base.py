"""What every provider adapter gives the handlers: a pure ``classify`` over a parsed payload.

An adapter never performs I/O in ``classify``; HTTP clients for status polling live beside it
in the same module, separate from the parsing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from ledger.outcomes import Outcome

__all__ = ["MUSIC_OPERATIONS", "OPERATIONS", "Classification", "ProviderAdapter"]

#: Audio operations: the music models (Suno-style APIs, the synchronous music models) and the
#: speech, sound-effect and voice endpoints beside them (MiniMax, ElevenLabs, Kling audio).
MUSIC_OPERATIONS: tuple[str, ...] = (
    "music",
    "speech",
    "sound_effects",
    "lyrics",
    "stems",
    "extend",
    "add_vocals",
    "add_instrumental",
    "voice_clone",
    "wav_export",
    "midi_export",
)
#: Every operation a charge may name; each decides what "the output" of a generation is.
OPERATIONS: tuple[str, ...] = ("video", "image", *MUSIC_OPERATIONS, "training")


@dataclass(frozen=True, slots=True)
class Classification:
    """The meaning of one provider payload."""

    outcome: Outcome
    reason: str
    """One line naming the field (and value) that decided the outcome."""
    provider_job_id: str | None = None
    """The provider's own id of the job, when the payload carries one."""


class ProviderAdapter(Protocol):
    """One upstream: turns its raw payloads into a ``Classification``."""

    name: str
    """The provider name used in charges, messages and the command line."""

    def classify(self, payload: Mapping[str, Any], operation: str | None = None) -> Classification:
        """Classify ``payload``; raise ``ledger.errors.Unclassifiable`` rather than guess."""
        ...
