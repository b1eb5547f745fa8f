"""The chat prompts `ovchat eval` asks every model (a fixed, shipped, offline set).

Varied on purpose: an introduction, facts, explanations, poems, code, a summary, lists, a
translation, instructions, arithmetic, a letter, a rewrite, a story; some want one line,
some a page. Written for ovchat; none of them is in the calibration text (convert/calib.py)
or in the fidelity corpus.
"""

from __future__ import annotations

PARAGRAPH = (
    "The city council met on Tuesday evening to discuss the new bicycle lanes planned for "
    "the old town. Shop owners worried that fewer parking spaces would keep customers away, "
    "while cyclists said the narrow streets were dangerous without separate lanes. After two "
    "hours of debate, the council agreed to build the lanes on two streets first and to "
    "review the effect on local businesses after six months."
)
# (id, kind, prompt). Kinds: intro, fact, explain, poem, code, summary, list, translate,
# instruct, math, write, rewrite, story. Short and long answers on purpose.
PROMPTS: list[tuple[str, str, str]] = [
    ("intro", "intro", "can you introduce yourself?"),
    ("capital", "fact", "What is the capital of France?"),
    ("sky", "explain", "Why is the sky blue?"),
    ("sea-poem", "poem", "Write a short poem about the sea."),
    ("prime", "code", "Write a Python function that checks whether a number is prime."),
    ("summary", "summary", f"Summarize the following paragraph in one sentence:\n\n{PARAGRAPH}"),
    ("vitc", "list", "List five fruits that are high in vitamin C."),
    ("blackhole", "explain", "Explain what a black hole is in simple terms."),
    ("french", "translate", 'Translate into French: "Good morning, how are you today?"'),
    ("sleep", "list", "Give me three tips for better sleep."),
    ("virus", "explain", "What is the difference between a virus and a bacterium?"),
    ("haiku", "poem", "Write a haiku about autumn leaves."),
    ("tea", "instruct", "How do I make a cup of tea?"),
    ("mult", "math", "What is 15 multiplied by 12?"),
    ("email", "write", "Write a short email to my manager asking for a day off on Friday."),
    ("recursion", "explain", "Explain recursion to a beginner programmer."),
    ("climate", "explain", "What are the main causes of climate change?"),
    ("joke", "write", "Tell me a joke about cats."),
    (
        "sql",
        "code",
        "Write an SQL query that selects all customers from the table customers "
        "whose city is Paris.",
    ),
    (
        "formal",
        "rewrite",
        'Rewrite this sentence to be more formal: "hey, can u send me the report asap?"',
    ),
    ("exercise", "list", "What are the benefits of regular exercise?"),
    ("water", "explain", "Describe the water cycle in a few sentences."),
    ("pancakes", "instruct", "Give me a simple recipe for pancakes."),
    ("photo", "fact", "What is photosynthesis? Answer in two sentences."),
    (
        "story",
        "story",
        'Continue the story in a few sentences: "The old lighthouse keeper '
        'heard a knock at the door."',
    ),
    ("romeo", "fact", 'Who wrote "Romeo and Juliet"?'),
]
