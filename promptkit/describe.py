"""Describe video clips with a vision LLM: one chat request per clip (the question and its frames as
images), the answers stored as a clip-text set.

The caller gives the clips as (clip id, load) pairs, `load()` returning the clip's sampled frames as
JPEG bytes, so this module reads no video itself (trainer does, and registers the command). Frames
are loaded in a worker thread while other requests are in flight; at most `concurrency` clips are
loaded or asked at once.

Every finished clip is appended to a work file in the store (`.work-<key>.jsonl`, one JSON line,
flushed to disk), the key naming what changes the answers (model, endpoint, template, frames, image
size). Stopped by Ctrl-C or a failing request, the work file stays; the same command again asks only
for the clips it lacks. The version is written when every clip has an outcome, and the work file is
then removed. An answer that is empty, a refusal, or names an emotion is asked once more; failing
again, the clip is recorded as missing with the reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Sequence

from promptkit.classes import BUILTIN_CLASS_SETS
from promptkit.cliptexts import ClipTextSet, ClipTextStore
from promptkit.errors import DescribeError, StoreError, ToolkitError
from promptkit.fileio import make_folder
from promptkit.llm import USAGE_KEYS, ChatSession, LLMConfig, cancel_and_reap, endpoint_host, first_error_cancels_all, image_part, text_part
from promptkit.sets import toolkit_version
from promptkit.templates import load_template, render_source

log = logging.getLogger(__name__)

DEFAULT_CLIP_TEMPLATE = "clip_describe"
MAX_FRAMES = 16
ClipSource = tuple[str, Callable[[], Sequence[bytes]]]
Progress = Callable[[int, int], None]

# Emotion words an answer must not use: the built-in class names and their common forms.
_EMOTION_FORMS = ("happy", "happily", "joy", "joyful", "sad", "sadly", "angry", "angrily", "anger", "mad", "furious",
                  "surprised", "surprise", "astonished", "shocked", "disgusted", "disgust", "fearful", "fear",
                  "afraid", "scared", "frightened", "terrified", "neutral", "contempt", "contemptuous", "anxious",
                  "anxiety", "worried", "nervous", "helpless", "helplessness", "disappointed", "disappointment")
_EMOTIONS = sorted({name for names in BUILTIN_CLASS_SETS.values() for name in names} | set(_EMOTION_FORMS))
_EMOTION_WORD = re.compile(r"\b(" + "|".join(_EMOTIONS) + r")\b", re.IGNORECASE)
_REFUSAL = re.compile(
    r"^\W*(?:i['’]?m sorry|i am sorry|sorry\b|i can(?:['’]|no)?t\b|i am (?:not able|unable)|i['’]?m (?:not able|unable)"
    r"|i (?:won['’]?t|will not)\b|unfortunately,? i)|\bas an ai\b|\bi can(?:['’]|no)?t (?:help|assist|analy[sz]e|identify|describe)",
    re.IGNORECASE)


def screen_answer(text: str) -> str | None:
    """None for a usable answer, else why not: "empty", "refusal", or "named an emotion: <word>"."""
    stripped = (text or "").strip()
    if not stripped:
        return "empty"
    if _REFUSAL.search(stripped):
        return "refusal"
    found = _EMOTION_WORD.search(stripped)
    if found:
        return f"named an emotion: {found.group(1).lower()}"
    return None


def reason_kind(reason: str) -> str:
    """The category of a missing reason ("named an emotion: happy" -> "named an emotion")."""
    return reason.split(":", 1)[0]


@dataclass(frozen=True)
class DescribeConfig:
    """What to ask and where. `settings` holds what else changes the answers (e.g. image_size): it
    keys the work file and goes into provenance."""

    llm: LLMConfig
    name: str
    frames: int = 4
    template: str = DEFAULT_CLIP_TEMPLATE
    settings: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.frames, int) or isinstance(self.frames, bool) or not 1 <= self.frames <= MAX_FRAMES:
            raise DescribeError(f"--frames must be an integer from 1 to {MAX_FRAMES}, got {self.frames!r}")


@dataclass
class DescribeSummary:
    """What a run did: the stored set and the counts behind it."""

    set: ClipTextSet
    asked: int  # clips asked in this run
    resumed: int  # clips whose outcome came from the work file
    retried: int  # clips asked twice (the first answer was screened out)
    missing: dict[str, int]  # reason kind -> clips
    usage: dict[str, int]
    seconds: float


class WorkFile:
    """Finished clips of an unfinished run, one JSON line each; a torn last line is dropped."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self) -> dict[str, dict]:
        """clip id -> its record (the last one wins); the torn tail of an interrupted write is cut off."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StoreError(f"cannot read the work file {self.path}: {exc.strerror or exc}") from exc
        end = data.rfind(b"\n") + 1
        if end < len(data):
            with open(self.path, "r+b") as handle:  # a line cut short by a crash: drop it before appending
                handle.truncate(end)
        records: dict[str, dict] = {}
        for number, line in enumerate(data[:end].decode("utf-8", "replace").splitlines(), start=1):
            record = _work_record(line)
            if record is None:
                log.warning("%s line %d is not a clip record; ignored", self.path, number)
                continue
            records[record["clip_id"]] = record
        return records

    def open(self) -> None:
        try:
            make_folder(self.path.parent)
            self.path.touch(exist_ok=True)
        except OSError as exc:
            raise StoreError(f"store folder {self.path.parent} is not writable ({exc.strerror or exc}): "
                             "choose another with --store DIR or PROMPTKIT_STORE") from exc

    def append(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
        for folder in (self.path.parent, self.path.parent.parent):  # only when empty: a run that stored
            try:                                                       # nothing leaves no folder behind
                folder.rmdir()
            except OSError:
                break


def _work_record(line: str) -> dict | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("clip_id"), str):
        return None
    if not (isinstance(record.get("text"), str) and record["text"].strip()) and not isinstance(record.get("missing"), str):
        return None
    return record


def work_key(config: DescribeConfig, base_url: str, template_sha256: str) -> str:
    """A short hash of what changes the answers: the work file of one run, found again by the next."""
    what = [config.llm.model, endpoint_host(base_url), template_sha256, config.frames, sorted(config.settings.items())]
    return hashlib.sha256(json.dumps(what, default=str).encode("utf-8")).hexdigest()[:12]


def describe_clips(config: DescribeConfig, clips: Sequence[ClipSource], store: ClipTextStore,
                   progress: Progress | None = None, provenance: dict | None = None) -> DescribeSummary:
    """Ask for every clip not yet in the work file, then store the clip-text set `config.name`."""
    started = time.perf_counter()
    store.check_name(config.name)
    unique = _unique(clips)
    source = load_template(config.template)
    question = render_source(source, frames=config.frames)
    base_url = config.llm.resolved_base_url()
    work = WorkFile(store.work_path(config.name, work_key(config, base_url, source.sha256)))
    done = work.read()
    pending = [(cid, load) for cid, load in unique if cid not in done]
    resumed = len(unique) - len(pending)
    work.open()
    try:
        if pending:
            asyncio.run(_ask_pending(config.llm, question, pending, work, done, progress))
    except KeyboardInterrupt:
        raise KeyboardInterrupt(_kept(work, done, len(unique))) from None
    except ToolkitError as exc:
        raise DescribeError(f"{exc}{'; ' + _kept(work, done, len(unique)) if done else ''}") from exc
    finally:
        if not done:
            work.remove()
    records = [done[cid] for cid, _ in unique]
    usage = {key: sum(int(r.get("usage", {}).get(key, 0)) for r in records) for key in USAGE_KEYS}
    missing = {cid: r["missing"] for cid, r in zip((c for c, _ in unique), records) if "text" not in r}
    counts: dict[str, int] = {}
    for reason in missing.values():
        counts[reason_kind(reason)] = counts.get(reason_kind(reason), 0) + 1
    full = _provenance(config, source, base_url, usage, counts, provenance)
    texts = {cid: r["text"] for cid, r in zip((c for c, _ in unique), records) if "text" in r}
    result = store.add(config.name, texts, missing, full)
    work.remove()
    retried = sum(1 for r in records if r.get("tries", 1) > 1)
    return DescribeSummary(result, len(pending), resumed, retried, counts, usage, time.perf_counter() - started)


def _unique(clips: Sequence[ClipSource]) -> list[ClipSource]:
    """The clips in order, each id once (a clip listed twice is described once)."""
    seen: dict[str, ClipSource] = {}
    for cid, load in clips:
        if not isinstance(cid, str) or not cid.strip():
            raise DescribeError(f"a clip has an empty id ({cid!r})")
        seen.setdefault(cid, (cid, load))
    if not seen:
        raise DescribeError("no clips to describe: the lists are empty")
    return list(seen.values())


def _kept(work: WorkFile, done: dict, total: int) -> str:
    return (f"kept {len(done)} of {total} described clips in {work.path}; "
            "run the same command again to ask only for the rest")


def _provenance(config: DescribeConfig, source, base_url: str, usage: dict, counts: dict, extra: dict | None) -> dict:
    return {
        "source": "vision-llm",
        "model": config.llm.model,
        "endpoint_host": endpoint_host(base_url),
        "template": source.name,
        "template_sha256": source.sha256,
        "frames": config.frames,
        **config.settings,
        "sampling": {"temperature": config.llm.temperature, "max_tokens": config.llm.max_tokens},
        **(extra or {}),
        "usage": usage,
        "missing": counts,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "promptkit_version": toolkit_version(),
    }


async def _ask_pending(llm: LLMConfig, question: str, pending: list[ClipSource], work: WorkFile,
                       done: dict[str, dict], progress: Progress | None) -> None:
    """Ask for every pending clip (at most `llm.concurrency` at once); each outcome goes to the work
    file and `done` as it arrives. The first failure stops the others."""
    gate = asyncio.Semaphore(llm.concurrency)
    finished = 0
    async with ChatSession(llm) as session:

        async def one(cid: str, load: Callable[[], Sequence[bytes]]) -> None:
            nonlocal finished
            async with gate:
                images = await asyncio.to_thread(load)
                parts = [text_part(question), *(image_part(jpeg) for jpeg in images)]
                record = {"clip_id": cid, **await _screened(session, parts)}
            work.append(record)
            done[cid] = record
            finished += 1
            if progress is not None:
                progress(finished, len(pending))

        if progress is not None:
            progress(0, len(pending))
        tasks = [asyncio.ensure_future(one(cid, load)) for cid, load in pending]
        try:
            await first_error_cancels_all(tasks)
        finally:
            await cancel_and_reap(tasks)


async def _screened(session: ChatSession, parts: list[dict]) -> dict:
    """One clip's outcome: {"text"} or, after a second screened-out answer, {"missing": reason}."""
    usage = dict.fromkeys(USAGE_KEYS, 0)
    reason = ""
    for tries in (1, 2):
        text, used = await session.ask(parts)
        for key in USAGE_KEYS:
            usage[key] += used.get(key, 0)
        reason = screen_answer(text)
        if reason is None:
            return {"text": text.strip(), "usage": usage, "tries": tries}
    return {"missing": reason, "usage": usage, "tries": 2}


__all__ = ["DEFAULT_CLIP_TEMPLATE", "ClipSource", "DescribeConfig", "DescribeSummary", "describe_clips", "reason_kind",
           "screen_answer"]
