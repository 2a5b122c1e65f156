"""`promptkit describe-clips`: ask a vision LLM how the face changes in each clip of some lists, and
store the answers as a clip-text set.

A promptkit command that reads clips, so trainer provides it through the `promptkit.commands` entry
point (`register`, named in pyproject.toml). Thin: the clips come from `trainer.data.clip_images`,
the asking, screening, resuming and storing from `promptkit.describe`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from promptkit.cliptexts import ClipTextStore
from promptkit.llm import LLMConfig
from promptkit.store import resolve_store_root

from trainer.commands.run_view import RateProgress

Opt = typer.Option


def describe_clips(
    lists: Annotated[list[Path], Opt("--list", help="A clip list (list file or CSV, as `trainer run` reads them); repeat for several.")],
    model: Annotated[str, Opt("--model", help="A vision model at the endpoint.")],
    data_root: Annotated[Optional[Path], Opt("--data-root", help="Where the lists' clips live (remaps paths from another machine; clip ids are relative to it).")] = None,
    base_url: Annotated[Optional[str], Opt("--base-url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, else OpenAI).")] = None,
    frames: Annotated[int, Opt("--frames", help="Frames per clip, sampled evenly (1-16).")] = 4,
    image_size: Annotated[int, Opt("--image-size", help="Longer side of each frame sent, in pixels (never enlarged).")] = 336,
    template: Annotated[Optional[str], Opt("--template", help="The question: a shipped template name or a .j2 file (variable: frames); default clip_describe.")] = None,
    concurrency: Annotated[int, Opt("--concurrency", help="Clips read and asked at once.")] = 8,
    retries: Annotated[int, Opt("--retries", help="Retries on 429, 5xx, timeouts (exponential backoff).")] = 3,
    timeout: Annotated[float, Opt("--timeout", help="Seconds per request before it is retried.")] = 120.0,
    max_tokens: Annotated[int, Opt("--max-tokens", help="Longest answer, in LLM tokens.")] = 200,
    temperature: Annotated[float, Opt("--temperature")] = 0.2,
    store: Annotated[Optional[Path], Opt("--store", help="Your store (default: $PROMPTKIT_STORE, else ~/.local/share/promptkit); the set goes to <store>/clip-texts/<name>/vN.json.")] = None,
    name: Annotated[Optional[str], Opt("--name", help="Clip-text set name (default: the first list's folder name).")] = None,
    as_json: Annotated[bool, Opt("--json", help="Print the summary as JSON.")] = False,
) -> None:
    """Describe every clip of the lists with a vision LLM (how brows, eyes, nose, mouth and jaw change
    across the frames) and store the answers as a clip-text set. Interrupted, the same command resumes."""
    from promptkit.describe import DEFAULT_CLIP_TEMPLATE, DescribeConfig
    from promptkit.describe import describe_clips as describe

    from trainer.data.clip_images import clip_images, default_name

    llm = LLMConfig(model=model, base_url=base_url, temperature=temperature, max_tokens=max_tokens,
                    concurrency=concurrency, retries=retries, timeout=timeout)
    config = DescribeConfig(llm, name or default_name(lists[0]), frames, template or DEFAULT_CLIP_TEMPLATE,
                            settings={"image_size": image_size})
    the_store = ClipTextStore(resolve_store_root(store))
    the_store.check_name(config.name)
    llm.resolved_base_url(), llm.resolved_api_key()  # a bad endpoint or no key: said before any clip is read
    clips = clip_images(lists, data_root, frames, image_size)
    err = Console(stderr=True, highlight=False)
    with RateProgress(err, "describing clips") as progress:
        summary = describe(config, clips.sources, the_store, progress, {"lists": clips.lists})
    if as_json:
        typer.echo(json.dumps(_summary_dict(summary), indent=2, ensure_ascii=False))
        return
    for line in _summary_lines(summary):
        typer.echo(line)


def _summary_dict(summary) -> dict:
    cts = summary.set
    return {"set_id": cts.set_id, "path": str(cts.path), "content_hash": cts.content_hash,
            "clips": len(cts.texts) + len(cts.missing), "texts": len(cts.texts), "missing": summary.missing,
            "asked": summary.asked, "resumed": summary.resumed, "retried": summary.retried,
            "usage": summary.usage, "seconds": round(summary.seconds, 3)}


def _summary_lines(summary) -> list[str]:
    cts = summary.set
    total = len(cts.texts) + len(cts.missing)
    missing = ", ".join(f"{reason} {count}" for reason, count in sorted(summary.missing.items()))
    rate = summary.asked / summary.seconds if summary.seconds > 0 else 0.0
    usage = summary.usage
    return [
        f"wrote {cts.set_id} to {cts.path}: {total} clips, {len(cts.texts)} texts, "
        f"{len(cts.missing)} missing" + (f" ({missing})" if missing else ""),
        f"asked {summary.asked} clips ({rate:.2f} clips/s), {summary.resumed} resumed from an earlier run, "
        f"{summary.retried} asked twice after a screened-out answer",
        f"tokens: {usage['prompt_tokens']} prompt + {usage['completion_tokens']} completion = {usage['total_tokens']}",
    ]


def register(app: typer.Typer) -> None:
    """Add describe-clips to the root `promptkit` app (the `promptkit.commands` entry point)."""
    app.command("describe-clips", short_help="Describe clips with a vision LLM; store a clip-text set.")(describe_clips)


__all__ = ["register"]
