"""Reward functions of the example plugin."""


def keyword_reward(completions: list[str], samples: list[dict]) -> list[float]:
    """1.0 for each completion that contains its sample's ``keyword``, else 0.0."""
    return [float(s.get("keyword", "") in c) for c, s in zip(completions, samples, strict=True)]
