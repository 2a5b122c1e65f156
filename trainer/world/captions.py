"""Plain-words captions of a face frame: its visible facial actions and its appearance.

Each AU above a threshold becomes one phrase, picked from several synonyms (the phrasings LLMs use
for these features among them); raised inner and outer brows together read as raised eyebrows.
Appearance (skin, face shape, background, hair) is added in varied templates. A caption never
names an emotion: `FORBIDDEN` lists the words (class names and their forms) that must not appear.
"""

from __future__ import annotations

import numpy as np

from trainer.world.aus import AU_INDEX, CLASSES
from trainer.world.face import Identity

THRESHOLD = 0.25  # weaker movements are not mentioned

PHRASES: dict[str, tuple[str, ...]] = {
    "inner_brow_raise": ("inner brows raised", "inner brow corners raised", "raised inner eyebrows",
                         "eyebrows slanted up in the middle"),
    "outer_brow_raise": ("outer brows raised", "outer ends of the eyebrows lifted", "arched eyebrows"),
    "brows_raise": ("eyebrows raised", "raised eyebrows", "brows raised high and curved",
                    "horizontal forehead wrinkles"),
    "brow_lower": ("brows lowered and pulled together", "furrowed brows", "vertical lines between the brows",
                   "lowered brows", "knitted eyebrows"),
    "upper_lid_raise": ("upper eyelids raised", "eyes wide open", "wide staring eyes",
                        "eyes wide open with white above the iris"),
    "cheek_raise": ("cheeks raised", "lower eyelids pushed up", "crow's feet wrinkles at the outer eye corners"),
    "lid_tighten": ("eyelids tightened", "narrowed eyes", "tense lower lids", "squinting eyes"),
    "lid_droop": ("drooping upper eyelids", "heavy upper lids", "half-closed eyes", "lowered eyelids"),
    "nose_wrinkle": ("nose wrinkled", "wrinkled nose", "creases across the nose", "flared nostrils"),
    "upper_lip_raise": ("upper lip raised", "raised upper lip", "curled upper lip"),
    "lip_corner_pull": ("lip corners pulled up", "lip corners pulled up and back", "mouth corners turned up",
                        "corners of the mouth raised"),
    "lip_corner_depress": ("lip corners pulled down", "downturned mouth corners", "mouth corners turned down",
                           "corners of the mouth lowered"),
    "lip_stretch": ("lips stretched sideways", "lips stretched back horizontally", "mouth pulled wide",
                    "stretched lips"),
    "lip_press": ("lips pressed together", "lips pressed tight", "tightened lips", "thin tight lips"),
    "lips_part": ("lips parted", "mouth slightly open", "parted lips", "lips parted and relaxed"),
    "jaw_drop": ("jaw dropped", "mouth open wide", "dropped jaw", "open mouth"),
}
RESTING = ("a relaxed face", "a resting face", "no facial movement", "relaxed features", "a still face",
           "relaxed brow without wrinkles", "smooth cheeks")
ABSENT = {  # said now and then of a part that does not move
    "mouth": ("mouth closed", "lips closed and relaxed", "level mouth corners", "closed mouth"),
    "brows": ("brows level", "relaxed smooth brow", "eyebrows at rest"),
    "eyes": ("eyes open at rest", "eyes relaxed"),
}
BLINK = ("eyes closed", "eyes shut", "a blink")
TEMPLATES = (  # (template, weight): appearance is named in one caption in seven
    ("{aus}", 10), ("a face with {aus}", 6), ("a drawing of a face: {aus}", 2), ("{aus}; a {look}", 1),
    ("a {look} with {aus}", 1), ("a face showing {aus}, {bg} background", 1), ("{aus}. {skin} skin, {shape} face", 1),
    ("a {shape} face, {aus}", 1),
)
_WEIGHTS = np.array([w for _, w in TEMPLATES], dtype=float) / sum(w for _, w in TEMPLATES)
FORBIDDEN = tuple(CLASSES) + ("happy", "sad", "angry", "surprised", "disgusted", "fearful", "afraid", "scared",
                              "smile", "smiling", "frown", "frowning", "emotion", "expression")


def visible_actions(au: np.ndarray, blink: bool = False) -> set[str]:
    """The actions a caption of this frame names (a blink hides the lid and cheek actions)."""
    on = {k for k, i in AU_INDEX.items() if au[i] >= THRESHOLD}
    if blink:
        on -= {"upper_lid_raise", "lid_tighten", "lid_droop", "cheek_raise"}
    return on


def action_vector(au: np.ndarray, blink: bool = False) -> np.ndarray:
    """What a caption says, as a vector `(N_AUS + 2,)`: one entry per action, blink, resting."""
    on = visible_actions(au, blink)
    out = np.zeros(len(AU_INDEX) + 2, dtype=np.float32)
    for k in on:
        out[AU_INDEX[k]] = 1.0
    out[-2] = float(blink)
    out[-1] = float(not on and not blink)
    return out


def action_phrases(au: np.ndarray, rng: np.random.Generator, blink: bool = False) -> list[str]:
    """One phrase per visible action (shuffled), or a resting phrase when nothing moves."""
    on = visible_actions(au, blink)
    keys = sorted(on)
    if {"inner_brow_raise", "outer_brow_raise"} <= on and rng.random() < 0.7:
        keys = [k for k in keys if k not in ("inner_brow_raise", "outer_brow_raise")] + ["brows_raise"]
    phrases = [str(rng.choice(PHRASES[k])) for k in keys]
    if blink:
        phrases.append(str(rng.choice(BLINK)))
    mouth = {"lips_part", "jaw_drop", "lip_stretch"} & on
    brows = {"inner_brow_raise", "outer_brow_raise", "brow_lower"} & on
    for part, busy in (("mouth", mouth), ("brows", brows)):
        if not busy and phrases and rng.random() < 0.3:
            phrases.append(str(rng.choice(ABSENT[part])))
    if not phrases:
        phrases = [str(rng.choice(RESTING))]
        for part in ("brows", "mouth", "eyes"):
            if rng.random() < 0.4:
                phrases.append(str(rng.choice(ABSENT[part])))
    rng.shuffle(phrases)
    return phrases


def caption(au: np.ndarray, ident: Identity, rng: np.random.Generator, blink: bool = False) -> str:
    """A caption of one frame: its actions and, in most templates, its appearance."""
    phrases = action_phrases(au, rng, blink)
    joined = ", ".join(phrases[:-1]) + (" and " if len(phrases) > 1 else "") + phrases[-1]
    hair = " with hair" if ident.hair and rng.random() < 0.5 else ""
    look = f"{ident.skin} {ident.shape} face{hair} on {_a(ident.background)} {ident.background} background"
    template = TEMPLATES[int(rng.choice(len(TEMPLATES), p=_WEIGHTS))][0]
    text = template.format(aus=joined, look=look, skin=ident.skin, shape=ident.shape, bg=ident.background)
    return text.replace("a {0}".format(ident.skin), f"{_a(ident.skin)} {ident.skin}", 1) if ident.skin[0] in "aeiou" else text


def _a(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def caption_token_ids() -> frozenset[int]:
    """Every BPE token a caption of the world can contain: the vocabulary the tiny face-CLIP's text
    side was trained on (`interpret` reads learned contexts against it)."""
    from promptkit.tokens import encode_text

    from trainer.world.face import BACKGROUNDS, FACE_SHAPES, SKIN_TONES

    texts = [p for group in PHRASES.values() for p in group] + list(RESTING) + list(BLINK)
    texts += [p for group in ABSENT.values() for p in group] + [t for t, _ in TEMPLATES]
    texts += list(SKIN_TONES) + list(FACE_SHAPES) + list(BACKGROUNDS) + ["with hair on a an background skin face and"]
    return frozenset(i for text in texts for i in encode_text(text.replace("{", " ").replace("}", " ")))
