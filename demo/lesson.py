"""The lesson: the seed post's story as one ordered path that a teacher walks with Next and Back. Each step is a
link (``demo.links``) that opens the right tab with the right settings and the same picture for everyone, plus a
few sentences on what to look at. Next and Back are plain links, so a step can be bookmarked or shared too."""
from __future__ import annotations

import html
from dataclasses import dataclass
from urllib.parse import urlencode

from pixelar.inputs import whole_number


@dataclass(frozen=True)
class LessonStep:
    title: str
    text: str  # plain text (shown escaped)
    link: dict[str, str]  # the query that opens it


SEED = "2024"  # one seed for the whole lesson: every student sees the same pictures
LESSON = (
    LessonStep("V1 draws streaks", "V1 sees only the 28 pixels before the one it draws: one row. It cannot tell the top "
               "of the image from the bottom, so strokes run on and smear sideways.",
               {"tab": "generate", "model": "v1", "digit": "-1", "seed": SEED, "n": "16"}),
    LessonStep("V2 knows where it is", "The only new input is the pixel's row and column. Blank margins appear, and "
               "strokes start and stop.", {"tab": "generate", "model": "v2", "digit": "-1", "seed": SEED, "n": "16"}),
    LessonStep("V3 can be asked for a digit", "Learned embeddings and the class: ask for a 3 and you get a 3. Same "
               "28-pixel window as V1.", {"tab": "generate", "model": "v3", "digit": "3", "seed": SEED, "n": "16"}),
    LessonStep("Colder: temperature 0.7", "Cooling sharpens every distribution towards its likeliest bin. Strokes thin "
               "out, and some never start: the first bright pixel of a stroke is an unlikely pick.",
               {"tab": "generate", "model": "v3", "digit": "3", "seed": SEED, "n": "16", "t": "0.7"}),
    LessonStep("Warmer: temperature 1.3", "Warming flattens every distribution: unlikely bins are drawn everywhere, and "
               "noise creeps in.", {"tab": "generate", "model": "v3", "digit": "3", "seed": SEED, "n": "16", "t": "1.3"}),
    LessonStep("Entropy: where the model hesitates", "Beside each digit, its entropy map: bright where the model was "
               "unsure of the next pixel, mostly at the edges of strokes; dark on the blank background.",
               {"tab": "generate", "model": "v3", "digit": "3", "seed": SEED, "n": "8", "entropy": "1"}),
    LessonStep("One pixel at a time", "Step 300 of 784. The blue outline is all the model sees; the bars are its 16 "
               "probabilities, and orange is the bin it drew. Press Play, or use ← and →.",
               {"tab": "step", "model": "v3", "digit": "3", "seed": SEED, "step": "300"}),
    LessonStep("What if?", "The same dice, one pixel forced to white at step 300: both futures side by side. One "
               "pixel can redraw the rest of the digit.",
               {"tab": "step", "model": "v3", "digit": "3", "seed": SEED, "step": "300", "whatif": "300:15"}),
    LessonStep("More context", "This V3 sees the 56 previous pixels, two rows: the outline is twice as long, and "
               "strokes line up better with the row above.",
               {"tab": "step", "model": "v3-context56", "digit": "3", "seed": SEED, "step": "300"}),
    LessonStep("V4 sees the whole past", "V4 is a small PixelCNN: every earlier pixel, not a window. Compare its "
               "outline with V3's.", {"tab": "step", "model": "v4", "digit": "3", "seed": SEED, "step": "400"}),
    LessonStep("Where it looked", "Paused, the green dots show which earlier pixels moved V4's choice most: mostly "
               "near the pixel, but sometimes far above it.",
               {"tab": "step", "model": "v4", "digit": "3", "seed": SEED, "step": "400", "look": "1"}),
    LessonStep("Your own digit", "Draw a digit: the models that draw digits can also read them, by Bayes' rule.",
               {"tab": "draw"}),
)


def step_number(value) -> int:
    """A lesson step from a link, 1 to ``len(LESSON)``."""
    return whole_number(value, "The lesson's step", 1, len(LESSON))


def step_href(number: int) -> str:
    """The link that opens step ``number`` (1-based) of the lesson."""
    return "?" + urlencode({**LESSON[number - 1].link, "lesson": number})


def lesson_html(number: int) -> str:
    """The lesson bar for step ``number``: where we are, what to look at, Back and Next (plain links)."""
    step = LESSON[number - 1]
    back = f'<a class="lesson-back" href="{html.escape(step_href(number - 1))}">◀ Back</a>' if number > 1 else ""
    ahead = (f'<a class="lesson-next" href="{html.escape(step_href(number + 1))}">Next ▶</a>' if number < len(LESSON)
             else '<a class="lesson-next" href="?">End of the lesson</a>')
    return (f'<div class="lesson-bar"><span class="lesson-moves">{back}{ahead}</span>'
            f'<span class="lesson-where">Lesson {number} of {len(LESSON)}</span>'
            f'<span><b class="lesson-title">{html.escape(step.title)}</b>'
            f'<span class="lesson-text">{html.escape(step.text)}</span></span></div>')
