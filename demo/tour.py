"""The guided tour: a short "What to try here" under each tab's introduction, closed until a student opens it.
Together they tell the seed post's story in order: V1 streaks, V2 positions, V3 embeddings and classes,
temperature, entropy; then real images and training."""
from __future__ import annotations

import gradio as gr

TOURS = {
    "generate": """
1. **V1 draws streaks.** Pick **V1** and press Generate. It sees only the 28 pixels before the one it draws
   (one row), so it cannot tell the top of the image from the bottom: strokes run on and smear sideways.
2. **V2 knows where it is.** Pick **V2**. The only new input is the pixel's row and column, and the digits
   gain vertical structure: blank margins, strokes that start and stop.
3. **V3 can be asked for a digit.** Pick **V3** and a digit. Learned token embeddings and the class make real,
   readable digits. Press **Compare V1 · V2 · V3** to see all three with the same dice.
4. **Temperature.** Press **Temperature strip**: the same digit and seed at 0.7, 0.85, 1 and 1.3. Colder, the
   strokes thin out and can vanish (a stroke always starts with an unlikely pixel); warmer, noise creeps in.
   **Top-k** and **top-p** cut the unlikely bins off instead of reweighting them all.
5. **Entropy.** Tick *Entropy maps too*: bright pixels are where the model hesitated, mostly at stroke edges.
""",
    "step": """
1. Press **Sample**, then drag the step slider to about 300 (or type 300): the blue outline is all the model sees.
   Keys: ←/→ one step, Shift+←/→ one row, Space play/pause, Home/End. **⛶ Present** fills the screen.
2. Watch the **bars**: on the blank margin one bin (black) takes almost all the probability; at a stroke's
   edge the bars spread out and the **entropy** rises. Both maps are bright where something notable happened.
3. **What if?** Click another bar: the rest of the image is redrawn with the same dice and both futures play
   side by side. One pixel can change the whole digit, or nothing at all.
4. Move **Reshape the bars: T, top-k, top-p** under the player: the pink outlines show how this step's choice
   would reshape.
""",
    "explore": """
1. **Complete it.** Keep the top 14 rows of a real digit and let **V3** finish it four times: the completions
   agree where the top rows leave no doubt and differ where they do.
2. Now ask V3 to finish a **3 as an 8** (change the class): how far can the class bend what the rows began?
   Try **V1** and **V2** on the same rows: without the class they guess.
3. **Surprise map.** Open it: bright pixels are the ones a model did not expect, mostly at the edges
   and starts of strokes. V3 usually needs the fewest bits in total.
""",
    "train": """
1. Train a **Quick** V1 and a **Quick** V3 on MNIST and compare their loss curves: V3's falls lower.
2. The held-out dots are the honest ones: when they stop falling while the training line keeps going down, the
   model is memorising. The axis is logarithmic, so the learning below 1 bit per pixel shows as clearly as the
   first drop from a blind guess (log₂ K bits: 4 at K 16).
3. Pick **Fashion-MNIST** to train on clothes instead of digits: the class picker then offers "Trouser",
   "Sneaker", ... instead of 0-9.
""",
}


def guided_tour(tab: str) -> gr.Accordion:
    """The tab's "What to try here" accordion (closed)."""
    with gr.Accordion("What to try here", open=False, elem_classes="guided-tour") as accordion:
        gr.Markdown(TOURS[tab])
    return accordion
