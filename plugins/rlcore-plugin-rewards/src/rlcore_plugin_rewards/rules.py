"""Rule rewards: ``fn(completions, samples, **params) -> list[float]``, one score per completion.

Each function takes its parameters as keywords with defaults (``reward.params`` in a config,
``rlcore info rewards NAME`` lists them), checks them before scoring anything, and returns
finite numbers only. ``bind_params`` checks a parameter dict against a function's signature.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Callable
from typing import Any

from rlcore.sdk import ConfigError, DataError, coerce, did_you_mean, registry, type_name

# ---------------------------------------------------------------------------- parameters


def parameters(fn: Callable) -> tuple[list[inspect.Parameter], bool]:
    """The keyword parameters ``fn`` takes after ``(completions, samples)``; and whether it
    also takes any keyword (``**kwargs``)."""
    try:
        signature = inspect.signature(fn, eval_str=True)
    except Exception:  # annotations that do not resolve: keep them as written
        signature = inspect.signature(fn)
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    params, skipped, any_keyword = [], 0, False
    for p in signature.parameters.values():
        if p.kind in positional and skipped < 2:
            skipped += 1
        elif p.kind is inspect.Parameter.VAR_KEYWORD:
            any_keyword = True
        elif p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            params.append(p)
    return params, any_keyword


def describe_params(fn: Callable) -> str:
    """``tolerance (float, default 1e-06), pattern (str, required)``: what ``fn`` accepts."""
    params, any_keyword = parameters(fn)
    parts = []
    for p in params:
        tp = "" if p.annotation is p.empty else _type_text(p.annotation) + ", "
        default = "required" if p.default is p.empty else f"default {p.default!r}"
        parts.append(f"{p.name} ({tp}{default})")
    if any_keyword:
        parts.append("any other keyword")
    return ", ".join(parts) or "none"


def bind_params(name: str, fn: Callable, params: dict[str, Any] | None, *,
                where: str = "reward.params", validate: bool = True) -> dict[str, Any]:
    """``params`` checked against ``fn``'s keyword parameters and converted to their annotated
    types (``"1e-6"`` becomes 1e-06 for a float). Unknown, ill-typed or missing required
    parameters raise a ConfigError that names the function and lists what it accepts. With
    ``validate``, a function's own ``fn.validate_params(**params)`` then checks the values."""
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise ConfigError(f"{where}.{name} must map parameter names to values, got {params!r}. "
                          f"{name!r} accepts: {describe_params(fn)}.")
    accepted, any_keyword = parameters(fn)
    by_name = {p.name: p for p in accepted}
    bound: dict[str, Any] = {}
    for key, value in params.items():
        p = by_name.get(str(key))
        if p is None:
            if any_keyword:
                bound[str(key)] = value
                continue
            raise ConfigError(f"reward function {name!r} has no parameter {key!r} "
                              f"(in {where}.{name})."
                              f"{did_you_mean(str(key), list(by_name))} {_accepts(name, fn)}")
        bound[p.name] = _coerced(name, fn, p, value, where)
    missing = [p.name for p in accepted if p.default is p.empty and p.name not in bound]
    if missing:
        example = ", ".join(f"{m}: ..." for m in missing)
        how = f"--set reward.params='{{{name}: {{{example}}}}}'" if where == "reward.params" \
            else f"{where}: {{{name}: {{{example}}}}}"
        raise ConfigError(f"reward function {name!r} needs parameter{'s' * (len(missing) > 1)} "
                          f"{', '.join(map(repr, missing))}; set it with {how}. "
                          f"{_accepts(name, fn)}")
    check = getattr(fn, "validate_params", None)
    if validate and callable(check):
        try:
            check(**bound)
        except ConfigError:
            raise
        except (ValueError, TypeError, re.error) as exc:
            raise ConfigError(f"reward function {name!r}: {exc} (in {where}.{name})") from None
    return bound


def _coerced(name: str, fn: Callable, p: inspect.Parameter, value: Any, where: str) -> Any:
    tp = p.annotation
    if tp is p.empty or tp is Any or isinstance(tp, str):
        return value
    try:
        return coerce(value, tp, f"{where}.{name}.{p.name}", where)
    except ConfigError:
        raise ConfigError(f"reward function {name!r}: parameter {p.name!r} must be "
                          f"{type_name(tp)}, got {value!r} (in {where}.{name}). "
                          f"{_accepts(name, fn)}") from None
    except TypeError:  # a type coerce cannot check: leave the value to the function
        return value


def _accepts(name: str, fn: Callable) -> str:
    """The end of a parameter error: what the function accepts and where that is documented."""
    try:
        registry.get("rewards", name)
        hint = f" (`rlcore info rewards {name}`)"
    except Exception:
        hint = ""
    return f"It accepts: {describe_params(fn)}{hint}."


def _type_text(tp: Any) -> str:
    return tp if isinstance(tp, str) else type_name(tp)


def _checks_on_no_completions(fn: Callable) -> Callable:
    """Mark ``fn``, which checks its parameters before scoring, so that ``bind_params`` can
    validate parameter values by calling it on no completions."""
    fn.validate_params = functools.partial(fn, [], [])  # type: ignore[attr-defined]
    return fn


def _param_error(fn: str, message: str) -> ConfigError:
    return ConfigError(f"reward function {fn!r}: {message}")


def _finite(fn: str, **values: float) -> None:
    for key, value in values.items():
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            raise _param_error(fn, f"parameter {key!r} must be a finite number, got {value!r}")


# ---------------------------------------------------------------------------- shared


ANSWER_FIELDS = ("answer", "ground_truth")


def _needs_answer(fn: Callable) -> Callable:
    """Mark ``fn`` as reading each sample's ``answer`` (or ``ground_truth``), so that a run
    checks its data for them before the first step."""
    fn.needs_answer = True  # type: ignore[attr-defined]
    return fn


def missing_answer(sample: dict) -> str | None:
    """Why ``sample`` has no reference answer (None when it has one), naming null fields
    as null and listing only the fields that hold a value."""
    if any(sample.get(f) is not None for f in ANSWER_FIELDS):
        return None
    null = [f for f in ANSWER_FIELDS if f in sample]
    held = sorted(k for k, v in sample.items() if v is not None and k not in ("id", "truncated"))
    return ("no 'answer' (or 'ground_truth') field"
            + (f" ({' and '.join(map(repr, null))} null)" if null else "")
            + f"; its fields: {', '.join(held) or 'none besides the prompt'}")


def reference_answer(sample: dict, index: int) -> str:
    """The sample's expected answer, from ``answer`` or ``ground_truth``."""
    why = missing_answer(sample)
    if why is None:
        return str(next(sample[f] for f in ANSWER_FIELDS if sample.get(f) is not None))
    raise DataError(f"sample {sample.get('id', index)!r} has {why}; rule rewards need one")


def _check_lengths(completions: list[str], samples: list[dict]) -> None:
    if len(completions) != len(samples):
        raise ValueError(f"got {len(completions)} completions for {len(samples)} samples; "
                         "a reward function needs one sample per completion")


def _sample_id(sample: dict, index: int) -> Any:
    return sample.get("id", index)


# ---------------------------------------------------------------------------- exact_match


@_needs_answer
@_checks_on_no_completions
def exact_match(completions: list[str], samples: list[dict], *, strip: bool = True,
                case_sensitive: bool = True, normalize_whitespace: bool = False) -> list[float]:
    """1.0 when the completion equals the sample's answer (``answer`` or ``ground_truth``), else 0.0.

    Parameters:
      strip: ignore leading and trailing whitespace (default true).
      case_sensitive: false compares case-folded text (default true).
      normalize_whitespace: treat every run of whitespace as one space (default false).
    """
    _check_lengths(completions, samples)

    def norm(text: str) -> str:
        if normalize_whitespace:
            text = re.sub(r"\s+", " ", text)
        if strip:
            text = text.strip()
        return text if case_sensitive else text.casefold()

    return [
        float(norm(c) == norm(reference_answer(s, i)))
        for i, (c, s) in enumerate(zip(completions, samples, strict=True))
    ]


# ---------------------------------------------------------------------------- math_answer

_NUM = r"-?(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:[eE][-+]?\d+)?"
_NUMBER = re.compile(_NUM)
# a value in a completion: a LaTeX fraction, a/b or a number
_VALUE = re.compile(rf"-?\\[dt]?frac\{{{_NUM}\}}\{{{_NUM}\}}|{_NUM}(?:/{_NUM})?")
_WHOLE_NUMBER = re.compile(rf"\s*({_NUM})\s*")
_FRACTION = re.compile(rf"(-?)\\[dt]?frac\{{({_NUM})\}}\{{({_NUM})\}}|({_NUM})/({_NUM})")
_UNITS = re.compile(r"\\(?:text|mathrm|mbox)\{[^{}]*\}|\^\{?\\circ\}?|\\%|%|\\\$|\$")
_PROSE = re.compile(r"[A-Za-z]{3,}")
_LATEX_NOISE = re.compile(r"\\left|\\right|\\[!,;: ]|\s+")


def final_number(text: str) -> float | None:
    """The number a completion commits to: after its last ``####``, in its last ``\\boxed{}``,
    else its last number; None if it has none."""
    found = _extract(text, numeric=True)
    return found[1] if found else None


def boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` in ``text``, nested braces included; None if none."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, begin = 0, start + len("\\boxed{")
    for i in range(begin, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            if depth == 0:
                return text[begin:i]
            depth -= 1
    return None  # unbalanced: no usable box


def parse_number(text: str) -> float | None:
    """``text`` as one finite number (``1,234``, ``-0.5``, ``3/4``, ``\\frac{1}{2}``, ``$5``,
    ``50%``, ``5 \\text{cm}``), or None."""
    cleaned = _UNITS.sub("", text.replace("\u2212", "-").replace("{,}", ",").replace("\\,", ""))
    cleaned = cleaned.strip().rstrip(".").strip()
    if whole := _WHOLE_NUMBER.fullmatch(cleaned):
        return _finite_or_none(float(whole.group(1).replace(",", "")))
    if frac := _FRACTION.fullmatch(cleaned.replace(" ", "")):
        sign, num, den = (frac.group(1), frac.group(2), frac.group(3)) if frac.group(2) \
            else ("", frac.group(4), frac.group(5))
        den_value = float(den.replace(",", ""))
        if den_value == 0:
            return None
        value = float(num.replace(",", "")) / den_value
        return _finite_or_none(-value if sign else value)
    return None


def normalize_answer(text: str) -> str:
    """``text`` without spacing, ``$``, ``\\left``/``\\right`` and a final period; ``\\dfrac``
    and ``\\tfrac`` as ``\\frac``; ``\\text{x}`` as ``x``: for comparing non-numeric answers."""
    text = re.sub(r"\\(?:text|mathrm|mbox)\{([^{}]*)\}", r"\1", text)
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("$", "")
    return _LATEX_NOISE.sub("", text).rstrip(".")


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _extract(text: str, numeric: bool) -> tuple[str, float | None] | None:
    """The answer ``text`` commits to, as ``(text, number or None)``: after the last ``####``
    (its first number), in the last ``\\boxed{}``, else the last number or fraction
    (``numeric``) or the whole text."""
    mark = text.rfind("####")
    if mark >= 0:
        line = text[mark + 4 :].strip().split("\n", 1)[0].strip()
        if line:
            number = parse_number(line)
            if number is None and (first := _NUMBER.search(line)):
                number = _finite_or_none(float(first.group().replace(",", "")))
            return line, number
    content = boxed(text)
    if content is not None and content.strip():
        return content, parse_number(content)
    if numeric:
        numbers = _VALUE.findall(text.replace("\u2212", "-"))
        for found in reversed(numbers):
            value = parse_number(found)
            if value is not None:
                return found, value
        return None
    return (text, parse_number(text)) if text.strip() else None


def _reference(sample: dict, index: int) -> tuple[str, float | None]:
    """The sample's answer as ``(text, number or None)``: marked or whole; the last number of
    a prose answer (``The answer is 42``, ``42 apples``)."""
    raw = reference_answer(sample, index)
    found = _extract(raw, numeric=False)
    if found is None:
        raise DataError(f"sample {_sample_id(sample, index)!r} has an empty answer; "
                        "math_answer needs a number or an expression to compare with")
    text, number = found
    if number is None and _PROSE.search(text) and not re.search(r"[\\{}^()\[\]]", text):
        numbers = _NUMBER.findall(text)
        if numbers:
            number = _finite_or_none(float(numbers[-1].replace(",", "")))
    return text, number


@_needs_answer
@_checks_on_no_completions
def math_answer(completions: list[str], samples: list[dict], *, tolerance: float = 1e-6,
                relative_tolerance: float = 0.0, reward_correct: float = 1.0,
                reward_wrong: float = 0.0, reward_unparsed: float = 0.0,
                backend: str = "builtin") -> list[float]:
    """Rewards a completion whose final answer equals the sample's answer numerically.

    The completion's answer is the text after its last ``####``, else the content of its
    last ``\\boxed{...}`` (nested braces allowed), else its last number, ``a/b`` or ``\\frac{a}{b}``. Numbers
    may carry thousands commas, a sign, decimals, an exponent, ``$`` or ``%``; ``3/4`` and
    ``\\frac{3}{4}`` are 0.75. The sample's ``answer`` (or ``ground_truth``) is its ``####``
    or ``\\boxed{}`` answer, else the whole field (``72``, ``\\frac{1}{2}``), or the last
    number of a prose field (``The answer is 72``). When it is not a number (``x^2``,
    ``(1,2)``, ``A``), the completion's marked answer (or its whole text) must equal it as
    text, without spacing, ``$`` or ``\\left``/``\\right``, and ``\\dfrac`` read as ``\\frac``.

    Parameters:
      tolerance: absolute tolerance, |got - answer| <= tolerance counts as correct (default 1e-6).
      relative_tolerance: also correct within relative_tolerance * |answer| (default 0).
      reward_correct: the score of a correct answer (default 1.0).
      reward_wrong: the score of a wrong answer (default 0.0).
      reward_unparsed: the score when the completion has no number and no marked answer (default 0.0).
      backend: builtin (the rules above) or math_verify (Hugging Face's Math-Verify compares
        the answers symbolically, without the tolerances; needs the math_verify extra).
    """
    fn = "math_answer"
    _finite(fn, tolerance=tolerance, relative_tolerance=relative_tolerance,
            reward_correct=reward_correct, reward_wrong=reward_wrong,
            reward_unparsed=reward_unparsed)
    if tolerance < 0 or relative_tolerance < 0:
        raise _param_error(fn, f"tolerance and relative_tolerance must be >= 0, got "
                               f"{tolerance} and {relative_tolerance}")
    if backend not in ("builtin", "math_verify"):
        raise _param_error(fn, f"unknown backend {backend!r}; use builtin or math_verify")
    _check_lengths(completions, samples)
    if backend == "math_verify":
        return _math_verify_scores(completions, samples, reward_correct, reward_wrong,
                                   reward_unparsed)
    scores = []
    for i, (completion, sample) in enumerate(zip(completions, samples, strict=True)):
        expected_text, expected = _reference(sample, i)
        got = _extract(completion, numeric=expected is not None)
        if got is None:
            scores.append(float(reward_unparsed))
        elif expected is not None:
            ok = got[1] is not None and \
                abs(got[1] - expected) <= max(tolerance, relative_tolerance * abs(expected))
            scores.append(float(reward_correct if ok else reward_wrong))
        else:
            ok = normalize_answer(got[0]) == normalize_answer(expected_text)
            scores.append(float(reward_correct if ok else reward_wrong))
    return scores


def _math_verify_scores(completions: list[str], samples: list[dict], reward_correct: float,
                        reward_wrong: float, reward_unparsed: float) -> list[float]:
    """``math_answer`` through Math-Verify; a reference it cannot parse is judged by the
    builtin rules."""
    from rlcore_plugin_rewards import math_verify_backend as mv

    mv.load()  # the install hint before anything else
    scores = []
    for i, (completion, sample) in enumerate(zip(completions, samples, strict=True)):
        _reference(sample, i)  # an empty answer is an error, as with the builtin backend
        raw = reference_answer(sample, i)
        gold = mv.parse_answer(raw, *_answer_and_value(raw))
        if not gold:
            scores.extend(math_answer([completion], [sample], reward_correct=reward_correct,
                                      reward_wrong=reward_wrong, reward_unparsed=reward_unparsed))
            continue
        got = mv.parse_answer(completion, *_answer_and_value(completion))
        score = reward_unparsed if not got else (
            reward_correct if mv.equal(gold, got) else reward_wrong)
        scores.append(float(score))
    return scores


def _answer_and_value(text: str) -> tuple[str | None, str | None]:
    """What ``text`` commits to as the builtin rules read it: its marked answer (``####``,
    ``\\boxed{}``, else the whole text) and the text of the number or fraction in it."""
    answer = _extract(text, numeric=False)
    value = _extract(text, numeric=True)
    value_text = value[0] if value else None
    if value_text is not None and not _VALUE.fullmatch(value_text.strip()):
        values = _VALUE.findall(value_text)  # a #### line with words: its first value
        value_text = values[0] if values else None
    return (answer[0] if answer else None), value_text


# ---------------------------------------------------------------------------- regex_match


@functools.lru_cache(maxsize=128)
def compile_pattern(pattern: str, flags: str = "") -> re.Pattern:
    """``pattern`` compiled with ``flags`` (``"IGNORECASE|DOTALL"``, ``"I,S"``), cached."""
    value = 0
    for flag in filter(None, re.split(r"[|,+\s]+", flags)):
        member = re.RegexFlag.__members__.get(flag.upper())
        if member is None or flag.upper() in ("NOFLAG", "TEMPLATE", "T", "DEBUG"):
            valid = "IGNORECASE (I), DOTALL (S), MULTILINE (M), VERBOSE (X), ASCII (A)"
            raise _param_error("regex_match", f"unknown regex flag {flag!r} in flags={flags!r}; "
                                              f"valid: {valid}, joined with '|'")
        value |= member
    try:
        return re.compile(pattern, value)
    except re.error as exc:
        raise _param_error("regex_match", f"pattern {pattern!r} does not compile: {exc}") from None


@_checks_on_no_completions
def regex_match(completions: list[str], samples: list[dict], *, pattern: str,
                fullmatch: bool = False, flags: str = "", reward_match: float = 1.0,
                reward_miss: float = 0.0) -> list[float]:
    """Rewards a completion that matches a regular expression: a format reward.

    Parameters:
      pattern: the regular expression (Python ``re`` syntax); required.
      fullmatch: the whole completion must match, not just a part of it (default false).
      flags: regex flags by name, joined with '|': IGNORECASE, DOTALL, MULTILINE, VERBOSE,
        ASCII or their letters I, S, M, X, A (default none).
      reward_match: the score of a completion that matches (default 1.0).
      reward_miss: the score of one that does not (default 0.0).

    Example: ``{regex_match: {pattern: '<think>.*</think>\\s*<answer>.*</answer>\\s*',
    fullmatch: true, flags: DOTALL}}``.
    """
    _finite("regex_match", reward_match=reward_match, reward_miss=reward_miss)
    if not isinstance(pattern, str) or not pattern:
        raise _param_error("regex_match", "parameter 'pattern' must be a non-empty regular "
                                          f"expression, got {pattern!r}")
    compiled = compile_pattern(pattern, flags or "")
    _check_lengths(completions, samples)
    test = compiled.fullmatch if fullmatch else compiled.search
    return [float(reward_match if test(c) else reward_miss) for c in completions]


# ---------------------------------------------------------------------------- length_penalty


@_checks_on_no_completions
def length_penalty(completions: list[str], samples: list[dict], *, max_length: int,
                   buffer: int = 0, penalty: float = 1.0,
                   length_field: str | None = None) -> list[float]:
    """Penalizes overlong completions softly: DAPO's overlong reward shaping.

    0 for a length up to max_length - buffer, then linearly down to -penalty at max_length,
    and -penalty beyond. Length is in characters, or read from each sample's length_field
    (e.g. a token count).

    Parameters:
      max_length: the length at which the full penalty applies; required.
      buffer: the length of the linear ramp before max_length (default 0: a step at max_length).
      penalty: the size of the full penalty, >= 0 (default 1.0).
      length_field: a sample field holding the completion's length, e.g. its token count
        (default none: characters of the completion).
    """
    fn = "length_penalty"
    _finite(fn, penalty=penalty)
    if not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1:
        raise _param_error(fn, f"max_length must be an integer >= 1, got {max_length!r}")
    if not isinstance(buffer, int) or isinstance(buffer, bool) or not 0 <= buffer <= max_length:
        raise _param_error(fn, f"buffer must be an integer in [0, max_length={max_length}], "
                               f"got {buffer!r}")
    if penalty < 0:
        raise _param_error(fn, f"penalty must be >= 0 (it is subtracted), got {penalty}")
    _check_lengths(completions, samples)
    start = max_length - buffer
    scores = []
    for i, (completion, sample) in enumerate(zip(completions, samples, strict=True)):
        length = len(completion) if length_field is None else _length(sample, i, length_field)
        if length <= start:
            scores.append(0.0)
        elif length <= max_length:
            scores.append(-penalty * (length - start) / buffer)
        else:
            scores.append(-float(penalty))
    return scores


def _length(sample: dict, index: int, field: str) -> float:
    value = sample.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value < 0:
        raise DataError(f"sample {_sample_id(sample, index)!r}: length_penalty reads the length "
                        f"from field {field!r}, which is {value!r}, not a count "
                        f"(fields present: {sorted(sample)})")
    return float(value)


# ---------------------------------------------------------------------------- format_penalty


@_checks_on_no_completions
def format_penalty(completions: list[str], samples: list[dict], *,
                   penalty: float = 1.0) -> list[float]:
    """Penalizes an empty completion, or one whose sample says it hit the length limit.

    The score is -penalty for a completion that is empty (or only whitespace) or whose sample
    has ``truncated`` true (no eos before the generation limit), else 0.0.

    Parameters:
      penalty: the size of the penalty (default 1.0).
    """
    _finite("format_penalty", penalty=penalty)
    _check_lengths(completions, samples)
    return [
        -float(penalty) if not c.strip() or s.get("truncated", False) else 0.0
        for c, s in zip(completions, samples, strict=True)
    ]


# ---------------------------------------------------------------------------- weighted


def _weights(rewards: Any) -> list[tuple[str, float]]:
    fn = "weighted"
    if isinstance(rewards, dict):
        pairs = list(rewards.items())
    elif isinstance(rewards, list | tuple):
        pairs = []
        for item in rewards:
            if isinstance(item, str):
                pairs.append((item, 1.0))
            elif isinstance(item, list | tuple) and len(item) == 2:
                pairs.append((item[0], item[1]))
            else:
                raise _param_error(fn, f"each entry of 'rewards' must be [name, weight], got "
                                       f"{item!r}")
    else:
        raise _param_error(fn, "parameter 'rewards' must map reward function names to weights, "
                               f"e.g. {{math_answer: 1.0, format_penalty: 0.5}}; got {rewards!r}")
    if not pairs:
        raise _param_error(fn, "parameter 'rewards' is empty: name at least one reward function")
    out = []
    for name, weight in pairs:
        if isinstance(weight, bool) or not isinstance(weight, int | float) \
                or not math.isfinite(weight):
            raise _param_error(fn, f"the weight of {name!r} must be a finite number, got "
                                   f"{weight!r}")
        out.append((str(name), float(weight)))
    return out


@_checks_on_no_completions
def weighted(completions: list[str], samples: list[dict], *,
             rewards: dict[str, float] | list,
             params: dict[str, dict[str, Any]] | None = None) -> list[float]:
    """Rewards with a weighted sum of other registered reward functions, as one named reward.

    An alternative to ``reward.functions`` + ``reward.weights`` where a single function is
    wanted, e.g. inside another plugin. Each named function is loaded from the registry
    (``rlcore list rewards``) and called with its own parameters.

    Parameters:
      rewards: {name: weight}, or a list of [name, weight] or names (weight 1); required.
      params: {name: {parameter: value}} for the named functions (default none).

    Example: ``{weighted: {rewards: {math_answer: 1.0, format_penalty: 0.5},
    params: {math_answer: {tolerance: 0.01}}}}``.
    """
    fn = "weighted"
    pairs = _weights(rewards)
    params = params or {}
    names = [name for name, _ in pairs]
    if not isinstance(params, dict):
        raise _param_error(fn, f"parameter 'params' must map function names to parameters, got "
                               f"{params!r}")
    extra = sorted(set(map(str, params)) - set(names))
    if extra:
        raise _param_error(fn, f"'params' names {', '.join(map(repr, extra))}, which "
                               f"{'is' if len(extra) == 1 else 'are'} not in 'rewards' "
                               f"({', '.join(names)})")
    parts = []
    for name, weight in pairs:
        part = registry.load("rewards", name)
        # On no completions this is a dry run: check every value too, call no function.
        bound = bind_params(name, part, params.get(name), where=f"reward.params.{fn}.params",
                            validate=not completions)
        parts.append((name, weight, part, bound))
    _check_lengths(completions, samples)
    if not completions:
        return []
    total = [0.0] * len(completions)
    for name, weight, part, bound in parts:
        scores = list(part(completions, samples, **bound))
        if len(scores) != len(completions):
            raise ValueError(f"weighted: {name!r} returned {len(scores)} scores for "
                             f"{len(completions)} completions")
        for i, score in enumerate(scores):
            value = float(score)
            if not math.isfinite(value):
                raise ValueError(f"weighted: {name!r} returned {value} for sample "
                                 f"{_sample_id(samples[i], i)!r}; rewards must be finite")
            total[i] += weight * value
    for i, value in enumerate(total):
        if not math.isfinite(value):
            raise ValueError(f"weighted: the weighted sum for sample "
                             f"{_sample_id(samples[i], i)!r} is {value}; lower the weights")
    return total
