"""Text of the synthetic world: topic vocabularies and the generators of titles, descriptions,
profiles and search queries.

The words are plain English so that a general-purpose sentence encoder recovers the topics
from text alone; which words appear is driven by the latent topic mixes, so text carries real
(and measurable) signal about interests and items.
"""

from __future__ import annotations

import numpy as np

# name -> (adjectives, nouns). Each topic's words are its own; overlaps would blur recovery.
TOPICS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "hiking": (("rugged", "alpine", "trail-ready"), ("boots", "backpack", "trekking poles", "trail map", "summit", "canteen")),
    "running": (("lightweight", "breathable", "cushioned"), ("running shoes", "marathon", "sprint", "jogging shorts", "race bib", "stopwatch")),
    "cooking": (("savory", "homemade", "rustic"), ("skillet", "recipe", "chef's knife", "spice rack", "stew", "cutting board")),
    "baking": (("golden", "fluffy", "buttery"), ("sourdough", "croissant", "pastry", "rolling pin", "oven mitt", "cake tin")),
    "jazz": (("smooth", "swinging", "improvised"), ("saxophone", "trumpet", "bebop", "double bass", "vinyl record", "jam session")),
    "astronomy": (("celestial", "deep-sky", "stellar"), ("telescope", "nebula", "star chart", "galaxy", "eyepiece", "comet")),
    "gardening": (("organic", "blooming", "perennial"), ("seedlings", "compost", "trowel", "greenhouse", "tulips", "watering can")),
    "photography": (("cinematic", "wide-angle", "vintage"), ("camera", "lens", "tripod", "darkroom", "portrait", "shutter")),
    "chess": (("tactical", "strategic", "grandmaster"), ("chessboard", "opening", "endgame", "gambit", "checkmate", "pawn")),
    "cycling": (("aerodynamic", "carbon", "geared"), ("road bike", "helmet", "pedals", "derailleur", "saddle", "velodrome")),
    "poetry": (("lyrical", "melancholic", "rhyming"), ("sonnet", "verse", "haiku", "anthology", "stanza", "poet")),
    "robotics": (("autonomous", "programmable", "servo-driven"), ("robot arm", "microcontroller", "sensor", "actuator", "circuit board", "drone")),
    "fishing": (("freshwater", "deep-sea", "fly-cast"), ("fishing rod", "reel", "tackle box", "lure", "trout", "angler")),
    "yoga": (("mindful", "restorative", "flowing"), ("yoga mat", "meditation", "stretching", "breathwork", "pose", "retreat")),
    "skincare": (("hydrating", "gentle", "fragrance-free"), ("moisturizer", "serum", "sunscreen", "cleanser", "face mask", "toner")),
    "gaming": (("multiplayer", "retro", "open-world"), ("console", "controller", "video game", "headset", "quest", "arcade")),
    "history": (("ancient", "medieval", "imperial"), ("empire", "castle", "archive", "dynasty", "battlefield", "manuscript")),
    "coffee": (("single-origin", "dark-roast", "aromatic"), ("espresso", "coffee beans", "grinder", "latte", "french press", "barista")),
    "woodworking": (("handcrafted", "solid-oak", "dovetailed"), ("chisel", "workbench", "lathe", "sandpaper", "hand plane", "joinery")),
    "sailing": (("nautical", "windswept", "seaworthy"), ("sailboat", "mainsail", "anchor", "harbor", "compass", "regatta")),
    "knitting": (("cozy", "chunky", "hand-dyed"), ("yarn", "knitting needles", "scarf", "sweater", "wool", "crochet hook")),
    "birdwatching": (("migratory", "feathered", "backyard"), ("binoculars", "warbler", "bird feeder", "field guide", "owl", "heron")),
    "skiing": (("powdery", "downhill", "freestyle"), ("skis", "ski goggles", "chairlift", "slalom", "snowboard", "ski poles")),
    "wine": (("full-bodied", "crisp", "oak-aged"), ("cabernet", "vineyard", "sommelier", "decanter", "chardonnay", "wine glass")),
}
TOPIC_NAMES: tuple[str, ...] = tuple(TOPICS)
MAX_TOPICS = len(TOPICS)


def _pick(rng: np.random.Generator, words: tuple[str, ...]) -> str:
    return words[int(rng.integers(len(words)))]


def item_texts(
    phi: np.ndarray, rng: np.random.Generator
) -> tuple[list[str], list[str], list[str]]:
    """Titles, descriptions and ``|``-joined category names for items with topic mixes ``phi``.

    ``phi``: (n_items, n_topics), rows sum to 1. The title comes from the dominant topic; the
    description draws four words from the item's topics in proportion to its mix.
    """
    titles, texts, categories = [], [], []
    for mix in phi:
        topics = np.flatnonzero(mix > 0)
        main = TOPIC_NAMES[int(np.argmax(mix))]
        adjectives, nouns = TOPICS[main]
        titles.append(f"{_pick(rng, adjectives).capitalize()} {_pick(rng, nouns)}")
        drawn = rng.choice(topics, size=4, p=mix[topics] / mix[topics].sum())
        words = [_pick(rng, TOPICS[TOPIC_NAMES[t]][1]) for t in drawn]
        names = [TOPIC_NAMES[t] for t in topics]
        texts.append(
            f"A {_pick(rng, adjectives)} pick for {' and '.join(names)} fans, "
            f"with {words[0]}, {words[1]}, {words[2]} and {words[3]}."
        )
        categories.append("|".join(names))
    return titles, texts, categories


def profile_texts(theta: np.ndarray, rng: np.random.Generator) -> list[str]:
    """One profile line per user naming their strongest interests. ``theta``: (n_users, n_topics)."""
    out = []
    for interests in theta:
        order = np.argsort(-interests)
        strong = [TOPIC_NAMES[t] for t in order[:2] if interests[t] >= 0.15] or [TOPIC_NAMES[order[0]]]
        minor = TOPIC_NAMES[order[len(strong)]]
        noun = _pick(rng, TOPICS[strong[0]][1])
        out.append(f"Into {' and '.join(strong)}, lately looking at {noun}; sometimes {minor}.")
    return out


def search_queries(phi: np.ndarray, items: np.ndarray, rng: np.random.Generator) -> list[str]:
    """A short search query per organic find: an adjective and noun of the item's main topic."""
    main = np.argmax(phi[items], axis=1)
    return [f"{_pick(rng, TOPICS[TOPIC_NAMES[t]][0])} {_pick(rng, TOPICS[TOPIC_NAMES[t]][1])}" for t in main]
