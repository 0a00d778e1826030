"""Feedback text classification, Chinese and English: topics (mapped to the 4C) and sentiment.

A lexicon classifier (rules in ``ml/feedback_lexicon.yml``, the one place they live), evaluated on a
labelled sample kept in the repo (``ml/data/feedback_labelled.csv``, tuned on its dev half, reported on
its test half in docs/feedback.md):

* Chinese is segmented with jieba (the lexicon's words are added to its dictionary). Multi-character
  lexicon words are found in the text; single characters (贵, 慢, 好) only as a whole token or a token
  made of a degree adverb or negator plus the character (太贵, 很快, 不快), so 快 in 快递 is not "fast".
  Negators are tokens in the few tokens before a word, within its clause.
* English is lower-cased, misspellings fixed, ``n't`` split off, and matched as tokens and phrases.

``classify_new_feedback`` is the daily step: it classifies feedback versions (feedback_id, updated_at)
not yet classified by this lexicon version into ``ml.feedback_classified`` (one row per topic).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd
import yaml

log = logging.getLogger(__name__)

LEXICON_PATH = Path(__file__).with_name("feedback_lexicon.yml")
LABELLED_PATH = Path(__file__).parent / "data" / "feedback_labelled.csv"
OTHER = "other"
SENTIMENTS = ("positive", "neutral", "negative")
# Adverbs that may glue to a one-character sentiment word in a jieba token (太贵, 很快, 超好).
_DEGREE = {"还", "太", "很", "超", "好", "真", "挺", "巨", "更", "最", "特", "蛮", "较",
           "有点", "非常", "特别", "比较", "超级", "好像"}
_PARTICLES = {"了", "的", "啊", "死", "呀"}
_ZH_PUNCT = set("，。！？、；：,.!?;:…~～ \n\t（）()")
_CJK = re.compile(r"[\u4e00-\u9fff]")
_EN_TOKEN = re.compile(r"[a-z0-9%]+(?:'[a-z]+)?|[.,!?;:…]")
_QUOTED = re.compile(r"[\"“'‘「]([^\"”'’」]{1,12})[\"”'’」]")


@dataclass(frozen=True)
class Classification:
    topics: tuple[str, ...]
    sentiment: str
    score: int  # net sentiment: positive minus negative cues


@dataclass
class Lexicon:
    version: str
    topic_dimension: dict[str, str]
    topic_label: dict[str, str]
    topic_words: dict[str, dict[str, list[str]]]  # topic -> language -> words
    weak_words: dict[str, dict[str, list[str]]]  # topic -> language -> words that count only alone
    sentiment_words: dict[str, dict[str, int]]  # language -> word -> +1 / -1
    negators: dict[str, set[str]]
    standalone_negative: dict[str, set[str]]
    jieba_words: list[str]
    window: int
    clause_breaks: dict[str, set[str]]
    sarcasm: dict[str, list[str]]
    typos: dict[str, dict[str, str]]
    topics: tuple[str, ...] = field(default=())


def load_lexicon(path: Path = LEXICON_PATH) -> Lexicon:
    raw = path.read_bytes()
    y = yaml.safe_load(raw)
    langs = ("zh", "en")
    sentiment = {lang: {**{w: 1 for w in y["sentiment"][lang]["positive"]},
                        **{w: -1 for w in y["sentiment"][lang]["negative"]}} for lang in ("zh", "en")}
    return Lexicon(
        version=hashlib.sha256(raw).hexdigest()[:12],
        topic_dimension={t: spec["dimension"] for t, spec in y["topics"].items()},
        topic_label={**{t: spec.get("label", t) for t, spec in y["topics"].items()}, OTHER: "other matters"},
        topic_words={t: {lang: [str(w) for w in spec[lang]] for lang in langs} for t, spec in y["topics"].items()},
        weak_words={t: {lang: [str(w) for w in spec.get(f"weak_{lang}", [])] for lang in ("zh", "en")}
                    for t, spec in y["topics"].items()},
        sentiment_words=sentiment,
        negators={lang: {str(w) for w in y["negation"][lang]} for lang in ("zh", "en")},
        standalone_negative={lang: {str(w) for w in y["negation"][f"standalone_negative_{lang}"]} for lang in langs},
        jieba_words=[str(w) for w in y.get("jieba_words", [])],
        window=int(y["negation"]["window"]),
        clause_breaks={lang: set(y["negation"][f"clause_breaks_{lang}"]) for lang in ("zh", "en")},
        sarcasm={lang: [str(w).lower() for w in y["sarcasm"][lang]] for lang in ("zh", "en")},
        typos={lang: {str(k): str(v) for k, v in y["typos"][lang].items()} for lang in ("zh", "en")},
        topics=tuple(y["topics"]),
    )


def detect_language(text: str, language: str | None) -> str:
    """The given language when it is zh or en, else zh when the text has CJK characters."""
    if language in ("zh", "en"):
        return language
    return "zh" if _CJK.search(text) else "en"


def english_tokens(text: str, typos: dict[str, str] | None = None) -> list[str]:
    """Lower-cased word and punctuation tokens; ``n't`` becomes the token ``not``."""
    text = text.lower().replace("’", "'").replace("n't", " not").replace("cannot", "can not")
    tokens = _EN_TOKEN.findall(text)
    return [(typos or {}).get(t, t) for t in tokens]


class FeedbackClassifier:
    """Classify feedback texts with a lexicon. ``cache_dir`` holds jieba's dictionary cache."""

    def __init__(self, lexicon: Lexicon | None = None, cache_dir: Path | None = None):
        import jieba

        jieba.setLogLevel(logging.WARNING)
        self.lexicon = lexicon or load_lexicon()
        lx = self.lexicon
        self._jieba = jieba.Tokenizer()
        if cache_dir is not None:
            Path(cache_dir).mkdir(parents=True, exist_ok=True)
            self._jieba.tmp_dir = str(cache_dir)
        zh_words = ({w for t in lx.topics for w in lx.topic_words[t]["zh"] + lx.weak_words[t]["zh"]}
                    | set(lx.sentiment_words["zh"]))
        for w in sorted(zh_words | lx.negators["zh"] | set(lx.jieba_words)):
            if len(w) > 1 and _CJK.search(w):
                self._jieba.add_word(w)
        # English keywords as token tuples, tokenised like the texts.
        self._en_topic = {t: [tuple(english_tokens(w)) for w in lx.topic_words[t]["en"]] for t in lx.topics}
        self._en_weak = {t: [tuple(english_tokens(w)) for w in lx.weak_words[t]["en"]] for t in lx.topics}
        self._en_sent = sorted(((tuple(english_tokens(w)), s) for w, s in lx.sentiment_words["en"].items()),
                               key=lambda x: -len(x[0]))
        self._zh_multi = sorted(((w, s) for w, s in lx.sentiment_words["zh"].items() if len(w) > 1),
                                key=lambda x: -len(x[0]))
        self._zh_single = {w: s for w, s in lx.sentiment_words["zh"].items() if len(w) == 1}
        self._memo: dict[tuple[str, str], Classification] = {}

    # ---- topics -----------------------------------------------------------------------------------
    @staticmethod
    def _english_topics(tokens: list[str], phrases_by_topic: dict[str, list[tuple[str, ...]]]) -> set[str]:
        joined = " " + " ".join(tokens) + " "
        return {t for t, phrases in phrases_by_topic.items()
                if any(" " + " ".join(p) + " " in joined for p in phrases if p)}

    @staticmethod
    def _single_char_hit(ch: str, token: str) -> bool:
        """A one-character word counts as a whole token, or glued to a degree adverb (太贵, 很慢)."""
        return token == ch or (ch in token and token.replace(ch, "", 1) in _DEGREE | _PARTICLES)

    def _chinese_topics(self, text: str, tokens: list[str], words: str) -> set[str]:
        found = set()
        low = text.lower()
        for topic in self.lexicon.topics:
            for w in getattr(self.lexicon, words)[topic]["zh"]:
                if (len(w) > 1 and w.lower() in low) or (len(w) == 1 and any(self._single_char_hit(w, t)
                                                                             for t in tokens)):
                    found.add(topic)
                    break
        latin = [t.lower() for t in tokens if t.isascii() and t.isalpha()]
        return found | self._english_topics(latin, self._en_topic if words == "topic_words" else self._en_weak)

    # ---- sentiment --------------------------------------------------------------------------------
    def _negator_before(self, before: list[str], lang: str) -> int | None:
        """Index (in ``before``) of a negator among its last ``window`` tokens within the clause, else None."""
        lx = self.lexicon
        for k in range(len(before) - 1, max(-1, len(before) - 1 - lx.window), -1):
            tok = before[k]
            if tok in _ZH_PUNCT or tok in lx.clause_breaks[lang] or tok in ".,!?;:…":
                return None
            if tok in lx.negators[lang]:
                return k
        return None

    def _tally(self, hits: list[tuple[int, int]], tokens: list[str], lang: str, consumed: set[int]) -> tuple[int, int]:
        """Count (positive, negative) cues: hits are (token index, sign); negators flip the next hit.

        A negator that negates no cue states a problem on its own (didn't show up, 没到账): negative.
        """
        pos = neg = 0
        used = set()
        for i, s in hits:
            k = self._negator_before(tokens[:i], lang)
            if k is not None:
                s = -s
                used.add(k)
            pos, neg = (pos + 1, neg) if s > 0 else (pos, neg + 1)
        standalone = self.lexicon.standalone_negative[lang]
        for k, tok in enumerate(tokens):
            if k in used or k in consumed:
                continue
            glued = lang == "zh" and len(tok) == 2 and tok[0] in "不没" and tok not in self.lexicon.clause_breaks["zh"]
            if tok in standalone or glued:
                neg += 1
        return pos, neg

    def _english_sentiment(self, tokens: list[str]) -> tuple[int, int]:
        hits, consumed = [], set()
        i = 0
        while i < len(tokens):
            for phrase, s in self._en_sent:
                if tuple(tokens[i:i + len(phrase)]) == phrase:
                    hits.append((i, s))
                    consumed.update(range(i, i + len(phrase)))
                    i += len(phrase)
                    break
            else:
                i += 1
        return self._tally(hits, tokens, "en", consumed)

    def _chinese_sentiment(self, text: str, spans: list[tuple[str, int, int]]) -> tuple[int, int]:
        taken = [False] * len(text)
        tokens = [t for t, _, _ in spans]
        token_at = {}
        for k, (_, a, b) in enumerate(spans):
            for c in range(a, b):
                token_at[c] = k
        hits: list[tuple[int, int]] = []  # (token index, sign)
        consumed: set[int] = set()
        for w, s in self._zh_multi:  # longest first, non-overlapping
            start = text.find(w)
            while start >= 0:
                if not any(taken[start:start + len(w)]):
                    taken[start:start + len(w)] = [True] * len(w)
                    hits.append((token_at[start], s))
                    consumed.update(token_at[c] for c in range(start, start + len(w)))
                start = text.find(w, start + 1)
        for k, (tok, a, b) in enumerate(spans):
            if any(taken[a:b]):
                continue
            for ch, s in self._zh_single.items():
                if self._single_char_hit(ch, tok):
                    hits.append((k, s))
                    consumed.add(k)
                    break
                if len(tok) == 2 and tok[1] == ch and tok[0] in self.lexicon.negators["zh"]:
                    hits.append((k, -s))  # 不快, 没好: negator glued to the word
                    consumed.add(k)
                    break
        return self._tally(sorted(hits), tokens, "zh", consumed)

    def _sarcastic(self, text: str, lang: str) -> bool:
        low = text.lower()
        if any(m in low for m in self.lexicon.sarcasm[lang]):
            return True
        # a praise word in quotes: thanks for the 'fast' delivery, “神速”的物流
        words = self.lexicon.sentiment_words
        return any(words["en"].get(q.strip().lower(), 0) > 0 or words["zh"].get(q.strip(), 0) > 0
                   for q in _QUOTED.findall(text))

    # ---- public -----------------------------------------------------------------------------------
    def classify(self, text: str | None, language: str | None = None) -> Classification:
        """Topics (lexicon order, 'other' when none) and sentiment of one text."""
        if text is None or not str(text).strip():
            return Classification((OTHER,), "neutral", 0)
        text = str(text)
        lang = detect_language(text, language)
        key = (text, lang)
        if key in self._memo:
            return self._memo[key]
        if lang == "zh":
            fixed = text
            for wrong, right in self.lexicon.typos["zh"].items():
                fixed = fixed.replace(wrong, right)
            spans = list(self._jieba.tokenize(fixed))
            tokens = [t for t, _, _ in spans]
            topics = (self._chinese_topics(fixed, tokens, "topic_words")
                      or self._chinese_topics(fixed, tokens, "weak_words"))
            pos, neg = self._chinese_sentiment(fixed, spans)
            latin = [t.lower() for t in tokens if t.isascii() and t.isalpha()]
            lp, ln = self._english_sentiment(latin)
            pos, neg = pos + lp, neg + ln
        else:
            tokens = english_tokens(text, self.lexicon.typos["en"])
            topics = self._english_topics(tokens, self._en_topic) or self._english_topics(tokens, self._en_weak)
            pos, neg = self._english_sentiment(tokens)
        if pos and self._sarcastic(text, lang):
            pos, neg = 0, neg + pos
        score = pos - neg
        sentiment = "positive" if score > 0 else "negative" if score < 0 else "neutral"
        ordered = tuple(t for t in self.lexicon.topics if t in topics) or (OTHER,)
        result = Classification(ordered, sentiment, score)
        self._memo[key] = result
        return result

    def classify_many(self, texts: Iterable[str | None], languages: Iterable[str | None]) -> list[Classification]:
        return [self.classify(t, lang) for t, lang in zip(texts, languages, strict=True)]

    def dimension(self, topic: str) -> str | None:
        return self.lexicon.topic_dimension.get(topic)


_DEFAULT: FeedbackClassifier | None = None


def default_classifier() -> FeedbackClassifier:
    """One shared classifier with the repo's lexicon; jieba's cache in the data dir (``<data>/cache/jieba``)."""
    global _DEFAULT
    if _DEFAULT is None:
        from loyalist.config import get_settings

        _DEFAULT = FeedbackClassifier(cache_dir=get_settings().data_dir / "cache" / "jieba")
    return _DEFAULT


# --------------------------------------------------------------------------------------------------
# Evaluation on the labelled sample
# --------------------------------------------------------------------------------------------------
def load_labelled(path: Path = LABELLED_PATH) -> pd.DataFrame:
    """The labelled sample: text_id, language, text, topics (';'-separated), sentiment, split (dev/test)."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame["topic_set"] = frame["topics"].str.split(";").map(frozenset)
    return frame


def evaluate(classifier: FeedbackClassifier, labelled: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per language and topic: support, precision, recall, F1; per language: sentiment accuracy.

    Returns (topic_metrics, sentiment_metrics). Topic 'all' is the micro average over the topics.
    """
    pred = classifier.classify_many(labelled["text"], labelled["language"])
    frame = labelled.assign(pred_topics=[frozenset(p.topics) for p in pred],
                            pred_sentiment=[p.sentiment for p in pred])
    rows = []
    for lang, part in frame.groupby("language"):
        totals = [0, 0, 0]
        for topic in (*classifier.lexicon.topics, OTHER):
            gold = part["topic_set"].map(lambda s, t=topic: t in s)
            got = part["pred_topics"].map(lambda s, t=topic: t in s)
            tp, fp, fn = int((gold & got).sum()), int((~gold & got).sum()), int((gold & ~got).sum())
            rows.append(_prf(lang, topic, tp, fp, fn))
            totals = [totals[0] + tp, totals[1] + fp, totals[2] + fn]
        rows.append(_prf(lang, "all", *totals))
    sentiment = (frame.assign(correct=frame["sentiment"] == frame["pred_sentiment"])
                 .groupby("language").agg(texts=("correct", "size"), accuracy=("correct", "mean")).reset_index())
    return pd.DataFrame(rows), sentiment


def _prf(language: str, topic: str, tp: int, fp: int, fn: int) -> dict:
    precision = tp / (tp + fp) if tp + fp else float("nan")
    recall = tp / (tp + fn) if tp + fn else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return {"language": language, "topic": topic, "support": tp + fn, "precision": precision, "recall": recall,
            "f1": f1}


# --------------------------------------------------------------------------------------------------
# The daily step: classify new feedback versions into ml.feedback_classified
# --------------------------------------------------------------------------------------------------
def classified_rows(classifier: FeedbackClassifier, feedback: pd.DataFrame) -> pd.DataFrame:
    """One row per (feedback_id, updated_at, topic) of ``feedback`` (feedback_id, updated_at, text, language)."""
    out = []
    for fid, upd, text, lang in feedback[["feedback_id", "updated_at", "text", "language"]].itertuples(index=False):
        result = classifier.classify(text, lang)
        for topic in result.topics:
            out.append((fid, upd, topic, classifier.dimension(topic), result.sentiment, result.score,
                        detect_language(text, lang), classifier.lexicon.version))
    return pd.DataFrame(out, columns=["feedback_id", "updated_at", "topic", "dimension", "sentiment",
                                      "sentiment_score", "language", "classifier_version"])


def classify_new_feedback(con: duckdb.DuckDBPyConnection, classifier: FeedbackClassifier) -> dict:
    """Classify the feedback versions of ``raw.feedback`` with text that this lexicon has not classified yet.

    Incremental by (feedback_id, updated_at) and idempotent: a rerun finds nothing new. A changed
    lexicon (new version) reclassifies everything.
    """
    from ml import store

    store.ensure_tables(con)
    version = classifier.lexicon.version
    new = con.execute("""
        with versions as (
            select feedback_id, updated_at, text, language
            from raw.feedback
            where text is not null and trim(text) <> ''
            qualify row_number() over (partition by feedback_id, updated_at
                                       order by _loaded_at desc, _source_file desc, _row_in_file desc) = 1
        )
        select v.* from versions v
        where not exists (select 1 from ml.feedback_classified c
                          where c.feedback_id = v.feedback_id and c.updated_at = v.updated_at
                            and c.classifier_version = ?)
        order by feedback_id, updated_at""", [version]).df()
    rows = classified_rows(classifier, new)
    stale = store.replace_rows(con, "feedback_classified", rows, ["feedback_id", "updated_at"],
                               "classifier_version <> ?", [version])
    log.info("classified %s feedback versions (%s topic rows); removed %s rows of older lexicons",
             len(new), len(rows), stale)
    return {"feedback_versions": len(new), "topic_rows": len(rows), "classifier_version": version}


def main() -> None:  # pragma: no cover - a report for docs/feedback.md
    """``python -m ml.feedback_text [test|dev] [jieba cache dir]``: the metrics of one half of the sample."""
    import sys

    classifier = FeedbackClassifier(cache_dir=Path(sys.argv[2]) if len(sys.argv) > 2 else None)
    labelled = load_labelled()
    split = sys.argv[1] if len(sys.argv) > 1 else "test"
    topics, sentiment = evaluate(classifier, labelled[labelled["split"] == split])
    print(topics.round(3).to_string(index=False))
    print()
    print(sentiment.round(3).to_string(index=False))


if __name__ == "__main__":
    main()
