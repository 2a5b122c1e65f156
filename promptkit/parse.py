"""Turn an LLM's free-text answer into short descriptor phrases, and rank them across samples.

Handles numbered and bulleted lists (nested ones too), markdown bold / italics / headers, a single
run-on sentence ("... include raised cheeks, narrowed eyes, and a wide smile."), one cue per line,
and the chatter around them ("Sure! Here are ...", "Let me know ...", refusals, sign-offs), which
never survives: a phrase that addresses the reader or speaks as the model ("I", "you") is dropped,
and only a face part ("Eyes:", "### Mouth") is prefixed to the items under it, never a filler
heading ("Here you go:", "### Visual features of helplessness").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LIST_ITEM = re.compile(r"^(?P<indent>\s*)(?:[-*+\u2022\u2023\u25e6\u2013\u2014]|\(?\d{1,2}[.)]|\(?[a-zA-Z][.)])\s+(?P<text>.+)$")
_HEADER = re.compile(r"^\s*#{1,6}\s*(?P<text>.*?)\s*#*\s*$")
_INLINE_NUMBERS = re.compile(r"(?:^|\s)\(?\d{1,2}[.)]\s+")
_ECHO = re.compile(r"^\s*(?:q|a|answer|response)\s*:\s*", re.IGNORECASE)
_CHATTER = re.compile(
    r"^(?:sure|certainly|of course|absolutely|great question|good question|happy to|glad to|okay\b|ok\b"
    r"|here(?:'s| is| are)|below (?:is|are)|the following|i hope|hope (?:this|that)|let me know|feel free"
    r"|if you(?:'d)? (?:need|have|want|would|like)|these (?:features|cues|signs|are|visual|indicators|expressions)"
    r"|together,? these|overall|in summary|in conclusion|to summari[sz]e|in short|note\b|please note"
    r"|keep in mind|remember\b|it(?: is|'s) (?:important|worth|essential)|however\b|as an ai"
    r"|i(?:'m| am) (?:sorry|an ai|happy|glad|not|unable)|i cannot|i can't|i can not|sorry\b|thank"
    r"|would you like|do you want|good luck|cheers\b"
    r"|i(?:'d| would| will|'ll| can| could| do not| don't| have| hope| think| believe)\b|unfortunately|regrettably"
    r"|here (?:you go|we go|goes)|as requested|happy to help|hope you|have a (?:great|good|nice|wonderful|lovely)"
    r"|enjoy\b|without (?:more|additional|further|any)|(?:more|additional) (?:context|information|details)"
    r"|there(?:'s| is) no (?:single|one)|it (?:really )?depends|every(?:one|body)\b|people\b|each (?:person|individual)"
    r"|emotions? (?:are|is|can|may|vary)|(?:facial )?expressions? (?:can|may|vary|differ|are|is))",
    re.IGNORECASE,
)
# Descriptors describe a face; a phrase that talks to or about the reader or the model is chatter.
_PERSONAL = re.compile(r"\b(?:i|i'm|i'd|i've|i'll|me|my|you|your|you're|yours|we|our|let's)\b", re.IGNORECASE)
_LEAD_IN = re.compile(
    r"^.*?\b(?:features|cues|signs|characteristics|indicators|traits|clues)\b.*?"
    r"\b(?:include|includes|including|are|such as|involve|involves)\b\s*:?\s*",
    re.IGNORECASE,
)
_HEAD_SPLIT = re.compile(r"\s*(?::\s+|:$|\s[-\u2013\u2014]\s)\s*")
_CLAUSE_SPLIT = re.compile(
    r"\s*(?:[,;]|\s[-\u2013\u2014]\s|\b(?:that|which|where|while|creating|causing|giving|making|producing"
    r"|resulting|indicating|suggesting|often|usually|typically)\b)\s*"
)
_FACE_WORDS = re.compile(
    r"\b(?:brows?|eyebrows?|eyes?|eyelids?|lids?|lashes|forehead|cheeks?|cheekbones?|nose|nostrils?|mouth"
    r"|lips?|jaw|chin|teeth|tooth|tongue|head|face|facial|gaze|stare|glare|look|smile|frown|grin|pupils?"
    r"|wrinkles?|dimples?|muscles?|skin|tears?|blink\w*|shoulders?|neck)\b",
    re.IGNORECASE,
)
# Face parts proper: a prose sentence that names none ("Facial expressions can vary a lot") is talk
# about expressions, not a visual cue.
_PART_WORDS = re.compile(_FACE_WORDS.pattern.replace("|head|face|facial|gaze|stare|glare|look|", "|head|gaze|stare|glare|"),
                         re.IGNORECASE)
# Facial movements and looks that name no face part ("a smirk", "squinting", "tearful"): with the face
# parts, what makes a phrase a facial cue at all (`about_face`).
_FACIAL_ACTIONS = re.compile(
    r"\b(?:smil\w*|frown\w*|grin\w*|grimac\w*|scowl\w*|pout\w*|sneer\w*|smirk\w*|squint\w*|glar\w*"
    r"|star(?:e|es|ed|ing)|wink\w*|blush\w*|flush\w*|tear\w*|cry\w*|crie[sd]|sob\w*|yawn\w*|gap(?:e|es|ed|ing)"
    r"|\w+-eyed|\w+-lipped|\w+-browed|expressions?|expressionless|countenance|complexion|temples?|iris(?:es)?"
    r"|crow'?s|nasolabial|philtrum)\b",
    re.IGNORECASE,
)
_MAX_DESCRIPTOR_WORDS = 10
_MAX_HEAD_WORDS = 8


@dataclass
class _Line:
    indent: int  # -1 for markdown headers
    text: str
    is_item: bool


def parse_answer(text: str | None) -> list[str]:
    """Descriptor phrases in the answer's order, de-duplicated; [] when nothing usable is found."""
    lines = _split_lines(_strip_markdown(text or ""))
    if any(line.is_item for line in lines):
        phrases = _from_list(lines)
    else:
        phrases = _from_prose(lines)
    return _dedupe(p for p in (_clean(p) for p in phrases) if p)


def about_face(phrase: str) -> bool:
    """Does the phrase describe the face: name a face part or a facial movement or look?"""
    return bool(_FACE_WORDS.search(phrase) or _FACIAL_ACTIONS.search(phrase))


def rank_descriptors(samples: list[list[str]]) -> list[str]:
    """Merge several answers' descriptors: rank by frequency, then by first appearance; de-duplicate."""
    counts: dict[str, int] = {}
    first: dict[str, tuple[int, str]] = {}
    order = 0
    for descriptors in samples:
        for phrase in dict.fromkeys(_key(d) for d in descriptors):  # count once per sample
            counts[phrase] = counts.get(phrase, 0) + 1
        for descriptor in descriptors:
            key = _key(descriptor)
            if key and key not in first:
                first[key] = (order, descriptor)
                order += 1
    ranked = sorted(first, key=lambda k: (-counts[k], first[k][0]))
    return [first[k][1] for k in ranked]


def _strip_markdown(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = re.sub(r"\*\*(.+?)\*\*|__(.+?)__", lambda m: m.group(1) or m.group(2), text)
    text = re.sub(r"(?<![\w*])\*(?!\s)([^*\n]+?)\*(?!\w)", r"\1", text)  # *italic*, not bullets
    text = re.sub(r"(?<!\w)_(?!\s)([^_\n]+?)_(?!\w)", r"\1", text)
    return text.replace("`", "")


def _split_lines(text: str) -> list[_Line]:
    out: list[_Line] = []
    for raw in text.split("\n"):
        if not raw.strip() or re.fullmatch(r"\s*[-=*_]{3,}\s*", raw):
            continue
        header = _HEADER.match(raw)
        if header:
            out.append(_Line(-1, header.group("text").strip().rstrip(":") + ":", False))
            continue
        raw = _ECHO.sub("", raw)
        inline = _INLINE_NUMBERS.split(raw)
        if len(inline) >= 3:  # "1) furrowed brow 2) clenched jaw ..." on one line
            lead = inline[0].strip()
            if lead:
                out.append(_Line(0, lead, False))
            out.extend(_Line(0, part.strip(), True) for part in inline[1:] if part.strip())
            continue
        item = _LIST_ITEM.match(raw)
        if item:
            indent = len(item.group("indent").expandtabs(4))
            out.append(_Line(indent, item.group("text").strip(), True))
        else:
            out.append(_Line(len(raw) - len(raw.lstrip()), raw.strip(), False))
    return out


def _from_list(lines: list[_Line]) -> list[str]:
    """List items become descriptors; a heading or an item ending in ':' names the items under it."""
    phrases: list[str] = []
    category: tuple[int, str] | None = None  # (indent, name); indent -1: a heading or bold label line
    for line in lines:
        is_category = line.text.endswith(":") and not _CHATTER.match(line.text)
        if line.is_item and category is not None and line.indent <= category[0] and not is_category:
            category = None
        if is_category and (line.is_item or line.indent < 0 or _is_short(line.text)):
            name = line.text.rstrip(":").strip()
            indent = line.indent if line.is_item else -1
            # Only a face part ("Eyes:", "Upper face") names the items under it; other headings
            # ("Here you go:", "Visual features of helplessness") just end the previous group.
            category = (indent, name) if _is_short(name, 4) and _FACE_WORDS.search(name) else None
            continue
        if not line.is_item:
            continue  # prose around a list: preambles, closings, explanations
        phrase = _item_phrase(line.text)
        if phrase and category is not None:
            phrase = _with_part(category[1], phrase)  # "Eyes:" / "- sparkling" -> "eyes sparkling"
        phrases.append(phrase)
    return phrases


def _from_prose(lines: list[_Line]) -> list[str]:
    """Sentences and run-on lists: drop chatter, strip lead-ins, split enumerations at commas."""
    phrases: list[str] = []
    for line in lines:
        for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z\"'])", line.text):
            sentence = sentence.strip()
            if not sentence or _CHATTER.match(sentence):
                continue
            lead = _LEAD_IN.match(sentence)
            if lead:
                sentence = sentence[lead.end():]
            elif ":" in sentence and _is_short(sentence.split(":", 1)[0], 12):
                head, tail = sentence.split(":", 1)
                sentence = tail if tail.strip() else head
            parts = [p.strip() for p in re.split(r"\s*[,;]\s*", sentence) if p.strip()]
            if lead or len(parts) >= 3:
                phrases.extend(parts)
            else:
                phrase = _item_phrase(sentence)
                if _words(phrase) < 5 or _PART_WORDS.search(phrase):  # a cue, or a sentence about a face part
                    phrases.append(phrase)
    return phrases


def _item_phrase(text: str) -> str:
    """One list item -> a short phrase: its bold/label head, or its first clause."""
    text = re.sub(r"\s*\([^)]*\)", "", text).strip()
    pieces = _HEAD_SPLIT.split(text, maxsplit=1)
    head = pieces[0].strip()
    tail = pieces[1].strip() if len(pieces) > 1 else ""
    if tail and 2 <= _words(head) <= _MAX_HEAD_WORDS:
        return head
    if tail and _words(head) == 1:
        clause = _first_clause(tail)
        return _with_part(head, clause)
    return _first_clause(text if not tail else f"{head} {tail}")


def _with_part(part: str, phrase: str) -> str:
    """Prefix a face part ("mouth") unless the phrase already names one near its start."""
    start = " ".join(phrase.split()[:3])
    if _FACE_WORDS.search(start) or part.lower().rstrip("s") in phrase.lower():
        return phrase
    return f"{part} {_lower_first(phrase)}"


def _first_clause(text: str) -> str:
    text = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    if _words(text) <= _MAX_DESCRIPTOR_WORDS:
        return text
    return _CLAUSE_SPLIT.split(text, maxsplit=1)[0]


def _clean(phrase: str) -> str:
    phrase = re.sub(r"\s+", " ", phrase).strip()
    phrase = phrase.strip(" \"'\u201c\u201d\u2018\u2019*_")
    phrase = re.sub(r"^(?:and|or|also|plus)\s+", "", phrase, flags=re.IGNORECASE)
    phrase = phrase.rstrip(" .,;:!?").strip()
    if not re.search(r"[A-Za-z]", phrase) or _CHATTER.match(phrase) or _PERSONAL.search(phrase):
        return ""
    if _words(phrase) > 2 * _MAX_DESCRIPTOR_WORDS:
        return ""
    return _lower_first(phrase)


def _lower_first(text: str) -> str:
    if len(text) > 1 and text[1].isupper():  # an acronym such as "AU12"
        return text
    return text[:1].lower() + text[1:]


def _dedupe(phrases) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for phrase in phrases:
        key = _key(phrase)
        if key and key not in seen:
            seen.add(key)
            out.append(phrase)
    return out


def _key(phrase: str) -> str:
    key = re.sub(r"[^a-z0-9 ]+", " ", phrase.lower())
    key = re.sub(r"^(?:a|an|the)\s+", "", key.strip())
    return re.sub(r"\s+", " ", key).strip()


def _words(text: str) -> int:
    return len(text.split())


def _is_short(text: str, limit: int = 6) -> bool:
    return 0 < _words(text) <= limit
